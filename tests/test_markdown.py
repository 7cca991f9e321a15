"""Markdown for PR comments and $GITHUB_STEP_SUMMARY: golden files checked by
hand, and names from files escaped so they cannot break the tables."""

from __future__ import annotations

import re

import pytest
from builders import ROOT, TOPOLOGIES
from ci_helpers import FIXTURES, run

GOLDEN = ROOT / "tests" / "golden"
UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


@pytest.mark.parametrize("golden,args", [
    # Checked by hand: gateway-drift at hop limit 2 leaks to neighbour (1 router,
    # hop limit 2 allows 1) and its expect entry 2.neighbour (line 26) fails;
    # odd-names starves its pod (dropped at the forwarding host, hop limit 1);
    # typo.yaml is bad input at line 5. Their fixes: neighbour's is hop limit 1 (its
    # response then dies at gateway), which starves app (1 router too): said; the
    # pod's is hop limit 2 (1 router). The sweep adds docker-bridge: broken
    # at 1, ok from 2; gateway-drift has no good hop limit.
    ("check-ci-fixtures.md", ("check", FIXTURES)),
    ("sweep-ci-fixtures.md", ("sweep", FIXTURES, "topologies/docker-bridge.yaml",
                              "--hop-limits", "1-3,8")),
])
def test_markdown_matches_the_checked_golden_file(golden, args, monkeypatch):
    result = run(*args, "--format", "markdown", monkeypatch=monkeypatch)
    assert result.exit_code == 2  # typo.yaml
    assert result.stdout == (GOLDEN / golden).read_text()


@pytest.mark.parametrize("args", [("check", FIXTURES), ("sweep", FIXTURES)])
def test_every_table_row_has_as_many_cells_as_its_header(args, monkeypatch):
    text = run(*args, "--format", "markdown", monkeypatch=monkeypatch).stdout
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert len(rows) >= 4
    cells = {len(UNESCAPED_PIPE.findall(row)) for row in rows}
    assert len(cells) == 1, rows


def test_check_without_findings_says_so(monkeypatch):
    result = run("check", "topologies/host-process.yaml", "--format", "markdown",
                 monkeypatch=monkeypatch)
    assert result.exit_code == 0
    assert result.stdout.startswith("### hopsim check: ✅ no findings\n")
    assert "<details open>" in result.stdout


def test_sweep_heading_speaks_of_expectations_and_long_tables_fold(monkeypatch):
    result = run("sweep", "--format", "markdown", monkeypatch=monkeypatch)
    assert result.exit_code == 0
    assert result.stdout.startswith(
        "### hopsim sweep (hop limits 1-4): ✅ every expect entry holds\n")
    check = run("check", "--format", "markdown", monkeypatch=monkeypatch).stdout
    bundled = len(list(TOPOLOGIES.rglob("*.yaml")))
    assert f"<details><summary>{bundled} topologies, {bundled} results:" in check


def test_a_wide_sweep_is_written_as_runs_of_one_verdict(monkeypatch):
    text = run("sweep", "--hop-limits", "1-64", "--format", "markdown",
               monkeypatch=monkeypatch).stdout
    assert "| topology | verdicts | best | expect |" in text
    assert "| router-two-hops | ⚠️ broken 1, ✅ ok 2, ❌ leak 3-64 | 2 | 9 passed |" in text

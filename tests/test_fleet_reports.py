"""Reports of large topologies: alike principals grouped, every one counted.

Above analysis.GROUP_ABOVE principals, the formats people read in CI (junit,
sarif, markdown) report one finding per path class, role and hop limit, as the
table shows one row: a 100,000-node fleet's check had 24,469 findings, a
6.7 MB step summary (GitHub takes 1 MiB) and a SARIF file near GitHub's
25,000-result limit.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from builders import TOPOLOGIES

from hopsim import analysis
from hopsim.generate import dumps, fleet
from hopsim.loader import load, parse
from hopsim.outcome import Access
from hopsim.report import findings, junit, markdown, sarif


def _bad(o) -> bool:
    """What makes a verdict other than ok (analysis.judge)."""
    return ((o.role == "attacker" and o.access is not Access.NONE)
            or (o.role == "workload" and o.access is not Access.TOKEN))


@pytest.fixture(scope="module")
def checked():
    topology = parse(dumps(fleet(60, 4, 0)), "fleet.yaml")
    assert len(topology.principals) > analysis.GROUP_ABOVE
    return analysis.check(topology)


def test_grouped_findings_stand_for_every_bad_principal(checked):
    result = checked.results[0]
    bad = [o for o in result.outcomes if _bad(o)]
    found = findings.for_result(checked, result, "check")
    assert sum(f.alike for f in found) == len(bad)
    assert len(found) < len(bad)  # grouped
    assert {f.node for f in found} <= {o.node for o in bad}
    for f in found:
        assert ("more like it" in f.message) == (f.alike > 1)
        assert f" and {f.alike - 1:,} more like it" in f.message or f.alike == 1


def test_markdown_counts_every_finding_and_lists_the_groups(checked):
    result = checked.results[0]
    bad = sum(_bad(o) for o in result.outcomes)
    found = findings.for_result(checked, result, "check")
    text = markdown.check([checked], [])
    assert text.splitlines()[0] == f"### hopsim check: ❌ {bad:,} findings"
    assert sum(line.startswith("- ❌ ") for line in text.splitlines()) == len(found)
    # the hop limit cell, read from one outcome per group, says every principal's
    limits = sorted({o.hop_limit for o in result.outcomes if o.hop_limit})
    assert len(limits) > 1
    assert f"| {checked.topology.name} | {'/'.join(map(str, limits))} |" in text


def test_sarif_has_one_result_per_group(checked):
    doc = json.loads(sarif.document("check", [checked], []))
    messages = [r["message"]["text"] for r in doc["runs"][0]["results"]]
    found = findings.for_result(checked, checked.results[0], "check")
    assert len(messages) == len(found)
    assert any("more like it" in m for m in messages)
    bad = sum(_bad(o) for o in checked.results[0].outcomes)
    assert sum(r["properties"]["alike"] for r in doc["runs"][0]["results"]) == bad


def test_junit_lists_one_line_per_row_of_the_table(checked):
    root = ET.fromstring(junit.document("check", [checked], []))
    out = root.find("testsuite/testcase/system-out").text
    result = checked.results[0]
    assert len(out.strip().splitlines()) == 1 + len(analysis.rows(result.outcomes))
    assert len(analysis.rows(result.outcomes)) < len(result.outcomes)


def test_a_small_topology_still_gets_a_finding_per_principal():
    report = analysis.check(load(TOPOLOGIES / "docker-bridge.yaml"))
    result = report.results[0]
    found = findings.for_result(report, result, "check")
    assert [f.node for f in found] == [o.node for o in result.outcomes if _bad(o)]
    assert all(f.alike == 1 and "more like it" not in f.message for f in found)

"""Accepted findings: an ignore file with a reason and an optional expiry;
suppressed findings fail nothing, and every format still shows them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import jsonschema
import pytest
import xmlschema
import yaml
from builders import ROOT
from ci_helpers import FIXTURES, PLAIN, SCHEMAS
from click.testing import CliRunner

from hopsim.cli import main
from hopsim.suppressions import DEFAULT_FILE, read
from hopsim.topology import TopologyError

DRIFT = str(ROOT / FIXTURES / "gateway-drift.yaml")  # check: a leak and a failed expect
RULES = ["token-leak", "imdsv1-credential-leak", "starved-workload", "failed-expectation"]


def run(*args: str):
    return CliRunner().invoke(main, list(args), env=PLAIN)


def ignore(tmp_path, *entries: dict, name: str = "accepted.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"suppress": list(entries)}, sort_keys=False))
    return str(path)


LEAK = {"rule": "token-leak", "topology": "gateway-drift", "principal": "neighbour",
        "reason": "the neighbour subnet is ours; SEC-123"}
EXPECT = {"rule": "failed-expectation", "topology": "gateway-drift", "hop_limit": 2,
          "reason": "the expect entries are being rewritten"}


def test_without_suppressions_the_design_fails():
    assert run("check", DRIFT).exit_code == 1


def test_suppressed_findings_fail_nothing_and_the_summary_counts_them(tmp_path):
    result = run("check", DRIFT, "--ignore-file", ignore(tmp_path, LEAK, EXPECT))
    assert result.exit_code == 0, result.output
    assert "suppressed: 2 findings, accepted in " in result.output
    assert "gateway-drift at hop limit 2: leak" in result.output  # the verdict stays


def test_one_finding_left_still_fails(tmp_path):
    result = run("check", DRIFT, "--ignore-file", ignore(tmp_path, LEAK))
    assert result.exit_code == 1
    assert "suppressed: 1 finding" in result.output


def test_sarif_marks_suppressed_results_with_the_reason_and_where_it_is_written(tmp_path):
    sarif = tmp_path / "x.sarif"
    accepted = ignore(tmp_path, {**LEAK, "expires": "2099-01-31"}, EXPECT)
    run("check", DRIFT, "--ignore-file", accepted, "--output", f"sarif:{sarif}")
    doc = json.loads(sarif.read_text())
    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())
    jsonschema.validate(doc, schema, cls=jsonschema.Draft4Validator)
    leak, = [r for r in doc["runs"][0]["results"] if r["ruleId"] == "token-leak"]
    suppression, = leak["suppressions"]
    assert suppression["kind"] == "external" and suppression["status"] == "accepted"
    assert suppression["justification"] == "the neighbour subnet is ours; SEC-123"
    assert suppression["properties"] == {"expires": "2099-01-31"}
    assert suppression["location"]["physicalLocation"]["region"]["startLine"] == 2


def test_markdown_counts_them_and_lists_them_with_their_reasons(tmp_path):
    result = run("check", DRIFT, "--ignore-file", ignore(tmp_path, LEAK, EXPECT), "--format",
                 "markdown")
    assert result.stdout.startswith("### hopsim check: ✅ no findings (2 suppressed)")
    assert "**Suppressed** (accepted on purpose):" in result.stdout
    assert "Reason: the neighbour subnet is ours; SEC-123" in result.stdout


def test_junit_skips_a_suppressed_testcase_and_stays_valid(tmp_path):
    result = run("check", DRIFT, "--ignore-file", ignore(tmp_path, LEAK, EXPECT), "--format",
                 "junit")
    xmlschema.XMLSchema(SCHEMAS / "junit-10.xsd").validate(result.stdout)
    suite = ET.fromstring(result.stdout).find("testsuite")
    assert (suite.get("failures"), suite.get("skipped")) == ("0", "2")
    skipped = [c.find("skipped").get("message") for c in suite.iter("testcase")
               if c.find("skipped") is not None]
    assert skipped[0] == "suppressed: token-leak neighbour: the neighbour subnet is ours; SEC-123"


def test_an_expired_suppression_counts_again_with_a_note(tmp_path):
    result = run("check", DRIFT, "--ignore-file",
                 ignore(tmp_path, {**LEAK, "expires": "2020-01-01"}, EXPECT))
    assert result.exit_code == 1
    assert ("the suppression of token-leak gateway-drift neighbour expired on 2020-01-01: "
            "its findings fail the run again") in result.stderr


def test_a_suppression_that_matches_nothing_says_so(tmp_path):
    stale = {**LEAK, "principal": "app"}
    result = run("check", DRIFT, "--ignore-file", ignore(tmp_path, stale))
    assert result.exit_code == 1
    assert "the suppression of token-leak gateway-drift app matches no finding" in \
        result.stderr


def test_a_hop_limit_narrows_a_suppression(tmp_path):
    other = {**EXPECT, "hop_limit": 1}
    result = run("sweep", DRIFT, "--hop-limits", "1-2", "--ignore-file",
                 ignore(tmp_path, other))
    assert result.exit_code == 1  # the failed entry is at 2
    assert run("sweep", DRIFT, "--hop-limits", "1-2", "--ignore-file",
               ignore(tmp_path, EXPECT)).exit_code == 0


def test_the_default_file_in_the_current_folder_is_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run("check", DRIFT).exit_code == 1
    ignore(tmp_path, LEAK, EXPECT, name=DEFAULT_FILE)
    assert run("check", DRIFT).exit_code == 0


def _bridge_of(n: int) -> str:
    nodes = {"imds": {"kind": "imds"},
             "instance": {"kind": "host", "forwarding": True, "masquerade": True},
             "docker0": {"kind": "bridge"}}
    nodes |= {f"c{i:02}": {"kind": "container", "role": "workload"} for i in range(n)}
    links = [["imds", "instance"], ["instance", "docker0"]] + [
        ["docker0", f"c{i:02}"] for i in range(n)]
    return yaml.safe_dump({"name": "many", "description": "45 starved containers",
                           "imds": {"hop_limit": 1}, "nodes": nodes, "links": links})


@pytest.mark.parametrize("pattern,code", [("c*", 0), ("c0*", 1), (None, 0)])
def test_a_grouped_finding_is_suppressed_only_when_every_principal_it_stands_for_is(
        tmp_path, pattern, code):
    file = tmp_path / "many.yaml"
    file.write_text(_bridge_of(45))  # above 40: one grouped finding for 45 containers
    entry = {"rule": "starved-workload", "topology": "many", "reason": "test"}
    if pattern:
        entry["principal"] = pattern
    assert run("check", str(file), "--ignore-file", ignore(tmp_path, entry)).exit_code == code


def test_mistakes_in_the_ignore_file_are_bad_input_with_their_lines(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("suppress:\n  - rule: token-leek\n    topology: gateway-drift\n"
                    "    expires: soon\n")
    result = run("check", DRIFT, "--ignore-file", str(path))
    assert result.exit_code == 2
    assert (f"error: {path}:2: suppress.0.rule: unknown rule 'token-leek' (did you mean "
            "'token-leak'?)") in result.stderr
    assert f"error: {path}:2: suppress.0: missing required key 'reason'" in result.stderr
    assert (f"error: {path}:4: suppress.0.expires: expected a date such as 2026-06-30, got "
            "'soon'") in result.stderr


def test_a_file_that_is_not_a_list_of_suppressions_is_refused():
    with pytest.raises(TopologyError, match="expected a mapping with one key, suppress"):
        read(ROOT / "action.yml", RULES)

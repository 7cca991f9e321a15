"""SARIF 2.1.0: valid against the OASIS schema, one rule per finding type, each
result at the line and column of the offending key."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
from builders import ROOT
from ci_helpers import FIXTURES, SCHEMAS, position, run
from click.testing import CliRunner

from hopsim import check, load
from hopsim.cli import main
from hopsim.report import sarif
from hopsim.report.findings import RULES

SCHEMA = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())
VALIDATOR = jsonschema.Draft4Validator(SCHEMA)


def sarif_of(*args: str, monkeypatch) -> tuple[dict, int]:
    result = run(*args, "--format", "sarif", monkeypatch=monkeypatch)
    return json.loads(result.stdout), result.exit_code


def results(doc: dict) -> list[dict]:
    return doc["runs"][0]["results"]


def by_rule(doc: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in results(doc):
        out.setdefault(r["ruleId"], []).append(r)
    return out


def region(r: dict) -> tuple[int, int]:
    found = r["locations"][0]["physicalLocation"]["region"]
    return found["startLine"], found["startColumn"]


def test_the_vendored_schema_is_the_oasis_sarif_2_1_0_schema():
    jsonschema.Draft4Validator.check_schema(SCHEMA)
    assert SCHEMA["id"] == ("https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/"
                            "schemas/sarif-schema-2.1.0.json")
    assert SCHEMA["properties"]["version"]["enum"] == ["2.1.0"]


@pytest.mark.parametrize("args", [
    ("check",), ("sweep", "--hop-limits", "1-8"), ("check", FIXTURES),
    ("sweep", FIXTURES), ("check", f"{FIXTURES}/odd-names.yaml"),
], ids=" ".join)
def test_sarif_validates_against_the_schema(args, monkeypatch):
    doc, _ = sarif_of(*args, monkeypatch=monkeypatch)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(doc)]
    assert errors == []


def test_the_schema_check_is_live(monkeypatch):
    doc, _ = sarif_of("check", FIXTURES, monkeypatch=monkeypatch)
    broken = copy.deepcopy(doc)
    results(broken)[0]["locations"][0]["physicalLocation"]["region"]["startLine"] = 0
    assert not VALIDATOR.is_valid(broken)
    del broken["version"]
    assert not VALIDATOR.is_valid(broken)


def test_one_rule_per_finding_type_and_results_point_at_their_rule(monkeypatch):
    doc, _ = sarif_of("check", monkeypatch=monkeypatch)
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["token-leak", "imdsv1-credential-leak",
                                        "starved-workload", "failed-expectation", "bad-input"]
    assert len(rules) == len(RULES) + 1
    for r in results(doc):
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
    security = {r["id"] for r in rules if "security-severity" in r["properties"]}
    assert security == {"token-leak", "imdsv1-credential-leak"}


def test_check_of_the_bundled_topologies_reports_each_kind_of_leak(monkeypatch):
    doc, code = sarif_of("check", monkeypatch=monkeypatch)
    assert code == 1
    found = {(r["properties"]["topology"], r["properties"]["principal"]): r["ruleId"]
             for r in results(doc)}
    assert found[("docker-bridge", "app")] == "starved-workload"
    assert found[("nginx-reverse-proxy", "attacker")] == "token-leak"
    assert found[("ssrf-alb-optional", "attacker")] == "imdsv1-credential-leak"
    assert "failed-expectation" not in found.values()


def test_a_leak_is_located_at_the_attackers_key(monkeypatch):
    doc, _ = sarif_of("check", f"{FIXTURES}/gateway-drift.yaml", monkeypatch=monkeypatch)
    leak, = by_rule(doc)["token-leak"]
    file = f"{FIXTURES}/gateway-drift.yaml"
    location = leak["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": file, "uriBaseId": "%SRCROOT%"}
    assert region(leak) == position(file, "neighbour: {kind: client")
    assert leak["level"] == "error"
    assert leak["properties"]["outcome"] == "token"
    assert "hop limit 2" in leak["message"]["text"]


def test_a_failed_expectation_is_located_at_its_expect_entry(monkeypatch):
    doc, code = sarif_of("check", f"{FIXTURES}/gateway-drift.yaml", monkeypatch=monkeypatch)
    assert code == 1
    failed, = by_rule(doc)["failed-expectation"]
    file = f"{FIXTURES}/gateway-drift.yaml"
    assert region(failed) == position(file, "neighbour: none", after="2: {app: token")
    assert failed["properties"]["expected"] == "none"
    assert failed["properties"]["actual"] == "token"
    related = failed["relatedLocations"][0]["physicalLocation"]["region"]
    assert (related["startLine"], related["startColumn"]) == position(file, "neighbour: {kind")


def test_a_starved_workload_points_at_the_router_that_dropped_its_token(monkeypatch):
    doc, _ = sarif_of("check", "topologies/docker-bridge.yaml", monkeypatch=monkeypatch)
    starved, = by_rule(doc)["starved-workload"]
    file = "topologies/docker-bridge.yaml"
    assert region(starved) == position(file, "app:", after="nodes:")
    related = starved["relatedLocations"][0]
    assert "instance dropped the token response" in related["message"]["text"]
    where = related["physicalLocation"]["region"]
    assert (where["startLine"], where["startColumn"]) == position(file, "instance:",
                                                                   after="nodes:")


def test_sweep_reports_only_failed_expectations(monkeypatch):
    doc, code = sarif_of("sweep", monkeypatch=monkeypatch)
    assert code == 0
    assert results(doc) == []
    doc, code = sarif_of("sweep", f"{FIXTURES}/gateway-drift.yaml", monkeypatch=monkeypatch)
    assert code == 1
    assert [r["ruleId"] for r in results(doc)] == ["failed-expectation"]


def test_bad_input_is_a_located_tool_notification(monkeypatch):
    doc, code = sarif_of("check", FIXTURES, monkeypatch=monkeypatch)
    assert code == 2
    invocation = doc["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    note, = invocation["toolExecutionNotifications"]
    assert note["level"] == "error"
    assert "unknown kind 'routr'" in note["message"]["text"]
    where = note["locations"][0]["physicalLocation"]
    assert where["artifactLocation"]["uri"] == f"{FIXTURES}/typo.yaml"
    assert where["region"]["startLine"] == position(f"{FIXTURES}/typo.yaml", "routr")[0]


def test_bad_input_is_also_a_result_at_its_file_and_line_which_code_scanning_shows(
        monkeypatch):
    doc, _ = sarif_of("check", FIXTURES, monkeypatch=monkeypatch)
    bad, = by_rule(doc)["bad-input"]
    assert bad["level"] == "error"
    assert "unknown kind 'routr'" in bad["message"]["text"]
    where = bad["locations"][0]["physicalLocation"]
    assert where["artifactLocation"] == {"uri": f"{FIXTURES}/typo.yaml",
                                         "uriBaseId": "%SRCROOT%"}
    assert where["region"]["startLine"] == position(f"{FIXTURES}/typo.yaml", "routr")[0]
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    assert rules[bad["ruleIndex"]]["id"] == "bad-input"
    # the findings of the good files are still there
    assert {"token-leak", "failed-expectation"} <= set(by_rule(doc))


def test_paths_are_relative_to_the_repository_root_wherever_hopsim_runs(monkeypatch):
    monkeypatch.chdir(ROOT / "topologies")
    result = CliRunner().invoke(main, ["check", "docker-bridge.yaml", "--format", "sarif"],
                                env={"NO_COLOR": "1"})
    uri = results(json.loads(result.stdout))[0]["locations"][0]["physicalLocation"][
        "artifactLocation"]
    assert uri == {"uri": "topologies/docker-bridge.yaml", "uriBaseId": "%SRCROOT%"}


def test_absolute_paths_are_made_relative_to_their_repository_and_odd_names_quoted():
    topology = load(ROOT / FIXTURES / "odd-names.yaml")
    doc = json.loads(sarif.document("check", [check(topology)], []))
    uri = results(doc)[0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert uri == {"uri": f"{FIXTURES}/odd-names.yaml", "uriBaseId": "%SRCROOT%"}
    assert sarif.artifact("my designs/a b.yaml")["uri"].endswith("my%20designs/a%20b.yaml")


def test_a_file_outside_any_repository_and_the_current_folder_is_a_file_uri(tmp_path,
                                                                          monkeypatch):
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    assert sarif.artifact(str(tmp_path / "there.yaml")) == {
        "uri": (tmp_path / "there.yaml").as_uri()}
    assert sarif.artifact("a.yaml") == {"uri": "a.yaml", "uriBaseId": "%SRCROOT%"}


def test_fingerprints_are_stable_and_distinct(monkeypatch):
    first, _ = sarif_of("check", monkeypatch=monkeypatch)
    again, _ = sarif_of("check", monkeypatch=monkeypatch)
    assert first == again
    prints = [r["partialFingerprints"]["hopsimFinding/v1"] for r in results(first)]
    assert len(set(prints)) == len(prints)


def test_the_exit_code_shortcut_agrees_with_the_findings_on_every_bundled_topology():
    """findings.fails (what sets the exit code, counted) == bool(findings.of_run)
    (every finding made), for check and sweep, at configured and swept limits."""
    from builders import TOPOLOGIES, make

    from hopsim import analysis
    from hopsim.loader import load
    from hopsim.report import findings

    wrong = make({"imds": {"kind": "imds"}, "host": {"kind": "host", "role": "workload"}},
                 [["imds", "host"]], expect={1: {"host": "none"}})  # it gets a token
    seen = set()
    for topology in [*(load(p) for p in sorted(TOPOLOGIES.glob("*.yaml"))), wrong]:
        path = topology.file
        for report in (analysis.check(topology), analysis.sweep(topology, [1, 2, 3])):
            for command in ("check", "sweep"):
                fails = findings.fails([report], command)
                assert fails == bool(findings.of_run([report], command)), (path.name, command)
                seen.add((command, fails))
    assert seen == {("check", True), ("check", False), ("sweep", True), ("sweep", False)}

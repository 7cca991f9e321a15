"""JUnit XML: valid for Jenkins' XSD, parsed back with ElementTree: a testsuite
per topology, a testcase per hop limit and per expect entry, failures that
carry the principal, outcome and reason."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import xmlschema
from builders import ROOT, TOPOLOGIES
from ci_helpers import FIXTURES, SCHEMAS, run

from hopsim import load, sweep
from hopsim.report import junit

XSD = xmlschema.XMLSchema(SCHEMAS / "junit-10.xsd")


def junit_of(*args: str, monkeypatch) -> tuple[str, int]:
    result = run(*args, "--format", "junit", monkeypatch=monkeypatch)
    return result.stdout, result.exit_code


def suites(xml: str) -> dict[str, ET.Element]:
    root = ET.fromstring(xml)
    assert root.tag == "testsuites"
    return {s.get("name"): s for s in root.findall("testsuite")}


@pytest.mark.parametrize("args", [
    ("check",), ("sweep", "--hop-limits", "1-8"), ("check", FIXTURES), ("sweep", FIXTURES),
], ids=" ".join)
def test_junit_validates_against_jenkins_xsd(args, monkeypatch):
    xml, _ = junit_of(*args, monkeypatch=monkeypatch)
    XSD.validate(xml)


def test_the_xsd_check_is_live():
    bad = '<testsuites><testsuite name="x"><testcase name="y"/></testsuite></testsuites>'
    assert not XSD.is_valid(bad)  # tests, failures and errors are required


def test_a_testsuite_per_topology_and_a_testcase_per_hop_limit_and_expect_entry(monkeypatch):
    xml, code = junit_of("sweep", "--hop-limits", "1-4", monkeypatch=monkeypatch)
    assert code == 0
    found = suites(xml)
    assert len(found) == len(list(TOPOLOGIES.rglob("*.yaml")))
    suite = found["docker-bridge"]
    names = [c.get("name") for c in suite.findall("testcase")]
    assert names[:4] == ["hop limit 1", "hop limit 2", "hop limit 3", "hop limit 4"]
    assert "expect at hop limit 2: app gets token" in names
    assert len(names) == 4 + 9 == int(suite.get("tests"))
    assert {c.get("classname") for c in suite.findall("testcase")} == {"hopsim.docker-bridge"}
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["recommended_hop_limit"] == "2"
    assert properties["file"] == "topologies/docker-bridge.yaml"


def test_sweep_fails_only_expect_entries(monkeypatch):
    xml, _ = junit_of("sweep", monkeypatch=monkeypatch)
    root = ET.fromstring(xml)
    assert root.get("failures") == "0"  # the leaky lessons still pass, as the exit code says
    leaky = suites(xml)["nginx-reverse-proxy"].find("testcase[@name='hop limit 1']")
    assert "verdict: leak" in leaky.findtext("system-out")
    xml, code = junit_of("sweep", f"{FIXTURES}/gateway-drift.yaml", monkeypatch=monkeypatch)
    assert code == 1
    failures = ET.fromstring(xml).findall(".//failure")
    assert [f.get("type") for f in failures] == ["failed-expectation"]


def test_check_failures_carry_principal_outcome_and_reason(monkeypatch):
    xml, code = junit_of("check", "topologies/docker-bridge.yaml",
                         "topologies/ssrf-alb-optional.yaml", monkeypatch=monkeypatch)
    assert code == 1
    found = suites(xml)
    failure = found["docker-bridge"].find("testcase[@name='hop limit 1']/failure")
    assert failure.get("type") == "broken"
    assert failure.get("message") == "broken: app has no token"
    assert "principal: app\nrole: workload\noutcome: none\n" in failure.text
    assert "reason: token response dropped at instance: TTL exceeded" in failure.text
    assert "dropped_at: instance" in failure.text
    failure = found["ssrf-alb-optional"].find("testcase[@name='hop limit 1']/failure")
    assert failure.get("type") == "leak"
    assert "imdsv1-credential-leak" in failure.text
    assert "outcome: credentials" in failure.text


def test_a_failed_expect_entry_names_its_line_and_the_outcome(monkeypatch):
    xml, _ = junit_of("check", f"{FIXTURES}/gateway-drift.yaml", monkeypatch=monkeypatch)
    suite = suites(xml)["gateway-drift"]
    assert (suite.get("tests"), suite.get("failures")) == ("5", "2")
    case = suite.find("testcase[@name='expect at hop limit 2: neighbour gets none']")
    failure = case.find("failure")
    assert failure.get("message") == "at hop limit 2 neighbour expected none, got token"
    assert f"where: {FIXTURES}/gateway-drift.yaml:26" in failure.text
    assert "reason: token arrived across 1 router" in failure.text


def test_a_failed_expect_entry_outside_the_run_says_how_to_see_why(monkeypatch):
    monkeypatch.chdir(ROOT)
    topology = load("tests/fixtures/ci/gateway-drift.yaml")
    root = ET.fromstring(junit.document("sweep", [sweep(topology, [3])], []))
    failure = root.find(".//testcase[@name='expect at hop limit 2: neighbour gets none']/failure")
    assert "why: hopsim trace tests/fixtures/ci/gateway-drift.yaml --from neighbour " \
           "--hop-limit 2" in failure.text


def test_bad_input_is_a_failing_testsuite_for_its_file(monkeypatch):
    xml, code = junit_of("check", FIXTURES, monkeypatch=monkeypatch)
    assert code == 2
    suite = suites(xml)[f"{FIXTURES}/typo.yaml"]
    failure = suite.find("testcase/failure")
    assert failure.get("type") == "bad-input"
    assert "unknown kind 'routr'" in failure.get("message")
    root = ET.fromstring(xml)
    assert int(root.get("tests")) == sum(int(s.get("tests")) for s in root.findall("testsuite"))
    assert int(root.get("failures")) == sum(int(s.get("failures"))
                                            for s in root.findall("testsuite"))


def test_names_with_markup_survive_the_round_trip(monkeypatch):
    xml, _ = junit_of("check", f"{FIXTURES}/odd-names.yaml", monkeypatch=monkeypatch)
    suite = suites(xml)["odd|names*<x>"]
    assert "principal: pod|`x`" in suite.find(".//failure").text
    assert "dropped_at: host&<1>" in suite.find(".//failure").text


def test_control_characters_cannot_make_the_xml_invalid():
    assert junit._text("a\x00b\x1bc") == "a\ufffdb\ufffdc"

"""The hopsim command: output, formats, what-if options and exit codes."""

from __future__ import annotations

import json
import re

import pytest
from builders import ROOT, TOPOLOGIES
from click.testing import CliRunner

from hopsim.cli import main
from hopsim.cli.options import parse_hop_limits

GOLDEN = ROOT / "tests" / "golden"
PLAIN = {"NO_COLOR": "1", "COLUMNS": "80", "FORCE_COLOR": None, "TERM": "dumb"}
ANSI_COLOR = re.compile(r"\x1b\[[0-9;]*3[0-7]m|\x1b\[[0-9;]*38;")


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, list(args), env={**PLAIN, **(env or {})})


def topo(name: str) -> str:
    return str(TOPOLOGIES / f"{name}.yaml")


# --- trace --------------------------------------------------------------------


@pytest.mark.parametrize("hop_limit", [1, 2])
def test_trace_of_docker_bridge_matches_the_checked_golden_file(hop_limit):
    # Checked by hand against docs/facts.md: the token leaves IMDS with TTL =
    # hop limit, the instance routes (-1) and masquerades, docker0 is L2; at 1
    # the instance drops it and sends ICMP 11/0, the app times out and its
    # IMDSv1 GET gets 401; at 2 it arrives with TTL 1.
    result = run("trace", topo("docker-bridge"), "--from", "app", "--hop-limit", str(hop_limit))
    assert result.exit_code == 0, result.output
    golden = (GOLDEN / f"trace-docker-bridge-app-h{hop_limit}.txt").read_text()
    assert result.output == golden


def test_trace_writes_a_pcap(tmp_path):
    out = tmp_path / "app.pcap"
    result = run("trace", topo("docker-bridge"), "--from", "app", "--pcap", str(out))
    assert result.exit_code == 0
    assert out.stat().st_size > 0
    assert f"wrote 15 packets to {out}" in result.output


def test_trace_of_an_unknown_principal_is_bad_input_with_a_suggestion():
    result = run("trace", topo("docker-bridge"), "--from", "ap")
    assert result.exit_code == 2
    assert "no principal 'ap'" in result.output
    assert "did you mean 'app'" in result.output


def test_trace_ipv6_family_option_uses_the_ipv6_endpoint():
    result = run("trace", topo("eks-ipv6-pod"), "--from", "pod", "--family", "6")
    assert result.exit_code == 0
    assert "(IPv6)" in result.output
    assert "fd00:ec2::254" in result.output


# --- check ----------------------------------------------------------------------


def test_check_exits_1_when_a_workload_is_starved():
    result = run("check", topo("docker-bridge"))  # configured hop limit 1
    assert result.exit_code == 1
    assert "at hop limit 1: broken" in result.output


def test_a_long_path_never_splits_the_verdict_from_its_heading(tmp_path):
    # CI clones live in deep directories: the verdict must stay on the heading's
    # line at 80 columns; only the path, which comes last, may wrap.
    deep = tmp_path / ("a-rather-long-directory-name/" * 4)
    deep.mkdir(parents=True)
    copy = deep / "docker-bridge.yaml"
    copy.write_text((TOPOLOGIES / "docker-bridge.yaml").read_text())
    result = run("check", str(copy))
    assert result.output.splitlines()[0].startswith("docker-bridge at hop limit 1: broken"), \
        result.output


def test_check_exits_0_when_the_what_if_hop_limit_fixes_it():
    result = run("check", topo("docker-bridge"), "--hop-limit", "2")
    assert result.exit_code == 0, result.output
    assert "at hop limit 2: ok" in result.output


def test_check_exits_1_on_a_leak():
    result = run("check", topo("nginx-reverse-proxy"))
    assert result.exit_code == 1
    assert ": leak" in result.output


def test_set_option_changes_one_node_key():
    # nginx adding X-Forwarded-For: IMDS refuses the PUT, the leak is closed.
    result = run("check", topo("nginx-reverse-proxy"), "--set", "nginx.adds_xff=true",
                 env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "X-Forwarded-For added by" in result.output
    # The file's expect entries describe nginx as written, so they are skipped.
    assert "expect entries are not checked" in result.stderr


def test_http_tokens_option_reopens_imdsv1():
    result = run("check", topo("ssrf-alb-required"), "--http-tokens", "optional")
    assert result.exit_code == 1
    assert "credentials" in result.output


def test_set_without_a_key_is_a_usage_error():
    result = run("check", topo("nginx-reverse-proxy"), "--set", "nginx=1")
    assert result.exit_code == 2
    assert "NODE.KEY=VALUE" in result.output


def test_check_json_carries_the_documented_fields():
    result = run("check", topo("docker-bridge"), "--format", "json")
    doc = json.loads(result.stdout)
    t = doc["topologies"][0]
    assert (t["name"], t["file"]) == ("docker-bridge", topo("docker-bridge"))
    assert t["recommended_hop_limit"] == 2
    (r,) = t["results"]
    assert (r["hop_limit"], r["verdict"]) == (1, "broken")
    app = next(g for g in t["groups"] if g["members"] == ["app"])
    assert app == {**app, "role": "workload", "principals": 1, "replicas": 1}
    (at_1,) = app["outcomes"]
    assert at_1 == {**at_1, "node": "app", "outcome": "none", "dropped_at": "instance"}
    assert at_1["reason"]
    assert {"hop_limit": 1, "node": "app", "expected": "none", "actual": "none",
            "passed": True} in r["expectations"]
    assert doc["errors"] == []


def test_check_json_with_all_principals_keeps_schema_1():
    doc = json.loads(run("check", topo("docker-bridge"), "--format", "json",
                         "--all-principals").stdout)
    assert doc["schema"] == 1
    (r,) = doc["topologies"][0]["results"]
    app = next(p for p in r["principals"] if p["node"] == "app")
    assert app == {**app, "role": "workload", "outcome": "none", "dropped_at": "instance"}
    assert "groups" not in doc["topologies"][0]


def test_all_principals_without_json_would_do_nothing_and_is_refused():
    result = run("check", topo("docker-bridge"), "--all-principals")
    assert result.exit_code == 2
    assert "--all-principals does nothing without JSON" in result.output


# --- sweep ----------------------------------------------------------------------


def test_sweep_over_the_bundled_topologies_exits_0():
    result = run("sweep")
    assert result.exit_code == 0, result.output
    assert re.search(r"^expectations: \d+ passed, 0 failed$", result.output, re.M)


def test_sweep_matrix_and_recommendation_for_docker_in_docker():
    result = run("sweep", topo("docker-in-docker"), "--hop-limits", "1-3", "--format", "json")
    t = json.loads(result.stdout)["topologies"][0]
    assert [(r["hop_limit"], r["verdict"]) for r in t["results"]] == [
        (1, "broken"), (2, "broken"), (3, "ok")]  # [O] Docker-in-Docker needs 3
    assert t["recommended_hop_limit"] == 3


def test_sweep_says_why_no_hop_limit_works():
    result = run("sweep", topo("reverse-proxy-in-container"), "--format", "json")
    t = json.loads(result.stdout)["topologies"][0]
    assert t["recommended_hop_limit"] is None
    assert t["recommendation"].startswith("no hop limit works: broken up to 1")


def test_sweep_exits_1_only_when_an_expectation_fails(tmp_path):
    text = (TOPOLOGIES / "docker-bridge.yaml").read_text().replace(
        "1: {instance: token, sidecar: token, app: none}",
        "1: {instance: token, sidecar: token, app: token}")
    (tmp_path / "docker-bridge.yaml").write_text(text)
    result = run("sweep", str(tmp_path / "docker-bridge.yaml"))
    assert result.exit_code == 1
    assert "at hop limit 1 app expected token, got none" in result.output


def test_sweep_checks_expectations_outside_the_swept_range(tmp_path):
    text = (TOPOLOGIES / "docker-bridge.yaml").read_text().replace(
        "3: {instance: token, sidecar: token, app: token}",
        "3: {instance: token, sidecar: token, app: none}")
    (tmp_path / "docker-bridge.yaml").write_text(text)
    result = run("sweep", str(tmp_path / "docker-bridge.yaml"), "--hop-limits", "1-2")
    assert result.exit_code == 1


@pytest.mark.parametrize("bad", ["0-3", "1-65", "3-1", "x", "1,,2"])
def test_bad_hop_limit_ranges_are_usage_errors(bad):
    result = run("sweep", "--hop-limits", bad)
    assert result.exit_code == 2


def test_hop_limit_ranges_parse():
    assert parse_hop_limits("1-3,8") == [1, 2, 3, 8]
    assert parse_hop_limits("2") == [2]


# --- output for people and CI -----------------------------------------------------


@pytest.mark.parametrize("command", [["check"], ["sweep"], ["show", topo("docker-bridge")],
                                     ["trace", topo("open-router"), "--from", "attacker"]])
def test_plain_output_fits_80_columns(command):
    result = run(*command)
    assert result.output.strip()
    assert max(len(line) for line in result.output.splitlines()) <= 80


def test_no_color_is_honoured_even_on_a_forced_terminal():
    coloured = run("sweep", env={"NO_COLOR": None, "FORCE_COLOR": "1", "TERM": "xterm"})
    assert ANSI_COLOR.search(coloured.output)  # the check below could fail
    plain = run("sweep", env={"NO_COLOR": "1", "FORCE_COLOR": "1", "TERM": "xterm"})
    assert not ANSI_COLOR.search(plain.output)


def test_validate_lists_every_bundled_file():
    result = run("validate")
    assert result.exit_code == 0
    files = sorted(TOPOLOGIES.rglob("*.yaml"))
    assert len(result.output.splitlines()) == len(files)
    assert all(line.startswith("ok: ") for line in result.output.splitlines())


def test_show_lists_each_principals_route():
    result = run("show", topo("reverse-proxy-in-container"), env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "instance -> docker0 -> nginx -> docker0 -> instance -> imds" in result.output
    assert "10.0.0." in result.output


def test_names_with_brackets_are_printed_not_read_as_markup():
    # rich would swallow "[webapp]" as a style tag if markup were on.
    result = run("show", topo("ssrf-alb-required"), env={"COLUMNS": "200"})
    assert "attacker -> alb -> instance[webapp] -> imds" in result.output


def test_sweep_of_many_hop_limits_writes_runs_of_verdicts():
    result = run("sweep", topo("router-two-hops"), "--hop-limits", "1-64")
    assert result.exit_code == 0
    # Hand-derived: the app needs 2 (1 router), the attacker gets it from 3 (2 routers).
    assert "broken 1, ok 2, leak 3-64" in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80

"""What CI users expect of a command line: -q, --color/--no-color and NO_COLOR,
--format json on every view, and exit codes that each command states."""

from __future__ import annotations

import io
import json

import pytest
from builders import TOPOLOGIES
from click.testing import CliRunner

from hopsim.cli import main
from hopsim.report import table

PLAIN = {"NO_COLOR": "1", "COLUMNS": "80", "FORCE_COLOR": None, "TERM": "dumb"}
ESCAPE = "\x1b["
BRIDGE = str(TOPOLOGIES / "docker-bridge.yaml")


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, list(args), env={**PLAIN, **(env or {})})


# --- colour ------------------------------------------------------------------------


def test_no_color_leaves_no_escape_code_at_all_not_even_bold():
    # FORCE_COLOR makes rich treat the output as a terminal; NO_COLOR must
    # still turn every style off (rich's own NO_COLOR keeps bold).
    result = run("check", BRIDGE, env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert result.exit_code == 1
    assert ESCAPE not in result.output
    buffer = io.StringIO()
    table.console(buffer, force_terminal=True, color=False).print(
        table.verdict_text(table.Verdict.LEAK))
    assert buffer.getvalue() == "leak\n"


@pytest.mark.parametrize("command", [["check", BRIDGE], ["sweep", BRIDGE],
                                     ["trace", BRIDGE, "--from", "app"], ["show", BRIDGE],
                                     ["explain", BRIDGE], ["demo", "--auto", "--delay", "0"]])
def test_color_and_no_color_on_every_command_that_styles(command):
    coloured = run(*command, "--color", env={"NO_COLOR": None})
    assert ESCAPE in coloured.output
    plain = run(*command, "--no-color", env={"NO_COLOR": None, "FORCE_COLOR": "1"})
    assert ESCAPE not in plain.output
    assert plain.exit_code == coloured.exit_code


# --- quiet -------------------------------------------------------------------------


def test_quiet_check_prints_errors_only_and_keeps_the_exit_code(tmp_path):
    sarif = tmp_path / "x.sarif"
    result = run("check", BRIDGE, str(tmp_path / "missing.yaml"), "-q",
                 "--output", f"sarif:{sarif}", "--set", "app.role=workload")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: {tmp_path}/missing.yaml: cannot read: No such file or directory"]
    assert json.loads(sarif.read_text())["runs"][0]["results"]


def test_quiet_still_prints_a_machine_format_asked_for():
    result = run("check", BRIDGE, "-q", "--format", "json")
    assert json.loads(result.stdout)["command"] == "check"
    assert result.exit_code == 1


@pytest.mark.parametrize("command", [["sweep", BRIDGE], ["validate", BRIDGE],
                                     ["trace", BRIDGE, "--from", "app"]])
def test_quiet_on_other_commands(command):
    result = run(*command, "--quiet")
    assert result.output == ""
    assert result.exit_code == 0


def test_quiet_skips_notes(tmp_path):
    (tmp_path / "plan.json").write_text("{}")
    (tmp_path / "a.yaml").write_text((TOPOLOGIES / "host-process.yaml").read_text())
    assert "note:" in run("check", str(tmp_path)).stderr
    assert run("check", str(tmp_path), "-q").stderr == ""


# --- --format json on the views ------------------------------------------------------


def test_validate_json():
    result = run("validate", BRIDGE, str(TOPOLOGIES / "nope.yaml"), "--format", "json")
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["command"] == "validate"
    assert doc["topologies"] == [{"file": BRIDGE, "links": 3, "name": "docker-bridge",
                                  "nodes": 5, "principals": 3, "stands_for": 5}]
    assert doc["errors"][0]["message"] == "cannot read: No such file or directory"


def test_show_json_has_nodes_links_routes_and_markers():
    doc = json.loads(run("show", BRIDGE, "--format", "json").stdout)["topology"]
    assert [n["name"] for n in doc["nodes"]] == ["app", "docker0", "imds", "instance",
                                                  "sidecar"]
    assert doc["links"] == [["imds", "instance"], ["instance", "docker0"], ["docker0", "app"]]
    app = next(r for r in doc["routes"] if r["principal"] == "app")
    assert [(s["node"], s["role"]) for s in app["stations"]] == [
        ("app", "origin"), ("docker0", "bridge"), ("instance", "route"), ("imds", "imds")]
    assert doc["markers"]["C"] == "confirmed in a primary source"


def test_trace_json_holds_every_hop_and_the_outcome():
    # docs/facts.md: the token leaves IMDS with TTL = hop limit 1 and the
    # instance, a router, drops it (ICMP 11/0).
    doc = json.loads(run("trace", BRIDGE, "--from", "app", "--format", "json").stdout)
    token = [h for h in doc["hops"] if h["message"] == "200 OK (token)"]
    assert [(h["node"], h["action"], h["ttl_in"], h["ttl_out"]) for h in token[:2]] == [
        ("imds", "sent", None, 1), ("instance", "dropped", 1, None)]
    assert doc["outcome"]["outcome"] == "none"
    assert doc["outcome"]["dropped_at"] == "instance"


def test_explain_json_gives_fixes_as_options():
    doc = json.loads(run("explain", BRIDGE, "--from", "app", "--format", "json").stdout)
    (app,) = doc["principals"]
    assert (app["node"], app["finding"]) == ("app", "starved")
    assert [(f["option"], f["outcome"]) for f in app["fixes"]] == [("--hop-limit 2", "token")]


def test_trace_json_with_a_pcap_keeps_stdout_json(tmp_path):
    result = run("trace", BRIDGE, "--from", "app", "--format", "json", "--pcap",
                 str(tmp_path / "x.pcap"))
    assert json.loads(result.stdout)["command"] == "trace"
    assert "wrote 15 packets" in result.stderr


# --- exit codes, stated by each command ----------------------------------------------


COMMANDS = ["check", "sweep", "trace", "explain", "show", "validate", "draw", "demo",
            "emulate", "verify", "schema", "import terraform", "import ec2", "generate fleet"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_states_its_exit_codes(command):
    text = " ".join(run(*command.split(), "--help").output.split())
    assert "Exit code" in text, command


@pytest.mark.parametrize("command", ["trace", "explain"])
def test_trace_and_explain_say_why_they_exit_0_on_a_leak(command):
    text = " ".join(run(command, "--help").output.split())
    assert "0 whatever the outcome" in text
    assert "check judges" in text
    args = [str(TOPOLOGIES / "nginx-reverse-proxy.yaml"), "--from", "attacker"]
    assert run(command, *args).exit_code == 0  # a leak, shown
    assert run("check", args[0]).exit_code == 1  # and judged

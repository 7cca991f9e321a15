"""hopsim diff: the principals whose outcome changes between two designs.

Expected changes derived by hand: docker-bridge's app crosses one router
(the instance), so it gets its token from hop limit 2 (docs/facts.md); the
DOCKER-USER rule drops it at any hop limit.
"""

from __future__ import annotations

import json

from builders import TOPOLOGIES
from click.testing import CliRunner

from hopsim.cli import main

PLAIN = {"NO_COLOR": "1", "COLUMNS": "80", "FORCE_COLOR": None, "TERM": "dumb"}
BRIDGE = str(TOPOLOGIES / "docker-bridge.yaml")
DOCKER_USER = "instance.filters=[{chain: forward, to: imds, action: drop}]"


def run(*args: str):
    return CliRunner().invoke(main, ["diff", *args], env=PLAIN)


def test_raising_the_hop_limit_fixes_the_bridged_container_and_exits_1():
    result = run(BRIDGE, "--then-hop-limit", "2")
    assert result.exit_code == 1, result.output
    assert "app (workload): none -> token (fixed)" in result.output
    assert "instance" not in result.output.split("\n", 1)[1]  # unchanged: not listed


def test_the_docker_user_rule_breaks_the_workload_in_json():
    result = run(BRIDGE, "--hop-limit", "2", "--then-set", DOCKER_USER, "--format", "json")
    assert result.exit_code == 1
    doc = json.loads(result.output[result.output.index("{"):])
    assert (doc["before"]["verdict"], doc["after"]["verdict"]) == ("ok", "broken")
    assert [(c["principal"], c["before"], c["after"], c["effect"]) for c in doc["changes"]] == [
        ("app", "token", "none", "broke")]


def test_markdown_is_a_table_a_pr_comment_can_hold():
    result = run(BRIDGE, "--then-hop-limit", "2", "--format", "markdown")
    lines = result.output.splitlines()
    assert "| app | workload | none | token | fixed |" in "\n".join(lines)
    assert "Verdict: **broken** → **ok**" in lines


def test_two_files_and_no_change_exit_0():
    result = run(BRIDGE, BRIDGE, "--then-http-tokens", "required")
    assert result.exit_code == 0 and "no principal changes" in result.output


def test_one_file_without_a_what_if_is_a_usage_error():
    assert run(BRIDGE).exit_code == 2


def test_a_bad_then_set_is_bad_input():
    result = run(BRIDGE, "--then-set", "instance.filters=[{chain: sideways, action: drop}]")
    assert result.exit_code == 2
    assert "--set instance.filters" in result.output and "sideways" in result.output

"""hopsim demo: the guided show, its steps, its lesson and its pacing."""

from __future__ import annotations

import io

import pytest
from builders import ROOT, TOPOLOGIES
from click.testing import CliRunner
from rich.console import Console

from hopsim import lesson as teaching
from hopsim.cli import main
from hopsim.engine import Action
from hopsim.loader import load
from hopsim.outcome import Access
from hopsim.report import player as show

GOLDEN = ROOT / "tests" / "golden"
PLAIN = {"NO_COLOR": "1", "COLUMNS": "80", "FORCE_COLOR": None, "TERM": "dumb"}
FILES = sorted(TOPOLOGIES.glob("*.yaml"))


def run(*args: str):
    return CliRunner().invoke(main, list(args), env=PLAIN)


def test_auto_demo_of_docker_bridge_matches_the_checked_golden_file():
    # Checked by hand against docs/facts.md: the PUT leaves with TTL 64 and the
    # instance routes it (-1); the token leaves IMDS with TTL = hop limit; at 1
    # the instance (a router) drops it and sends ICMP 11/0 back to IMDS, the app
    # times out and its IMDSv1 GET gets 401, back with TTL 64; at 2 the instance
    # takes it to 1, docker0 (L2) leaves it, and local delivery accepts TTL 1.
    # One router: hop limit 2, as AWS recommends for bridged containers.
    result = run("demo", "--auto", "--delay", "0")
    assert result.exit_code == 0, result.output
    assert result.output == (GOLDEN / "demo-docker-bridge.txt").read_text()


def test_without_a_terminal_the_show_is_plain_text_and_does_not_wait():
    result = run("demo", "docker-bridge")
    assert result.exit_code == 0
    assert "\x1b" not in result.output
    assert result.output == (GOLDEN / "demo-docker-bridge.txt").read_text()
    assert all(ord(c) < 128 for c in result.output)


def test_auto_waits_the_delay_between_steps(monkeypatch):
    waits = []
    monkeypatch.setattr(show.time, "sleep", waits.append)
    result = run("demo", "open-router", "--auto", "--delay", "0.5")
    assert result.exit_code == 0
    steps = teaching.build(load(TOPOLOGIES / "open-router.yaml")).steps
    assert waits == [0.5] * (len(steps) - 1)


def test_on_a_terminal_steps_wait_for_enter(monkeypatch):
    out = Console(file=io.StringIO(), force_terminal=True, width=80, color_system="standard")
    answers = iter(["", ""])

    def enter(*_):
        try:
            return next(answers)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr("builtins.input", enter)
    wait = show.enter(out)
    for _ in range(3):  # the last one meets end of input: it goes on
        wait()
    text = out.file.getvalue()
    assert text.count("press Enter") == 3
    assert text.count("\x1b[1A\x1b[2K") == 3  # each prompt wiped


def test_on_a_terminal_the_path_is_drawn_in_colour():
    out = Console(file=io.StringIO(), force_terminal=True, width=80, color_system="standard")
    demo = teaching.build(load(TOPOLOGIES / "docker-bridge.yaml"))
    show.present(out, demo, lambda: None)
    text = out.file.getvalue()
    assert "──TTL 2──▶" in text
    assert "\x1b[" in text


@pytest.mark.parametrize("file", FILES, ids=[f.stem for f in FILES])
def test_every_bundled_topology_can_be_played(file):
    topology = load(file)
    demo = teaching.build(topology)
    beats = [s.beat for s in demo.steps]
    assert beats[0] is teaching.Beat.SCENE and beats[-1] is teaching.Beat.LESSON
    assert beats.count(teaching.Beat.ACT) == 2
    assert beats.count(teaching.Beat.OUTCOME) == 2
    assert demo.principal in demo.steps[-1].caption
    for step in demo.steps:
        assert "None" not in step.caption and step.caption.strip()
        if step.strip is not None:  # the packet is on its path, the links behind it
            at, ttls = step.strip.at, step.strip.ttls  # crossed (from where it started)
            assert 0 <= at < len(step.strip.stations)
            crossed = [i for i, ttl in enumerate(ttls) if ttl is not None]
            assert crossed == list(range(crossed[0], at)) if crossed else True
    result = run("demo", topology.name, "--auto", "--delay", "0")
    assert result.exit_code == 0, result.output


def test_a_drop_step_names_the_router_and_the_icmp():
    demo = teaching.build(load(TOPOLOGIES / "docker-in-docker.yaml"))
    drops = [s for s in demo.steps if s.action is Action.DROP]
    assert [s.hop_limit for s in drops] == [1, 2]
    assert "instance must route the token, but its TTL is 1" in drops[0].caption
    assert "dind must route the token, but its TTL is 1" in drops[1].caption
    assert all("ICMP Time Exceeded 11/0 back to" in s.caption for s in drops)


@pytest.mark.parametrize("name,principal", [
    ("docker-bridge", "app"),  # a workload the hop limit changes
    ("docker-in-docker", "job"),  # ... even when 3 is what changes it
    ("eks-untrusted-pod", "untrusted-pod"),  # no such workload: the attacker
    ("open-router", "attacker"),
    ("host-process", "app"),  # no workload changes, no attacker: the first
])
def test_the_show_follows_a_principal_the_hop_limit_matters_to(name, principal):
    assert teaching.choose_principal(load(TOPOLOGIES / f"{name}.yaml")) == principal


@pytest.mark.parametrize("name,principal,phrases", [
    ("open-router", None, ["At hop limit 1 attacker gets nothing; at 2 it gets a token "
                           "(a leak).", "So only hop limit 1 keeps attacker out.",
                           "hopsim recommends hop limit 1"]),
    ("docker-in-docker", None, ["at 1 the token dies at instance, at 2 at dind",
                                "needs hop limit 3 or more", "are bridges"]),
    ("nginx-reverse-proxy", None, ["makes no difference to it", "nginx is an L7 relay",
                                   "What would fix it: make nginx add X-Forwarded-For",
                                   "finds no right hop limit"]),
    ("open-waf", None, ["What keeps the token from attacker is the PUT requirement"]),
    ("ssrf-alb-optional", None, ["But IMDSv1 is on", "--http-tokens required"]),
    ("reverse-proxy-in-container", "attacker", ["on its way to nginx",
                                                "re-sends the token with a fresh TTL of 64"]),
])
def test_the_lesson_comes_from_the_outcomes(name, principal, phrases):
    lesson = teaching.build(load(TOPOLOGIES / f"{name}.yaml"), principal).steps[-1].caption
    for phrase in phrases:
        assert phrase in lesson


def test_outcome_steps_hold_what_the_engine_found():
    demo = teaching.build(load(TOPOLOGIES / "docker-bridge.yaml"))
    outcomes = [s for s in demo.steps if s.beat is teaching.Beat.OUTCOME]
    assert [(s.hop_limit, s.access) for s in outcomes] == [(1, Access.NONE), (2, Access.TOKEN)]


def test_list_shows_every_bundled_scenario_on_one_line():
    result = run("demo", "--list")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    bundled = TOPOLOGIES.rglob("*.yaml")
    assert [line.split()[0] for line in lines] == sorted(load(f).name for f in bundled)
    docker = next(line for line in lines if line.startswith("docker-bridge "))
    assert "teaches why AWS recommends hop limit 2 for Docker bridge containers " \
        "(follows app, workload)" in docker


def test_a_topology_file_can_be_played_and_a_principal_chosen():
    result = run("demo", str(TOPOLOGIES / "reverse-proxy-in-container.yaml"), "--from",
                 "attacker", "--auto", "--delay", "0")
    assert result.exit_code == 0
    assert "We follow attacker (client, attacker)" in result.output


def test_an_unknown_scenario_or_principal_is_bad_input():
    result = run("demo", "docker-brige")
    assert result.exit_code == 2
    assert "no scenario 'docker-brige' (did you mean 'docker-bridge'?)" in result.output
    result = run("demo", "docker-bridge", "--from", "ap")
    assert result.exit_code == 2 and "did you mean 'app'" in result.output

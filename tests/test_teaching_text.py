"""What explain and demo teach: a fix never loosens a control or lets someone
else in; when no single change fixes a principal they say so; the lesson
never credits the hop limit where it plays no part."""

from __future__ import annotations

import re

import pytest
from builders import TOPOLOGIES, make
from click.testing import CliRunner

from hopsim import lesson as teaching
from hopsim.cli import main
from hopsim.explain import explain, explain_all
from hopsim.loader import load
from hopsim.outcome import Access

PLAIN = {"NO_COLOR": "1", "COLUMNS": "80", "FORCE_COLOR": None, "TERM": "dumb"}
FILES = sorted(TOPOLOGIES.glob("*.yaml"))

# A workload and an attacker on one Docker bridge: the hop limit that feeds
# the one feeds the other.
SHARED_BRIDGE = dict(
    nodes={"imds": {"kind": "imds"},
           "instance": {"kind": "host", "forwarding": True, "masquerade": True},
           "docker0": {"kind": "bridge"},
           "app": {"kind": "container", "role": "workload"},
           "evil": {"kind": "container", "role": "attacker"}},
    links=[["imds", "instance"], ["instance", "docker0"], ["docker0", "app"],
           ["docker0", "evil"]])
# An attacker next to a Squid that sits one router away from IMDS: Squid adds
# X-Forwarded-For, so the PUT is refused whatever the hop limit.
RELAY_BEHIND_ROUTER = dict(
    nodes={"imds": {"kind": "imds"}, "instance": {"kind": "host", "forwarding": True},
           "squid": {"kind": "proxy", "adds_xff": True},  # Squid adds X-Forwarded-For
           "neighbour": {"kind": "client", "role": "attacker"}},
    links=[["imds", "instance"], ["instance", "squid"], ["squid", "neighbour"]])


def _what_ifs(path):
    topology = load(path)
    for hop_limit in (1, 2, 3):
        for tokens in ("required", "optional"):
            yield topology.with_imds(hop_limit=hop_limit, http_tokens=tokens)


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_a_fix_fixes_without_loosening_a_control_or_letting_anyone_in(path):
    for topology in _what_ifs(path):
        for e in explain_all(topology):
            good = Access.NONE if e.outcome.role == "attacker" else Access.TOKEN
            for fix in e.fixes:
                assert e.finding, (topology.name, e.outcome.node)
                assert fix.access is good, fix
                assert not fix.leaks, fix
                assert not fix.loosens or fix.option.startswith("--hop-limit"), fix
                assert fix.option != "--http-tokens optional"
                assert not fix.option.endswith(".adds_xff=false")
            if e.finding:
                assert e.fixes or e.no_fix, (topology.name, e.outcome.node)
            else:
                assert not e.fixes and not e.no_fix


def test_a_starved_workload_is_never_told_to_turn_imdsv1_on():
    result = CliRunner().invoke(main, ["explain", str(TOPOLOGIES / "docker-bridge.yaml"),
                                       "--from", "app"], env=PLAIN)
    assert result.exit_code == 0
    assert "IMDSv1" not in result.output and "optional" not in result.output
    assert "What would fix it:\n    - raise the hop limit to 2 (--hop-limit 2): app gets a " \
        "token\n" in result.output


def test_when_no_single_change_fixes_a_principal_explain_says_so_and_why():
    e = explain(make(**SHARED_BRIDGE), "app")
    assert e.finding == "starved" and e.fixes == ()
    assert e.no_fix == ("No single change fixes app: raise the hop limit to 2 (--hop-limit 2) "
                        "would fix it, but evil would get the token or credentials.")


def test_a_fix_that_starves_another_workload_says_so_and_comes_last():
    topology = load(TOPOLOGIES / "reverse-proxy-in-container.yaml").with_imds(hop_limit=2)
    e = explain(topology, "attacker")
    assert [c.option for c in e.fixes][-1] == "--hop-limit 1"
    assert e.fixes[-1].harm == "app would get no token"
    assert not any(c.harm for c in e.fixes[:-1])


def test_what_would_undo_a_defence_is_not_offered_as_a_fix():
    e = explain(make(**RELAY_BEHIND_ROUTER), "neighbour")
    assert e.finding is None and e.fixes == ()
    assert [(c.option, c.access) for c in e.undone_by] == [
        ("--http-tokens optional", Access.CREDENTIALS)]


def test_the_lesson_does_not_credit_the_hop_limit_when_it_plays_no_part():
    topology = make(**RELAY_BEHIND_ROUTER)
    lesson = teaching.build(topology, "neighbour").steps[-1].caption
    assert "the hop limit never comes into play" in lesson
    assert "keeps neighbour out" not in lesson


def test_the_lesson_credits_the_hop_limit_when_it_keeps_an_attacker_out():
    lesson = teaching.build(make(**SHARED_BRIDGE), "evil").steps[-1].caption
    assert "So only hop limit 1 keeps evil out." in lesson


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_no_lesson_contradicts_itself_about_the_hop_limit(path):
    topology = load(path)
    for principal in topology.principals:
        lesson = " ".join(teaching.build(topology, principal).steps[-1].caption.split())
        if re.search(r"never comes into play|makes no difference", lesson):
            assert not re.search(r"So only .* keeps", lesson), lesson
        assert "allow IMDSv1" not in lesson

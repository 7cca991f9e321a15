"""hopsim explain: the defence or gap named, and changes that really flip it."""

from __future__ import annotations

import json

import pytest
from builders import TOPOLOGIES
from click.testing import CliRunner

from hopsim.cli import main
from hopsim.explain import explain, explain_all
from hopsim.loader import load

PLAIN = {"NO_COLOR": "1", "COLUMNS": "80"}
FILES = sorted(TOPOLOGIES.glob("*.yaml"))


def story_of(name: str, principal: str, **what_if) -> str:
    topology = load(TOPOLOGIES / f"{name}.yaml")
    if what_if:
        topology = topology.with_imds(**what_if)
    return explain(topology, principal)


def test_hop_limit_named_as_the_defence_with_the_dropping_router():
    e = story_of("docker-bridge", "app", hop_limit=1)
    assert e.story.startswith("The hop limit stops app")
    assert "dies at instance" in e.story
    assert e.finding == "starved"
    # [C] AWS recommends 2 for Docker bridge containers.
    assert next((c.option, c.access.value) for c in e.changes) == ("--hop-limit 2", "token")


def test_put_requirement_named_at_the_waf():
    e = story_of("open-waf", "attacker")
    assert e.story.startswith("The PUT requirement stops attacker: waf")
    assert e.finding is None
    assert any(c.option.startswith("--set waf.methods=") and "PUT" in c.option
               and c.access.value == "token" for c in e.changes)


def test_x_forwarded_for_named_as_the_defence():
    e = story_of("open-reverse-proxy-xff", "attacker")
    assert e.story.startswith("The X-Forwarded-For rule stops attacker")
    assert any(c.option.endswith(".adds_xff=false") for c in e.changes)


def test_relay_gap_named_and_the_xff_fix_proposed():
    e = story_of("nginx-reverse-proxy", "attacker")
    assert e.finding == "leak"
    assert "through nginx" in e.story and "adds no X-Forwarded-For" in e.story
    assert ("--set nginx.adds_xff=true", "none") in [(c.option, c.access.value)
                                                    for c in e.changes]
    # The relay sits on the instance: no hop limit can help, none is proposed.
    assert not any(c.option.startswith("--hop-limit") for c in e.changes)


def test_imdsv1_gap_named_and_required_tokens_proposed():
    e = story_of("ssrf-alb-optional", "attacker")
    assert "IMDSv1 is on" in e.story
    assert ("--http-tokens required", "none") in [(c.option, c.access.value)
                                                 for c in e.changes]


def test_lowering_the_hop_limit_proposed_for_a_pod_attacker():
    e = story_of("eks-untrusted-pod", "untrusted-pod", hop_limit=2)
    assert e.finding == "leak"
    assert ("--hop-limit 1", "none") in [(c.option, c.access.value) for c in e.changes]


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_every_proposed_change_does_what_it_says_through_the_cli(path):
    """Apply each change with its what-if option and read the outcome back."""
    for e in explain_all(load(path)):
        for change in e.changes:
            result = CliRunner().invoke(main, ["check", str(path), *change.option.split(),
                                               "--format", "json", "--all-principals"],
                                        env=PLAIN)
            assert result.exit_code in (0, 1), result.output
            doc = json.loads(result.stdout)
            (r,) = doc["topologies"][0]["results"]
            held = {p["node"]: p["outcome"] for p in r["principals"]}
            assert held[e.outcome.node] == change.access.value, (change, held)
            assert held[e.outcome.node] != e.outcome.access.value


def test_explain_command_prints_each_principal_and_fits_80_columns():
    result = CliRunner().invoke(main, ["explain", str(TOPOLOGIES / "open-router.yaml")],
                                env=PLAIN)
    assert result.exit_code == 0
    assert "attacker (attacker): none" in result.output
    assert "instance (no role): token" in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
    assert not any(line.endswith(" ") for line in result.output.splitlines())


def test_explain_from_an_unknown_node_is_bad_input():
    result = CliRunner().invoke(main, ["explain", str(TOPOLOGIES / "open-router.yaml"),
                                       "--from", "atacker"], env=PLAIN)
    assert result.exit_code == 2
    assert "did you mean 'attacker'" in result.output

"""Interceptors (`intercepts: true`): a DNAT on a host sends what it routes
towards IMDS to a relay on it (kube2iam, kiam), as docs/mitigations.md says.

Derived by hand: the DNAT is in PREROUTING, so only packets the host
receives from a link are caught; its own processes and host-network
containers go to IMDS directly. The relay ends the connection and opens its
own, with a fresh TTL; its policy decides what passes.
"""

from __future__ import annotations

import pytest
from builders import make, play
from test_emulate import kernel

from hopsim.emulate import build
from hopsim.emulate import verify as verify_one
from hopsim.outcome import Access, Cause
from hopsim.topology import TopologyError


def node(**agent):
    return make({"imds": {"kind": "imds"},
                 "node": {"kind": "host", "forwarding": True},
                 "agent": {"kind": "proxy", "runs_on": "node", "intercepts": True, **agent},
                 "cni0": {"kind": "bridge"},
                 "pod": {"kind": "container", "role": "attacker"},
                 "hostnet": {"kind": "container", "runs_on": "node", "role": "workload"}},
                [["imds", "node"], ["node", "cni0"], ["cni0", "pod"]], hop_limit=1)


def test_a_pod_routed_across_the_host_is_caught_and_relayed_with_a_fresh_ttl():
    exchange = play(node(), "pod")
    # Hop limit 1 would stop the pod (one router); the agent re-sends it.
    assert exchange.outcome.access is Access.TOKEN
    assert exchange.outcome.path == ("pod", "agent", "imds")
    assert exchange.outcome.receiver == "agent"


def test_the_pod_addresses_imds_and_the_dnat_delivers_it_to_the_agent():
    request = next(h for h in play(node(), "pod").hops if h.node == "pod")
    assert "-> 169.254.169.254" in request.detail


def test_what_the_agent_lets_through_is_its_policy():
    outcome = play(node(adds_xff=True), "pod").outcome
    assert outcome.access is Access.NONE and outcome.cause is Cause.XFF
    assert play(node(methods=["GET"]), "pod").outcome.cause is Cause.METHOD


def test_the_host_and_its_host_network_containers_are_not_caught():
    for name in ("node", "hostnet"):
        outcome = play(node(adds_xff=True), name).outcome
        assert outcome.access is Access.TOKEN and outcome.path[-1] == "imds"


def test_a_forward_rule_on_the_host_never_sees_a_caught_request():
    topology = node().with_node("node", filters=make(
        {"imds": {"kind": "imds"}, "h": {"kind": "host", "forwarding": True, "filters": [
            {"chain": "forward", "to": "imds", "action": "drop"}]}},
        [["imds", "h"]]).nodes["h"].filters)
    # DNAT in PREROUTING: the packet is for the host now, it takes INPUT.
    assert play(topology, "pod").outcome.access is Access.TOKEN


@pytest.mark.parametrize("agent,host,words", [
    ({"kind": "proxy", "intercepts": True}, {"kind": "host", "forwarding": True},
     "give it runs_on"),
    ({"kind": "proxy", "runs_on": "node", "intercepts": True}, {"kind": "host"},
     "does not forward"),
    ({"kind": "proxy", "runs_on": "node", "intercepts": True, "product": "nginx"},
     {"kind": "host", "forwarding": True}, "drop product"),
])
def test_an_interceptor_hopsim_cannot_build_is_refused_at_its_key(agent, host, words):
    nodes = {"imds": {"kind": "imds"}, "node": host, "agent": agent}
    links = [["imds", "node"]] + ([["node", "agent"]] if "runs_on" not in agent else [])
    with pytest.raises(TopologyError) as raised:
        make(nodes, links)
    assert any(p.key == "nodes.agent.intercepts" and words in p.message
               for p in raised.value.problems), [str(p) for p in raised.value.problems]


def test_the_plan_redirects_the_metadata_address_in_prerouting():
    ruleset = build.plan(node(), "t-").namespaces["node"].nft_ruleset()
    assert "type nat hook prerouting priority dstnat" in ruleset
    assert 'iifname != "lo" ip daddr 169.254.169.254 tcp dport 80 redirect to :80' in ruleset


@pytest.mark.kernel
@kernel
@pytest.mark.parametrize("agent", [{}, {"adds_xff": True}], ids=["passes", "adds-xff"])
def test_the_kernel_agrees_on_an_interceptor(agent):
    check = verify_one(node(**agent), [1, 2], 4)
    assert not check.disagreements, [(c.principal, c.simulated, c.measured)
                                     for c in check.disagreements]

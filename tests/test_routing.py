"""Routing as the kernel does it (issue 10): L2 segments are one hop, each
node picks its next hop towards a destination from its own table, and the
request and the response are routed independently.

The properties check hopsim's router against a networkx model written here
from the rule, not from hopsim's code: shortest by forwarding nodes crossed,
ties to the smallest next-hop name, nothing depending on bridges.
"""

from __future__ import annotations

import itertools
from typing import Any

import networkx as nx
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from strategies import RELAY_KINDS, dump, topology_docs

from hopsim import parse, play
from hopsim.analysis import sweep
from hopsim.engine import Action
from hopsim.outcome import Access
from hopsim.report.wording import reason
from hopsim.routing import Part, Router
from hopsim.topology import Topology, TopologyError

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def load(doc: dict[str, Any], file: str = "<generated>") -> Topology:
    text = dump(doc)
    note(f"topology:\n{text}")
    return parse(text, file)


# --- the model: segments and L3 neighbours, in networkx ---------------------------


def segments(topology: Topology) -> list[frozenset[str]]:
    """Each L2 segment as the set of non-bridge nodes on it."""
    graph = topology.graph
    bridges = {n for n, node in topology.nodes.items() if node.kind == "bridge"}
    found = [frozenset((a, b)) for a, b in topology.links
             if a not in bridges and b not in bridges]
    for component in nx.connected_components(graph.subgraph(bridges)):
        members = {n for b in component for n in graph.neighbors(b) if n not in bridges}
        if members:
            found.append(frozenset(members))
    return found


def l3_graph(topology: Topology) -> nx.Graph:
    """Non-bridge nodes, an edge between two that share a segment."""
    graph = nx.Graph()
    graph.add_nodes_from(n for n, node in topology.nodes.items()
                         if node.kind != "bridge" and not node.runs_on)
    for segment in segments(topology):
        graph.add_edges_from(itertools.combinations(sorted(segment), 2))
    return graph


def hops_to(topology: Topology, family: int, targets: set[str]) -> dict[str, int]:
    """Links (in the L3 graph) from each node to the nearest target, through
    nodes that forward `family` only."""
    graph = l3_graph(topology)
    forwarders = {n for n in graph if family in topology.nodes[n].forwards}
    dist = dict.fromkeys(targets, 0)
    frontier = set(targets)
    while frontier:
        found = set()
        for here in frontier:
            if here not in targets and here not in forwarders:
                continue  # reached, but it forwards nothing on
            for there in graph.neighbors(here):
                if there not in dist:
                    dist[there] = dist[here] + 1
                    found.add(there)
        frontier = found
    return dist


def location(topology: Topology, name: str) -> str:
    return topology.nodes[name].runs_on or name


def l3(stations) -> list[str]:
    return [s.node for s in stations if s.part is not Part.BRIDGE]


def check_leg(topology: Topology, family: int, path: list[str], target: str | None,
              segment_of_start: frozenset[str] | None) -> None:
    """Each step of an L3 path is the sender's table entry: towards `target`
    (a node), or towards `segment_of_start` (a response: delivered on it)."""
    graph = l3_graph(topology)
    if target is not None:
        dist = hops_to(topology, family, {target})
    else:
        # Delivered on the segment by the destination's neighbours there that
        # forward (a member that does not forward delivers nothing it did not send).
        dist = hops_to(topology, family, {n for n in segment_of_start  # type: ignore[union-attr]
                                          if n == path[-1] or family in topology.nodes[n].forwards})
        dist[path[-1]] = -1 if path[-1] in segment_of_start else dist.get(path[-1], 0)
    for here, there in itertools.pairwise(path):
        assert graph.has_edge(here, there), (here, there, path)
        if topology.nodes[here].gateway and there == topology.nodes[here].gateway:
            continue  # a written default route
        if target is None and here in segment_of_start:  # type: ignore[operator]
            assert there == path[-1], (here, there, path)  # delivered directly
            continue
        best = dist[here] - 1
        candidates = sorted(n for n in graph.neighbors(here) if dist.get(n) == best
                            and (n == path[-1] or family in topology.nodes[n].forwards))
        if target is not None and target in graph.neighbors(here):
            candidates = [target]
        assert candidates and there == candidates[0], (here, there, candidates, path)


def record_coverage(topology: Topology, router: Router) -> None:
    nodes = topology.nodes.values()
    for kind in sorted({n.kind for n in nodes}):
        event(f"kind {kind}")
    if any(isinstance(n.forwarding, str) for n in nodes):
        event("host forwarding one family")
    if any(isinstance(n.masquerade, tuple) for n in nodes):
        event("masquerade on some links")
    if any(n.gateway for n in nodes):
        event("a written gateway")
    if nx.cycle_basis(topology.graph):
        event("mesh (a cycle)")
    for p in topology.principals:
        route = router.route(p)
        if route.unreachable:
            event("an unreachable principal")
        elif not route.symmetric:
            event("an asymmetric route")
        elif len(route.legs) > 1:
            event("a principal behind a relay")


@FAST
@given(topology_docs())
def test_each_hop_is_the_senders_table_entry_both_ways(doc: dict[str, Any]) -> None:
    """Requests and responses, leg by leg: consecutive L3 stations share a
    segment; every step is the sender's best entry (fewest forwarding nodes,
    then the smallest name); only forwarders of the family are crossed; the
    response ends where its request began."""
    topology = load(doc)
    router = Router(topology)
    record_coverage(topology, router)
    for principal in topology.principals:
        route = router.route(principal)
        if route.unreachable:
            continue
        family = topology.nodes[principal].family
        note(f"{principal}: {route.describe()} / back: {route.describe_returns()}")
        for leg, back in zip(route.legs, route.returns, strict=True):
            assert back[0] == leg[-1] and back[-1] == leg[0]
            for path in (leg, back):
                for station in path[1:-1]:
                    if station.part is Part.ROUTE:
                        assert family in topology.nodes[station.node].forwards, station
                    else:
                        assert station.part is Part.BRIDGE, station
            start = location(topology, leg[0].node) if leg[0].part is Part.ORIGIN else leg[0].node
            request = [start, *l3(leg[1:])]
            if request[0] == request[-1]:
                continue  # a relay in the sender's own stack
            check_leg(topology, family, request, request[-1], None)
            if any(s.nat for s in leg):
                continue  # the response goes by way of the NAT: checked below
            # between two segments to one neighbour, the one whose L3 members
            # sort first (docs/routing.md)
            egress = min((s for s in segments(topology)
                          if request[0] in s and request[1] in s), key=sorted)
            response = [back[0].node, *l3(back[1:-1]), start]
            check_leg(topology, family, response, None, egress)


@FAST
@given(topology_docs(), st.data())
def test_renaming_a_bridge_changes_no_outcome(doc: dict[str, Any], data: st.DataObject) -> None:
    bridges = [n for n, node in doc["nodes"].items() if node["kind"] == "bridge"]
    if not bridges:
        return
    old = data.draw(st.sampled_from(bridges))
    new = data.draw(st.sampled_from(["br-0", "zzzz", "aa-" + old, "m"]))
    if new in doc["nodes"]:
        return

    def named(node: dict[str, Any]) -> dict[str, Any]:
        if isinstance(node.get("masquerade"), list):
            return {**node, "masquerade": [new if n == old else n for n in node["masquerade"]]}
        return node

    renamed = {(new if n == old else n): named(v) for n, v in doc["nodes"].items()}
    other = {**doc, "nodes": renamed,
             "links": [[new if e == old else e for e in link] for link in doc["links"]]}
    assert outcomes(load(doc)) == outcomes(load(other))


@FAST
@given(topology_docs(), st.data())
def test_inserting_a_bridge_into_a_segment_changes_no_outcome(
        doc: dict[str, Any], data: st.DataObject) -> None:
    if not doc["links"]:
        return
    i = data.draw(st.integers(0, len(doc["links"]) - 1))
    a, b = doc["links"][i]
    if "imds" in (doc["nodes"][a]["kind"], doc["nodes"][b]["kind"]):
        return  # an imds node's link is its instance's: no switch stands there
    links = [list(link) for link in doc["links"]]
    links[i:i + 1] = [[a, "sw-new"], ["sw-new", b]]
    nodes = {n: ({**v, "masquerade": ["sw-new" if m in (a, b) and n in (a, b) else m
                                      for m in v["masquerade"]]}
                 if isinstance(v.get("masquerade"), list) else v)
             for n, v in doc["nodes"].items()}
    other = {**doc, "nodes": {**nodes, "sw-new": {"kind": "bridge"}}, "links": links}
    assert outcomes(load(doc)) == outcomes(load(other))


def outcomes(topology: Topology) -> dict[tuple[int | None, str], tuple]:
    report = sweep(topology, (1, 2, 3, 64))
    return {(r.hop_limit, o.node): (o.access, o.dropped_at, o.cause, o.routers)
            for r in report.results for o in r.outcomes}


# --- the cases the issue names ------------------------------------------------------

DUAL_HOMED = """
name: dual-homed
description: a client on the instance's switch and behind a router
nodes:
  imds: {kind: imds}
  instance: {kind: host, forwarding: true}
  SW: {kind: bridge}
  sw2: {kind: bridge}
  r: {kind: router}
  attacker: {kind: client, role: attacker}
links:
  - [imds, instance]
  - [instance, SW]
  - [SW, sw2]
  - [sw2, attacker]
  - [instance, r]
  - [r, attacker]
"""


@pytest.mark.parametrize("switch", ["SW", "zz-switch", "a-switch"])
def test_a_dual_homed_client_takes_the_switched_segment_whatever_the_switch_is_called(
        switch: str) -> None:
    """The false "ok" of issue 10: four links over two bridges, one router,
    beat three links over two routers; the switch's name plays no part."""
    topology = parse(DUAL_HOMED.replace("SW", switch), "<dual-homed>")
    route = Router(topology).route("attacker")
    assert l3(route.stations) == ["attacker", "instance", "imds"]
    assert route.token_routers == ("instance",)
    assert play(topology.with_imds(hop_limit=2), "attacker").outcome.access is Access.TOKEN
    assert play(topology.with_imds(hop_limit=1), "attacker").outcome.dropped_at == "instance"


ECMP = """
name: ecmp
description: two equal branches of two routers between the instance and the client
nodes:
  imds: {kind: imds}
  instance: {kind: host, forwarding: true}
  a1: {kind: router}
  z1: {kind: router}
  z2: {kind: router}
  a2: {kind: router}
  edge: {kind: router}
  client: {kind: client, role: attacker}
links:
  - [imds, instance]
  - [instance, a1]
  - [a1, z1]
  - [z1, edge]
  - [instance, z2]
  - [z2, a2]
  - [a2, edge]
  - [edge, client]
"""


def test_the_response_takes_its_own_branch_and_dies_there() -> None:
    """Equal-cost branches: `edge` sends the request by a2 (a2 < z1), the
    instance sends the response by a1 (a1 < z2). The token response's TTL is
    spent on its own branch, and it dies at a router the request never
    crossed: hopsim used to name the request's routers."""
    topology = parse(ECMP, "<ecmp>")
    route = Router(topology).route("client")
    assert l3(route.stations) == ["client", "edge", "a2", "z2", "instance", "imds"]
    assert l3(route.token_path) == ["imds", "instance", "a1", "z1", "edge", "client"]
    assert not route.symmetric
    for hop_limit, dropped in ((1, "instance"), (2, "a1"), (3, "z1"), (4, "edge")):
        exchange = play(topology.with_imds(hop_limit=hop_limit), "client", record=True)
        assert exchange.outcome.dropped_at == dropped, hop_limit
        assert [h.node for h in exchange.hops if h.action is Action.DROP] == [dropped]
    assert play(topology.with_imds(hop_limit=5), "client").outcome.access is Access.TOKEN
    # the sweep's shortcut agrees with the walks
    report = sweep(topology, (1, 2, 3, 4, 5))
    assert [r.outcomes[0].dropped_at for r in report.results] == [
        "instance", "a1", "z1", "edge", None]


def test_a_written_route_back_makes_a_symmetric_design_asymmetric() -> None:
    text = ECMP.replace("instance: {kind: host, forwarding: true}",
                        "instance: {kind: host, forwarding: true, routes: {client: z2}}")
    route = Router(parse(text, "<ecmp-written>")).route("client")
    assert l3(route.token_path) == ["imds", "instance", "z2", "a2", "edge", "client"]
    assert route.symmetric


def test_a_host_forwarding_ipv4_only_routes_no_ipv6() -> None:
    text = """
name: v4-only
description: a docker host that forwards IPv4 only
nodes:
  imds: {kind: imds, ipv6: true}
  instance: {kind: host, forwarding: ipv4, masquerade: true}
  docker0: {kind: bridge}
  app4: {kind: container, role: workload}
  app6: {kind: container, role: workload, family: 6}
links: [[imds, instance], [instance, docker0], [docker0, app4], [docker0, app6]]
"""
    topology = parse(text, "<v4-only>").with_imds(hop_limit=2)
    assert play(topology, "app4").outcome.access is Access.TOKEN
    six = play(topology, "app6").outcome
    assert six.access is Access.NONE and "unreachable" in reason(six)


def test_a_nat_masquerades_out_of_its_uplink_only() -> None:
    text = """
name: uplink-nat
description: a NAT between two private subnets and its uplink
nodes:
  imds: {kind: imds}
  nat: {kind: nat, masquerade: [imds]}
  lan1: {kind: bridge}
  lan2: {kind: bridge}
  a: {kind: client}
  b: {kind: client}
links: [[imds, nat], [nat, lan1], [nat, lan2], [lan1, a], [lan2, b]]
"""
    topology = parse(text, "<uplink-nat>")
    router = Router(topology)
    to_imds = router.route("a")
    assert [s.nat for s in to_imds.stations if s.node == "nat"] == [True]
    assert router.masquerades("nat", "imds") and not router.masquerades("nat", "lan2")


WRITTEN = {
    "imds": "{kind: imds}",
    "r1": "{kind: router}",
    "r2": "{kind: router}",
    "r3": "{kind: router}",
    "lan": "{kind: bridge}",
    "a": "{kind: client}",
    "b": "{kind: client}",
}


@pytest.mark.parametrize(("changes", "message"), [
    ({"a": "{kind: client, gateway: b}"}, "'b' (client) does not forward"),
    ({"a": "{kind: client, gateway: r2}"}, "'r2' shares no segment with 'a'"),
    ({"r2": "{kind: router, routes: {imds: r3}}", "r3": "{kind: router, routes: {imds: r2}}"},
     "leads nowhere from 'r2' (IPv4): a routing loop"),
    ({"a": "{kind: client, routes: {imds: nobody}}"}, "no node 'nobody' to send it to"),
    ({"lan": "{kind: bridge, gateway: r1}"}, "unknown key 'gateway' for a bridge node"),
])
def test_a_written_route_that_cannot_work_is_a_located_problem(changes: dict[str, str],
                                                               message: str) -> None:
    nodes = "".join(f"  {n}: {changes.get(n, v)}\n" for n, v in WRITTEN.items())
    text = ("name: written\ndescription: written routes\nnodes:\n" + nodes
            + "links: [[imds, r1], [r1, lan], [lan, a], [lan, b], [lan, r3], [r1, r2], [r2, r3]]\n")
    with pytest.raises(TopologyError) as caught:
        parse(text, "w.yaml")
    problems = caught.value.problems
    assert message in problems[0].message, problems
    line = 3 + list(WRITTEN).index(next(iter(changes))) + 1
    assert problems[0].line == line and problems[0].key.startswith("nodes."), problems[0]


def test_via_names_relays_and_routers_are_refused_there() -> None:
    text = """
name: via-router
description: via through a router is source routing, which the kernel does not do
nodes:
  imds: {kind: imds}
  r: {kind: router}
  c: {kind: client, via: [r]}
links: [[imds, r], [r, c]]
"""
    with pytest.raises(TopologyError) as caught:
        parse(text, "v.yaml")
    assert "is not a relay" in str(caught.value)
    assert caught.value.problems[0].key == "nodes.c.via.0"


def test_the_relay_stops_are_the_fewest_that_reach_imds() -> None:
    """No L3 route: the attacker's requests end at the first relay that
    leads to IMDS; with a direct route as well, no relay is used."""
    text = """
name: relays
description: an ALB in front of an SSRF app, and a router around it
nodes:
  imds: {kind: imds}
  instance: {kind: host}
  app: {kind: ssrf, runs_on: instance}
  alb: {kind: proxy, adds_xff: true}
  attacker: {kind: client, role: attacker}
links: [[imds, instance], [instance, alb], [alb, attacker]]
"""
    topology = parse(text, "<relays>")
    route = Router(topology).route("attacker")
    assert [s.actor for s in route.stations if s.part is not Part.BRIDGE] == [
        "attacker", "alb", "app", "imds"]
    assert [len(leg) for leg in route.legs] == [2, 2, 2]
    assert all(kind in RELAY_KINDS for kind in ("proxy", "ssrf"))

"""Properties of the engine, the sweep shortcut and routing, on random valid
topologies (tests/strategies.py draws them and the real loader validates them).

Every test draws the topology as the mapping a YAML file holds and `note`s the
YAML, so a falsifying example prints as a file you can paste into
topologies/ and run with `hopsim trace`.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, note, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.inet6 import ICMPv6TimeExceeded, IPv6
from strategies import RELAY_KINDS, dump, topology_docs

from hopsim import packets, parse, play
from hopsim.analysis import judge, sweep
from hopsim.engine import Action, Exchange
from hopsim.outcome import Access
from hopsim.profiles import profiles
from hopsim.report.wording import refusal
from hopsim.topology import Topology

# HOPSIM_EXAMPLES=20 runs 20 times as many examples (a longer hunt).
_SCALE = int(os.environ.get("HOPSIM_EXAMPLES", "1"))
FAST = settings(max_examples=100 * _SCALE, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=25 * _SCALE, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

SWEPT = (*range(1, 9), 63, 64)  # hop limits the shortcut is checked at
RANK = {Access.NONE: 0, Access.CREDENTIALS: 1, Access.TOKEN: 2}


def load(doc: dict[str, Any]) -> Topology:
    text = dump(doc)
    note(f"topology:\n{text}")
    return parse(text, "<generated>")


def replay(topology: Topology, principal: str, hop_limit: int, **kw: Any) -> Exchange:
    """A full replay: every imds set to `hop_limit`, the exchange walked again."""
    return play(topology.with_imds(hop_limit=hop_limit), principal, **kw)


# --- the minimal reproductions these properties found (regression examples) ---

# Fixed in c0de225. IMDS refuses the PUT (endpoint disabled; a relay's 405, an
# X-Forwarded-For 403 or a stripped ttl header 400 did the same) and a router
# stands between IMDS and the principal: Profile.at(1) said dropped_at='r' and
# "token response dropped at r: TTL exceeded", while a full replay at hop limit
# 1 has dropped_at=None and "IMDS refused the PUT (403)".
REFUSED_BEHIND_A_ROUTER = {
    "name": "refused-behind-a-router",
    "description": "IMDS refuses the PUT; one router between it and the client",
    "imds": {"hop_limit": 1, "http_endpoint": "disabled"},
    "nodes": {"imds": {"kind": "imds"}, "r": {"kind": "router"}, "c": {"kind": "client"}},
    "links": [["imds", "r"], ["r", "c"]],
}

# Fixed in c0de225. A host naming in `via` a relay that runs on itself (an
# instance whose SDK uses a local Squid) was routed `a -> imds`, around the
# relay: `a` got a token though squid adds X-Forwarded-For (IMDS: 403).
VIA_COLOCATED_RELAY = {
    "name": "via-colocated-relay",
    "description": "an instance whose requests go through a proxy on itself",
    "imds": {"hop_limit": 1},
    "nodes": {
        "imds": {"kind": "imds"},
        "a": {"kind": "host", "via": ["squid"]},
        "squid": {"kind": "proxy", "runs_on": "a", "adds_xff": True},
    },
    "links": [["imds", "a"]],
}

# Fixed after c0de225. Two relays on one host, both named in `via`: the route
# was `c -> h[p1] -> h[p1] -> imds` for via [p1, p2] and for via [p2, p1] alike
# (the host got one relay, the first *sorted* named one), so p2 never relayed.
# p2 adds X-Forwarded-For, so IMDS must refuse the PUT (403) and c get nothing.
VIA_TWO_RELAYS_ON_ONE_HOST = {
    "name": "via-two-relays-on-one-host",
    "description": "a container whose requests go through two proxies on its host",
    "imds": {"hop_limit": 1},
    "nodes": {
        "imds": {"kind": "imds"},
        "h": {"kind": "host"},
        "p1": {"kind": "proxy", "runs_on": "h", "adds_xff": False},
        "p2": {"kind": "proxy", "runs_on": "h", "adds_xff": True},
        "c": {"kind": "container", "via": ["p1", "p2"]},
    },
    "links": [["imds", "h"], ["h", "c"]],
}


# --- 1. monotone in the hop limit ------------------------------------------


@FAST
@given(topology_docs(l4=True))
def test_monotone_token_in_hop_limit(doc: dict[str, Any]) -> None:
    """A principal with a token at hop limit h has one at h+1 (full replays),
    and a token outcome never names a router that dropped the token."""
    topology = load(doc)
    for principal in topology.principals:
        outcomes = [replay(topology, principal, h).outcome for h in range(1, 10)]
        for h, (low, high) in enumerate(itertools.pairwise(outcomes), start=1):
            if low.access is Access.TOKEN:
                assert high.access is Access.TOKEN, (principal, h, low, high)
            # what the hop limit changes can only help: none < credentials < token
            assert RANK[low.access] <= RANK[high.access], (principal, h, low, high)
        for outcome in outcomes:
            if outcome.access is Access.TOKEN:
                assert outcome.dropped_at is None, outcome


# --- 2. the sweep shortcut equals a full replay ----------------------------


@FAST
@given(topology_docs(l4=True))
@example(REFUSED_BEHIND_A_ROUTER)
def test_sweep_shortcut_equals_full_replay(doc: dict[str, Any]) -> None:
    """profiles(t)[p].at(h) == play(t.with_imds(hop_limit=h), p).outcome, whole
    Outcome objects, for every principal and h in 1..8, 63, 64; and `check`
    (each imds at its own configured hop limit) equals a plain replay."""
    topology = load(doc)
    found = profiles(topology)
    assert set(found) == set(topology.principals)
    for principal, profile in found.items():
        for h in SWEPT:
            shortcut, full = profile.at(h), replay(topology, principal, h).outcome
            assert shortcut == full, (principal, h, shortcut, full)
    (configured,) = sweep(topology, ()).results
    for shortcut in configured.outcomes:
        full = play(topology, shortcut.node).outcome
        assert shortcut == full, (shortcut, full)


# --- 2b. a replica is a written copy -------------------------------------------


@FAST
@given(topology_docs(), st.data())
def test_a_replicated_principal_counts_as_its_written_out_copies(doc: dict[str, Any],
                                                                 data: st.DataObject) -> None:
    """replicas: k on a random container or client gives the verdicts, at
    every hop limit, of the same topology with k copies written out, and each
    copy the outcome of the node it copies."""
    candidates = sorted(n for n, node in doc["nodes"].items()
                        if node["kind"] in ("container", "client"))
    if not candidates:
        event("no container or client")
        return
    name = data.draw(st.sampled_from(candidates))
    event(f"replicated a {doc['nodes'][name]['kind']}"
          + (" with a role" if doc["nodes"][name].get("role") else ""))
    k = data.draw(st.integers(2, 3))
    compact = {**doc, "nodes": {**doc["nodes"], name: {**doc["nodes"][name], "replicas": k}}}
    copies = [f"{name}-copy{j}" for j in range(k)]
    nodes = {n: v for n, v in doc["nodes"].items() if n != name}
    nodes |= dict.fromkeys(copies, doc["nodes"][name])
    for n, node in nodes.items():  # a NAT masquerading towards it does so towards each copy
        if isinstance(node.get("masquerade"), list) and name in node["masquerade"]:
            nodes[n] = {**node, "masquerade": [m for m in node["masquerade"] if m != name]
                        + copies}
    links = [link for link in doc["links"] if name not in link]
    for a, b in (link for link in doc["links"] if name in link):
        other = b if a == name else a
        links += [[other, copy] for copy in copies]
    written = {**doc, "nodes": nodes, "links": links}
    small, full = parse(dump(compact), "c.yaml"), parse(dump(written), "w.yaml")
    assert small.nodes[name].replicas == k
    found_small, found_full = profiles(small), profiles(full)
    from hopsim.analysis import verdicts
    assert verdicts(found_small) == verdicts(found_full)
    for h in SWEPT:
        mine = found_small[name].at(h)
        for copy in copies:
            theirs = found_full[copy].at(h)
            assert (theirs.access, theirs.cause, theirs.routers, theirs.dropped_at) == \
                (mine.access, mine.cause, mine.routers, mine.dropped_at), (copy, h)


# --- 3. verdicts ---------------------------------------------------------------


@FAST
@given(topology_docs())
def test_sweep_verdicts_equal_judge_of_full_replays(doc: dict[str, Any]) -> None:
    topology = load(doc)
    report = sweep(topology, SWEPT)
    assert [r.hop_limit for r in report.results] == sorted(SWEPT)
    for result in report.results:
        outcomes = [replay(topology, p, result.hop_limit).outcome
                    for p in topology.principals]
        verdict, _ = judge(outcomes)
        assert result.verdict is verdict, (result.hop_limit, result.verdict, verdict)
    # `check`: each imds at its own configured hop limit
    (configured,) = sweep(topology, ()).results
    verdict, _ = judge(play(topology, p).outcome for p in topology.principals)
    assert configured.verdict is verdict, (configured.verdict, verdict)


@SLOW
@given(topology_docs())
def test_recommended_hop_limit_is_the_smallest_ok_by_full_replay(
        doc: dict[str, Any]) -> None:
    topology = load(doc)
    report = sweep(topology, ())
    expected = None
    for h in range(1, 65):
        verdict, _ = judge(replay(topology, p, h).outcome for p in topology.principals)
        if verdict.value == "ok":
            expected = h
            break
    assert report.recommended_hop_limit == expected, report.recommendation


# --- 4. determinism -----------------------------------------------------------


@FAST
@given(topology_docs(l4=True), st.sampled_from(SWEPT))
def test_deterministic_packets_and_times(doc: dict[str, Any], hop_limit: int) -> None:
    """Two plays (of two loads of the same file) give byte-identical packets,
    identical timestamps, hops and outcomes."""
    first, second = load(doc), parse(dump(doc), "<generated>")
    for principal in first.principals:
        a = replay(first, principal, hop_limit, record=True)
        b = replay(second, principal, hop_limit, record=True)
        assert a.outcome == b.outcome
        assert a.hops == b.hops  # time, node, action, TTLs, detail (not the packet)
        assert [bytes(p) for p in a.packets] == [bytes(p) for p in b.packets]
        assert [p.time for p in a.packets] == [p.time for p in b.packets]


@FAST
@given(topology_docs(l4=True), st.sampled_from(SWEPT))
def test_recording_changes_nothing_the_walk_finds(doc: dict[str, Any], hop_limit: int) -> None:
    """One walk, recorded or not: a walk that keeps its hops and packets (trace,
    pcap, demo, draw) finds the same outcome, route and issued token as the
    bare walk every check and sweep makes, which keeps nothing."""
    topology = load(doc)
    for played in (topology.with_imds(hop_limit=hop_limit), topology):
        for principal in played.principals:
            recorded = play(played, principal, record=True)
            bare = play(played, principal, record=False)
            assert bare.outcome == recorded.outcome
            assert bare.route == recorded.route
            assert bare.token_issued == recorded.token_issued
            assert bare.hops == ()
            if recorded.hops:  # the walk moved packets: each kept one is a real packet
                assert any(hop.packet is not None for hop in recorded.hops)


# --- 5. TTL physics on recorded hops -------------------------------------------


def _payload(packet) -> bytes:
    return bytes(packet[TCP].payload) if TCP in packet else b""


def check_ttl_physics(topology: Topology, exchange: Exchange) -> None:
    nodes = topology.nodes
    family = exchange.outcome.family
    in_flight: int | None = None  # the TTL of the packet on the wire
    last_request: dict[str, bytes] = {}  # imds node -> the request it last received
    hops = exchange.hops

    def address(name: str) -> str:
        if nodes[name].kind == "imds":
            return "169.254.169.254" if family == 4 else "fd00:ec2::254"
        return nodes[name].address if family == 4 else nodes[name].address6

    for i, hop in enumerate(hops):
        where = (i, hop)
        ttl = packets.ttl(hop.packet) if hop.packet is not None else None
        node = nodes[hop.node]
        if hop.action is Action.SEND:
            assert in_flight is None, where  # the previous packet ended first
            assert hop.ttl_in is None and hop.ttl_out == ttl, where
            assert packets.source(hop.packet) == address(hop.node), where
            if node.kind == "imds":
                request = last_request.pop(hop.node)
                status = int(_payload(hop.packet).split(b" ", 2)[1])
                if request.startswith(b"PUT /latest/api/token ") and status == 200:
                    assert ttl == node.imds.hop_limit, ("token response TTL", where)
                else:
                    assert ttl == 64, ("other IMDS responses leave with 64", where)
            else:  # principals send, relays re-originate: Linux's default 64
                assert ttl == 64, where
            in_flight = ttl
        elif hop.action is Action.BRIDGE:
            assert node.kind == "bridge", where
            assert hop.ttl_in == hop.ttl_out == ttl == in_flight, where
        elif hop.action in (Action.FORWARD, Action.NAT):
            assert family in node.forwards, ("only L3 nodes forward, their families", where)
            if hop.action is Action.NAT:
                assert node.rewrites_source, where
            assert hop.ttl_in == in_flight, where
            assert hop.ttl_in >= 2, ("forwarded at TTL <= 1", where)
            assert hop.ttl_out == hop.ttl_in - 1 == ttl, ("decrement by exactly 1", where)
            in_flight = ttl
        elif hop.action is Action.DROP:
            assert family in node.forwards, ("only L3 nodes drop", where)
            assert hop.ttl_in == in_flight == ttl and ttl <= 1, where
            assert hop.ttl_out is None, where
            icmp = hops[i + 1]
            assert icmp.action is Action.ICMP and icmp.node == hop.node, (where, icmp)
        elif hop.action is Action.ICMP:
            dropped = hops[i - 1]
            assert dropped.action is Action.DROP and dropped.node == hop.node, where
            own = address(hop.node)
            source = packets.source(dropped.packet)
            if family == 4:
                assert IP in hop.packet and ICMP in hop.packet, where
                assert (hop.packet[ICMP].type, hop.packet[ICMP].code) == (11, 0), where
            else:
                assert IPv6 in hop.packet and ICMPv6TimeExceeded in hop.packet, where
                layer = hop.packet[ICMPv6TimeExceeded]
                assert (layer.type, layer.code) == (3, 0), where
            assert packets.source(hop.packet) == own, where
            assert packets.destination(hop.packet) == source, where
            assert hop.ttl_out == ttl == 64, where
            in_flight = None
        elif hop.action is Action.DELIVER:
            assert hop.ttl_in == in_flight == ttl and ttl >= 1, where
            # addressed to whoever receives it (a NAT restored it on the way back)
            assert packets.destination(hop.packet) == address(hop.node), where
            if node.kind == "imds":
                last_request[hop.node] = _payload(hop.packet)
            in_flight = None
        else:
            assert hop.action in (Action.REFUSE, Action.TIMEOUT), where
            assert hop.packet is None, where
    assert in_flight is None  # no packet left on the wire
    if exchange.outcome.dropped_at is not None:
        assert any(h.action is Action.DROP and h.node == exchange.outcome.dropped_at
                   for h in hops), exchange.outcome


@FAST
@given(topology_docs(l4=True), st.one_of(st.integers(1, 8), st.sampled_from((63, 64))))
def test_ttl_physics_on_recorded_hops(doc: dict[str, Any], hop_limit: int) -> None:
    """Every L3 forward decrements by exactly 1, bridges leave the TTL alone, a
    router drops (and sends ICMP Time Exceeded from itself) instead of
    forwarding at TTL <= 1, the token response leaves IMDS with TTL = hop
    limit and every other IMDS response with 64."""
    topology = load(doc)
    # every imds at `hop_limit`, and each at its own configured one
    for played in (topology.with_imds(hop_limit=hop_limit), topology):
        for principal in played.principals:
            exchange = play(played, principal, record=True)
            if exchange.route.unreachable or (refusal(exchange.outcome) and (
                    exchange.outcome.routers is None)):
                assert exchange.hops == ()
                continue
            note(f"{principal} at hop limits {played.hop_limits()}")
            check_ttl_physics(played, exchange)


# --- 6. routing (the L3 rule itself: tests/test_routing.py) -----------------


def location(topology: Topology, name: str) -> str:
    return topology.stack_of(name)


def _check_waypoints(topology: Topology) -> None:
    from hopsim.routing import Router

    router = Router(topology)
    for principal in topology.principals:
        route = router.route(principal)
        if route.unreachable:
            continue
        note(f"{principal}: {route.describe()}")
        home = location(topology, principal)
        via = topology.nodes[principal].via
        actors = [s.actor for s in route.stations[1:-1]]
        nodes = [s.node for s in route.stations[1:-1]]
        at = 0
        for waypoint in via:
            is_relay = topology.nodes[waypoint].kind in (*RELAY_KINDS, "relay")
            if not is_relay and waypoint == home:
                continue  # the principal's own stack: trivially gone through
            seen = actors if is_relay else nodes
            assert waypoint in seen[at:], (principal, waypoint, route.describe())
            at = seen.index(waypoint, at)


@FAST
@given(topology_docs(l4=True))
@example(VIA_TWO_RELAYS_ON_ONE_HOST)
@example(VIA_COLOCATED_RELAY)
def test_routes_visit_via_waypoints_in_order(doc: dict[str, Any]) -> None:
    """A principal's requests go through its `via` waypoints, in order: each
    waypoint is a station (a relay as the station's actor) after the previous.
    Exempt: a non-relay waypoint that is the principal's own stack."""
    _check_waypoints(load(doc))


@pytest.mark.parametrize("via", [["p1", "p2"], ["p2", "p1"]])
def test_two_relays_on_one_host_both_relay_in_via_order(via: list[str]) -> None:
    doc = {**VIA_TWO_RELAYS_ON_ONE_HOST, "nodes": {
        **VIA_TWO_RELAYS_ON_ONE_HOST["nodes"], "c": {"kind": "container", "via": via}}}
    topology = parse(dump(doc), "<via-two-relays-on-one-host>")
    exchange = play(topology, "c")
    assert [s.actor for s in exchange.route.stations[1:-1]] == via
    # p2 adds X-Forwarded-For on the way to IMDS: the PUT is refused (403)
    assert exchange.outcome.access is Access.NONE, exchange.outcome


def test_via_relay_on_the_principals_own_host_applies_its_policy() -> None:
    """Regression (fixed in c0de225): VIA_COLOCATED_RELAY's squid relays `a`'s
    PUT and adds X-Forwarded-For, so IMDS refuses it: `a` gets no token."""
    topology = parse(dump(VIA_COLOCATED_RELAY), "<via-colocated-relay>")
    exchange = play(topology, "a")
    assert [s.actor for s in exchange.route.stations] == ["a", "squid", "imds"]
    assert exchange.outcome.access is Access.NONE, exchange.outcome

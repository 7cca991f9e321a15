"""Hypothesis strategies: random *valid* topologies, in the file format.

`topology_docs()` draws a topology as the plain mapping a YAML file holds;
`topologies()` dumps it with yaml.safe_dump and loads it with `hopsim.parse`,
so every generated topology has passed the real loader (a TopologyError here
is a bug in this generator or in the loader, never filtered away).

What the generator covers (kept small, <= 14 nodes, so replays stay fast):
- one or two imds nodes, each linked to one instance (host, router, nat or
  tunnel; hosts with or without forwarding / masquerade); two imds nodes may
  share an instance;
- a random tree over the linked nodes, sometimes with extra links (a mesh) and
  sometimes with a node left out (a forest: unreachable principals);
- bridges, routers, nats, tunnels, forwarding / masquerading / plain hosts,
  containers, clients, and L7 relays (proxy, waf, ssrf) both linked and
  `runs_on` a host, with random methods / adds_xff / forwards_headers;
- containers that `runs_on` a host;
- with `l4=True`: L4 relays (`kind: relay`, linked or on a host, some with
  block_imds) and containers on a user-space stack (`network:`, runs_on a
  host or a linked container, some at gvisor-tap-vsock 3.0.0, which refuses,
  some with block_imds);
- random roles, random `via` (relays and hosts carrying one), `family: 6`;
- forwarding per family (`forwarding: ipv4 | ipv6`), masquerading on some
  links only, and a default `gateway` on some endpoints;
- imds defaults and per-node overrides: hop_limit 1..64, http_tokens,
  http_endpoint (mostly enabled), ipv6.
Node names are drawn at random from a pool, so the lexicographic tie-break of
routing is not correlated with the shape of the graph.
"""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import strategies as st

from hopsim import parse
from hopsim.topology import Topology

INSTANCE_KINDS = ("host", "router", "nat", "tunnel")
LINKED_KINDS = ("bridge", "router", "nat", "tunnel", "host", "container", "client",
                "proxy", "waf", "ssrf")
# drawn with these weights: transit nodes more often, so paths get long
WEIGHTED_KINDS = ("bridge", "bridge", "router", "router", "nat", "tunnel", "host", "host",
                  "container", "container", "client", "proxy", "waf", "ssrf")
RELAY_KINDS = ("proxy", "waf", "ssrf")
L3_KINDS = ("router", "nat", "tunnel")
PRINCIPAL_KINDS = ("host", "container", "client")
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")

# Plain names that YAML reads back as strings; none starts with "imds" except
# the imds nodes' own pool, and none is a YAML 1.1 boolean (y, n, on, ...).
NAME_POOL = tuple(f"{a}{b}" for a in "abcegkmrtwx" for b in ("", "1", "2", "x"))
IMDS_NAMES = ("imds", "imds-b", "md")

MAX_LINKED = 9  # linked nodes besides the imds nodes and their instances
MAX_ON_HOST = 3  # nodes that runs_on a host


def _host_keys(draw: st.DrawFn) -> dict[str, Any]:
    forwarding = draw(st.sampled_from((True, True, False, False, "ipv4", "ipv6")))
    keys: dict[str, Any] = {}
    if forwarding or draw(st.booleans()):
        keys["forwarding"] = forwarding
    if forwarding and draw(st.booleans()):
        keys["masquerade"] = draw(st.booleans())
    return keys


def _relay_keys(draw: st.DrawFn) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    if draw(st.booleans()):
        keys["methods"] = [m for m in METHODS if draw(st.integers(0, 2)) == 0]
    if draw(st.booleans()):
        keys["adds_xff"] = draw(st.booleans())
    if draw(st.booleans()):
        keys["forwards_headers"] = draw(st.booleans())
    return keys


def _imds_settings(draw: st.DrawFn, *, partial: bool) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if not partial or draw(st.booleans()):
        settings["hop_limit"] = draw(st.integers(1, 64))
    if not partial or draw(st.integers(0, 3)) == 0:
        settings["http_tokens"] = draw(st.sampled_from(("required", "optional")))
    if not partial or draw(st.integers(0, 3)) == 0:
        # mostly enabled: a disabled endpoint makes every outcome `none`
        settings["http_endpoint"] = draw(st.sampled_from(
            ("enabled", "enabled", "enabled", "enabled", "disabled")))
    if not partial or draw(st.integers(0, 3)) == 0:
        settings["ipv6"] = draw(st.integers(0, 2)) == 0
    return settings


def _may_carry(name: str, nodes: dict[str, dict[str, Any]]) -> bool:
    """May `name` carry traffic: a bridge, an L3 node, a forwarding host, a relay."""
    kind = nodes[name]["kind"]
    if kind == "bridge" or kind in L3_KINDS or kind in RELAY_KINDS or kind == "relay":
        return True
    return kind == "host" and (bool(nodes[name].get("forwarding")) or _carries_relay(name, nodes))


def _carries_relay(name: str, nodes: dict[str, dict[str, Any]]) -> bool:
    return any(n.get("runs_on") == name and n["kind"] in (*RELAY_KINDS, "relay")
               for n in nodes.values())


def _is_waypoint(name: str, nodes: dict[str, dict[str, Any]]) -> bool:
    """May `name` be in `via`: a relay, or a host carrying one (issue 10)."""
    kind = nodes[name]["kind"]
    return kind in (*RELAY_KINDS, "relay") or (kind == "host" and _carries_relay(name, nodes))


def _l4_keys(draw: st.DrawFn) -> dict[str, Any]:
    keys: dict[str, Any] = {"kind": "relay"}
    if draw(st.integers(0, 3)) == 0:
        keys["block_imds"] = True
    return keys


def _stacked(draw: st.DrawFn, nodes: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """A container on a user-space stack, run by a host or a linked container."""
    places = sorted(n for n, node in nodes.items()
                    if node["kind"] == "host" or (node["kind"] == "container"
                                                  and "runs_on" not in node))
    if not places:
        return None
    node: dict[str, Any] = {"kind": "container", "runs_on": draw(st.sampled_from(places)),
                            "network": draw(st.sampled_from(
                                ("slirp4netns", "pasta", "gvisor-tap-vsock", "bypass4netns")))}
    if node["network"] == "gvisor-tap-vsock" and draw(st.booleans()):
        node["version"] = "3.0.0"
    if draw(st.integers(0, 4)) == 0:
        node["block_imds"] = True
    return node


@st.composite
def topology_docs(draw: st.DrawFn, l4: bool = False) -> dict[str, Any]:
    """A random valid topology as the mapping a YAML file would hold (with
    `l4`, L4 relays and user-space stacks too)."""
    n_imds = draw(st.integers(1, 2))
    n_linked = draw(st.integers(0, MAX_LINKED))
    n_on_host = draw(st.integers(0, MAX_ON_HOST))
    free = list(NAME_POOL)

    def fresh() -> str:
        name = draw(st.sampled_from(free))
        free.remove(name)
        return name

    nodes: dict[str, dict[str, Any]] = {}
    links: list[list[str]] = []

    # imds nodes and their instances (two imds nodes may share one instance)
    instances: list[str] = []
    imds_names = list(IMDS_NAMES[:n_imds])
    for imds in imds_names:
        node: dict[str, Any] = {"kind": "imds"}
        node.update(_imds_settings(draw, partial=True))
        nodes[imds] = node
        if instances and draw(st.integers(0, 3)) == 0:
            instance = instances[0]
        else:
            instance = fresh()
            kind = draw(st.sampled_from(INSTANCE_KINDS + ("host",)))
            nodes[instance] = {"kind": kind, **(_host_keys(draw) if kind == "host" else {})}
            instances.append(instance)
        links.append([imds, instance])

    # linked nodes: a random tree over the instances and these
    linked = list(instances)
    for _ in range(n_linked):
        name = fresh()
        kind = draw(st.sampled_from(WEIGHTED_KINDS + (("relay",) if l4 else ())))
        node = {"kind": kind}
        if kind == "host":
            node.update(_host_keys(draw))
        elif kind in RELAY_KINDS:
            node.update(_relay_keys(draw))
        elif kind == "relay":
            node.update(_l4_keys(draw))
        nodes[name] = node
        if draw(st.integers(0, 9)) > 0:  # sometimes left out: a forest
            # mostly hang it under a node that may carry traffic (long paths)
            carriers = [n for n in linked if _may_carry(n, nodes)]
            parents = carriers if carriers and draw(st.integers(0, 7)) > 0 else linked
            links.append([draw(st.sampled_from(parents)), name])
        linked.append(name)

    # extra links: meshes, cycles, parallel paths
    extra = draw(st.integers(0, 4)) if len(linked) > 2 else 0
    existing = {frozenset(link) for link in links}
    for _ in range(extra):
        a = draw(st.sampled_from(linked))
        b = draw(st.sampled_from([n for n in linked if n != a]))
        if frozenset((a, b)) not in existing:
            existing.add(frozenset((a, b)))
            links.append([a, b])

    # nodes in a host's network stack: containers and relays, no links
    hosts = [n for n, node in nodes.items() if node["kind"] == "host"]
    if hosts:
        for _ in range(n_on_host):
            name = fresh()
            kind = draw(st.sampled_from(("container",) + RELAY_KINDS
                                        + (("relay", "stacked") if l4 else ())))
            if kind == "stacked":
                stacked = _stacked(draw, nodes)
                if stacked is not None:
                    nodes[name] = stacked
                continue
            node = {"kind": kind, "runs_on": draw(st.sampled_from(hosts))}
            if kind in RELAY_KINDS:
                node.update(_relay_keys(draw))
            elif kind == "relay":
                node.update(_l4_keys(draw))
            nodes[name] = node

    # at least one principal: the loader refuses a topology without one (issue 15)
    if not any(node["kind"] in PRINCIPAL_KINDS for node in nodes.values()):
        name = fresh()
        nodes[name] = {"kind": "client"}
        links.append([draw(st.sampled_from(linked)), name])
        linked.append(name)

    # a NAT or masquerading host on some of its links only (issue 10)
    for name, node in nodes.items():
        masquerading = node["kind"] == "nat" or node.get("masquerade") is True
        neighbours = sorted({b for a, b in links if a == name} | {a for a, b in links if b == name})
        if masquerading and neighbours and draw(st.integers(0, 3)) == 0:
            node["masquerade"] = [n for n in neighbours if draw(st.booleans())]
            if not node["masquerade"] and node["kind"] == "host":
                node["masquerade"] = False

    # a default gateway on some endpoints: a forwarding neighbour (no loop:
    # an endpoint forwards nothing, so nothing comes back through it)
    for name, node in nodes.items():
        if node["kind"] not in PRINCIPAL_KINDS or "runs_on" in node or node.get("forwarding"):
            continue
        neighbours = sorted({b for a, b in links if a == name} | {a for a, b in links if b == name})
        routers = [n for n in neighbours if nodes[n]["kind"] in L3_KINDS
                   or (nodes[n]["kind"] == "host" and nodes[n].get("forwarding"))]
        if routers and draw(st.integers(0, 4)) == 0:
            node["gateway"] = draw(st.sampled_from(routers))

    # principals: roles, families, waypoints
    carriers = sorted(n for n in nodes if _is_waypoint(n, nodes))
    for name, node in nodes.items():
        if node["kind"] not in PRINCIPAL_KINDS:
            continue
        role = draw(st.sampled_from((None, None, "workload", "attacker")))
        if role:
            node["role"] = role
        if draw(st.integers(0, 4)) == 0:
            node["family"] = 6
        choices = [c for c in carriers if c != name]
        if choices and draw(st.integers(0, 3)) == 0:
            first = draw(st.sampled_from(choices))
            node["via"] = [first]
            rest = [c for c in choices if c != first]
            if rest and draw(st.integers(0, 2)) == 0:
                node["via"].append(draw(st.sampled_from(rest)))

    doc: dict[str, Any] = {
        "name": "generated",
        "description": "a random valid topology drawn by tests/strategies.py",
        "imds": _imds_settings(draw, partial=draw(st.booleans())),
        "nodes": nodes,
        "links": links,
    }
    return doc


def dump(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=None)


@st.composite
def topologies(draw: st.DrawFn) -> Topology:
    """A random valid topology, loaded by `hopsim.parse` from its YAML text."""
    text = dump(draw(topology_docs()))
    return parse(text, "<generated>")

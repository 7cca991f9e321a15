"""Plain values -> a Topology or every problem: runs the checks, numbers the
addresses, builds the Nodes; for topology files and for the importers alike."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from hopsim.imds import IPV4_ENDPOINT, IPV6_ENDPOINT, ImdsSettings
from hopsim.kinds import IMDS_KEYS, KINDS, Layer, RelayPolicy
from hopsim.products import PRODUCTS, STACKS
from hopsim.topology.checker import (
    Checker,
    check_expect,
    check_interceptors,
    check_meaning,
    check_node,
    closest,
)
from hopsim.topology.formats import (
    IMDS_FIELDS,
    RESERVED,
    RESERVED_CHARS,
    TOP_FIELDS,
    FieldTable,
    node_fields,
)
from hopsim.topology.links import (
    check_filters,
    check_imds_links,
    check_links,
    check_masquerade_links,
)
from hopsim.topology.model import Node, Problem, Topology, checked_node
from hopsim.topology.reader import show
from hopsim.topology.units import Units
from hopsim.untrusted import name_problem, name_problems

# A check of the routes a topology writes: (key path, message) of each problem.
RouteCheck = Callable[[Topology], list[tuple[tuple[str, ...], str]]]


def build(doc: Any, file: str, lines: Mapping[str, int], columns: Mapping[str, int],
          route_problems: RouteCheck) -> tuple[Topology | None, list[Problem]]:
    """Plain values -> Topology, or every problem. The routes a file writes
    are checked by `route_problems` (routing.written_route_problems, passed in
    by the loader: routing is built on this package)."""
    check = Checker(file, lines)
    if not isinstance(doc, dict):
        check.add((), "expected a mapping with keys name, description, nodes, links")
        return None, check.problems
    top = check.fields(doc, (), FieldTable(TOP_FIELDS), "a topology")

    defaults = check.fields(top.get("imds", {}), ("imds",),
                            FieldTable(IMDS_FIELDS), "imds defaults")
    if "units" not in top:
        for key in ("nodes", "links"):
            if key not in doc:
                check.add((), f"missing required key {key!r} for a topology")
    raw_nodes: dict[str, Any] = dict(top.get("nodes", {}))
    top_links = list(top.get("links", []))
    for name in raw_nodes:
        if isinstance(name, str) and not RESERVED_CHARS.isdisjoint(name):
            check.add(("nodes", name), f"a node name cannot contain {' or '.join(RESERVED)}: "
                      "UNIT/NODE names a unit's node, NODE#3 one of its replicas")
    units = Units(check, top.get("units", {}), lines, columns, len(top_links))
    raw_nodes |= units.nodes
    if isinstance(top.get("name"), str) and name_problem(top["name"]):
        check.add(("name",), str(name_problem(top["name"])))
    nodes: dict[str, dict[str, Any]] = {}
    # The one check of names (hopsim/untrusted.py), all at once.
    refusals = name_problems([name for name in raw_nodes if isinstance(name, str)])
    passed: set[tuple[tuple[str, Any], ...]] = set()  # node mappings found right
    # Each node's shape, made once for the checks below and for _make_nodes,
    # and one tuple per shape, shared (a fleet's 100,000s of nodes have a few).
    shapes: dict[str, tuple[tuple[str, Any], ...] | None] = {}
    interned: dict[tuple[tuple[str, Any], ...], tuple[tuple[str, Any], ...]] = {}
    for name, raw in raw_nodes.items():
        path = ("nodes", name)
        if not isinstance(name, str):
            check.add(path, f"a node name must be a string, got {show(name)}")
            continue
        refused = refusals.get(name)
        if refused:
            check.add(path, refused)
            continue
        if not isinstance(raw, dict):
            check.add(path, f"expected a mapping such as {{kind: host}}, got {show(raw)}")
            continue
        kind = raw.get("kind")
        if not isinstance(kind, str) or kind not in KINDS:
            if "kind" not in raw:
                check.add(path, "missing required key 'kind'")
            else:
                check.add(path + ("kind",), f"unknown kind {show(kind)}{closest(kind, KINDS)}; "
                          f"expected one of {', '.join(KINDS)}")
            continue
        shape = _shape(raw)
        shape = shapes[name] = None if shape is None else interned.setdefault(shape, shape)
        if shape in passed:  # written as a node found right: the same values
            nodes[name] = dict(raw)
            continue
        found = len(check.problems)
        nodes[name] = check.fields(raw, path, node_fields(kind), f"a {kind} node")
        nodes[name]["kind"] = kind
        if len(check.problems) != found:  # what is kept is not what is written
            shapes[name] = _shape(nodes[name])
        elif shape is not None:
            passed.add(shape)

    names = set(nodes) | {n for n in raw_nodes if isinstance(n, str)}
    passed.clear()
    for name, raw in nodes.items():
        # What check_node finds depends on the node's values and the others'
        # names, and on its own name only through via (its own waypoint),
        # runs_on naming itself, and network (a ring of runs_on through it):
        # those are checked each. The containers of one host are written
        # alike, runs_on and all: checked once.
        alone = "via" in raw or ("runs_on" in raw and ("network" in raw
                                                       or raw["runs_on"] == name))
        shape = None if alone else shapes[name]
        if shape in passed:
            continue
        found = len(check.problems)
        check_node(check, name, raw, nodes, names)
        if shape is not None and len(check.problems) == found:
            passed.add(shape)

    links = check_links(check, top_links + units.links, nodes, names)
    expect = check_expect(check, top.get("expect", {}), nodes, names)
    check_imds_links(check, nodes, links)
    check_masquerade_links(check, nodes, links)
    check_filters(check, nodes, links)
    check_interceptors(check, nodes)
    if not check.problems:  # a node refused for its kind would be a second, wrong line
        check_meaning(check, nodes)

    if check.problems:
        return None, units.located(check.problems)
    built = _make_nodes(check, nodes, shapes, defaults, units.counts)
    if check.problems:
        return None, units.located(check.problems)
    topology = Topology(top["name"], top["description"], file, built, tuple(links), expect,
                        dict(lines), dict(columns), units.units)
    if any(node.gateway or node.routes for node in built.values()):
        # Written routes are checked by walking the tables they join.
        for path, message in route_problems(topology):
            check.add(path, message)
        if check.problems:
            return None, units.located(check.problems)
    return topology, []


def _shape(raw: Mapping[str, Any]) -> tuple[tuple[str, Any], ...] | None:
    """A node mapping's keys and values, in order, as a key for nodes written
    alike; None when a value is a list or mapping."""
    try:
        shape = tuple(raw.items())
        hash(shape)
    except TypeError:
        return None
    return shape


def _make_nodes(check: Checker, nodes: Mapping[str, dict[str, Any]],
                shapes: Mapping[str, tuple[tuple[str, Any], ...] | None],
                defaults: Mapping[str, Any], counts: Mapping[str, int]) -> dict[str, Node]:
    """Turn checked mappings, of the shapes `shapes` gives (_shape's), into
    Nodes, with deterministic addresses. Nodes written alike (the same keys
    and values: a fleet has a handful of shapes) share one set of values,
    worked out once; each gets its own name, addresses and replica count."""
    order = sorted(nodes)
    v4 = _addresses(check, nodes, order, "address", _POOL4)
    v6 = _addresses(check, nodes, order, "address6", _POOL6)
    built: dict[str, Node] = {}
    alike: dict[tuple[tuple[str, Any], ...], dict[str, Any]] = {}
    for name in order:
        raw = nodes[name]
        shape = shapes[name]
        values = None if shape is None else alike.get(shape)
        if values is None:
            values = _node_values(raw, defaults)
            if shape is not None:
                alike[shape] = values
        # per node: where its runs_on chain ends
        stack = name if raw.get("runs_on") is None else _stack_of(nodes, name)
        own = values.copy()  # the same keys in the same order, its own filled in
        own["name"] = name
        own["address"], own["address6"] = v4.get(stack, ""), v6.get(stack, "")
        own["replicas"] = counts.get(name, 1) * values["replicas"]
        built[name] = checked_node(own)
    return built


def _stack_of(nodes: Mapping[str, dict[str, Any]], name: str) -> str:
    """The node with links whose stack `name` sends from: its runs_on, followed
    (a rootless container whose runs_on is a host-network container)."""
    seen = {name}
    while (host := nodes[name].get("runs_on")) and host in nodes and host not in seen:
        seen.add(host)
        name = host
    return name


def _node_values(raw: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """A Node's values from its checked mapping, but for its name and addresses
    (None here) and its unit's count (replicas is the node's own)."""
    spec = KINDS[raw["kind"]]
    relay = None
    product = raw.get("product")
    setup = PRODUCTS[product].setup(raw.get("mode"), spec.name) if product else None
    if spec.relay is not None:
        base = setup.policy if setup else spec.relay
        relay = RelayPolicy(
            methods=raw.get("methods", base.methods),
            adds_xff=raw.get("adds_xff", base.adds_xff),
            forwards_headers=raw.get("forwards_headers", base.forwards_headers),
            refusal_status=base.refusal_status, sends_method=base.sends_method,
            # An L4 relay's block_imds is the product's own refusal to open
            # a connection to the metadata addresses (not a blackhole route).
            refuses_imds=spec.layer is Layer.L4 and raw.get("block_imds", False),
        )
    network = raw.get("network")
    if network is not None:  # its stack re-opens each connection, as an L4 relay
        relay = STACKS[network].policy(raw.get("version"))
    imds = None
    if spec.name == "imds":
        own = {k: raw[k] for k in IMDS_KEYS if k in raw}
        imds = ImdsSettings(**{**defaults, **own})
    via = raw.get("via")
    masquerade = raw.get("masquerade", False)
    if masquerade.__class__ is list:
        masquerade = tuple(masquerade)
    routes = raw.get("routes")
    return dict(
        name=None, kind=spec.name, address=None, address6=None,
        role=raw.get("role"), runs_on=raw.get("runs_on"), via=tuple(via) if via else (),
        family=raw.get("family", 4), forwarding=raw.get("forwarding", False),
        masquerade=masquerade, relay=relay, imds=imds,
        description=raw.get("description", ""), instance=raw.get("instance"),
        product=product, mode=setup.mode if setup else None,
        replicas=raw.get("replicas", 1),
        gateway=raw.get("gateway"), routes=tuple(routes.items()) if routes else (),
        filters=raw.get("filters", ()), block_imds=raw.get("block_imds", False),
        intercepts=raw.get("intercepts", False),
        network=network, version=raw.get("version"),
    )


def _addresses(check: Checker, nodes: Mapping[str, dict[str, Any]], order: list[str],
               key: str, pool: ipaddress.IPv4Network | ipaddress.IPv6Network) -> dict[str, str]:
    """Deterministic addresses: pinned ones first, then the pool in name order.

    A node that runs on a host shares the host's address (it is in its stack);
    imds answers on the link-local endpoints.
    """
    endpoint = IPV4_ENDPOINT if key == "address" else IPV6_ENDPOINT
    assigned: dict[str, str] = {}
    owner: dict[str, str] = {}
    numbered: list[str] = []  # the nodes that take the pool's next address
    for name in order:
        raw = nodes[name]
        if raw["kind"] == "imds":
            assigned[name] = endpoint
        elif key in raw:
            address = str(ipaddress.ip_address(raw[key]))
            if address in owner:
                check.add(("nodes", name, key), f"address {address} is also "
                          f"{show(owner[address])}'s")
            owner[address] = name
            assigned[name] = address
        elif not raw.get("runs_on"):
            numbered.append(name)
    taken = set(owner)
    free = (a for a in _hosts(pool) if a not in taken) if taken else _hosts(pool)
    assigned.update(zip(numbered, free, strict=False))  # the pool outlasts the nodes
    return assigned


def _hosts(pool: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Iterator[str]:
    """The pool's host addresses as text, in order, without IPv4's x.x.x.0 and
    x.x.x.255: what str(ipaddress.ip_address(n)) gives, written 256 or 65,536 at
    a time without a call per address (a fleet numbers 100,000s of nodes, and
    ipaddress took most of the load)."""
    first, last = int(pool.network_address) + 1, int(pool.broadcast_address) - 1
    if pool.version == 4:
        for block in range(first >> 8, (last >> 8) + 1):
            head = f"{block >> 16}.{block >> 8 & 255}.{block & 255}."
            lows = range(max(first - (block << 8), 1), min(last - (block << 8), 254) + 1)
            yield from map(head.__add__, map(str, lows))
        return
    if pool is _POOL6:  # fd00:1::HI:LO, zeros compressed (RFC 5952), up to 2**32 hosts
        for high in range(1 << 16):
            head = f"fd00:1::{high:x}:" if high else "fd00:1::"
            yield from map(head.__add__, map("%x".__mod__, range(0 if high else 1, 1 << 16)))
        first = _POOL6_START + (1 << 32)
    yield from map(str, map(ipaddress.ip_address, range(first, last + 1)))


_POOL4 = ipaddress.ip_network("10.0.0.0/8")
_POOL6 = ipaddress.ip_network("fd00:1::/64")
_POOL6_START = int(_POOL6.network_address)

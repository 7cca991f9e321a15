"""Plain values -> a Topology or every problem: runs the checks, numbers the
addresses, builds the Nodes; for topology files and for the importers alike."""

from __future__ import annotations

import ipaddress
from bisect import bisect_left
from collections.abc import Callable, Iterable, KeysView, Mapping, Sequence
from copy import deepcopy
from itertools import chain, repeat
from operator import eq, itemgetter
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
    check_imds_peers,
    check_links,
    check_masquerade_links,
)
from hopsim.topology.model import Node, Nodes, Problem, Topology, checked_node, neighbours
from hopsim.topology.reader import show
from hopsim.topology.units import Units
from hopsim.untrusted import name_problem, name_problems

# A check of the routes a topology writes: (key path, message) of each problem.
RouteCheck = Callable[[Topology], list[tuple[tuple[str, ...], str]]]
# Where the keys of a document read without lines are (JSON), found when asked.
Positions = Callable[[], tuple[dict[str, int], dict[str, int]]]

# Files of at least this many nodes are checked once per way of writing a
# node; smaller ones node by node, where the bookkeeping costs more than it
# saves (a folder of 3,000 ten-node files: 9% slower per shape). None: every
# file node by node, the reference tests/test_alike.py compares every output
# with (which sets 0 for the other side).
ALIKE_FROM: int | None = 64


def build(doc: Any, file: str, lines: Mapping[str, int], columns: Mapping[str, int],
          route_problems: RouteCheck, positions: Positions | None = None
          ) -> tuple[Topology | None, list[Problem]]:
    """Plain values -> Topology, or every problem. The routes a file writes
    are checked by `route_problems` (routing.written_route_problems, passed in
    by the loader: routing is built on this package).

    A file whose nodes and links are right is checked one way of writing a
    node at a time (_alike: a fleet's 100,000s of nodes are written a few
    thousand ways); a file with a problem, or with units, node by node
    (_each), which says every problem in the order and at the lines it always
    has: with `positions` (a document read without lines), once they are found."""
    nodes = doc.get("nodes") if isinstance(doc, dict) else None
    if ALIKE_FROM is not None and len(nodes if isinstance(nodes, dict) else ()) >= ALIKE_FROM:
        topology, wrong = _alike(doc, file, lines, columns, route_problems)
        if topology is not None:
            return topology, []
        if wrong and positions is not None:
            lines, columns = positions()
            positions = None
    topology, problems = _each(doc, file, lines, columns, route_problems)
    if problems and positions is not None:  # found without lines: again, with them
        lines, columns = positions()
        topology, problems = _each(doc, file, lines, columns, route_problems)
    return topology, problems


def _each(doc: Any, file: str, lines: Mapping[str, int], columns: Mapping[str, int],
          route_problems: RouteCheck) -> tuple[Topology | None, list[Problem]]:
    """build, node by node: every check on every node, every problem said."""
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
        nodes[name] = check.fields(raw, path, node_fields(kind), f"a {kind} node")
        nodes[name]["kind"] = kind

    names = set(nodes) | {n for n in raw_nodes if isinstance(n, str)}
    for name, raw in nodes.items():
        check_node(check, name, raw, nodes, names)

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
    built = _make_nodes(check, nodes, defaults, units.counts)
    if check.problems:
        return None, units.located(check.problems)
    topology = Topology(top["name"], top["description"], file, built, tuple(links), expect,
                        dict(lines), dict(columns), units.units)
    if any(node.gateway or node.routes for node in built.like.values()):
        # Written routes are checked by walking the tables they join.
        for path, message in route_problems(topology):
            check.add(path, message)
        if check.problems:
            return None, units.located(check.problems)
    return topology, []


def _alike(doc: Any, file: str, lines: Mapping[str, int], columns: Mapping[str, int],
           route_problems: RouteCheck) -> tuple[Topology | None, bool]:
    """build, for a file whose nodes and links are right: the checks that look
    at one node made once for each way a node is written (its keys and values
    in order, its name apart), the links checked in bulk, and each Node made
    when it is read (Nodes). (None, True) at the first problem, which _each
    then finds with every other; (None, False) for what it leaves to _each
    (units, a document that is not a mapping).

    What check_node finds of a node depends on its own name only through
    runs_on naming itself and network (a ring of runs_on through it); via,
    routes and masquerade lists are lists and mappings, so such nodes are
    written alike with no other: nodes with network, and those, are checked
    each."""
    if doc.__class__ is not dict or "units" in doc:
        return None, False
    check = Checker(file, lines)
    top = check.fields(doc, (), FieldTable(TOP_FIELDS), "a topology")
    defaults = check.fields(top.get("imds", {}), ("imds",),
                            FieldTable(IMDS_FIELDS), "imds defaults")
    raw_nodes, raw_links = top.get("nodes"), top.get("links")
    if check.problems or raw_nodes is None or raw_links is None or name_problem(top["name"]):
        return None, True
    if not raw_nodes:
        return None, False
    if set(map(type, raw_nodes)) - {str}:
        return None, True
    joined = "".join(raw_nodes)
    if any(c in joined for c in RESERVED) or name_problems(list(raw_nodes)):
        return None, True

    groups: dict[tuple[tuple[str, Any], ...], list[str]] = {}
    alone: list[str] = []  # nodes written with a list or mapping: a shape of their own
    for name, raw in raw_nodes.items():
        try:
            shape = tuple(raw.items())
            members = groups.get(shape)
        except AttributeError:  # not a mapping
            return None, True
        except TypeError:
            alone.append(name)
            continue
        if members is None:
            groups[shape] = [name]
        else:
            members.append(name)
    # Each shape's first node is checked for all, but a node on a user-space
    # stack follows runs_on from its own name, and a node may run on itself.
    firsts: list[str] = []
    for members in groups.values():
        raw = raw_nodes[members[0]]
        if len(members) > 1 and "network" in raw:
            alone += members[1:]
            del members[1:]
        elif len(members) > 1 and raw.get("runs_on") is not None and raw["runs_on"] in members:
            return None, True  # a node that runs on itself
        firsts.append(members[0])
    checking = (*firsts, *alone)
    firsts_set = set(firsts)
    for name in checking:  # every kind first: check_node reads the other nodes' kinds
        kind = raw_nodes[name].get("kind")
        if kind.__class__ is not str or kind not in KINDS:
            return None, True
    names = raw_nodes.keys()
    checked: dict[str, dict[str, Any]] = {}  # each node checked, by the first of its shape
    for name in checking:
        raw = raw_nodes[name]
        # The checks change what they read (a route to no node is dropped):
        # _each must find the document as written, so the lists and mappings
        # of a node written with them are checked in a copy.
        checked[name] = check.fields(raw if name in firsts_set else deepcopy(raw),
                                     ("nodes", name), node_fields(raw["kind"]),
                                     f"a {raw['kind']} node")
    if check.problems:
        return None, True
    for name in checking:
        check_node(check, name, checked[name], raw_nodes, names)  # type: ignore[arg-type]
    if check.problems:
        return None, True
    # The nodes as the checks below read them: as written, but those checked
    # alone, whose lists check_node made tuples (methods). Each check that may
    # change a node it looks at (filters) is given copies: the document must
    # stay as written for _each.
    nodes = {**raw_nodes, **{name: checked[name] for name in alone}}

    def having(test: Callable[[dict[str, Any]], bool]) -> list[str]:
        """The nodes whose checked values pass `test`, tested once per shape."""
        found: list[str] = []
        for first, members in zip(firsts, groups.values(), strict=True):
            if test(checked[first]):
                found += members
        return found + [n for n in alone if test(checked[n])]

    hosted = set(having(lambda raw: "runs_on" in raw))
    replicated = set(having(lambda raw: raw.get("replicas", 1) > 1))
    links = _plain_links(raw_links, names, hosted, replicated)
    if links is None:
        return None, True
    expect = check_expect(check, top.get("expect", {}), nodes, names)  # type: ignore[arg-type]
    imds = having(lambda raw: raw["kind"] == "imds")
    imds_peers = neighbours(links, sorted(imds))
    check_imds_peers(check, nodes, imds_peers)
    check_masquerade_links(check, nodes, links, alone)
    check_filters(check, nodes, links, {
        n: checked[n] if n in alone else dict(nodes[n])
        for n in having(lambda raw: "filters" in raw or "block_imds" in raw)})
    check_interceptors(check, nodes, having(lambda raw: bool(raw.get("intercepts"))))
    if check.problems or not imds or not having(lambda raw: KINDS[raw["kind"]].principal):
        return None, True  # (the last two: check_meaning's)
    pinned = _written_addresses(check, raw_nodes, sorted(having(
        lambda raw: ("address" in raw or "address6" in raw) and raw["kind"] != "imds")))
    if check.problems:
        return None, True  # an address written twice

    order = sorted(raw_nodes)
    like: dict[str, Node] = {}  # name -> its shape's Node, made below
    shapes: list[tuple[Node, list[str]]] = []
    for first, members in zip(firsts, groups.values(), strict=True):
        shapes.append((_shaped(checked[first], defaults), members))
    shapes += [(_shaped(checked[name], defaults), [name]) for name in alone]
    for node, members in shapes:
        like.update(zip(members, repeat(node)))
    like = dict(zip(order, map(like.__getitem__, order), strict=True))
    addresses = _Addresses(like, order, imds, pinned, hosted)
    topology = Topology(top["name"], top["description"], file, Nodes(like, shapes, addresses),
                        tuple(links), expect, dict(lines), dict(columns))
    topology.__dict__["imds_peers"] = imds_peers  # the same cached value, found above
    if any(node.gateway or node.routes for node, _ in shapes) and route_problems(topology):
        return None, True
    return topology, False


def _plain_links(raw: Any, names: KeysView[str], hosted: set[str], replicated: set[str]
                 ) -> list[tuple[str, str]] | None:
    """The links as pairs, or None if any is wrong (check_links says how):
    each a list of two names of distinct nodes, neither running on a host, not
    both replicated, none twice either way. Checked in bulk: a fleet has
    100,000s."""
    if not raw:
        return []
    try:
        if set(map(type, raw)) != {list} or set(map(len, raw)) != {2}:
            return None
        ends = set(chain.from_iterable(raw))
    except TypeError:  # an end that is a list or mapping
        return None
    if not names >= ends:  # (the names are strings: so is every end, then)
        return None
    pairs = list(map(tuple, raw))
    if any(map(eq, map(itemgetter(0), pairs), map(itemgetter(1), pairs))):
        return None
    if not hosted.isdisjoint(ends):
        return None
    if replicated and any(a in replicated and b in replicated for a, b in pairs):
        return None
    ways = set(pairs)
    backwards = zip(map(itemgetter(1), pairs), map(itemgetter(0), pairs), strict=True)
    if len(ways) < len(pairs) or not ways.isdisjoint(backwards):
        return None  # a link written twice
    return pairs  # type: ignore[return-value]


def _shaped(raw: Mapping[str, Any], defaults: Mapping[str, Any]) -> Node:
    """The Node of every node written as `raw` is: its name and addresses None."""
    return checked_node(_node_values(raw, defaults))


def _make_nodes(check: Checker, nodes: Mapping[str, dict[str, Any]],
                defaults: Mapping[str, Any], counts: Mapping[str, int]) -> Nodes:
    """Checked mappings -> Nodes, each node on its own, with its unit's count;
    an address written twice is a problem."""
    order = sorted(nodes)
    like: dict[str, Node] = {}
    for name in order:
        values = _node_values(nodes[name], defaults)
        values["replicas"] = counts.get(name, 1) * values["replicas"]
        like[name] = checked_node(values)
    imds = [name for name in order if nodes[name]["kind"] == "imds"]
    pinned = _written_addresses(check, nodes, order)
    hosted = {name for name in order if nodes[name].get("runs_on")}
    return Nodes(like, None, _Addresses(like, order, imds, pinned, hosted))


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


def _written_addresses(check: Checker, nodes: Mapping[str, dict[str, Any]],
                       names: Sequence[str]) -> list[dict[str, str]]:
    """Per family, the address each of `names` (but imds nodes, which answer
    on the metadata endpoints) writes; one written twice is a problem."""
    pinned: list[dict[str, str]] = [{}, {}]
    for family, key in enumerate(("address", "address6")):
        owner: dict[str, str] = {}
        for name in names:
            if key in nodes[name] and nodes[name]["kind"] != "imds":
                address = pinned[family][name] = str(ipaddress.ip_address(nodes[name][key]))
                if address in owner:
                    check.add(("nodes", name, key), f"address {address} is also "
                              f"{show(owner[address])}'s")
                owner[address] = name
    return pinned


class _Addresses:
    """Each node's IPv4 and IPv6 address, worked out when asked: an imds node
    answers on the metadata endpoints; a node that writes an address has it;
    a node that runs on another (a container on its host, a rootless one on
    its container) sends from that node's stack, with its address; the others
    are numbered from the pools in name order, the written addresses taken
    out. A node's number is its place in that order, found by bisection, so
    a fleet's 100,000s of addresses cost nothing until a report shows one."""

    __slots__ = ("found", "like", "pools")

    def __init__(self, like: Mapping[str, Node], order: list[str], imds: list[str],
                 pinned: list[dict[str, str]], hosted: set[str]):
        self.like = like
        self.found: dict[str, tuple[str, str]] = {}  # the addresses asked for so far
        self.pools = [_Pool(order, dict.fromkeys(imds, endpoint) | own,
                            sorted({*imds, *own, *hosted}), own.values(), pool)
                      for own, endpoint, pool in zip(pinned, (IPV4_ENDPOINT, IPV6_ENDPOINT),
                                                     (_POOL4, _POOL6), strict=True)]

    def __call__(self, name: str) -> tuple[str, str]:
        found = self.found.get(name)
        if found is None:
            stack = name
            seen = {name}
            while (host := self.like[stack].runs_on) is not None and host in self.like \
                    and host not in seen:
                seen.add(host)
                stack = host
            found = self.found[name] = (self.pools[0].address(stack), self.pools[1].address(stack))
        return found


class _Pool:
    """One family's addresses: `fixed` ones (the metadata endpoint, written
    ones), and the pool's, in name order, for the nodes not `excluded`."""

    __slots__ = ("excluded", "fixed", "order", "pool", "taken")

    def __init__(self, order: list[str], fixed: dict[str, str], excluded: list[str],
                 written: Iterable[str], pool: ipaddress.IPv4Network | ipaddress.IPv6Network):
        self.order, self.fixed, self.excluded, self.pool = order, fixed, excluded, pool
        # The pool's addresses that a node writes, by their place in the pool.
        self.taken = sorted({i for a in set(written) if (i := _pool_index(pool, a)) is not None})

    def address(self, name: str) -> str:
        fixed = self.fixed.get(name)
        if fixed is not None:
            return fixed
        before = bisect_left(self.excluded, name)
        if before < len(self.excluded) and self.excluded[before] == name:
            return ""  # it runs on a node, but on none that has a stack (a problem)
        index = bisect_left(self.order, name) - before  # the numbered nodes before it
        for taken in self.taken:
            if taken > index:
                break
            index += 1
        return _pool_address(self.pool, index)


def _pool_address(pool: ipaddress.IPv4Network | ipaddress.IPv6Network, index: int) -> str:
    """The pool's `index`-th host address as text ("" past its last), IPv4's
    x.x.x.0 and x.x.x.255 left out: what str(ipaddress.ip_address(n)) gives,
    written without it where that is quick (a walk makes its nodes' Nodes,
    and a folder of small files makes every node's)."""
    first, last = int(pool.network_address) + 1, int(pool.broadcast_address) - 1
    if pool.version == 4:  # 254 a block: x.x.x.1 to x.x.x.254
        block, low = divmod(index, 254)
        block += first >> 8
        if (block << 8 | (low + 1)) > last:
            return ""
        return f"{block >> 16}.{block >> 8 & 255}.{block & 255}.{low + 1}"
    if first + index > last:
        return ""
    offset = index + 1
    if pool is _POOL6 and offset < 1 << 32:  # fd00:1::HI:LO, zeros compressed (RFC 5952)
        high, low = divmod(offset, 1 << 16)
        return f"fd00:1::{high:x}:{low:x}" if high else f"fd00:1::{low:x}"
    return str(ipaddress.IPv6Address(first + index))


def _pool_index(pool: ipaddress.IPv4Network | ipaddress.IPv6Network, text: str) -> int | None:
    """The place of an address among the pool's host addresses (_pool_address's
    index), or None if it is not one of them."""
    ip = ipaddress.ip_address(text)
    address = int(ip)
    first, last = int(pool.network_address) + 1, int(pool.broadcast_address) - 1
    if ip.version != pool.version or not first <= address <= last:
        return None
    if pool.version == 4:
        low = address & 255
        if low in (0, 255):
            return None
        return ((address >> 8) - (first >> 8)) * 254 + low - 1
    return address - first


_POOL4 = ipaddress.ip_network("10.0.0.0/8")
_POOL6 = ipaddress.ip_network("fd00:1::/64")

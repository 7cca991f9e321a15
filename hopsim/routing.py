"""Which nodes a principal's packets cross, each way, and as what.

One module on purpose, at about 700 lines: segments, per-node tables,
routes, relay levels and the responses' own ways are one algorithm over
caches they share (the segments, one tree per destination, the relay
levels); split, each part would reach into the others' caches.

Routing as the kernel does it, per IP family (docs/routing.md):

- An L2 segment (the links and bridges between L3 interfaces) is one hop: a
  node reaches every other node on a segment it is on directly.
- Each node picks its next hop towards a destination from its own table.
  Unless the file writes one (`routes:`, `gateway:`), the table holds, for
  each destination, the neighbour (a node sharing a segment) that forwards
  the packet across the fewest forwarding nodes (routers, NATs, tunnels,
  hosts that forward that family). Among equal ones, the smallest name;
  between two segments to one neighbour, the segment whose L3 members sort
  first. Only L3 names take part: renaming or adding a bridge changes nothing.
- The request and the response are routed independently, each by its
  destination: the request towards IMDS (or the relay it is addressed to),
  the response towards the segment the request left from; a masquerading
  node's address stands in for the source behind it, so the response goes
  to the NAT first, which restores the destination and routes it on.
- Relays (L4 and L7) end one TCP connection and open the next: a route is
  cut into legs at them. A principal on a user-space network stack
  (`network:`, a rootless container) has its connections ended by that
  stack, which re-opens them in its runs_on node's stack: its first leg is
  local, not routed, and its next leaves from there. A principal's `via`
  names the relays it addresses, in order.
  Where no L3 route to IMDS exists, the nearest relay that leads there is
  used (fewest relays first, then fewest forwarding nodes).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from typing import NamedTuple

from hopsim.kinds import ENDS_TCP_KINDS, KINDS_AT, Layer
from hopsim.topology import FAMILIES, Topology


class Part(Enum):
    """The part a node plays in one principal's exchange: what it does to the
    packets (not `Node.role`, which says whether a principal may hold a token)."""

    ORIGIN = "origin"  # the principal (in its own namespace, or in its host's stack)
    BRIDGE = "bridge"  # L2: passes frames unchanged
    ROUTE = "route"  # L3: TTL -1, drop at TTL <= 1 (and NAT if it masquerades)
    RELAY = "relay"  # ends TCP, re-sends with a fresh TTL: a relay, or a user-space stack
    IMDS = "imds"


@dataclass(frozen=True)
class Station:
    """One place on a path: `node` is the graph node; `relay` the relay that
    handles the traffic there (the node itself, a relay that runs on it, or a
    principal on a user-space stack, whose stack re-opens its connections);
    `nat` that a ROUTE station rewrites this packet's source (on a request) or
    restores its destination (on a response)."""

    node: str
    part: Part
    relay: str | None = None
    nat: bool = False

    @property
    def actor(self) -> str:
        """The name that acts here: the relay when a host carries one."""
        return self.relay or self.node


@dataclass(frozen=True)
class Route:
    """A principal's path to IMDS and back, or why there is none.

    `stations` is the request's path, from the principal to IMDS; `returns`
    holds, for each leg, the path its response takes back, from the leg's
    end to its start.
    """

    principal: str
    stations: tuple[Station, ...] = ()
    unreachable: str | None = None
    returns: tuple[tuple[Station, ...], ...] = ()

    @property
    def imds(self) -> str | None:
        return self.stations[-1].node if self.stations else None

    @property
    def legs(self) -> list[tuple[Station, ...]]:
        """The TCP connections' request paths: split at every relay."""
        legs, start = [], 0
        for i, station in enumerate(self.stations):
            if i > 0 and station.part in (Part.RELAY, Part.IMDS):
                legs.append(self.stations[start : i + 1])
                start = i
        return legs

    @property
    def way_back(self) -> tuple[Station, ...]:
        """The answers' stations from IMDS back to the principal, leg after leg."""
        stations: list[Station] = []
        for back in reversed(self.returns):
            stations += back if not stations else back[1:]
        return tuple(stations)

    @property
    def token_path(self) -> tuple[Station, ...]:
        """The stations the token response crosses, from IMDS to its receiver."""
        return self.returns[-1] if self.returns else ()

    @property
    def token_routers(self) -> tuple[str, ...]:
        """The L3 nodes the token response crosses before it reaches the first
        relay or the principal, in the order it meets them (from IMDS)."""
        return tuple(s.node for s in self.token_path[1:-1] if s.part is Part.ROUTE)

    @property
    def symmetric(self) -> bool:
        """Whether every response retraces its request (bridges aside)."""
        return all(_l3(back) == _l3(tuple(reversed(leg)))
                   for leg, back in zip(self.legs, self.returns, strict=True))

    def describe(self) -> str:
        return _describe(self.stations)

    def describe_returns(self) -> str:
        """The responses' paths, leg by leg from IMDS: `a -> b; c -> d`."""
        return "; ".join(_describe(back) for back in reversed(self.returns))


def _l3(stations: Iterable[Station]) -> tuple[str, ...]:
    return tuple(s.node for s in stations if s.part is not Part.BRIDGE)


def _describe(stations: Iterable[Station]) -> str:
    parts = []
    for station in stations:
        name = station.node
        if station.relay and station.relay != station.node:
            name = f"{station.node}[{station.relay}]"
        parts.append(name)
    return " -> ".join(parts)


class Segment(NamedTuple):
    """An L2 segment: the L3 interfaces (`members`) that reach each other
    without a router, and the bridges between them."""

    index: int
    members: tuple[str, ...]  # the non-bridge nodes on it, by name
    bridges: frozenset[str]


Hop = tuple[str, int]  # (next node, the segment it is reached on)
DIRECT = ""  # a next hop of DIRECT: the destination is on that segment


class Tree:
    """Next hops towards one destination in one family, found lazily: a BFS
    by forwarding nodes crossed, layer by layer, each layer in name order, so
    the first neighbour to reach a node is its best (fewest, then smallest).

    A destination is a set of target segments, each with the node that is
    delivered to there (or None: whoever the packet is addressed to).
    """

    def __init__(self, router: Router, family: int, targets: dict[int, str | None],
                 goal: frozenset[str]):
        self.router, self.family, self.goal = router, family, goal
        # A node with block_imds holds a blackhole route for the metadata
        # addresses: it neither reaches IMDS nor forwards towards it.
        blocked = self.blocked = router.blocked if goal and goal <= router.imds else frozenset()
        self.dist: dict[str, int] = {}
        self.next: dict[str, Hop] = {}
        # How many best ways a node has (1, or 2 for "more than one"): with one,
        # the way back from the destination is the same way reversed.
        self.ways: dict[str, int] = {}
        layer: dict[str, None] = {}
        for index in sorted(targets):
            for member in router.members[index]:
                if member in goal or member in blocked:
                    continue
                if member in self.dist:
                    self.ways[member] = 2
                    continue
                self.dist[member] = 0
                self.ways[member] = 1
                self.next[member] = (targets[index] or DIRECT, index)
                layer[member] = None
        self.frontier = sorted(layer)
        self.depth = 0

    def settle(self, name: str) -> Hop | None:
        """The next hop of `name`, growing the tree until it has one."""
        while name not in self.next and self.frontier:
            self._grow()
        return self.next.get(name)

    def complete(self) -> Tree:
        while self.frontier:
            self._grow()
        return self

    def _grow(self) -> None:
        router, found = self.router, {}
        depth = self.depth + 1
        dist, ways, goal, blocked = self.dist, self.ways, self.goal, self.blocked
        forwarders = router.forwarders(self.family)
        for here in self.frontier:
            if here not in forwarders:
                continue
            for index in router.segments_of(here):
                for member in router.members[index]:
                    seen = dist.get(member)
                    if seen is None:
                        if member not in goal and member not in blocked:
                            dist[member] = depth
                            ways[member] = ways[here]
                            self.next[member] = (here, index)
                            found[member] = None
                    elif seen == depth:
                        ways[member] = 2
        self.frontier = sorted(forwarders.intersection(found))  # only they grow it further
        self.depth = depth


class Router:
    """Routes for one topology: segments, each node's tables (as trees, one per
    destination and family, grown as far as asked), and principals' routes."""

    def __init__(self, topology: Topology):
        self.topology = topology
        self.imds = frozenset(topology.imds_nodes)
        self._trees: dict[tuple[int, object], Tree] = {}
        self._parts: dict[tuple[str, int], tuple[Part, str | None] | None] = {}
        self._segments()
        # What a few nodes write, looked for once per way of writing a node.
        nodes, like = topology.nodes, topology.like
        self._static = set(nodes.where(lambda node: bool(node.gateway or node.routes)))
        # A relay's block_imds is its own refusal (RelayPolicy.refuses_imds), not a route.
        self.blocked = frozenset(nodes.where(
            lambda node: node.block_imds and node.kind not in ENDS_TCP_KINDS))
        self.filtering = bool(nodes.where(lambda node: bool(node.filters)))
        self.written = bool(self._static)  # the file writes routes of its own
        # host -> the relay its DNAT sends what it routes towards IMDS to
        self.interceptors = {like[n].runs_on: n for n in sorted(nodes.where(
            lambda node: node.intercepts and node.runs_on is not None))}

    # -- segments --------------------------------------------------------------

    def _segments(self) -> None:
        """Bridges and links grouped into L2 segments (a union of bridges).
        (A fleet has 100,000s of links, most a segment of their own.)"""
        bridges = KINDS_AT[Layer.L2]
        bridge_set = set(self.topology.nodes.where(lambda node: node.kind in bridges))
        parent: dict[str, str] = {}

        def root(b: str) -> str:
            while parent.setdefault(b, b) != b:
                parent[b] = parent[parent[b]]
                b = parent[b]
            return b

        links = self.topology.links
        between: dict[str, list[str]] = {}  # a bridge -> the bridges it links to
        if bridge_set:
            for a, b in links:
                if a in bridge_set and b in bridge_set:
                    between.setdefault(a, []).append(b)
                    between.setdefault(b, []).append(a)
                    ra, rb = root(a), root(b)
                    if ra != rb:
                        parent[max(ra, rb)] = min(ra, rb)
        group_of = {name: root(name) for name in bridge_set}  # a bridge -> its group's root
        # A bridge group's root -> its L3 members, each with the bridge it
        # links to (a list when several): what a frame's way across it needs.
        bridged: dict[str, dict[str, str | list[str]]] = {}
        plain: list[tuple[str, str]] = []  # the links between L3 nodes: a segment each
        for a, b in links:
            group = group_of.get(a)
            if group is None:
                group = group_of.get(b)
                if group is None:
                    plain.append((a, b) if a < b else (b, a))
                    continue
                member, bridge = a, b
            elif b in group_of:
                continue  # between two bridges: one group
            else:
                member, bridge = b, a
            on = bridged.get(group)
            if on is None:
                bridged[group] = {member: bridge}
                continue
            seen = on.get(member)
            if seen is None:
                on[member] = bridge
            elif seen.__class__ is str:
                on[member] = [seen, bridge]  # type: ignore[list-item]
            else:
                seen.append(bridge)  # type: ignore[union-attr]
        groups: dict[str, list[str]] = {}
        for name, group in group_of.items():
            groups.setdefault(group, []).append(name)
        # Segments in the order of their L3 members; bridges only break ties
        # between segments with the same members, which changes no outcome.
        found: list[tuple[tuple[str, ...], tuple[str, ...], object]] = [
            (tuple(sorted(m)), tuple(sorted(groups[k])), k) for k, m in bridged.items()]
        # (In link order: a file's links are mostly in name order already,
        # which the sort finds.)
        found += [(pair, (), pair) for pair in plain]
        found.sort()
        no_bridges: frozenset[str] = frozenset()
        self.members: list[tuple[str, ...]] = [f[0] for f in found]
        self.bridges: list[frozenset[str]] = [frozenset(f[1]) if f[1] else no_bridges
                                              for f in found]
        self._of: dict[str, list[int]] = {}
        for i, members in enumerate(self.members):
            for member in members:
                self._of.setdefault(member, []).append(i)
        self._group_of = group_of
        self._keys = [key for _, _, key in found]
        self._bridged, self._between = bridged, between

    @cached_property
    def segments(self) -> list[Segment]:
        """Every L2 segment, in segment order."""
        return [Segment(i, members, bridges)
                for i, (members, bridges) in enumerate(zip(self.members, self.bridges,
                                                            strict=True))]

    @cached_property
    def _links(self) -> dict[object, int]:
        """Each segment's index by its key: a bridge group's root, or a link
        between L3 nodes as (smaller name, larger)."""
        return {key: i for i, key in enumerate(self._keys)}

    def link_segment(self, a: str, b: str) -> int:
        """The segment the link between a (not a bridge) and b puts a on."""
        group = self._group_of.get(b, self._group_of.get(a))
        return self._links[group if group is not None else (a, b) if a < b else (b, a)]

    def segments_of(self, name: str) -> list[int]:
        """The segments a node (with links) is on, in segment order."""
        return self._of.get(name, [])

    def shared(self, a: str, b: str) -> int | None:
        """The first segment both nodes are on, if any."""
        theirs = self.segments_of(b)
        return next((s for s in self.segments_of(a) if s in theirs), None)

    def l2_path(self, a: str, b: str, segment: int) -> list[str]:
        """The bridges a frame from `a` to `b` crosses on `segment`, in order
        (the shortest way; bridges never change the TTL, so which of equal
        ways is taken changes no outcome)."""
        bridges = self.bridges[segment]
        if not bridges:
            return []
        attached = self._bridged[self._keys[segment]]  # type: ignore[index]

        def bridges_of(member: str) -> list[str]:
            found = attached.get(member, ())
            return [found] if found.__class__ is str else found  # type: ignore[return-value,list-item]

        previous: dict[str, str] = {}
        frontier = sorted(bridges_of(a))
        for n in frontier:
            previous[n] = a
        to_b = bridges_of(b)
        while frontier:
            found = []
            for here in frontier:
                if here in to_b:
                    path = [here]
                    while previous[path[-1]] != a:
                        path.append(previous[path[-1]])
                    return path[::-1]
                for there in sorted(self._between.get(here, ())):
                    if there not in previous:
                        previous[there] = here
                        found.append(there)
            frontier = found
        return []

    # -- what nodes do -----------------------------------------------------------

    def forwards(self, name: str, family: int) -> bool:
        """Forwards packets of `family` at L3 (decrementing the TTL)."""
        return family in self.topology.like[name].forwards

    def forwarders(self, family: int) -> frozenset[str]:
        """The nodes that forward `family` (found once per way of writing a node)."""
        key = ("forwarders", family)
        found = self._trees.get(key)  # type: ignore[arg-type]
        if found is None:
            found = self._trees[key] = frozenset(self.topology.nodes.where(  # type: ignore[assignment]
                lambda node: family in node.forwards))
        return found  # type: ignore[return-value]

    def masquerades(self, name: str, neighbour: str) -> bool:
        """Rewrites the source of what it forwards out of its link to `neighbour`."""
        return self.topology.like[name].masquerades_to(neighbour)

    def transit_part(self, name: str, family: int = 4) -> tuple[Part, str | None] | None:
        """How `name` carries traffic between stops, or None if it never does."""
        key = (name, family)
        try:
            return self._parts[key]
        except KeyError:
            part = self._parts[key] = self._transit_part(name, family)
            return part

    def _transit_part(self, name: str, family: int) -> tuple[Part, str | None] | None:
        node = self.topology.like[name]
        layer = node.spec.layer
        if layer is Layer.L2:
            return Part.BRIDGE, None
        if self.forwards(name, family):
            return Part.ROUTE, None
        if layer.ends_tcp and not node.runs_on:
            return Part.RELAY, name
        relays = self.topology.relays_on(name)
        if node.kind in ("host", "container") and relays:
            return Part.RELAY, relays[0]
        return None

    def location(self, name: str) -> str:
        """The graph node whose stack `name` sends from: its host, or itself."""
        return self.topology.stack_of(name)

    def is_relay_stop(self, name: str, family: int) -> bool:
        part = self.transit_part(name, family)
        return part is not None and part[0] is Part.RELAY

    # -- tables ------------------------------------------------------------------

    def tree(self, family: int, goal: frozenset[str] | str) -> Tree:
        """Next hops towards `goal` (nodes, delivered to on their segments), or
        towards one segment (an int: delivered to whoever is addressed)."""
        key = (family, goal)
        made = self._trees.get(key)
        if made is None:
            if isinstance(goal, int):
                made = Tree(self, family, {goal: None}, frozenset())
            else:
                targets: dict[int, str | None] = {}
                for node in sorted(goal):  # type: ignore[arg-type]
                    for index in self.segments_of(node):
                        targets.setdefault(index, node)
                made = Tree(self, family, targets, frozenset(goal))  # type: ignore[arg-type]
            if self._static:
                made.complete()  # a written route may lead anywhere: know every node
            self._trees[key] = made
        return made

    def next_hop(self, here: str, family: int, goal: frozenset[str] | int) -> Hop | None:
        """`here`'s table entry towards `goal`: (next node or DIRECT, segment)."""
        tree = self.tree(family, goal)  # type: ignore[arg-type]
        if here in tree.blocked:
            return None  # its blackhole route for the metadata addresses
        computed = tree.settle(here)
        direct = computed is not None and (computed[0] == DIRECT or computed[0] in tree.goal)
        if here in self._static and not direct:
            written = self._written(here, goal)
            if written is not None:
                segment = self.shared(here, written)
                if segment is not None:
                    return (written, segment)
        return computed

    def _written(self, here: str, goal: frozenset[str] | int) -> str | None:
        """The next hop the file writes for `goal` at `here`, if any."""
        node = self.topology.like[here]
        if isinstance(goal, int):
            targets: Iterable[str] = self.members[goal]
        else:
            targets = goal
        for destination, via in node.routes:
            if destination in targets or (destination == "imds" and targets
                                          and set(targets) <= self.imds):
                return via
        return node.gateway

    def path(self, start: str, family: int, goal: frozenset[str] | int,
             deliver: str | None = None) -> list[tuple[str, int]] | str:
        """The L3 hops from `start` towards `goal`: [(node, segment it is
        reached on), ...], ending at the node delivered to; or why there is
        none. `deliver` names the node delivered to on a target segment."""
        hops: list[tuple[str, int]] = []
        seen = {start}
        here = start
        while True:
            hop = self.next_hop(here, family, goal)
            if hop is None:
                return f"no route from {here}"
            there, segment = hop
            if there == DIRECT:
                there = deliver or ""
                if not there:
                    return f"no route from {here}"
                hops.append((there, segment))
                return hops
            if there in seen:
                return f"a routing loop at {there}"
            hops.append((there, segment))
            if isinstance(goal, frozenset) and there in goal:
                return hops
            if not self.forwards(there, family):
                return f"{there} does not forward IPv{family}"
            seen.add(there)
            here = there

    def first_hop(self, principal: str) -> Hop | None:
        """The principal's first entry towards IMDS (None: no L3 route), the
        key of its path class: principals with equal first hops share the
        rest of their routes."""
        node = self.topology.like[principal]
        return self.next_hop(self.location(principal), node.family, self.imds)

    def imds_of(self, principal: str) -> str | None:
        """The imds node the principal's route ends at, if any."""
        node = self.topology.like[principal]
        first = None if node.via else self.first_hop(principal)
        if first is None:
            return self.route(principal).imds
        key = ("imds", node.family, first)
        found = self._trees.get(key)  # type: ignore[arg-type]
        if found is None:
            hops = self.path(self.location(principal), node.family, self.imds)
            found = hops[-1][0] if not isinstance(hops, str) and hops else ""
            self._trees[key] = found  # type: ignore[assignment]
        return found or None  # type: ignore[return-value]

    # -- routes --------------------------------------------------------------------

    def route(self, principal: str) -> Route:
        """The principal's stations to the nearest imds, and its responses' paths."""
        node = self.topology.like[principal]
        family = node.family
        if not self.imds:
            return Route(principal, unreachable="unreachable: the topology has no imds node")
        origin = Station(principal, Part.ORIGIN)
        stops: list[Station] = [origin]
        here = self.location(principal)
        if node.network:
            stacks = self._stacks(principal)
            if isinstance(stacks, str):
                return Route(principal, unreachable=f"unreachable: {stacks} to an imds node")
            stops += stacks
        for waypoint in node.via:
            place = self.location(waypoint)
            if place == here:  # a relay in the principal's own stack
                stops.append(self._stop(place, family, (waypoint, *node.via)))
                continue
            found = self._stops(here, frozenset({place}), family, node.via)
            if isinstance(found, str):
                return Route(principal, unreachable=f"unreachable: {found} to waypoint {waypoint}")
            stops += found[:-1]
            stops.append(self._stop(place, family, (waypoint, *node.via)))
            here = place
        found = self._stops(here, self.imds, family, node.via)
        if isinstance(found, str):
            return Route(principal, unreachable=f"unreachable: {found} to an imds node")
        stops += found
        if self.interceptors:
            stops = self._intercepted(stops, family)
        stations: list[Station] = []
        returns: list[tuple[Station, ...]] = []
        for start, end in itertools.pairwise(stops):
            leg = self._leg(start, end, family)
            if isinstance(leg, str):
                return Route(principal, unreachable=f"unreachable: {leg}")
            request, response = leg
            stations += request if not stations else request[1:]
            returns.append(response)
        return Route(principal, tuple(stations), returns=tuple(returns))

    def _stacks(self, principal: str) -> list[Station] | str:
        """The user-space stacks that re-open `principal`'s connections, its
        own first: one relay station each, at the node it runs in (a rootless
        container in a rootless container has two). Or why none opens: a
        blackhole route (block_imds) in a namespace the connection leaves."""
        stations: list[Station] = []
        name = principal
        while True:
            node = self.topology.like[name]
            if name in self.blocked:
                return f"no route from {name} (block_imds)"
            if not node.network or node.runs_on is None:
                return stations
            stations.append(Station(self.location(name), Part.RELAY, name))
            name = node.runs_on

    def _intercepted(self, stops: list[Station], family: int) -> list[Station]:
        """`stops` with an interceptor inserted where a connection to IMDS is
        routed across its host: the DNAT there ends the connection at the
        relay, which opens the next one."""
        out, pending = [stops[0]], list(stops[1:])
        while pending:
            end = pending[0]
            if end.part is Part.IMDS:
                leg = self._leg(out[-1], end, family)
                if not isinstance(leg, str):
                    caught = next((s.node for s in leg[0][1:-1] if s.part is Part.ROUTE
                                   and s.node in self.interceptors), None)
                    if caught is not None:
                        out.append(Station(caught, Part.RELAY, self.interceptors[caught]))
                        continue
            out.append(pending.pop(0))
        return out

    def intercepts(self, station: Station) -> bool:
        """The station is an interceptor: its leg was addressed to IMDS."""
        return station.part is Part.RELAY and station.relay is not None and (
            self.interceptors.get(station.node) == station.relay)

    def _stop(self, place: str, family: int, via: tuple[str, ...]) -> Station:
        """The relay station at `place`: the relay on it named in `via`, else a
        linked relay itself, else the first relay on the host by name."""
        named = [r for r in via if r != place and self.location(r) == place]
        if named:
            return Station(place, Part.RELAY, named[0])
        node = self.topology.like[place]
        if node.spec.layer.ends_tcp:
            return Station(place, Part.RELAY, place)
        relays = self.topology.relays_on(place)
        return Station(place, Part.RELAY, relays[0] if relays else None)

    def _relay_places(self, family: int) -> list[str]:
        """Nodes that end a connection and open the next: linked relays, and
        hosts that carry a relay and do not forward this family."""
        key = ("places", family)
        places = self._trees.get(key)  # type: ignore[arg-type]
        if places is None:
            linked = self.topology.nodes.where(
                lambda node: node.kind in ENDS_TCP_KINDS and not node.runs_on)
            hosts = (h for h in self.topology.relay_hosts if not self.forwards(h, family))
            places = sorted({*linked, *hosts})
            self._trees[key] = places  # type: ignore[assignment]
        return places  # type: ignore[return-value]

    def relay_at(self, place: str) -> str:
        """The relay that handles a principal's requests at `place` without
        `via`: a linked relay itself, else the first relay on the host by name."""
        return self._stop(place, 4, ()).actor

    def relay_levels(self, family: int, depth: int) -> list[frozenset[str]]:
        """The first `depth` levels of relay places towards IMDS (see _levels)."""
        return self._levels(self.imds, family, None, depth)

    def _levels(self, goal: frozenset[str], family: int, here: str | None,
                depth: int = 64) -> list[frozenset[str]]:
        """Relay places by how many relays they need to reach `goal`, up to
        the first level `here` reaches (or `depth` levels): level 1 reaches it
        at L3, level k a relay of level k-1. (The levels are the topology's,
        found once.)"""
        key = ("levels", family, goal)
        levels: list[frozenset[str]] = self._trees.setdefault(key, [])  # type: ignore[arg-type,assignment]
        for i in range(depth):
            if i == len(levels):
                taken = set(goal).union(*levels)
                reached = levels[-1] if levels else goal
                level = frozenset(r for r in self._relay_places(family) if r not in taken
                                  and self.next_hop(r, family, reached) is not None)
                if not level:
                    return [] if here is not None else levels
                levels.append(level)
            if here is not None and here not in levels[i] and (
                    self.next_hop(here, family, levels[i]) is not None):
                return levels[:i + 1]
        return levels[:depth] if here is None else []

    def _stops(self, here: str, goal: frozenset[str], family: int,
               via: tuple[str, ...]) -> list[Station] | str:
        """The stops after `here` up to `goal`: directly when an L3 route
        exists, else through the relays that lead there, fewest first."""
        if self.next_hop(here, family, goal) is not None:
            order = [goal]
        else:
            levels = self._levels(goal, family, here)
            if not levels:
                return "no route"
            order = [*reversed(levels), goal]
        chain: list[Station] = []
        at = here
        for target in order:
            end = self._end(at, target, family)
            if end is None:
                return "no route"
            chain.append(Station(end, Part.IMDS) if end in self.imds else
                         self._stop(end, family, via) if end not in goal else
                         Station(end, Part.RELAY, None))
            at = end
        return chain

    def _end(self, here: str, goal: frozenset[str], family: int) -> str | None:
        """The node an L3 route from `here` towards `goal` delivers to."""
        hops = self.path(here, family, goal)
        if isinstance(hops, str) or not hops:
            return None
        return hops[-1][0]

    def _leg(self, start: Station, end: Station, family: int
             ) -> tuple[tuple[Station, ...], tuple[Station, ...]] | str:
        """One TCP connection: the request's stations from `start` to `end`,
        and the response's from `end` back to `start`, each routed by its
        destination."""
        source = start.node if start.part is not Part.ORIGIN else self.location(start.node)
        place = end.node
        if source == place:  # a relay in the sender's own stack: a local connection
            return (start, end), (end, start)
        # IMDS is one address wherever it answers: the table's entry for it.
        goal = self.imds if end.part is Part.IMDS else frozenset({place})
        hops = self.path(source, family, goal, deliver=place)
        if isinstance(hops, str):
            return f"{hops} to {place}"
        request = [start]
        nats: list[tuple[str, int]] = []  # (masquerading node, segment it sent out on)
        prev = source
        for i, (there, segment) in enumerate(hops):
            between = self.l2_path(prev, there, segment)
            if request[-1].part is Part.ROUTE and self.masquerades(prev, (between or [there])[0]):
                request[-1] = Station(prev, Part.ROUTE, nat=True)
                nats.append((prev, segment))
            request += [Station(b, Part.BRIDGE) for b in between]
            if i < len(hops) - 1:
                request.append(Station(there, Part.ROUTE))
            prev = there
        request.append(end)
        # The response: to the last NAT's address, which restores the
        # destination and routes it on, and so on back to the start.
        first_segment = hops[0][1]
        targets = [*reversed(nats), (source, first_segment)]
        response = [end]
        at = place
        for n, (target, segment) in enumerate(targets):
            back = self.path(at, family, segment, deliver=target)
            if isinstance(back, str):
                return f"{back} back to {target}"
            prev = at
            for i, (there, seg) in enumerate(back):
                response += [Station(b, Part.BRIDGE) for b in self.l2_path(prev, there, seg)]
                if i < len(back) - 1:
                    response.append(Station(there, Part.ROUTE))
                prev = there
            if n < len(targets) - 1:
                response.append(Station(target, Part.ROUTE, nat=True))
            at = target
        response.append(start)
        return tuple(request), tuple(response)


def written_route_problems(topology: Topology) -> list[tuple[tuple[str, ...], str]]:
    """What is wrong with the routes a file writes (`gateway:`, `routes:`):
    a next hop that shares no segment with the node or does not forward, and
    a route that leads nowhere or in a loop. Each as (key path, message)."""
    router = Router(topology)
    problems: list[tuple[tuple[str, ...], str]] = []
    for name in sorted(router._static):
        node = topology.like[name]
        written = [(("nodes", name, "gateway"), None, node.gateway)] if node.gateway else []
        written += [(("nodes", name, "routes", d), d, v) for d, v in node.routes]
        for path, destination, via in written:
            if router.shared(name, via) is None:
                problems.append((path, f"{via!r} shares no segment with {name!r}: a next hop "
                                 "is a neighbour, directly or across bridges"))
                continue
            if via != destination and not topology.like[via].forwards:
                problems.append((path, f"{via!r} ({topology.like[via].kind}) does not "
                                 "forward; a next hop must route (a router, nat, tunnel or "
                                 "forwarding host)"))
                continue
            goal = router.imds if destination in (None, "imds") else frozenset({destination})
            if not goal:
                continue
            for family in sorted(topology.like[via].forwards or FAMILIES):
                found = router.path(name, family, goal)
                # A default route may lead where IMDS is not (an isolated
                # node); a loop, or a route written for a destination that
                # does not reach it, is a mistake.
                if isinstance(found, str) and (destination is not None
                                               or not found.startswith("no route")):
                    what = "imds" if destination in (None, "imds") else repr(destination)
                    problems.append((path, f"the route to {what} leads nowhere from {name!r} "
                                     f"(IPv{family}): {found}"))
                    break
    return problems

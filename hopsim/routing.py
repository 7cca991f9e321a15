"""Which nodes a principal's requests cross on the way to IMDS, and as what.

The rule (issue 2): the shortest valid path (fewest links; among equal ones
the lexicographically smallest sequence of node names) to the nearest imds,
through the principal's `via` waypoints. Replies take the same path back.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

from hopsim.kinds import Layer
from hopsim.topology import Topology


class Role(Enum):
    """What a node does to the packets of one principal's exchange."""

    ORIGIN = "origin"  # the principal (in its own namespace, or in its host's stack)
    BRIDGE = "bridge"  # L2: passes frames unchanged
    ROUTE = "route"  # L3: TTL -1, drop at TTL <= 1 (and NAT if it masquerades)
    RELAY = "relay"  # L7: ends TCP, re-sends with a fresh TTL
    IMDS = "imds"


@dataclass(frozen=True)
class Station:
    """One place on a path: `node` is the graph node; `relay` the L7 relay that
    handles the traffic there (the node itself, or a relay that runs on it)."""

    node: str
    role: Role
    relay: str | None = None

    @property
    def actor(self) -> str:
        """The name that acts here: the relay when a host carries one."""
        return self.relay or self.node


@dataclass(frozen=True)
class Route:
    """A principal's path to IMDS, or why there is none."""

    principal: str
    stations: tuple[Station, ...] = ()
    unreachable: str | None = None

    @property
    def imds(self) -> str | None:
        return self.stations[-1].node if self.stations else None

    @property
    def legs(self) -> list[tuple[Station, ...]]:
        """The TCP connections: split at every L7 relay."""
        legs, start = [], 0
        for i, station in enumerate(self.stations):
            if i > 0 and station.role in (Role.RELAY, Role.IMDS):
                legs.append(self.stations[start : i + 1])
                start = i
        return legs

    @property
    def token_routers(self) -> tuple[str, ...]:
        """The L3 nodes the token response crosses before it reaches the first
        relay or the principal, in the order it meets them (from IMDS)."""
        if not self.stations:
            return ()
        last_leg = self.legs[-1]
        return tuple(s.node for s in reversed(last_leg) if s.role is Role.ROUTE)

    def describe(self) -> str:
        parts = []
        for station in self.stations:
            if station.relay and station.relay != station.node:
                parts.append(f"{station.node}[{station.relay}]")
            else:
                parts.append(station.node)
        return " -> ".join(parts)


class Router:
    """Computes routes for one topology: one BFS per target set, whose tree
    then gives every node's path in as many steps as the path is long."""

    def __init__(self, topology: Topology):
        self.topology = topology
        self.imds = frozenset(topology.imds_nodes)
        self._trees: dict[frozenset[str], tuple[dict[str, int], dict[str, str]]] = {}
        self._roles: dict[str, tuple[Role, str | None] | None] = {}

    def transit_role(self, name: str) -> tuple[Role, str | None] | None:
        """How `name` carries traffic between stops, or None if it never does."""
        try:
            return self._roles[name]
        except KeyError:
            role = self._roles[name] = self._transit_role(name)
            return role

    def _transit_role(self, name: str) -> tuple[Role, str | None] | None:
        node = self.topology.nodes[name]
        layer = node.spec.layer
        if layer is Layer.L2:
            return Role.BRIDGE, None
        if layer is Layer.L3:
            return Role.ROUTE, None
        if layer is Layer.L7 and not node.runs_on:
            return Role.RELAY, name
        if node.kind == "host":
            relays = self.topology.relays_on(name)
            if node.forwarding:
                return Role.ROUTE, None
            if relays:
                return Role.RELAY, relays[0]
        return None

    def location(self, name: str) -> str:
        """The graph node whose stack `name` lives in: its host, or itself."""
        return self.topology.nodes[name].runs_on or name

    def is_transit(self, name: str) -> bool:
        return self.transit_role(name) is not None

    def tree(self, targets: frozenset[str]) -> tuple[dict[str, int], dict[str, str]]:
        """Links from each node to the nearest target, through transit nodes
        only, and its next hop there: of its neighbours one link closer that
        carry traffic (or are targets), the smallest name. Walking next hops
        gives the lexicographically smallest of the shortest paths."""
        if targets in self._trees:
            return self._trees[targets]
        adjacency = self.topology.adjacency
        dist = dict.fromkeys(targets, 0)
        next_hop: dict[str, str] = {}
        queue = deque(sorted(targets))
        while queue:
            here = queue.popleft()
            further = dist[here] + 1
            for there in adjacency[here]:
                seen = dist.get(there)
                if seen is None:
                    dist[there] = further
                    next_hop[there] = here
                    if self.transit_role(there) is not None:
                        queue.append(there)
                elif seen == further and here < next_hop[there]:
                    next_hop[there] = here
        self._trees[targets] = dist, next_hop
        return dist, next_hop

    def _segment(self, start: str, targets: frozenset[str]) -> list[str] | None:
        """The lexicographically smallest shortest path from start to a target."""
        dist, next_hop = self.tree(targets)
        if start not in dist:
            return None
        path = [start]
        while path[-1] not in targets:
            path.append(next_hop[path[-1]])
        return path

    def route(self, principal: str) -> Route:
        """The principal's stations, from itself to the nearest imds.

        Each `via` waypoint is a stop where it acts: a relay on a host relays
        there, in the order given. Between stops, nodes do what their kind
        does (a forwarding host routes; a host that cannot route relays).
        """
        node = self.topology.nodes[principal]
        imds = self.imds
        if not imds:
            return Route(principal, unreachable="unreachable: the topology has no imds node")
        stations = [Station(principal, Role.ORIGIN)]
        here = self.location(principal)
        for waypoint in node.via:
            segment = self._segment(here, frozenset({self.location(waypoint)}))
            if segment is None:
                return Route(principal, unreachable=f"unreachable: no path to waypoint {waypoint}")
            stations += [self._station(name, node.via) for name in segment[1:-1]]
            if self.topology.nodes[waypoint].runs_on:
                stations.append(Station(segment[-1], Role.RELAY, waypoint))
            elif len(segment) > 1:
                stations.append(self._station(waypoint, node.via))
            here = segment[-1]
        segment = self._segment(here, imds)
        if segment is None:
            return Route(principal, unreachable="unreachable: no valid path to an imds node")
        stations += [self._station(name, node.via) for name in segment[1:-1]]
        stations.append(Station(segment[-1], Role.IMDS))
        route = Route(principal, tuple(stations))
        turn = self._u_turn(route)
        if turn:
            return Route(principal, unreachable=(
                f"unreachable: via {', '.join(node.via)} sends the route through {turn} twice "
                "with no L7 relay between; a bridge never sends a frame back out the port it "
                "came in on, and a router forwards by destination, not by waypoint"))
        return route

    def _u_turn(self, route: Route) -> str | None:
        """A node that one leg (one TCP connection) passes twice, if any.

        Only an L7 relay can turn traffic around: within a leg, packets follow
        the destination, and no path back through a node they left exists.
        """
        for leg in route.legs:
            start = leg[0]
            home = self.location(start.node) if start.role is Role.ORIGIN else start.node
            seen = {home}
            for station in leg[1:-1]:
                if station.node in seen:
                    return station.node
                seen.add(station.node)
        return None

    def _station(self, name: str, via: tuple[str, ...]) -> Station:
        """A node passed between stops: it acts as its kind does, except that a
        host that cannot route relays through a relay named in `via`, if any."""
        role, relay = self.transit_role(name)  # type: ignore[misc]
        if role is Role.RELAY and self.topology.nodes[name].runs_on is None and relay != name:
            named = [r for r in via if r in self.topology.relays_on(name)]
            relay = named[0] if named else relay
        return Station(name, role, relay)

"""Profiles: each principal's exchange reduced to what the hop limit changes,
walked once per path class.

Whether the token gets through depends on the hop limit only through one
number: the routers between IMDS and the first relay or the principal (the
TTL budget the path consumes). So each principal is walked at most twice,
once where the token survives (hop limit 64) and once where it dies (hop
limit 1); every other hop limit follows (tests/test_properties.py checks
this against full replays). Principals whose routes differ only in names
share one walk pair: a fleet costs a walk pair per path class.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from itertools import chain, repeat

from hopsim.engine import play
from hopsim.imds import MAX_HOP_LIMIT, MIN_HOP_LIMIT, ImdsSettings
from hopsim.kinds import PRINCIPAL_KINDS
from hopsim.outcome import Access, Outcome, bad
from hopsim.routing import Part, Route, Router, Tree
from hopsim.topology import Topology


@dataclass(frozen=True)
class Profile:
    """A principal's exchange reduced to what the hop limit changes."""

    delivered: Outcome  # when the token response survives its last leg
    dropped: Outcome | None  # when it dies there; None when the hop limit plays no part
    token_routers: tuple[str, ...]  # the routers of that leg, from IMDS

    def at(self, hop_limit: int) -> Outcome:
        if self.dropped is None or hop_limit > len(self.token_routers):
            if self.delivered.hop_limit is None:  # unreachable: no hop limit applies
                return self.delivered
            return self.delivered.but(hop_limit=hop_limit)
        # A router forwards only at TTL >= 2: the token dies at the one that
        # sees TTL 1, the hop_limit-th from IMDS.
        return self.dropped.but(hop_limit=hop_limit,
                     dropped_at=self.token_routers[hop_limit - 1],
                     forwarded=self.token_routers[:hop_limit - 1])


class Profiles(Mapping[str, Profile]):
    """Every principal's Profile, each made when asked for.

    What a sweep needs is counted per path class (`tallies`, `access`) without
    making any principal's outcome: a fleet's verdicts cost one walk pair per
    class and a few dictionary lookups per principal; only the outcomes a
    report shows are made.
    """

    def __init__(self, topology: Topology, router: Router | None = None):
        self.topology = topology
        profiler = self._profiler = _Profiler(topology, router)
        self.router = profiler.router  # routes every principal, shared with its walks
        self._class_of: dict[str, tuple] = {}
        self._own: dict[str, Profile] = {}  # principals walked alone, and the made ones
        # The groups of `alike`, found below for the principals the tree classes.
        groups: list[tuple[tuple[str, ...], str | None]] = []
        keyed, rest = profiler.tree_classes()
        by_key: dict[tuple, list[tuple[str | None, list[str]]]] = {}
        for (key, role), members in keyed.items():
            members.sort()
            by_key.setdefault(key, []).append((role, members))
        for key, roles in by_key.items():
            # Walked with its first principal by name, as classing them in name
            # order does; one whose route turns out not to reach IMDS is
            # walked alone (as the principals of `rest`).
            members = sorted(chain.from_iterable(m for _, m in roles)) if len(roles) > 1 \
                else roles[0][1]
            own = []
            for name in members:
                if profiler.walked(name, key):
                    break
                own.append(name)
                self._own[name] = profiler.profile(name)
            for role, names in roles:
                if own:
                    groups += [((n,), role) for n in names if n in own]
                    names = [n for n in names if n not in own]
                self._class_of.update(zip(names, repeat(key)))
                if names:
                    groups.append((tuple(names), role))
        for name in sorted(rest):
            key = profiler.classify(name)
            if key is None:
                self._own[name] = profiler.profile(name)
            else:
                self._class_of[name] = key
        self._tree_groups = groups if not rest else None

    def __getitem__(self, name: str) -> Profile:
        made = self._own.get(name)
        if made is None:
            if name not in self._class_of:
                raise KeyError(name)
            made = self._own[name] = self._profiler.profile(name)
        return made

    def __iter__(self) -> Iterator[str]:
        return iter(self.topology.principals)

    def __len__(self) -> int:
        return len(self.topology.principals)

    def shape(self, name: str) -> tuple[Access, Access | None, int]:
        """(access when delivered, when dropped or None, routers), from the class."""
        key = self._class_of.get(name)
        if key is None:
            p = self._own[name]
            return (p.delivered.access, p.dropped.access if p.dropped else None,
                    len(p.token_routers))
        delivered, dropped, _, routers = self._profiler.classes[key]
        return delivered.access, dropped.access if dropped else None, routers

    def class_of(self, name: str) -> tuple:
        """A key shared by the principals whose outcomes differ only in names."""
        return self._class_of.get(name) or ("own", name)

    def access(self, name: str, hop_limit: int | None) -> Access:
        """What `name` holds at `hop_limit` (None: as configured, where no hop
        limit applies), without making its outcome."""
        delivered, dropped, routers = self.shape(name)
        if hop_limit is not None and dropped is not None and hop_limit <= routers:
            return dropped
        return delivered

    @cached_property
    def alike(self) -> list[tuple[tuple[str, ...], int]]:
        """The principals by path class and role, each group in name order
        with the copies it stands for (replicas counted): at one hop limit, a
        group's outcomes differ only in names. Groups in the order of their
        first principals."""
        found = self._tree_groups
        if found is None:  # some principals were classed one by one: grouped so
            like, classes = self.topology.like, self._class_of
            groups: dict[tuple, list[str]] = {}
            for name in self.topology.principals:
                key = (classes.get(name) or ("own", name), like[name].role)
                groups.setdefault(key, []).append(name)
            return [(tuple(members), self._copies(members)) for members in groups.values()]
        found.sort(key=lambda group: group[0][0])
        return [(members, self._copies(members)) for members, _ in found]

    def _copies(self, members: Sequence[str]) -> int:
        """The principals `members` stand for, replicas counted."""
        if self._no_replicas:
            return len(members)
        like = self.topology.like
        return sum(like[n].replicas for n in members)

    @cached_property
    def _no_replicas(self) -> bool:
        return self.topology.copies == len(self.topology.nodes)

    def limits(self, configured: Mapping[str, int]) -> dict[str, int | None]:
        """Each principal's hop limit as configured: that of the imds node its
        route ends at (None where none), found once for principals that
        reach IMDS by one first hop."""
        router = self.router
        found: dict[str, int | None] = {}
        for names in self._profiler.reach:
            imds = router.imds_of(names[0])
            found.update(zip(names, repeat(configured.get(imds) if imds else None)))
        for name in self.topology.principals:
            if name not in found:
                imds = router.imds_of(name)
                found[name] = configured.get(imds) if imds else None
        return found

    def split(self, limits: Mapping[str, int | None]
              ) -> list[tuple[tuple[str, ...], int, int | None]]:
        """alike, each group split by the principals' hop limits: (members in
        name order, the copies they stand for, their hop limit), in the order
        of their first principals."""
        found: list[tuple[tuple[str, ...], int, int | None]] = []
        for members, copies in self.alike:
            hop_limits = list(map(limits.get, members))
            if hop_limits.count(hop_limits[0]) == len(hop_limits):
                found.append((members, copies, hop_limits[0]))
                continue
            parts: dict[int | None, list[str]] = {}
            for name, limit in zip(members, hop_limits, strict=True):
                part = parts.get(limit)
                if part is None:
                    parts[limit] = [name]
                else:
                    part.append(name)
            found += [(tuple(part), self._copies(part), limit) for limit, part in parts.items()]
        found.sort(key=lambda group: group[0][0])
        return found

    @cached_property
    def tallies(self) -> list[Tally]:
        """The principals that have a role, grouped by what they hold at which
        hop limits: one entry per path class and role, members in name order."""
        nodes = self.topology.like
        return [Tally(nodes[members[0]].role, *self.shape(members[0]), members, count)
                for members, count in self.alike if nodes[members[0]].role is not None]


@dataclass(frozen=True)
class Tally:
    """Principals of one role and path class: what they hold when the token
    response is delivered, when it is dropped (None: the hop limit plays no
    part), and the routers that decide which."""

    role: str
    delivered: Access
    dropped: Access | None
    routers: int
    members: tuple[str, ...]
    count: int  # the principals they stand for: replicas and units' copies counted

    def access(self, hop_limit: int) -> Access:
        if self.dropped is not None and hop_limit <= self.routers:
            return self.dropped
        return self.delivered

    def bad(self, hop_limit: int) -> bool:
        return bad(self.role, self.access(hop_limit))


def profiles(topology: Topology) -> Profiles:
    """One Profile per principal: at most two walks per path class, whatever
    the sweep and however many principals share the class."""
    return Profiles(topology)


def profile(topology: Topology, principal: str, router: Router | None = None) -> Profile:
    """One principal's Profile."""
    return _Profiler(topology, router).profile(principal)


class _Profiler:
    """Walks each path class once and renames the result for its members.

    Two principals are in one class when their routes cross the same kinds of
    station, in the same roles, with the same relay policies and NATs, to an
    imds with the same settings, in the same IP family: then the walk differs
    only in names and addresses, and the outcome only in names.
    """

    def __init__(self, topology: Topology, router: Router | None = None):
        self.topology = topology
        self.router = router or Router(topology)
        # key -> (delivered, dropped, the names it was walked with, token routers)
        self.classes: dict[tuple, tuple[Outcome, Outcome | None, tuple[str, ...], int]] = {}
        self._keys: dict[tuple, tuple | None] = {}  # a principal's first hop -> class key
        self._suffixes: dict[int, dict[str, int]] = {}  # per tree: node -> id of its stations
        self._ids: dict[tuple, int] = {}
        self._imds_trees: dict[int, Tree] = {}  # per family: the router's tree towards IMDS
        self._unswept: dict[ImdsSettings, ImdsSettings] = {}
        self.filtering = self.router.filtering
        # Principals classed together that reach IMDS by one first hop (a
        # host's containers, a bridge's apps behind one router): one imds.
        self.reach: list[Sequence[str]] = []

    # The topology at the hop limits a walk is made at: copied when first
    # walked, after routing, so that they share what routing derived.
    @cached_property
    def high(self) -> Topology:
        return self.topology.with_imds(hop_limit=MAX_HOP_LIMIT)

    @cached_property
    def low(self) -> Topology:
        return self.topology.with_imds(hop_limit=MIN_HOP_LIMIT)

    def tree_classes(self) -> tuple[dict[tuple[tuple, str | None], list[str]], list[str]]:
        """The principals classed by the routing trees, by (class key, role),
        and the others (classify them one by one), none walked yet. A way of
        writing a principal that runs on a node (a host's containers) is
        looked up once; a principal with links of its own takes one lookup
        of its next hop, its class found once per next hop."""
        router = self.router
        keyed: dict[tuple[tuple, str | None], list[str]] = {}
        rest: list[str] = []
        if self.filtering or router.written or router.interceptors:
            return keyed, list(self.topology.principals)

        def add(suffix: int | None, names: Sequence[str]) -> None:
            if suffix is None:
                rest.extend(names)
            else:
                keyed.setdefault((head + (suffix,), like.role), []).extend(names)
                self.reach.append(names)

        for like, members in self.topology.nodes.by_shape(
                lambda node: node.kind in PRINCIPAL_KINDS):
            if like.network or like.via:
                rest += members
                continue
            family = like.family
            head = ("tree", family, like.kind, like.rewrites_source, like.runs_on is None)
            if like.runs_on is not None:
                add(self._fast(like.runs_on, family), members)
                continue
            tree = self._imds_tree(family).complete()
            next_hops, ways = tree.next, tree.ways
            by_hop: dict[str, list[str]] = {}
            for name in members:
                hop = next_hops.get(name)
                if hop is None or ways[name] != 1:
                    add(self._fast(name, family), (name,))
                    continue
                found = by_hop.get(hop[0])
                if found is None:
                    by_hop[hop[0]] = [name]
                else:
                    found.append(name)
            known = self._suffixes.get(id(tree), {})
            for after, names in by_hop.items():
                add(known[after] if after in known else self._suffix(tree, after, family), names)
        return keyed, rest

    def walked(self, name: str, key: tuple) -> bool:
        """Whether `key`'s class is walked, with `name` if it is not yet;
        False when `name`'s route does not reach IMDS (it is walked alone)."""
        return key in self.classes or self._key(name, key) is not None

    def _imds_tree(self, family: int) -> Tree:
        """The router's tree towards IMDS in `family`."""
        tree = self._imds_trees.get(family)
        if tree is None:
            tree = self._imds_trees[family] = self.router.tree(family, self.router.imds)
        return tree

    def classify(self, name: str) -> tuple | None:
        """The principal's class key, its class walked if new; None for one
        that is walked alone (unreachable, or IPv6 to an imds without it)."""
        if self.filtering:  # a rule may tell apart what shares a path: each its own walk
            return self._key(name, ("own", name))
        node = self.topology.like[name]
        router = self.router
        if node.network:  # its stack's policy and namespace decide too: by its signature
            return self._key(name)
        if not node.via and not router.written and not router.interceptors:
            suffix = self._fast(node.runs_on or name, node.family)
            if suffix is not None:
                key = ("tree", node.family, node.kind, node.rewrites_source,
                       node.runs_on is None, suffix)
                if key not in self.classes:
                    return self._key(name, key)
                return key
        first = None if node.via else router.first_hop(name)
        if first is None:
            return self._key(name)
        # Principals whose first L3 hop towards IMDS is the same (the same
        # neighbour, on the same segment) share every station after it, both
        # ways, but for the bridges next to them, which no outcome names.
        shape = (node.family, node.kind, node.rewrites_source, node.runs_on is None, first)
        try:
            return self._keys[shape]
        except KeyError:
            key = self._keys[shape] = self._key(name)
            return key

    def _fast(self, here: str, family: int) -> int | None:
        """The id of the stations after `here` to IMDS, from the routing trees,
        when each leg has one best way (so its response retraces it: any other
        way back would be a second best way there), else None. Built once per
        tree node, whatever the fleet's size."""
        router = self.router
        tree = self._imds_tree(family)
        hop = tree.next.get(here) or tree.settle(here)
        if hop is not None:
            if tree.ways[here] != 1:
                return None
            known = self._suffixes.get(id(tree))  # the usual case: its next hop's is known
            if known is not None and hop[0] in known:
                return known[hop[0]]
            return self._suffix(tree, hop[0], family)
        # No L3 route: the nearest relay that has one, if it is the nearest
        # by one best way (a deeper chain of relays is routed in full).
        nearest = router.relay_levels(family, 1)
        if not nearest:
            return None
        tree = router.tree(family, nearest[0])
        hop = tree.settle(here)
        if hop is None or tree.ways[here] != 1:
            return None
        return self._suffix(tree, hop[0], family)

    def _suffix(self, tree: Tree, start: str, family: int) -> int | None:
        """An id for the stations from `start` (a forwarder, an imds, or a
        relay that reaches IMDS) to IMDS along `tree`: equal ids, equal kinds,
        NATs, relays and settings. None where it cannot be keyed."""
        suffixes = self._suffixes.setdefault(id(tree), {})
        chain = []
        here = start
        while here not in suffixes:
            chain.append(here)
            if here in tree.goal:
                break
            here = tree.next[here][0]
        nodes, router = self.topology.like, self.router
        for name in reversed(chain):
            node = nodes[name]
            if name in router.imds:
                feature: tuple = ("imds", self._settings(node.imds))  # type: ignore[arg-type]
            elif name in tree.goal:  # a relay: the rest of its way from the IMDS tree
                onward = self._fast(name, family)
                if onward is None:
                    suffixes[name] = None  # type: ignore[assignment]
                    continue
                relay = router.relay_at(name)
                feature = ("relay", nodes[relay].kind, nodes[relay].relay, relay == name, onward)
            else:
                after, segment = tree.next[name]
                if suffixes[after] is None:
                    suffixes[name] = None  # type: ignore[assignment]
                    continue
                between = router.l2_path(name, after, segment)
                nat = node.masquerades_to(between[0] if between else after)
                feature = (node.kind, nat, suffixes[after])
            suffixes[name] = self._ids.setdefault(feature, len(self._ids))
        return suffixes[start]

    def _key(self, name: str, key: tuple | None = None) -> tuple | None:
        """Walk the class of `name` (keyed `key`, else by its route's signature)."""
        route = self.router.route(name)
        node = self.topology.like[name]
        settings = self.topology.like[route.imds].imds if route.imds else None
        if route.unreachable or (node.family == 6 and not settings.ipv6):  # type: ignore[union-attr]
            return None
        signature, names = self._signature(route, node.family)
        key = key or signature
        if key not in self.classes:
            self.classes[key] = (*self._walk(name, route.token_routers), names,
                                 len(route.token_routers))
        return key

    def _settings(self, settings: ImdsSettings) -> ImdsSettings:
        """An imds node's settings but the hop limit, which is swept: part of
        a class's key (each made once: thousands of imds nodes share a few)."""
        unswept = self._unswept.get(settings)
        if unswept is None:
            unswept = self._unswept[settings] = replace(settings, hop_limit=0)
        return unswept

    def profile(self, name: str) -> Profile:
        route = self.router.route(name)
        node = self.topology.like[name]
        settings = self.topology.like[route.imds].imds if route.imds else None
        if route.unreachable or (node.family == 6 and not settings.ipv6):  # type: ignore[union-attr]
            # No walk to share: the outcome comes without one.
            outcome = play(self.topology, name, router=self.router).outcome
            return Profile(outcome, None, ())
        key = self.classify(name)
        assert key is not None
        names = _names(route)
        delivered, dropped, first, _ = self.classes[key]
        rename = dict(zip(first, names, strict=True))
        return Profile(_renamed(delivered, rename, node.role),
                       _renamed(dropped, rename, node.role) if dropped else None,
                       route.token_routers)

    def _walk(self, name: str, routers: tuple[str, ...]) -> tuple[Outcome, Outcome | None]:
        # The hop limit plays a part only where IMDS issues a token and routers
        # stand between it and the token's receiver.
        delivered = play(self.high, name, router=self.router)
        dropped = None
        if delivered.token_issued and routers:
            dropped = play(self.low, name, router=self.router).outcome
        return delivered.outcome, dropped

    def _signature(self, route: Route, family: int) -> tuple[tuple, tuple[str, ...]]:
        """What a walk depends on, but names: each station that is not a
        bridge, its role, kind, relay policy and NAT, and which names repeat,
        on the request and on every response."""
        nodes = self.topology.like
        index: dict[str, int] = {}
        settings = self._settings(nodes[route.imds].imds)  # type: ignore[arg-type]
        features: list[object] = [family, settings]
        for path in (route.stations, *route.returns):
            features.append("|")
            for station in path:
                if station.part is Part.BRIDGE:
                    continue
                for name in (station.node, station.actor):
                    features.append(index.setdefault(name, len(index)))
                actor = nodes[station.actor]
                features.append((station.part, actor.kind, actor.relay, station.nat))
        return tuple(features), _names(route)


def _names(route: Route) -> tuple[str, ...]:
    """The names a route's walk is made of, as an outcome may name them: each
    station's node and actor but bridges', on the request and the responses."""
    return tuple(name for path in (route.stations, *route.returns) for station in path
                 if station.part is not Part.BRIDGE for name in (station.node, station.actor))


def _renamed(outcome: Outcome, rename: Mapping[str, str], role: str | None) -> Outcome:
    def name(n: str | None) -> str | None:
        return rename[n] if n is not None else None

    return outcome.but(node=rename[outcome.node], role=role,
                 receiver=name(outcome.receiver), dropped_at=name(outcome.dropped_at),
                 by=tuple(rename[b] for b in outcome.by),
                 path=tuple(rename[n] for n in outcome.path),
                 forwarded=tuple(rename[n] for n in outcome.forwarded),
                 filtered_at=rename.get(outcome.filtered_at, outcome.filtered_at))

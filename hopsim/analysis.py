"""Outcomes, verdicts, sweeps and the recommended hop limit.

A sweep does not replay the exchange per hop limit. Whether the token gets
through depends on the hop limit only through one number: the routers between
IMDS and the first relay or the principal (the TTL budget the path consumes).
So each principal is walked at most twice, once where the token survives
(hop limit 64) and once where it dies (hop limit 1); every other hop limit
follows. tests/test_properties.py checks this against full replays.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from itertools import islice

from hopsim.engine import play
from hopsim.imds import MAX_HOP_LIMIT, MIN_HOP_LIMIT, ImdsSettings
from hopsim.outcome import FAILS, Access, Outcome, Role, Verdict, bad, verdict
from hopsim.routing import Part, Route, Router, Tree
from hopsim.suppressions import Suppression
from hopsim.topology import Topology

ALL_HOP_LIMITS = tuple(range(MIN_HOP_LIMIT, MAX_HOP_LIMIT + 1))


@dataclass(frozen=True)
class Expectation:
    hop_limit: int
    node: str
    expected: str
    actual: str

    @property
    def passed(self) -> bool:
        return self.expected == self.actual


@dataclass(frozen=True)
class Result:
    """A topology at one hop limit (None: each imds at its configured one)."""

    hop_limit: int | None
    verdict: Verdict
    reason: str
    outcomes: Sequence[Outcome]  # by principal name; Outcomes makes them when read
    expectations: tuple[Expectation, ...] = ()

    @property
    def failed(self) -> list[Expectation]:
        return [e for e in self.expectations if not e.passed]


@dataclass(frozen=True)
class Report:
    """Everything hopsim says about one topology."""

    topology: Topology
    results: tuple[Result, ...]
    recommended_hop_limit: int | None
    recommendation: str
    expectations: tuple[Expectation, ...] = ()  # every `expect` entry, whatever was swept
    # Findings accepted on purpose (hopsim.suppressions), for this topology.
    suppressions: tuple[Suppression, ...] = ()

    @property
    def failed(self) -> list[Expectation]:
        return [e for e in self.expectations if not e.passed]


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
            return _copy(self.delivered, hop_limit=hop_limit)
        # A router forwards only at TTL >= 2: the token dies at the one that
        # sees TTL 1, the hop_limit-th from IMDS.
        return _copy(self.dropped, hop_limit=hop_limit,
                     dropped_at=self.token_routers[hop_limit - 1],
                     forwarded=self.token_routers[:hop_limit - 1])


def _copy(outcome: Outcome, **changes: object) -> Outcome:
    """dataclasses.replace without re-running __init__: a sweep makes one
    outcome per principal and hop limit, and replace() was most of its time
    (profiled at 10k nodes: 7.7 of 13.8 s). Only for fields already checked."""
    copy = object.__new__(Outcome)
    object.__setattr__(copy, "__dict__", {**outcome.__dict__, **changes})
    return copy


class Profiles(Mapping[str, Profile]):
    """Every principal's Profile, each made when asked for.

    What a sweep needs is counted per path class (`tallies`, `access`) without
    making any principal's outcome: a fleet's verdicts cost one walk pair per
    class and a few dictionary lookups per principal; only the outcomes a
    report shows are made.
    """

    def __init__(self, topology: Topology, router: Router | None = None):
        self.topology = topology
        self._profiler = _Profiler(topology, router)
        self._class_of: dict[str, tuple] = {}
        self._own: dict[str, Profile] = {}  # principals walked alone, and the made ones
        for name in topology.principals:
            key = self._profiler.classify(name)
            if key is None:
                self._own[name] = self._profiler.profile(name)
            else:
                self._class_of[name] = key

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

    def _shape(self, name: str) -> tuple[Access, Access | None, int]:
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

    def access(self, name: str, hop_limit: int) -> Access:
        """What `name` holds at `hop_limit`, without making its outcome."""
        delivered, dropped, routers = self._shape(name)
        return dropped if dropped is not None and hop_limit <= routers else delivered

    @cached_property
    def alike(self) -> list[tuple[tuple[str, ...], int]]:
        """The principals by path class and role, each group in name order
        with the copies it stands for (replicas counted): at one hop limit, a
        group's outcomes differ only in names."""
        return self.grouped(lambda name: ())

    def grouped(self, more: Callable[[str], tuple]) -> list[tuple[tuple[str, ...], int]]:
        """alike, each group split further by `more(name)`."""
        nodes = self.topology.nodes
        groups: dict[tuple, list[str]] = {}
        for name in self.topology.principals:
            key = (self.class_of(name), nodes[name].role, *more(name))
            groups.setdefault(key, []).append(name)
        return [(tuple(members), sum(nodes[n].replicas for n in members))
                for members in groups.values()]

    @cached_property
    def tallies(self) -> list[Tally]:
        """The principals that have a role, grouped by what they hold at which
        hop limits: one entry per path class and role, members in name order."""
        nodes = self.topology.nodes
        return [Tally(nodes[members[0]].role, *self._shape(members[0]), members, count)
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
        self._unswept: dict[ImdsSettings, ImdsSettings] = {}
        self.filtering = self.router.filtering

    # The topology at the hop limits a walk is made at: copied when first
    # walked, after routing, so that they share what routing derived.
    @cached_property
    def high(self) -> Topology:
        return self.topology.with_imds(hop_limit=MAX_HOP_LIMIT)

    @cached_property
    def low(self) -> Topology:
        return self.topology.with_imds(hop_limit=MIN_HOP_LIMIT)

    def classify(self, name: str) -> tuple | None:
        """The principal's class key, its class walked if new; None for one
        that is walked alone (unreachable, or IPv6 to an imds without it)."""
        if self.filtering:  # a rule may tell apart what shares a path: each its own walk
            return self._key(name, ("own", name))
        node = self.topology.nodes[name]
        router = self.router
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
        tree = router.tree(family, router.imds)
        hop = tree.settle(here)
        if hop is not None:
            return self._suffix(tree, hop[0], family) if tree.ways[here] == 1 else None
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
        nodes, router = self.topology.nodes, self.router
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
        node = self.topology.nodes[name]
        settings = self.topology.nodes[route.imds].imds if route.imds else None
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
        node = self.topology.nodes[name]
        settings = self.topology.nodes[route.imds].imds if route.imds else None
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
        nodes = self.topology.nodes
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

    return _copy(outcome, node=rename[outcome.node], role=role,
                 receiver=name(outcome.receiver), dropped_at=name(outcome.dropped_at),
                 by=tuple(rename[b] for b in outcome.by),
                 path=tuple(rename[n] for n in outcome.path),
                 forwarded=tuple(rename[n] for n in outcome.forwarded),
                 filtered_at=rename.get(outcome.filtered_at, outcome.filtered_at))


SHOWN = 10  # principals a verdict's reason names; the rest are counted


def judge(outcomes: Iterable[Outcome]) -> tuple[Verdict, str]:
    """leak if an attacker holds anything; else broken if a workload lacks a
    token; else ok. The reason names who, in a few words."""
    failing = [o for o in outcomes if o.bad]
    found = verdict({Role(o.role) for o in failing})
    shown = [o for o in failing if FAILS[Role(o.role)] is found]
    return found, _reason(found, shown[:SHOWN], len(shown))


def _reason(verdict: Verdict, shown: Sequence[Outcome], total: int,
            label: Callable[[str], str] = str, count: Callable[[str], int] = lambda _: 1) -> str:
    """Who makes the verdict: the first principals by name, and how many more
    (`total` counts copies: a principal with replicas is many)."""
    if verdict is Verdict.LEAK:
        parts = [f"{label(o.node)} gets {o.access.value}"
                 + (f" through {o.receiver}" if o.receiver not in (None, o.node) else "")
                 for o in shown]
    elif verdict is Verdict.BROKEN:
        parts = [f"{label(o.node)} has no token"
                 + (" (falls back to IMDSv1 after a timeout)"
                    if o.access is Access.CREDENTIALS and o.dropped_at else "")
                 for o in shown]
    else:
        return "every workload holds a token, no attacker anything"
    more = total - sum(count(o.node) for o in shown)
    if more:
        parts.append(f"and {more:,} more {'attackers' if verdict is Verdict.LEAK else 'workloads'}")
    return "; ".join(parts)


@dataclass(frozen=True)
class Alike:
    """Principals whose outcomes differ only in names: `first`'s, and how many
    principals (and copies of them, replicas counted) share it."""

    first: Outcome
    principals: int
    copies: int
    members: tuple[str, ...] = ()  # the principals' names, in name order

    def who(self, label: Callable[[str], str] = str) -> str:
        """The first principal's name (as `label` writes it), and how many
        more the group stands for: "c0x0 and 59 more like it"."""
        more = self.principals - 1
        return label(self.first.node) + (f" and {more:,} more like it" if more else "")


GROUP_ABOVE = 40  # principals; above, reports for people show one row per kind of path


def rows(outcomes: Sequence[Outcome]) -> list[Alike]:
    """What a report for people lists: each principal, or above GROUP_ABOVE
    principals each group of Outcomes.groups() (a 10,000-node fleet's check
    is 318 table lines instead of 33,000)."""
    if isinstance(outcomes, Outcomes) and len(outcomes) > GROUP_ABOVE:
        return outcomes.groups()
    return [Alike(o, 1, 1, (o.node,)) for o in outcomes]


class Outcomes(Sequence[Outcome]):
    """The outcomes of one Result, in principal name order, made on first use:
    a sweep of a fleet counts its verdicts and makes none of them unless a
    report lists them."""

    def __init__(self, found: Profiles, limits: int | Mapping[str, int | None]):
        self._found, self._limits = found, limits
        self._made: tuple[Outcome, ...] | None = None
        self._groups: list[Alike] | None = None  # made once: each CI format reads them

    def _outcome(self, name: str) -> Outcome:
        limit = self._limits if isinstance(self._limits, int) else self._limits.get(name)
        profile = self._found[name]
        return profile.at(limit) if limit else profile.delivered

    @property
    def made(self) -> tuple[Outcome, ...]:
        if self._made is None:
            self._made = tuple(self._outcome(name) for name in self._found)
        return self._made

    def __getitem__(self, index):  # type: ignore[override]
        return self.made[index]

    def __len__(self) -> int:
        return len(self._found)

    def __iter__(self) -> Iterator[Outcome]:
        """Each outcome made as it is read, and not kept unless made already:
        a fleet's JSON sweep reads 81,000 principals at each of 64 hop limits."""
        if self._made is not None:
            return iter(self._made)
        return map(self._outcome, self._found)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    def __hash__(self) -> int:
        return hash(self.made)

    def __repr__(self) -> str:
        return f"Outcomes({len(self)} principals)"

    def groups(self) -> list[Alike]:
        """The principals grouped by path class, role and hop limit: each group
        gets one outcome, up to names (its first member's), in name order."""
        if self._groups is None:
            limits = self._limits
            if isinstance(limits, int):  # one hop limit: the same groups at each (a sweep's 64)
                groups = self._found.alike
            else:
                groups = self._found.grouped(lambda name: (limits.get(name),))
            self._groups = [Alike(self._outcome(members[0]), len(members), copies,
                                  tuple(members)) for members, copies in groups]
        return self._groups

    def verdict(self) -> tuple[Verdict, str]:
        """judge(self), counted: only the principals the reason names are made."""
        tallies = self._found.tallies
        limits = self._limits
        nodes = self._found.topology.nodes
        for role in Role:
            if isinstance(limits, int):
                bad = [t for t in tallies if t.role == role and t.bad(limits)]
                # members are in name order: merging gives the first names
                first = list(islice(heapq.merge(*(t.members for t in bad)), SHOWN))
                total = sum(t.count for t in bad)
            else:
                names = sorted(n for t in tallies if t.role == role
                               for n in t.members if self._bad(n, role))
                first, total = names[:SHOWN], sum(nodes[n].replicas for n in names)
            if first:
                return FAILS[role], _reason(FAILS[role], [self._outcome(n) for n in first], total,
                                        self._found.topology.label, lambda n: nodes[n].replicas)
        return Verdict.OK, _reason(Verdict.OK, [], 0)

    def _bad(self, name: str, role: str | None) -> bool:
        limit = self._limits.get(name) if not isinstance(self._limits, int) else self._limits
        access = self._found.access(name, limit) if limit else self._found._shape(name)[0]
        return bad(role, access)


def _result(topology: Topology, hop_limit: int | None, outcomes: Outcomes) -> Result:
    verdict, reason = outcomes.verdict()
    expected = topology.expect.get(hop_limit, {}) if hop_limit is not None else {}
    expectations = tuple(
        Expectation(hop_limit, node, want, outcomes._outcome(node).access.value)  # type: ignore[arg-type]
        for node, want in sorted(expected.items())
    )
    return Result(hop_limit, verdict, reason, outcomes, expectations)


def verdict_runs(report: Report, hop_limits: Sequence[int]) -> list[tuple[Verdict, int, int]]:
    """Consecutive hop limits with one verdict: [(ok, 2, 64), ...], for
    reports that say 'broken 1, ok 2-64' instead of 64 columns."""
    verdicts = {r.hop_limit: r.verdict for r in report.results}
    runs: list[tuple[Verdict, int, int]] = []
    for h in hop_limits:
        if runs and runs[-1][0] is verdicts[h] and runs[-1][2] == h - 1:
            runs[-1] = (runs[-1][0], runs[-1][1], h)
        else:
            runs.append((verdicts[h], h, h))
    return runs


def configured_hop_limit(topology: Topology) -> int | None:
    """The one hop limit all imds nodes share, or None if they differ."""
    limits = set(topology.hop_limits().values())
    return limits.pop() if len(limits) == 1 else None


def check(topology: Topology) -> Report:
    """The topology at its configured hop limit(s)."""
    return sweep(topology, ())


def sweep(topology: Topology, hop_limits: Iterable[int]) -> Report:
    """The topology at each hop limit (every imds set to it), plus the
    configured one when `hop_limits` is empty, and the recommended hop limit."""
    found = profiles(topology)
    wanted = sorted(set(hop_limits))
    results = []
    if not wanted:
        configured = topology.hop_limits()
        router = found._profiler.router
        limits: dict[str, int | None] = {}
        for name in found:
            imds_node = router.imds_of(name)
            limits[name] = configured.get(imds_node) if imds_node else None
        results.append(_result(topology, configured_hop_limit(topology),
                               Outcomes(found, limits)))
    for hop_limit in wanted:
        results.append(_result(topology, hop_limit, Outcomes(found, hop_limit)))
    recommended, why = recommend(topology, found)
    expectations = tuple(
        e for h in sorted(topology.expect)
        for e in _result(topology, h, Outcomes(found, h)).expectations
    )
    return Report(topology, tuple(results), recommended, why, expectations)


def verdicts(found: Profiles) -> dict[int, Verdict]:
    """The verdict at every hop limit 1..64, without making an outcome.

    A principal's access changes at most once along the hop limits (at its
    number of token routers), so counting, per hop limit, the attackers that
    hold something and the workloads without a token takes one pass over the
    path classes and one over the hop limits.
    """
    size = MAX_HOP_LIMIT + 2
    counts_of = {role: [0] * size for role in Role}  # difference arrays over hop limits
    for t in found.tallies:
        counts = counts_of[Role(t.role)]
        split = min(t.routers if t.dropped is not None else 0, MAX_HOP_LIMIT)
        # hop limits 1..split: the token dies; split+1..64: it is delivered
        for first, last, failing in ((MIN_HOP_LIMIT, split, t.bad(MIN_HOP_LIMIT)),
                                     (split + 1, MAX_HOP_LIMIT, t.bad(MAX_HOP_LIMIT))):
            if failing and first <= last:
                counts[first] += t.count
                counts[last + 1] -= t.count
    out: dict[int, Verdict] = {}
    failing = dict.fromkeys(Role, 0)
    for h in ALL_HOP_LIMITS:
        for role in Role:
            failing[role] += counts_of[role][h]
        out[h] = verdict({role for role, n in failing.items() if n})
    return out


def recommend(topology: Topology, found: Profiles) -> tuple[int | None, str]:
    """The smallest hop limit whose verdict is ok, or None and why none is."""
    by_limit = verdicts(found)
    ok = next((h for h, v in by_limit.items() if v is Verdict.OK), None)
    if ok is not None:
        return ok, f"smallest hop limit where the verdict is ok: {ok}"

    def why(hop_limit: int) -> str:
        return Outcomes(found, hop_limit).verdict()[1]

    first_leak = next((h for h, v in by_limit.items() if v is Verdict.LEAK), None)
    if first_leak == MIN_HOP_LIMIT:
        return None, f"leaks at every hop limit: {why(MIN_HOP_LIMIT)}"
    if first_leak is None:
        return None, f"broken at every hop limit: {why(MAX_HOP_LIMIT)}"
    return None, (f"no hop limit works: broken up to {first_leak - 1} "
                  f"({why(first_leak - 1)}), leak from {first_leak} ({why(first_leak)})")

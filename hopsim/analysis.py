"""Outcomes, verdicts, sweeps and the recommended hop limit.

A sweep does not replay the exchange per hop limit. Whether the token gets
through depends on the hop limit only through one number: the routers between
IMDS and the first relay or the principal (the TTL budget the path consumes).
So each principal is walked at most twice, once where the token survives
(hop limit 64) and once where it dies (hop limit 1); every other hop limit
follows. tests/test_properties.py checks this against full replays.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum

from hopsim.engine import Access, Outcome, play
from hopsim.imds import MAX_HOP_LIMIT, MIN_HOP_LIMIT
from hopsim.routing import Route, Router
from hopsim.topology import Topology

ALL_HOP_LIMITS = tuple(range(MIN_HOP_LIMIT, MAX_HOP_LIMIT + 1))


class Verdict(str, Enum):
    OK = "ok"
    LEAK = "leak"  # an attacker holds a token or credentials
    BROKEN = "broken"  # a workload lacks a token


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
    outcomes: tuple[Outcome, ...]
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
                     dropped_at=self.token_routers[hop_limit - 1])


def _copy(outcome: Outcome, **changes: object) -> Outcome:
    """dataclasses.replace without re-running __init__: a sweep makes one
    outcome per principal and hop limit, and replace() was most of its time
    (profiled at 10k nodes: 7.7 of 13.8 s). Only for fields already checked."""
    copy = object.__new__(Outcome)
    object.__setattr__(copy, "__dict__", {**outcome.__dict__, **changes})
    return copy


def profiles(topology: Topology) -> dict[str, Profile]:
    """One Profile per principal: at most two walks per path class, whatever
    the sweep and however many principals share the class."""
    walker = _Profiler(topology)
    return {name: walker.profile(name) for name in topology.principals}


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
        self.high = topology.with_imds(hop_limit=MAX_HOP_LIMIT)
        self.low = topology.with_imds(hop_limit=MIN_HOP_LIMIT)
        self.router = router or Router(topology)
        self.classes: dict[tuple, tuple[Outcome, Outcome | None, tuple[str, ...]]] = {}

    def profile(self, name: str) -> Profile:
        route = self.router.route(name)
        node = self.topology.nodes[name]
        settings = self.topology.nodes[route.imds].imds if route.imds else None
        if route.unreachable or (node.family == 6 and not settings.ipv6):  # type: ignore[union-attr]
            # No walk to share: the outcome comes without one.
            outcome = play(self.topology, name, router=self.router).outcome
            return Profile(outcome, None, ())
        key, names = self._signature(route, node.family)
        if key not in self.classes:
            self.classes[key] = (*self._walk(name, route.token_routers), names)
        delivered, dropped, first = self.classes[key]
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
        nodes = self.topology.nodes
        names: list[str] = []
        index: dict[str, int] = {}
        features: list[object] = [family, replace(nodes[route.imds].imds, hop_limit=0)]
        for station in route.stations:
            for name in (station.node, station.actor):
                names.append(name)
                features.append(index.setdefault(name, len(index)))  # which names repeat
            actor = nodes[station.actor]
            features.append((station.role, actor.kind, actor.relay,
                             nodes[station.node].rewrites_source))
        return tuple(features), tuple(names)


def _renamed(outcome: Outcome, rename: Mapping[str, str], role: str | None) -> Outcome:
    def name(n: str | None) -> str | None:
        return rename[n] if n is not None else None

    return replace(outcome, node=rename[outcome.node], role=role,
                   receiver=name(outcome.receiver), dropped_at=name(outcome.dropped_at),
                   by=tuple(rename[b] for b in outcome.by))


def judge(outcomes: Iterable[Outcome]) -> tuple[Verdict, str]:
    """leak if an attacker holds anything; else broken if a workload lacks a
    token; else ok. The reason names who, in a few words."""
    outcomes = list(outcomes)
    leaks = [o for o in outcomes if o.role == "attacker" and o.access is not Access.NONE]
    if leaks:
        return Verdict.LEAK, "; ".join(
            f"{o.node} gets {o.access.value}"
            + (f" through {o.receiver}" if o.receiver not in (None, o.node) else "")
            for o in leaks)
    starved = [o for o in outcomes if o.role == "workload" and o.access is not Access.TOKEN]
    if starved:
        return Verdict.BROKEN, "; ".join(
            f"{o.node} has no token"
            + (" (falls back to IMDSv1 after a timeout)"
               if o.access is Access.CREDENTIALS and o.dropped_at else "")
            for o in starved)
    return Verdict.OK, "every workload holds a token, no attacker anything"


def _result(topology: Topology, hop_limit: int | None,
            outcomes: Mapping[str, Outcome]) -> Result:
    verdict, reason = judge(outcomes.values())
    expected = topology.expect.get(hop_limit, {}) if hop_limit is not None else {}
    expectations = tuple(
        Expectation(hop_limit, node, want, outcomes[node].access.value)  # type: ignore[arg-type]
        for node, want in sorted(expected.items())
    )
    return Result(hop_limit, verdict, reason, tuple(outcomes[n] for n in sorted(outcomes)),
                  expectations)


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
        router = Router(topology)
        outcomes = {}
        for name, profile in found.items():
            imds_node = router.route(name).imds
            limit = configured.get(imds_node) if imds_node else None
            outcomes[name] = profile.at(limit) if limit else profile.delivered
        results.append(_result(topology, configured_hop_limit(topology), outcomes))
    for hop_limit in wanted:
        results.append(_result(topology, hop_limit,
                               {n: p.at(hop_limit) for n, p in found.items()}))
    recommended, why = recommend(topology, found)
    expectations = tuple(
        e for h in sorted(topology.expect)
        for e in _result(topology, h, {n: p.at(h) for n, p in found.items()}).expectations
    )
    return Report(topology, tuple(results), recommended, why, expectations)


def verdicts(found: Mapping[str, Profile]) -> dict[int, Verdict]:
    """The verdict at every hop limit 1..64, without making an outcome.

    A principal's access changes at most once along the hop limits (at its
    number of token routers), so counting, per hop limit, the attackers that
    hold something and the workloads without a token takes one pass over the
    principals and one over the hop limits.
    """
    size = MAX_HOP_LIMIT + 2
    leaks, starved = [0] * size, [0] * size  # difference arrays over hop limits

    def count(counts: list[int], first: int, last: int) -> None:
        if first <= last:
            counts[first] += 1
            counts[last + 1] -= 1

    for profile in found.values():
        role = profile.delivered.role
        if role not in ("attacker", "workload"):
            continue
        if role == "attacker":
            def bad(access: Access) -> bool:
                return access is not Access.NONE
            counts = leaks
        else:
            def bad(access: Access) -> bool:
                return access is not Access.TOKEN
            counts = starved
        routers = len(profile.token_routers) if profile.dropped is not None else 0
        split = min(routers, MAX_HOP_LIMIT)  # hop limits 1..split: the token dies
        if profile.dropped is not None and bad(profile.dropped.access):
            count(counts, MIN_HOP_LIMIT, split)
        if bad(profile.delivered.access):
            count(counts, split + 1, MAX_HOP_LIMIT)
    out: dict[int, Verdict] = {}
    leaking = starving = 0
    for h in ALL_HOP_LIMITS:
        leaking += leaks[h]
        starving += starved[h]
        out[h] = Verdict.LEAK if leaking else Verdict.BROKEN if starving else Verdict.OK
    return out


def recommend(topology: Topology, found: Mapping[str, Profile]) -> tuple[int | None, str]:
    """The smallest hop limit whose verdict is ok, or None and why none is."""
    by_limit = verdicts(found)
    ok = next((h for h, v in by_limit.items() if v is Verdict.OK), None)
    if ok is not None:
        return ok, f"smallest hop limit where the verdict is ok: {ok}"

    def why(hop_limit: int) -> str:
        return judge(p.at(hop_limit) for p in found.values())[1]

    first_leak = next((h for h, v in by_limit.items() if v is Verdict.LEAK), None)
    if first_leak == MIN_HOP_LIMIT:
        return None, f"leaks at every hop limit: {why(MIN_HOP_LIMIT)}"
    if first_leak is None:
        return None, f"broken at every hop limit: {why(MAX_HOP_LIMIT)}"
    return None, (f"no hop limit works: broken up to {first_leak - 1} "
                  f"({why(first_leak - 1)}), leak from {first_leak} ({why(first_leak)})")

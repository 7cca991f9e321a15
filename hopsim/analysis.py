"""Outcomes, verdicts, sweeps and the recommended hop limit.

A sweep does not replay the exchange per hop limit: it reads each
principal's Profile (hopsim.profiles) at each hop limit, and counts verdicts
per path class without making an outcome a report does not show.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice

from hopsim.imds import MAX_HOP_LIMIT, MIN_HOP_LIMIT
from hopsim.outcome import FAILS, Access, Outcome, Role, Verdict, bad, verdict
from hopsim.profiles import Profiles, profiles
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

    def outcome(self, name: str) -> Outcome:
        """`name`'s outcome at this Result's hop limit."""
        limit = self._limits if isinstance(self._limits, int) else self._limits.get(name)
        profile = self._found[name]
        return profile.at(limit) if limit else profile.delivered

    @property
    def made(self) -> tuple[Outcome, ...]:
        if self._made is None:
            self._made = tuple(self.outcome(name) for name in self._found)
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
        return map(self.outcome, self._found)

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
                groups = [(members, copies) for members, copies, _ in self._found.split(limits)]
            self._groups = [Alike(self.outcome(members[0]), len(members), copies,
                                  tuple(members)) for members, copies in groups]
        return self._groups

    def verdict(self) -> tuple[Verdict, str]:
        """judge(self), counted: only the principals the reason names are made."""
        limits = self._limits
        nodes = self._found.topology.like
        if isinstance(limits, int):
            groups = [(t.members, t.count, t.role, t.bad(limits)) for t in self._found.tallies]
        else:  # each principal at its own imds's hop limit: the groups split by them
            groups = [(members, copies, nodes[members[0]].role,
                       self._bad(members[0], nodes[members[0]].role))
                      for members, copies, _ in self._found.split(limits)]
        for role in Role:
            bad = [(members, copies) for members, copies, of, failing in groups
                   if of == role and failing]
            # members are in name order: merging gives the first names
            first = list(islice(heapq.merge(*(members for members, _ in bad)), SHOWN))
            total = sum(copies for _, copies in bad)
            if first:
                return FAILS[role], _reason(FAILS[role], [self.outcome(n) for n in first], total,
                                        self._found.topology.label, lambda n: nodes[n].replicas)
        return Verdict.OK, _reason(Verdict.OK, [], 0)

    def _bad(self, name: str, role: str | None) -> bool:
        limit = self._limits.get(name) if not isinstance(self._limits, int) else self._limits
        access = self._found.access(name, limit or None)
        return bad(role, access)


def _result(topology: Topology, hop_limit: int | None, outcomes: Outcomes) -> Result:
    verdict, reason = outcomes.verdict()
    expected = topology.expect.get(hop_limit, {}) if hop_limit is not None else {}
    expectations = tuple(
        Expectation(hop_limit, node, want, outcomes.outcome(node).access.value)  # type: ignore[arg-type]
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
        limits = found.limits(topology.hop_limits())
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

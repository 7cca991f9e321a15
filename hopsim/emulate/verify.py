"""Simulator vs kernel: the same topology, hop limits and family through
`analysis.sweep` and through `run.emulate`, compared principal by principal
on what matters: the outcome, the routers that forwarded the token response
(its own path, which need not be the request's) and the one that dropped it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from hopsim import analysis
from hopsim.analysis import Report
from hopsim.emulate import run
from hopsim.emulate.run import with_family
from hopsim.outcome import Cause, Outcome
from hopsim.topology import Topology


def families(topology: Topology) -> list[int]:
    """IPv4, and IPv6 where the topology enables it (an imds with `ipv6: true`,
    or a principal that uses it)."""
    ipv6 = any(topology.nodes[n].imds.ipv6 for n in topology.imds_nodes) or any(  # type: ignore[union-attr]
        topology.nodes[p].family == 6 for p in topology.principals)
    return [4, 6] if ipv6 else [4]


@dataclass(frozen=True)
class Case:
    """One principal at one hop limit: what each side says."""

    hop_limit: int
    principal: str
    simulated: Outcome
    measured: Outcome

    @staticmethod
    def key(outcome: Outcome) -> tuple[str, tuple[str, ...], str | None]:
        return outcome.access.value, outcome.forwarded, outcome.dropped_at

    @property
    def agrees(self) -> bool:
        """The same outcome, token response path and drop; and, where the
        simulator has a way to IMDS, the same request path."""
        if self.key(self.simulated) != self.key(self.measured):
            return False
        return self.simulated.cause is Cause.UNREACHABLE or (
            self.simulated.path == self.measured.path)


@dataclass(frozen=True)
class Verification:
    """One topology over one family: every case, and how long each side took."""

    topology: Topology
    family: int
    cases: tuple[Case, ...]
    simulated: Report
    measured: Report
    simulator_seconds: float
    kernel: run.Timing

    @property
    def disagreements(self) -> list[Case]:
        return [c for c in self.cases if not c.agrees]


def compare(simulated: Report, measured: Report) -> tuple[Case, ...]:
    cases = []
    for sim, kern in zip(simulated.results, measured.results, strict=True):
        assert sim.hop_limit == kern.hop_limit
        found = {o.node: o for o in kern.outcomes}
        for outcome in sim.outcomes:
            cases.append(Case(sim.hop_limit, outcome.node, outcome,  # type: ignore[arg-type]
                              found[outcome.node]))
    return tuple(cases)


def verify(topology: Topology, hop_limits: Iterable[int], family: int, *,
           timeout: float = run.DEFAULT_TIMEOUT) -> Verification:
    hop_limits = sorted(set(hop_limits))
    variant = with_family(topology, family)
    started = time.perf_counter()
    simulated = analysis.sweep(variant, hop_limits)
    simulator_seconds = time.perf_counter() - started
    measured, timing = run.emulate(variant, hop_limits, timeout=timeout)
    return Verification(topology, family, compare(simulated, measured), simulated, measured,
                        simulator_seconds, timing)

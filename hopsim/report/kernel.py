"""Tables for the kernel runs: how long they took, and simulator vs kernel."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console, Group, RenderableType
from rich.text import Text

from hopsim.emulate import Timing, Verification
from hopsim.outcome import Outcome
from hopsim.report.table import grid
from hopsim.report.wording import plural


def _seconds(value: float) -> str:
    return f"{value:.2f} s"


def timing(timings: Sequence[Timing]) -> Text:
    """One line: how long the kernel side took, phase by phase."""
    namespaces = sum(t.namespaces for t in timings)
    return Text(
        f"kernel: {_seconds(sum(t.total for t in timings))} ({namespaces} namespaces: "
        f"build {_seconds(sum(t.build for t in timings))}, "
        f"exchanges {_seconds(sum(t.exchanges for t in timings))}, "
        f"removal {_seconds(sum(t.teardown for t in timings))})", overflow="fold")


def _side(outcome: Outcome) -> str:
    via = f" via {'>'.join(outcome.forwarded)}" if outcome.forwarded else ""
    return outcome.access.value + via + (f" @{outcome.dropped_at}" if outcome.dropped_at else "")


def verification(out: Console, checks: Sequence[Verification]) -> RenderableType:
    """Per topology, family, hop limit and principal: the outcome, the routers
    that forwarded the token response and the one that dropped it, from the
    simulator and from the kernel (and the request's path where they differ)."""
    parts: list[RenderableType] = [Text(
        "each side: the outcome, via the routers that forwarded the token response "
        "(from IMDS), @ the one that dropped it")]
    for check in checks:
        differ = len(check.disagreements)
        verdict = (Text(f"{differ} differ", style="bold red") if differ
                   else Text("agree", style="green"))
        parts.append(Text.assemble(
            (check.topology.name, "bold"), f" (IPv{check.family}): ", verdict,
            f"; simulator {_seconds(check.simulator_seconds)}, "
            f"kernel {_seconds(check.kernel.total)}"))
        table = grid(out, "hop", "principal", "simulator", "kernel", "")
        for case in check.cases:
            mark = Text("ok", style="green") if case.agrees else Text("DIFFERS", style="bold red")
            simulated, measured = _side(case.simulated), _side(case.measured)
            if case.simulated.path != case.measured.path:
                simulated += f"\nrequest {'>'.join(case.simulated.path) or 'none'}"
                measured += f"\nrequest {'>'.join(case.measured.path) or 'none'}"
            table.add_row(str(case.hop_limit), case.principal, simulated, measured, mark)
        parts.append(table)
    cases = sum(len(c.cases) for c in checks)
    differ = sum(len(c.disagreements) for c in checks)
    topologies = len({c.topology.name for c in checks})
    parts.append(Text(
        f"{plural(topologies, 'topology', 'topologies')}, {plural(len(checks), 'run')}, "
        f"{cases} cases: {cases - differ} agree, {differ} differ",
        style="bold red" if differ else ""))
    parts.append(Text(f"simulator: {_seconds(sum(c.simulator_seconds for c in checks))}"))
    parts.append(timing([c.kernel for c in checks]))
    return Group(*parts)

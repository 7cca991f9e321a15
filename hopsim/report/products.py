"""The products tables: hopsim's model of each product, and what the real
binaries did (`hopsim products [--verify]`), as rich tables or Markdown."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from hopsim.emulate.survey import Measured
from hopsim.products import Setup, setups
from hopsim.report.table import grid

DEFAULTS = ("product", "mode", "passes", "refusal", "XFF", "headers", "method")
MEASURED = ("product", "mode", "at IMDS", "headers added", "headers dropped", "attacker got",
            "TTL seen", "model")


def _defaults(setup: Setup) -> tuple[str, ...]:
    policy = setup.policy
    return (setup.product, setup.mode or "-",
            " ".join(policy.methods) if policy.methods else "any",
            str(policy.refusal_status) if policy.methods else "-",
            "added" if policy.adds_xff else "no",
            "kept" if policy.forwards_headers else "dropped",
            f"{policy.sends_method} always" if policy.sends_method else "same")


def defaults_rows() -> list[tuple[str, ...]]:
    return [_defaults(s) for s in setups()]


def measured_rows(measured: Sequence[Measured]) -> list[tuple[str, ...]]:
    rows = []
    for m in measured:
        got = m.access.value + (f" ({m.status})" if m.status else " (no answer)")
        rows.append((m.setup.product, m.setup.mode or "-",
                     m.method_at_imds or "nothing",
                     ", ".join(m.added) or "-", ", ".join(m.dropped) or "-", got,
                     str(m.answer_ttl) if m.answer_ttl is not None else "-",
                     "; ".join(m.differences) or "agrees"))
    return rows


def table(out: Console, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    t = grid(out, *columns)
    for column in t.columns:
        column.overflow = "fold"
    t.columns[0].no_wrap = True  # the product's name, whole
    for row in rows:
        t.add_row(*row)
    return t


def markdown(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
              for row in rows]
    return "\n".join(lines) + "\n"


def measured_lines(measured: Sequence[Measured]) -> RenderableType:
    """One paragraph per product and mode: the measured table, readable at 80 columns."""
    parts: list[RenderableType] = []
    for row in measured_rows(measured):
        product, mode, at_imds, added, dropped, got, ttl, model = row
        name = f"{product} ({mode})" if mode != "-" else product
        parts.append(Text.assemble(
            (name, "bold"), f": {'a ' + at_imds if at_imds != 'nothing' else 'nothing'} "
            f"reached IMDS; added {added}; dropped {dropped}; the attacker got {got}, "
            f"TTL {ttl}; model: ",
            (model, "green" if model == "agrees" else "bold red")))
    parts.append(Text(summary(measured)))
    return Group(*parts)


def summary(measured: Sequence[Measured]) -> str:
    differ = [m for m in measured if m.differences]
    return (f"{len(measured)} products and modes measured: {len(measured) - len(differ)} as "
            f"modelled, {len(differ)} differ")

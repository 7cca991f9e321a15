"""The lesson (hopsim.lesson) played on a terminal, for `hopsim demo`: one step
at a time, the packet's path drawn as a strip.

On a terminal it uses colour and box-drawing glyphs; anywhere else (a pipe, a
file, a recording) the same words in plain ASCII, with no control codes.
"""

from __future__ import annotations

import contextlib
import sys
import textwrap
import time
from collections.abc import Callable, Sequence

from rich.console import Console, Group, RenderableType
from rich.text import Text

from hopsim.engine import Action
from hopsim.lesson import Beat, Demo, Scenario, Step, Strip
from hopsim.outcome import Access

ACTION_STYLE = {Action.DROP: "bold red", Action.DELIVER: "bold green",
                Action.TIMEOUT: "yellow", Action.REFUSE: "yellow"}
ACCESS_STYLE = {Access.TOKEN: "bold green", Access.CREDENTIALS: "bold yellow",
                Access.NONE: "bold red"}
INDENT = "     "


def _wrapped(out: Console, text: str, indent: str = "", style: str = "") -> Text:
    width = max(out.width, 40)
    lines = []
    for paragraph in text.split("\n"):
        lines.append(textwrap.fill(paragraph, width=width, initial_indent=indent,
                                   subsequent_indent=indent, break_on_hyphens=False))
    return Text("\n".join(lines), style=style)


def strip(out: Console, value: Strip) -> Text:
    """imds --TTL 1---> [instance: dropped] . . . . . docker0 . . . . . app"""
    fancy = out.is_terminal
    units: list[Text] = []  # a station and the link after it: lines break between units
    for i, name in enumerate(value.stations):
        if i == value.at:
            state = {Action.DROP: ": dropped", Action.DELIVER: ": delivered"}.get(
                value.action, "")
            style = ACTION_STYLE.get(value.action, "bold reverse")
            unit = Text(f"[{name}{state}]", style=style)
        else:
            unit = Text(name, style="" if i < value.at else "dim")
        if i < len(value.ttls):
            ttl = value.ttls[i]
            if ttl is None:
                unit += Text(" ┄┄┄┄┄┄┄┄┄ " if fancy else " . . . . . ", style="dim")
            elif fancy:
                unit += Text(f" ──TTL {ttl}".ljust(10, "─") + "▶ ", style="bold cyan")
            else:
                unit += Text(f" --TTL {ttl}".ljust(10, "-") + "> ")
        units.append(unit)
    width = max(out.width, 40)
    lines, line = [], Text(INDENT + "  ")
    for unit in units:
        if len(line) + len(unit.plain.rstrip()) > width and line.plain.strip():
            lines.append(line)
            line = Text(INDENT + "    ")
        line += unit
    lines.append(line)
    for text in lines:
        text.rstrip()
    return Text("\n").join(lines)


def _hop_lines(step: Step) -> list[Text]:
    width = max(len(h.node) for h in step.hops)
    action = max(len(h.action.value) for h in step.hops)
    lines = []
    for hop in step.hops:
        if hop.ttl_in is not None and hop.ttl_out is not None:
            ttl = f"TTL {hop.ttl_in}->{hop.ttl_out}"
        else:
            value = hop.ttl_in if hop.ttl_in is not None else hop.ttl_out
            ttl = "" if value is None else f"TTL {value}"
        lines.append(Text.assemble(
            f"{INDENT}  {hop.node:<{width}}  ",
            (f"{hop.action.value:<{action}}", ACTION_STYLE.get(hop.action, "")),
            f"  {ttl}"))
        lines[-1].rstrip()
    return lines


def render(out: Console, step: Step, number: int) -> RenderableType:
    """One step. `number` counts the steps of an act (0 for the others)."""
    if step.beat is Beat.SCENE:
        return _wrapped(out, step.caption, style="bold")
    if step.beat is Beat.ACT:
        rule = "─" if out.is_terminal else "-"
        title = f"{rule * 3} hop limit {step.hop_limit} "
        return Group(Text(""), Text(title.ljust(max(out.width, 40), rule), style="bold cyan"),
                     _wrapped(out, step.caption))
    if step.beat is Beat.LESSON:
        rule = "─" if out.is_terminal else "-"
        title = f"{rule * 3} lesson "
        return Group(Text(""), Text(title.ljust(max(out.width, 40), rule), style="bold cyan"),
                     _wrapped(out, step.caption))
    head = f"[{number}]".ljust(len(INDENT))
    wrapped = _wrapped(out, step.caption, indent=INDENT).plain
    caption = Text(head + wrapped[len(INDENT):])
    if step.beat is Beat.OUTCOME and step.access is not None:
        value = step.access.value
        start = caption.plain.find(f"holds: {value}.")
        if start >= 0:
            start += len("holds: ")
            caption.stylize(ACCESS_STYLE[step.access], start, start + len(value))
    elif step.beat is Beat.HOP and step.action in ACTION_STYLE:
        caption.stylize(ACTION_STYLE[step.action], 0, len(head))
    parts: list[RenderableType] = [Text(""), caption]
    if step.beat is Beat.REQUEST:
        parts += _hop_lines(step)
    if step.strip is not None:
        parts.append(strip(out, step.strip))
    return Group(*parts)


def present(out: Console, demo: Demo, wait: Callable[[], None]) -> None:
    """Print the steps, calling `wait` before each one after the first."""
    number = 0
    for i, step in enumerate(demo.steps):
        if i:
            wait()
        number = 0 if step.beat in (Beat.SCENE, Beat.ACT, Beat.LESSON) else number + 1
        out.print(render(out, step, number))


def enter(out: Console) -> Callable[[], None]:
    """Wait for Enter, then wipe the prompt (a terminal only)."""

    def wait() -> None:
        out.print(Text("  press Enter", style="dim"), end="")
        with contextlib.suppress(EOFError):
            input()
        out.file.write("\x1b[1A\x1b[2K")  # back over the prompt's line, and clear it
        out.file.flush()

    return wait


def pacing(out: Console, auto: bool, delay: float) -> Callable[[], None]:
    """How the show moves on: a timer with --auto, Enter on a terminal, else
    at once (a pipe or a recording)."""
    if auto:
        return lambda: time.sleep(delay)
    if out.is_terminal and sys.stdin.isatty():
        return enter(out)
    return lambda: None


def scenarios(out: Console, items: Sequence[Scenario]) -> RenderableType:
    """`hopsim demo --list`: one line per scenario, what it teaches and whom
    the show follows (lines are not wrapped: one scenario, one line)."""
    width = max((len(item.name) for item in items), default=0)
    lines = []
    for item in items:
        role = f", {item.role}" if item.role and item.role != item.principal else ""
        lines.append(Text.assemble((f"{item.name:<{width}}", "bold"),
                                   f"  {item.teaches} (follows {item.principal}{role})"))
    return Group(*lines)

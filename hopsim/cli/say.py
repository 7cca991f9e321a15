"""How every command speaks: lines for people (none with -q), notes, errors
and exit codes, the console (--color/--no-color), and output files.

Exit codes: 0 fine, 1 a finding, 2 bad input or usage.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, NoReturn

import click
from rich.console import Console

from hopsim import output
from hopsim.loader import STDIN
from hopsim.report import table
from hopsim.topology import Problem
from hopsim.untrusted import shown

EXIT_OK, EXIT_FINDING, EXIT_BAD_INPUT = 0, 1, 2


def remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """An option's callback: keep its value for the whole run (-q, --color)."""
    ctx.meta[f"hopsim.{param.name}"] = value  # ctx.meta is shared by the whole run
    return value


def setting(name: str) -> Any:
    """A value remember() kept, or None."""
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(f"hopsim.{name}") if ctx else None


def say(text: str, *, err: bool = False, nl: bool = True) -> None:
    """A line for people: left out with -q."""
    if not setting("quiet"):
        click.echo(text, err=err, nl=nl)


def note(text: str) -> None:
    """A remark on stderr that changes nothing in the result (none with -q)."""
    say(f"note: {shown(text)}", err=True)


def report_problems(problems: Iterable[Problem]) -> None:
    for problem in problems:
        click.echo(f"error: {shown(problem)}", err=True)


def fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def console() -> Console:
    """The terminal's console, with --color/--no-color applied."""
    return table.console(color=setting("color"))


# --- output files ---------------------------------------------------------------------

STDOUT = "-"  # an --output file that means standard output

# The parameters that name files a command reads: an output onto one of them
# would destroy the input (import's TOPOLOGY is edited in place on purpose).
_INPUT_PARAMS = ("paths", "file", "plan", "describe", "settings_file", "ignore_file",
                 "scenario")


def _inputs() -> list[str]:
    """The files this run reads, as given on the command line."""
    inputs = []
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        for name in _INPUT_PARAMS:
            value = ctx.params.get(name)
            inputs += [given for given in (value if isinstance(value, (tuple, list)) else [value])
                       if isinstance(given, str) and given != STDIN]
        ctx = ctx.parent
    return inputs


def refuse_inputs(file: str) -> None:
    """Exit 2 if FILE is an input of this run."""
    try:
        output.refuse_inputs(file, _inputs())
    except output.OutputError as error:
        fail(str(error))


def write(file: str, pieces: Iterable[str] | bytes) -> None:
    """Write a report, a picture or a generated file (hopsim.output: atomic,
    never onto an input of the run), or exit 2 saying why it cannot be."""
    try:
        output.write(file, pieces, _inputs())
    except output.OutputError as error:
        fail(str(error))

"""A progress bar for long runs, on a terminal only: CI logs and pipes stay clean."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

T = TypeVar("T")
MANY = 8  # below this many files a run is over before a bar would help


def track(items: Sequence[T], description: str, console: Console | None = None,
          many: int = MANY, quiet: bool = False) -> Iterator[T]:
    """Yield `items`, showing a transient bar on stderr when they are many and
    stderr is a terminal (never when quiet)."""
    console = console or Console(stderr=True)
    if quiet or len(items) < many or not console.is_terminal:
        yield from items
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        yield from progress.track(items, description=description)

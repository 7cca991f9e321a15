"""Ctrl-C and SIGTERM: one exception and one exit code for every command.

A signal becomes `Stopped`, raised wherever the program is, so `finally`
blocks run: a worker pool ends its workers, the emulator deletes its
namespaces, an output file being written is left as it was (the CLI writes a
temporary file and renames it). The command then ends with one line on
stderr, no traceback, and exit code 128 + the signal, as a shell reports it:
130 for SIGINT, 143 for SIGTERM.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
    """SIGINT or SIGTERM: the run stops, cleaning up on the way out."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def raise_stopped(signum: int, _frame: object) -> None:
    raise Stopped(signum)


@contextmanager
def stopping() -> Iterator[None]:
    """SIGINT and SIGTERM raise Stopped while inside; the handlers that were
    there before are put back after. Outside the main thread, nothing; a
    signal the process was started ignoring (SIGINT of a background job, or
    under nohup) stays ignored, as Python itself leaves it."""
    try:
        previous = {s: signal.signal(s, raise_stopped) for s in SIGNALS
                    if signal.getsignal(s) != signal.SIG_IGN}
    except ValueError:  # not the main thread: signals are not ours to handle
        yield
        return
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def leave(stop: Stopped, message: str, *, hard: bool = False) -> None:
    """End the process for a signal: one line, exit code 128 + signal.

    hard: skip the interpreter's exit hooks. After a pool's workers were
    killed, concurrent.futures' own hook can wait for ever on them."""
    print(f"hopsim: {message}", file=sys.stderr)
    if hard:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(stop.exit_code)
    sys.exit(stop.exit_code)


def command_line() -> None:
    """The `hopsim` command: signals are Stopped from its first instruction,
    before the imports, to its last; once the command has ended, a late
    signal is held, not turned into a traceback during the interpreter's exit."""
    for s in SIGNALS:
        if signal.getsignal(s) != signal.SIG_IGN:
            signal.signal(s, raise_stopped)
    try:
        from hopsim.cli import main

        main()
    except Stopped as stop:
        leave(stop, f"stopped by {stop}")
    finally:
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)

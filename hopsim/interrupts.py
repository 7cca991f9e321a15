"""Ctrl-C and SIGTERM: one exception and one exit code for every command.

A signal becomes `Stopped`, raised wherever the program is, so `finally`
blocks run: a worker pool ends its workers (hopsim.workers), the emulator
deletes its namespaces (hopsim.emulate.run), an output file being written is
left as it was (hopsim.output writes a temporary file and renames it). The
command then ends with one line on stderr, no traceback, and exit code 128 +
the signal, as a shell reports it: 130 for SIGINT, 143 for SIGTERM.

The `hopsim` command (hopsim.cli.__main__) installs the handler before
anything heavy is imported, so this module imports nothing of hopsim's, and
knows nothing of the CLI.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)

_received: list[int] = []  # the signals turned into Stopped in the current stopping()


class Stopped(KeyboardInterrupt):
    """SIGINT or SIGTERM: the run stops, cleaning up on the way out."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        # Set where worker processes were killed on the way out: the process
        # must then skip the interpreter's exit hooks (see leave).
        self.workers_killed = False

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def raise_stopped(signum: int, _frame: object) -> None:
    """The one handler of SIGINT and SIGTERM."""
    _received.append(signum)
    raise Stopped(signum)


@contextmanager
def stopping(*, even_ignored: bool = False, lost_in_finalizers: bool = False
             ) -> Iterator[None]:
    """SIGINT and SIGTERM raise Stopped while inside; the handlers that were
    there before are put back after. Outside the main thread, nothing.

    A signal the process was started ignoring (SIGINT of a background job, or
    under nohup) stays ignored, as Python itself leaves it, unless
    even_ignored (the kernel commands take it, as they always have).
    lost_in_finalizers: a Stopped raised while Python runs a finalizer (which
    Python prints and drops) is not printed; raise_if_stopped raises it again.
    """
    _received.clear()
    try:
        previous = {s: signal.signal(s, raise_stopped) for s in SIGNALS
                    if even_ignored or signal.getsignal(s) != signal.SIG_IGN}
    except ValueError:  # not the main thread: signals are not ours to handle
        yield
        return
    hook = sys.unraisablehook

    def unraisable(found: Any) -> None:
        if not isinstance(found.exc_value, Stopped):
            hook(found)

    if lost_in_finalizers:
        sys.unraisablehook = unraisable
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if lost_in_finalizers:
            sys.unraisablehook = hook
        _received.clear()  # a signal this context took must not stop a later run


def raise_if_stopped() -> None:
    """Raise Stopped again for a signal already received. The handler's own
    can be lost: run inside a finalizer (subprocess.Popen.__del__ while
    namespaces are built), it is an exception Python prints and drops."""
    if _received:
        raise Stopped(_received[0])


@contextmanager
def held() -> Iterator[None]:
    """Let a teardown finish before a second Ctrl-C is acted on."""
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)


def leave(stop: Stopped, message: str) -> None:
    """End the process for a signal: one line, exit code 128 + signal.

    After a pool's workers were killed (stop.workers_killed) the interpreter's
    exit hooks are skipped: concurrent.futures' own can wait for ever on them."""
    print(f"hopsim: {message}", file=sys.stderr)
    if stop.workers_killed:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(stop.exit_code)
    sys.exit(stop.exit_code)

"""The `hopsim` command (pyproject's [project.scripts]) and `python -m
hopsim.cli`: signals are Stopped (hopsim.interrupts) from the first
instruction, before the commands are imported, to the last."""

from __future__ import annotations

import gc
import signal

from hopsim import interrupts


def command_line() -> None:
    """Run the `hopsim` group; once the command has ended, a late signal is
    held, not turned into a traceback during the interpreter's exit."""
    for s in interrupts.SIGNALS:
        if signal.getsignal(s) != signal.SIG_IGN:
            signal.signal(s, interrupts.raise_stopped)
    try:
        from hopsim.cli import main

        main()
    except interrupts.Stopped as stop:
        interrupts.leave(stop, f"stopped by {stop}")
    finally:
        signal.pthread_sigmask(signal.SIG_BLOCK, interrupts.SIGNALS)
        # The command has ended, its output written and its files closed (each
        # in a with block). What it made is garbage in reference cycles (the
        # routing trees and their router): the interpreter's exit would walk
        # and free it, 0.16 s of a 100,000-node fleet's 2 s sweep (issue 23).
        # Frozen, the exit leaves it to the OS; atexit handlers still run and
        # the standard streams are still flushed.
        gc.freeze()


if __name__ == "__main__":
    command_line()

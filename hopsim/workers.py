"""Worker processes for a run over many files (check and sweep --jobs N).

The pool ends with the run: on an error, Ctrl-C or SIGTERM (interrupts.Stopped)
its workers are stopped at once, not left to finish their files or to wait for
more; a worker also ends when the main process dies, even of a SIGKILL (a CI
timeout). Signals themselves are hopsim.interrupts' business: a worker leaves
them to the main process.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from hopsim import interrupts

if TYPE_CHECKING:  # imported where a pool is made: multiprocessing costs a run without one 20 ms
    from concurrent.futures import Future, ProcessPoolExecutor

Item = TypeVar("Item")
Shared = TypeVar("Shared")
Result = TypeVar("Result")

WINDOWS_MAX_WORKERS = 61  # ProcessPoolExecutor refuses more there
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def cpus() -> int:
    """The CPUs this process may run on (a container's or CI job's share)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def each(work: Callable[[Item, Shared], Result], items: Sequence[Item], shared: Shared,
         jobs: int, *, weight: Callable[[Item], int] | None = None,
         track: Callable[[Completed], Iterable[tuple[int, Result]]] = iter) -> list[Result]:
    """work(item, shared) for each item, in the items' order: in this process,
    or in a pool of up to `jobs` worker processes when there are items for more
    than one (work and shared must then pickle). The heaviest items by
    `weight` go to the pool first: a heavy one met last keeps every other
    worker waiting for it. `track` sees each item's (index, result) as it
    completes (a progress bar)."""
    workers = min(jobs, len(items), WINDOWS_MAX_WORKERS if sys.platform == "win32" else jobs)
    with pool(workers) as running:
        done = dict(track(Completed(work, items, shared, running, weight)))
    return [done[index] for index in range(len(items))]


class Completed(Generic[Item, Shared, Result]):
    """(index, result) of each item as it completes. Without a pool the work
    is done here, in order."""

    def __init__(self, work: Callable[[Item, Shared], Result], items: Sequence[Item],
                 shared: Shared, running: ProcessPoolExecutor | None,
                 weight: Callable[[Item], int] | None = None):
        self.work, self.items, self.shared = work, items, shared
        self.futures: dict[Future[Result], int] = {}
        if running:  # all submitted now: the pool forks before a progress bar starts its thread
            order = sorted(range(len(items)),
                           key=lambda i: (-weight(items[i]) if weight else 0, i))
            self.futures = {running.submit(work, items[i], shared): i for i in order}

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[tuple[int, Result]]:
        if not self.futures:
            for index, item in enumerate(self.items):
                yield index, self.work(item, self.shared)
            return
        from concurrent.futures import as_completed

        for future in as_completed(self.futures):
            yield self.futures[future], future.result()


@contextmanager
def pool(workers: int) -> Iterator[ProcessPoolExecutor | None]:
    """A pool of `workers` processes (None for one: no pool), whose workers
    end with the run: on an error, Ctrl-C or SIGTERM (interrupts.Stopped) they
    are stopped at once."""
    if workers <= 1:
        yield None
        return
    from concurrent import futures

    running = futures.ProcessPoolExecutor(workers, initializer=_worker_signals)
    try:
        yield running
    except BaseException as error:
        _stop(running)
        if isinstance(error, interrupts.Stopped):
            error.workers_killed = True
        raise
    else:
        running.shutdown()


def _stop(running: ProcessPoolExecutor) -> None:
    """Drop the items not started, and end the workers busy with others."""
    terminate = getattr(running, "terminate_workers", None)  # Python 3.14
    if terminate:
        terminate()
        return
    # Before 3.14 the pool has no way to end a busy worker: shutdown() waits
    # for it or leaves it running. Its private _processes, read before
    # shutdown (which drops it), is the only list of them; nothing outside
    # this module touches it.
    processes = list((getattr(running, "_processes", None) or {}).values())
    running.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:  # reaped: no zombie left for the pool's exit hook to wait on
        process.join(1)
        if process.is_alive():
            process.kill()
            process.join(1)


def _worker_signals() -> None:
    """A worker leaves Ctrl-C to the main process, which stops it (one
    'Aborted!', not a traceback per worker), and ends on SIGTERM, which it
    also gets when the main process dies, even of a SIGKILL (a CI timeout)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the main process's, inherited by fork
    # The parent: the main process when forked, else a forkserver that ends with it.
    parent = os.getppid()
    if term_when_parent_dies() and os.getppid() != parent:  # it died before prctl
        signal.raise_signal(signal.SIGTERM)


def _libc() -> Any:
    """The C library, where Linux's prctl(2) is; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


# Opened on import, in hopsim's own process: term_when_parent_dies also runs in a
# child between fork and exec (a product's daemon), where opening a library
# could wait for ever on a lock another thread held at the fork.
_LIBC = _libc()


def term_when_parent_dies() -> bool:
    """Ask Linux for SIGTERM when the process that forked this one ends, even
    of a SIGKILL (prctl(2) PR_SET_PDEATHSIG); False where there is no such call.
    Pool workers (_worker_signals) and product daemons (emulate.products) call it."""
    try:
        return _LIBC is not None and _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM) == 0
    except AttributeError:  # a C library without prctl
        return False

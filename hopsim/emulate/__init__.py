"""hopsim on a real Linux kernel: the same topology, built in network
namespaces, with a real IMDS (hopsim.imds behind a socket), real relays and
real clients; the result is an analysis.Report, as the simulator's is.

    from hopsim import load
    from hopsim.emulate import emulate, verify
    report, timing = emulate(load("topologies/docker-bridge.yaml"), [1, 2])
    check = verify(load("topologies/docker-bridge.yaml"), [1, 2], family=4)
    assert not check.disagreements

Needs root, iproute2 and nftables (`missing()` says what is not there).
"""

from hopsim.emulate import products, stacks
from hopsim.emulate.build import MAX_NAMESPACES, PlanError, plan
from hopsim.emulate.netns import KernelError, delete_namespaces, leftovers, missing, run_prefix
from hopsim.emulate.run import (
    DEFAULT_TIMEOUT,
    Stopped,
    Timing,
    emulate,
    raise_if_stopped,
    stopping_on_signals,
    with_family,
)
from hopsim.emulate.verify import Case, Verification, families, verify
from hopsim.topology import Topology

__all__ = [
    "DEFAULT_TIMEOUT", "MAX_NAMESPACES", "Case", "KernelError", "PlanError",
    "Stopped", "Timing", "Verification", "cleanup", "commands", "emulate", "families",
    "leftovers", "missing", "plan", "raise_if_stopped", "stopping_on_signals", "verify",
    "with_family",
]


def commands(topology: Topology, prefix: str | None = None) -> list[str]:
    """The shell commands `emulate` would run to build `topology` (a dry run),
    and to start the real products among its relays."""
    built = plan(topology, prefix or f"{run_prefix()}0-")
    return (list(built.commands()) + stacks.commands(stacks.stacks(built))
            + products.commands(products.relays(built)))


def cleanup() -> tuple[list[str], list[str]]:
    """Delete the namespaces that killed hopsim runs left behind.

    Returns (deleted, kept): namespaces of runs still alive are kept.
    """
    dead, live = leftovers()
    delete_namespaces(dead)
    return dead, live

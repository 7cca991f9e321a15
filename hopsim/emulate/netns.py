"""Network namespaces: create, configure, enter and delete them. The only
module of hopsim that changes the system.

Safety rules, enforced here rather than trusted to callers:

- every namespace is named under a per-run prefix `hs<pid>-`;
- `ip` runs with `-n NAMESPACE` for everything but `netns add/delete`, and a
  veth is created inside a namespace with its peer placed straight into
  another one, so no link ever appears in the root namespace;
- sysctls are written only after `setns()` into one of our namespaces, and
  only once the thread's current namespace is checked to be that one.

How code runs "inside" a namespace: a socket belongs to the namespace of the
thread that created it, for its whole life (the kernel routes it by
`sock_net()`, not by the process). So hopsim creates each socket after a
`setns()` of its own thread and returns at once; one process then serves
every namespace from one asyncio loop. Compared with `ip netns exec python
-m ...` per node (or fork+setns), there is no interpreter start-up per
namespace (~0.2 s each, 30+ per topology), no child processes to reap on
SIGINT or SIGTERM, and nothing left running in a namespace if hopsim is
killed: its sockets die with it, and `--cleanup` removes the names.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from hopsim.emulate.build import Plan

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
PREFIX_PATTERN = re.compile(r"^hs(\d+)-")

_libc = ctypes.CDLL(None, use_errno=True)


class KernelError(Exception):
    """A command that builds or removes namespaces failed."""


def run_prefix(pid: int | None = None) -> str:
    return f"hs{pid if pid is not None else os.getpid()}-"


def tool(name: str) -> str:
    """The path of an iproute2/nftables tool: root's sbin directories count even
    when they are not on PATH."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin") or name


def missing() -> str | None:
    """Why hopsim cannot emulate on this machine, as one line with the fix; or None."""
    if os.geteuid() != 0:
        return ("hopsim emulate needs root to build network namespaces: run it as root "
                "(e.g. sudo .venv/bin/hopsim ...)")
    for name, package in (("ip", "iproute2"), ("nft", "nftables")):
        if tool(name) == name:
            return f"'{name}' not found: install it with `apt-get install {package}`"
    probe = f"{run_prefix()}probe"
    try:
        add_namespaces([probe])
    except KernelError as error:
        return (f"cannot create network namespaces here ({error}): run on a host or VM, "
                "or in a container started with --privileged")
    finally:
        delete_namespaces([probe])
    return None


def _run(args: list[str], stdin: str | None = None) -> None:
    done = subprocess.run(args, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        command = " ".join(args)
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise KernelError(f"{command} failed: {detail[0] if detail else done.returncode}"
                          + (f"\n{stdin}" if stdin and len(stdin) < 2000 else ""))


def _output(args: list[str]) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=False).stdout


def ip_batch(namespace: str, lines: Iterable[str]) -> None:
    """Run `ip` commands inside `namespace` (never in the root namespace)."""
    text = "\n".join(lines)
    if not namespace or not text:
        return
    _run([tool("ip"), "-n", namespace, "-batch", "-"], text + "\n")


def _ours(name: str) -> bool:
    return PREFIX_PATTERN.match(name) is not None


def add_namespaces(names: Iterable[str]) -> None:
    names = list(names)
    assert all(_ours(n) for n in names), names
    _run([tool("ip"), "-batch", "-"], "".join(f"netns add {n}\n" for n in names))


def delete_namespaces(names: Iterable[str]) -> None:
    """Delete namespaces of ours; each is gone with its links, routes and rules,
    and with any process still running in it (a product's daemon)."""
    names = [n for n in names if _ours(n)]
    if names:
        kill_processes_in(names)
        # -force: carry on past one that is already gone.
        subprocess.run([tool("ip"), "-force", "-batch", "-"], capture_output=True, text=True,
                       input="".join(f"netns delete {n}\n" for n in names), check=False)


def kill_processes_in(names: Iterable[str]) -> list[int]:
    """SIGKILL every process whose network namespace is one of ours in `names`
    (a namespace outlives its name while a process holds it). Returns their pids."""
    inodes = set()
    for name in names:
        if _ours(name):
            try:
                inodes.add(os.stat(NETNS_DIR / name).st_ino)
            except OSError:
                continue
    killed = []
    # Never ours: a namespace name that points at hopsim's own namespace (the
    # root one) would otherwise take every process there with it.
    inodes.discard(os.stat("/proc/self/ns/net").st_ino)
    if not inodes:
        return killed
    own = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        try:
            inode = os.stat(entry / "ns" / "net").st_ino
        except OSError:
            continue
        if inode in inodes:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
            except OSError:
                pass
    return killed


def existing(prefix: str = "hs") -> list[str]:
    """Namespaces whose names start with `prefix` and are ours."""
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir()
                  if p.name.startswith(prefix) and _ours(p.name))


def _alive(pid: int) -> bool:
    # Any live process with the prefix's pid may be a hopsim run (a script or
    # a test using the API): its namespaces are kept. A reused pid keeps a
    # leftover until that process ends; that errs on the safe side.
    return Path(f"/proc/{pid}").exists()


def leftovers() -> tuple[list[str], list[str]]:
    """(namespaces a dead hopsim run left, namespaces of runs still going)."""
    dead, live = [], []
    for name in existing():
        match = PREFIX_PATTERN.match(name)
        pid = int(match.group(1)) if match else -1
        (live if pid != os.getpid() and _alive(pid) else dead).append(name)
    return dead, live


# --- entering a namespace ---------------------------------------------------------


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def _current() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


@contextmanager
def inside(namespace: str) -> Iterator[None]:
    """Run the body with this thread in `namespace`, then come back.

    Only for quick, synchronous work (creating a socket, writing a sysctl):
    no await may happen inside.
    """
    path = NETNS_DIR / namespace
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(path, os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            if _current() != os.stat(path).st_ino:  # never act on the wrong namespace
                raise KernelError(f"setns into {namespace} did not take")
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)


def socket_in(namespace: str, family: int, kind: int = socket.SOCK_STREAM,
              proto: int = 0) -> socket.socket:
    """A socket that lives in `namespace` for good."""
    with inside(namespace):
        return socket.socket(family, kind, proto)


def write_sysctls(namespace: str, values: Iterable[tuple[str, str]]) -> None:
    with inside(namespace):
        for key, value in values:
            Path("/proc/sys", key).write_text(value)


# --- build and tear down ------------------------------------------------------------


def build(plan: Plan) -> None:
    """Create everything `plan` describes. On failure the caller deletes
    `existing(plan.prefix)`: whatever was made is named under the prefix."""
    namespaces = list(plan.namespaces.values())
    add_namespaces(ns.name for ns in namespaces)
    for ns in namespaces:
        write_sysctls(ns.name, ns.sysctls())
    for ns in namespaces:  # veths first: a namespace's config needs its peers' ends
        ip_batch(ns.name, ns.link_lines(plan.veths))
    for ns in namespaces:
        ip_batch(ns.name, ns.config_lines())
        ruleset = ns.nft_ruleset()
        if ruleset:
            _run([tool("ip"), "netns", "exec", ns.name, tool("nft"), "-f", "-"], ruleset)


def wait_ready(plan: Plan, timeout: float = 5.0) -> None:
    """Wait until every veth has its carrier and every bridge port forwards.

    The kernel applies carrier changes through its link watcher, up to a
    second late; until then a bridge port is "disabled" and drops frames, and
    the first ARP of a client would be lost.
    """
    deadline = time.monotonic() + timeout
    pending = list(plan.namespaces.values())
    while pending:
        ns = pending[0]
        links = _output([tool("ip"), "-n", ns.name, "-o", "link", "show"])
        ready = "NO-CARRIER" not in links
        if ready and ns.is_bridge:
            ports = [line for line in _output([tool("bridge"), "-n", ns.name, "link", "show"])
                     .splitlines() if " master " in line]
            ready = len(ports) == len(ns.interfaces) and all(
                "state forwarding" in line for line in ports)
        if ready:
            pending.pop(0)
        elif time.monotonic() > deadline:
            raise KernelError(f"links of {ns.name} not up after {timeout:g} s")
        else:
            time.sleep(0.02)


def reap(processes: Iterable[subprocess.Popen], grace: float) -> None:
    """Wait `grace` seconds in all for processes already sent SIGTERM, then
    kill the process group of each that is left (a daemon's workers too)."""
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(0.05, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

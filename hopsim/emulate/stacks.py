"""User-space network stacks: a container with `network: slirp4netns` or
`pasta` gets a network namespace of its own, made by an unprivileged user
with `unshare -Urn` inside the namespace of the node it runs_on, and that
user's slirp4netns or pasta gives it its only way out: the stack ends each of
the container's TCP connections and opens its own socket in the runs_on
node's namespace, as rootless Podman and Docker do.

Each stack runs as a numeric uid of its own (STACK_UIDS + its index), so an
`owner:` filter matches its sockets with nftables `meta skuid`; no user is
added to /etc/passwd. The container's namespace is attached under the run's
prefix (`ip netns attach`), so hopsim's clients enter it as any other and
every cleanup path deletes it.

Two things the stacks need that this machine may lack are given to them
without touching the system: /dev/net/tun readable by the uid (Debian's udev
makes it 0666; where it is 0600 the stack is started in a private mount
namespace with a 0666 node bound over it), and, for pasta, a default route
(pasta looks for the host's interface by it: `-i` and `-g` name the
interface and gateway instead).

gvisor-tap-vsock, bypass4netns and qemu-user have no Debian binary here:
the simulator models them, `emulate` says it cannot run them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from hopsim import imds
from hopsim.emulate import netns
from hopsim.emulate.build import Plan, PlanError, owner_uid
from hopsim.products import STACKS
from hopsim.workers import term_when_parent_dies

READY_TIMEOUT = 10.0  # seconds a stack gets to configure the container's namespace
STOP_GRACE = 0.3
TUN_DEVICE = "/dev/net/tun"
SLIRP_OPTIONS = ("--configure", "--mtu=65520", "--disable-host-loopback", "--enable-sandbox",
                 "--enable-seccomp")  # as rootless Podman runs slirp4netns
RUNNABLE = ("slirp4netns", "pasta")


@dataclass
class UserStack:
    """One container on a user-space stack, as run here."""

    node: str  # the container
    stack: str  # slirp4netns or pasta
    host_namespace: str  # the runs_on node's namespace: where the stack opens its sockets
    namespace: str  # the container's own, attached under the run's prefix
    uid: int
    directory: Path
    device: str = ""  # pasta: the host's interface it derives addresses from
    gateway: str = ""  # pasta: the default gateway it gives the container
    gateway6: str = ""  # and its IPv6 one
    family: int = 4  # the container's requests' family
    block_imds: bool = False  # blackhole routes for the metadata addresses in its namespace
    processes: list[subprocess.Popen] = field(default_factory=list)
    holder: int = 0  # pid of the process that holds the container's namespaces

    @property
    def drop(self) -> list[str]:
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups"]

    def holder_argv(self) -> list[str]:
        return [*self.drop, "unshare", "-Urn", "sleep", "infinity"]

    def stack_argv(self, pid: int | str) -> list[str]:
        """The stack, given the holder's pid, in a private mount namespace
        with a tun device the uid may open."""
        d = self.directory
        tun = (f"mount -t tmpfs -o mode=755 tmpfs {d}/dev && mknod -m 666 {d}/dev/tun c 10 200 "
               f"&& mount --bind {d}/dev/tun {TUN_DEVICE}")
        if self.stack == "slirp4netns":
            program = ["slirp4netns", *SLIRP_OPTIONS, "--enable-ipv6", "--ready-fd=3", str(pid),
                       "tap0"]
            tail = f" 3>{d}/ready"
        else:
            program = ["pasta", "--config-net", "--foreground", "-i", self.device,
                       "-g", self.gateway, *(["-g", self.gateway6] if self.gateway6 else []),
                       str(pid)]
            tail = ""
        return ["unshare", "-m", "--propagation", "private", "sh", "-c",
                f"{tun} && exec {shlex.join([*self.drop, *program])}{tail}"]

    def commands(self) -> list[str]:
        """The dry run: what start() runs."""
        pid = "$HOLDER"
        return [f"mkdir -p {self.directory}/dev",
                f"ip netns exec {self.host_namespace} {shlex.join(self.holder_argv())} &",
                "HOLDER=$!",
                f"ip netns attach {self.namespace} {pid}",
                f"ip netns exec {self.host_namespace} "
                + shlex.join(self.stack_argv("@PID@")).replace("@PID@", f"'\"{pid}\"'")
                + " &"] + [
                    f"ip -n {self.namespace} {line}" for line in
                    (self.blackholes() if self.block_imds else [])]

    def start(self) -> None:
        d = self.directory
        d.mkdir(parents=True, mode=0o755)
        (d / "dev").mkdir(mode=0o755)
        ip = netns.tool("ip")
        holder = self._spawn([ip, "netns", "exec", self.host_namespace, *self._which(
            self.holder_argv())], "holder.log")
        self.holder = holder.pid
        # The holder starts in our namespace, enters the host's, then unshares
        # its own: only a user namespace of its own says it is there. Never
        # attach (and later delete with its processes) any namespace but that one.
        own = {_inode("/proc/self/ns/net"), os.stat(netns.NETNS_DIR / self.host_namespace).st_ino}
        user = _inode("/proc/self/ns/user")
        self._wait(lambda: _inode(f"/proc/{holder.pid}/ns/user") not in (None, user),
                   [holder], "unshare -Urn made no namespace")
        if _inode(f"/proc/{holder.pid}/ns/net") in own:
            raise PlanError(f"{self.node}: unshare -Urn gave no network namespace of its own")
        subprocess.run([ip, "netns", "attach", self.namespace, str(holder.pid)], check=True,
                       capture_output=True)
        if _inode(str(netns.NETNS_DIR / self.namespace)) in own:
            raise PlanError(f"{self.node}: attached the wrong namespace")
        stack = self._spawn([ip, "netns", "exec", self.host_namespace,
                             *self.stack_argv(holder.pid)], "stack.log")
        if self.stack == "slirp4netns":
            self._wait(lambda: (d / "ready").exists() and (d / "ready").stat().st_size > 0,
                       [holder, stack], "slirp4netns did not configure the namespace")
            if self.family == 6:  # its IPv6 comes by router advertisement, then DAD
                self._wait(lambda: _ready(self.namespace, 6), [holder, stack],
                           "slirp4netns gave the container no IPv6 default route")
        else:  # pasta in the foreground (our child, reaped by us): ready once it routes
            self._wait(lambda: _ready(self.namespace, self.family), [holder, stack],
                       "pasta did not configure the namespace")
        if self.block_imds:
            netns.ip_batch(self.namespace, self.blackholes())

    def blackholes(self) -> list[str]:
        """block_imds in the container's own namespace: its packets never reach the stack."""
        return [f"route add blackhole {imds.IPV4_ENDPOINT}/32",
                f"route add blackhole {imds.IPV6_ENDPOINT}/128"]

    def _which(self, argv: list[str]) -> list[str]:
        return [shutil.which(argv[0]) or argv[0], *argv[1:]]

    def _spawn(self, argv: list[str], log: str) -> subprocess.Popen:
        with open(self.directory / log, "wb") as out:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True,
                                       preexec_fn=term_when_parent_dies)
        self.processes.append(process)
        return process

    def _wait(self, done, watched: list[subprocess.Popen], what: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while not done():
            exited = [p for p in watched if p.poll() is not None]
            if exited or time.monotonic() > deadline:
                raise PlanError(f"{self.node} ({self.stack} as uid {self.uid}): {what}; "
                                f"its logs are in {self.directory}\n" + self._logs())
            time.sleep(0.02)

    def _logs(self) -> str:
        tail = []
        for log in sorted(self.directory.glob("*.log")):
            lines = [x for x in log.read_text(errors="replace").splitlines() if x.strip()]
            tail += [f"  {log.name}: {line}" for line in lines[-3:]]
        return "\n".join(tail)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        netns.reap(self.processes, STOP_GRACE)


IFA_F_TENTATIVE = 0x40


def _ready(namespace: str, family: int) -> bool:
    """The container routes `family`: a default route (and, for IPv6, a global
    address past duplicate detection)."""
    with netns.inside(namespace):
        if family == 4:
            routes = Path("/proc/thread-self/net/route").read_text().splitlines()[1:]
            return any(r.split()[1] == "00000000" for r in routes)
        routes = Path("/proc/thread-self/net/ipv6_route").read_text().splitlines()
        addresses = Path("/proc/thread-self/net/if_inet6").read_text().splitlines()
    default = any(r.split()[0] == "0" * 32 and r.split()[1] == "00" for r in routes)
    usable = any(not a.split()[0].startswith(("fe80", "0000")) and
                 not int(a.split()[4], 16) & IFA_F_TENTATIVE for a in addresses)
    return default and usable


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def stacks(plan: Plan) -> list[UserStack]:
    """The user-space stacks of `plan`'s principals; PlanError for one that
    cannot run here."""
    topology = plan.topology
    found = []
    for index, name in enumerate(sorted(n for n, node in topology.nodes.items()
                                        if node.network)):
        node = topology.nodes[name]
        if node.network not in RUNNABLE:
            spec = STACKS[node.network]  # type: ignore[index]
            raise PlanError(f"{name} uses {spec.title}, which has no Debian package here: "
                            "the simulator models it, the emulator cannot run it")
        host = plan.namespace_of(name)
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:24]
        stack = UserStack(name, node.network, host.name, f"{plan.prefix}u{index}-{safe}",
                          owner_uid(topology, name), _base(plan) / safe, family=node.family,
                          block_imds=node.block_imds)
        if node.network == "pasta":
            stack.device, stack.gateway = _way_out(plan, host.name, 4)
            stack.gateway6 = _way_out(plan, host.name, 6)[1]
        found.append(stack)
    return found


def _way_out(plan: Plan, host_namespace: str, family: int) -> tuple[str, str]:
    """pasta's -i and -g: the interface the host routes IMDS out of, and a
    gateway on it (the route's next hop, or another address of its subnet)."""
    ns = next(n for n in plan.namespaces.values() if n.name == host_namespace)
    endpoint = (f"{imds.IPV4_ENDPOINT}/32" if family == 4 else f"{imds.IPV6_ENDPOINT}/128")
    route = next((r for r in ns.routes if r.destination == endpoint and r.device), None)
    if route is None:
        raise PlanError(f"{ns.node} has no route to IMDS: pasta needs an interface to start")
    if route.via:
        return route.device, route.via
    own = ipaddress.ip_interface(ns.addresses[route.device][0 if family == 4 else 1])
    first = own.network.network_address + 1
    return route.device, str(first if first != own.ip else first + 1)


def missing(stacks: list[UserStack]) -> str | None:
    """Why these stacks cannot run here, with the fix; or None."""
    for stack in stacks:
        package = STACKS[stack.stack].packages[0]
        for program, needed in ((stack.stack, package), ("unshare", "util-linux"),
                                ("setpriv", "util-linux"), ("mknod", "coreutils")):
            if not shutil.which(program):
                return (f"{stack.node} uses {stack.stack}, which needs '{program}': "
                        f"apt-get install {needed}")
    if stacks and not Path(TUN_DEVICE).exists():
        return (f"{stacks[0].node} uses {stacks[0].stack}, which needs {TUN_DEVICE} (the tun "
                "module; a container needs --device /dev/net/tun)")
    if stacks and not _user_namespaces():
        return (f"{stacks[0].node} uses {stacks[0].stack}, which needs unprivileged user "
                "namespaces (user.max_user_namespaces is 0)")
    return None


def _user_namespaces() -> bool:
    try:
        return int(Path("/proc/sys/user/max_user_namespaces").read_text()) > 0
    except (OSError, ValueError):
        return True


def commands(stacks: list[UserStack]) -> list[str]:
    return [line for stack in stacks for line in stack.commands()]


def _base(plan: Plan) -> Path:
    return Path(tempfile.gettempdir()) / f"{plan.prefix}stacks"


def remove_directories(plan: Plan) -> None:
    shutil.rmtree(_base(plan), ignore_errors=True)

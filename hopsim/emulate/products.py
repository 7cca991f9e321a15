"""Real products as relays: a relay node with `product` runs that product's
own binary (Debian's package) in the relay's namespace, instead of hopsim's
relay.

Its configuration is generated from the node: the product's defaults (nothing
that changes how it relays is set), the one misconfiguration that makes it an
open relay to its upstream (marked `open relay`), and a line for each key the
node sets against the product's default (marked `from the node`). The
upstream of a reverse proxy is the next station of the routes through it
(IMDS, or the next relay), as `proxy_pass http://169.254.169.254` would be;
a forward proxy and the SSRF app go where each request says, so the request
a principal sends is addressed for every product on its route (`addressed`):
`PUT http://169.254.169.254/latest/api/token` to a forward proxy,
`/?site=http%3A%2F%2F169.254.169.254%2F...` to the SSRF app.

Every request through a product carries `?hopsim-flow=PORT` (its flow's
first port) on to IMDS, so the IMDS server can tell which flow a product's
upstream connection belongs to: a product picks its own source port, which
is how the taps name flows (flows.py).

The daemons run in the foreground, with their pid and log files in a
directory of the run (removed with it), and die with hopsim (SIGTERM when
it exits, and netns.delete_namespaces kills whatever still runs in a
namespace before deleting it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from hopsim import socks
from hopsim.emulate import netns
from hopsim.emulate.build import FAMILIES, OWN_UID_PRODUCTS, Plan, PlanError, owner_uid
from hopsim.emulate.configs import GENERATORS, SSH_USER, STREAM_MODULE, ProductRelay, host
from hopsim.emulate.flows import FIRST_PORT, Flow
from hopsim.http import HTTP_PORT, Request
from hopsim.products import PRODUCTS, Form
from hopsim.routing import Part
from hopsim.topology import Node
from hopsim.workers import term_when_parent_dies


class ProductError(PlanError):
    """A product cannot run here: its binary is missing, or it did not start."""

FLOW_MARK = "hopsim-flow"
STOP_GRACE = 0.3  # seconds a daemon gets to exit on SIGTERM
READY_TIMEOUT = 20.0  # seconds a daemon gets to listen (Apache loading the CRS: about 1 s)


# --- which relays, and where they send -----------------------------------------------


def relays(plan: Plan) -> list[ProductRelay]:
    """The product relays of `plan` that some principal's route goes through;
    PlanError for a design hopsim cannot run with real products."""
    topology = plan.topology
    found: dict[str, ProductRelay] = {}
    for name, node in sorted(topology.nodes.items()):
        if node.product is None or node.relay is None:
            continue
        ns = plan.namespace_of(name)
        setup = PRODUCTS[node.product].setup(node.mode, node.kind)
        found[name] = ProductRelay(
            name, setup, node.relay, ns.name,
            {f: plan.service_address(ns.node, f) for f in FAMILIES},
            directory=_base(plan) / re.sub(r"[^A-Za-z0-9_.-]", "_", name),
            devices=tuple(sorted(ns.interfaces.values())))
    if not found:
        return []
    owners = {rule.owner for node in topology.nodes.values() for rule in node.filters
              if rule.owner is not None}
    for name in sorted(owners & found.keys()):
        if found[name].setup.product in OWN_UID_PRODUCTS:  # sshd: its sessions' user
            found[name].uid = owner_uid(topology, name)
    used: set[str] = set()
    for principal, route in sorted(plan.routes.items()):
        legs = route.legs if route.stations else ()
        for i, leg in enumerate(legs[:-1]):
            relay = leg[-1].actor
            if relay in found:
                if relay not in used and found[relay].setup.product == "ssh":
                    # ssh relays share a stack (one sshd): each listens where its clients go.
                    found[relay].listen = {f: plan.destination(leg[-1].node, leg[0].actor, f)
                                           for f in FAMILIES}
                used.add(relay)
                for family in FAMILIES:
                    address = plan.destination(leg[-1].node, leg[0].actor, family)
                    if address != found[relay].listen[family]:
                        raise PlanError(
                            f"{topology.name}: {principal} reaches {relay} at {address}, other "
                            f"clients at {found[relay].listen[family]}; a product is run "
                            "listening on one address per family")
                _next_station(plan, found[relay], legs[i + 1], principal, found)
            elif any(legs[j][-1].actor in found for j in range(i)):
                raise PlanError(
                    f"{topology.name}: {principal}'s route reaches {relay} (hopsim's own relay) "
                    f"after the product {legs[i - 1][-1].actor}: hopsim's relay follows a flow "
                    "by its source port, which a product does not keep; put products last")
    sshd: dict[str, ProductRelay] = {}  # namespace -> the ssh relay that runs its sshd
    for relay in found.values():
        if relay.node not in used:
            continue
        others = [n for n in topology.nodes if n != relay.node and topology.nodes[n].relay
                  and plan.namespace_of(n).name == relay.namespace]
        if relay.setup.product == "ssh":
            # One sshd serves both modes (the client side differs): ssh relays share it.
            others = [n for n in others if not (n in found and found[n].setup.product == "ssh")]
            first = sshd.setdefault(relay.namespace, relay)
            if first is not relay:
                if relay.policy.refuses_imds != first.policy.refuses_imds:
                    raise PlanError(f"{topology.name}: {first.node} and {relay.node} share one "
                                    "sshd, whose configuration closes forwarding for both or "
                                    "neither: give them the same block_imds")
                relay.runs_daemon, relay.served_by = False, first
                first.partners.append(relay)
        if others:
            raise PlanError(f"{topology.name}: {relay.node} ({relay.setup.product}) shares its "
                            f"network stack with the relay {others[0]}: both would listen on "
                            "port 80; emulate one relay per stack")
        GENERATORS[relay.setup.product](relay)  # unsupported keys fail here, before building
    return [found[n] for n in sorted(used)]


def _next_station(plan: Plan, relay: ProductRelay, leg: tuple, principal: str,
                  found: dict[str, ProductRelay]) -> None:
    end = leg[-1]
    nxt = found.get(end.actor)
    if relay.setup.form is Form.ORIGIN:
        if nxt is not None and nxt.setup.form is not Form.ORIGIN:
            raise PlanError(
                f"{plan.topology.name}: {relay.node} is a reverse proxy ({relay.setup.label}); "
                f"it cannot address {end.actor} ({nxt.setup.label}), which needs "
                f"{nxt.setup.form.value}-form requests")
        for family in FAMILIES:
            if not relay.listen.get(family):
                continue
            address = plan.destination(None if end.part is Part.IMDS else end.node, relay.node,
                                       family)
            known = relay.upstream.setdefault(family, address)
            if known != address:
                raise PlanError(
                    f"{plan.topology.name}: {relay.node} ({relay.setup.label}) would need two "
                    f"upstreams ({known}, and {address} for {principal}); a reverse proxy's "
                    "configuration names one")


# --- requests addressed for the products on the way ----------------------------------


def rechooses_port(node: Node) -> bool:
    """It opens its leg with a source port of its own choosing: a real
    product, or a user-space stack (so IMDS names the flow by its mark)."""
    return node.product is not None or node.network is not None


def through_products(plan: Plan, flow: Flow) -> bool:
    return any(rechooses_port(plan.topology.nodes[leg[-1].actor])
               for leg in flow.route.legs[:-1] if leg[-1].part is not Part.IMDS)


def addressed(plan: Plan, flow: Flow, request: Request) -> Request:
    """`request` as the principal sends it on the first leg of `flow`: marked
    with the flow, and addressed for each product on the way."""
    if not flow.route.stations or not through_products(plan, flow):
        return request
    legs = flow.route.legs
    separator = "&" if "?" in request.path else "?"
    target = f"{request.path}{separator}{FLOW_MARK}={flow.ports[0]}"
    for j in range(len(legs) - 1, 0, -1):  # legs[j][0] ends leg j-1 and sends leg j
        node = plan.topology.nodes[legs[j][0].actor]
        if not node.product:
            continue
        form = PRODUCTS[node.product].setup(node.mode, node.kind).form
        if form in (Form.ORIGIN, Form.SOCKS):  # a SOCKS server is told where, then relays
            continue
        end = legs[j][-1]
        address = plan.destination(None if end.part is Part.IMDS else end.node,
                                   legs[j][0].actor, flow.family)
        url = f"http://{host(address)}{target}"
        target = url if form is Form.ABSOLUTE else "/?site=" + quote(url, safe="")
    return Request(request.method, target, request.headers, request.body)


def flow_mark(path: str) -> int | None:
    """The flow port a request's path is marked with (at IMDS), if any."""
    values = parse_qs(urlsplit(path).query).get(FLOW_MARK)
    try:
        return int(values[0]) if values else None
    except ValueError:
        return None


# --- dry run, start, stop ---------------------------------------------------------


def commands(relays: list[ProductRelay]) -> list[str]:
    """The shell commands that write each configuration and start each daemon."""
    out = []
    for relay in relays:
        out.append(f"mkdir -p {relay.directory}")
        for name, text in relay.files().items():
            out.append(f"cat > {relay.directory / name} <<'EOF'\n{text}EOF")
        out += [shlex.join(argv) for argv in relay.preparations()]
        env = "".join(f"{k}={v} " for k, v in relay.environment().items())
        out += [f"ip netns exec {relay.namespace} {env}{shlex.join(argv)} &"
                for argv in relay.commands()]
    return out


def missing(relays: list[ProductRelay]) -> str | None:
    """Why these products cannot run here, with the fix; or None."""
    for relay in relays:
        product = PRODUCTS[relay.setup.product]
        packages = " ".join(product.packages)
        programs = [product.binary, *(argv[0] for argv in relay.commands())]
        if relay.setup.product == "ssh":  # the client side, and the ProxyCommand that
            programs += ["ssh", "ssh-keygen"]  # names its flow by the source port (socat)
            if not _which("socat"):
                return (f"{relay.node} is {product.name}, whose client is run through socat, "
                        "which is not installed: apt-get install socat")
        for program in programs:
            if not _which(program):
                return (f"{relay.node} is {product.name}, whose binary '{program}' is not "
                        f"installed: apt-get install {packages}")
        if relay.setup.mode == "stream" and not Path(STREAM_MODULE).exists():
            return (f"{relay.node} is nginx stream, whose module {STREAM_MODULE} is not "
                    "installed: apt-get install libnginx-mod-stream")
    return None


def _which(program: str) -> str | None:
    return shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")


@dataclass
class Daemon:
    """A product's processes in one namespace."""

    relay: ProductRelay
    processes: list[subprocess.Popen] = field(default_factory=list)

    def start(self) -> None:
        relay = self.relay
        base = relay.directory.parent
        try:
            base.mkdir(mode=0o755)
        except FileExistsError:
            # The run's own (another relay made it), never one planted in /tmp.
            if base.is_symlink() or base.stat().st_uid != os.geteuid():
                raise ProductError(f"{base} exists and is not this run's: remove it") from None
        relay.directory.mkdir()
        # Products drop root for their workers (nginx: nobody, Squid: proxy):
        # they write their logs and temporary files here.
        relay.directory.chmod(0o777)
        for name, text in relay.files().items():
            (relay.directory / name).write_text(text)
        env = {**os.environ, **relay.environment()}
        if relay.uid is not None:  # its own uid listens on port 80 in its namespace only
            netns.write_sysctls(relay.namespace,
                                [("net/ipv4/ip_unprivileged_port_start", str(HTTP_PORT))])
        for argv in relay.preparations():
            done = subprocess.run([_which(argv[0]) or argv[0], *argv[1:]], capture_output=True,
                                  text=True, check=False)
            if done.returncode != 0:
                raise ProductError(f"{relay.node} ({relay.setup.label}): {' '.join(argv)} "
                                   f"failed: {done.stderr.strip()}")
        for i, argv in enumerate(relay.commands()):
            log = open(relay.directory / f"stderr{i}.log", "wb")  # noqa: SIM115
            with log:
                self.processes.append(subprocess.Popen(
                    [netns.tool("ip"), "netns", "exec", relay.namespace,
                     _which(argv[0]) or argv[0], *argv[1:]],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=env, start_new_session=True, preexec_fn=term_when_parent_dies))

    async def ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait until it accepts connections on every address, or say why not."""
        deadline = time.monotonic() + timeout
        for family, address in sorted(self.relay.listen.items()):
            while not _accepts(self.relay.namespace, family, address):
                exited = [p for p in self.processes if p.poll() is not None]
                if exited or time.monotonic() > deadline:
                    raise ProductError(self._failure(exited))
                await asyncio.sleep(0.05)

    def _failure(self, exited: list[subprocess.Popen]) -> str:
        relay = self.relay
        what = (f"exited with {exited[0].returncode}" if exited
                else f"not listening after {READY_TIMEOUT:g} s")
        logs = sorted(relay.directory.glob("*.log"))
        tail = []
        for log in logs:
            lines = [line for line in log.read_text(errors="replace").splitlines()
                     if line.strip()]
            tail += [f"  {log.name}: {line}" for line in lines[-3:]]
        return (f"{relay.node} ({relay.setup.label}) {what}; its configuration and logs are "
                f"in {relay.directory}\n" + "\n".join(tail))

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        # Nothing is left to finish: a product that takes longer (Squid waits
        # for its clients) is killed, with every process of its group.
        netns.reap(self.processes, STOP_GRACE)


def _accepts(namespace: str, family: int, address: str) -> bool:
    sock = netns.socket_in(namespace, socket.AF_INET6 if family == 6 else socket.AF_INET)
    try:
        sock.settimeout(0.2)
        sock.connect((address, HTTP_PORT))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def _base(plan: Plan) -> Path:
    """Where a run's product configurations and logs go."""
    return Path(tempfile.gettempdir()) / f"{plan.prefix}products"


def remove_directories(plan: Plan) -> None:
    shutil.rmtree(_base(plan), ignore_errors=True)


# --- the client side of L4 relays: SOCKS5, and ssh -L / -D ------------------------------


def next_destination(plan: Plan, flow: Flow, leg: int) -> str | None:
    """Where the relay at the end of leg `leg` connects next (the next leg's
    end, as that relay addresses it): what a SOCKS client asks for and what
    ssh -L names; None on the last leg."""
    legs = flow.route.legs
    if leg + 1 >= len(legs):
        return None
    relay, end = legs[leg][-1].actor, legs[leg + 1][-1]
    return plan.destination(None if end.part is Part.IMDS else end.node, relay, flow.family)


def asks_socks(plan: Plan, flow: Flow, leg: int) -> bool:
    """The relay at the end of leg `leg` is a SOCKS server: it is asked where."""
    node = plan.topology.nodes[flow.route.legs[leg][-1].actor]
    return bool(node.product) and leg + 1 < len(flow.route.legs) and (
        PRODUCTS[node.product].setup(node.mode, node.kind).form is Form.SOCKS)


async def socks_connect(sock: socket.socket, address: str, port: int, timeout: float) -> None:
    """SOCKS5 CONNECT on a connected socket (hopsim.socks); SocksRefused if refused."""
    loop = asyncio.get_running_loop()

    async def receive(size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = await loop.sock_recv(sock, size - len(data))
            if not chunk:
                break
            data += chunk
        return data

    async def talk() -> None:
        await loop.sock_sendall(sock, socks.GREETING)
        socks.check_method(await receive(socks.METHOD_REPLY_SIZE))
        await loop.sock_sendall(sock, socks.connect_request(address, port))
        head = await receive(5)
        socks.check_reply(head)
        await receive(socks.reply_size(head) - len(head))

    await asyncio.wait_for(talk(), timeout)


SSH_LOCAL_PORTS = 10000  # the client side's loopback ports: below the flows' (flows.py)


class SshClients:
    """The client side of ssh relays: one `ssh -N -L` (or `-D`) per flow, in
    the sender's namespace, whose TCP connection to sshd leaves from the
    flow's port (a socat ProxyCommand binds it), so the taps name that leg as
    they name any other; the request then goes through ssh's loopback port."""

    def __init__(self, relays: list[ProductRelay]):
        self.relays = {r.node: r for r in relays if r.setup.product == "ssh"}
        self.processes: list[subprocess.Popen] = []
        self._ports = iter(range(SSH_LOCAL_PORTS, FIRST_PORT))

    def serves(self, relay: str) -> bool:
        return relay in self.relays

    def command(self, plan: Plan, flow: Flow, leg: int, local: int, timeout: float) -> list[str]:
        """The ssh client for leg `leg` of `flow`, listening on 127.0.0.1:`local`."""
        stations = flow.route.legs[leg]
        relay = self.relays[stations[-1].actor]
        address = plan.destination(stations[-1].node, stations[0].actor, flow.family)
        family = flow.family
        proxy = (f"socat - TCP{family}:{host(address)}:{HTTP_PORT},sourceport={flow.ports[leg]},"
                 f"reuseaddr,connect-timeout={timeout:g}")
        if relay.setup.mode == "socks":
            forward = ["-D", f"127.0.0.1:{local}"]
        else:
            target = next_destination(plan, flow, leg)
            forward = ["-L", f"127.0.0.1:{local}:{host(target or '')}:{HTTP_PORT}"]
        key = relay.key_directory / "user_key"
        return ["ssh", "-F", "/dev/null", "-N", "-p", str(HTTP_PORT), "-i", str(key),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes",
                "-o", f"ProxyCommand={proxy}", *forward, f"{SSH_USER}@{address}"]

    async def open(self, plan: Plan, flow: Flow, leg: int, namespace: str,
                   timeout: float) -> socket.socket:
        """A socket whose bytes ssh carries to the sshd at the end of leg `leg`."""
        local, source = next(self._ports), next(self._ports)
        argv = self.command(plan, flow, leg, local, timeout)
        relay = self.relays[flow.route.legs[leg][-1].actor]
        log = relay.key_directory / f"ssh-{flow.ports[leg]}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [netns.tool("ip"), "netns", "exec", namespace, _which("ssh") or "ssh",
                 *argv[1:]], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=term_when_parent_dies)
        self.processes.append(process)
        # ssh's own start (keys, the session) is not the leg's wait: a SYN that
        # is dropped fails within `timeout` (socat's connect-timeout).
        deadline = time.monotonic() + timeout + SSH_SETUP
        while not _listening(namespace, local):
            if process.poll() is not None:
                lines = log.read_text(errors="replace").strip().splitlines()
                raise ConnectionRefusedError(
                    f"ssh exited with {process.returncode}: {lines[-1] if lines else ''}")
            if time.monotonic() > deadline:
                raise asyncio.TimeoutError
            await asyncio.sleep(0.02)
        sock = netns.socket_in(namespace, socket.AF_INET)
        try:
            sock.setblocking(False)
            sock.bind(("127.0.0.1", source))
            loop = asyncio.get_running_loop()
            await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", local)), timeout)
            if relay.setup.mode == "socks":
                target = next_destination(plan, flow, leg)
                await socks_connect(sock, target or "", HTTP_PORT, timeout)
        except BaseException:
            sock.close()
            raise
        return sock

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()


SSH_SETUP = 10.0  # seconds ssh may take to log in and listen, beyond the leg's wait


def _listening(namespace: str, port: int) -> bool:
    """Something listens on 127.0.0.1:`port` in `namespace` (read from the
    kernel's table: a test connection would open a forward)."""
    with netns.inside(namespace):
        table = Path("/proc/thread-self/net/tcp").read_text()
    wanted = f"0100007F:{port:04X}"
    return any(line.split()[1] == wanted and line.split()[3] == "0A"
               for line in table.splitlines()[1:])

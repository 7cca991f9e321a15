"""Build a topology in network namespaces, play every principal's exchange on
the real kernel, and report it as the simulator does (analysis.Report).

One topology at a time: build it (tens of milliseconds; up to a second more
with bridges), then for each hop limit set every IMDS server to it and run
all principals' clients at once, then delete the namespaces. Whatever
happens (an error, SIGINT, SIGTERM), the namespaces under the run's prefix
are deleted before hopsim exits.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from hopsim import analysis
from hopsim.analysis import Expectation, Report, Result
from hopsim.emulate import build, client, netns
from hopsim.emulate import products as real
from hopsim.emulate.build import Plan
from hopsim.emulate.capture import Evidence, Tap
from hopsim.emulate.configs import ProductRelay
from hopsim.emulate.flows import Flow, Flows
from hopsim.emulate.relay import RelayListener
from hopsim.emulate.server import ImdsServer, Received, listener
from hopsim.http import HTTP_PORT, Request
from hopsim.imds import DEFAULT_TTL
from hopsim.interrupts import Stopped, held, raise_if_stopped, stopping  # noqa: F401 (re-exported)
from hopsim.outcome import Access, Cause, Outcome, Verdict, refusal_cause
from hopsim.report.wording import plural
from hopsim.topology import Topology

DEFAULT_TIMEOUT = 0.5  # seconds a client waits per leg; answers take milliseconds here
_topology_numbers = itertools.count()



@contextmanager
def stopping_on_signals() -> Iterator[None]:
    """Turn SIGTERM (and SIGINT) into Stopped (hopsim.interrupts), so `finally`
    blocks run; on the way out, whatever happened, delete every namespace this
    process made."""
    with stopping(even_ignored=True, lost_in_finalizers=True):
        try:
            yield
        finally:
            with held():
                netns.delete_namespaces(netns.existing(netns.run_prefix()))


@dataclass
class Timing:
    """Seconds spent on each phase of one topology's kernel run."""

    namespaces: int = 0
    build: float = 0.0
    exchanges: float = 0.0
    teardown: float = 0.0

    @property
    def total(self) -> float:
        return self.build + self.exchanges + self.teardown


def with_family(topology: Topology, family: int) -> Topology:
    """This topology with every principal reaching IMDS over `family`."""
    nodes = {name: replace(node, family=family) if node.is_principal else node
             for name, node in topology.nodes.items()}
    return replace(topology, nodes=nodes, lines=topology.lines)


def emulate(topology: Topology, hop_limits: Iterable[int], *,
            timeout: float = DEFAULT_TIMEOUT) -> tuple[Report, Timing]:
    """Build `topology` in namespaces, measure it at each hop limit, remove it."""
    hop_limits = sorted(set(hop_limits))
    prefix = f"{netns.run_prefix()}{next(_topology_numbers)}-"
    plan = build.plan(topology, prefix)
    products = real.relays(plan)
    why = real.missing(products)
    if why:
        raise real.ProductError(why)
    timing = Timing(namespaces=len(plan.namespaces))
    started = time.monotonic()
    try:
        netns.build(plan)
        raise_if_stopped()
        netns.wait_ready(plan)
        timing.build = time.monotonic() - started
        started = time.monotonic()
        outcomes = asyncio.run(_measure(plan, hop_limits, timeout, products))
        timing.exchanges = time.monotonic() - started
        raise_if_stopped()
    finally:
        with held():
            started = time.monotonic()
            netns.delete_namespaces(netns.existing(prefix))
            real.remove_directories(plan)
            timing.teardown = time.monotonic() - started
    return report(topology, hop_limits, outcomes), timing


def report(topology: Topology, hop_limits: list[int],
           outcomes: dict[int, dict[str, Outcome]]) -> Report:
    """The measured outcomes judged exactly as the simulator's are."""
    results = []
    for hop_limit in hop_limits:
        found = outcomes[hop_limit]
        verdict, reason = analysis.judge(found.values())
        expected = topology.expect.get(hop_limit, {})
        expectations = tuple(Expectation(hop_limit, node, want, found[node].access.value)
                             for node, want in sorted(expected.items()))
        results.append(Result(hop_limit, verdict, reason,
                              tuple(found[n] for n in sorted(found)), expectations))
    ok = [r.hop_limit for r in results if r.verdict is Verdict.OK]
    if ok:
        recommended, why = ok[0], f"smallest measured hop limit where the verdict is ok: {ok[0]}"
    else:
        recommended, why = None, (f"no measured hop limit ({', '.join(map(str, hop_limits))}) "
                                  "gives the verdict ok")
    return Report(topology, tuple(results), recommended, why,
                  tuple(e for r in results for e in r.expectations))


# --- the measurement ----------------------------------------------------------------


class Kernel:
    """The running emulation of one plan: servers, relays, taps and clients."""

    def __init__(self, plan: Plan, timeout: float, products: list[ProductRelay] = ()):
        self.plan, self.timeout = plan, timeout
        self.flows = Flows()
        self.evidence = Evidence()
        self.taps: list[Tap] = []
        self.servers: dict[str, ImdsServer] = {}
        self.relays: list[RelayListener] = []
        self.products = list(products)
        self.daemons: list[real.Daemon] = []

    def _listener(self, namespace: str, family: int, address: str) -> socket.socket:
        with netns.inside(namespace):
            return listener(family, address, HTTP_PORT)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        plan, topology = self.plan, self.plan.topology
        for ns in plan.namespaces.values():
            if ns.is_bridge:
                continue
            tap = Tap(ns.node, netns.socket_in(ns.name, *Tap.socket_kind()), self.evidence,
                      imds=ns.kind == "imds")
            loop.add_reader(tap.sock.fileno(), tap.on_readable)
            self.taps.append(tap)
        for name in topology.imds_nodes:
            ns = plan.namespaces[name]
            instance = topology.instance_of(name)
            server = ImdsServer(topology.nodes[name].imds, instance)  # type: ignore[arg-type]
            sockets = [self._listener(ns.name, 6 if ":" in address else 4, address)
                       for address in ns.endpoint]
            await server.start(sockets)
            self.servers[name] = server
        for product in self.products:  # the real binaries, in the relays' namespaces
            daemon = real.Daemon(product)
            self.daemons.append(daemon)
            daemon.start()
        for daemon in self.daemons:
            await daemon.ready()
        relays: dict[str, dict] = {}
        for name, node in sorted(topology.nodes.items()):
            if node.relay is not None and node.product is None:
                relays.setdefault(node.runs_on or name, {})[name] = node.relay
        for place, policies in sorted(relays.items()):
            ns = plan.namespaces[place]
            relay = RelayListener(policies, self.flows, self.connect, self.timeout_of)
            # Every address of the namespace: a relay is reached on the
            # segment its client's table leads to (or on loopback, from its host).
            await relay.start([self._listener(ns.name, 4, "0.0.0.0"),
                               self._listener(ns.name, 6, "::")])
            self.relays.append(relay)

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        for tap in self.taps:
            loop.remove_reader(tap.sock.fileno())
            tap.close()
        for service in [*self.servers.values(), *self.relays]:
            await service.stop()
        for daemon in self.daemons:
            daemon.stop()

    def timeout_of(self, flow: Flow, leg: int) -> float:
        """How long the sender of leg `leg` waits: one timeout per leg still
        ahead, so an inner relay's 504 reaches an outer one in time."""
        return self.timeout * max(1, len(flow.route.legs) - leg)

    async def connect(self, flow: Flow, leg: int, timeout: float) -> socket.socket:
        """A socket for leg `leg` of `flow`, bound to the flow's port, connected."""
        family = flow.family
        node = self.plan.topology.nodes[flow.principal]
        if flow.route.stations:
            stations = flow.route.legs[leg]
            sender = stations[0].actor
            # An interceptor's clients address IMDS; its host's DNAT delivers them.
            place = None if self.plan.router.intercepts(stations[-1]) else stations[-1].node
        else:
            # No route: the client still sends where it is steered, its first
            # waypoint or else the endpoint, and the kernel says what becomes of it.
            sender = flow.principal
            place = (self.plan.topology.nodes[node.via[0]].runs_on or node.via[0]) if node.via \
                else None
        namespace = self.plan.namespace_of(sender).name
        destination = self.plan.destination(place, sender, family)
        # The kernel picks the source address, by the route it takes.
        source = "::" if family == 6 else "0.0.0.0"
        sock = netns.socket_in(namespace, socket.AF_INET6 if family == 6 else socket.AF_INET)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((source, flow.ports[leg]))
            loop = asyncio.get_running_loop()
            await asyncio.wait_for(loop.sock_connect(sock, (destination, HTTP_PORT)), timeout)
        except BaseException:
            sock.close()
            raise
        return sock

    async def session(self, principal: str) -> client.Session:
        node = self.plan.topology.nodes[principal]
        route = self.plan.routes[principal]

        def open_flow(label: str) -> Flow:
            return self.flows.open(principal, label, node.family, route)

        return await client.run(principal, node.family, open_flow, self.connect,
                                self.timeout * max(1, len(route.legs)), self.addressed)

    def addressed(self, flow: Flow, request: Request) -> Request:
        return real.addressed(self.plan, flow, request) if self.products else request

    def imds_port(self, flow: Flow) -> int:
        """The source port of the connection that brought `flow` to IMDS: its
        own last port, or the one a product chose (-1: it never got there)."""
        if not self.products or not real.through_products(self.plan, flow):
            return flow.last_port
        received = self.received(flow)
        return received.peer[1] if received else -1

    def received(self, flow: Flow) -> Received | None:
        """The request of `flow` as it reached IMDS, if it did: found by the
        mark a flow through products carries, else by its last port."""
        marked = bool(self.products) and real.through_products(self.plan, flow)
        for server in self.servers.values():
            for received in server.received:
                if (real.flow_mark(received.request.path) == flow.ports[0] if marked
                        else received.peer[1] == flow.last_port):
                    return received
        return None

    async def measure(self, hop_limit: int) -> dict[str, Outcome]:
        topology = self.plan.topology.with_imds(hop_limit=hop_limit)
        for name, server in self.servers.items():
            server.settings = topology.nodes[name].imds  # type: ignore[assignment]
        sessions = await asyncio.gather(*(self.session(p) for p in topology.principals))
        return {s.principal: self.outcome(s, hop_limit) for s in sessions}

    def outcome(self, session: client.Session, hop_limit: int) -> Outcome:
        """What the client got, with the taps' evidence of where its token died."""
        plan, evidence = self.plan, self.evidence
        node = plan.topology.nodes[session.principal]
        route = plan.routes[session.principal]
        put = session.put
        assert put is not None
        access = session.access
        port = self.imds_port(put.flow)
        born = evidence.born.get(port, [])
        reached = evidence.reached.get(port, [])
        syn_ttl = evidence.syn_ttl.get(port)
        forwarded = _in_ttl_order(evidence.forwarded.get(port, []))
        path: tuple[str, ...] = ()
        if route.stations:
            # Each leg the request took (its connection opened): its sender
            # and the routers its SYN crossed; then where the last one ended.
            # (A product picks its own source port: the last leg's is IMDS's.)
            legs, ports = route.legs, [*put.flow.ports[:-1], port]
            # A leg's SYN left its sender if a tap saw it go, out of a link
            # or on loopback for a leg inside one stack (after the output
            # hook, before the input one: as on a link). A product picks its
            # own source port: its leg inside one stack is taken as sent.
            def local(i: int) -> bool:
                return plan.namespace_of(legs[i][0].actor) is plan.namespace_of(legs[i][-1].actor)

            def sent(i: int) -> bool:
                return ports[i] in evidence.opened or (
                    local(i) and plan.topology.nodes[legs[i][0].actor].product is not None)

            last = 0
            while last + 1 < len(legs) and sent(last + 1):
                last += 1
            path = tuple(name for i in range(last + 1)
                         for name in (legs[i][0].actor,
                                      *_in_ttl_order(evidence.request.get(ports[i], []))))
            end = legs[last][-1]
            # Where it ended, if its SYN got there (a filter on the way drops it).
            if end.node in evidence.arrived.get(ports[last], ()) or (local(last) and sent(last)):
                path += (end.actor,)
        routers = DEFAULT_TTL - syn_ttl if syn_ttl is not None else None
        dropped_at = cause = None
        parts = []
        if put.response is not None:
            response = put.response
            if access is Access.TOKEN:
                parts.append("PUT answered 200 with a token" + (
                    f" across {plural(routers, 'router')} (its SYN "
                    f"reached IMDS with TTL {syn_ttl})" if routers is not None else ""))
            else:
                detail = response.body.strip().splitlines()[0] if response.body.strip() else ""
                if response.status == 200:  # a relay that answers 200 whatever it got
                    detail = f"no token in it: {detail[:40]!r}" if detail else "empty"
                parts.append(f"PUT answered {response.status} {response.phrase}"
                             + (f" ({detail})" if detail and detail != response.phrase else ""))
                arrived = self.received(put.flow)
                imds_node = plan.topology.nodes[route.imds] if route.imds else None
                cause = refusal_cause(
                    response.status, arrived=arrived.request if arrived else None,
                    # Nobody but a relay answers a request IMDS never received.
                    refused=arrived is None and 400 <= response.status < 500,
                    disabled=imds_node is not None and imds_node.imds.http_endpoint == "disabled")
        else:
            parts.append(f"PUT: {put.error}")
            cause = Cause.OTHER if put.error and put.error.startswith("no answer") else (
                Cause.UNREACHABLE)
        if access is not Access.TOKEN and born:
            first = born[0]
            dropped_at, cause = plan.node_at(first.source) or first.node, Cause.TTL
            seen = f"ICMP Time Exceeded from {dropped_at} ({first.source})"
            if reached and reached[0].source != first.source:
                there = reached[0]
                seen += (f" reached {there.node} as from "
                         f"{plan.node_at(there.source) or there.source} ({there.source}): "
                         "a NAT on the way rewrote its source")
            elif reached:
                seen += f" reached {reached[0].node}"
            parts.append(seen)
        if session.fallback is not None:
            parts.append(f"IMDSv1 fallback GET: {session.fallback.describe()}")
        reachable = bool(route.stations)
        return Outcome(
            node=session.principal, role=node.role, family=session.family, access=access,
            hop_limit=hop_limit if reachable else None, routers=routers,
            receiver=route.legs[-1][0].actor if reachable else None,
            dropped_at=dropped_at, cause=None if access is Access.TOKEN else cause,
            forwarded=forwarded, path=path,
            status=put.response.status if put.response and cause is not Cause.TTL else None,
            observed="; ".join(parts))


def _in_ttl_order(seen: list[tuple[str, int]]) -> tuple[str, ...]:
    """The nodes that forwarded a packet, first to last (its TTL falls at each)."""
    return tuple(node for node, _ in sorted(seen, key=lambda found: -found[1]))


async def _measure(plan: Plan, hop_limits: list[int], timeout: float,
                   products: list[ProductRelay] = ()) -> dict[int, dict[str, Outcome]]:
    kernel = Kernel(plan, timeout, products)
    try:
        await kernel.start()
        return {h: await kernel.measure(h) for h in hop_limits}
    finally:
        await kernel.stop()

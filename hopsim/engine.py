"""The hop-by-hop walk: one principal's IMDSv2 exchange as real packets.

A principal sends `PUT /latest/api/token`; the request crosses its route, leg
by leg (a leg is one TCP connection: relays, L4 and L7, and user-space
network stacks end one and open the next);
IMDS answers; the answer takes its own way back (routed by its destination,
which need not retrace the request), losing TTL at every router. Then the
credentials GET, with the token, or without it (the IMDSv1 fallback SDKs and
attackers try) when there is none.

Kernel facts (docs/facts.md): a router drops a packet to forward
at TTL <= 1 and sends ICMP Time Exceeded to its source [C]; local delivery
accepts any TTL [C]; bridges never touch the TTL [C]; NATs and tunnels
decrement like routers [U]; relays re-send with their own TTL, 64 [U].
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING

from hopsim import imds, packets
from hopsim.filters import IMDS, Filter, first_match
from hopsim.filters import Packet as Seen
from hopsim.http import HTTP_PORT, Request, Response
from hopsim.outcome import Access, Cause, Outcome, refusal_cause
from hopsim.routing import Part, Route, Router, Station
from hopsim.topology import Topology

if TYPE_CHECKING:
    from scapy.packet import Packet

T0 = 1672963200.0  # 2023-01-06 00:00:00 UTC: the day the article was published
LINK_TIME = 0.0001  # 100 us a link
TIMEOUT = 1.0  # how long a client waits for an answer that never comes
CLIENT_PORT = 40000
SERVER_ISN, CLIENT_ISN = 1_000_000, 2_000_000


class Action(Enum):
    SEND = "sent"
    BRIDGE = "bridged"
    FORWARD = "forwarded"
    NAT = "NATed"
    DROP = "dropped"
    ICMP = "ICMP sent"
    DELIVER = "delivered"
    REFUSE = "refused"
    TIMEOUT = "timed out"


@dataclass(frozen=True)
class Hop:
    """What one node did to one packet."""

    time: float
    message: str
    node: str
    action: Action
    ttl_in: int | None
    ttl_out: int | None
    detail: str = ""
    packet: Packet | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Exchange:
    """A principal's whole exchange: its route, every hop, and the outcome."""

    route: Route
    outcome: Outcome
    hops: tuple[Hop, ...]
    token_issued: bool = False  # IMDS answered the PUT with a token (whatever became of it)

    @property
    def packets(self) -> list[Packet]:
        return [h.packet for h in self.hops if h.packet is not None]


class _Lost(Exception):
    """A packet died on the way (TTL exceeded)."""

    def __init__(self, node: str):
        self.node = node


@dataclass
class _Notes:
    """What relays did to the request on its way in, for the reason line."""

    xff_by: list[str] = field(default_factory=list)
    stripped_by: list[str] = field(default_factory=list)
    refused_by: str | None = None  # the relay that refused the method
    allowed: str | None = None  # the methods that relay passes
    sent_as: tuple[str, str] | None = None  # (relay, method) a relay sent a PUT as
    dropped_at: str | None = None  # router that dropped the response to the principal
    # the first filter hit: (leg, node, rule, the packet's direction, its station on the leg)
    filtered: tuple[int, str, Filter, str, int] | None = None
    closed_by: str | None = None  # the relay (or stack) that opened no connection to IMDS
    token_issued: bool = False  # IMDS answered 200 to the PUT
    arrived: Request | None = None  # the token request as IMDS received it


class _Walker:
    def __init__(self, topology: Topology, route: Route, family: int, record: bool,
                 router: Router):
        self.topology, self.route, self.family, self.record = topology, route, family, record
        self.router = router
        # What nodes do is read from what they are written as (Topology.like);
        # a node's own Node only for its addresses.
        self.settings = topology.like[route.imds].imds  # type: ignore[index]
        self.instance = topology.instance_of(route.imds)  # type: ignore[arg-type]
        self.time = T0
        self.filtering = router.filtering  # found once per topology, not per walk
        self.port = CLIENT_PORT
        self.hops: list[Hop] = []

    # -- addressing ------------------------------------------------------------

    def address(self, station: Station) -> str:
        if station.part is Part.IMDS:
            return imds.IPV4_ENDPOINT if self.family == 4 else imds.IPV6_ENDPOINT
        return self.node_address(station.actor)

    def node_address(self, name: str) -> str:
        return self.topology.nodes.addresses(name)[0 if self.family == 4 else 1]

    def host_header(self) -> str:
        return imds.IPV4_ENDPOINT if self.family == 4 else f"[{imds.IPV6_ENDPOINT}]"

    # -- recording -------------------------------------------------------------

    def note(self, message: str, node: str, action: Action, ttl_in: int | None,
             ttl_out: int | None, detail: str = "",
             packet: packets.Segment | packets.TimeExceeded | None = None) -> None:
        """Record a hop when recording; only then is its scapy packet built, as
        seen here and now (a pcap's time stamps follow)."""
        if self.record:
            self.hops.append(Hop(self.time, message, node, action, ttl_in, ttl_out, detail,
                                 packet.packet(self.time) if packet is not None else None))

    # -- one message across one leg ----------------------------------------------

    def carry(self, packet: packets.Segment, stations: tuple[Station, ...], message: str,
              nat: list[tuple[str, str]], outbound: bool, sent: str = "") -> packets.Segment:
        """Move `packet` from stations[0] to stations[-1]; raise _Lost if it dies.

        `nat` holds (router, original source) pairs pushed on the way out and
        popped on the way back.
        """
        self.note(message, stations[0].actor, Action.SEND, None, packet.ttl,
                  f"{packet.src} -> {packet.dst}{sent}", packet)
        for station in stations[1:-1]:
            self.time += LINK_TIME
            ttl = packet.ttl
            if station.part is Part.BRIDGE:
                self.note(message, station.node, Action.BRIDGE, ttl, ttl, "L2, TTL untouched",
                          packet)
                continue
            if ttl <= 1:
                self.note(message, station.node, Action.DROP, ttl, None,
                          "TTL exceeded in transit", packet)
                self.time += LINK_TIME / 10
                icmp = packets.TimeExceeded(self.node_address(station.node), packet)
                kind = "11/0" if self.family == 4 else "3/0"  # type/code
                self.note(message, station.node, Action.ICMP, None, icmp.ttl,
                          f"Time Exceeded {kind} -> {packet.src}", icmp)
                raise _Lost(station.node)
            if station.nat and outbound:
                nat.append((station.node, packet.src))
                packet = replace(packet, ttl=ttl - 1, src=self.node_address(station.node))
                detail = f"source -> {packet.src}"
            elif station.nat and nat and nat[-1][0] == station.node:
                _, original = nat.pop()
                packet = replace(packet, ttl=ttl - 1, dst=original)
                detail = f"destination -> {original}"
            else:
                packet = replace(packet, ttl=ttl - 1)
                detail = ""
            action = Action.NAT if station.nat else Action.FORWARD
            self.note(message, station.node, action, ttl, ttl - 1, detail, packet)
        self.time += LINK_TIME
        ttl = packet.ttl
        self.note(message, stations[-1].actor, Action.DELIVER, ttl, None,
                  "local delivery accepts any TTL" if ttl == 1 else "", packet)
        return packet

    def serve(self, leg_index: int, request: Request, notes: _Notes) -> Response | None:
        """Send `request` across leg `leg_index` and carry the answer back.

        Returns None when the answer (or the request) never arrives.
        """
        leg = self.route.legs[leg_index]
        start, end = leg[0], leg[-1]
        self.port += 1
        sport = self.port
        payload = request.to_bytes(self.host_header())
        label = f"{request.method} {request.path}"
        # An interceptor's clients address IMDS: its host's DNAT delivers to it.
        to = self.address(Station(end.node, Part.IMDS)) if self.router.intercepts(end) else (
            self.address(end))
        packet = packets.Segment(self.family, self.address(start), to, sport, HTTP_PORT,
                                 ttl=imds.DEFAULT_TTL, seq=CLIENT_ISN, ack=SERVER_ISN,
                                 payload=payload)
        hit = self.filtered(leg_index)
        if hit is not None:
            self.stopped(leg_index, hit, label, packet, notes)
            return None
        nat: list[tuple[str, str]] = []
        try:
            arrived = self.carry(packet, leg, label, nat, outbound=True,
                                 sent=self.opening(start, end))
        except _Lost:
            return None
        answered = self.answer(leg_index, end, request, notes, arrived.src)
        if answered is None:  # the relay closed the connection without an answer
            return None
        response, ttl = answered
        label = f"{response.status} {response.phrase}" + (
            " (token)" if self.is_token(request, response) else "")
        reply = packets.Segment(self.family, arrived.dst, arrived.src, HTTP_PORT, sport,
                                ttl=ttl, seq=SERVER_ISN, ack=CLIENT_ISN + len(payload),
                                payload=response.to_bytes())
        try:
            self.carry(reply, self.route.returns[leg_index], label, nat, outbound=False)
        except _Lost as lost:
            notes.dropped_at = notes.dropped_at or lost.node
            self.time += TIMEOUT
            self.note(label, start.actor, Action.TIMEOUT, None, None,
                      f"no answer after {TIMEOUT:g} s")
            return None
        return response

    # -- packet filters (hopsim.filters) ---------------------------------------

    def _place(self, name: str) -> str:
        return self.topology.stack_of(name)

    def filtered(self, leg_index: int) -> tuple[str, Filter, str, int] | None:
        """The first filter rule that stops leg `leg_index`'s connection from
        opening: (node, rule, "request" or "answer"), checked on the SYN's way
        there, then on the SYN-ACK's way back, as the kernel meets them."""
        if not self.filtering:
            return None
        leg, back = self.route.legs[leg_index], self.route.returns[leg_index]
        end = leg[-1]
        if self.topology.like[end.actor].network:
            return None  # to a user-space stack: inside the workload's own namespace

        place = self._place(end.actor)
        dnat = self.router.intercepts(end)  # addressed to IMDS, delivered to the relay
        target = IMDS if end.part is Part.IMDS or dnat else place
        source = self._place(leg[0].actor)
        hit = self._along(leg, source, target, outbound=True, delivered=place if dnat else None)
        if hit is not None:
            return hit[0], hit[1], "request", hit[2]
        # The answer: from IMDS or the relay, to the last NAT's address first.
        nats = [self._place(s.node) for s in leg if s.part is Part.ROUTE and s.nat]
        hit = self._along(back, place if dnat else target, nats[-1] if nats else source,
                          outbound=False, nats=nats, origin=source,
                          restored=IMDS if dnat else None)
        return (hit[0], hit[1], "answer", len(leg) - 1) if hit is not None else None

    def _along(self, stations: tuple[Station, ...], source: str, destination: str, *,
               outbound: bool, nats: list[str] | None = None, origin: str = "",
               delivered: str | None = None, restored: str | None = None
               ) -> tuple[str, Filter, int] | None:
        """The first rule along `stations` that matches the packet. `delivered`:
        the DNAT at the last station (before its input hook) readdresses it
        there; `restored`: the answer's source after the first station (the
        DNAT undone after its output hook)."""
        nats = list(nats or ())
        last = len(stations) - 1
        local = self._place(stations[0].actor) == self._place(stations[-1].actor)
        for i, station in enumerate(stations):
            if station.part is Part.BRIDGE:
                continue
            here = self._place(station.actor if i in (0, last) else station.node)
            if not outbound and station.nat and nats and nats[-1] == here:
                nats.pop()  # conntrack restores the destination before the forward hook
                destination = nats[-1] if nats else origin
            chain = "output" if i == 0 else "input" if i == last else "forward"
            if i == last and delivered is not None:
                destination = delivered
            if i == 1 and restored is not None:
                source = restored
            arrived = None if i == 0 or local else stations[i - 1].node
            rules = self.topology.like[here].filters
            if rules:
                # The socket's owner, as meta skuid sees it: the process that
                # opened the connection here (a relay, a user-space stack).
                owner = stations[0].actor if i == 0 and outbound else None
                rule = first_match(rules, Seen(chain, arrived, source, destination, owner),
                                   frozenset(self.topology.adjacency[here]))
                if rule is not None:
                    return here, rule, i
            if outbound and station.nat and 0 < i < last:
                source = here  # SNAT, after the forward hook
        return None

    def stopped(self, leg_index: int, hit: tuple[str, Filter, str, int], label: str,
                packet: packets.Segment, notes: _Notes) -> None:
        """A connection a filter kept from opening: a drop (or anything done to
        the answer) leaves the sender waiting; a reject on the way there
        resets it at once."""
        node, rule, direction, index = hit
        notes.filtered = notes.filtered or (leg_index, node, rule, direction, index)
        sender = self.route.legs[leg_index][0].actor
        what = "its SYN" if direction == "request" else "the SYN-ACK"
        self.note(label, node, Action.DROP, packet.ttl, None,
                  f"{what} matched filter {rule.describe()}", packet)
        if rule.action == "reject" and direction == "request":
            self.note(label, sender, Action.REFUSE, None, None,
                      f"connection reset by {node}'s filter, at once")
            return
        self.time += TIMEOUT
        self.note(label, sender, Action.TIMEOUT, None, None, f"no answer after {TIMEOUT:g} s")

    @staticmethod
    def is_token(request: Request, response: Response) -> bool:
        return request.path == imds.TOKEN_PATH and request.method == "PUT" and (
            response.status == 200)

    def answer(self, leg_index: int, end: Station, request: Request, notes: _Notes,
               client: str) -> tuple[Response, int] | None:
        """The response made at the end of a leg, and the TTL it leaves with
        (None: the relay closed the connection without one).

        `client` is the source address the request arrived with (after NAT).
        """
        if end.part is Part.IMDS:
            response = imds.respond(request, self.settings, instance=self.instance,
                                    now=self.time)
            if request.path == imds.TOKEN_PATH:
                notes.arrived = request
            notes.token_issued = notes.token_issued or self.is_token(request, response)
            # [C] only the token response carries the hop limit as its TTL.
            ttl = self.settings.hop_limit if self.is_token(request, response) else imds.DEFAULT_TTL
            return response, ttl
        relay = self.topology.like[end.actor]
        policy = relay.relay
        assert policy is not None
        if not policy.allows(request.method):
            notes.refused_by = end.actor
            notes.allowed = ", ".join(policy.methods or ())
            refusal = policy.refusal()
            self.note(f"{request.method} {request.path}", end.actor, Action.REFUSE, None, None,
                      f"{refusal.status}: {end.actor} passes only {notes.allowed}")
            return refusal, imds.DEFAULT_TTL
        if policy.refuses_imds and self.route.legs[leg_index + 1][-1].part is Part.IMDS:
            notes.closed_by = notes.closed_by or end.actor
            self.note(f"{request.method} {request.path}", end.actor, Action.REFUSE, None, None,
                      f"{self.reopener(end.actor)} opens no connection to "
                      f"{self.host_header()}: the client's connection is closed unanswered")
            return None
        upstream = self.relayed(request, end, notes, client)
        response = self.serve(leg_index + 1, upstream, notes)
        if response is None and relay.passes_bytes:
            return None  # no HTTP of its own: the client's connection closes, or waits
        if response is None and notes.filtered and notes.filtered[0] == leg_index + 1:
            # Its connection upstream never opened (relay.py answers so too).
            return Response(502, (), "Bad Gateway\n"), imds.DEFAULT_TTL
        if response is None:
            return Response(504, (), "Gateway Timeout\n"), imds.DEFAULT_TTL
        return response, imds.DEFAULT_TTL

    def opening(self, start: Station, end: Station) -> str:
        """What the trace says of a leg an L4 relay or user-space stack is at:
        the workload's own leg to its stack, or the stack's (relay's) fresh
        connection. Empty for the rest, whose traces stay as they were."""
        nodes = self.topology.like
        if end.part is Part.RELAY and nodes[end.actor].network:
            return (f" (to its {nodes[end.actor].network} stack, in its own namespace: "
                    "not routed)" if start.part is Part.ORIGIN else
                    f" (to {self.reopener(end.actor)}, in the same namespace: not routed)")
        if start.part is Part.RELAY and nodes[start.actor].passes_bytes:
            return (f" ({self.reopener(start.actor)} opens its own connection: fresh TTL "
                    f"{imds.DEFAULT_TTL}, bytes passed unchanged)")
        return ""

    def reopener(self, actor: str) -> str:
        """Who re-opens connections at a relay station, in words: the relay,
        or a principal's user-space stack ("ci-job's slirp4netns")."""
        node = self.topology.like[actor]
        return f"{actor}'s {node.network}" if node.network else actor

    def relayed(self, request: Request, station: Station, notes: _Notes,
                client: str) -> Request:
        """The request a relay sends upstream, noting what it did to the headers."""
        policy = self.topology.like[station.actor].relay
        assert policy is not None
        upstream = policy.upstream(request, client)
        if any(k.lower().startswith("x-aws-ec2-metadata-token") and upstream.header(k) is None
               for k, _ in request.headers):
            notes.stripped_by.append(station.actor)
        if policy.adds_xff:
            notes.xff_by.append(station.actor)
        if upstream.method != request.method and request.method == "PUT":
            notes.sent_as = notes.sent_as or (station.actor, upstream.method)
        return upstream

    def request(self, request: Request) -> tuple[Response | None, _Notes]:
        notes = _Notes()
        response = self.serve(0, request, notes)
        return response, notes


def play(topology: Topology, principal: str, *, family: int | None = None,
         record: bool = False, router: Router | None = None) -> Exchange:
    """Play `principal`'s IMDSv2 exchange at the topology's configured hop limits.

    With `record`, every hop keeps its scapy packet (for traces and pcaps);
    without, the walk builds none.
    """
    node = topology.like[principal]
    family = family or node.family
    router = router or Router(topology)
    route = router.route(principal)
    base = Outcome(principal, node.role, family, Access.NONE)
    if route.unreachable:
        return Exchange(route, replace(base, unreachable=route.unreachable,
                                       cause=Cause.UNREACHABLE), ())
    settings = topology.like[route.imds].imds  # type: ignore[index]
    token_routers = route.token_routers
    receiver = route.legs[-1][0].actor
    base = replace(base, hop_limit=settings.hop_limit, routers=len(token_routers),
                    receiver=receiver, path=_path(route.stations))
    if family == 6 and not settings.ipv6:
        return Exchange(route, replace(base, routers=None, cause=Cause.UNREACHABLE, unreachable=(
            f"unreachable: {route.imds} does not answer on IPv6 (ipv6: false)")), ())
    walker = _Walker(topology, route, family, record, router)
    response, notes = walker.request(imds.token_request())
    if response is not None and response.status == 200:
        walker.request(imds.credentials_request(response.body))
        return Exchange(route, replace(base, access=Access.TOKEN, forwarded=token_routers),
                        tuple(walker.hops), True)
    if notes.dropped_at:
        # The token response died at the router that saw TTL 1: those before
        # it forwarded it.
        crossed = (token_routers[:token_routers.index(notes.dropped_at)]
                   if notes.dropped_at in token_routers else ())
        outcome = replace(base, dropped_at=notes.dropped_at, cause=Cause.TTL, forwarded=crossed)
    elif notes.filtered:
        leg, node, rule, direction, _ = notes.filtered
        waits = rule.action == "drop" or direction == "answer"
        what = "its answer" if direction == "answer" else "it"
        opener = route.legs[leg][0].actor
        stack = topology.like[opener].network
        who = f"{opener}'s {stack} and {opener}" if stack else f"{opener} and its client"
        outcome = replace(base, cause=Cause.FILTERED, filtered_at=node,
                          status=response.status if response is not None else None,
                          filter=f"{rule.describe()} ({_DONE[rule.action]} {what}: "
                          + ("the client waits until its timeout)" if waits and leg == 0 else
                             "refused at once)" if leg == 0 else
                             # An L4 relay or stack holds its client's connection while
                             # its own connect is pending [M]: the client waits with it.
                             f"{who} wait until their timeout)" if waits
                             and _waits_with_client(topology, route, leg) else
                             f"{opener} closed the connection)"
                             if topology.like[opener].passes_bytes else
                             f"{opener} answered 502)"))
        # Where the request got: the nodes that sent it on, and the one it
        # was delivered to (an input or output rule there stopped it); a
        # forward rule stopped it before its router sent it on. A rule that
        # stops the SYN-ACK leaves the SYN delivered at its leg's end and the
        # connection unopened: nothing went further (the kernel's taps agree).
        stop = sum(len(before) - 1 for before in route.legs[:leg]) + notes.filtered[4]
        stop += 1 if direction == "answer" else rule.chain != "forward"
        outcome = replace(outcome, path=_path(route.stations[:stop]))
    elif notes.closed_by:
        # The relay (or stack) closed the client's connection: the request went
        # no further (sshd's PermitOpen, dante's socks block, block_imds).
        stop = next(i for i, s in enumerate(route.stations)
                    if s.part is Part.RELAY and s.actor == notes.closed_by)
        outcome = replace(base, cause=Cause.CLOSED, by=(notes.closed_by,),
                          path=_path(route.stations[:stop + 1]))
    else:
        outcome = replace(base, **_refusal(response, notes, settings))
        if notes.refused_by:  # the request went no further than the relay that refused it
            stop = next(i for i, s in enumerate(route.stations)
                        if s.part is Part.RELAY and s.actor == notes.refused_by)
            outcome = replace(outcome, path=_path(route.stations[:stop + 1]))
    fallback, _ = walker.request(imds.credentials_request(None))
    waited = notes.filtered is not None and (
        notes.filtered[0] == 0 or _waits_with_client(topology, route, notes.filtered[0])) and (
        notes.filtered[2].action == "drop" or notes.filtered[3] == "answer")
    outcome = replace(outcome, fallback=fallback.status if fallback is not None else 0,
                      waited=bool(notes.dropped_at) or waited)
    if fallback is not None and fallback.status == 200:
        outcome = replace(outcome, access=Access.CREDENTIALS)
    return Exchange(route, outcome, tuple(walker.hops), notes.token_issued)


_DONE = {"drop": "dropped", "reject": "rejected"}


def _waits_with_client(topology: Topology, route: Route, leg: int) -> bool:
    """Whether the principal waits while leg `leg`'s connection does not open:
    every relay before it passes bytes, so none answers for itself (socat,
    sshd and the rootless stacks finish their client's side only once their
    own connect succeeds, or fails) [M]."""
    return all(topology.like[route.legs[i][0].actor].passes_bytes for i in range(1, leg + 1))


def _path(stations: tuple[Station, ...]) -> tuple[str, ...]:
    """Where a request went: each station's actor, bridges aside."""
    return tuple(s.actor for s in stations if s.part is not Part.BRIDGE)


def _refusal(response: Response | None, notes: _Notes,
             settings: imds.ImdsSettings) -> dict[str, object]:
    """The Outcome fields that say why the token request failed, if not the TTL."""
    status = response.status if response is not None else None
    why = refusal_cause(status, refused=notes.refused_by is not None, arrived=notes.arrived,
                disabled=settings.http_endpoint == "disabled")
    if why is Cause.METHOD and notes.refused_by:
        return {"cause": why, "by": (notes.refused_by,), "status": status,
                "allowed": notes.allowed or "other methods"}
    if why is Cause.METHOD:
        return {"cause": why, "by": (notes.sent_as[0],), "status": status,  # type: ignore[index]
                "sent_as": notes.sent_as[1]}  # type: ignore[index]
    by = {Cause.XFF: notes.xff_by, Cause.TTL_HEADER: notes.stripped_by}.get(why, ())
    return {"cause": why, **({"by": tuple(by)} if by else {}),
            **({"status": status} if status is not None else {})}

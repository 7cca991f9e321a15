"""Watching the kernel: which node dropped a token response, and how many
routers a request crossed.

One packet socket (AF_PACKET) per namespace that has an address sees every
packet its interfaces send and receive. Three things are kept:

- an ICMP Time Exceeded (v4 11/0, v6 3/0) *leaving* a namespace with the
  default TTL 64 was born there: that namespace's node dropped the packet
  it quotes. A forwarded one leaves with 63 or less.
- an ICMP Time Exceeded *arriving* in an imds namespace: what IMDS sees.
  It is not enough to name the dropping node: a NAT between that node and
  IMDS rewrites the outer source of ICMP errors that belong to a
  masqueraded connection (nf_nat_icmp_reply_translation), so a drop at an
  inner Docker host reaches IMDS from the outer one. Observed here on Linux
  6.x with two nested MASQUERADE hosts.
- the TTL of each SYN arriving at IMDS: 64 minus the routers the request
  crossed on the leg that reaches IMDS;
- each namespace that sends on a request's SYN with less than TTL 64: the
  routers its request crossed, leg by leg;
- each namespace that sends on a token response (an IMDS answer "200" from
  169.254.169.254 or fd00:ec2::254) that it did not make: the routers that
  forwarded it, by its destination port, in the order of their TTLs. The
  response is routed on its own and need not cross the request's routers.

The dropped packet's destination port, quoted in the ICMP message, names the
flow (see flows.py).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field

from hopsim import imds
from hopsim.http import HTTP_PORT
from hopsim.imds import DEFAULT_TTL

ENDPOINTS = frozenset({imds.IPV4_ENDPOINT, imds.IPV6_ENDPOINT})
TOKEN_ANSWER = b"HTTP/1.1 200"  # IMDS's answer to the PUT, the one that carries the token
ETH_P_ALL = 0x0003
ETH_P_IP, ETH_P_IPV6 = 0x0800, 0x86DD
PACKET_HOST, PACKET_OUTGOING = 0, 4


@dataclass(frozen=True)
class TimeExceeded:
    node: str  # where it was seen: born at (outgoing) or reached (incoming)
    source: str  # the ICMP message's source address there
    ttl: int  # its TTL (hop limit) there
    port: int  # destination port of the dropped packet: the flow's leg


@dataclass
class Evidence:
    """Everything the taps saw, keyed by flow port."""

    born: dict[int, list[TimeExceeded]] = field(default_factory=dict)
    reached: dict[int, list[TimeExceeded]] = field(default_factory=dict)
    syn_ttl: dict[int, int] = field(default_factory=dict)
    # flow port -> (node, TTL out) for each namespace that forwarded the token response
    forwarded: dict[int, list[tuple[str, int]]] = field(default_factory=dict)
    # flow port -> (node, TTL out) for each namespace that forwarded a request's SYN
    request: dict[int, list[tuple[str, int]]] = field(default_factory=dict)
    # flow ports whose connection was opened (its SYN sent): the legs a request took
    opened: set[int] = field(default_factory=set)
    # flow port -> the nodes a request's SYN arrived at (before any filter there)
    arrived: dict[int, set[str]] = field(default_factory=dict)
    # the TTL of the first answer segment (from port 80, with data) each port got
    answer_ttl: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Packet:
    family: int
    ttl: int
    source: str
    protocol: int
    payload: bytes


def _ip(frame: bytes, ethertype: int) -> _Packet | None:
    if ethertype == ETH_P_IP and len(frame) >= 20:
        header = (frame[0] & 0x0F) * 4
        return _Packet(4, frame[8], str(ipaddress.IPv4Address(frame[12:16])), frame[9],
                       frame[header:])
    if ethertype == ETH_P_IPV6 and len(frame) >= 40:
        return _Packet(6, frame[7], str(ipaddress.IPv6Address(frame[8:24])), frame[6],
                       frame[40:])
    return None


def _quoted_ports(packet: _Packet) -> tuple[int, int] | None:
    """(source, destination) ports of the TCP segment an ICMP error quotes."""
    inner = packet.payload[8:]
    if packet.family == 4:
        if len(inner) < 20 or inner[9] != socket.IPPROTO_TCP:
            return None
        tcp = inner[(inner[0] & 0x0F) * 4:]
    else:
        if len(inner) < 40 or inner[6] != socket.IPPROTO_TCP:
            return None
        tcp = inner[40:]
    if len(tcp) < 4:
        return None
    return int.from_bytes(tcp[0:2], "big"), int.from_bytes(tcp[2:4], "big")


def _is_time_exceeded(packet: _Packet) -> bool:
    if len(packet.payload) < 8:
        return False
    kind = (packet.payload[0], packet.payload[1])
    if packet.family == 4:
        return packet.protocol == socket.IPPROTO_ICMP and kind == (11, 0)
    return packet.protocol == socket.IPPROTO_ICMPV6 and kind == (3, 0)


class Tap:
    """A packet socket in one namespace, feeding `evidence`."""

    def __init__(self, node: str, sock: socket.socket, evidence: Evidence, *, imds: bool):
        self.node, self.sock, self.evidence, self.imds = node, sock, evidence, imds
        sock.setblocking(False)

    @staticmethod
    def socket_kind() -> tuple[int, int, int]:
        return socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL)

    def on_readable(self) -> None:
        while True:
            try:
                frame, (ifname, ethertype, pkttype, *_) = self.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            if ifname != "lo":
                self.see(frame, ethertype, pkttype)
            elif pkttype == PACKET_OUTGOING:
                self.opened(frame, ethertype)

    def see(self, frame: bytes, ethertype: int, pkttype: int) -> None:
        if pkttype == PACKET_OUTGOING:
            self.opened(frame, ethertype)
        packet = _ip(frame, ethertype)
        if packet is None:
            return
        if _is_time_exceeded(packet):
            ports = _quoted_ports(packet)
            if ports is None or ports[0] != HTTP_PORT:
                return
            seen = TimeExceeded(self.node, packet.source, packet.ttl, ports[1])
            if pkttype == PACKET_OUTGOING and packet.ttl == DEFAULT_TTL:
                self.evidence.born.setdefault(seen.port, []).append(seen)
            elif pkttype == PACKET_HOST and self.imds:
                self.evidence.reached.setdefault(seen.port, []).append(seen)
        elif (not self.imds and pkttype == PACKET_OUTGOING
              and packet.protocol == socket.IPPROTO_TCP and len(packet.payload) >= 20):
            tcp = packet.payload
            data = tcp[(tcp[12] >> 4) * 4:]
            ports = int.from_bytes(tcp[0:2], "big"), int.from_bytes(tcp[2:4], "big")
            if (packet.source in ENDPOINTS and ports[0] == HTTP_PORT
                    and data.startswith(TOKEN_ANSWER)):
                # The token response leaving a namespace that did not make it:
                # forwarded here (a NAT restores its destination port first).
                self._forwarded(self.evidence.forwarded, ports[1], packet.ttl)
            elif (ports[1] == HTTP_PORT and tcp[13] & 0x12 == 0x02
                  and packet.ttl < DEFAULT_TTL):
                # A request's SYN leaving with less than the TTL it was sent
                # with: forwarded here.
                self._forwarded(self.evidence.request, ports[0], packet.ttl)
        elif (pkttype == PACKET_HOST and packet.protocol == socket.IPPROTO_TCP
              and len(packet.payload) >= 14):
            tcp = packet.payload
            syn_only = tcp[13] & 0x12 == 0x02
            if syn_only and int.from_bytes(tcp[2:4], "big") == HTTP_PORT:
                port = int.from_bytes(tcp[0:2], "big")
                self.evidence.arrived.setdefault(port, set()).add(self.node)
            if self.imds and syn_only and int.from_bytes(tcp[2:4], "big") == HTTP_PORT:
                port = int.from_bytes(tcp[0:2], "big")
                self.evidence.syn_ttl.setdefault(port, packet.ttl)
            elif (int.from_bytes(tcp[0:2], "big") == HTTP_PORT
                  and len(tcp) > (tcp[12] >> 4) * 4):  # an answer with data in it
                port = int.from_bytes(tcp[2:4], "big")
                self.evidence.answer_ttl.setdefault(port, packet.ttl)

    def opened(self, frame: bytes, ethertype: int) -> None:
        """A connection to port 80 opened here (a SYN sent with TTL 64)."""
        packet = _ip(frame, ethertype)
        if (packet is not None and packet.protocol == socket.IPPROTO_TCP
                and packet.ttl == DEFAULT_TTL and len(packet.payload) >= 14):
            tcp = packet.payload
            if tcp[13] & 0x12 == 0x02 and int.from_bytes(tcp[2:4], "big") == HTTP_PORT:
                self.evidence.opened.add(int.from_bytes(tcp[0:2], "big"))

    def _forwarded(self, found: dict[int, list[tuple[str, int]]], port: int, ttl: int) -> None:
        seen = found.setdefault(port, [])
        if all(node != self.node for node, _ in seen):  # a retransmission
            seen.append((self.node, ttl))

    def close(self) -> None:
        self.sock.close()

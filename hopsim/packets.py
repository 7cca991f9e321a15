"""Real packets (scapy): HTTP segments, ICMP Time Exceeded, pcap files.

What the engine puts on each link is one of these. Addresses, ports, sequence
numbers, checksums and timestamps are all deterministic, so the same trace
gives a byte-identical pcap that Wireshark dissects as HTTP on port 80.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.inet6 import ICMPv6TimeExceeded, IPv6
from scapy.packet import Packet, Raw
from scapy.utils import PcapReader, wrpcap

from hopsim.http import HTTP_PORT  # noqa: F401 (the port the packets carry)

# The quoted packet in an ICMP error: IPv4 quotes its header and 8 bytes
# (RFC 792); IPv6 as much as fits in the minimum MTU (RFC 4443).
_V4_QUOTE = 28
_V6_QUOTE = 1280 - 48


def segment(family: int, src: str, dst: str, sport: int, dport: int, *, ttl: int,
            seq: int, ack: int, payload: bytes, time: float) -> Packet:
    """One TCP segment carrying (part of) an HTTP message."""
    ip = IP(src=src, dst=dst, ttl=ttl) if family == 4 else IPv6(src=src, dst=dst, hlim=ttl)
    packet = ip / TCP(sport=sport, dport=dport, flags="PA", seq=seq, ack=ack,
                      window=64240) / Raw(payload)
    packet.time = time
    return packet


def ttl(packet: Packet) -> int:
    return packet[IP].ttl if IP in packet else packet[IPv6].hlim


def with_ttl(packet: Packet, value: int) -> Packet:
    """A copy of `packet` with its TTL (IPv6 hop limit) set; checksums follow."""
    copy = packet.copy()
    if IP in copy:
        copy[IP].ttl = value
        del copy[IP].chksum
    else:
        copy[IPv6].hlim = value
    return copy


def with_addresses(packet: Packet, *, src: str | None = None, dst: str | None = None) -> Packet:
    """A copy with its source or destination rewritten (NAT); checksums follow."""
    copy = packet.copy()
    layer = copy[IP] if IP in copy else copy[IPv6]
    if src is not None:
        layer.src = src
    if dst is not None:
        layer.dst = dst
    if IP in copy:
        del copy[IP].chksum
    del copy[TCP].chksum
    return copy


def source(packet: Packet) -> str:
    return packet[IP].src if IP in packet else packet[IPv6].src


def destination(packet: Packet) -> str:
    return packet[IP].dst if IP in packet else packet[IPv6].dst


def time_exceeded(router: str, dropped: Packet, time: float) -> Packet:
    """The ICMP Time Exceeded a router sends to the source of a packet it drops.

    IPv4: type 11 code 0; IPv6: type 3 code 0 (net/ipv4/ip_forward.c,
    net/ipv6/ip6_output.c: ip6_forward).
    """
    quoted = bytes(dropped)
    if IP in dropped:
        packet = IP(src=router, dst=dropped[IP].src, ttl=64) / ICMP(type=11, code=0) / Raw(
            quoted[:_V4_QUOTE])
    else:
        packet = IPv6(src=router, dst=dropped[IPv6].src, hlim=64) / ICMPv6TimeExceeded(
            code=0) / Raw(quoted[:_V6_QUOTE])
    packet.time = time
    return packet


def write_pcap(path: str | Path, packets: Iterable[Packet]) -> None:
    """Write packets without a link layer: LINKTYPE_IPV4 (228) for an IPv4
    trace, LINKTYPE_IPV6 (229) for an IPv6 one; Wireshark reads both."""
    wrpcap(str(path), _rebuilt(packets))


class _Kept(io.BytesIO):
    def close(self) -> None:  # wrpcap closes its file; the bytes are still wanted
        pass


def pcap_bytes(packets: Iterable[Packet]) -> bytes:
    """The pcap file write_pcap writes, as bytes (for an atomic write)."""
    buffer = _Kept()
    wrpcap(buffer, _rebuilt(packets))
    return buffer.getvalue()


def _rebuilt(packets: Iterable[Packet]) -> list[Packet]:
    # Build each packet once so the file holds final lengths and checksums.
    out = []
    for p in packets:
        built = p.__class__(bytes(p))
        built.time = p.time
        out.append(built)
    return out


def read_pcap(path: str | Path) -> list[Packet]:
    with PcapReader(str(path)) as reader:
        return list(reader)

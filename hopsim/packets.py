"""Real packets (scapy): HTTP segments, ICMP Time Exceeded, pcap files.

What the engine puts on each link is one of these. Addresses, ports, sequence
numbers, checksums and timestamps are all deterministic, so the same trace
gives a byte-identical pcap that Wireshark dissects as HTTP on port 80.
scapy (about 0.3 s of imports) is imported when a packet is first built or
read: a walk that records no hop never loads it.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scapy.packet import Packet

# The quoted packet in an ICMP error: IPv4 quotes its header and 8 bytes
# (RFC 792); IPv6 as much as fits in the minimum MTU (RFC 4443).
_V4_QUOTE = 28
_V6_QUOTE = 1280 - 48


@dataclass(frozen=True, slots=True)
class Segment:
    """A TCP segment carrying (part of) an HTTP message, as the walk moves it:
    what routers read and rewrite (TTL, addresses) and what the ends read
    (ports, payload). A plain value, so a walk that records nothing builds no
    scapy packet; `packet` builds one when a hop is recorded."""

    family: int
    src: str
    dst: str
    sport: int
    dport: int
    ttl: int
    seq: int
    ack: int
    payload: bytes

    def packet(self, time: float) -> Packet:
        """The real packet, as seen at `time`."""
        from scapy.layers.inet import IP, TCP
        from scapy.layers.inet6 import IPv6
        from scapy.packet import Raw

        ip = (IP(src=self.src, dst=self.dst, ttl=self.ttl) if self.family == 4 else
              IPv6(src=self.src, dst=self.dst, hlim=self.ttl))
        packet = ip / TCP(sport=self.sport, dport=self.dport, flags="PA", seq=self.seq,
                          ack=self.ack, window=64240) / Raw(self.payload)
        packet.time = time
        return packet


@dataclass(frozen=True, slots=True)
class TimeExceeded:
    """The ICMP Time Exceeded a router sends to the source of a packet it drops.

    IPv4: type 11 code 0; IPv6: type 3 code 0 (net/ipv4/ip_forward.c,
    net/ipv6/ip6_output.c: ip6_forward). It leaves with Linux's default TTL.
    """

    router: str
    dropped: Segment
    ttl: int = 64

    def packet(self, time: float) -> Packet:
        """The real packet, as seen at `time`, quoting the dropped one."""
        from scapy.layers.inet import ICMP, IP
        from scapy.layers.inet6 import ICMPv6TimeExceeded, IPv6
        from scapy.packet import Raw

        quoted = bytes(self.dropped.packet(time))
        if self.dropped.family == 4:
            packet = IP(src=self.router, dst=self.dropped.src, ttl=self.ttl) / ICMP(
                type=11, code=0) / Raw(quoted[:_V4_QUOTE])
        else:
            packet = IPv6(src=self.router, dst=self.dropped.src, hlim=self.ttl) / (
                ICMPv6TimeExceeded(code=0)) / Raw(quoted[:_V6_QUOTE])
        packet.time = time
        return packet


def ttl(packet: Packet) -> int:
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6

    return packet[IP].ttl if IP in packet else packet[IPv6].hlim


def source(packet: Packet) -> str:
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6

    return packet[IP].src if IP in packet else packet[IPv6].src


def destination(packet: Packet) -> str:
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6

    return packet[IP].dst if IP in packet else packet[IPv6].dst


def write_pcap(path: str | Path, packets: Iterable[Packet]) -> None:
    """Write packets without a link layer: LINKTYPE_IPV4 (228) for an IPv4
    trace, LINKTYPE_IPV6 (229) for an IPv6 one; Wireshark reads both."""
    from scapy.utils import wrpcap

    wrpcap(str(path), _rebuilt(packets))


class _Kept(io.BytesIO):
    def close(self) -> None:  # wrpcap closes its file; the bytes are still wanted
        pass


def pcap_bytes(packets: Iterable[Packet]) -> bytes:
    """The pcap file write_pcap writes, as bytes (for an atomic write)."""
    from scapy.utils import wrpcap

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
    from scapy.utils import PcapReader

    with PcapReader(str(path)) as reader:
        return list(reader)

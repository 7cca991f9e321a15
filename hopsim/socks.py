"""SOCKS5 CONNECT (RFC 1928), as a client asks a SOCKS relay for a destination.

Sans-I/O, beside hopsim/http.py: the bytes a client sends and how it reads
the relay's answers. No authentication (method 0x00): what microsocks, dante
and ssh -D accept by default.
"""

from __future__ import annotations

import ipaddress
import struct

VERSION = 5
NO_AUTHENTICATION = 0
CONNECT = 1
SUCCEEDED = 0
GREETING = bytes((VERSION, 1, NO_AUTHENTICATION))
METHOD_REPLY_SIZE = 2
REPLIES = {0: "succeeded", 1: "general SOCKS server failure",
           2: "connection not allowed by ruleset", 3: "network unreachable",
           4: "host unreachable", 5: "connection refused", 6: "TTL expired",
           7: "command not supported", 8: "address type not supported"}


class SocksRefused(ConnectionRefusedError):
    """The relay did not open the connection: its reply, or no reply at all."""


def connect_request(address: str, port: int) -> bytes:
    """CONNECT to an IPv4 or IPv6 address."""
    ip = ipaddress.ip_address(address)
    kind = 1 if ip.version == 4 else 4
    return bytes((VERSION, CONNECT, 0, kind)) + ip.packed + struct.pack(">H", port)


def check_method(reply: bytes) -> None:
    """The relay's choice of authentication method: only 'none' is spoken here."""
    if len(reply) < METHOD_REPLY_SIZE:
        raise SocksRefused("the SOCKS relay closed the connection without a reply")
    if reply[0] != VERSION or reply[1] != NO_AUTHENTICATION:
        raise SocksRefused(f"the SOCKS relay asks for method {reply[1]:#04x}, not 'none'")


def reply_size(head: bytes) -> int:
    """The whole CONNECT reply's size, from its first 5 bytes (the address type
    and, for a name, its length)."""
    kind = head[3]
    return 4 + {1: 4, 4: 16}.get(kind, 1 + head[4] if kind == 3 else 4) + 2


def check_reply(reply: bytes) -> None:
    """A CONNECT reply: SocksRefused unless it succeeded."""
    if len(reply) < 2:
        raise SocksRefused("the SOCKS relay closed the connection without a reply")
    if reply[0] != VERSION or reply[1] != SUCCEEDED:
        raise SocksRefused(f"SOCKS reply {reply[1]}: {REPLIES.get(reply[1], 'unknown')}")

"""A real IMDS over TCP, built on hopsim.imds.respond: the same pure rules
the simulator plays, behind a socket.

The hop limit is an IP TTL on the token response only ([C] docs/facts.md: "The
response to PUT requests has a response hop limit ... at the IP protocol
level"; [O] GET answers still arrive from a container at hop limit 1). So
the TTL is set on the connection's socket just before the token is written,
and every other answer leaves with the namespace's default, 64. The SYN-ACK
and the ACKs before it leave with 64 too: a bridged container's PUT connects,
then hangs, as observed (DataDog/datadog-agent#55269).

Run alone inside a namespace:  ip netns exec NS python -m hopsim.emulate --hop-limit 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass

from hopsim import imds
from hopsim.emulate.wire import Service, read_message
from hopsim.http import Request, Response, parse_request

READ_TIMEOUT = 2.0


def is_token(request: Request, response: Response) -> bool:
    # The query is not part of the path IMDS answers for (a request through a
    # product carries hopsim's flow mark there).
    return (request.method == "PUT" and request.path.split("?", 1)[0] == imds.TOKEN_PATH
            and response.status == 200)


def limit_ttl(sock: socket.socket, hop_limit: int) -> None:
    """Set the IP TTL (IPv6 unicast hop limit) of what `sock` sends from now on."""
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, hop_limit)
    else:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, hop_limit)


@dataclass(frozen=True)
class Received:
    """A request as it reached IMDS: what the relays on the way made of it."""

    peer: tuple[str, int]  # the address and port its connection came from
    raw: bytes  # its head and body, as sent

    @property
    def request(self) -> Request:
        return parse_request(self.raw)

    def header_names(self) -> list[str]:
        head = self.raw.partition(b"\r\n\r\n")[0].decode("utf-8", "replace")
        return [line.partition(":")[0].strip() for line in head.split("\r\n")[1:] if line]


class ImdsServer(Service):
    """One instance's metadata service. `settings` may change between
    requests (hopsim emulate sweeps the hop limit without rebuilding)."""

    def __init__(self, settings: imds.ImdsSettings, instance: str):
        super().__init__()
        self.settings = settings
        self.instance = instance
        self.received: list[Received] = []  # every request, in the order they came

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            raw = await read_message(reader, READ_TIMEOUT, request=True)
            request = parse_request(raw)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, OSError):
            return
        self.received.append(Received(writer.get_extra_info("peername")[:2], raw))
        response = imds.respond(request, self.settings, instance=self.instance, now=time.time())
        if is_token(request, response):
            limit_ttl(writer.get_extra_info("socket"), self.settings.hop_limit)
        try:
            writer.write(response.to_bytes())
            await writer.drain()
        except OSError:
            pass


def listener(family: int, address: str, port: int = 80) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if family == 6 else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == 6:  # beside an IPv4 listener on the same port
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((address, port))
    return sock


def main() -> None:
    parser = argparse.ArgumentParser(description="A real IMDSv2 endpoint on hopsim's rules.")
    parser.add_argument("--hop-limit", type=int, default=1)
    parser.add_argument("--http-tokens", choices=imds.HTTP_TOKENS, default="required")
    parser.add_argument("--http-endpoint", choices=imds.HTTP_ENDPOINT, default="enabled")
    parser.add_argument("--instance", default="instance", help="name tokens are bound to")
    parser.add_argument("--address", default=imds.IPV4_ENDPOINT)
    parser.add_argument("--port", type=int, default=80)
    args = parser.parse_args()
    settings = imds.ImdsSettings(args.hop_limit, args.http_tokens, args.http_endpoint)
    family = 6 if ":" in args.address else 4

    async def serve() -> None:
        server = ImdsServer(settings, args.instance)
        await server.start([listener(family, args.address, args.port)])
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())

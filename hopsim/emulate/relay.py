"""Real L7 relays: end the client's TCP connection, open a new one upstream.

The upstream connection is a new socket, so it leaves with the namespace's
default TTL (64): the hop limit protects only the segment between IMDS and
the first relay ([U] docs/facts.md, "L7 relays start the count again"). What a relay
passes on is decided by `RelayPolicy.upstream()` (hopsim.kinds), the rule the
simulator uses too, a pure function of the request and the client's address:

- a method not in `methods` is refused here, 405;
- `forwards_headers: false` sends only what the relay builds itself
  (method and path: no X-aws-ec2-metadata-token* headers);
- `adds_xff` adds or appends X-Forwarded-For with the address the client's
  connection came from (after any NAT);
- an upstream that does not answer in time gets the client a 504, as nginx
  does; one that cannot be reached, a 502.

Where a relay sends a connection is configuration, as an ALB's target group
or nginx's proxy_pass is: here the next station of the principal's route,
found from the flow's source port (see flows.py).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

from hopsim.emulate.flows import Flow, Flows
from hopsim.emulate.wire import Service, endpoint_host, read_message
from hopsim.http import Request, Response, parse_request
from hopsim.kinds import RelayPolicy

READ_TIMEOUT = 2.0

# (flow, leg index, timeout) -> a socket connected for that leg (or OSError, TimeoutError)
Connector = Callable[[Flow, int, float], Awaitable[socket.socket]]


def leg_count(flow: Flow) -> int:
    return len(flow.route.legs)


async def exchange(sock: socket.socket, payload: bytes, timeout: float) -> bytes:
    """Send `payload` on a connected socket and read one answer, within `timeout`."""
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        writer.write(payload)
        await writer.drain()
        return await read_message(reader, timeout)
    finally:
        writer.close()


class RelayListener(Service):
    """Every relay of one namespace (a linked relay, or the relays that run
    on a host), behind one listening address per family."""

    def __init__(self, policies: dict[str, RelayPolicy], flows: Flows, connect: Connector,
                 timeout_of: Callable[[Flow, int], float]):
        super().__init__()
        self.policies = policies
        self.flows = flows
        self.connect = connect
        self.timeout_of = timeout_of

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            raw = await read_message(reader, READ_TIMEOUT, request=True)
            response = await self.answer(parse_request(raw), peer[0], peer[1])
            writer.write(response)
            await writer.drain()
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, OSError):
            pass

    async def answer(self, request: Request, client: str, port: int) -> bytes:
        found = self.flows.at(port)
        if found is None or leg_count(found[0]) <= found[1] + 1:
            # A NAT changed the source port, or the flow has no route through
            # here: nowhere to send it, and the client is told so.
            return Response(502, (), "Bad Gateway: no route for this connection\n").to_bytes()
        flow, leg = found
        relay = flow.route.legs[leg][-1].actor
        policy = self.policies[relay]
        if not policy.allows(request.method):
            return policy.refusal().to_bytes()
        upstream = policy.upstream(request, client)
        timeout = self.timeout_of(flow, leg + 1)
        try:
            sock = await self.connect(flow, leg + 1, timeout)
        except (OSError, asyncio.TimeoutError):
            return Response(502, (), "Bad Gateway\n").to_bytes()
        try:
            return await exchange(sock, upstream.to_bytes(endpoint_host(flow.family)), timeout)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, OSError):
            return Response(504, (), "Gateway Timeout\n").to_bytes()

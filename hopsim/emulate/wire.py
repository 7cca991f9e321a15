"""Reading one HTTP/1.1 message from an asyncio stream, with a deadline.

The bytes are parsed by hopsim.http, the same sans-I/O code the simulator
puts into its packets.
"""

from __future__ import annotations

import asyncio
import socket

from hopsim import imds

MAX_HEAD = 64 * 1024


async def read_message(reader: asyncio.StreamReader, timeout: float, *,
                       request: bool = False) -> bytes:
    """The head and the body of one message: Content-Length bytes of it, or
    none for a request without one, or all until EOF for such a response."""

    async def read() -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > MAX_HEAD:
            raise ValueError("HTTP head too large")
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip() or b"0")
        if length is not None:
            body = await reader.readexactly(length)
        else:
            body = b"" if request else await reader.read()
        return head + body

    return await asyncio.wait_for(read(), timeout)


def endpoint_host(family: int) -> str:
    """The Host header SDKs send to IMDS."""
    return imds.IPV4_ENDPOINT if family == 4 else f"[{imds.IPV6_ENDPOINT}]"


class Service:
    """Listening sockets whose connections are served by `handle`; `stop`
    ends the connections still in flight, so a run finishes quietly."""

    def __init__(self) -> None:
        self.servers: list[asyncio.AbstractServer] = []
        self.tasks: set[asyncio.Task] = set()

    async def start(self, listeners: list[socket.socket]) -> None:
        for sock in listeners:
            sock.listen(128)
            self.servers.append(await asyncio.start_server(self._serve, sock=sock))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            await self.handle(reader, writer)
        except asyncio.CancelledError:
            pass
        finally:
            writer.close()
            self.tasks.discard(task)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

"""HTTP/1.1 messages as values, and their bytes on the wire.

Sans-I/O: nothing here opens a socket. The simulator puts these bytes in
scapy packets; a real server (the kernel emulator) can parse and write the
same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from http import HTTPStatus

HTTP_PORT = 80  # IMDS, and every relay here, on plain HTTP

Headers = tuple[tuple[str, str], ...]


def _find(headers: Headers, name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers:
        if key.lower() == wanted:
            return value
    return None


def _without(headers: Headers, name: str) -> Headers:
    wanted = name.lower()
    return tuple((k, v) for k, v in headers if k.lower() != wanted)


@dataclass(frozen=True)
class Request:
    """An HTTP request: method, path and headers in the order they are sent."""

    method: str
    path: str
    headers: Headers = ()
    body: str = ""

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        return _find(self.headers, name)

    def with_header(self, name: str, value: str) -> Request:
        """This request with `name` set to `value` (replacing earlier values)."""
        return replace(self, headers=_without(self.headers, name) + ((name, value),))

    def to_bytes(self, host: str) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}"]
        lines += [f"{k}: {v}" for k, v in self.headers if k.lower() != "host"]
        body = self.body.encode()
        if body or self.method in ("PUT", "POST"):
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass(frozen=True)
class Response:
    """An HTTP response. `body` is text/plain, as IMDS sends it."""

    status: int
    headers: Headers = field(default=())
    body: str = ""

    @property
    def phrase(self) -> str:
        return HTTPStatus(self.status).phrase

    def header(self, name: str) -> str | None:
        return _find(self.headers, name)

    def to_bytes(self) -> bytes:
        body = self.body.encode()
        lines = [f"HTTP/1.1 {self.status} {self.phrase}"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        lines += ["Content-Type: text/plain", f"Content-Length: {len(body)}", "Connection: close"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _split(raw: bytes) -> tuple[str, Headers, str]:
    head, _, body = raw.partition(b"\r\n\r\n")
    # UTF-8 both ways; bytes that are not UTF-8 survive as surrogates and
    # match no rule (a garbled digit is not a digit).
    first, *rest = head.decode("utf-8", "surrogateescape").split("\r\n")
    headers = tuple(
        (k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in rest) if k
    )
    return first, headers, body.decode("utf-8", "surrogateescape")


def parse_request(raw: bytes) -> Request:
    """Parse the bytes of one HTTP/1.1 request (the inverse of `Request.to_bytes`)."""
    first, headers, body = _split(raw)
    method, path, _version = first.split(" ", 2)
    headers = tuple(
        (k, v) for k, v in headers if k.lower() not in ("host", "content-length")
    )
    return Request(method, path, headers, body)


def parse_response(raw: bytes) -> Response:
    """Parse the bytes of one HTTP/1.1 response (the inverse of `Response.to_bytes`)."""
    first, headers, body = _split(raw)
    status = int(first.split(" ", 2)[1])
    framing = ("content-type", "content-length", "connection")
    return Response(status, tuple((k, v) for k, v in headers if k.lower() not in framing), body)

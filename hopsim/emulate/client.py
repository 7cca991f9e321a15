"""What an SDK does: the IMDSv2 flow, and the IMDSv1 fallback when it fails.

PUT /latest/api/token; with a token, GET the role credentials with it.
Without one (no answer in time, or a refusal), SDKs and attackers try a
tokenless GET ([C] docs/facts.md: SDKs fall back to IMDSv1): 200 there means
IMDSv1 credentials. Timeouts are short: in namespaces an answer takes
milliseconds, and a dropped token response never comes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hopsim import imds
from hopsim.emulate.flows import Flow
from hopsim.emulate.relay import Connector, exchange
from hopsim.emulate.wire import endpoint_host
from hopsim.http import Request, Response, parse_response
from hopsim.outcome import Access


@dataclass(frozen=True)
class Attempt:
    """One request as the client saw it."""

    flow: Flow
    response: Response | None
    error: str | None  # "no answer within 0.5 s", "Network is unreachable", ...
    elapsed: float

    def describe(self) -> str:
        if self.response is not None:
            return f"{self.response.status} {self.response.phrase}"
        return self.error or "no answer"


@dataclass
class Session:
    """A principal's whole exchange with IMDS, as its client lived it."""

    principal: str
    family: int
    put: Attempt | None = None
    with_token: Attempt | None = None
    fallback: Attempt | None = None
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def access(self) -> Access:
        """What the client holds, read off the bodies: a relay may answer 200
        with nothing in it (an SSRF app whose fetch failed)."""
        put, fallback = self.put, self.fallback
        if put and put.response and put.response.status == 200 and imds.is_token(
                put.response.body):
            return Access.TOKEN
        if (fallback and fallback.response and fallback.response.status == 200
                and imds.ROLE in fallback.response.body):
            return Access.CREDENTIALS
        return Access.NONE


def as_is(_flow: Flow, request: Request) -> Request:
    return request


async def fetch(open_flow: Callable[[str], Flow], connect: Connector, label: str,
                request: Request, timeout: float,
                address: Callable[[Flow, Request], Request] = as_is) -> Attempt:
    flow = open_flow(label)
    request = address(flow, request)
    start = time.monotonic()

    def attempt(response: Response | None, error: str | None) -> Attempt:
        return Attempt(flow, response, error, time.monotonic() - start)

    try:
        sock = await connect(flow, 0, timeout)
    except asyncio.TimeoutError:
        return attempt(None, f"no connection within {timeout:g} s")
    except OSError as error:
        return attempt(None, error.strerror or str(error))
    try:
        raw = await exchange(sock, request.to_bytes(endpoint_host(flow.family)), timeout)
        return attempt(parse_response(raw), None)
    except asyncio.TimeoutError:
        return attempt(None, f"no answer within {timeout:g} s")
    except (asyncio.IncompleteReadError, OSError, ValueError, IndexError) as error:
        return attempt(None, f"connection failed: {error}")


async def run(principal: str, family: int, open_flow: Callable[[str], Flow],
              connect: Connector, timeout: float,
              address: Callable[[Flow, Request], Request] = as_is) -> Session:
    """The IMDSv2 exchange of one principal, then the IMDSv1 fallback if needed.
    `address` makes each request what the first station on its flow takes."""
    session = Session(principal, family)
    session.put = await fetch(open_flow, connect, "PUT token", imds.token_request(), timeout,
                              address)
    session.attempts.append(session.put)
    if session.access is Access.TOKEN:
        token = session.put.response.body  # type: ignore[union-attr]
        session.with_token = await fetch(open_flow, connect, "GET with token",
                                         imds.credentials_request(token), timeout, address)
        session.attempts.append(session.with_token)
        return session
    session.fallback = await fetch(open_flow, connect, "GET without token",
                                   imds.credentials_request(None), timeout, address)
    session.attempts.append(session.fallback)
    return session

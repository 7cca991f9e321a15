"""What a principal ends up holding, why, and what that means: the values
every layer shares, and the two rules that read them.

The engine finds outcomes by walking packets, the emulator by measuring a
kernel, analysis counts them and the report layer words them
(hopsim.report.wording); none of them says again what makes an outcome bad
or why a token request failed: `bad` and `refusal_cause` below do.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import Enum

from hopsim.http import Request
from hopsim.imds import TTL_HEADER, XFF_HEADER


class _Word(str, Enum):
    """An enum whose members read as their value (as enum.StrEnum, Python 3.11+)."""

    __str__ = str.__str__
    __format__ = str.__format__


class Access(_Word):
    """What a principal holds at the end of its exchange."""

    TOKEN = "token"
    CREDENTIALS = "credentials"  # no token, but the IMDSv1 fallback GET got them
    NONE = "none"


class Role(_Word):
    """What a principal may hold: the topology file's `role:`. Declared in the
    order of what matters most: an attacker's leak outranks a starved workload."""

    ATTACKER = "attacker"  # must hold nothing
    WORKLOAD = "workload"  # must hold a token


class Verdict(_Word):
    OK = "ok"
    LEAK = "leak"  # an attacker holds a token or credentials
    BROKEN = "broken"  # a workload lacks a token


FAILS = {Role.ATTACKER: Verdict.LEAK, Role.WORKLOAD: Verdict.BROKEN}  # what a bad one makes


def bad(role: Role | str | None, access: Access) -> bool:
    """The verdict rule: an attacker holding anything, a workload without a token."""
    if role == Role.ATTACKER:
        return access is not Access.NONE
    return role == Role.WORKLOAD and access is not Access.TOKEN


def verdict(bad_roles: set[Role] | frozenset[Role]) -> Verdict:
    """The verdict of a topology whose bad principals have these roles."""
    return next((FAILS[role] for role in Role if role in bad_roles), Verdict.OK)


class Cause(_Word):
    """What kept the token from a principal."""

    TTL = "ttl"  # the token response died at a router: the hop limit
    METHOD = "method"  # a relay refused the PUT, or sent it as a GET: the PUT requirement
    XFF = "x-forwarded-for"  # a relay added X-Forwarded-For: IMDS refused the PUT
    TTL_HEADER = "ttl-header"  # a relay dropped the ttl header: IMDS answered 400
    DISABLED = "endpoint-disabled"  # http_endpoint: disabled
    UNREACHABLE = "unreachable"  # no route to IMDS (or IMDS not on IPv6)
    FILTERED = "filtered"  # a packet filter rule dropped or rejected the connection
    CLOSED = "relay-closed"  # a relay or user-space stack opened no connection to IMDS
    OTHER = "other"


def refusal_cause(status: int | None, *, refused: bool, arrived: Request | None,
          disabled: bool) -> Cause:
    """Why an answered token request got no token, when no router dropped the
    answer and no filter stopped the connection: the one rule, for the walk
    and for the kernel. `status`: the answer the principal got (None: none
    came); `refused`: a relay answered the PUT itself; `arrived`: the token
    request as IMDS received it (None: it never got there); `disabled`: that
    IMDS has http_endpoint disabled."""
    if status is None:
        return Cause.OTHER
    if refused:
        return Cause.METHOD
    if arrived is None:
        return Cause.OTHER
    if arrived.method != "PUT":  # a relay sent it on as a GET (an SSRF fetch)
        return Cause.METHOD
    if status == 403 and disabled:
        return Cause.DISABLED
    if status == 403 and arrived.header(XFF_HEADER) is not None:
        return Cause.XFF
    if status == 400 and arrived.header(TTL_HEADER) is None:
        return Cause.TTL_HEADER
    return Cause.OTHER


@dataclass(frozen=True)
class Outcome:
    """What one principal ends up holding at one hop limit, and why: values
    only (hopsim.report.wording says them in words)."""

    node: str
    role: Role | None
    family: int
    access: Access
    hop_limit: int | None = None  # the hop limit of the imds it reached
    routers: int | None = None  # routers between IMDS and the token's receiver
    receiver: str | None = None  # who the token response is sent to: principal or relay
    dropped_at: str | None = None  # the router that dropped the token response
    cause: Cause | None = None  # what kept the token away (None: it holds one)
    by: tuple[str, ...] = ()  # the relays that did it, for METHOD, XFF, TTL_HEADER
    status: int | None = None  # the HTTP status that refused the token request
    allowed: str | None = None  # the methods a relay that refused the PUT passes
    sent_as: str | None = None  # the method a relay turned the PUT into (an SSRF app's GET)
    unreachable: str | None = None  # why there is no way to IMDS
    fallback: int | None = None  # the IMDSv1 fallback GET's status (0: none came, None: not sent)
    waited: bool = False  # the principal waited out a timeout before that GET
    path: tuple[str, ...] = ()  # the request's stations but bridges, principal to IMDS
    forwarded: tuple[str, ...] = ()  # the routers that forwarded the token response, from IMDS
    filtered_at: str | None = None  # the node whose filter rule stopped the token request
    filter: str | None = None  # that rule ("forward to imds: drop"), and what it hit
    observed: str | None = None  # measured on a kernel: what was seen there, in words

    @property
    def bad(self) -> bool:
        return bad(self.role, self.access)

    def but(self, **changes: object) -> Outcome:
        """This outcome with `changes`, made without __init__: a sweep makes
        one outcome per principal and hop limit from outcomes already made,
        where dataclasses.replace would set every field again, one by one."""
        assert changes.keys() <= _FIELDS, changes.keys() - _FIELDS
        copy = object.__new__(Outcome)
        object.__setattr__(copy, "__dict__", {**self.__dict__, **changes})
        return copy


_FIELDS = frozenset(f.name for f in fields(Outcome))

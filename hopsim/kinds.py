"""What each node kind does to a packet: one table of behaviour.

Facts behind it (docs/facts.md): Linux forwarding decrements the TTL
and drops at TTL <= 1 with an ICMP Time Exceeded [C]; bridges never touch the
TTL [C]; NATs and tunnels decrement like routers [U]; relays (L7 and L4) end the
TCP connection and re-send with their own TTL, 64 [M]; an L4 relay passes the
bytes it is given, so IMDS sees the client's request unchanged [M]. The
generic relays' defaults are the ones that protect least: a relay whose
behaviour a file does not state is not assumed to add X-Forwarded-For
(nginx, HAProxy, tinyproxy and Apache's forward proxy do not [M]); a named
product sets them all (hopsim.products).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from http import HTTPStatus

from hopsim.http import Request, Response
from hopsim.imds import XFF_HEADER
from hopsim.outcome import Role


class Layer(Enum):
    ENDPOINT = "endpoint"  # sends and receives; forwards only if a forwarding host
    L2 = "L2"  # passes frames, never touches the TTL
    L3 = "L3"  # routes: TTL -1, drop at TTL <= 1
    L4 = "L4"  # ends TCP, passes the bytes, re-sends with a fresh TTL (socat, SOCKS)
    L7 = "L7"  # ends TCP, re-sends the HTTP request with a fresh TTL

    @property
    def ends_tcp(self) -> bool:
        """Ends the client's TCP connection and opens its own (a relay): a
        route is cut into legs here, and the TTL starts afresh."""
        return self in _ENDS_TCP


_ENDS_TCP = frozenset({Layer.L4, Layer.L7})


ANY_METHOD = None


@dataclass(frozen=True)
class RelayPolicy:
    """What an L7 relay lets through and adds."""

    methods: tuple[str, ...] | None  # None: any method
    adds_xff: bool
    forwards_headers: bool
    refusal_status: int = 405  # its answer to a method it does not pass (ModSecurity: 403)
    sends_method: str | None = None  # the method it always sends upstream (an SSRF fetch: GET)
    # It opens no connection to the metadata addresses: the client's connection
    # is closed without an answer (block_imds on a relay; a stack that refuses).
    refuses_imds: bool = False

    def allows(self, method: str) -> bool:
        return self.methods is None or method in self.methods

    def refusal(self) -> Response:
        """The answer to a method it does not pass."""
        if self.refusal_status == 405:
            return Response(405, (("Allow", ", ".join(self.methods or ())),),
                            "Method Not Allowed\n")
        return Response(self.refusal_status, (), f"{HTTPStatus(self.refusal_status).phrase}\n")

    def upstream(self, request: Request, client: str) -> Request:
        """The request it sends on for `request`, received from address `client`.

        With sends_method it sends that method whatever it received (PHP's
        file_get_contents GETs); without forwards_headers it builds its own
        headers (an SSRF fetch: no X-aws-ec2-metadata-token*); with adds_xff it adds the client to
        X-Forwarded-For, after any earlier relay's entry.
        """
        method = self.sends_method or request.method
        upstream = (replace(request, method=method) if self.forwards_headers
                    else Request(method, request.path))
        if self.adds_xff:
            previous = upstream.header(XFF_HEADER)
            upstream = upstream.with_header(XFF_HEADER,
                                            f"{previous}, {client}" if previous else client)
        return upstream


@dataclass(frozen=True)
class Kind:
    """One node kind: its layer and defaults."""

    name: str
    layer: Layer
    principal: bool  # plays the IMDSv2 exchange itself
    summary: str
    relay: RelayPolicy | None = None  # defaults, for L7 relays
    masquerades: bool = False
    keys: frozenset[str] = frozenset()  # keys of its own, beside the common ones
    can_run_on_host: bool = False


# Every node with an IP stack has a routing table (a bridge has none).
_TABLE = frozenset({"gateway", "routes", "filters"})  # and packet filters (hopsim.filters)
_RELAY_KEYS = frozenset({"methods", "adds_xff", "forwards_headers", "product", "mode",
                         "intercepts"}) | _TABLE
_L4_KEYS = frozenset({"product", "mode", "block_imds"}) | _TABLE
# What an L4 relay or a user-space network stack does to an HTTP request: it
# passes the bytes, so any method, every header, no X-Forwarded-For [M].
PASS_BYTES = RelayPolicy(ANY_METHOD, adds_xff=False, forwards_headers=True)
IMDS_KEYS = ("hop_limit", "http_tokens", "http_endpoint", "ipv6")

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("imds", Layer.ENDPOINT, False, "the instance's metadata service",
             keys=frozenset(IMDS_KEYS) | {"instance"} | _TABLE),
        Kind("host", Layer.ENDPOINT, True,
             "an instance or VM; routes between its links only with forwarding: true",
             keys=frozenset({"forwarding", "masquerade", "block_imds", "network", "version"})
             | _TABLE, can_run_on_host=True),  # runs_on only with network: (a VM)
        Kind("container", Layer.ENDPOINT, True, "a workload in its own network namespace",
             keys=frozenset({"replicas", "block_imds", "network", "version"}) | _TABLE,
             can_run_on_host=True),
        Kind("client", Layer.ENDPOINT, True, "anything outside: a user, another VPC, an attacker",
             keys=frozenset({"replicas", "block_imds"}) | _TABLE),
        Kind("bridge", Layer.L2, False, "docker0, cni0, a switch: never touches the TTL"),
        Kind("router", Layer.L3, False, "routes: TTL -1, drop at TTL <= 1", keys=_TABLE),
        Kind("nat", Layer.L3, False, "routes and masquerades: TTL -1, source rewritten",
             masquerades=True, keys=frozenset({"masquerade"}) | _TABLE),
        Kind("tunnel", Layer.L3, False, "a VPN or overlay endpoint: routes the inner packet",
             keys=_TABLE),
        Kind("relay", Layer.L4, False, "an L4 relay (socat, ssh -L or -D, HAProxy mode tcp, "
             "nginx stream, SOCKS): passes the bytes, re-sends with TTL 64",
             relay=PASS_BYTES, keys=_L4_KEYS, can_run_on_host=True),
        Kind("proxy", Layer.L7, False, "a reverse or forward proxy: re-sends with TTL 64",
             relay=RelayPolicy(ANY_METHOD, adds_xff=False, forwards_headers=True),
             keys=_RELAY_KEYS, can_run_on_host=True),
        Kind("waf", Layer.L7, False, "a web application firewall: GET, HEAD, POST only",
             relay=RelayPolicy(("GET", "HEAD", "POST"), adds_xff=False, forwards_headers=True),
             keys=_RELAY_KEYS, can_run_on_host=True),
        Kind("ssrf", Layer.L7, False, "a vulnerable app fetching attacker URLs: GET only",
             relay=RelayPolicy(("GET",), adds_xff=False, forwards_headers=False),
             keys=_RELAY_KEYS, can_run_on_host=True),
    )
}

ROLES = (Role.WORKLOAD.value, Role.ATTACKER.value)  # as a file writes them, in that order
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
# The kinds of a layer, or that end TCP, or principals: for passes over every
# node of a fleet, a set lookup where a Kind's field would be read per node.
KINDS_AT: dict[Layer, frozenset[str]] = {
    layer: frozenset(k for k, spec in KINDS.items() if spec.layer is layer) for layer in Layer}
ENDS_TCP_KINDS = frozenset(k for k, spec in KINDS.items() if spec.layer.ends_tcp)
PRINCIPAL_KINDS = frozenset(k for k, spec in KINDS.items() if spec.principal)
# Kinds whose node may carry the link to an imds node: an instance, whatever it does.
INSTANCE_KINDS = frozenset({"host", "router", "nat", "tunnel"})

"""Flows: one HTTP request of one principal, across every leg of its route.

Each leg of a flow (one TCP connection: principal -> relay -> ... -> IMDS)
gets a source port of its own, never reused while the namespaces live. The
port is the flow's name on the wire: masquerade keeps a source port when it
is unique (nf_nat tries the original tuple first), so a relay knows which
route an incoming connection follows, and an ICMP Time Exceeded, which
quotes the dropped packet's ports, names the flow whose answer died.
"""

from __future__ import annotations

from dataclasses import dataclass

from hopsim.routing import Route

FIRST_PORT, LAST_PORT = 20000, 60999


@dataclass(frozen=True)
class Flow:
    principal: str
    label: str  # "PUT token", "GET with token", "GET without token"
    family: int
    route: Route
    ports: tuple[int, ...]  # one per leg

    @property
    def last_port(self) -> int:
        """The port of the leg that reaches IMDS: the one the hop limit acts on."""
        return self.ports[-1]


class Flows:
    """Allocates ports to flows and finds a flow by a port."""

    def __init__(self) -> None:
        self._next = FIRST_PORT
        self._by_port: dict[int, tuple[Flow, int]] = {}

    def open(self, principal: str, label: str, family: int, route: Route) -> Flow:
        legs = max(1, len(route.legs))
        if self._next + legs > LAST_PORT:
            raise RuntimeError("out of flow ports: emulate fewer hop limits per run")
        ports = tuple(range(self._next, self._next + legs))
        self._next += legs
        flow = Flow(principal, label, family, route, ports)
        for leg, port in enumerate(ports):
            self._by_port[port] = (flow, leg)
        return flow

    def at(self, port: int) -> tuple[Flow, int] | None:
        """The flow and leg index whose connection uses source port `port`."""
        return self._by_port.get(port)

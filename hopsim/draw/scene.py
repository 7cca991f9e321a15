"""What a picture of a topology shows, as values: no geometry, no format.

Each node with its kind, its distance from IMDS and, for a principal, what it
holds; each link with the TTLs the token response had when it crossed it, in
each direction, and where one died. The SVG, PNG and Mermaid renderers all
draw the same Scene.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from hopsim.analysis import configured_hop_limit, judge
from hopsim.engine import Action, Exchange, Hop, play
from hopsim.kinds import Layer
from hopsim.outcome import Access, Cause, Outcome, Verdict
from hopsim.report.wording import finding
from hopsim.routing import Router
from hopsim.topology import Topology


class Shape(str, Enum):
    """How a node is drawn: one shape per way of treating a packet."""

    IMDS = "imds"
    ENDPOINT = "endpoint"  # host, container, client: sends and receives
    BRIDGE = "bridge"  # L2: the TTL is untouched
    ROUTER = "router"  # L3: TTL -1, drop at TTL <= 1 (routers, tunnels, forwarding hosts)
    NAT = "nat"  # L3 that also rewrites addresses
    RELAY = "relay"  # L7: re-sends with a fresh TTL


SHAPE_MEANING = {
    Shape.IMDS: "IMDS, 169.254.169.254",
    Shape.ENDPOINT: "host, container, client",
    Shape.BRIDGE: "L2 bridge: TTL unchanged",
    Shape.ROUTER: "L3 router: TTL -1, drops at 1",
    Shape.NAT: "NAT: TTL -1, rewrites addresses",
    Shape.RELAY: "L7 relay: re-sends with TTL 64",
}

def shape_meaning(shape: Shape, places: Iterable[Place]) -> str:
    """A shape's legend line: a relay's names the layers of the relays drawn
    (an L4 relay passes bytes, an L7 one reads HTTP; both re-send at TTL 64)."""
    if shape is not Shape.RELAY:
        return SHAPE_MEANING[shape]
    layers = {"L4" if p.kind == "relay" else "L7" for p in places if p.shape is Shape.RELAY}
    if layers == {"L4"}:
        return "L4 relay: re-sends with TTL 64"
    if layers == {"L4", "L7"}:
        return "relay (L4 or L7): re-sends with TTL 64"
    return SHAPE_MEANING[shape]


KIND_TEXT = {"bridge": "bridge, L2", "router": "router, L3", "nat": "NAT, L3",
             "tunnel": "tunnel, L3", "proxy": "proxy, L7", "waf": "WAF, L7",
             "ssrf": "SSRF app, L7", "relay": "relay, L4 (re-sends at TTL 64)"}


@dataclass(frozen=True)
class Place:
    """One node as drawn."""

    name: str
    kind: str
    shape: Shape
    layer: int  # links from the nearest imds (a node that runs on a host: the host's)
    detail: str  # "host, routes + NAT", "hop limit 1, tokens required"
    runs_on: str | None = None
    role: str | None = None
    outcome: Outcome | None = None  # for a principal
    drops: tuple[str, ...] = ()  # principals whose token response died here
    network: str | None = None  # its user-space stack, which re-opens its connections

    @property
    def attachment(self) -> str:
        """How it sits on its runs_on node, in words (renderers and titles)."""
        if self.network:
            return f"its {self.network} re-sends from {self.runs_on} at TTL 64"
        return f"runs on {self.runs_on}"

    @property
    def finding(self) -> str | None:
        """'leak' for an attacker holding anything, 'starved' for a workload
        without a token."""
        o = self.outcome
        if o is None:
            return None
        return finding(o.role, o.access)

    @property
    def outcome_text(self) -> str | None:
        o = self.outcome
        if o is None:
            return None
        if o.access is Access.TOKEN:
            text = "token" if o.receiver in (None, o.node) else f"token via {o.receiver}"
        elif o.access is Access.CREDENTIALS:
            text = "IMDSv1 credentials"
        else:
            text = "none" + {
                Cause.TTL: f", dropped at {o.dropped_at}",
                Cause.METHOD: f", {o.by[0] if o.by else 'a relay'} refuses PUT",
                Cause.XFF: ", IMDS refuses XFF",
                Cause.TTL_HEADER: ", ttl header lost",
                Cause.DISABLED: ", IMDS disabled",
                Cause.UNREACHABLE: ", unreachable",
                Cause.FILTERED: f", filtered at {o.filtered_at}",
                Cause.CLOSED: f", {o.by[0] if o.by else 'a relay'} refuses IMDS",
            }.get(o.cause, "")  # type: ignore[arg-type]
        finding = self.finding
        return f"{finding.upper()}: {text}" if finding else text

    @property
    def drop_text(self) -> str | None:
        if not self.drops:
            return None
        return f"drops the token of {', '.join(self.drops)} (TTL 1)"


@dataclass(frozen=True)
class Wire:
    """A link, `a` the end nearer IMDS; what the token response did on it."""

    a: str
    b: str
    outward: tuple[int, ...] = ()  # TTLs of token responses crossing a -> b
    inward: tuple[int, ...] = ()  # TTLs crossing b -> a
    dropped_at: tuple[str, ...] = ()  # the ends where a token response that crossed it died
    passed: tuple[str, ...] = ()  # the ends a token response reached and went on from

    @property
    def crossed(self) -> bool:
        return bool(self.outward or self.inward)


@dataclass(frozen=True)
class Scene:
    topology: str
    hop_limit: int | None  # None: the imds nodes have different hop limits
    drawn: tuple[str, ...]  # the principals whose token responses are drawn
    every_principal: bool
    verdict: Verdict
    verdict_reason: str
    places: tuple[Place, ...]
    wires: tuple[Wire, ...]

    @property
    def title(self) -> str:
        limit = f"hop limit {self.hop_limit}" if self.hop_limit else "configured hop limits"
        return f"{self.topology} at {limit}"

    @property
    def subtitle(self) -> str:
        whose = "every principal's token response" if self.every_principal else (
            f"{self.drawn[0]}'s token response")
        return f"TTL of {whose} on each link it crosses"

    @property
    def place(self) -> dict[str, Place]:
        return {p.name: p for p in self.places}

    def describe(self) -> str:
        """The picture in words, for screen readers."""
        lines = [f"{self.title}. Verdict {self.verdict.value}: {self.verdict_reason}."]
        for p in self.places:
            if p.outcome is not None:
                lines.append(f"{p.name} ({p.detail}) holds {p.outcome_text}.")
        for w in self.wires:
            for ttl in w.outward:
                lines.append(f"Token response {w.a} to {w.b} with TTL {ttl}.")
            for ttl in w.inward:
                lines.append(f"Token response {w.b} to {w.a} with TTL {ttl}.")
        for p in self.places:
            if p.drops:
                lines.append(f"{p.name} {p.drop_text}.")
        return " ".join(lines)


def shape_of(topology: Topology, name: str) -> Shape:
    node = topology.nodes[name]
    layer = node.spec.layer
    if node.kind == "imds":
        return Shape.IMDS
    if layer is Layer.L2:
        return Shape.BRIDGE
    if layer.ends_tcp:
        return Shape.RELAY
    if node.forwards:
        return Shape.NAT if node.rewrites_source else Shape.ROUTER
    return Shape.ENDPOINT


def _detail(topology: Topology, name: str) -> str:
    """The line under a node's name: what it is (and how many, for copies)."""
    count = topology.nodes[name].replicas
    text = _what(topology, name)
    return f"{text}, ×{count:,}" if count > 1 else text


def _what(topology: Topology, name: str) -> str:
    node = topology.nodes[name]
    if node.imds is not None:
        s = node.imds
        text = f"hop limit {s.hop_limit}, tokens {s.http_tokens}"
        if s.http_endpoint == "disabled":
            text += ", disabled"
        return text + (", IPv6" if s.ipv6 else "")
    if node.kind in KIND_TEXT:
        return KIND_TEXT[node.kind]
    text = node.kind + (f" on {node.network}" if node.network else "")
    if node.kind == "host" and node.forwarding:
        text += ", routes" + (" + NAT" if node.masquerade else "")
    if node.role:
        text += f", {node.role}"
    return text + (", IPv6" if node.family == 6 else "")


def layers(topology: Topology) -> dict[str, int]:
    """Links from the nearest imds node; a node that runs on a host takes the
    host's; a node no link reaches comes one after the farthest."""
    graph = topology.graph
    dist: dict[str, int] = {n: 0 for n in topology.imds_nodes}
    queue = deque(topology.imds_nodes)
    while queue:
        here = queue.popleft()
        for there in sorted(graph.neighbors(here)):
            if there not in dist:
                dist[there] = dist[here] + 1
                queue.append(there)
    far = max(dist.values(), default=-1) + 1
    for name in sorted(topology.nodes):
        host = topology.nodes[name].runs_on
        if name not in dist:
            dist[name] = dist.get(host, far) if host else far
    return dist


def _token_hops(exchange: Exchange) -> list[Hop]:
    """The hops of the token response (IMDS's 200 to the PUT), wherever it went."""
    hops = []
    for hop in exchange.hops:
        if hop.message.endswith("(token)") and hop.action not in (Action.ICMP, Action.TIMEOUT):
            hops.append(hop)
        elif hops and not hop.message.endswith("(token)"):
            break
    return hops


def build(topology: Topology, principals: Sequence[str] | None = None,
          exchanges: Mapping[str, Exchange] | None = None) -> Scene:
    """The scene of `topology` at its (what-if) hop limit: every principal's
    outcome, and the token responses of `principals` (default: all).
    `exchanges`: every principal's recorded exchange, when the caller has
    played them already."""
    if exchanges is None:
        router = Router(topology)
        exchanges = {p: play(topology, p, record=True, router=router)
                     for p in topology.principals}
    drawn = tuple(principals) if principals else tuple(topology.principals)
    layer = layers(topology)
    crossings: dict[tuple[str, str], set[int]] = {}
    deaths: dict[tuple[str, str], int] = {}  # token responses that died at `to`
    passes: dict[tuple[str, str], int] = {}  # ... and that did not
    drops: dict[str, list[str]] = {}

    def location(name: str) -> str:
        return topology.nodes[name].runs_on or name

    for principal in drawn:
        previous = None
        for hop in _token_hops(exchanges[principal]):
            here = location(hop.node)
            if hop.action is not Action.SEND and previous and previous != here:
                crossings.setdefault((previous, here), set()).add(hop.ttl_in or 0)
                tally = deaths if hop.action is Action.DROP else passes
                tally[previous, here] = tally.get((previous, here), 0) + 1
            if hop.action is Action.DROP:
                drops.setdefault(hop.node, []).append(principal)
            previous = here
    wires = []
    for x, y in topology.links:
        a, b = sorted((x, y), key=lambda n: (layer[n], n))
        ends = ((a, b), (b, a))
        wires.append(Wire(a, b, tuple(sorted(crossings.get((a, b), ()))),
                          tuple(sorted(crossings.get((b, a), ()))),
                          tuple(to for frm, to in ends if deaths.get((frm, to))),
                          tuple(to for frm, to in ends if passes.get((frm, to)))))
    places = []
    for name in sorted(topology.nodes, key=lambda n: (layer[n], n)):
        node = topology.nodes[name]
        outcome = exchanges[name].outcome if name in exchanges else None
        places.append(Place(name, node.kind, shape_of(topology, name), layer[name],
                            _detail(topology, name), node.runs_on, node.role, outcome,
                            tuple(drops.get(name, ())), node.network))
    verdict, reason = judge(e.outcome for e in exchanges.values())
    return Scene(topology.name, configured_hop_limit(topology), drawn,
                 principals is None or set(drawn) == set(topology.principals),
                 verdict, reason, tuple(places), tuple(wires))


def shapes_in(places: Iterable[Place]) -> list[Shape]:
    present = {p.shape for p in places}
    return [s for s in Shape if s in present]

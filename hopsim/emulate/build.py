"""Topology -> Plan: the namespaces, veths, addresses, routes, sysctls and
nftables rules that make a Linux kernel forward exactly where the simulator
forwards. Pure: nothing here touches the system (netns.py does).

The plan is made from the same `Topology` and `Router` the simulator uses:

- one namespace per node that has links (imds, host, container, client,
  router, nat, tunnel, linked L7 relay, bridge); a node that `runs_on` a host
  lives in the host's namespace, with the host's addresses;
- a veth pair per link; a bridge node is a Linux bridge over its veths;
- every node has ONE address per family (the simulator's `address` /
  `address6`), put as a /32 (/128) on each of its interfaces, and only host
  routes: for every leg of every principal's route, a route to the leg's
  end at each L3 station (towards the next L3 station), and a route back to
  the request's source as it arrives there (after any NAT on the way), so
  replies and ICMP errors retrace the path. No subnets, no default routes:
  the kernel has no way to forward anywhere the simulator does not;
- forwarding on only where the simulator routes (`Node.routes`);
- nftables masquerade where the simulator rewrites sources
  (`Node.rewrites_source`: nat nodes, masquerading forwarding hosts).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from hopsim import imds
from hopsim.routing import Role, Route, Router, Station
from hopsim.topology import Topology

MAX_NAMESPACES = 64
FAMILIES = (4, 6)
BRIDGE_DEVICE = "br0"
KERNEL_DEFAULT_TTL = 64  # what relays and every non-token answer leave with

# Per-namespace sysctls, written before any interface exists so `default`
# reaches every veth. New namespaces inherit IPv4 settings from the root
# namespace (net.core.devconf_inherit_init_net=0), so each one is set, not
# assumed.
COMMON_SYSCTLS = (
    # A /32-per-interface design has no "right" interface for rp_filter to check.
    ("net/ipv4/conf/all/rp_filter", "0"),
    ("net/ipv4/conf/default/rp_filter", "0"),
    # Redirects would teach hosts shortcuts the simulator does not take.
    ("net/ipv4/conf/all/send_redirects", "0"),
    ("net/ipv4/conf/default/send_redirects", "0"),
    ("net/ipv4/conf/all/accept_redirects", "0"),
    ("net/ipv4/conf/default/accept_redirects", "0"),
    ("net/ipv6/conf/all/accept_redirects", "0"),
    ("net/ipv6/conf/default/accept_redirects", "0"),
    # Addresses usable at once: no duplicate address detection, no router adverts.
    ("net/ipv6/conf/all/accept_dad", "0"),
    ("net/ipv6/conf/default/accept_dad", "0"),
    ("net/ipv6/conf/all/accept_ra", "0"),
    ("net/ipv6/conf/default/accept_ra", "0"),
    ("net/ipv6/conf/all/disable_ipv6", "0"),
    ("net/ipv6/conf/default/disable_ipv6", "0"),
    # The TTL every packet but the token response starts with (docs/facts.md: 64).
    ("net/ipv4/ip_default_ttl", str(KERNEL_DEFAULT_TTL)),
    ("net/ipv6/conf/all/hop_limit", str(KERNEL_DEFAULT_TTL)),
    ("net/ipv6/conf/default/hop_limit", str(KERNEL_DEFAULT_TTL)),
    # Linux rate-limits ICMP errors per destination (1/s after a burst of 6):
    # every Time Exceeded goes to the same IMDS address, and each one names
    # a dropping node, so none may be skipped.
    ("net/ipv4/icmp_ratelimit", "0"),
    ("net/ipv6/icmp/ratelimit", "0"),
)


class PlanError(Exception):
    """The topology cannot be emulated as asked (too big, or the kernel
    would need two routes where it can have one)."""


@dataclass(frozen=True)
class KernelRoute:
    """A host route in one namespace: `destination` out of `device`, through
    the neighbour `via` (None: the destination is the neighbour)."""

    destination: str
    device: str
    via: str | None = None

    @property
    def family(self) -> int:
        return 6 if ":" in self.destination else 4

    def line(self) -> str:
        prefix = 128 if self.family == 6 else 32
        via = f" via {self.via}" if self.via else ""
        onlink = " onlink" if self.via else ""
        return f"route add {self.destination}/{prefix}{via} dev {self.device}{onlink}"


@dataclass(frozen=True)
class Veth:
    """A veth pair: created in `ns_a` with its peer placed in `ns_b` at once,
    so no end ever exists in the root namespace."""

    ns_a: str
    if_a: str
    ns_b: str
    if_b: str


@dataclass
class Namespace:
    name: str  # the netns name, under the run's prefix
    node: str  # the topology node whose stack it is
    kind: str
    forwards: bool = False
    masquerades: bool = False
    address: str | None = None  # None: a bridge, which has no address
    address6: str | None = None
    interfaces: dict[str, str] = field(default_factory=dict)  # neighbour node -> device
    routes: dict[str, KernelRoute] = field(default_factory=dict)  # destination -> route
    hosted: tuple[str, ...] = ()  # nodes that run_on this one

    @property
    def is_bridge(self) -> bool:
        return self.kind == "bridge"

    def addresses(self, family: int) -> list[str]:
        address = self.address if family == 4 else self.address6
        return [address] if address else []

    def sysctls(self) -> list[tuple[str, str]]:
        forwarding = "1" if self.forwards else "0"
        return [("net/ipv4/ip_forward", forwarding),
                ("net/ipv6/conf/all/forwarding", forwarding), *COMMON_SYSCTLS]

    def nft_ruleset(self) -> str | None:
        """Masquerade what this node forwards: the source of every forwarded
        new connection becomes this node's address, as the simulator's NAT
        does; conntrack restores replies."""
        if not self.masquerades:
            return None
        rules = []
        if self.address:
            rules.append(f"    ip saddr != {self.address} masquerade")
        if self.address6:
            rules.append(f"    ip6 saddr != {self.address6} masquerade")
        return ("table inet hopsim {\n  chain postrouting {\n"
                "    type nat hook postrouting priority srcnat; policy accept;\n"
                + "\n".join(rules) + "\n  }\n}\n")

    def link_lines(self, veths: list[Veth]) -> list[str]:
        return [f"link add {v.if_a} type veth peer name {v.if_b} netns {v.ns_b}"
                for v in veths if v.ns_a == self.name]

    def config_lines(self, ipv6_endpoint: bool) -> list[str]:
        """Everything after the veths exist: bridge, addresses, up, routes."""
        lines = ["link set lo up"]
        devices = sorted(self.interfaces.values())
        if self.is_bridge:
            lines.append(f"link add {BRIDGE_DEVICE} type bridge stp_state 0 mcast_snooping 0")
            lines += [f"link set {d} master {BRIDGE_DEVICE}" for d in devices]
            lines.append(f"link set {BRIDGE_DEVICE} up")
        for device in devices:
            if self.address:
                lines.append(f"addr add {self.address}/32 dev {device}")
            if self.address6 and (self.kind != "imds" or ipv6_endpoint):
                lines.append(f"addr add {self.address6}/128 dev {device} nodad")
            lines.append(f"link set {device} up")
        if not devices and not self.is_bridge:  # a node without links: its address on lo
            lines += [f"addr add {a}/{32 if f == 4 else 128} dev lo"
                      for f in FAMILIES for a in self.addresses(f)]
        lines += [r.line() for _, r in sorted(self.routes.items())]
        return lines


@dataclass
class Plan:
    """Everything needed to build one topology in network namespaces."""

    topology: Topology
    prefix: str
    namespaces: dict[str, Namespace]  # by node, for nodes with links
    veths: list[Veth]
    routes: dict[str, Route]  # the Router's route of every principal

    def namespace_of(self, node: str) -> Namespace:
        """The namespace whose stack `node` uses (its host's if it runs_on one)."""
        return self.namespaces[self.topology.nodes[node].runs_on or node]

    def address(self, station: Station, family: int) -> str:
        """The address a station sends from and is reached at, as in the engine."""
        if station.role is Role.IMDS:
            return imds.IPV4_ENDPOINT if family == 4 else imds.IPV6_ENDPOINT
        node = self.topology.nodes[station.actor]
        return node.address if family == 4 else node.address6

    def node_at(self, address: str) -> str | None:
        """The node (with links) that owns `address`: how an ICMP source is named."""
        for ns in self.namespaces.values():
            if address in (ns.address, ns.address6):
                return ns.node
        return None

    def ipv6_endpoint(self, node: str) -> bool:
        settings = self.topology.nodes[node].imds
        return bool(settings and settings.ipv6)

    def commands(self) -> Iterator[str]:
        """The plan as shell commands, in the order netns.build runs them."""
        for ns in self.namespaces.values():
            yield f"ip netns add {ns.name}"
        for ns in self.namespaces.values():
            for key, value in ns.sysctls():
                yield f"ip netns exec {ns.name} sysctl -qw {key.replace('/', '.')}={value}"
        for ns in self.namespaces.values():
            for line in ns.link_lines(self.veths):
                yield f"ip -n {ns.name} {line}"
        for ns in self.namespaces.values():
            for line in ns.config_lines(self.ipv6_endpoint(ns.node)):
                yield f"ip -n {ns.name} {line}"
            ruleset = ns.nft_ruleset()
            if ruleset:
                yield f"ip netns exec {ns.name} nft -f - <<'EOF'\n{ruleset}EOF"


def namespace_count(topology: Topology) -> int:
    return sum(1 for node in topology.nodes.values() if not node.runs_on)


def _netns_name(prefix: str, index: int, node: str) -> str:
    # Node names are free text; netns names are file names under /run/netns.
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", node)[:24]
    return f"{prefix}{index}-{safe}"


def plan(topology: Topology, prefix: str, router: Router | None = None) -> Plan:
    """The namespaces, links and routes for `topology`, named under `prefix`."""
    count = namespace_count(topology)
    if count > MAX_NAMESPACES:
        raise PlanError(f"{topology.name} needs {count} network namespaces; hopsim emulates "
                        f"at most {MAX_NAMESPACES} (use the simulator for larger designs)")
    router = router or Router(topology)
    namespaces: dict[str, Namespace] = {}
    for index, name in enumerate(sorted(n for n, node in topology.nodes.items()
                                        if not node.runs_on)):
        node = topology.nodes[name]
        bridge = node.kind == "bridge"
        is_imds = node.kind == "imds"
        namespaces[name] = Namespace(
            name=_netns_name(prefix, index, name), node=name, kind=node.kind,
            forwards=node.routes, masquerades=node.rewrites_source,
            address=None if bridge else (imds.IPV4_ENDPOINT if is_imds else node.address),
            address6=None if bridge else (imds.IPV6_ENDPOINT if is_imds else node.address6),
            hosted=tuple(sorted(n for n, x in topology.nodes.items() if x.runs_on == name)),
        )
    for name, ns in namespaces.items():
        neighbours = sorted(topology.graph.neighbors(name))
        ns.interfaces = {peer: f"eth{i}" for i, peer in enumerate(neighbours)}
    veths = [Veth(namespaces[a].name, namespaces[a].interfaces[b],
                  namespaces[b].name, namespaces[b].interfaces[a])
             for a, b in topology.links]
    built = Plan(topology, prefix, namespaces, veths, {})
    for principal in topology.principals:
        route = router.route(principal)
        built.routes[principal] = route
        if route.unreachable:
            continue
        for leg in route.legs:
            for family in FAMILIES:
                _route_leg(built, leg, family)
    return built


def _where(plan: Plan, station: Station) -> str:
    """The node with links whose namespace a station is in."""
    return plan.topology.nodes[station.node].runs_on or station.node


def _route_leg(plan: Plan, leg: tuple[Station, ...], family: int) -> None:
    """Host routes for one leg (one TCP connection), both directions.

    Forward: at each L3 station, the leg's end via the next L3 station.
    Back: at each L3 station, the request's source as it arrived there (a
    masquerading station replaces it with its own address for the rest of
    the leg), via the previous L3 station.
    """
    destination = plan.address(leg[-1], family)
    source = plan.address(leg[0], family)
    stops = [i for i, s in enumerate(leg) if s.role is not Role.BRIDGE]
    for i, j in itertools.pairwise(stops):
        here, there = _where(plan, leg[i]), _where(plan, leg[j])
        if here == there:  # a relay on the host the leg starts from: a local connection
            continue
        next_address, previous_address = plan.address(leg[j], family), plan.address(leg[i], family)
        _add(plan, here, KernelRoute(
            destination, plan.namespaces[here].interfaces[_where(plan, leg[i + 1])],
            None if next_address == destination else next_address))
        _add(plan, there, KernelRoute(
            source, plan.namespaces[there].interfaces[_where(plan, leg[j - 1])],
            None if previous_address == source else previous_address))
        station = leg[j]
        if station.role is Role.ROUTE and plan.topology.nodes[station.node].rewrites_source:
            source = plan.address(station, family)


def _add(plan: Plan, node: str, route: KernelRoute) -> None:
    ns = plan.namespaces[node]
    if route.destination in (ns.address, ns.address6):
        return  # delivered locally: no route needed
    known = ns.routes.get(route.destination)
    if known is not None and known != route:
        raise PlanError(
            f"{plan.topology.name}: {node} would need two routes to {route.destination} "
            f"({known.line()} and {route.line()}); the kernel routes by destination only, "
            "so this topology cannot be emulated as is")
    ns.routes[route.destination] = route

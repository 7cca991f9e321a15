"""Topology -> Plan: the namespaces, veths, addresses, routes, sysctls and
nftables rules that let a Linux kernel route the topology by itself. Pure:
nothing here touches the system (netns.py does).

The plan is made from the same `Topology` and the same per-node tables
(`Router`) the simulator uses, and from nothing a principal's route says:

- one namespace per node that has links (imds, host, container, client,
  router, nat, tunnel, linked L7 relay, bridge); a node that `runs_on` a host
  lives in the host's namespace;
- a veth pair per link; a bridge node is a Linux bridge over its veths;
- a subnet per L2 segment (10.128.S.0/24, fd00:77:0:S::/64), an address in it
  on each interface of each node on the segment; imds also holds
  169.254.169.254 (and fd00:ec2::254 with ipv6: true);
- on every node, a route to every segment it is not on, and to the IMDS
  endpoint, through the next hop its table names: the kernel then routes
  every request, reply and ICMP error by itself, by destination;
- forwarding on per family, where the node forwards that family;
- nftables masquerade out of the links the node masquerades on.

The simulator gives each node one address; here a node has one per
interface, as Linux does. Outcomes, drops and paths are compared by node,
never by address.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import networkx as nx

from hopsim import imds
from hopsim.filters import IMDS, Filter
from hopsim.imds import DEFAULT_TTL
from hopsim.routing import DIRECT, FAMILIES, Route, Router
from hopsim.topology import Topology

MAX_NAMESPACES = 64
BRIDGE_DEVICE = "br0"

# Per-namespace sysctls, written before any interface exists so `default`
# reaches every veth. New namespaces inherit IPv4 settings from the root
# namespace (net.core.devconf_inherit_init_net=0), so each one is set, not
# assumed.
COMMON_SYSCTLS = (
    # A reply may come back on another interface than its request left by
    # (routing is per destination): strict reverse-path filtering would drop it.
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
    ("net/ipv4/ip_default_ttl", str(DEFAULT_TTL)),
    ("net/ipv6/conf/all/hop_limit", str(DEFAULT_TTL)),
    ("net/ipv6/conf/default/hop_limit", str(DEFAULT_TTL)),
    # Linux rate-limits ICMP errors per destination (1/s after a burst of 6):
    # every Time Exceeded goes to the same IMDS address, and each one names
    # a dropping node, so none may be skipped.
    ("net/ipv4/icmp_ratelimit", "0"),
    ("net/ipv6/icmp/ratelimit", "0"),
)


class PlanError(Exception):
    """The topology cannot be emulated as asked (too big, or a loop of bridges)."""


@dataclass(frozen=True)
class KernelRoute:
    """A route in one namespace: `destination` (a prefix) out of `device`,
    through the neighbour `via` (None: on the link)."""

    destination: str
    device: str
    via: str | None = None
    kind: str = ""  # "blackhole": a route that discards (block_imds)

    @property
    def family(self) -> int:
        return 6 if ":" in self.destination else 4

    def line(self) -> str:
        if self.kind:
            return f"route add {self.kind} {self.destination}"
        via = f" via {self.via}" if self.via else ""
        return f"route add {self.destination}{via} dev {self.device}"


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
    forwards: frozenset[int] = frozenset()  # the families it forwards
    interfaces: dict[str, str] = field(default_factory=dict)  # neighbour node -> device
    # device -> (IPv4 address/prefix, IPv6 address/prefix): its segment addresses
    addresses: dict[str, tuple[str, str]] = field(default_factory=dict)
    endpoint: tuple[str, ...] = ()  # imds: the metadata addresses it answers on
    masquerade: tuple[str, ...] = ()  # devices it masquerades out of
    routes: list[KernelRoute] = field(default_factory=list)
    hosted: tuple[str, ...] = ()  # nodes that run_on this one
    # chain (input, forward, output) -> its nftables rules, from the node's `filters:`
    filters: dict[str, list[str]] = field(default_factory=dict)
    intercepts: bool = False  # DNAT what it routes to the metadata address to itself

    @property
    def is_bridge(self) -> bool:
        return self.kind == "bridge"

    def own(self, family: int) -> list[str]:
        """Its addresses of `family`, without prefix lengths."""
        return [pair[0 if family == 4 else 1].split("/")[0] for pair in self.addresses.values()]

    def sysctls(self) -> list[tuple[str, str]]:
        return [("net/ipv4/ip_forward", "1" if 4 in self.forwards else "0"),
                ("net/ipv6/conf/all/forwarding", "1" if 6 in self.forwards else "0"),
                *COMMON_SYSCTLS]

    def nft_ruleset(self) -> str | None:
        """Masquerade what this node forwards out of its masquerading links
        (the source becomes that interface's address; conntrack restores
        replies), and its packet filters, one base chain per hook."""
        chains = "".join(
            f"  chain {chain} {{\n    type filter hook {chain} priority filter; policy accept;\n"
            + "".join(f"    {rule}\n" for rule in rules) + "  }\n"
            for chain, rules in self.filters.items())
        if self.intercepts:  # kube2iam's rule: what arrives for IMDS goes to the local relay
            chains += ("  chain prerouting {\n    type nat hook prerouting priority dstnat; "
                       "policy accept;\n"
                       f'    iifname != "lo" ip daddr {imds.IPV4_ENDPOINT} tcp dport 80 '
                       "redirect to :80\n"
                       f'    iifname != "lo" ip6 daddr {imds.IPV6_ENDPOINT} tcp dport 80 '
                       "redirect to :80\n  }\n")
        if not self.masquerade:
            return f"table inet hopsim {{\n{chains}}}\n" if chains else None
        devices = ", ".join(f'"{d}"' for d in self.masquerade)
        rules = [f"    oifname {{ {devices} }} ip saddr != {{ {', '.join(self.own(4))} }} "
                 "masquerade",
                 f"    oifname {{ {devices} }} ip6 saddr != {{ {', '.join(self.own(6))} }} "
                 "masquerade"]
        return ("table inet hopsim {\n  chain postrouting {\n"
                "    type nat hook postrouting priority srcnat; policy accept;\n"
                + "\n".join(rules) + "\n  }\n" + chains + "}\n")

    def link_lines(self, veths: list[Veth]) -> list[str]:
        return [f"link add {v.if_a} type veth peer name {v.if_b} netns {v.ns_b}"
                for v in veths if v.ns_a == self.name]

    def config_lines(self) -> list[str]:
        """Everything after the veths exist: bridge, addresses, up, routes."""
        lines = ["link set lo up"]
        devices = sorted(self.interfaces.values())
        if self.is_bridge:
            lines.append(f"link add {BRIDGE_DEVICE} type bridge stp_state 0 mcast_snooping 0")
            lines += [f"link set {d} master {BRIDGE_DEVICE}" for d in devices]
            lines.append(f"link set {BRIDGE_DEVICE} up")
        for device in devices:
            if device in self.addresses:
                v4, v6 = self.addresses[device]
                lines.append(f"addr add {v4} dev {device}")
                lines.append(f"addr add {v6} dev {device} nodad")
                for address in self.endpoint:
                    prefix = 128 if ":" in address else 32
                    lines.append(f"addr add {address}/{prefix} dev {device}"
                                 + (" nodad" if prefix == 128 else ""))
            lines.append(f"link set {device} up")
        lines += [r.line() for r in self.routes]
        return lines


@dataclass
class Plan:
    """Everything needed to build one topology in network namespaces."""

    topology: Topology
    prefix: str
    namespaces: dict[str, Namespace]  # by node, for nodes with links
    veths: list[Veth]
    routes: dict[str, Route]  # the simulator's route of every principal (for comparison)
    router: Router

    def namespace_of(self, node: str) -> Namespace:
        """The namespace whose stack `node` uses (its host's if it runs_on one)."""
        return self.namespaces[self.topology.nodes[node].runs_on or node]

    def address_on(self, node: str, segment: int, family: int) -> str:
        """`node`'s address on `segment` (its host's, if it runs on one)."""
        return _address(segment, self.router.segments[segment].members.index(
            self.topology.nodes[node].runs_on or node), family)

    def destination(self, place: str | None, sender: str, family: int) -> str:
        """The address `sender` connects to to reach the relay at `place` (or
        IMDS, None): its address on the segment the sender's table reaches it
        by; from the relay's own stack, the address its other clients use."""
        if place is None or place in self.router.imds:
            return imds.IPV4_ENDPOINT if family == 4 else imds.IPV6_ENDPOINT
        sender = self.topology.nodes[sender].runs_on or sender
        if sender == place:
            return self.service_address(place, family)
        hops = self.router.path(sender, family, frozenset({place}), deliver=place)
        if isinstance(hops, str) or not hops:
            return self.service_address(place, family)
        return self.address_on(place, hops[-1][1], family)

    def service_address(self, place: str, family: int) -> str:
        """The address a relay's clients reach it on: that of the segment the
        first of them (by name) arrives on, else its first segment's."""
        for _, route in sorted(self.routes.items()):
            for leg in route.legs if route.stations else ():
                sender = self.topology.nodes[leg[0].actor].runs_on or leg[0].actor
                if leg[-1].node == place and sender != place:
                    return self.destination(place, leg[0].actor, family)
        segments = self.router.segments_of(place)
        if not segments:
            return "127.0.0.1" if family == 4 else "::1"
        return self.address_on(place, segments[0], family)

    def node_at(self, address: str) -> str | None:
        """The node (with links) that owns `address`: how an ICMP source is named."""
        for ns in self.namespaces.values():
            if address in ns.own(4) or address in ns.own(6) or address in ns.endpoint:
                return ns.node
        return None

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
            for line in ns.config_lines():
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


_SUBNETS4 = ipaddress.ip_network("10.128.0.0/9")
_SUBNETS6 = ipaddress.ip_network("fd00:77::/48")


def subnet(segment: int, family: int) -> str:
    """The segment's subnet: 10.128.S.0/24, fd00:77:0:S::/64."""
    if family == 4:
        return str(ipaddress.ip_network((int(_SUBNETS4.network_address) + (segment << 8), 24)))
    return str(ipaddress.ip_network((int(_SUBNETS6.network_address) + (segment << 64), 64)))


def _address(segment: int, member: int, family: int) -> str:
    network = ipaddress.ip_network(subnet(segment, family))
    return str(network.network_address + member + 1)


def plan(topology: Topology, prefix: str, router: Router | None = None) -> Plan:
    """The namespaces, links and routes for `topology`, named under `prefix`."""
    count = namespace_count(topology)
    if count > MAX_NAMESPACES:
        raise PlanError(f"{topology.name} needs {count} network namespaces; hopsim emulates "
                        f"at most {MAX_NAMESPACES} (use the simulator for larger designs)")
    router = router or Router(topology)
    graph = topology.graph
    bridges = [n for n, node in topology.nodes.items() if node.kind == "bridge"]
    loops = nx.cycle_basis(graph.subgraph(bridges))
    if loops:
        raise PlanError(f"{topology.name}: the bridges {', '.join(sorted(loops[0]))} form a "
                        "loop; the emulator's bridges run no spanning tree, so a loop would "
                        "flood (the simulator treats the segment as one hop)")
    namespaces: dict[str, Namespace] = {}
    for index, name in enumerate(sorted(n for n, node in topology.nodes.items()
                                        if not node.runs_on)):
        node = topology.nodes[name]
        endpoint: tuple[str, ...] = ()
        if node.kind == "imds":
            endpoint = (imds.IPV4_ENDPOINT,) + (
                (imds.IPV6_ENDPOINT,) if node.imds and node.imds.ipv6 else ())
        namespaces[name] = Namespace(
            name=_netns_name(prefix, index, name), node=name, kind=node.kind,
            forwards=node.forwards, endpoint=endpoint, intercepts=name in router.interceptors,
            hosted=tuple(sorted(n for n, x in topology.nodes.items() if x.runs_on == name)),
        )
    for name, ns in namespaces.items():
        neighbours = sorted(graph.neighbors(name))
        ns.interfaces = {peer: f"eth{i}" for i, peer in enumerate(neighbours)}
        if ns.is_bridge:
            continue
        node = topology.nodes[name]
        for peer, device in ns.interfaces.items():
            segment = router.link_segment(name, peer)
            ns.addresses[device] = tuple(  # type: ignore[assignment]
                f"{_address(segment, router.segments[segment].members.index(name), f)}/"
                f"{24 if f == 4 else 64}" for f in FAMILIES)
            if node.masquerades_to(peer):
                ns.masquerade += (device,)
    for name, ns in namespaces.items():
        for rule in topology.nodes[name].filters:
            ns.filters.setdefault(rule.chain, []).extend(_nft_rules(namespaces, ns, rule,
                                                                    topology))
    veths = [Veth(namespaces[a].name, namespaces[a].interfaces[b],
                  namespaces[b].name, namespaces[b].interfaces[a])
             for a, b in topology.links]
    built = Plan(topology, prefix, namespaces, veths, {}, router)
    for ns in namespaces.values():
        if not ns.is_bridge:
            ns.routes = _table(built, ns)
    for principal in topology.principals:
        built.routes[principal] = router.route(principal)
    return built


STACK_UIDS = 200000  # the first uid a user-space stack runs as (stacks.py), one per stack
SSH_SESSION_UID = 65534  # sshd opens a forward from the session of its user, nobody
RELAY_UIDS = 300000  # the first uid a relay named by an owner rule runs as (products.py)
# Relays that need nothing of root's once started (no files of their own, no
# workers to drop to): run as a uid of their own when an owner rule names them.
OWN_UID_PRODUCTS = ("microsocks", "socat")


def owner_uid(topology: Topology, name: str) -> int:
    """The uid whose sockets are `name`'s: a user-space stack runs as a uid of
    its own; sshd's forwards are opened by its user's session (nobody); socat and
    microsocks run as a uid of their own when a rule names them. Other relays run
    as root here (or in hopsim's own process): PlanError."""
    node = topology.nodes[name]
    if node.network:
        return STACK_UIDS + sorted(n for n, x in topology.nodes.items() if x.network).index(name)
    if node.product == "ssh":
        shared = [n for n, x in topology.nodes.items() if n != name and x.product == "ssh"
                  and x.runs_on == node.runs_on]
        if shared:
            raise PlanError(f"{topology.name}: owner: {name} is not emulated: {name} and "
                            f"{shared[0]} share one sshd here, whose sessions are one user's "
                            "(nobody), so a rule on its uid would match both")
        return SSH_SESSION_UID
    if node.product in OWN_UID_PRODUCTS:
        return RELAY_UIDS + sorted(n for n, x in topology.nodes.items()
                                   if x.product in OWN_UID_PRODUCTS).index(name)
    raise PlanError(f"{topology.name}: owner: {name} is not emulated: the emulator runs "
                    f"{node.product or 'this relay'} as root, so no rule can tell its sockets "
                    "from the host's (a user-space stack or sshd's forwards can)")


def _nft_rules(namespaces: dict[str, Namespace], ns: Namespace, rule: Filter,
               topology: Topology) -> list[str]:
    """One `filters:` rule as nftables rules (one per family where it matches
    addresses). Only TCP is matched: the exchange is TCP, and the ICMP
    errors that name a dropping router are the emulator's evidence, which a
    rule for all protocols would also drop."""
    match = ["meta l4proto tcp"]
    if rule.owner is not None:  # whose socket: the uid it runs as
        match.append(f"meta skuid {owner_uid(topology, rule.owner)}")
    if rule.source is not None and rule.source in ns.interfaces:
        match.append(f'iifname "{ns.interfaces[rule.source]}"')
        source = None
    else:
        source = rule.source
    verdict = "drop" if rule.action == "drop" else "reject with tcp reset"
    if source is None and rule.destination is None:
        return [" ".join([*match, verdict])]
    rules = []
    for family, word in ((4, "ip"), (6, "ip6")):
        parts = list(match)
        if source is not None:
            sources = namespaces[source].own(family)
            if not sources:  # a node without links sends nothing: the rule matches nothing
                continue
            parts.append(f"{word} saddr {{ {', '.join(sources)} }}")
        if rule.destination == IMDS:
            endpoint = imds.IPV4_ENDPOINT if family == 4 else imds.IPV6_ENDPOINT
            parts.append(f"{word} daddr {endpoint}")
        elif rule.destination is not None:
            there = namespaces[rule.destination].own(family)
            if not there:
                continue
            parts.append(f"{word} daddr {{ {', '.join(there)} }}")
        rules.append(" ".join([*parts, verdict]))
    return rules


def _table(plan: Plan, ns: Namespace) -> list[KernelRoute]:
    """The node's routing table as kernel routes: each segment it is not on,
    and the IMDS endpoint, through the next hop its own table names."""
    router, name = plan.router, ns.node
    own = set(router.segments_of(name))
    routes = []
    for family in FAMILIES:
        for segment in router.segments:
            if segment.index in own:
                continue
            hop = router.next_hop(name, family, segment.index)
            if hop is not None:
                routes.append(_kernel_route(plan, ns, subnet(segment.index, family), hop,
                                            family))
        endpoint = imds.IPV4_ENDPOINT + "/32" if family == 4 else imds.IPV6_ENDPOINT + "/128"
        if name in router.blocked:  # block_imds: what ECS_AWSVPC_BLOCK_IMDS installs
            routes.append(KernelRoute(endpoint, "", kind="blackhole"))
        elif ns.kind != "imds" and router.imds:
            hop = router.next_hop(name, family, router.imds)
            if hop is not None:
                routes.append(_kernel_route(plan, ns, endpoint, hop, family))
    return routes


def _kernel_route(plan: Plan, ns: Namespace, destination: str, hop: tuple[str, int],
                  family: int) -> KernelRoute:
    there, segment = hop
    device = next(d for peer, d in sorted(ns.interfaces.items())
                  if plan.router.link_segment(ns.node, peer) == segment)
    if there == DIRECT or there in plan.router.imds:
        return KernelRoute(destination, device)  # on the link (imds holds the endpoint)
    return KernelRoute(destination, device, plan.address_on(there, segment, family))

"""The values a topology file becomes: Node, Topology, the located Problem and
its errors. Data only, so the simulator and the emulator can read the same."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from hopsim.filters import Filter
from hopsim.imds import ImdsSettings
from hopsim.kinds import KINDS, KINDS_AT, PRINCIPAL_KINDS, Kind, Layer, RelayPolicy
from hopsim.topology.reader import nearest

if TYPE_CHECKING:
    import networkx as nx

# How sure a fact cited in a description is (docs/facts.md, "The markers").
FACT_MARKERS = {"C": "confirmed in a primary source", "O": "observed in public reports",
                "U": "uncertain, an assumption", "M": "measured on a real kernel"}
FACT_MARKER = re.compile(r"\s*\[([COUM])\]")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file, where it is and what was expected."""

    file: str
    line: int | None
    key: str
    message: str
    option: str = ""  # the command-line option at fault ("--set nginx.adds_xff"), if any

    @property
    def what(self) -> str:
        """What is wrong, without where in the file: "--set x.y: ..." or "key: ..."."""
        if self.option or self.key:
            return f"{self.option or self.key}: {self.message}"
        return self.message

    def __str__(self) -> str:
        if self.option:  # the file is fine; the command line is not
            return f"{self.option} ({self.file}): {self.message}"
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class TopologyError(Exception):
    """A file that cannot be loaded; carries every problem found in it."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = tuple(problems)
        super().__init__("\n".join(map(str, self.problems)))


class NotATopology(Exception):
    """A file found in a folder that is some other YAML or JSON: skipped, not
    an error (see is_topology)."""

    def __init__(self, file: str, why: str):
        super().__init__(f"{file}: not a topology ({why}), skipped")
        self.file, self.why = file, why


@dataclass(frozen=True)
class Node:
    name: str
    kind: str
    address: str
    address6: str
    role: str | None = None
    runs_on: str | None = None
    via: tuple[str, ...] = ()
    family: int = 4
    forwarding: bool | str = False  # True, False, "ipv4" or "ipv6", as written
    masquerade: bool | tuple[str, ...] = False  # or the neighbours it masquerades towards
    relay: RelayPolicy | None = None
    imds: ImdsSettings | None = None
    description: str = ""
    instance: str | None = None  # an imds node's real instance, for --settings
    product: str | None = None  # the real relay it is (hopsim.products)
    mode: str | None = None  # reverse or forward, for a product that is both
    replicas: int = 1  # the identical copies it stands for: its own times its unit's count
    gateway: str | None = None  # its default route's next hop, as written
    routes: tuple[tuple[str, str], ...] = ()  # (destination, next hop), as written
    filters: tuple[Filter, ...] = ()  # its packet filter rules, in order (hopsim.filters)
    block_imds: bool = False  # blackhole routes for the metadata addresses here
    intercepts: bool = False  # its host DNATs what it routes to IMDS to this relay
    # The user-space stack (hopsim.products.STACKS) that ends its connections and
    # re-opens them in runs_on's stack, as an L4 relay would; None: the kernel's.
    network: str | None = None
    version: str | None = None  # that stack's version, where behaviour changed

    @property
    def spec(self) -> Kind:
        return KINDS[self.kind]

    @property
    def is_principal(self) -> bool:
        return self.spec.principal

    @property
    def passes_bytes(self) -> bool:
        """An L4 relay or a user-space network stack: it passes the bytes and
        never answers in HTTP itself (no 502, no 504: it closes, or waits)."""
        return self.network is not None or self.spec.layer is Layer.L4

    @property
    def forwards(self) -> frozenset[int]:
        """The IP families it forwards at L3 (decrementing the TTL)."""
        kind = self.kind  # (asked for 100,000s of times: no Kind read)
        if kind == "host":
            return _FORWARDS[self.forwarding]
        return _BOTH if kind in _ROUTING else _NEITHER

    @property
    def rewrites_source(self) -> bool:
        """Masquerades what it forwards out of at least one of its links."""
        return bool(self.forwards) and bool(self.spec.masquerades or self.masquerade)

    def masquerades_to(self, neighbour: str) -> bool:
        """Rewrites the source of what it forwards out of its link to `neighbour`."""
        if not self.rewrites_source:
            return False
        if isinstance(self.masquerade, tuple):
            return neighbour in self.masquerade
        return True


_BOTH, _NEITHER = frozenset({4, 6}), frozenset()
_NONE: Mapping[str, Node] = {}
_ROUTING = KINDS_AT[Layer.L3]
_FORWARDS = {True: _BOTH, False: _NEITHER, "ipv4": frozenset({4}), "ipv6": frozenset({6})}


class Nodes(Mapping[str, Node]):
    """A topology's nodes by name, each Node made when it is first read.

    A fleet has 100,000s of nodes written in a few thousand ways (the same
    kind, keys and values but for the name: a host's containers, its
    bridged apps). `like[name]` is the Node those nodes share: every field
    is `name`'s (kind, role, family, relay, imds, runs_on, replicas ...) but
    its name and addresses, which are None there. What reads every node
    (routing, path classes, counting) reads `like` and `where`; a Node of a
    node's own, with its name and addresses, is made when something reads
    `nodes[name]` (a report, a walk), and kept.

    Nodes given whole (Nodes.whole: an edited copy, a test's) are their own
    `like`."""

    __slots__ = ("_addresses", "_changed", "_groups", "_made", "like")

    def __init__(self, like: dict[str, Node], groups: Sequence[tuple[Node, Sequence[str]]] | None,
                 addresses: Callable[[str], tuple[str, str]] | None = None,
                 made: dict[str, Node] | None = None, changed: Mapping[str, Node] = _NONE):
        self.like = like  # name -> the Node of the nodes written as it is
        # (that Node, the names written so), together every name; None: each
        # node is its own (Nodes given whole)
        self._groups = groups
        self._addresses = addresses  # name -> (IPv4, IPv6 address)
        # The Nodes made so far, shared with the copies that changed others
        # (a sweep's copies at hop limits 1 and 64), and this copy's own.
        self._made = {} if made is None else made
        self._changed = changed

    @classmethod
    def whole(cls, nodes: Mapping[str, Node]) -> Nodes:
        """Nodes already made, each standing for itself."""
        if isinstance(nodes, Nodes):
            return nodes
        made = dict(nodes)
        return cls(made, None, made=made)

    def __getitem__(self, name: str) -> Node:
        node = self._changed.get(name) or self._made.get(name)
        if node is None:
            like = self.like[name]
            if like.name == name:
                return like
            assert self._addresses is not None, name
            values = like.__dict__.copy()  # every field, in order; its own filled in
            values["name"] = name
            values["address"], values["address6"] = self._addresses(name)
            node = self._made[name] = checked_node(values)
        return node

    def addresses(self, name: str) -> tuple[str, str]:
        """A node's IPv4 and IPv6 addresses, without making its Node (a walk
        addresses its packets)."""
        node = self._changed.get(name) or self._made.get(name)
        if node is None:
            node = self.like[name]
            if node.name != name:
                assert self._addresses is not None, name
                return self._addresses(name)
        return node.address, node.address6

    def __contains__(self, name: object) -> bool:
        return name in self.like

    def __iter__(self) -> Iterator[str]:
        return iter(self.like)

    def __len__(self) -> int:
        return len(self.like)

    def where(self, test: Callable[[Node], bool]) -> list[str]:
        """The names of the nodes whose `like` passes `test`, asked once per
        way of writing a node; in no particular order."""
        if self._groups is None:
            return [name for name, node in self.like.items() if test(node)]
        names: list[str] = []
        for like, members in self._groups:
            if test(like):
                names += members
        return names

    def by_shape(self, test: Callable[[Node], bool]) -> list[tuple[Node, Sequence[str]]]:
        """Each way of writing a node whose Node passes `test`, with the names
        of the nodes written so; in no particular order."""
        if self._groups is None:
            return [(node, (name,)) for name, node in self.like.items() if test(node)]
        return [(like, members) for like, members in self._groups if members and test(like)]

    @property
    def copies(self) -> int:
        """The nodes the topology stands for: each node's replicas, summed."""
        if self._groups is None:
            return sum(node.replicas for node in self.like.values())
        return sum(like.replicas * len(members) for like, members in self._groups)

    def changed(self, nodes: Mapping[str, Node]) -> Nodes:
        """These nodes with `nodes` (whole Nodes, of names it has) in place of
        theirs; the others' Nodes made so far are shared."""
        groups: list[tuple[Node, Sequence[str]]] | None = None
        if self._groups is not None:
            replaced = {id(self.like[name]) for name in nodes}
            groups = [group if id(group[0]) not in replaced else
                      (group[0], [n for n in group[1] if n not in nodes])
                      for group in self._groups]
            groups += [(node, (name,)) for name, node in nodes.items()]
        return Nodes({**self.like, **nodes}, groups, self._addresses, self._made,
                     {**self._changed, **nodes})

    def __repr__(self) -> str:
        shapes = len(self) if self._groups is None else len(self._groups)
        return f"Nodes({len(self)} nodes in {shapes} shapes)"


@dataclass(frozen=True)
class Topology:
    name: str
    description: str
    file: str
    nodes: Nodes  # a plain mapping of whole Nodes is taken too (Nodes.whole)
    links: tuple[tuple[str, str], ...]
    expect: Mapping[int, Mapping[str, str]]
    lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)
    columns: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)
    units: Mapping[str, int] = field(default_factory=dict)  # unit name -> its count
    # Keys whose values came from another file (--settings read from source):
    # key path -> (file, line), for findings to point at the hop limit's line.
    sources: Mapping[str, tuple[str, int]] = field(default_factory=dict, compare=False,
                                                   repr=False)
    # Principals of an imported design whose file declares no role: untrusted
    # by default (role attacker), worded as such (hopsim.importers.design).
    undeclared: frozenset[str] = field(default_factory=frozenset, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.nodes, Nodes):  # Nodes given whole: each stands for itself
            object.__setattr__(self, "nodes", Nodes.whole(self.nodes))
        # Each node's Node as written but for its name and addresses
        # (Nodes.like): what routing and path classes read of every node,
        # 100,000s of times (an attribute, not a property).
        self.like: Mapping[str, Node]
        object.__setattr__(self, "like", self.nodes.like)

    @property
    def copies(self) -> int:
        """The nodes it stands for: each node's replicas, summed."""
        return self.nodes.copies

    # Derived once per value (a changed copy derives its own): the routing
    # and the sweep ask for these once per principal.
    @property
    def markers(self) -> dict[str, str]:
        """The fact markers its description uses ([C], [U] ...), with their meaning."""
        used = set(FACT_MARKER.findall(self.description))
        return {m: meaning for m, meaning in FACT_MARKERS.items() if m in used}

    @cached_property
    def adjacency(self) -> dict[str, list[str]]:
        """Each node's neighbours, in link order: what routing walks. (A dict
        of lists: building the networkx graph costs more than routing a fleet.)"""
        adjacency: dict[str, list[str]] = {name: [] for name in self.nodes}
        for a, b in self.links:
            adjacency[a].append(b)
            adjacency[b].append(a)
        return adjacency

    @cached_property
    def imds_peers(self) -> dict[str, list[str]]:
        """Each imds node's neighbours, in link order, without the adjacency
        of every node (a walk asks for its instance)."""
        return neighbours(self.links, self.imds_nodes)

    @cached_property
    def graph(self) -> nx.Graph:
        """The nodes and links as a networkx graph, for those that draw or
        build it (the emulator); made when first asked for, networkx with it
        (a check or sweep never imports it)."""
        import networkx as nx

        graph = nx.Graph()
        graph.add_nodes_from(sorted(self.nodes))
        graph.add_edges_from(self.links)
        return graph

    @cached_property
    def principals(self) -> list[str]:
        return sorted(self.nodes.where(lambda node: node.kind in PRINCIPAL_KINDS))

    @cached_property
    def imds_nodes(self) -> list[str]:
        return sorted(self.nodes.where(lambda node: node.kind == "imds"))

    @cached_property
    def _relays(self) -> dict[str, list[str]]:
        relays: dict[str, list[str]] = {}
        like = self.like
        for name in sorted(self.nodes.where(
                lambda node: node.runs_on is not None and node.spec.relay is not None)):
            relays.setdefault(like[name].runs_on, []).append(name)  # type: ignore[arg-type]
        return relays

    def stack_of(self, name: str) -> str:
        """The node with links whose stack `name` sends from: itself, its host,
        or its runs_on followed (a rootless container on a container)."""
        like = self.like
        host = like[name].runs_on
        if host is None or like[host].runs_on is None:  # the usual case, once per principal
            return host or name
        seen = {name}
        while (host := like[name].runs_on) is not None and host not in seen:
            seen.add(host)
            name = host
        return name

    def instance_of(self, imds: str) -> str:
        """The instance an imds node belongs to: the one of its peers that is
        not a container owning an ENI of it."""
        peers = self.imds_peers[imds]
        return next((p for p in peers if self.like[p].kind != "container"), peers[0])

    @property
    def relay_hosts(self) -> list[str]:
        """The hosts that carry at least one relay, by name."""
        return sorted(self._relays)

    def relays_on(self, host: str) -> list[str]:
        """Relays (L4 or L7) that run inside `host`'s network stack, by name."""
        return self._relays.get(host, [])

    def label(self, name: str) -> str:
        """A node's name as reports show it: with its count when it stands for
        many identical copies (replicas, units)."""
        count = self.like[name].replicas
        return f"{name} (×{count:,})" if count > 1 else name

    def copy_of(self, name: str) -> tuple[Topology, str] | None:
        """One copy, named: `web#17/app#3` is the 3rd replica of app in the
        17th copy of unit web. Returns this topology with that unit copy and
        that replica named so (each standing for itself alone) and the copy's
        name, or None if `name` names no copy. All copies are identical, so a
        trace of one is a trace of each, under its own names."""
        unit, index, rest = None, None, name
        if "/" in name:
            head, rest = name.split("/", 1)
            unit, _, index = head.partition("#")
        node, _, replica = rest.partition("#")
        template = f"{unit}/{node}" if unit else node
        if template not in self.nodes or (unit is not None and unit not in self.units):
            return None
        count = self.units.get(unit, 1) if unit else 1
        own = self.nodes[template].replicas // count
        if not _index_within(index, count) or not _index_within(replica, own):
            return None
        rename = {template: name}
        if unit is not None:
            prefix = f"{unit}#{index}/" if index else f"{unit}/"
            rename |= {n: prefix + n.split("/", 1)[1] for n in self.nodes
                       if n.startswith(f"{unit}/") and n != template}
        if rename == {template: template}:
            return self, name

        def renamed(n: str | None) -> str | None:
            return rename.get(n, n) if n is not None else None

        nodes = {}
        for n, node in self.nodes.items():
            if n in rename:
                node = replace(node, name=rename[n], replicas=1 if n == template else
                               node.replicas // count, runs_on=renamed(node.runs_on),
                               via=tuple(rename.get(v, v) for v in node.via))
            nodes[rename.get(n, n)] = node
        links = tuple((rename.get(a, a), rename.get(b, b)) for a, b in self.links)
        expect = {h: {rename.get(n, n): o for n, o in entries.items()}
                  for h, entries in self.expect.items()}
        return replace(self, nodes=nodes, links=links, expect=expect,
                       units={u: 1 if u == unit else c for u, c in self.units.items()}), name

    def line_of(self, *path: str | int) -> int | None:
        """The line of a key path such as ("nodes", "app", "kind"), or of its parent."""
        position = nearest(self.lines, self.columns, path)
        return position[0] if position else None

    def position(self, *path: str | int) -> tuple[int, int] | None:
        """(line, column), both from 1, of a key path or of its nearest parent:
        where an editor or GitHub code scanning should point."""
        return nearest(self.lines, self.columns, path)

    def hop_limits(self) -> dict[str, int]:
        return {n: self.nodes[n].imds.hop_limit for n in self.imds_nodes}

    def with_imds(self, **changes: Any) -> Topology:
        """This topology with the same settings changed on every imds node.
        (Once per sweep for thousands of imds nodes: built as the loader
        builds nodes, and what derives from names and links, which settings
        do not change, carried over.)"""
        changed: dict[str, Node] = {}
        settings: dict[ImdsSettings, ImdsSettings] = {}
        for name in self.imds_nodes:
            node = self.nodes[name]
            old = node.imds
            new = settings.get(old)  # type: ignore[arg-type]
            if new is None:
                new = settings[old] = replace(old, **changes)  # type: ignore[arg-type]
            changed[name] = checked_node({**vars(node), "imds": new})
        copy = replace(self, nodes=self.nodes.changed(changed),
                       lines=self.lines)
        for derived in ("principals", "imds_nodes", "_relays", "adjacency", "graph",
                        "imds_peers"):
            if derived in self.__dict__:
                copy.__dict__[derived] = self.__dict__[derived]
        return copy

    def with_node(self, name: str, **changes: Any) -> Topology:
        """This topology with one node's fields changed (links unchanged)."""
        nodes = self.nodes.changed({name: replace(self.nodes[name], **changes)})
        return replace(self, nodes=nodes, lines=self.lines)


def neighbours(links: Iterable[tuple[str, str]], names: Iterable[str]) -> dict[str, list[str]]:
    """The neighbours of each of `names`, in link order: one pass over the links."""
    found: dict[str, list[str]] = {name: [] for name in names}
    for a, b in links:
        if a in found:
            found[a].append(b)
        if b in found:
            found[b].append(a)
    return found


def _index_within(index: str | None, count: int) -> bool:
    """`index` (from NAME#INDEX) names one of `count` copies; no index: one copy."""
    if not index:
        return count == 1 or index is None
    return (index.isdecimal() and len(index) <= len(str(count)) and 1 <= int(index) <= count
            and str(int(index)) == index)


def checked_node(values: dict[str, Any]) -> Node:
    """Node(**values) for values the loader has checked, every field given,
    without the frozen dataclass's __init__ (0.2 s per 100,000 nodes).
    tests/test_addresses.py checks that loaded nodes are whole Nodes."""
    node = object.__new__(Node)
    object.__setattr__(node, "__dict__", values)
    return node

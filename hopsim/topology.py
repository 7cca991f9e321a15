"""Topology files -> `Topology` values, with every problem located.

A topology is data: nodes, links, expectations. Nothing here runs it. The
loader collects every problem of a file (file, line, key, what was expected)
instead of stopping at the first, and nothing in a file can make it read
another file, recurse without bound or hang.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import networkx as nx

from hopsim.filters import ACTIONS, CHAINS, IMDS, RULE_KEYS, Filter
from hopsim.imds import (
    HTTP_ENDPOINT,
    HTTP_TOKENS,
    IPV4_ENDPOINT,
    IPV6_ENDPOINT,
    MAX_HOP_LIMIT,
    MIN_HOP_LIMIT,
    ImdsSettings,
)
from hopsim.kinds import (
    HTTP_METHODS,
    IMDS_KEYS,
    INSTANCE_KINDS,
    KINDS,
    ROLES,
    Kind,
    Layer,
    RelayPolicy,
)
from hopsim.products import MODES, PRODUCTS, mode_problem
from hopsim.source import (
    MAX_FILE_BYTES,
    MAX_JSON_BYTES,
    Abort,
    SeveralDocuments,
    dotted,
    gc_paused,
    json_positions,
    nearest,
    read_bytes,
    read_json,
    read_yaml,
    show,
)
from hopsim.untrusted import name_problem

OUTCOMES = ("token", "credentials", "none")
MAX_REPLICAS = 10**9  # copies of a node or a unit: counted, never built
RESERVED = "/#"  # UNIT/NODE names a unit's node; NODE#3 and UNIT#17 name copies
_RESERVED = frozenset(RESERVED)
TOPOLOGY_SUFFIXES = (".yaml", ".yml", ".json")
# Keys only a topology has at its top; see is_topology.
TOPOLOGY_KEYS = ("nodes", "units", "links", "imds", "expect")
# How sure a fact cited in a description is (docs/facts.md, "The markers").
FACT_MARKERS = {"C": "confirmed in a primary source", "O": "observed in public reports",
                "U": "uncertain, an assumption", "M": "measured on a real kernel"}
FACT_MARKER = re.compile(r"\s*\[([COUM])\]")
STDIN = "-"  # a path that means standard input
STDIN_NAME = "<stdin>"  # its name in messages and reports
FAMILIES = (4, 6)


@dataclass(frozen=True)
class Field:
    """One key of the file format: its type, its domain and what it means.

    The loader validates with these, and the JSON schema is made from them.
    """

    name: str
    type: type | tuple[type, ...]
    doc: str
    required: bool = False
    choices: tuple[Any, ...] | None = None
    bounds: tuple[int, int] | None = None


TOP_FIELDS = (
    Field("name", str, "unique name of the topology", required=True),
    Field("description", str, "what the topology teaches and why its expectations hold",
          required=True),
    Field("imds", dict, "defaults for every imds node"),
    Field("nodes", dict, "node name -> node (optional when units are given)"),
    Field("links", list, "pairs of node names (optional when units are given)"),
    Field("units", dict, "unit name -> a unit: `count` identical copies of its nodes and "
          "links (a fleet of instances); its nodes are named UNIT/NODE"),
    Field("expect", dict, "hop limit -> node -> expected outcome"),
)
UNIT_FIELDS = (
    Field("count", int, "how many identical copies of the unit (UNIT#1 .. UNIT#N)",
          required=True, bounds=(1, MAX_REPLICAS)),
    Field("description", str, "free text"),
    Field("nodes", dict, "node name -> node, as at the top level", required=True),
    Field("links", list, "pairs of the unit's node names", required=True),
)
IMDS_FIELDS = (
    Field("hop_limit", int, "HttpPutResponseHopLimit: the token response's IP TTL",
          bounds=(MIN_HOP_LIMIT, MAX_HOP_LIMIT)),
    Field("http_tokens", str, "required: IMDSv2 only; optional: IMDSv1 still answers",
          choices=HTTP_TOKENS),
    Field("http_endpoint", str, "disabled: IMDS answers 403 to everything",
          choices=HTTP_ENDPOINT),
    Field("ipv6", bool, "IMDS also answers on [fd00:ec2::254]"),
)
NODE_FIELDS = (
    Field("kind", str, "what the node does to a packet", required=True, choices=tuple(KINDS)),
    Field("role", str, "workload: must get a token; attacker: must get nothing",
          choices=ROLES),
    Field("runs_on", str, "the host whose network stack this node shares (no links)"),
    Field("via", list, "waypoints this principal's requests go through, in order"),
    Field("family", int, "the IP version this principal uses to reach IMDS",
          choices=FAMILIES),
    Field("address", str, "pinned IPv4 address"),
    Field("address6", str, "pinned IPv6 address"),
    Field("description", str, "free text"),
)
PRINCIPAL_KEYS = ("role", "via", "family")  # NODE_FIELDS only principals take
KIND_FIELDS = {
    "forwarding": Field("forwarding", (bool, str), "the host routes between its links "
                        "(TTL -1): true (both families), ipv4, ipv6 or false",
                        choices=(True, False, "ipv4", "ipv6")),
    "masquerade": Field("masquerade", (bool, list), "rewrite the source of what is forwarded "
                        "(NAT): true on every link, or the neighbours whose links it "
                        "masquerades out of (a NAT on its uplink only)"),
    "methods": Field("methods", list, "HTTP methods the relay passes on (default: kind's)"),
    "adds_xff": Field("adds_xff", bool, "the relay adds or appends X-Forwarded-For"),
    "forwards_headers": Field("forwards_headers", bool,
                              "the relay passes on the headers it received"),
    "gateway": Field("gateway", str, "the node's default route: the neighbour it sends to "
                     "when its table has no better entry (a node sharing a segment, which "
                     "forwards)"),
    "routes": Field("routes", dict, "destination node (or `imds`) -> the neighbour to send it "
                    "to; overrides the computed table"),
    "filters": Field("filters", list, "packet filter rules of this node's stack, first "
                     "match wins: {chain: input|forward|output, from: NEIGHBOUR or PRINCIPAL, "
                     "to: NODE or imds, action: drop|reject}; docs/mitigations.md"),
    "block_imds": Field("block_imds", bool, "blackhole routes for the metadata addresses in "
                        "this namespace (what ECS_AWSVPC_BLOCK_IMDS does)"),
    "intercepts": Field("intercepts", bool, "its host DNATs the metadata address, for "
                        "what it routes, to this relay (kube2iam, kiam): every request "
                        "crossing the host towards IMDS is answered or relayed here"),
    "product": Field("product", str, "the real relay it is: sets every default above "
                     "(keys written on the node still override); docs/products.md",
                     choices=tuple(PRODUCTS)),
    "mode": Field("mode", str, "how a product that is both relays: reverse or forward",
                  choices=MODES),
    **{f.name: f for f in IMDS_FIELDS},
    "replicas": Field("replicas", int, "this many identical copies of the node, each with "
                      "its links (NODE#1 .. NODE#N); analysed once, reported together",
                      bounds=(1, MAX_REPLICAS)),
    "instance": Field("instance", str, "the real instance whose settings `--settings` and "
                      "`hopsim import` apply: a Terraform address (aws_instance.web, "
                      "module.app.aws_launch_template.web) or an instance id"),
}


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

    @property
    def spec(self) -> Kind:
        return KINDS[self.kind]

    @property
    def is_principal(self) -> bool:
        return self.spec.principal

    @property
    def forwards(self) -> frozenset[int]:
        """The IP families it forwards at L3 (decrementing the TTL)."""
        if self.spec.layer is Layer.L3:
            return _BOTH
        return _FORWARDS[self.forwarding] if self.kind == "host" else _NEITHER

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
_FORWARDS = {True: _BOTH, False: _NEITHER, "ipv4": frozenset({4}), "ipv6": frozenset({6})}


@dataclass(frozen=True)
class Topology:
    name: str
    description: str
    file: str
    nodes: Mapping[str, Node]
    links: tuple[tuple[str, str], ...]
    expect: Mapping[int, Mapping[str, str]]
    lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)
    columns: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)
    units: Mapping[str, int] = field(default_factory=dict)  # unit name -> its count
    # Keys whose values came from another file (--settings read from source):
    # key path -> (file, line), for findings to point at the hop limit's line.
    sources: Mapping[str, tuple[str, int]] = field(default_factory=dict, compare=False,
                                                   repr=False)

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
    def graph(self) -> nx.Graph:
        """The nodes and links as a networkx graph, for those that draw or
        build it (the emulator); made when first asked for."""
        graph = nx.Graph()
        graph.add_nodes_from(sorted(self.nodes))
        graph.add_edges_from(self.links)
        return graph

    @cached_property
    def principals(self) -> list[str]:
        return sorted(n for n, node in self.nodes.items() if node.is_principal)

    @cached_property
    def imds_nodes(self) -> list[str]:
        return sorted(n for n, node in self.nodes.items() if node.kind == "imds")

    @cached_property
    def _relays(self) -> dict[str, list[str]]:
        relays: dict[str, list[str]] = {}
        for name in sorted(self.nodes):
            node = self.nodes[name]
            if node.runs_on and node.spec.relay:
                relays.setdefault(node.runs_on, []).append(name)
        return relays

    def instance_of(self, imds: str) -> str:
        """The instance an imds node belongs to: the one of its peers that is
        not a container owning an ENI of it."""
        peers = self.adjacency[imds]
        return next((p for p in peers if self.nodes[p].kind != "container"), peers[0])

    @property
    def relay_hosts(self) -> list[str]:
        """The hosts that carry at least one relay, by name."""
        return sorted(self._relays)

    def relays_on(self, host: str) -> list[str]:
        """L7 relays that run inside `host`'s network stack, by name."""
        return self._relays.get(host, [])

    def label(self, name: str) -> str:
        """A node's name as reports show it: with its count when it stands for
        many identical copies (replicas, units)."""
        count = self.nodes[name].replicas
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
        keys = list(path)
        while keys:
            line = self.lines.get(dotted(keys))
            if line:
                return line
            keys.pop()
        return None

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
        nodes = dict(self.nodes)
        settings: dict[ImdsSettings, ImdsSettings] = {}
        for name in self.imds_nodes:
            node = nodes[name]
            old = node.imds
            new = settings.get(old)  # type: ignore[arg-type]
            if new is None:
                new = settings[old] = replace(old, **changes)  # type: ignore[arg-type]
            nodes[name] = _node(**{**vars(node), "imds": new})
        copy = replace(self, nodes=nodes, lines=self.lines)
        for derived in ("principals", "imds_nodes", "_relays", "adjacency", "graph"):
            if derived in self.__dict__:
                copy.__dict__[derived] = self.__dict__[derived]
        return copy

    def with_node(self, name: str, **changes: Any) -> Topology:
        """This topology with one node's fields changed (links unchanged)."""
        nodes = {**self.nodes, name: replace(self.nodes[name], **changes)}
        return replace(self, nodes=nodes, lines=self.lines)


# --- validation ---------------------------------------------------------------


def _closest(word: Any, choices: Iterable[str]) -> str:
    if not isinstance(word, str):
        return ""
    match = difflib.get_close_matches(word, [c for c in choices if isinstance(c, str)], n=1,
                                      cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _type_name(t: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", bool: "true or false", list: "a list",
             dict: "a mapping"}
    types = t if isinstance(t, tuple) else (t,)
    return " or ".join(names[x] for x in types)


def _is(value: Any, t: type | tuple[type, ...]) -> bool:
    """isinstance, except that true and false are not integers here."""
    if value.__class__ is bool:
        return t is bool or (isinstance(t, tuple) and bool in t)
    return isinstance(value, t)


class _Checker:
    """Collects the problems of one document, each at its line."""

    def __init__(self, file: str, lines: Mapping[str, int]):
        self.file, self.lines = file, lines
        self.problems: list[Problem] = []

    def line(self, path: tuple[Any, ...]) -> int | None:
        path = tuple(path)
        while path:
            if dotted(path) in self.lines:
                return self.lines[dotted(path)]
            path = path[:-1]
        return self.lines.get("")

    def add(self, path: tuple[Any, ...], message: str) -> None:
        self.problems.append(Problem(self.file, self.line(path), dotted(path), message))

    def fields(self, mapping: Mapping[Any, Any], path: tuple[Any, ...],
               known: Mapping[str, Field], what: str) -> dict[str, Any]:
        """Check `mapping` against `known` fields; return the valid values.
        (A fleet has 100,000s of nodes: paths are built only for problems.)"""
        valid: dict[str, Any] = {}
        for key, value in mapping.items():
            spec = known.get(key) if key.__class__ is str else None
            if spec is None:
                self.add(path + (key,), f"unknown key {show(key)} for {what}"
                         f"{_closest(key, known)}; expected one of {', '.join(known)}")
                continue
            if (value.__class__ is spec.type and spec.bounds is None
                    and (spec.choices is None or value in spec.choices)):
                valid[key] = value  # what _wrong accepts, without the call: the usual case
                continue
            problem = _wrong(value, spec)
            if problem is None:
                valid[key] = value
            else:
                self.add(path + (key,), problem)
        for name in _required(known):
            if name not in mapping:
                self.add(path, f"missing required key {name!r} for {what}")
        return valid

    def value(self, value: Any, path: tuple[Any, ...], spec: Field) -> bool:
        problem = _wrong(value, spec)
        if problem is not None:
            self.add(path, problem)
        return problem is None


def _wrong(value: Any, spec: Field) -> str | None:
    """What is wrong with `value` for `spec`, or None."""
    if not _is(value, spec.type):
        return f"expected {_type_name(spec.type)}, got {show(value)}"
    if spec.choices is not None and value not in spec.choices:
        choices = ", ".join(map(_written, spec.choices))
        return (f"expected one of {choices}, got {show(value)}"
                f"{_closest(value, map(str, spec.choices))}")
    if spec.bounds is not None and not spec.bounds[0] <= value <= spec.bounds[1]:
        return f"expected {spec.bounds[0]}..{spec.bounds[1]}, got {show(value)}"
    return None


def _written(value: Any) -> str:
    """A value as a file writes it (true, not True)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


class _Table(dict):
    """Fields by name, and the names a mapping must have (found once)."""

    def __init__(self, fields: Iterable[Field]):
        super().__init__((f.name, f) for f in fields)
        self.required = tuple(f.name for f in self.values() if f.required)


def _required(known: Mapping[str, Field]) -> tuple[str, ...]:
    if isinstance(known, _Table):
        return known.required
    return tuple(f.name for f in known.values() if f.required)


@cache
def _node_fields(kind: str) -> dict[str, Field]:
    own = [spec for key, spec in KIND_FIELDS.items()  # in table order: keys is a frozenset
           if key in KINDS[kind].keys]
    return _Table([*NODE_FIELDS, *own])


def _check_methods(check: _Checker, value: Any, path: tuple[Any, ...]) -> tuple[str, ...] | None:
    if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
        check.add(path, f"expected a list of HTTP methods, got {show(value)}")
        return None
    for i, method in enumerate(value):
        if method not in HTTP_METHODS:
            check.add(path + (i,), f"unknown HTTP method {show(method)}"
                      f"{_closest(method.upper(), HTTP_METHODS)}; expected one of "
                      f"{', '.join(HTTP_METHODS)}")
            return None
    return tuple(value)


def _build(doc: Any, file: str, lines: Mapping[str, int],
           columns: Mapping[str, int]) -> tuple[Topology | None, list[Problem]]:
    check = _Checker(file, lines)
    if not isinstance(doc, dict):
        check.add((), "expected a mapping with keys name, description, nodes, links")
        return None, check.problems
    top = check.fields(doc, (), _Table(TOP_FIELDS), "a topology")

    defaults = check.fields(top.get("imds", {}), ("imds",),
                            _Table(IMDS_FIELDS), "imds defaults")
    if "units" not in top:
        for key in ("nodes", "links"):
            if key not in doc:
                check.add((), f"missing required key {key!r} for a topology")
    raw_nodes: dict[str, Any] = dict(top.get("nodes", {}))
    top_links = list(top.get("links", []))
    for name in raw_nodes:
        if isinstance(name, str) and not _RESERVED.isdisjoint(name):
            check.add(("nodes", name), f"a node name cannot contain {' or '.join(RESERVED)}: "
                      "UNIT/NODE names a unit's node, NODE#3 one of its replicas")
    units = _Units(check, top.get("units", {}), lines, columns, len(top_links))
    raw_nodes |= units.nodes
    if isinstance(top.get("name"), str) and name_problem(top["name"]):
        check.add(("name",), str(name_problem(top["name"])))
    nodes: dict[str, dict[str, Any]] = {}
    for name, raw in raw_nodes.items():
        path = ("nodes", name)
        if not isinstance(name, str):
            check.add(path, f"a node name must be a string, got {show(name)}")
            continue
        refused = name_problem(name)  # the one check of names (hopsim/untrusted.py)
        if refused:
            check.add(path, refused)
            continue
        if not isinstance(raw, dict):
            check.add(path, f"expected a mapping such as {{kind: host}}, got {show(raw)}")
            continue
        kind = raw.get("kind")
        if not isinstance(kind, str) or kind not in KINDS:
            if "kind" not in raw:
                check.add(path, "missing required key 'kind'")
            else:
                check.add(path + ("kind",), f"unknown kind {show(kind)}{_closest(kind, KINDS)}; "
                          f"expected one of {', '.join(KINDS)}")
            continue
        nodes[name] = check.fields(raw, path, _node_fields(kind), f"a {kind} node")
        nodes[name]["kind"] = kind

    names = set(nodes) | {n for n in raw_nodes if isinstance(n, str)}
    for name, raw in nodes.items():
        _check_node(check, name, raw, nodes, names)

    links = _check_links(check, top_links + units.links, nodes, names)
    expect = _check_expect(check, top.get("expect", {}), nodes, names)
    _check_imds_links(check, nodes, links)
    _check_masquerade_links(check, nodes, links)
    _check_filters(check, nodes, links)
    _check_interceptors(check, nodes)
    if not check.problems:  # a node refused for its kind would be a second, wrong line
        _check_meaning(check, nodes)

    if check.problems:
        return None, units.located(check.problems)
    built = _make_nodes(check, nodes, defaults, units.counts)
    if check.problems:
        return None, units.located(check.problems)
    topology = Topology(top["name"], top["description"], file, built, tuple(links), expect,
                        dict(lines), dict(columns), units.units)
    if any(node.gateway or node.routes for node in built.values()):
        # Written routes are checked by walking the tables they join: the one
        # check of the loader that needs routing (imported here, not at the top,
        # because routing is built on this module).
        from hopsim.routing import written_route_problems

        for path, message in written_route_problems(topology):
            check.add(path, message)
        if check.problems:
            return None, units.located(check.problems)
    return topology, []


def _index_within(index: str | None, count: int) -> bool:
    """`index` (from NAME#INDEX) names one of `count` copies; no index: one copy."""
    if not index:
        return count == 1 or index is None
    return (index.isdecimal() and len(index) <= len(str(count)) and 1 <= int(index) <= count
            and str(int(index)) == index)


class _Units:
    """A topology's units merged into its nodes and links, as UNIT/NODE.

    A unit is written once and counted: its nodes stand for `count` copies
    each (Node.replicas), so a fleet of 2,000 identical instances costs what
    one does. The merged names get the lines of what was written, and
    problems are reported at the unit's own keys.
    """

    def __init__(self, check: _Checker, raw: Mapping[Any, Any], lines: dict[str, int],
                 columns: dict[str, int], first_link: int):
        self.nodes: dict[str, Any] = {}
        self.links: list[Any] = []
        self.counts: dict[str, int] = {}
        self.units: dict[str, int] = {}
        self.keys: dict[str, str] = {}  # merged key path -> the one written
        known = _Table(UNIT_FIELDS)
        for unit, body in raw.items():
            path = ("units", unit)
            if not isinstance(unit, str) or not unit or not _RESERVED.isdisjoint(unit):
                check.add(path, f"a unit name is a string without {' or '.join(RESERVED)}, "
                          f"got {show(unit)}")
                continue
            if not isinstance(body, dict):
                check.add(path, f"expected a mapping with keys count, nodes, links, got "
                          f"{show(body)}")
                continue
            fields = check.fields(body, path, known, "a unit")
            count = fields.get("count", 1)
            for name, node in fields.get("nodes", {}).items():
                if not isinstance(name, str) or not name or not _RESERVED.isdisjoint(name):
                    check.add(path + ("nodes", name), "a node name is a string without "
                              f"{' or '.join(RESERVED)}, got {show(name)}")
                    continue
                self.units[unit] = count
                merged = f"{unit}/{name}"
                self.nodes[merged] = self._renamed(unit, node)
                self.counts[merged] = count
                self.keys[dotted(("nodes", merged))] = dotted(path + ("nodes", name))
            for i, link in enumerate(fields.get("links", [])):
                index = first_link + len(self.links)
                if isinstance(link, list) and all(isinstance(end, str) for end in link):
                    link = [f"{unit}/{end}" for end in link]
                self.links.append(link)
                self.keys[dotted(("links", index))] = dotted(path + ("links", i))
        merged_of = {written: merged for merged, written in self.keys.items()}
        for table in (lines, columns):  # the merged keys get the lines of what was written
            for key, value in list(table.items()):
                if key.startswith("units."):
                    parts = key.split(".")
                    merged = merged_of.get(".".join(parts[:4]))
                    if merged is not None:
                        table[".".join([merged, *parts[4:]])] = value

    @staticmethod
    def _renamed(unit: str, node: Any) -> Any:
        """A unit's node, with the names it refers to made UNIT/NAME."""
        if not isinstance(node, dict):
            return node
        node = dict(node)
        if isinstance(node.get("runs_on"), str):
            node["runs_on"] = f"{unit}/{node['runs_on']}"
        if isinstance(node.get("via"), list):
            node["via"] = [f"{unit}/{hop}" if isinstance(hop, str) else hop
                           for hop in node["via"]]
        if isinstance(node.get("filters"), list):
            node["filters"] = [
                {k: f"{unit}/{v}" if k in ("from", "to") and isinstance(v, str) and v != IMDS
                 else v for k, v in rule.items()} if isinstance(rule, dict) else rule
                for rule in node["filters"]]
        return node

    def located(self, problems: list[Problem]) -> list[Problem]:
        """Problems of merged nodes and links, at the keys the file has."""
        if not self.keys:
            return problems
        out = []
        for problem in problems:
            parts = problem.key.split(".")
            for i in range(len(parts), 1, -1):
                written = self.keys.get(".".join(parts[:i]))
                if written is not None:
                    problem = replace(problem, key=".".join([written, *parts[i:]]))
                    break
            out.append(problem)
        return out


def _check_node(check: _Checker, name: str, raw: dict[str, Any],
                nodes: Mapping[str, dict[str, Any]], names: set[str]) -> None:
    path = ("nodes", name)
    spec = KINDS[raw["kind"]]
    if not spec.principal:
        for key in PRINCIPAL_KEYS:
            if key in raw:
                check.add(path + (key,), f"only principals (host, container, client) take "
                          f"{show(key)}; {show(name)} is a {spec.name}")
                raw.pop(key)
    if "runs_on" in raw:
        host = raw["runs_on"]
        if not spec.can_run_on_host:
            check.add(path + ("runs_on",), f"a {spec.name} cannot run on a host; runs_on is "
                      "for containers and L7 relays (proxy, waf, ssrf)")
        elif host not in names:
            check.add(path + ("runs_on",), f"no node {show(host)}{_closest(host, names)}")
        elif host in nodes and nodes[host]["kind"] != "host":
            check.add(path + ("runs_on",), f"runs_on must name a host, but {show(host)} is a "
                      f"{nodes[host]['kind']}")
    for i, hop in enumerate(raw.get("via", [])):
        if not isinstance(hop, str) or hop not in names:
            check.add(path + ("via", i), f"no node {show(hop)}{_closest(hop, names)}")
        elif hop == name:
            check.add(path + ("via", i), "a node cannot be its own waypoint")
        elif hop in nodes and not _can_be_waypoint(hop, nodes):
            check.add(path + ("via", i), f"{show(hop)} ({nodes[hop]['kind']}) is not an L7 "
                      "relay; via names the relays (proxy, waf, ssrf, or a host carrying "
                      "one) a principal addresses; routers are chosen by the routing "
                      "tables (write gateway: or routes: to steer them)")
    if "methods" in raw:
        methods = _check_methods(check, raw["methods"], path + ("methods",))
        if methods is None:
            raw.pop("methods")
        else:
            raw["methods"] = methods
    if "product" in raw:
        problem = mode_problem(raw["product"], raw.get("mode"), spec.name)
        if problem:
            check.add(path + ("mode" if "mode" in raw else "product",), problem)
            raw.pop("product")
    elif "mode" in raw:
        check.add(path + ("mode",), "mode goes with product (e.g. product: apache)")
    if raw["kind"] == "host" and raw.get("masquerade") and not raw.get("forwarding"):
        check.add(path + ("masquerade",), "masquerade needs forwarding: true")
    if raw["kind"] == "nat" and raw.get("masquerade") is False:
        check.add(path + ("masquerade",), "a nat always masquerades; list the neighbours it "
                  "masquerades towards, or make it a router")
    if isinstance(raw.get("masquerade"), list):
        _check_names(check, raw["masquerade"], path + ("masquerade",), names)
    if ("gateway" in raw or "routes" in raw) and "runs_on" in raw:
        key = "gateway" if "gateway" in raw else "routes"
        check.add(path + (key,), f"{show(name)} has no routing table of its own: it shares "
                  f"{show(raw['runs_on'])}'s; write the route there")
        raw.pop("gateway", None)
        raw.pop("routes", None)
    if "gateway" in raw and raw["gateway"] not in names:
        check.add(path + ("gateway",), f"no node {show(raw['gateway'])}"
                  f"{_closest(raw['gateway'], names)}")
        raw.pop("gateway")
    for destination, via in list(raw.get("routes", {}).items()):
        here = path + ("routes", destination)
        if not isinstance(destination, str) or (destination not in names
                                                and destination != "imds"):
            check.add(here, f"no node {show(destination)}{_closest(destination, names)}; a "
                      "destination is a node or imds")
            raw["routes"].pop(destination)
        elif not isinstance(via, str) or via not in names:
            check.add(here, f"no node {show(via)}{_closest(via, names)} to send it to")
            raw["routes"].pop(destination)

    for key, parse in (("address", ipaddress.IPv4Address), ("address6", ipaddress.IPv6Address)):
        if key in raw:
            try:
                parse(raw[key])
            except ValueError:
                check.add(path + (key,), f"expected an IPv{4 if key == 'address' else 6} "
                          f"address, got {show(raw[key])}")
                raw.pop(key)


def _can_be_waypoint(name: str, nodes: Mapping[str, dict[str, Any]]) -> bool:
    """An L7 relay, or a host that carries one."""
    raw = nodes[name]
    if KINDS[raw["kind"]].layer is Layer.L7:
        return True
    return raw["kind"] == "host" and any(
        n.get("runs_on") == name and KINDS[n["kind"]].relay for n in nodes.values())


def _check_meaning(check: _Checker, nodes: Mapping[str, dict[str, Any]]) -> None:
    """A topology with no imds node, or no principal to ask it, would check
    nothing and say "ok" (issue 15): an error instead, as a false "ok" is the
    worst result a security check can give."""
    if not nodes:
        return
    if not any(raw["kind"] == "imds" for raw in nodes.values()):
        check.add(("nodes",), "no imds node: nothing answers the token request; add one, "
                  "such as `imds: {kind: imds}`, linked to the instance")
    if not any(KINDS[raw["kind"]].principal for raw in nodes.values()):
        check.add(("nodes",), "no principal: no host, container or client asks for the "
                  "token, so there is nothing to check")


def _check_names(check: _Checker, value: list[Any], path: tuple[Any, ...],
                 names: set[str]) -> None:
    for i, item in enumerate(value):
        if not isinstance(item, str) or item not in names:
            check.add(path + (i,), f"no node {show(item)}{_closest(item, names)}")


def _check_links(check: _Checker, raw: Any, nodes: Mapping[str, dict[str, Any]],
                 names: set[str]) -> list[tuple[str, str]]:
    links: list[tuple[str, str]] = []
    seen: dict[tuple[str, str], int] = {}
    # Found once, not per link: a fleet has 100,000s of links.
    hosted = {name for name, node in nodes.items() if node.get("runs_on")}
    replicated = {name for name, node in nodes.items() if node.get("replicas", 1) > 1}
    for i, link in enumerate(raw):
        if (link.__class__ is not list or len(link) != 2
                or link[0].__class__ is not str or link[1].__class__ is not str):
            check.add(("links", i),
                      f"expected a pair of node names such as [a, b], got {show(link)}")
            continue
        a, b = link
        suspect = (a not in names or b not in names or a == b or a in hosted or b in hosted
                   or (a in replicated and b in replicated))
        if suspect and not _bad_link(check, i, a, b, nodes, names):
            continue
        pair = (a, b) if a < b else (b, a)
        if pair in seen:
            check.add(("links", i), f"duplicate link [{a}, {b}] (first at links[{seen[pair]}])")
            continue
        seen[pair] = i
        links.append((a, b))
    return links


def _bad_link(check: _Checker, i: int, a: str, b: str, nodes: Mapping[str, dict[str, Any]],
              names: set[str]) -> bool:
    """Say what is wrong with the link [a, b]; whether it still counts as a
    link for the checks that follow (it does when only an end is misplaced)."""
    path = ("links", i)
    bad = [end for end in (a, b) if end not in names]
    for end in bad:
        check.add(path, f"link to a missing node {show(end)}{_closest(end, names)}")
    if bad:
        return False
    if a == b:
        check.add(path, f"self-link: {show(a)} is linked to itself")
        return False
    for end in (a, b):
        if end in nodes and nodes[end].get("runs_on"):
            check.add(path, f"{show(end)} runs on {show(nodes[end]['runs_on'])} and has no "
                      "links of its own")
    if all(end in nodes and nodes[end].get("replicas", 1) > 1 for end in (a, b)):
        check.add(path, f"both {show(a)} and {show(b)} have replicas: which copy links "
                  "to which is not said; give replicas to one end only")
        return False
    return True


def _check_imds_links(check: _Checker, nodes: Mapping[str, dict[str, Any]],
                      links: list[tuple[str, str]]) -> None:
    # One pass over the links: fleets have thousands of imds nodes.
    peers_of: dict[str, list[str]] = {name: [] for name, raw in nodes.items()
                                      if raw["kind"] == "imds"}
    for a, b in links:
        if a in peers_of:
            peers_of[a].append(b)
        if b in peers_of:
            peers_of[b].append(a)
    for name, peers in peers_of.items():
        path = ("nodes", name)
        # Beside its instance, an imds node may link to containers that own one
        # of the instance's ENIs (ECS awsvpc tasks): IMDS answers on every ENI,
        # with no host hop between (docs/mitigations.md).
        enis = [p for p in peers if p in nodes and nodes[p]["kind"] == "container"]
        hosts = [p for p in peers if p not in enis]
        if len(peers) > 1 and len(hosts) == 1:
            continue
        if len(peers) != 1:
            check.add(path, f"an imds node is linked to exactly one node, its instance, and "
                      f"beside it to containers that own an ENI of the instance; {show(name)} "
                      f"has {len(peers)} links" + (f", {len(hosts)} of them not containers"
                                                   if len(hosts) > 1 else ""))
        elif peers[0] in nodes and nodes[peers[0]]["kind"] not in INSTANCE_KINDS:
            check.add(path, f"{show(name)} is linked to {show(peers[0])}, a "
                      f"{nodes[peers[0]]['kind']}; its instance must be one of "
                      f"{', '.join(sorted(INSTANCE_KINDS))}")


def _check_filters(check: _Checker, nodes: Mapping[str, dict[str, Any]],
                   links: list[tuple[str, str]]) -> None:
    """Each `filters:` rule, as Filter values in raw["filters"] (or dropped with
    a located problem): a rule hopsim cannot represent exactly is refused,
    never ignored (a false ok is the worst bug)."""
    written = {name: raw for name, raw in nodes.items() if "filters" in raw or "block_imds" in raw}
    if not written:
        return
    neighbours: dict[str, set[str]] = {}
    for a, b in links:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    for name, raw in written.items():
        path = ("nodes", name)
        if raw.get("runs_on"):
            for key in ("filters", "block_imds"):
                if key in raw:
                    check.add(path + (key,), f"{show(name)} shares {show(raw['runs_on'])}'s "
                              "stack and has no filters or routes of its own; write it on "
                              f"{show(raw['runs_on'])}")
                    raw.pop(key)
            continue
        if raw.get("block_imds") and any(d == IMDS for d in raw.get("routes", {})):
            check.add(path + ("block_imds",), "block_imds blackholes the metadata addresses; "
                      "a written route to imds contradicts it")
        rules: list[Filter] = []
        for i, rule in enumerate(raw.get("filters", ())):
            found = _filter(check, path + ("filters", i), rule, name, nodes,
                            neighbours.get(name, set()), i)
            if found is not None:
                rules.append(found)
        if "filters" in raw:
            raw["filters"] = tuple(rules)


def _check_interceptors(check: _Checker, nodes: Mapping[str, dict[str, Any]]) -> None:
    """An interceptor is a relay on a forwarding host, one per host, and one
    hopsim runs itself (a product listens where its own configuration says)."""
    taken: dict[str, str] = {}
    for name, raw in nodes.items():
        if not raw.get("intercepts"):
            continue
        path = ("nodes", name, "intercepts")
        host = raw.get("runs_on")
        if host is None or host not in nodes:
            check.add(path, "an interceptor runs on the host whose DNAT sends it the "
                      "metadata traffic: give it runs_on: HOST")
        elif not nodes[host].get("forwarding"):
            check.add(path, f"{show(host)} does not forward: the DNAT catches what the host "
                      "routes towards IMDS, and it routes nothing (forwarding: true)")
        elif host in taken:
            check.add(path, f"{show(host)} already DNATs to {show(taken[host])}: one "
                      "interceptor per host")
        elif "product" in raw:
            check.add(path, "an interceptor is hopsim's own relay: drop product (its "
                      "defaults can be written as methods, adds_xff, forwards_headers)")
        else:
            taken[host] = name


def _filter(check: _Checker, path: tuple[Any, ...], rule: Any, name: str,
            nodes: Mapping[str, dict[str, Any]], neighbours: set[str],
            index: int) -> Filter | None:
    if not isinstance(rule, dict):
        check.add(path, f"expected a rule such as {{chain: forward, to: imds, action: drop}}, "
                  f"got {show(rule)}")
        return None
    ok = True
    for key in rule:
        if key not in RULE_KEYS:
            check.add(path + (key,), f"unknown key {show(key)} for a filter rule"
                      f"{_closest(key, RULE_KEYS)}; expected one of {', '.join(RULE_KEYS)}")
            ok = False
    for key, choices in (("chain", CHAINS), ("action", ACTIONS)):
        if key not in rule:
            check.add(path, f"missing required key {key!r} for a filter rule")
            ok = False
        elif rule[key] not in choices:
            check.add(path + (key,), f"expected one of {', '.join(choices)}, got "
                      f"{show(rule[key])}{_closest(rule[key], choices)}")
            ok = False
    source, destination = rule.get("from"), rule.get("to")
    if "from" in rule:
        raw = nodes.get(source) if isinstance(source, str) else None
        if raw is None:
            check.add(path + ("from",), f"no node {show(source)}{_closest(source, nodes)}")
            ok = False
        elif source in neighbours:
            if rule.get("chain") == "output":
                check.add(path + ("from",), f"the output chain sees packets {show(name)} "
                          "sends, which arrive on no link: from names a neighbour only on "
                          "input and forward")
                ok = False
        elif raw.get("runs_on"):
            check.add(path + ("from",), f"{show(source)} runs on {show(raw['runs_on'])} and "
                      "sends with its address: hopsim cannot tell its packets from the "
                      "host's (an owner match is not modelled); match the host instead")
            ok = False
        elif not KINDS[raw["kind"]].principal:
            check.add(path + ("from",), f"{show(source)} ({raw['kind']}) is not linked to "
                      f"{show(name)}: from names a neighbour (the link a packet arrives on) "
                      "or a principal (its source address)")
            ok = False
    if "to" in rule and destination != IMDS:
        raw = nodes.get(destination) if isinstance(destination, str) else None
        if raw is None:
            check.add(path + ("to",), f"no node {show(destination)}"
                      f"{_closest(destination, [*nodes, IMDS])}; to names a node or imds")
            ok = False
        elif raw.get("runs_on") or raw["kind"] in ("bridge", "imds"):
            what = (f"runs on {show(raw['runs_on'])} and has its address" if raw.get("runs_on")
                    else "has no address of its own" if raw["kind"] == "bridge"
                    else "answers on the metadata addresses: write to: imds")
            check.add(path + ("to",), f"{show(destination)} {what}")
            ok = False
    if not ok:
        return None
    return Filter(rule["chain"], rule["action"], source, destination, index)


def _check_masquerade_links(check: _Checker, nodes: Mapping[str, dict[str, Any]],
                            links: list[tuple[str, str]]) -> None:
    listed = {name: raw["masquerade"] for name, raw in nodes.items()
              if isinstance(raw.get("masquerade"), list)}
    if not listed:
        return
    linked = {(a, b) for a, b in links} | {(b, a) for a, b in links}
    for name, neighbours in listed.items():
        for i, neighbour in enumerate(neighbours):
            if neighbour in nodes and (name, neighbour) not in linked:
                check.add(("nodes", name, "masquerade", i), f"{show(neighbour)} is not linked "
                          f"to {show(name)}; masquerade lists the neighbours whose links it "
                          "masquerades out of")


def _check_expect(check: _Checker, raw: Any, nodes: Mapping[str, dict[str, Any]],
                  names: set[str]) -> dict[int, dict[str, str]]:
    expect: dict[int, dict[str, str]] = {}
    for hop_limit, entries in raw.items():
        path = ("expect", hop_limit)
        if not _is(hop_limit, int) or not MIN_HOP_LIMIT <= hop_limit <= MAX_HOP_LIMIT:
            check.add(path, f"expected a hop limit {MIN_HOP_LIMIT}..{MAX_HOP_LIMIT}, "
                      f"got {show(hop_limit)}")
            continue
        if not isinstance(entries, dict):
            check.add(path, f"expected a mapping node -> outcome, got {show(entries)}")
            continue
        expect[hop_limit] = {}
        for node, outcome in entries.items():
            here = path + (node,)
            if node not in names:
                check.add(here, f"no node {show(node)}{_closest(node, names)}")
            elif node in nodes and not KINDS[nodes[node]["kind"]].principal:
                check.add(here, f"{show(node)} is a {nodes[node]['kind']}, not a principal; "
                          "only hosts, containers and clients have outcomes")
            elif outcome not in OUTCOMES:
                check.add(here, f"unknown outcome {show(outcome)}{_closest(outcome, OUTCOMES)}; "
                          f"expected one of {', '.join(OUTCOMES)}")
            else:
                expect[hop_limit][node] = outcome
    return expect


def _make_nodes(check: _Checker, nodes: Mapping[str, dict[str, Any]],
                defaults: Mapping[str, Any], counts: Mapping[str, int]) -> dict[str, Node]:
    """Turn checked mappings into Nodes, with deterministic addresses."""
    order = sorted(nodes)
    v4 = _addresses(check, nodes, order, "address", _POOL4)
    v6 = _addresses(check, nodes, order, "address6", _POOL6)
    built: dict[str, Node] = {}
    for name in order:
        raw = nodes[name]
        spec = KINDS[raw["kind"]]
        relay = None
        product = raw.get("product")
        if spec.relay is not None:
            base = (PRODUCTS[product].setup(raw.get("mode")).policy if product
                    else spec.relay)
            relay = RelayPolicy(
                methods=raw.get("methods", base.methods),
                adds_xff=raw.get("adds_xff", base.adds_xff),
                forwards_headers=raw.get("forwards_headers", base.forwards_headers),
                refusal_status=base.refusal_status, sends_method=base.sends_method,
            )
        imds = None
        if spec.name == "imds":
            own = {k: raw[k] for k in IMDS_KEYS if k in raw}
            imds = ImdsSettings(**{**defaults, **own})
        via = raw.get("via")
        host = raw.get("runs_on")
        masquerade = raw.get("masquerade", False)
        if masquerade.__class__ is list:
            masquerade = tuple(masquerade)
        routes = raw.get("routes")
        built[name] = _node(
            name=name, kind=spec.name,
            address=v4.get(host, "") if host else v4[name],
            address6=v6.get(host, "") if host else v6[name],
            role=raw.get("role"), runs_on=host, via=tuple(via) if via else (),
            family=raw.get("family", 4), forwarding=raw.get("forwarding", False),
            masquerade=masquerade, relay=relay, imds=imds,
            description=raw.get("description", ""), instance=raw.get("instance"),
            product=product, mode=(PRODUCTS[product].setup(raw.get("mode")).mode
                                   if product else None),
            replicas=counts.get(name, 1) * raw.get("replicas", 1),
            gateway=raw.get("gateway"), routes=tuple(routes.items()) if routes else (),
            filters=raw.get("filters", ()), block_imds=raw.get("block_imds", False),
            intercepts=raw.get("intercepts", False),
        )
    return built


def _node(**values: Any) -> Node:
    """Node(**values) for values the loader has checked, every field given,
    without the frozen dataclass's __init__ (0.2 s per 100,000 nodes).
    tests/test_addresses.py checks that loaded nodes are whole Nodes."""
    node = object.__new__(Node)
    object.__setattr__(node, "__dict__", values)
    return node


def _addresses(check: _Checker, nodes: Mapping[str, dict[str, Any]], order: list[str],
               key: str, pool: ipaddress.IPv4Network | ipaddress.IPv6Network) -> dict[str, str]:
    """Deterministic addresses: pinned ones first, then the pool in name order.

    A node that runs on a host shares the host's address (it is in its stack);
    imds answers on the link-local endpoints.
    """
    endpoint = IPV4_ENDPOINT if key == "address" else IPV6_ENDPOINT
    assigned: dict[str, str] = {}
    owner: dict[str, str] = {}
    numbered: list[str] = []  # the nodes that take the pool's next address
    for name in order:
        raw = nodes[name]
        if raw["kind"] == "imds":
            assigned[name] = endpoint
        elif key in raw:
            address = str(ipaddress.ip_address(raw[key]))
            if address in owner:
                check.add(("nodes", name, key), f"address {address} is also "
                          f"{show(owner[address])}'s")
            owner[address] = name
            assigned[name] = address
        elif not raw.get("runs_on"):
            numbered.append(name)
    taken = set(owner)
    assigned.update(zip(numbered, (a for a in _hosts(pool) if a not in taken),
                        strict=False))  # the pool outlasts the nodes
    return assigned


def _hosts(pool: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Iterator[str]:
    """The pool's host addresses as text, in order, without IPv4's x.x.x.0 and
    x.x.x.255: what str(ipaddress.ip_address(n)) gives, written 256 or 65,536 at
    a time without a call per address (a fleet numbers 100,000s of nodes, and
    ipaddress took most of the load)."""
    first, last = int(pool.network_address) + 1, int(pool.broadcast_address) - 1
    if pool.version == 4:
        for block in range(first >> 8, (last >> 8) + 1):
            head = f"{block >> 16}.{block >> 8 & 255}.{block & 255}."
            lows = range(max(first - (block << 8), 1), min(last - (block << 8), 254) + 1)
            yield from map(head.__add__, map(str, lows))
        return
    if pool is _POOL6:  # fd00:1::HI:LO, zeros compressed (RFC 5952), up to 2**32 hosts
        for high in range(1 << 16):
            head = f"fd00:1::{high:x}:" if high else "fd00:1::"
            yield from map(head.__add__, map("%x".__mod__, range(0 if high else 1, 1 << 16)))
        first = _POOL6_START + (1 << 32)
    yield from map(str, map(ipaddress.ip_address, range(first, last + 1)))


_POOL4 = ipaddress.ip_network("10.0.0.0/8")
_POOL6 = ipaddress.ip_network("fd00:1::/64")
_POOL6_START = int(_POOL6.network_address)


# --- loading ------------------------------------------------------------------

Override = tuple[str, str, Any]  # (node, key, value): what `--set NODE.KEY=VALUE` says


def load(path: str | Path, overrides: Iterable[Override] = (), *,
         recognise: bool = False) -> Topology:
    """Load one topology file (YAML, or JSON if it ends in .json; "-" reads
    standard input, as YAML); raise TopologyError with every problem found.

    recognise: the file was found in a folder, not named: raise NotATopology
    for a document that is not a topology (is_topology) instead of reporting
    its problems."""
    file = str(path)
    if file == STDIN:
        return parse(read_stdin(), STDIN_NAME, overrides, recognise=recognise)
    limit = MAX_JSON_BYTES if _is_json(file) else MAX_FILE_BYTES
    return parse(load_text(path, limit), file, overrides, recognise=recognise)


def load_text(path: str | Path, limit: int = MAX_FILE_BYTES) -> str:
    """A file's text, UTF-8, at most `limit` bytes; raise TopologyError."""
    file = str(path)
    try:
        raw = read_bytes(path, limit)
    except OSError as exc:
        raise TopologyError([Problem(file, None, "", f"cannot read: {exc.strerror}")]) from None
    return _text(raw, file, limit)


def read_stdin() -> str:
    """Standard input as topology text, with a file's limits (YAML's)."""
    return _text(sys.stdin.buffer.read(MAX_FILE_BYTES + 1), STDIN_NAME, MAX_FILE_BYTES)


def _text(raw: bytes, file: str, limit: int) -> str:
    if len(raw) > limit:
        raise TopologyError([Problem(file, None, "", f"larger than {limit:,} bytes")])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise TopologyError([Problem(file, line, "", f"not UTF-8 text ({exc.reason} "
                                     f"at byte {exc.start})")]) from None


def parse(text: str, file: str = "<string>", overrides: Iterable[Override] = (), *,
          recognise: bool = False) -> Topology:
    """Parse topology text, YAML or (when `file` ends in .json) JSON; raise
    TopologyError with every problem found (NotATopology, with recognise, for
    another kind of document)."""
    with gc_paused():
        return _parse(text, file, overrides, recognise)


def is_topology(doc: Any) -> bool:
    """Whether a document found in a folder is a hopsim topology: a mapping
    with at least one of the keys only a topology has at its top (nodes,
    units, links, imds, expect). A Terraform plan, a Kubernetes manifest, a
    compose file or a CI workflow has none of them. A file named on the
    command line is read as a topology whatever it holds."""
    return isinstance(doc, dict) and any(key in doc for key in TOPOLOGY_KEYS)


def _not_a_topology(doc: Any) -> str:
    """Why is_topology(doc) is false, in a few words."""
    if doc is None:
        return "empty"
    if not isinstance(doc, dict):
        return f"a {'list' if isinstance(doc, list) else type(doc).__name__}, not a mapping"
    keys = [str(k) for k in list(doc)[:4]]
    more = ", ..." if len(doc) > 4 else ""
    return (f"its top keys, {', '.join(keys)}{more}, include none of "
            f"{', '.join(TOPOLOGY_KEYS)}" if keys else "an empty mapping")


def _parse(text: str, file: str, overrides: Iterable[Override], recognise: bool) -> Topology:
    try:
        doc, lines, columns, soft = (read_json if _is_json(file) else read_yaml)(text)
    except SeveralDocuments as abort:
        if recognise:
            raise NotATopology(file, "several YAML documents; a topology is one") from None
        raise TopologyError([Problem(file, abort.line, abort.key, abort.message)]) from None
    except Abort as abort:
        raise TopologyError([Problem(file, abort.line, abort.key, abort.message)]) from None
    if recognise and not is_topology(doc):
        raise NotATopology(file, _not_a_topology(doc))
    overrides = list(overrides)
    problems = [Problem(file, line, key, message) for line, key, message in soft]
    problems += _apply_overrides(doc, file, overrides)
    topology, found = _build(doc, file, lines, columns)
    if found and not lines and _is_json(file):
        # JSON is read without lines, at C speed; a file with problems gets
        # them in a second pass, and its problems are found again with them.
        lines, columns, _ = json_positions(text)
        topology, found = _build(doc, file, lines, columns)
    problems += _blame_overrides(found, overrides)
    if problems:
        raise TopologyError(sorted(problems, key=lambda p: (p.line or 0)))
    assert topology is not None
    return topology


def from_values(doc: Any, file: str, lines: Mapping[str, int] | None = None,
                columns: Mapping[str, int] | None = None,
                overrides: Iterable[Override] = ()) -> Topology:
    """A topology from plain values that another reader made (hopsim/importers:
    a compose file, a Kubernetes manifest), checked as a topology file is, with
    `lines` and `columns` giving each key path's place in the file it came
    from; raise TopologyError with every problem found."""
    lines, columns = dict(lines or {}), dict(columns or {})
    overrides = list(overrides)
    with gc_paused():
        problems = _apply_overrides(doc, file, overrides)
        topology, found = _build(doc, file, lines, columns)
    problems += _blame_overrides(found, overrides)
    if problems:
        raise TopologyError(sorted(problems, key=lambda p: (p.line or 0)))
    assert topology is not None
    return topology


def _is_json(file: str) -> bool:
    return file.lower().endswith(".json")


def _apply_overrides(doc: Any, file: str, overrides: Iterable[Override]) -> list[Problem]:
    problems = []
    nodes = doc.get("nodes") if isinstance(doc, dict) else None
    for node, key, value in overrides:
        if not isinstance(nodes, dict) or not isinstance(nodes.get(node), dict):
            names = list(nodes) if isinstance(nodes, dict) else []
            problems.append(Problem(file, None, "", f"no node {show(node)}"
                                    f"{_closest(node, names)}", option=f"--set {node}.{key}"))
            continue
        nodes[node][key] = value
    return problems


def _blame_overrides(problems: Iterable[Problem], overrides: Sequence[Override]) -> list[Problem]:
    """A problem with a key that --set wrote is the command line's, not a line
    of the file's: the file does not say what is wrong."""
    written = {dotted(("nodes", node, key)): f"--set {node}.{key}" for node, key, _ in overrides}
    blamed = []
    for p in problems:
        option = written.get(p.key) or next(
            (o for k, o in written.items() if p.key.startswith(k + ".")), "")
        blamed.append(replace(p, line=None, option=option) if option else p)
    return blamed


def what_if(hop_limit: int | None = None, http_tokens: str | None = None) -> dict[str, Any]:
    """The imds changes that `--hop-limit` and `--http-tokens` ask for."""
    changes: dict[str, Any] = {}
    if hop_limit is not None:
        changes["hop_limit"] = hop_limit
    if http_tokens is not None:
        changes["http_tokens"] = http_tokens
    return changes


@dataclass(frozen=True)
class Found:
    """A file to read, and the folder it was found in (None: named as is)."""

    path: Path
    folder: Path | None = None


def find(paths: Iterable[str | Path]) -> list[Found]:
    """Files named, and the *.yaml / *.yml / *.json files in folders named and
    their subfolders (hidden files and folders, such as .git, left out), each
    folder's in sorted order."""
    found: list[Found] = []
    for path in map(Path, paths):
        if not os.path.isdir(path):  # False, not OSError, for a name too long
            found.append(Found(path))
            continue
        inside = []
        for top, folders, files in os.walk(path):
            folders[:] = [f for f in folders if not f.startswith(".")]
            inside += [Path(top, f) for f in files if not f.startswith(".")
                       and Path(f).suffix in TOPOLOGY_SUFFIXES and os.path.isfile(Path(top, f))]
        found += [Found(f, path) for f in sorted(inside, key=lambda f: f.parts)]
    return found


def topology_files(paths: Iterable[str | Path]) -> list[Path]:
    """The files find() finds."""
    return [f.path for f in find(paths)]

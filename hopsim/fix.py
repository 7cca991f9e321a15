"""`hopsim fix`: the smallest sets of changes a user can make that turn every
verdict ok, each proved by simulating it.

The changes it knows (docs/mitigations.md): a hop limit, http_tokens
required, a relay that adds X-Forwarded-For or stops passing PUT, a
forward-chain filter dropping traffic to IMDS on a router an attacker's
request crosses (for everything, or for what arrives from the attacker's
side), an output filter on a relay's host (for everything, or for the
sockets the relay or a rootless stack owns), block_imds on an L4 relay (the
product's own refusal: sshd's PermitOpen, dante's socks block), and
block_imds on an attacker's own namespace. Sets are tried smallest first
(up to MAX_CHANGES changes); every set found at the smallest size is
reported, cheapest kind first. A set is a fix only if the loader accepts it
and the simulator's verdict is ok.
"""

from __future__ import annotations

import difflib
import itertools
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import yaml

from hopsim import analysis, importers, own_words
from hopsim.imds import MIN_HOP_LIMIT
from hopsim.kinds import Layer
from hopsim.loader import load, load_text
from hopsim.outcome import Role, Verdict
from hopsim.own_words import Words
from hopsim.products import Setup, refusal_directive
from hopsim.routing import Part, Router
from hopsim.topology import Topology, TopologyError

MAX_CHANGES = 3
HOP_LIMITS = range(MIN_HOP_LIMIT, 9)  # beyond 8 routers nothing bundled or likely
DROP_TO_IMDS = {"chain": "forward", "to": "imds", "action": "drop"}


@dataclass(frozen=True)
class Change:
    """One change: to every imds (`node` None: hop_limit, http_tokens) or to a
    node's key. For `filters`, `value` is one rule, appended to the node's."""

    key: str
    value: Any
    node: str | None = None
    cost: int = 0  # how much it asks of the user: settings < relays < filters < blocking

    def option(self) -> str:
        if self.node is None:
            return f"--{self.key.replace('_', '-')} {self.value}"
        return f"--set {shlex.quote(f'{self.node}.{self.key}={_flow(self.value)}')}"

    def describe(self) -> str:
        if self.key == "filters":
            rule = ", ".join(f"{k}: {v}" for k, v in self.value.items())
            return f"{self.node}: filter {{{rule}}}"
        where = "every imds" if self.node is None else self.node
        return f"{where}: {self.key} = {_flow(self.value)}"


def _flow(value: Any) -> str:
    """A value as YAML on one line (what --set takes)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False)
    return text.strip().removesuffix("\n...").removesuffix(" ...")


@dataclass(frozen=True)
class Fix:
    changes: tuple[Change, ...]
    report: analysis.Report  # the simulation that proves it

    @property
    def cost(self) -> tuple[int, str]:
        return sum(c.cost for c in self.changes), " ".join(c.describe() for c in self.changes)

    def options(self, file: Topology) -> str:
        """The fix as command-line options: the node keys written whole, as
        --set replaces a key (a filter is added to the node's own)."""
        parts = [c.option() for c in self.changes if c.node is None]
        for (node, key), value in sorted(_merged(file, self.changes).items()):
            parts.append(f"--set {shlex.quote(f'{node}.{key}={_flow(value)}')}")
        return " ".join(parts)


@dataclass(frozen=True)
class Search:
    topology: Topology
    before: analysis.Report
    candidates: tuple[Change, ...]
    fixes: tuple[Fix, ...]
    tried: int

    @property
    def needed(self) -> bool:
        return self.before.results[0].verdict is not Verdict.OK


def _merged(topology: Topology, changes: Iterable[Change]) -> dict[tuple[str, str], Any]:
    """The node keys a set of changes writes, whole: (node, key) -> value."""
    written: dict[tuple[str, str], Any] = {}
    for change in changes:
        if change.node is None:
            continue
        slot = (change.node, change.key)
        if change.key == "filters":
            current = written.get(slot)
            if current is None:
                current = [_rule(f) for f in topology.nodes[change.node].filters]
            written[slot] = [*current, change.value]
        else:
            written[slot] = change.value
    return written


def _rule(f: Any) -> dict[str, str]:
    rule = {"chain": f.chain}
    if f.source:
        rule["from"] = f.source
    if f.destination:
        rule["to"] = f.destination
    if f.owner:
        rule["owner"] = f.owner
    rule["action"] = f.action
    return rule


def candidates(topology: Topology, report: analysis.Report) -> list[Change]:
    """Every single change worth trying for the principals with a finding."""
    result = report.results[0]
    bad = [o for o in result.outcomes if o.bad]
    nodes = topology.nodes
    found: list[Change] = []
    current = set(topology.hop_limits().values())
    found += [Change("hop_limit", h, cost=0) for h in HOP_LIMITS if {h} != current]
    if any(nodes[n].imds.http_tokens != "required" for n in topology.imds_nodes):  # type: ignore[union-attr]
        found.append(Change("http_tokens", "required", cost=0))
    router = Router(topology)
    seen: set[Change] = set(found)
    for outcome in bad:
        if outcome.role != Role.ATTACKER:
            continue
        route = router.route(outcome.node)
        previous = None
        for station in route.stations:
            if station.part is Part.RELAY and station.actor:
                relay = nodes[station.actor]
                # a product is changed only as its own configuration can be (tinyproxy
                # refuses no method; the PHP app has no X-Forwarded-For worth adding)
                setup = own_words.setup_of(topology, station.actor)
                if relay.passes_bytes:  # L4: no HTTP to change; it can refuse, or be owned
                    if relay.spec.layer is Layer.L4 and not relay.block_imds and (
                            relay.product is None
                            or refusal_directive(relay.product, relay.mode, relay.kind)):
                        _add(found, seen, Change("block_imds", True, station.actor, cost=1))
                    if relay.runs_on:
                        _add(found, seen, Change("filters", {
                            "chain": "output", "owner": station.actor, "to": "imds",
                            "action": "drop"}, relay.runs_on, cost=2))
                if relay.relay is not None and not relay.passes_bytes and (
                        not relay.relay.adds_xff) and _makes(setup, "adds_xff", True):
                    _add(found, seen, Change("adds_xff", True, station.actor, cost=1))
                if relay.relay is not None and not relay.passes_bytes and (
                        relay.relay.allows("PUT")) and _makes(setup, "methods", ["GET", "HEAD"]):
                    _add(found, seen, Change("methods", ["GET", "HEAD"], station.actor, cost=1))
                if relay.runs_on and not relay.network:
                    _add(found, seen, Change("filters", {"chain": "output", "to": "imds",
                                                         "action": "drop"},
                                             relay.runs_on, cost=2))
            elif station.part is Part.ROUTE:
                _add(found, seen, Change("filters", DROP_TO_IMDS, station.node, cost=2))
                if previous is not None:
                    _add(found, seen, Change("filters", {"chain": "forward", "from": previous,
                                                         "to": "imds", "action": "drop"},
                                             station.node, cost=2))
            previous = station.node
        node = nodes[outcome.node]
        if (not node.runs_on or node.network) and node.spec.layer is Layer.ENDPOINT and (
                not node.block_imds):
            _add(found, seen, Change("block_imds", True, outcome.node, cost=3))
    return found


def _makes(setup: Setup | None, key: str, value: Any) -> bool:
    """Whether a relay can be changed so: any key for hopsim's own relay, a
    product's only through a directive of its own."""
    return setup is None or setup.directive(key, value) is not None


def _add(found: list[Change], seen: set[Change], change: Change) -> None:
    key = Change(change.key, _flow(change.value), change.node)
    if key not in seen:
        seen.add(key)
        found.append(change)


def _compatible(changes: Sequence[Change]) -> bool:
    """At most one value per imds key and per node key (filters add up)."""
    keys = [(c.node, c.key) for c in changes if c.key != "filters"]
    return len(keys) == len(set(keys))


def search(file: str, topology: Topology, *, max_changes: int = MAX_CHANGES) -> Search:
    """Sets of candidate changes, smallest first, each loaded and simulated."""
    before = analysis.check(topology)
    found: list[Fix] = []
    tried = 0
    options = candidates(topology, before) if before.results[0].verdict is not Verdict.OK else []
    for size in range(1, max_changes + 1):
        if found or before.results[0].verdict is Verdict.OK:
            break
        for changes in itertools.combinations(options, size):
            if not _compatible(changes):
                continue
            tried += 1
            changed = apply(file, topology, changes)
            if changed is None:
                continue
            report = analysis.check(changed)
            if report.results[0].verdict is Verdict.OK:
                found.append(Fix(changes, report))
    found.sort(key=lambda f: f.cost)
    return Search(topology, before, tuple(options), tuple(_lowest_hop_limits(found)), tried)


def _lowest_hop_limits(found: list[Fix]) -> list[Fix]:
    """Of fixes that differ only in the hop limit, the lowest: it exposes least."""
    kept: dict[tuple, Fix] = {}
    for fix in found:
        shape = tuple(sorted((c.node or "", c.key, _flow(c.value) if c.key != "hop_limit"
                              else "") for c in fix.changes))
        if shape not in kept:
            kept[shape] = fix
    return list(kept.values())


def apply(file: str, topology: Topology, changes: Sequence[Change]) -> Topology | None:
    """The topology with `changes` made, through the loader (None: it refuses)."""
    overrides = [(node, key, value) for (node, key), value in _merged(topology, changes).items()]
    try:
        changed = _reloaded(file, topology, overrides) if overrides else topology
    except TopologyError:
        return None
    imds = {c.key: c.value for c in changes if c.node is None}
    return changed.with_imds(**imds) if imds else changed


def _reloaded(file: str, topology: Topology, overrides: list[tuple[str, str, Any]]
              ) -> Topology:
    """`file` loaded again with `overrides`: a topology file by the loader, an
    imported design by its reader; what the first load settled beyond the
    file (each role, --settings' imds values and their lines) kept."""
    if importers.recognise(file) is None:
        return load(file, overrides)
    changed = importers.load(file, overrides).topology
    nodes = {name: replace(node, role=topology.nodes[name].role, imds=topology.nodes[name].imds)
             if name in topology.nodes else node for name, node in changed.nodes.items()}
    return replace(changed, nodes=nodes, sources=topology.sources,
                   undeclared=topology.undeclared)


def in_words(topology: Topology, change: Change) -> Words | None:
    """The change in the user's own words: the product's directive for a
    relay that names its product, the settings file's line or AWS's option
    for an instance setting; None where hopsim's key is all there is."""
    if change.node is None:
        return own_words.for_setting(topology, change.key, change.value)
    return own_words.for_node(topology, change.node, change.key, change.value)


def declarations(topology: Topology) -> list[str]:
    """For an imported design's untrusted-by-default principals: how its file
    declares each a workload, at its line."""
    found = ((name, own_words.declaration(topology, name)) for name in sorted(
        topology.undeclared))
    return [f"{name}: {said}" for name, said in found if said]


@dataclass(frozen=True)
class Proof:
    """What the real binaries said of a fix (hopsim emulate), in a sentence."""

    said: str
    refuted: bool = False  # the binary's verdict is not ok: the fix does not hold


def prove(file: str, topology: Topology, fix: Fix) -> Proof:
    """Run the fixed design on the real kernel with its real products: each
    product's directive is in the configuration emulate generates from the
    changed node. Says why not where it cannot run."""
    from hopsim import emulate
    from hopsim.report.wording import reason

    changed = apply(file, topology, fix.changes)
    if changed is None:
        return Proof("not proven on the binary: the loader refused the change")
    products = sorted({own_words.setup_of(changed, n).title  # type: ignore[union-attr]
                       for n in changed.nodes if own_words.setup_of(changed, n)})
    if not products:
        return Proof("not run on a binary: no product (nginx, Apache ...) in the design; "
                     "the simulation is the proof")
    why = emulate.missing()
    if why:
        return Proof(f"not proven on the binary: {why}")
    limits = set(changed.hop_limits().values())
    if len(limits) > 1:  # emulate measures every imds node at one hop limit
        return Proof("not proven on the binary: its imds nodes have different hop limits "
                     f"({', '.join(map(str, sorted(limits)))})")
    (hop_limit,) = limits
    try:
        with emulate.stopping_on_signals():  # namespaces deleted whatever ends the run
            report, _ = emulate.emulate(changed, [hop_limit])
    except emulate.PlanError as error:
        return Proof(f"not proven on the binary: {error}")
    result = report.results[0]
    before = {o.node for r in analysis.check(topology).results for o in r.outcomes if o.bad}
    shown = "; ".join(f"{o.node} {o.access.value}: {reason(o)}" for o in result.outcomes
                      if o.node in before)
    on = ", ".join(products)
    if result.verdict is Verdict.OK:
        return Proof(f"proven on {on} (the real binary, hop limit {hop_limit}): {shown}")
    return Proof(f"refuted by {on} (the real binary, hop limit {hop_limit}): "
                 f"{result.verdict.value} ({result.reason})", refuted=True)


# --- the patch -----------------------------------------------------------------------


def patch(file: str, topology: Topology, fix: Fix) -> str:
    """The fix as a unified diff of the file: the imds defaults' keys edited in
    place, each changed node written again as a block. An imported design is
    not hopsim's to rewrite: "" (its changes are said in_words)."""
    if importers.recognise(file) is not None:
        return ""
    text = load_text(file)
    lines = text.splitlines(keepends=True)
    new = list(lines)
    for change in fix.changes:
        if change.node is not None:
            continue
        line = topology.lines.get(f"imds.{change.key}")
        pattern = re.compile(rf"({change.key}:\s*)([^,}}\s#]+)")
        if line and pattern.search(new[line - 1]):
            new[line - 1] = pattern.sub(rf"\g<1>{change.value}", new[line - 1], count=1)
        for name in topology.imds_nodes:  # an imds node's own key wins over the default
            own = topology.lines.get(f"nodes.{name}.{change.key}")
            if own and pattern.search(new[own - 1]):
                new[own - 1] = pattern.sub(rf"\g<1>{change.value}", new[own - 1], count=1)
            elif not line:  # no default to edit: write it on the imds node
                new = _replace_node(new, topology, name, _node_block(
                    text, topology, name, {change.key: change.value}))
    for (node, key), value in sorted(_merged(topology, fix.changes).items()):
        new = _edit_key(new, topology, node, key, value) or _replace_node(
            new, topology, node, _node_block(text, topology, node, {key: value}))
    return "".join(difflib.unified_diff(lines, new, f"a/{file}", f"b/{file}"))


def _edit_key(lines: list[str], topology: Topology, node: str, key: str, value: Any
              ) -> list[str] | None:
    """`lines` with one key of a block-style node written on its own line (the
    rest of the file untouched), or None where the node is not written so."""
    start = topology.lines.get(f"nodes.{node}")
    if not start or not re.match(rf"^\s*{re.escape(node)}\s*:\s*(#.*)?$", lines[start - 1]):
        return None
    depth = len(lines[start - 1]) - len(lines[start - 1].lstrip())
    child = next((row for row in lines[start:] if row.strip()
                  and not row.lstrip().startswith("#")), "")
    indent = len(child) - len(child.lstrip())
    if indent <= depth:
        return None
    written = " " * indent + f"{key}: {_flow(value)}\n"
    at = topology.lines.get(f"nodes.{node}.{key}")
    if at:
        row = lines[at - 1]
        following = lines[at] if at < len(lines) else ""
        if not re.match(rf"^\s*{re.escape(key)}\s*:\s*\S", row) or (
                len(following) - len(following.lstrip()) > indent and following.strip()):
            return None  # a value over several lines: the node is written again
        return lines[:at - 1] + [written] + lines[at:]
    return lines[:start] + [written] + lines[start:]


def _node_block(text: str, topology: Topology, name: str, keys: dict[str, Any]) -> list[str]:
    doc = yaml.safe_load(text)
    node = dict(doc["nodes"][name])
    node.update(keys)
    line = topology.lines[f"nodes.{name}"]
    indent = re.match(r"\s*", text.splitlines()[line - 1]).group(0)  # type: ignore[union-attr]
    body = yaml.safe_dump({name: node}, sort_keys=False, default_flow_style=False, width=88)
    return [indent + row + "\n" for row in body.splitlines()]


def _replace_node(lines: list[str], topology: Topology, name: str, block: list[str]
                  ) -> list[str]:
    """`lines` with node `name`'s lines (up to the next node or top key) replaced."""
    start = topology.lines[f"nodes.{name}"]
    here = lines[start - 1]
    # Find the node's first line again (an earlier edit may have shifted it).
    key = re.compile(rf"^\s*{re.escape(name)}\s*:")
    starts = [i for i, row in enumerate(lines) if key.match(row)]
    if not starts:
        return lines
    first = min(starts, key=lambda i: abs(i - (start - 1)))
    indent = len(here) - len(here.lstrip()) if key.match(here) else len(
        lines[first]) - len(lines[first].lstrip())
    end = first + 1
    while end < len(lines):
        row = lines[end]
        if row.strip() and not row.lstrip().startswith("#") and (
                len(row) - len(row.lstrip()) <= indent):
            break
        end += 1
    return lines[:first] + block + lines[end:]

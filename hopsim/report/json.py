"""JSON for machines: one stable document per run (keys sorted, no time stamps).

Schema 2 (the default) groups alike principals as the other formats do: per
topology, one entry per group with its members and its outcome at each hop
limit of the run; a group is one principal up to analysis.GROUP_ABOVE
principals, and above it the principals of one path class and role, whose
outcomes differ only in names (the outcome given is the first member's). A
100,000-node sweep over hop limits 1-64 is then a few MB instead of 2.4 GB.
Schema 1 (all_principals) lists every principal at every hop limit.

The document is written as it is made: schema 1 of a fleet's sweep lists
81,000 x 64 entries, which as one dict took 1.4 GB to hold and 15 s to
indent. `chunks` writes the same bytes as json.dumps(doc, indent=2,
sort_keys=True), as tests/test_json_output.py checks, with each principal's
outcome made when it is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cache
from itertools import groupby, islice
from typing import Any

from hopsim import __version__
from hopsim.analysis import Expectation, Report, Result, rows
from hopsim.engine import Exchange
from hopsim.explain import Change, Explanation
from hopsim.outcome import Outcome
from hopsim.report.wording import reason
from hopsim.routing import Route, Station
from hopsim.topology import Node, Problem, Topology

SCHEMA_VERSION = 2  # principals grouped
ALL_PRINCIPALS_SCHEMA = 1  # every principal at every hop limit


def outcome(o: Outcome, replicas: int = 1) -> dict[str, Any]:
    return {
        "node": o.node,
        "replicas": replicas,
        "role": o.role,
        "family": o.family,
        "outcome": o.access.value,
        "reason": reason(o),
        "dropped_at": o.dropped_at,
        "hop_limit": o.hop_limit,
        "routers": o.routers,
        "receiver": o.receiver,
        "cause": o.cause.value if o.cause else None,
        "path": list(o.path),
        "forwarded": list(o.forwarded),
    }


def expectation(e: Expectation) -> dict[str, Any]:
    return {"hop_limit": e.hop_limit, "node": e.node, "expected": e.expected,
            "actual": e.actual, "passed": e.passed}


class Lazy:
    """A JSON array whose items are made while it is written."""

    def __init__(self, items: Iterable[Any]):
        self.items = items

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items)


def result(r: Result, topology: Topology | None = None) -> dict[str, Any]:
    def copies(node: str) -> int:
        return topology.like[node].replicas if topology else 1

    return {
        "hop_limit": r.hop_limit,
        "verdict": r.verdict.value,
        "reason": r.reason,
        "principals": Lazy(outcome(o, copies(o.node)) for o in r.outcomes),
        "expectations": [expectation(e) for e in r.expectations],
    }


def _topology(r: Report) -> dict[str, Any]:
    """What both schemas say of a topology beside its results."""
    t = r.topology
    shown = {"name": t.name, "file": t.file, "hop_limits": t.hop_limits(),
             "recommended_hop_limit": r.recommended_hop_limit,
             "recommendation": r.recommendation,
             "expectations": [expectation(e) for e in r.expectations]}
    if t.undeclared:  # an imported design's principals with no declared role
        shown["untrusted_by_default"] = sorted(t.undeclared)
    return shown


def report(r: Report) -> dict[str, Any]:
    return {**_topology(r), "results": [result(x, r.topology) for x in r.results]}


def grouped_report(r: Report) -> dict[str, Any]:
    """A topology's report, schema 2: its results without principals, and
    the groups of alike principals with their outcome at each result."""
    return {**_topology(r),
            "results": [{"hop_limit": x.hop_limit, "verdict": x.verdict.value,
                         "reason": x.reason,
                         "expectations": [expectation(e) for e in x.expectations]}
                        for x in r.results],
            "groups": Lazy(_groups(r))}


def _groups(r: Report) -> Iterator[dict[str, Any]]:
    """One entry per group of alike principals: the same groups at every
    result of a sweep (a path class holds at every hop limit)."""
    nodes = r.topology.like
    for alike in zip(*(rows(x.outcomes) for x in r.results), strict=True):
        members = alike[0].members
        first = alike[0].first
        yield {
            "members": list(members),
            "principals": len(members),
            "replicas": sum(nodes[m].replicas for m in members),
            "role": first.role,
            "family": first.family,
            "outcomes": [_group_outcome(a.first) for a in alike],
        }


def _group_outcome(o: Outcome) -> dict[str, Any]:
    """A group's outcome at one result: its first member's (`node`), whose
    name its reason and dropped_at use."""
    return {"node": o.node, "hop_limit": o.hop_limit, "outcome": o.access.value,
            "reason": reason(o), "dropped_at": o.dropped_at, "routers": o.routers,
            "receiver": o.receiver, "cause": o.cause.value if o.cause else None,
            "path": list(o.path), "forwarded": list(o.forwarded)}


def problem(p: Problem) -> dict[str, Any]:
    found = {"file": p.file, "line": p.line, "key": p.key, "message": p.message}
    if p.option:  # a --set at fault, not the file
        found["option"] = p.option
    return found


def chunks(command: str, reports: Iterable[Report], problems: Iterable[Problem],
           all_principals: bool = False) -> Iterator[str]:
    """The run's document, in pieces of about 64 kB, written as it is made:
    schema 2, or schema 1 with all_principals."""
    doc = {
        "hopsim": __version__,
        "schema": ALL_PRINCIPALS_SCHEMA if all_principals else SCHEMA_VERSION,
        "command": command,
        "topologies": Lazy((report if all_principals else grouped_report)(r) for r in reports),
        "errors": [problem(p) for p in problems],
    }
    return _batched(_encode(doc, ""))


def document(command: str, reports: Iterable[Report], problems: Iterable[Problem],
             all_principals: bool = False) -> str:
    return "".join(chunks(command, reports, problems, all_principals))


def _batched(pieces: Iterable[str], size: int = 1 << 16) -> Iterator[str]:
    batch: list[str] = []
    length = 0
    for piece in pieces:
        batch.append(piece)
        length += len(piece)
        if length >= size:
            yield "".join(batch)
            batch, length = [], 0
    batch.append("\n")
    yield "".join(batch)


_PLAIN = frozenset({str, int, float, bool, type(None)})
RUN = 512  # plain mappings encoded in one call


def _plain(value: Any) -> bool:
    """A non-empty mapping of plain values: a principal, an expectation."""
    return type(value) is dict and bool(value) and _PLAIN.issuperset(map(type, value.values()))


def _encode(value: Any, indent: str) -> Iterator[str]:
    """json.dumps(value, indent=2, sort_keys=True), in pieces, `indent` deep.

    With indent, json uses its pure-Python encoder (15 s for a fleet's sweep);
    here plain mappings go to its C encoder, up to RUN of them in one call."""
    inner = indent + "  "
    if type(value) in _PLAIN:
        yield json.dumps(value)
    elif isinstance(value, dict):
        if _plain(value):
            yield _mappings([value], indent)
            return
        separator = "{\n" + inner
        for key in sorted(value):
            yield separator + json.dumps(key) + ": "
            yield from _encode(value[key], inner)
            separator = ",\n" + inner
        yield "{}" if separator[0] == "{" else "\n" + indent + "}"
    elif isinstance(value, (list, Lazy)):
        separator = "[\n" + inner
        for plain, items in groupby(value, _plain):
            while plain and (run := list(islice(items, RUN))):
                yield separator + _mappings(run, inner)
                separator = ",\n" + inner
            for item in items:  # not plain (a plain group is used up above)
                yield separator
                yield from _encode(item, inner)
                separator = ",\n" + inner
        yield "[]" if separator[0] == "[" else "\n" + indent + "]"
    else:
        yield json.dumps(value)


def _mappings(run: Sequence[dict[str, Any]], indent: str) -> str:
    """Plain mappings, each as json.dumps(indent=2) writes it `indent` deep,
    separated by commas: one call to the C encoder for all of them. It writes
    them one item per line; only between two mappings is the indent one
    level less ("},\n" and "{" meet nowhere else: strings escape newlines)."""
    inner = indent + "  "
    text = _flat(inner)(run)[2:-2]  # without "[{" and "}]"
    text = text.replace("},\n" + inner + "{", "\n" + indent + "},\n" + indent + "{\n" + inner)
    return "{\n" + inner + text + "\n" + indent + "}"


@cache
def _flat(inner: str) -> Callable[[Any], str]:
    """json's C encoder, sorted keys, one item of a plain mapping per line."""
    return json.JSONEncoder(sort_keys=True, separators=(",\n" + inner, ": ")).encode


# --- the views for people, as JSON: validate, show, trace, explain ---------------


def _document(command: str, **fields: Any) -> str:
    doc = {"hopsim": __version__, "schema": SCHEMA_VERSION, "command": command, **fields}
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def validation(topologies: Sequence[Topology], problems: Iterable[Problem]) -> str:
    """`hopsim validate --format json`: what each file holds, and every problem."""
    return _document("validate", topologies=[{
        "name": t.name, "file": t.file, "nodes": len(t.nodes), "links": len(t.links),
        "principals": len(t.principals),
        "stands_for": t.copies,
    } for t in topologies], errors=[problem(p) for p in problems])


def node(n: Node) -> dict[str, Any]:
    out = _node(n)
    # Keys of issue 22, only where they apply: every other node reads as before.
    if n.network:
        out["network"] = {"stack": n.network, "version": n.version}
    if n.relay is not None and n.relay.refuses_imds:
        out["relay"]["refuses_imds"] = True
    return out


def _node(n: Node) -> dict[str, Any]:
    return {
        "name": n.name, "kind": n.kind, "address": n.address or None,
        "address6": n.address6 or None, "role": n.role, "runs_on": n.runs_on,
        "via": list(n.via), "family": n.family, "forwarding": n.forwarding,
        "masquerade": list(n.masquerade) if isinstance(n.masquerade, tuple) else n.masquerade,
        "gateway": n.gateway, "routes": dict(n.routes), "replicas": n.replicas,
        "description": n.description or None,
        "relay": None if n.relay is None else {
            "methods": list(n.relay.methods) if n.relay.methods else None,
            "adds_xff": n.relay.adds_xff, "forwards_headers": n.relay.forwards_headers},
        "imds": None if n.imds is None else {
            "hop_limit": n.imds.hop_limit, "http_tokens": n.imds.http_tokens,
            "http_endpoint": n.imds.http_endpoint, "ipv6": n.imds.ipv6,
            "instance": n.instance},
    }


def route(r: Route) -> dict[str, Any]:
    """The request's stations, and each leg's response's own (from the leg's end)."""
    def stations(path: Iterable[Station]) -> list[dict[str, Any]]:
        return [{"node": s.node, "role": s.part.value, "relay": s.relay, "nat": s.nat}
                for s in path]

    return {"principal": r.principal, "unreachable": r.unreachable,
            "stations": stations(r.stations),
            "responses": [stations(back) for back in r.returns]}


def topology_view(t: Topology, routes: Iterable[Route]) -> str:
    """`hopsim show --format json`: nodes, links, units and each principal's route."""
    return _document("show", topology={
        "name": t.name, "file": t.file, "description": " ".join(t.description.split()),
        "markers": t.markers,
        "nodes": [node(t.nodes[name]) for name in sorted(t.nodes)],
        "links": [list(link) for link in t.links], "units": dict(t.units),
        "routes": [route(r) for r in routes]})


def trace(t: Topology, exchange: Exchange) -> str:
    """`hopsim trace --format json`: every hop of every packet, and the outcome."""
    return _document(
        "trace", topology=t.name, file=t.file, route=route(exchange.route),
        hops=[{"step": i, "time": h.time, "message": h.message, "node": h.node,
               "action": h.action.value, "ttl_in": h.ttl_in, "ttl_out": h.ttl_out,
               "detail": h.detail} for i, h in enumerate(exchange.hops, 1)],
        outcome=outcome(exchange.outcome, t.nodes[exchange.outcome.node].replicas))


def change(c: Change, words: bool = False) -> dict[str, Any]:
    shown = {"description": c.description, "option": c.option, "outcome": c.access.value,
             "loosens": c.loosens, "leaks": list(c.leaks), "starves": list(c.starves)}
    if words and c.words is not None:  # a fix, in the user's own words
        w = c.words
        shown["in_words"] = {"product": w.setup.label if w.setup else None, "text": w.text,
                             "where": w.where, "source": w.source, "patch": w.patch or None}
    return shown


def explanations(t: Topology, items: Iterable[Explanation]) -> str:
    """`hopsim explain --format json`: each principal's account and its fixes."""
    return _document("explain", topology=t.name, file=t.file, hop_limits=t.hop_limits(),
                     principals=[{
                         **outcome(e.outcome, t.nodes[e.outcome.node].replicas),
                         "finding": e.finding, "story": e.story,
                         "fixes": [change(c, words=True) for c in e.fixes], "no_fix": e.no_fix,
                         "undone_by": [change(c) for c in e.undone_by],
                     } for e in items])

"""JSON for machines: one stable document per run (keys sorted, no time stamps).

The document is written as it is made: a sweep of a fleet lists every
principal at every hop limit (81,000 x 64 entries at 100,000 nodes), which as
one dict took 1.4 GB to hold and 15 s to indent. `chunks` writes the same
bytes as json.dumps(doc, indent=2, sort_keys=True) (tests/test_output.py holds
it to that), with each principal's outcome made when it is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from typing import Any

from hopsim import __version__
from hopsim.analysis import Expectation, Report, Result
from hopsim.engine import Outcome
from hopsim.topology import Problem, Topology

SCHEMA_VERSION = 1


def outcome(o: Outcome, replicas: int = 1) -> dict[str, Any]:
    return {
        "node": o.node,
        "replicas": replicas,
        "role": o.role,
        "family": o.family,
        "outcome": o.access.value,
        "reason": o.reason,
        "dropped_at": o.dropped_at,
        "hop_limit": o.hop_limit,
        "routers": o.routers,
        "receiver": o.receiver,
        "cause": o.cause.value if o.cause else None,
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
        return topology.nodes[node].replicas if topology else 1

    return {
        "hop_limit": r.hop_limit,
        "verdict": r.verdict.value,
        "reason": r.reason,
        "principals": Lazy(outcome(o, copies(o.node)) for o in r.outcomes),
        "expectations": [expectation(e) for e in r.expectations],
    }


def report(r: Report) -> dict[str, Any]:
    t = r.topology
    return {
        "name": t.name,
        "file": t.file,
        "hop_limits": t.hop_limits(),
        "recommended_hop_limit": r.recommended_hop_limit,
        "recommendation": r.recommendation,
        "results": [result(x, t) for x in r.results],
        "expectations": [expectation(e) for e in r.expectations],
    }


def problem(p: Problem) -> dict[str, Any]:
    return {"file": p.file, "line": p.line, "key": p.key, "message": p.message}


def chunks(command: str, reports: Iterable[Report], problems: Iterable[Problem]) -> Iterator[str]:
    """The run's document, in pieces of about 64 kB, written as it is made."""
    doc = {
        "hopsim": __version__,
        "schema": SCHEMA_VERSION,
        "command": command,
        "topologies": Lazy(report(r) for r in reports),
        "errors": [problem(p) for p in problems],
    }
    return _batched(_encode(doc, ""))


def document(command: str, reports: Iterable[Report], problems: Iterable[Problem]) -> str:
    return "".join(chunks(command, reports, problems))


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


_CONTAINERS = (dict, list, Lazy)


def _encode(value: Any, indent: str) -> Iterator[str]:
    """json.dumps(value, indent=2, sort_keys=True), in pieces, `indent` deep.
    A mapping of plain values (a principal, an expectation) is one call to
    json's C encoder: with indent, json uses its pure-Python one."""
    inner = indent + "  "
    if isinstance(value, dict):
        if not value:
            yield "{}"
        elif not any(isinstance(v, _CONTAINERS) for v in value.values()):
            yield "{\n" + inner + _flat(inner)(value)[1:-1] + "\n" + indent + "}"
        else:
            separator = "{\n" + inner
            for key in sorted(value):
                yield separator + json.dumps(key) + ": "
                yield from _encode(value[key], inner)
                separator = ",\n" + inner
            yield "\n" + indent + "}"
    elif isinstance(value, (list, Lazy)):
        separator = "[\n" + inner
        for item in value:
            yield separator
            yield from _encode(item, inner)
            separator = ",\n" + inner
        yield "[]" if separator[0] == "[" else "\n" + indent + "]"
    else:
        yield json.dumps(value)


@cache
def _flat(inner: str) -> Callable[[Any], str]:
    """json's C encoder for a mapping of plain values, one item per line."""
    return json.JSONEncoder(sort_keys=True, separators=(",\n" + inner, ": ")).encode

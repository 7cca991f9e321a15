"""JSON for machines: one stable document per run (keys sorted, no time stamps)."""

from __future__ import annotations

import json
from collections.abc import Iterable
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


def result(r: Result, topology: Topology | None = None) -> dict[str, Any]:
    def copies(node: str) -> int:
        return topology.nodes[node].replicas if topology else 1

    return {
        "hop_limit": r.hop_limit,
        "verdict": r.verdict.value,
        "reason": r.reason,
        "principals": [outcome(o, copies(o.node)) for o in r.outcomes],
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


def document(command: str, reports: Iterable[Report], problems: Iterable[Problem]) -> str:
    doc = {
        "hopsim": __version__,
        "schema": SCHEMA_VERSION,
        "command": command,
        "topologies": [report(r) for r in reports],
        "errors": [problem(p) for p in problems],
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"

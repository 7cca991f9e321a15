"""SARIF 2.1.0 for code scanning: one rule per finding type, each result at
the file, line and column of the offending key, so GitHub annotates that line.

Files are given relative to the root of the git repository that holds them
(%SRCROOT%), as GitHub's upload-sarif resolves them, wherever hopsim runs
from. Bad input is a result too (rule bad-input, level error) at its file
and line, since code scanning shows results and not tool notifications; the
notifications are kept for tools that read them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hopsim import __version__
from hopsim.analysis import Report
from hopsim.report.findings import BAD_INPUT, RULES, Finding, KeyPath, Rule, fixes_in_words, of_run
from hopsim.report.wording import reason
from hopsim.topology import Problem, Topology

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
FINGERPRINT = "hopsimFinding/v1"


def rule(r: Rule) -> dict[str, Any]:
    properties: dict[str, Any] = {"tags": list(r.tags), "precision": "very-high",
                                  "problem.severity": "error"}
    if r.security_severity:
        properties["security-severity"] = r.security_severity
    return {
        "id": r.id,
        "name": r.name,
        "shortDescription": {"text": r.title},
        "fullDescription": {"text": r.description},
        "help": {"text": r.fix, "markdown": f"**Fix:** {r.fix}"},
        "defaultConfiguration": {"level": "error"},
        "properties": properties,
    }


def artifact(file: str) -> dict[str, Any]:
    """A file as a SARIF artifactLocation: relative to its repository's root
    (%SRCROOT%), or to the current folder outside any repository; a file: URI
    when it is in neither."""
    path = Path(os.path.abspath(file))
    for root in (_repository(path.parent), Path.cwd()):
        if root is not None and path.is_relative_to(root):
            return {"uri": quote(path.relative_to(root).as_posix()), "uriBaseId": "%SRCROOT%"}
    return {"uri": path.as_uri()}


@cache
def _repository(folder: Path) -> Path | None:
    """The root of the git repository (or worktree) that holds `folder`."""
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def physical(file: str, position: tuple[int, int] | None) -> dict[str, Any]:
    location: dict[str, Any] = {"artifactLocation": artifact(file)}
    if position:
        location["region"] = {"startLine": position[0], "startColumn": position[1]}
    return location


def _at(topology: Topology, path: KeyPath) -> dict[str, Any]:
    return physical(topology.file, topology.position(*path))


def result(f: Finding) -> dict[str, Any]:
    t = f.topology
    identity = f"{f.rule.id}|{t.name}|{f.node}|{f.hop_limit}"
    properties: dict[str, Any] = {"topology": t.name, "hop_limit": f.hop_limit,
                                  "principal": f.node, "alike": f.alike}
    if f.outcome:
        properties.update(role=f.outcome.role, outcome=f.outcome.access.value,
                          reason=reason(f.outcome), dropped_at=f.outcome.dropped_at)
        if f.node in t.undeclared:  # an imported principal whose file declares no role
            properties["untrusted_by_default"] = True
    fixes = fixes_in_words(f)
    if fixes:  # in the product's or the settings file's own words, each checked
        properties["fixes"] = list(fixes)
    if f.expectation:
        properties.update(expected=f.expectation.expected, actual=f.expectation.actual)
    out: dict[str, Any] = {
        "ruleId": f.rule.id,
        "ruleIndex": RULES.index(f.rule),
        "level": "error",
        "message": {"text": f"{t.name}: {f.message}" + "".join(
            f"\nFix: {text}" for text in fixes)},
        "locations": [{
            "physicalLocation": _at(t, f.path),
            "logicalLocations": [{"name": f.node, "fullyQualifiedName": f"{t.name}.{f.node}",
                                  "kind": "member"}],
        }],
        "partialFingerprints": {FINGERPRINT: hashlib.sha256(identity.encode()).hexdigest()},
        "properties": properties,
    }
    if f.suppression:  # accepted on purpose: shown, not failing (SARIF 3.35)
        s = f.suppression
        accepted: dict[str, Any] = {"kind": "external", "status": "accepted",
                                    "justification": s.reason,
                                    "location": {"physicalLocation": physical(
                                        s.file, (s.line, 1) if s.line else None)}}
        if s.expires:
            accepted["properties"] = {"expires": s.expires.isoformat()}
        out["suppressions"] = [accepted]
    if f.related:
        out["relatedLocations"] = [
            {"id": i, "physicalLocation": physical(r.elsewhere[0], (r.elsewhere[1], 1))
             if r.elsewhere else _at(t, r.path), "message": {"text": r.message}}
            for i, r in enumerate(f.related, 1)]
    return out


def bad_input(p: Problem) -> dict[str, Any]:
    """A problem as a result at its file and line: what code scanning shows."""
    identity = f"{BAD_INPUT.id}|{p.file}|{p.line}|{p.option or p.key}"
    return {
        "ruleId": BAD_INPUT.id,
        "ruleIndex": len(RULES),
        "level": "error",
        "message": {"text": p.what},
        "locations": [{"physicalLocation": physical(p.file, (p.line, 1) if p.line else None)}],
        "partialFingerprints": {FINGERPRINT: hashlib.sha256(identity.encode()).hexdigest()},
    }


def notification(p: Problem) -> dict[str, Any]:
    return {
        "level": "error",
        "descriptor": {"id": "bad-input"},
        "message": {"text": p.what},
        "locations": [{"physicalLocation": physical(p.file, (p.line, 1) if p.line else None)}],
    }


def document(command: str, reports: Sequence[Report], problems: Iterable[Problem]) -> str:
    problems = list(problems)
    log = {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "hopsim",
                "version": __version__,
                "semanticVersion": __version__,
                "rules": [rule(r) for r in (*RULES, BAD_INPUT)],
            }},
            "invocations": [{
                "executionSuccessful": not problems,
                "toolExecutionNotifications": [notification(p) for p in problems],
                "properties": {"command": command},
            }],
            "columnKind": "unicodeCodePoints",
            "results": [bad_input(p) for p in problems]
            + [result(f) for f in of_run(reports, command)],
        }],
    }
    return json.dumps(log, indent=2) + "\n"

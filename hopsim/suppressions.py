"""Accepted findings: a file of suppressions, each with a reason and, if it
should not last, an expiry; as .trivyignore and checkov's skips do.

    # .hopsimignore.yaml
    suppress:
      - rule: token-leak            # a finding rule (hopsim check --format sarif lists them)
        topology: eks-untrusted-pod
        principal: untrusted-pod    # optional, a shell pattern (i*-docker-*); absent: any
        hop_limit: 2                # optional; absent: any
        reason: our own agent, reviewed in SEC-123
        expires: 2026-06-30         # optional: from this day on, it counts again

A suppressed finding no longer fails the run; every report still shows it,
as suppressed, with its reason. Only values here: which finding an entry
matches is decided in report/findings.py.
"""

from __future__ import annotations

import datetime
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import partial
from pathlib import Path
from typing import Any

from hopsim.imds import MAX_HOP_LIMIT, MIN_HOP_LIMIT
from hopsim.loader import load_text
from hopsim.topology import Problem, TopologyError, closest
from hopsim.topology.reader import Abort, read_yaml, show

DEFAULT_FILE = ".hopsimignore.yaml"  # read from the current folder when there
KEYS = ("rule", "topology", "principal", "hop_limit", "reason", "expires")
REQUIRED = ("rule", "topology", "reason")


@dataclass(frozen=True)
class Suppression:
    """One accepted finding (or group of findings), where it is written and why."""

    rule: str
    topology: str
    principal: str | None  # a shell pattern; None: any principal
    hop_limit: int | None  # None: any hop limit
    reason: str
    expires: datetime.date | None
    file: str
    line: int | None

    def expired(self, today: datetime.date) -> bool:
        return self.expires is not None and today >= self.expires

    def covers(self, rule: str, topology: str, hop_limit: int | None,
               principals: Iterable[str]) -> bool:
        """Whether it accepts a finding of `rule` in `topology` at `hop_limit`
        for every one of `principals` (a finding may stand for many)."""
        if (rule, topology) != (self.rule, self.topology):
            return False
        if self.hop_limit is not None and hop_limit != self.hop_limit:
            return False
        return self.principal is None or all(fnmatchcase(p, self.principal)
                                             for p in principals)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def describe(self) -> str:
        what = [self.rule, self.topology]
        if self.principal:
            what.append(self.principal)
        if self.hop_limit is not None:
            what.append(f"hop limit {self.hop_limit}")
        return " ".join(what)


def read(path: str | Path, rules: Collection[str]) -> list[Suppression]:
    """The suppressions of a file; raise TopologyError with every problem
    (a file, line and key each), `rules` being the rule ids that exist."""
    file = str(path)
    text = load_text(path)
    try:
        doc, lines, _, soft = read_yaml(text)
    except Abort as abort:
        raise TopologyError([Problem(file, abort.line, abort.key, abort.message)]) from None
    problems = [Problem(file, line, key, message) for line, key, message in soft]
    if doc is None:
        doc = {"suppress": []}
    if not isinstance(doc, dict) or set(doc) != {"suppress"} or not isinstance(
            doc["suppress"], list):
        problems.append(Problem(file, 1, "", "expected a mapping with one key, suppress: a "
                                "list of entries with rule, topology and reason"))
        raise TopologyError(problems)
    found = []
    for index, entry in enumerate(doc["suppress"]):
        key = f"suppress.{index}"
        line = lines.get(key)
        bad = partial(_bad, problems, file, lines, key)

        if not isinstance(entry, dict):
            bad("", f"expected a mapping with rule, topology and reason, got {show(entry)}")
            continue
        for name in entry:
            if name not in KEYS:
                bad(str(name), f"unknown key {show(name)}{closest(name, KEYS)}; expected "
                    f"one of {', '.join(KEYS)}")
        for name in REQUIRED:
            if name not in entry:
                bad("", f"missing required key {name!r}")
            elif not isinstance(entry[name], str) or not entry[name].strip():
                bad(name, f"expected text, got {show(entry[name])}")
        if isinstance(entry.get("rule"), str) and entry["rule"] not in rules:
            bad("rule", f"unknown rule {show(entry['rule'])}{closest(entry['rule'], rules)};"
                f" expected one of {', '.join(rules)}")
        principal = entry.get("principal")
        if principal is not None and not isinstance(principal, str):
            bad("principal", f"expected a name or a pattern, got {show(principal)}")
        hop_limit = entry.get("hop_limit")
        if hop_limit is not None and (type(hop_limit) is not int
                                      or not MIN_HOP_LIMIT <= hop_limit <= MAX_HOP_LIMIT):
            bad("hop_limit", f"expected {MIN_HOP_LIMIT}..{MAX_HOP_LIMIT}, got {show(hop_limit)}")
        expires = _date(entry.get("expires"))
        if "expires" in entry and expires is None:
            bad("expires", f"expected a date such as 2026-06-30, got {show(entry['expires'])}")
        found.append(Suppression(entry.get("rule"), entry.get("topology"), principal,
                                 hop_limit, entry.get("reason"), expires, file, line))
    if problems:
        raise TopologyError(sorted(problems, key=lambda p: p.line or 0))
    return found


def _bad(problems: list[Problem], file: str, lines: Mapping[str, int], key: str, name: str,
         message: str) -> None:
    """A problem with key `name` of the entry at `key` (the entry itself: "")."""
    problems.append(Problem(file, lines.get(f"{key}.{name}", lines.get(key)),
                            f"{key}.{name}" if name else key, message))


def _date(value: Any) -> datetime.date | None:
    """YAML reads 2026-06-30 as a date (libyaml) or as text: either way."""
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None

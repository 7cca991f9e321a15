"""`hopsim diff`: two designs (two files, or one file under two what-ifs), each
checked at its configured hop limit, and the principals whose outcome changes.

Pure: reports in, a `Diff` out; it renders itself as plain text, JSON and
Markdown (a pull request comment). The CLI draws the table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hopsim.analysis import Report
from hopsim.outcome import Outcome, Verdict
from hopsim.report.wording import reason


def _bad(outcome: Outcome | None) -> bool:
    return outcome is not None and outcome.bad


@dataclass(frozen=True)
class Change:
    """One principal whose outcome differs: None on a side where it is absent."""

    principal: str
    role: str | None
    before: Outcome | None
    after: Outcome | None

    @property
    def effect(self) -> str:
        """fixed (a finding gone), broke (a finding new), or changed."""
        was, now = _bad(self.before), _bad(self.after)
        return "fixed" if was and not now else "broke" if now and not was else "changed"

    @staticmethod
    def _access(outcome: Outcome | None) -> str:
        return outcome.access.value if outcome is not None else "(absent)"

    @property
    def was(self) -> str:
        return self._access(self.before)

    @property
    def now(self) -> str:
        return self._access(self.after)

    @property
    def why(self) -> str:
        return reason(self.after) if self.after is not None else ""


@dataclass(frozen=True)
class Diff:
    before_name: str  # how each side is named: a file, or a file and its what-if
    after_name: str
    before: Report
    after: Report
    changes: tuple[Change, ...]

    @property
    def verdicts(self) -> tuple[Verdict, Verdict]:
        return self.before.results[0].verdict, self.after.results[0].verdict

    def summary(self) -> str:
        was, now = self.verdicts
        count = len(self.changes)
        noun = "principal changes" if count == 1 else "principals change"
        return (f"{self.before_name}: {was.value}; {self.after_name}: {now.value}; "
                f"{count} {noun}" if count else
                f"{self.before_name}: {was.value}; {self.after_name}: {now.value}; "
                "no principal changes")

    def to_json(self) -> str:
        was, now = self.verdicts
        doc = {
            "before": {"name": self.before_name, "verdict": was.value,
                       "hop_limit": self.before.results[0].hop_limit},
            "after": {"name": self.after_name, "verdict": now.value,
                      "hop_limit": self.after.results[0].hop_limit},
            "changes": [{"principal": c.principal, "role": c.role, "effect": c.effect,
                         "before": c.was, "after": c.now,
                         "before_reason": reason(c.before) if c.before else None,
                         "after_reason": reason(c.after) if c.after else None}
                        for c in self.changes],
        }
        return json.dumps(doc, indent=2) + "\n"

    def to_markdown(self) -> str:
        was, now = self.verdicts
        lines = [f"### hopsim diff: {_md(self.before_name)} → {_md(self.after_name)}", "",
                 f"Verdict: **{was.value}** → **{now.value}**", ""]
        if not self.changes:
            lines.append("No principal's outcome changes.")
            return "\n".join(lines) + "\n"
        lines += ["| principal | role | before | after | effect | why (after) |",
                  "| --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {_md(c.principal)} | {c.role or '-'} | {c.was} | {c.now} | {c.effect} | "
                  f"{_md(c.why)} |" for c in self.changes]
        return "\n".join(lines) + "\n"

    def to_text(self) -> str:
        lines = [self.summary()]
        lines += [f"  {c.principal} ({c.role or '-'}): {c.was} -> {c.now} ({c.effect})"
                  for c in self.changes]
        return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def diff(before: Report, after: Report, before_name: str, after_name: str) -> Diff:
    """The principals whose access differs between the two reports' first
    results (each topology at its configured hop limit, or at a what-if)."""
    old = {o.node: o for o in before.results[0].outcomes}
    new = {o.node: o for o in after.results[0].outcomes}
    changes = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        if a is not None and b is not None and a.access is b.access:
            continue
        role = (b or a).role  # type: ignore[union-attr]
        changes.append(Change(name, role, a, b))
    return Diff(before_name, after_name, before, after, tuple(changes))


def table(out: Any, found: Diff) -> Any:
    """`found` as a rich table for the console `out`."""
    from hopsim.report.table import grid

    changes = grid(out, "principal", "role", "before", "after", "effect", "why (after)",
                   title=found.summary())
    for c in found.changes:
        changes.add_row(c.principal, c.role or "-", c.was, c.now, c.effect, c.why)
    return changes

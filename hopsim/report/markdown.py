"""Markdown for people reading CI: PR comments and $GITHUB_STEP_SUMMARY.

Compact: a heading that says whether the run failed, the findings (the same
ones as junit and sarif, see findings.py), then the results table. Names and
reasons come from files, so they are escaped: a `|` in a node name must not
break the table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from hopsim.analysis import Report, Result, rows, verdict_runs
from hopsim.outcome import Verdict
from hopsim.report import findings
from hopsim.report.wording import plural
from hopsim.topology import Problem
from hopsim.untrusted import shown

MAX_COLUMNS = 8  # more hop limits than this are written as runs, as in the table
ICON = {Verdict.OK: "✅", Verdict.LEAK: "❌", Verdict.BROKEN: "⚠️"}
_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~&])")


def md(text: object) -> str:
    """Inline text with Markdown's special characters escaped, on one line."""
    return _SPECIAL.sub(r"\\\1", " ".join(shown(text).split()))


def code(text: str) -> str:
    text = shown(text)
    return f"`{text}`" if "`" not in text and "\n" not in text else md(text)


def _verdict(verdict: Verdict) -> str:
    return f"{ICON[verdict]} {verdict.value}"


def _expect(report: Report) -> str:
    if not report.expectations:
        return "-"
    failed = len(report.failed)
    return f"❌ {failed} failed" if failed else f"{len(report.expectations)} passed"


def _where(f: findings.Finding) -> str:
    line = f.topology.line_of(*f.path)
    return code(f"{f.topology.file}:{line}" if line else f.topology.file)


def _finding(f: findings.Finding) -> str:
    settings = "".join(f"; {md(r.message.split(' is set')[0])}: "
                       f"{code(f'{r.elsewhere[0]}:{r.elsewhere[1]}')}"
                       for r in f.related if r.elsewhere)
    fixes = "".join(f"\n  - fix: {md(text)}" for text in findings.fixes_in_words(f))
    return (f"- ❌ **{md(f.topology.name)}** ({f.rule.id}, {_where(f)}): {md(f.message)}"
            f"{settings}{fixes}")


def _hop_limit(result: Result) -> str:
    if result.hop_limit is not None:
        return str(result.hop_limit)
    # A group of alike principals shares its hop limit: a fleet's check makes
    # one outcome per group, not 81,000.
    limits = {row.first.hop_limit for row in rows(result.outcomes) if row.first.hop_limit}
    return "/".join(str(h) for h in sorted(limits)) or "-"


def _totals(reports: Sequence[Report]) -> str:
    counts = {v: 0 for v in Verdict}
    for report in reports:
        for result in report.results:
            counts[result.verdict] += 1
    results = sum(counts.values())
    line = (f"{plural(len(reports), 'topology', 'topologies')}, "
            f"{plural(results, 'result')}: "
            + ", ".join(f"{counts[v]} {v.value}" for v in Verdict))
    checked = sum(len(r.expectations) for r in reports)
    if checked:
        failed = sum(len(r.failed) for r in reports)
        line += f"; expectations: {checked - failed} passed, {failed} failed"
    return line


def _heading(command: str, found: Sequence[findings.Finding],
             problems: Sequence[Problem], what: str = "") -> list[str]:
    accepted = sum(f.alike for f in found if not f.fails)
    found = [f for f in found if f.fails]
    count = sum(f.alike for f in found)  # a finding may stand for many alike principals
    if problems:
        status = f"❌ {plural(len(problems), 'bad input')}"
        if found:
            status += f", {plural(count, 'finding')}"
    elif found:
        status = f"❌ {plural(count, 'finding')}"
    elif command == "sweep":
        status = "✅ every expect entry holds"
    else:
        status = "✅ no findings"
    if accepted:
        status += f" ({accepted:,} suppressed)"
    return [f"### hopsim {command}{what}: {status}", ""]


def _problems(problems: Sequence[Problem]) -> list[str]:
    if not problems:
        return []
    return ["**Bad input** (not checked):", ""] + [
        f"- {code(f'{p.file}:{p.line}' if p.line else p.file)}: "
        + md(p.what) for p in problems] + [""]


def _findings(found: Sequence[findings.Finding]) -> list[str]:
    failing = [f for f in found if f.fails]
    lines = [_finding(f) for f in failing] + ([""] if failing else [])
    accepted = [f for f in found if not f.fails]
    if accepted:
        lines += ["**Suppressed** (accepted on purpose):", ""] + [
            f"- ☑️ **{md(f.topology.name)}** ({f.rule.id}, {_where(f)}): {md(f.message)}. "
            f"Reason: {md(f.suppression.reason)} ({code(f.suppression.where)}"  # type: ignore[union-attr]
            + (f", until {f.suppression.expires}" if f.suppression.expires else "")  # type: ignore[union-attr]
            + ")" for f in accepted] + [""]
    return lines


def check(reports: Sequence[Report], problems: Iterable[Problem]) -> str:
    problems = list(problems)
    found = findings.of_run(reports, "check")
    lines = _heading("check", found, problems) + _findings(found) + _problems(problems)
    if reports:
        lines += [f"<details{' open' if len(reports) <= 3 else ''}>"
                  f"<summary>{md(_totals(reports))}</summary>", "",
                  "| topology | hop limit | verdict | why | expect |",
                  "| --- | ---: | --- | --- | --- |"]
        for report in reports:
            for result in report.results:
                lines.append(f"| {md(report.topology.name)} | {_hop_limit(result)} | "
                             f"{_verdict(result.verdict)} | {md(result.reason)} | "
                             f"{_expect(report)} |")
        lines += ["", "</details>", ""]
    return "\n".join(lines)


def sweep(reports: Sequence[Report], problems: Iterable[Problem],
          hop_limits: Sequence[int]) -> str:
    problems = list(problems)
    found = findings.of_run(reports, "sweep")
    what = f" (hop limits {_ranges(hop_limits)})" if hop_limits else ""
    lines = _heading("sweep", found, problems, what) + _findings(found) + _problems(problems)
    if reports:
        compact = len(hop_limits) > MAX_COLUMNS
        columns = ["verdicts"] if compact else [str(h) for h in hop_limits]
        lines += [
            "| topology | " + " | ".join(columns) + " | best | expect |",
            "| --- | " + " | ".join("---" if compact else ":---:" for _ in columns)
            + " | ---: | --- |"]
        for report in reports:
            verdicts = {r.hop_limit: r.verdict for r in report.results}
            cells = [_runs(report, hop_limits)] if compact else [
                _verdict(verdicts[h]) for h in hop_limits]
            best = report.recommended_hop_limit
            lines.append(f"| {md(report.topology.name)} | " + " | ".join(cells)
                         + f" | {'none' if best is None else best} | {_expect(report)} |")
        lines.append("")
        notes = [f"- {md(r.topology.name)}: {md(r.recommendation)}" for r in reports
                 if r.recommended_hop_limit is None]
        lines += notes + ([""] if notes else [])
        lines += [_totals(reports), ""]
    return "\n".join(lines)


def _runs(report: Report, hop_limits: Sequence[int]) -> str:
    """'✅ ok 2-64' runs, as the table writes them."""
    return ", ".join(f"{_verdict(v)} {a}" + (f"-{b}" if b != a else "")
                     for v, a, b in verdict_runs(report, hop_limits))


def _ranges(hop_limits: Sequence[int]) -> str:
    """[1, 2, 3, 8] -> '1-3, 8'."""
    spans: list[tuple[int, int]] = []
    for h in sorted(hop_limits):
        if spans and spans[-1][1] == h - 1:
            spans[-1] = (spans[-1][0], h)
        else:
            spans.append((h, h))
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)

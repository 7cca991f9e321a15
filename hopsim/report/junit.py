"""JUnit XML for CI test reports (GitLab, Jenkins, GitHub test reporters).

A testsuite per topology; a testcase per hop limit and per `expect` entry.
Test names never contain a verdict, so CI history follows one test across
runs. A testcase fails exactly when it holds a finding (see findings.py):
under `check` a leak or a starved workload fails its hop limit; under
`sweep` only failed `expect` entries fail, as for the exit code. The output
validates against Jenkins' junit-10.xsd (tests/schemas/): <failure>, never
<error>, and times of "0" (the simulation has no wall clock).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence

from hopsim.analysis import Expectation, Report, Result, rows
from hopsim.outcome import Outcome
from hopsim.report import findings
from hopsim.report.wording import reason, role_of
from hopsim.topology import Problem

# XML 1.0 forbids most control characters, even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: object) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def _element(parent: ET.Element, tag: str, text: str | None = None, **attrs: object) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: _text(v) for k, v in attrs.items()})
    if text is not None:
        element.text = _text(text)
    return element


def _principal_lines(outcomes: Sequence[Outcome], undeclared: frozenset[str]) -> str:
    return "\n".join(f"{row.who()} ({_role(row.first, undeclared)}): "
                     f"{row.first.access.value}: {reason(row.first)}" for row in rows(outcomes))


def _role(o: Outcome, undeclared: frozenset[str]) -> str:
    shown = role_of(o, undeclared)
    return {"-": "no role", "untrusted": "untrusted: no role declared"}.get(shown, shown)


def _evidence(o: Outcome, undeclared: frozenset[str] = frozenset()) -> str:
    lines = [f"principal: {o.node}", f"role: {role_of(o, undeclared)}",
             f"outcome: {o.access.value}",
             f"reason: {reason(o)}"]
    if o.dropped_at:
        lines.append(f"dropped_at: {o.dropped_at}")
    return "\n".join(lines)


def _hop_limit_name(result: Result) -> str:
    return (f"hop limit {result.hop_limit}" if result.hop_limit is not None
            else "configured hop limits")


def _set_at(f: findings.Finding) -> str:
    """Where the finding's own key and its settings are written (imported files)."""
    lines = [f"{r.message}: {r.elsewhere[0]}:{r.elsewhere[1]}" for r in f.related
             if r.elsewhere]
    if not lines:
        return ""
    where = f.topology.line_of(*f.path)
    return "\n" + "\n".join([f"where: {f.topology.file}:{where}" if where else
                              f"where: {f.topology.file}", *lines])


def _result_case(suite: ET.Element, classname: str, report: Report, result: Result,
                 command: str) -> str:
    """Add a result's testcase; "failed", "skipped" (its findings all
    suppressed) or "" (passed)."""
    case = _element(suite, "testcase", classname=classname, name=_hop_limit_name(result),
                    time="0")
    every = findings.for_result(report, result, command)
    found = [f for f in every if f.fails]
    if found:
        undeclared = report.topology.undeclared
        body = "\n\n".join(f"{f.rule.title} ({f.rule.id})\n" + _evidence(f.outcome, undeclared)
                           + _set_at(f) + "".join(f"\nfix: {text}" for text in
                                                  findings.fixes_in_words(f))
                           for f in found if f.outcome)
        _element(case, "failure", body, type=result.verdict.value,
                 message=f"{result.verdict.value}: {result.reason}")
    elif every:  # each one accepted on purpose
        _element(case, "skipped", message="suppressed: " + "; ".join(
            f"{f.rule.id} {f.node}: {f.suppression.reason}"  # type: ignore[union-attr]
            for f in every))
    _element(case, "system-out", f"verdict: {result.verdict.value} ({result.reason})\n"
             + _principal_lines(result.outcomes, report.topology.undeclared) + "\n")
    return "failed" if found else "skipped" if every else ""


def _expectation_case(suite: ET.Element, classname: str, report: Report,
                      e: Expectation, accepted: Mapping[Expectation, str]) -> str:
    case = _element(suite, "testcase", classname=classname,
                    name=f"expect at hop limit {e.hop_limit}: {e.node} gets {e.expected}",
                    time="0")
    if e.passed:
        return ""
    if e in accepted:
        _element(case, "skipped", message=f"suppressed: {accepted[e]}")
        return "skipped"
    o = findings.outcome_at(report, e.hop_limit, e.node)
    t = report.topology
    line = t.line_of("expect", e.hop_limit, e.node)
    body = [f"expected: {e.expected}", f"actual: {e.actual}",
            f"where: {t.file}:{line}" if line else f"where: {t.file}"]
    if o:
        body.append(_evidence(o))
    else:
        body.append(f"why: hopsim trace {t.file} --from {e.node} --hop-limit {e.hop_limit}")
    _element(case, "failure", "\n".join(body), type=findings.FAILED_EXPECTATION.id,
             message=f"at hop limit {e.hop_limit} {e.node} expected {e.expected}, "
                     f"got {e.actual}")
    return "failed"


def _suite(root: ET.Element, report: Report, command: str) -> tuple[int, int]:
    t = report.topology
    suite = _element(root, "testsuite", name=t.name, tests="0", failures="0", errors="0",
                     skipped="0", time="0", file=t.file)
    properties = _element(suite, "properties")
    recommended = report.recommended_hop_limit
    for name, value in (("command", command), ("file", t.file),
                        ("recommended_hop_limit", "none" if recommended is None else recommended),
                        ("recommendation", report.recommendation)):
        _element(properties, "property", name=name, value=value)
    classname = f"hopsim.{t.name}"
    accepted = {f.expectation: f.suppression.reason for f in findings.for_expectations(report)
                if f.expectation and f.suppression}
    cases = [_result_case(suite, classname, report, r, command) for r in report.results]
    cases += [_expectation_case(suite, classname, report, e, accepted)
              for e in report.expectations]
    failures = cases.count("failed")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(failures))
    suite.set("skipped", str(cases.count("skipped")))
    return len(cases), failures


def _bad_input_suite(root: ET.Element, file: str, problems: Sequence[Problem]) -> None:
    suite = _element(root, "testsuite", name=file, tests="1", failures="1", errors="0",
                     skipped="0", time="0", file=file)
    case = _element(suite, "testcase", classname="hopsim.bad-input", name=f"load {file}",
                    time="0")
    _element(case, "failure", "\n".join(map(str, problems)), type="bad-input",
             message=str(problems[0]))


def document(command: str, reports: Sequence[Report], problems: Iterable[Problem]) -> str:
    root = ET.Element("testsuites", {"name": f"hopsim {command}"})
    tests = failures = 0
    for report in reports:
        n, failed = _suite(root, report, command)
        tests, failures = tests + n, failures + failed
    by_file: dict[str, list[Problem]] = {}
    for problem in problems:
        by_file.setdefault(problem.file, []).append(problem)
    for file, found in by_file.items():
        _bad_input_suite(root, file, found)
        tests, failures = tests + 1, failures + 1
    root.set("tests", str(tests))
    root.set("failures", str(failures))
    root.set("errors", "0")
    root.set("time", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"

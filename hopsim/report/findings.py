"""Findings: what in a run makes it exit 1, each pinned to a key of its file.

The CI formats (junit, sarif, markdown) all report these same findings, so
they agree with each other and with the exit code: `check` fails on a leak, a
starved workload or a failed `expect` entry; `sweep` only on a failed `expect`
entry (a folder of deliberately leaky lessons still passes).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from hopsim.analysis import GROUP_ABOVE, Expectation, Report, Result, rows
from hopsim.outcome import Access, Outcome, Role, Verdict
from hopsim.own_words import declaration
from hopsim.report.wording import reason
from hopsim.suppressions import Suppression
from hopsim.topology import Topology
from hopsim.topology.reader import dotted

KeyPath = tuple[str | int, ...]  # ("nodes", "app") or ("expect", 2, "app")


@dataclass(frozen=True)
class Rule:
    """One kind of finding: a SARIF rule, a JUnit failure type."""

    id: str
    name: str  # PascalCase, as SARIF's reportingDescriptor.name
    title: str
    description: str
    fix: str
    tags: tuple[str, ...]
    security_severity: str | None = None  # GitHub's 0.0-10.0 scale; None: not security


TOKEN_LEAK = Rule(
    "token-leak", "TokenLeak", "attacker gets the IMDSv2 token",
    "A principal with role attacker receives an IMDSv2 session token: it can read the "
    "instance role's credentials. The token response crossed fewer routers than the hop "
    "limit allows, or an L7 relay re-sent it with a fresh TTL.",
    "Lower the hop limit to at most the number of routers between IMDS and the attacker, "
    "or, where a relay passed the token on, make it refuse PUT or add X-Forwarded-For "
    "(IMDS then refuses the PUT).",
    ("security", "imds", "ssrf"), "8.8")
CREDENTIAL_LEAK = Rule(
    "imdsv1-credential-leak", "Imdsv1CredentialLeak", "attacker gets IMDSv1 credentials",
    "A principal with role attacker reads the instance role's credentials with a tokenless "
    "IMDSv1 GET: http_tokens is optional, and no hop limit protects that response.",
    "Set http_tokens: required (HttpTokens=required) on the instance.",
    ("security", "imds", "imdsv1"), "8.8")
STARVED_WORKLOAD = Rule(
    "starved-workload", "StarvedWorkload", "workload gets no token",
    "A principal with role workload gets no IMDSv2 token: the token response is dropped "
    "on the way (TTL exceeded) or refused. SDKs then hang for seconds or fall back to "
    "IMDSv1.",
    "Raise the hop limit to the number of routers on the workload's path plus one, or "
    "move the workload onto the instance's network.",
    ("reliability", "imds"))
FAILED_EXPECTATION = Rule(
    "failed-expectation", "FailedExpectation", "expect entry fails",
    "An entry of the topology's expect section does not hold: the simulated outcome of "
    "that principal at that hop limit differs from the one written in the file.",
    "Fix the design, or the expect entry if the design changed on purpose; "
    "`hopsim trace FILE --from NODE --hop-limit N` shows why.",
    ("correctness",))

RULES = (TOKEN_LEAK, CREDENTIAL_LEAK, STARVED_WORKLOAD, FAILED_EXPECTATION)
# Not a finding (it exits 2, not 1, and nothing was checked): a file or an
# option hopsim could not use, reported where CI shows findings.
BAD_INPUT = Rule(
    "bad-input", "BadInput", "bad input: not checked",
    "A topology file, a --settings file or a command-line option hopsim could not use: "
    "the design it describes was not checked at all.",
    "Fix the file at the line given (or the option); `hopsim validate FILE` lists every "
    "problem.",
    ("correctness",))


@dataclass(frozen=True)
class Related:
    """Another place in the file that explains a finding."""

    path: KeyPath
    message: str
    elsewhere: tuple[str, int] | None = None  # (file, line) in another file: a setting's


@dataclass(frozen=True)
class Finding:
    rule: Rule
    topology: Topology
    hop_limit: int | None
    node: str
    message: str
    path: KeyPath  # the key the finding points at
    outcome: Outcome | None = None  # the principal's outcome, when the run has it
    expectation: Expectation | None = None
    related: tuple[Related, ...] = ()
    # The principals it stands for: more than one above analysis.GROUP_ABOVE,
    # those with the same path class, role and hop limit (analysis.rows).
    alike: int = 1
    members: tuple[str, ...] = ()  # their names (the node's alone when it is one)
    suppression: Suppression | None = None  # accepted on purpose: fails nothing

    @property
    def fails(self) -> bool:
        return self.suppression is None


def verdicts_fail(command: str) -> bool:
    """Whether a leak or a starved workload is a finding for this command."""
    return command != "sweep"


def for_result(report: Report, result: Result, command: str) -> list[Finding]:
    """The leaks and starved workloads of one result (none for a sweep): one
    per principal, or above GROUP_ABOVE principals one per group of alike
    principals (a 100k-node fleet's check: 24,469 findings in 27 groups)."""
    if not verdicts_fail(command):
        return []
    found = []
    for row in rows(result.outcomes):
        o, who = row.first, row.who(report.topology.label)
        gets = "gets" if row.principals == 1 else "get"
        if o.bad and o.role == Role.ATTACKER:
            rule = TOKEN_LEAK if o.access is Access.TOKEN else CREDENTIAL_LEAK
            what = "the IMDSv2 token" if o.access is Access.TOKEN else "IMDSv1 credentials"
            after = ""
            if o.node in report.topology.undeclared:
                holds = "holds" if row.principals == 1 else "hold"
                how = "the IMDSv2 token" if o.access is Access.TOKEN else "an IMDSv1 GET"
                message = f"{who} {holds} the instance's credentials"
                after = f" ({how}); not declared a workload"
            else:
                message = f"{who} (role attacker) {gets} {what}"
            found.append(_finding(report, result, o, rule, message, row.principals,
                                  row.members, after))
        elif o.bad:
            found.append(_finding(report, result, o, STARVED_WORKLOAD,
                                  f"{who} (role workload) {gets} no token", row.principals,
                                  row.members))
    return _accepted(found, report.suppressions)


def for_expectations(report: Report) -> list[Finding]:
    """Every failed `expect` entry, with the outcome when the run has it."""
    found = []
    for e in report.failed:
        o = outcome_at(report, e.hop_limit, e.node)
        why = f": {reason(o)}" if o else ""
        found.append(Finding(
            FAILED_EXPECTATION, report.topology, e.hop_limit, e.node,
            f"expected {e.node} to get {e.expected} at hop limit {e.hop_limit}, "
            f"got {e.actual}{why}",
            ("expect", e.hop_limit, e.node), o, e,
            (Related(("nodes", e.node), f"{e.node}, the principal"),), members=(e.node,)))
    return _accepted(found, report.suppressions)


def of_report(report: Report, command: str) -> list[Finding]:
    found = [f for r in report.results for f in for_result(report, r, command)]
    return found + for_expectations(report)


def of_run(reports: Iterable[Report], command: str) -> list[Finding]:
    return [f for r in reports for f in of_report(r, command)]


def fails(reports: Iterable[Report], command: str) -> bool:
    """Whether a finding of the run is not suppressed; without suppressions,
    without making the findings: a leak or a starved workload is what makes a
    result's verdict other than ok, so a fleet's exit code needs no
    principal's outcome."""
    return any(any(f.fails for f in of_report(report, command)) if report.suppressions
               else report.failed or (verdicts_fail(command) and any(
                   r.verdict is not Verdict.OK for r in report.results)) for report in reports)


def _accepted(found: list[Finding], suppressions: Sequence[Suppression],
              today: datetime.date | None = None) -> list[Finding]:
    """The findings, each marked with the first suppression that accepts it
    (an expired one accepts nothing; a grouped finding is accepted only when
    each principal it stands for is)."""
    if not suppressions:
        return found
    today = today or datetime.date.today()
    live = [s for s in suppressions if not s.expired(today)]
    return [next((replace(f, suppression=s) for s in live if s.covers(
        f.rule.id, f.topology.name, f.hop_limit, f.members or (f.node,))), f) for f in found]


MAX_FIXES = 2  # shown per finding, best first
FIXES_UP_TO = GROUP_ABOVE  # principals: above, a finding's fixes are `hopsim fix`'s to find


def fixes_in_words(f: Finding) -> tuple[str, ...]:
    """What would fix a leak or a starved workload, each checked by playing
    it (hopsim.explain): in the product's or the settings file's words where
    hopsim knows them, with hopsim's own option; for an imported principal
    with no declared role, how its file declares it a workload. Only for
    designs up to FIXES_UP_TO principals (explain weighs each change against
    every other principal)."""
    t, o = f.topology, f.outcome
    if o is None or f.rule not in (TOKEN_LEAK, CREDENTIAL_LEAK, STARVED_WORKLOAD) or len(
            t.principals) > FIXES_UP_TO or o.node not in t.nodes:
        return ()
    from hopsim.explain import explain

    at = t.with_imds(hop_limit=f.hop_limit) if f.hop_limit is not None and set(
        t.hop_limits().values()) != {f.hop_limit} else t
    out = []
    for change in explain(at, o.node).fixes[:MAX_FIXES]:
        words = change.words
        if words is not None and words.text:
            who = f"{words.setup.label}: " if words.setup else ""
            text = f"{who}{words.line()} (hopsim: {change.option})"
        else:
            text = f"{change.description} ({change.option})"
        out.append(text + (f"; but {change.harm}" if change.harm else ""))
    declared = declaration(t, o.node)
    if declared:
        out.append(f"if {o.node} is meant to use the instance's role: {declared}")
    return tuple(out)


def outcome_at(report: Report, hop_limit: int, node: str) -> Outcome | None:
    """The node's outcome at a hop limit, if one of the report's results is at it."""
    for result in report.results:
        if result.hop_limit == hop_limit:
            return next((o for o in result.outcomes if o.node == node), None)
    return None


def _settings_lines(topology: Topology, rule: Rule) -> list[Related]:
    """Where the setting behind a finding is written, when --settings read it
    from source: the hop limit for a leaked token or a starved workload,
    http_tokens for IMDSv1 credentials."""
    if not topology.sources:
        return []
    key = "http_tokens" if rule is CREDENTIAL_LEAK else "hop_limit"
    found = []
    for imds in topology.imds_nodes:
        source = topology.sources.get(dotted(("nodes", imds, key)))
        if source is not None:
            value = getattr(topology.nodes[imds].imds, key)
            name = "hop limit" if key == "hop_limit" else key
            found.append(Related(("nodes", imds, key), f"{name} {value} is set here", source))
    return found


def _finding(report: Report, result: Result, o: Outcome, rule: Rule, what: str,
             alike: int, members: tuple[str, ...], after: str = "") -> Finding:
    hop_limit = result.hop_limit if result.hop_limit is not None else o.hop_limit
    related = []
    if o.receiver not in (None, o.node):
        related.append(Related(("nodes", o.receiver), f"{o.receiver} received the token "
                               f"response for {o.node}"))
    if o.dropped_at:
        related.append(Related(("nodes", o.dropped_at), f"{o.dropped_at} dropped the token "
                               "response (TTL exceeded)"))
    related += _settings_lines(report.topology, rule)
    at = f" at hop limit {hop_limit}" if hop_limit is not None else ""
    return Finding(rule, report.topology, hop_limit, o.node,
                   f"{what}{at}{after}: {reason(o)}", ("nodes", o.node), o,
                   None, tuple(related), alike, members)

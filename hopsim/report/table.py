"""Rich tables for people: colour on a terminal, plain ASCII in CI logs.

Every renderer returns rich renderables; the caller's Console decides colour
(NO_COLOR, a pipe) and width (80 columns when not a terminal).
"""

from __future__ import annotations

import io
import os
import textwrap
from collections.abc import Iterable, Sequence

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from hopsim.analysis import Report, Result, rows, verdict_runs
from hopsim.engine import Action, Exchange
from hopsim.explain import Explanation
from hopsim.outcome import Access, Role, Verdict
from hopsim.own_words import declaration
from hopsim.report import findings
from hopsim.report.wording import HOLDS, finding, plural, reason, role_of
from hopsim.routing import Router
from hopsim.topology import Topology
from hopsim.untrusted import shown

VERDICT_STYLE = {Verdict.OK: "green", Verdict.LEAK: "bold red", Verdict.BROKEN: "yellow"}
ACCESS_STYLE = {Access.TOKEN: "bold", Access.CREDENTIALS: "bold", Access.NONE: "dim"}
ACTION_STYLE = {Action.DROP: "bold red", Action.ICMP: "red", Action.REFUSE: "yellow",
                Action.TIMEOUT: "yellow", Action.DELIVER: "green"}


def console(file=None, *, force_terminal: bool | None = None,
            color: bool | None = None) -> Console:
    """A console for hopsim's output. color: True forces colour and styles,
    False turns every style off, bold included (rich's own NO_COLOR keeps
    bold); None: on a terminal, off when NO_COLOR is set (no-color.org)."""
    if color is None and os.environ.get("NO_COLOR"):
        color = False
    system: dict[str, str | None] = {}
    if color is False:
        system["color_system"] = None
    elif color:
        force_terminal = True
        if Console(file=io.StringIO(), force_terminal=True).color_system is None:
            system["color_system"] = "standard"  # asked for, even where TERM=dumb
    # Names and reasons are data: "instance[webapp]" is not markup, ":x:" no emoji.
    return Console(file=file, highlight=False, markup=False, emoji=False,
                   force_terminal=force_terminal, **system)  # type: ignore[arg-type]


def grid(out: Console, *columns: str, title: str | None = None) -> Table:
    """An empty table with these columns in hopsim's style: a light box on a
    terminal, plain ASCII in a file or pipe. Every table of every view starts here."""
    table = Table(
        *columns, title=title, title_justify="left", expand=False,
        box=box.SIMPLE_HEAD if out.is_terminal else box.ASCII2,
        show_edge=not out.is_terminal,
    )
    return table


def verdict_text(verdict: Verdict) -> Text:
    return Text(verdict.value, style=VERDICT_STYLE[verdict])


def _limit(result: Result) -> str:
    return f"hop limit {result.hop_limit}" if result.hop_limit else "configured hop limits"


def principals(out: Console, report: Report, result: Result) -> RenderableType:
    """One topology at one hop limit: each principal's outcome and why."""
    t = report.topology
    title = Text.assemble(
        (t.name, "bold"), f" at {_limit(result)}: ", verdict_text(result.verdict),
        f" ({shown(t.file)})")
    table = grid(out, "principal", "role", "outcome", "reason")
    table.columns[3].overflow = "fold"
    outcomes = result.outcomes
    grouped = rows(outcomes)
    for row in grouped:
        o = row.first
        table.add_row(row.who(t.label), role_of(o, t.undeclared),
                      Text(o.access.value, style=ACCESS_STYLE[o.access]), reason(o))
    parts: list[RenderableType] = [title, table]
    if len(grouped) < len(outcomes):
        parts.append(Text(f"{len(outcomes):,} principals in {len(grouped):,} rows: each row "
                          "stands for principals on the same kind of path, whose outcomes "
                          "differ only in names (--format json lists every one)"))
    parts += _failed_lines(result.failed)
    return Group(*parts)


def _failed_lines(failed: Iterable) -> list[RenderableType]:
    return [Text(f"expect failed: at hop limit {e.hop_limit} {e.node} expected "
                 f"{e.expected}, got {e.actual}", style="bold red") for e in failed]


def check(out: Console, reports: Sequence[Report]) -> RenderableType:
    parts: list[RenderableType] = []
    for report in reports:
        for result in report.results:
            parts.append(principals(out, report, result))
        other = [e for e in report.failed if e not in
                 {x for r in report.results for x in r.expectations}]
        parts += _failed_lines(other)
        parts.append(Text(""))
    parts.append(summary(reports, "check"))
    return Group(*parts)


def sweep(out: Console, reports: Sequence[Report], hop_limits: Sequence[int]) -> RenderableType:
    """The matrix topology x hop limit, the recommended hop limit, expectations.

    Up to 8 hop limits get a column each; more are written as runs of one
    verdict ("broken 1, ok 2-64") so the table still fits.
    """
    compact = len(hop_limits) > 8
    columns = ["verdicts"] if compact else [str(h) for h in hop_limits]
    table = grid(out, "topology", *columns, "best", "expect")
    for i in range(1, len(columns) + 1):
        table.columns[i].justify = "left" if compact else "center"
    for report in reports:
        verdicts = {r.hop_limit: r.verdict for r in report.results}
        cells = [_runs(report, hop_limits)] if compact else [
            verdict_text(verdicts[h]) for h in hop_limits]
        failed = len(report.failed)
        expect = "-" if not report.expectations else (
            Text(f"{failed} failed", style="bold red") if failed
            else Text(f"{len(report.expectations)} ok", style="green"))
        best = str(report.recommended_hop_limit) if report.recommended_hop_limit else Text(
            "none", style="bold red")
        table.add_row(report.topology.name, *cells, best, expect)
    parts: list[RenderableType] = [table]
    for report in reports:
        if report.recommended_hop_limit is None:
            parts.append(Text(f"{report.topology.name}: {report.recommendation}",
                              overflow="fold"))
        parts += [Text(f"{report.topology.name}: ", style="bold red") + line
                  for line in _failed_lines(report.failed)]
    parts.append(summary(reports, "sweep"))
    return Group(*parts)


def _runs(report: Report, hop_limits: Sequence[int]) -> Text:
    """'broken 1, ok 2-64': runs of one verdict."""
    return Text(", ").join(
        Text(f"{v.value} {a}" + (f"-{b}" if b != a else ""), style=VERDICT_STYLE[v])
        for v, a, b in verdict_runs(report, hop_limits))


def summary(reports: Sequence[Report], command: str = "check") -> Text:
    counts = {v: 0 for v in Verdict}
    for report in reports:
        for result in report.results:
            counts[result.verdict] += 1
    failed = sum(len(r.failed) for r in reports)
    checked = sum(len(r.expectations) for r in reports)
    topologies = "topology" if len(reports) == 1 else "topologies"
    results = "result" if sum(counts.values()) == 1 else "results"
    text = Text(f"{len(reports)} {topologies}, {sum(counts.values())} {results}: ")
    text += Text(", ").join(Text(f"{counts[v]} {v.value}", style=VERDICT_STYLE[v] if counts[v]
                                 else "") for v in Verdict)
    if checked:
        text += Text(f"\nexpectations: {checked - failed} passed, {failed} failed",
                     style="bold red" if failed else "")
    if any(r.suppressions for r in reports):
        accepted = [f for f in findings.of_run(reports, command) if not f.fails]
        if accepted:
            where = ", ".join(sorted({f.suppression.file for f in accepted}))  # type: ignore[union-attr]
            count = sum(f.alike for f in accepted)
            text += Text(f"\nsuppressed: {plural(count, 'finding')}, "
                         f"accepted in {where}", style="dim")
    return text


def trace(out: Console, topology: Topology, exchange: Exchange) -> RenderableType:
    """Every packet, hop by hop, with the TTL in and out: the teaching view.

    One block per message; columns keep the same widths across blocks.
    """
    o = exchange.outcome
    family = "IPv4" if o.family == 4 else "IPv6"
    limit = o.hop_limit if o.hop_limit is not None else "-"
    parts: list[RenderableType] = [
        Text.assemble(("trace ", "bold"), (topology.name, "bold"),
                      f": {o.node} at hop limit {limit} ({family})"),
        Text(f"route: {exchange.route.describe() or reason(o)}", overflow="fold"),
    ]
    if exchange.route.returns:
        # Routed on its own, by destination: it need not retrace the request.
        parts.append(Text(f"response: {exchange.route.describe_returns()}", overflow="fold"))
    hops = exchange.hops
    width = [len(str(len(hops))), max((len(h.node) for h in hops), default=0),
             max((len(h.action.value) for h in hops), default=0),
             max((len(_ttl(h.ttl_in, h.ttl_out)) for h in hops), default=0)]
    message = None
    for i, hop in enumerate(hops, 1):
        if hop.message != message:
            message = hop.message
            parts.append(Text(message, style="bold"))
        ttl = _ttl(hop.ttl_in, hop.ttl_out)
        line = Text.assemble(
            f"  {i:>{width[0]}}  {hop.node:<{width[1]}}  ",
            (f"{hop.action.value:<{width[2]}}", ACTION_STYLE.get(hop.action, "")),
            f"  {ttl:<{width[3]}}  {hop.detail}".rstrip(),
        )
        parts.append(line)
    result = Text.assemble(("outcome: ", "bold"), (o.access.value, ACCESS_STYLE[o.access]),
                           f" ({reason(o)})")
    if o.dropped_at:
        result += Text(f"; dropped_at: {o.dropped_at}")
    parts.append(result)
    return Group(*parts)


def _ttl(ttl_in: int | None, ttl_out: int | None) -> str:
    if ttl_in is not None and ttl_out is not None:
        return f"TTL {ttl_in}->{ttl_out}"
    value = ttl_in if ttl_in is not None else ttl_out
    return "" if value is None else f"TTL {value}"


def show(out: Console, topology: Topology) -> RenderableType:
    """Nodes, links and each principal's route."""
    nodes = grid(out, "node", "kind", "address", "details")
    nodes.columns[3].overflow = "fold"
    for name in sorted(topology.nodes):
        node = topology.nodes[name]
        details = []
        if name in topology.undeclared and node.role == Role.ATTACKER:
            details.append("untrusted (no role declared)")
        elif node.role:
            details.append(f"role {node.role}")
        if node.network:  # a user-space stack: it re-opens each connection
            version = f" {node.version}" if node.version else ""
            details.append(f"network {node.network}{version}: its stack re-opens each "
                           f"connection in {node.runs_on}'s, TTL 64")
        elif node.runs_on:
            details.append(f"runs on {node.runs_on}")
        if node.forwarding:
            details.append("forwarding" + (", masquerade" if node.masquerade else ""))
        if node.product:
            details.append(f"product {node.product}" + (f" ({node.mode})" if node.mode else ""))
        if node.relay:
            methods = ",".join(node.relay.methods) if node.relay.methods else "any"
            details.append(f"methods {methods}; adds XFF {str(node.relay.adds_xff).lower()};"
                           f" forwards headers {str(node.relay.forwards_headers).lower()}")
            if node.relay.refuses_imds:
                details.append("opens no connection to IMDS")
        if node.imds:
            s = node.imds
            details.append(f"hop limit {s.hop_limit}, tokens {s.http_tokens}, "
                           f"endpoint {s.http_endpoint}, ipv6 {str(s.ipv6).lower()}")
        if node.via:
            details.append("via " + ", ".join(node.via))
        if node.family == 6:
            details.append("uses IPv6")
        nodes.add_row(topology.label(name), node.kind, node.address or "-", "; ".join(details))
    router = Router(topology)
    routes = grid(out, "principal", "route to IMDS")
    routes.columns[1].overflow = "fold"
    for name in topology.principals:
        route = router.route(name)
        text = route.describe() or route.unreachable or ""
        if route.stations and not route.symmetric:
            text += f"; back: {route.describe_returns()}"
        routes.add_row(name, text)
    links = Text("links: " + ", ".join(f"{a}-{b}" for a, b in topology.links), overflow="fold")
    title = Text.assemble((topology.name, "bold"), f" ({shown(topology.file)})")
    description = Text(shown(" ".join(topology.description.split())), style="italic",
                       overflow="fold")
    parts: list[RenderableType] = [title, description, nodes, links, routes]
    if topology.markers:  # say what [C], [U] ... mean wherever they are shown
        legend = "; ".join(f"[{m}] {meaning}" for m, meaning in topology.markers.items())
        parts.insert(2, Text(f"{legend} (docs/facts.md)", style="dim", overflow="fold"))
    copies = topology.copies
    if topology.units or copies > len(topology.nodes):
        units = ", ".join(f"{u} ×{c:,}" for u, c in topology.units.items())
        parts.insert(2, Text(f"{len(topology.nodes):,} nodes written, standing for {copies:,}"
                             + (f" (units: {units})" if units else "")
                             + "; each copy routes as the node it copies", overflow="fold"))
    return Group(*parts)


def _consequence(role: str | None, node: str, access: Access) -> str:
    said = {"leak": ", a leak", "starved": ", starved", None: ""}[finding(role, access)]
    return f"{node} {HOLDS[access]}{said}"


def _indented(out: Console, text: str, indent: int, hang: int = 0) -> Text:
    """`text` wrapped to the console's width, indented, without trailing spaces."""
    return Text(textwrap.fill(text, width=max(out.width, 40), initial_indent=" " * indent,
                              subsequent_indent=" " * (indent + hang),
                              break_on_hyphens=False))


def explanations(out: Console, topology: Topology,
                 items: Sequence[Explanation]) -> RenderableType:
    """Each principal's account, and the checked changes that would flip it."""
    limits = sorted(set(topology.hop_limits().values()))
    where = f"hop limit {limits[0]}" if len(limits) == 1 else "configured hop limits"
    parts: list[RenderableType] = [
        Text.assemble(("explain ", "bold"), (topology.name, "bold"), f" at {where}")]
    for e in items:
        o = e.outcome
        role = role_of(o, topology.undeclared)
        head = Text.assemble("\n", (o.node, "bold"), f" ({'no role' if role == '-' else role}): ",
                             (o.access.value, ACCESS_STYLE[o.access]))
        if e.finding:
            head += Text(f" - {e.finding}", style="bold red" if e.finding == "leak"
                         else "yellow")
        parts += [head, _indented(out, e.story, 2)]
        for heading, changes in (("What would fix it:", e.fixes),
                                 ("What would undo it:", e.undone_by)):
            if changes:
                parts.append(_indented(out, heading, 2))
            for change in changes:
                line = (f"- {change.description} ({change.option}): "
                        f"{_consequence(o.role, o.node, change.access)}")
                if change.harm:
                    line += f"; but {change.harm}"
                parts.append(_indented(out, line, 4, hang=2))
                if changes is e.fixes and change.words is not None:
                    who = change.words.setup.label if change.words.setup else "that is"
                    parts.append(_indented(out, f"{who}: {change.words.line()}", 6, hang=2))
        if e.no_fix:
            parts.append(_indented(out, e.no_fix, 2))
        declared = declaration(topology, o.node) if e.finding else None
        if declared:
            parts.append(_indented(out, f"If {o.node} is meant to use the instance's role: "
                                   f"{declared}.", 2))
    return Group(*parts)

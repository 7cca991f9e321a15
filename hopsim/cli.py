"""The `hopsim` command: parse arguments, call the library, render. No logic.

Exit codes: 0 fine, 1 a finding, 2 bad input or usage.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import yaml

from hopsim import __version__, analysis, engine, packets
from hopsim.explain import explain as explain_principal
from hopsim.imds import HTTP_TOKENS, MAX_HOP_LIMIT, MIN_HOP_LIMIT
from hopsim.report import json as json_report
from hopsim.report import table
from hopsim.routing import Router
from hopsim.topology import (
    Problem,
    Topology,
    TopologyError,
    _closest,
    load,
    topology_files,
    what_if,
)

EXIT_OK, EXIT_FINDING, EXIT_BAD_INPUT = 0, 1, 2
BUNDLED = Path(__file__).resolve().parent.parent / "topologies"


def _default_paths(paths: Sequence[str]) -> list[str]:
    if paths:
        return list(paths)
    for candidate in (BUNDLED, Path.cwd() / "topologies"):
        if candidate.is_dir():
            try:  # the short name, when run from the project
                return [str(candidate.relative_to(Path.cwd()))]
            except ValueError:
                return [str(candidate)]
    raise click.UsageError("no PATHS given and no bundled topologies/ folder found")


def _parse_set(values: Iterable[str]) -> list[tuple[str, str, Any]]:
    overrides = []
    for value in values:
        target, sep, raw = value.partition("=")
        node, dot, key = target.rpartition(".")
        if not sep or not dot or not node or not key:
            raise click.BadParameter(f"expected NODE.KEY=VALUE, got {value!r}",
                                     param_hint="--set")
        try:
            parsed = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            parsed = raw
        overrides.append((node, key, parsed))
    return overrides


def parse_hop_limits(text: str) -> list[int]:
    """'1-4', '1,2,8' or '1-3,16' -> sorted hop limits, each 1..64."""
    limits: set[int] = set()
    for part in text.split(","):
        low, sep, high = part.strip().partition("-")
        try:
            first, last = int(low), int(high) if sep else int(low)
        except ValueError:
            raise click.BadParameter(f"expected ranges such as 1-4 or 1,2,8, got {text!r}",
                                     param_hint="--hop-limits") from None
        if not MIN_HOP_LIMIT <= first <= last <= MAX_HOP_LIMIT:
            raise click.BadParameter(
                f"hop limits are {MIN_HOP_LIMIT}..{MAX_HOP_LIMIT}, got {part.strip()!r}",
                param_hint="--hop-limits")
        limits.update(range(first, last + 1))
    return sorted(limits)


def what_if_options(command: Callable) -> Callable:
    """--hop-limit, --http-tokens and --set: the 'what if' questions."""
    options = [
        click.option("--hop-limit", type=click.IntRange(MIN_HOP_LIMIT, MAX_HOP_LIMIT),
                     help="Set every imds node's hop limit."),
        click.option("--http-tokens", type=click.Choice(HTTP_TOKENS),
                     help="Set every imds node's http_tokens."),
        click.option("--set", "sets", multiple=True, metavar="NODE.KEY=VALUE",
                     help="Change one node key, e.g. --set nginx.adds_xff=true."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _load(files: Iterable[Path], sets: Sequence[str], hop_limit: int | None,
          http_tokens: str | None) -> tuple[list[Topology], list[Problem]]:
    """Load every file; a bad one is reported and the others still load."""
    overrides = _parse_set(sets)
    changes = what_if(hop_limit, http_tokens)
    # `expect` describes the file as written, hop limit by hop limit: a what-if
    # hop limit keeps it meaningful; other changes do not.
    keep_expect = not overrides and http_tokens is None
    if not keep_expect:
        click.echo("note: --set/--http-tokens change the topology: its expect entries "
                   "are not checked", err=True)
    topologies: list[Topology] = []
    problems: list[Problem] = []
    names: dict[str, str] = {}
    for file in files:
        try:
            topology = load(file, overrides)
        except TopologyError as error:
            problems += error.problems
            continue
        if topology.name in names:
            problems.append(Problem(topology.file, topology.line_of("name"), "name",
                                    f"duplicate topology name {topology.name!r} "
                                    f"(also in {names[topology.name]})"))
            continue
        names[topology.name] = topology.file
        if changes:
            topology = topology.with_imds(**changes)
        if not keep_expect:
            topology = replace(topology, expect={})
        topologies.append(topology)
    return topologies, problems


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _report_problems(problems: Iterable[Problem]) -> None:
    for problem in problems:
        click.echo(f"error: {problem}", err=True)


def _output_format(command: Callable) -> Callable:
    return click.option("--format", "output_format", type=click.Choice(["table", "json"]),
                        default="table", show_default=True, help="Output format.")(command)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 80})
@click.version_option(__version__, prog_name="hopsim")
def main() -> None:
    """Who gets the EC2 instance metadata (IMDSv2) token, hop by hop?

    hopsim plays the IMDSv2 exchange as real packets across a topology of
    hosts, containers, bridges, routers, NATs and L7 relays, and reports who
    gets the session token (and who must not but does) for a hop limit.
    """


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@what_if_options
@_output_format
def check(paths: tuple[str, ...], hop_limit: int | None, http_tokens: str | None,
          sets: tuple[str, ...], output_format: str) -> None:
    """Check each topology at its configured hop limit.

    PATHS are files or folders (default: the bundled topologies). Exit 1 on a
    leak, a starved workload or a failed expect entry.
    """
    topologies, problems = _load(topology_files(_default_paths(paths)), sets, hop_limit,
                                 http_tokens)
    reports = [analysis.check(t) for t in topologies]
    _report_problems(problems)
    if output_format == "json":
        click.echo(json_report.document("check", reports, problems), nl=False)
    else:
        out = table.console()
        out.print(table.check(out, reports))
    finding = any(r.failed or any(x.verdict is not analysis.Verdict.OK for x in r.results)
                  for r in reports)
    sys.exit(EXIT_BAD_INPUT if problems else EXIT_FINDING if finding else EXIT_OK)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--hop-limits", "hop_limits_text", default="1-4", show_default=True,
              metavar="RANGES", help="Hop limits to try, e.g. 1-4 or 1,2,8.")
@what_if_options
@_output_format
def sweep(paths: tuple[str, ...], hop_limits_text: str, hop_limit: int | None,
          http_tokens: str | None, sets: tuple[str, ...], output_format: str) -> None:
    """Sweep hop limits: the verdict matrix and the recommended hop limit.

    Exit 1 only when an expect entry fails.
    """
    hop_limits = parse_hop_limits(hop_limits_text)
    topologies, problems = _load(topology_files(_default_paths(paths)), sets, hop_limit,
                                 http_tokens)
    reports = [analysis.sweep(t, hop_limits) for t in topologies]
    _report_problems(problems)
    if output_format == "json":
        click.echo(json_report.document("sweep", reports, problems), nl=False)
    else:
        out = table.console()
        out.print(table.sweep(out, reports, hop_limits))
    failed = any(r.failed for r in reports)
    sys.exit(EXIT_BAD_INPUT if problems else EXIT_FINDING if failed else EXIT_OK)


@main.command()
@click.argument("file", type=click.Path())
@click.option("--from", "principal", required=True, metavar="NODE",
              help="The principal whose exchange to trace.")
@click.option("--family", type=click.Choice(["4", "6"]), default=None,
              help="IP version (default: the node's family, else 4).")
@click.option("--pcap", type=click.Path(dir_okay=False, writable=True),
              help="Also write every packet, at every hop, to this pcap file.")
@what_if_options
def trace(file: str, principal: str, family: str | None, pcap: str | None,
          hop_limit: int | None, http_tokens: str | None, sets: tuple[str, ...]) -> None:
    """Trace one principal's exchange: every packet, hop by hop, with its TTL."""
    topology = _one_topology(file, sets, hop_limit, http_tokens)
    _principal(topology, file, principal)
    exchange = engine.play(topology, principal, family=int(family) if family else None,
                           record=True)
    out = table.console()
    out.print(table.trace(out, topology, exchange))
    if pcap:
        packets.write_pcap(pcap, exchange.packets)
        click.echo(f"wrote {len(exchange.packets)} packets to {pcap}")


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
def validate(paths: tuple[str, ...]) -> None:
    """Check topology files for mistakes, without simulating."""
    files = topology_files(_default_paths(paths))
    topologies, problems = _load(files, (), None, None)
    for t in topologies:
        click.echo(f"ok: {t.file}: {t.name} ({_count(len(t.nodes), 'node')}, "
                   f"{_count(len(t.links), 'link')}, {_count(len(t.principals), 'principal')})")
    _report_problems(problems)
    sys.exit(EXIT_BAD_INPUT if problems else EXIT_OK)


@main.command()
@click.argument("file", type=click.Path())
@what_if_options
def show(file: str, hop_limit: int | None, http_tokens: str | None,
         sets: tuple[str, ...]) -> None:
    """Show a topology: nodes, addresses, links and each principal's route."""
    topology = _one_topology(file, sets, hop_limit, http_tokens)
    out = table.console()
    out.print(table.show(out, topology))



@main.command()
@click.argument("file", type=click.Path())
@click.option("--from", "principal", metavar="NODE",
              help="Explain one principal (default: every principal).")
@what_if_options
def explain(file: str, principal: str | None, hop_limit: int | None, http_tokens: str | None,
            sets: tuple[str, ...]) -> None:
    """Explain each principal's result: the defence that stopped it or the gap
    that let it through, and the changes that would flip it (each one checked
    by simulating it)."""
    topology = _one_topology(file, sets, hop_limit, http_tokens)
    names = [_principal(topology, file, principal)] if principal else topology.principals
    router = Router(topology)
    out = table.console()
    out.print(table.explanations(out, topology,
                                 [explain_principal(topology, n, router) for n in names]))


def _one_topology(file: str, sets: Sequence[str], hop_limit: int | None,
                  http_tokens: str | None) -> Topology:
    """The one topology FILE holds, or exit 2 with its problems."""
    topologies, problems = _load([Path(file)], sets, hop_limit, http_tokens)
    if problems:
        _report_problems(problems)
        sys.exit(EXIT_BAD_INPUT)
    return topologies[0]


def _principal(topology: Topology, file: str, name: str) -> str:
    """`name` if it is a principal of the topology, else exit 2 with a hint."""
    if name not in topology.principals:
        hint = _closest(name, topology.principals)
        click.echo(f"error: {file}: --from: no principal {name!r} in {topology.name}"
                   f"{hint}; principals: {', '.join(topology.principals)}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    return name


if __name__ == "__main__":
    main()

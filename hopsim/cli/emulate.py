"""The kernel (hopsim/emulate): emulate, verify, and products, whose --verify
runs each real relay in namespaces as emulate does."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

import hopsim.emulate as emulation
from hopsim import interrupts
from hopsim.cli import files
from hopsim.cli.options import Seconds, color_option, idle, parse_hop_limits, quiet_option
from hopsim.cli.say import (
    EXIT_BAD_INPUT,
    EXIT_FINDING,
    EXIT_OK,
    console,
    report_problems,
    say,
    setting,
)
from hopsim.report import json as json_report
from hopsim.report import kernel as kernel_report
from hopsim.report import table
from hopsim.topology import Problem


def _kernel_options(command: Callable) -> Callable:
    options = [
        click.option("--hop-limits", "hop_limits_text", default="1-3", show_default=True,
                     metavar="RANGES", help="Hop limits to measure, e.g. 1-3 or 1,2,8."),
        click.option("--family", type=click.Choice(["4", "6"]), default=None,
                     help="Every principal uses this IP version."),
        click.option("--timeout", type=Seconds(0.05, 30.0),
                     default=emulation.DEFAULT_TIMEOUT, show_default=True,
                     help="Seconds a client waits for an answer, per leg of its route."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _kernel_ready() -> None:
    """Exit 2 with the fix when this machine cannot build namespaces."""
    why = emulation.missing()
    if why:
        click.echo(f"error: {why}", err=True)
        sys.exit(EXIT_BAD_INPUT)


def _stopped(stop: interrupts.Stopped) -> None:
    interrupts.leave(stop, f"stopped by {stop}; its namespaces were removed")


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@_kernel_options
@click.option("--dry-run", is_flag=True,
              help="Print the commands that would build each topology; build nothing.")
@click.option("--cleanup", is_flag=True,
              help="Remove the namespaces that killed runs left behind, and exit.")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]),
              default="table", show_default=True, help="Output format.")
@quiet_option
@color_option
def emulate(paths: tuple[str, ...], hop_limits_text: str, family: str | None, timeout: float,
            dry_run: bool, cleanup: bool, output_format: str) -> None:
    """Build each topology in network namespaces and measure it on the kernel.

    A real IMDS (hopsim's rules behind a socket, IP TTL = hop limit on the
    token response only), real relays and real clients; the outcome of each
    principal is what its client got, and dropped_at the node whose ICMP Time
    Exceeded was seen. Same report and JSON as sweep. Needs root, iproute2 and
    nftables; nothing is changed outside the namespaces it creates.

    Exit codes: 0 every expect entry holds; 1 one fails; 2 bad input, or this
    machine cannot build namespaces (not root, tools missing).
    """
    ctx = click.get_current_context()
    if cleanup:
        if paths:
            raise click.UsageError("--cleanup takes no PATHS: it removes what killed runs "
                                   "left behind, whatever their topology", ctx)
        idle(ctx, ["hop_limits_text", "family", "timeout", "dry_run", "output_format"],
             "with --cleanup, which builds nothing")
        _kernel_ready()
        removed, kept = emulation.cleanup()
        for name in removed:
            say(f"removed {name}")
        for name in kept:
            say(f"kept {name}: the process that made it is still running")
        say(f"{len(removed)} namespaces removed")
        sys.exit(EXIT_OK)
    if dry_run:
        idle(ctx, ["timeout", "output_format"], "with --dry-run, which runs nothing")
    hop_limits = parse_hop_limits(hop_limits_text)
    topologies, problems = files.load(files.default_paths(paths), (), None, None)
    if family:
        topologies = [emulation.with_family(t, int(family)) for t in topologies]
    if dry_run:
        for topology in topologies:
            try:
                click.echo("\n".join(emulation.commands(topology)))
            except emulation.PlanError as error:
                problems.append(Problem(topology.file, None, "", str(error)))
        report_problems(problems)
        sys.exit(EXIT_BAD_INPUT if problems else EXIT_OK)
    reports, timings = [], []
    with emulation.stopping_on_signals():
        try:
            _kernel_ready()
            for topology in topologies:
                try:
                    report, timing = emulation.emulate(topology, hop_limits, timeout=timeout)
                except emulation.PlanError as error:
                    problems.append(Problem(topology.file, None, "", str(error)))
                    continue
                reports.append(report)
                timings.append(timing)
            emulation.raise_if_stopped()
        except emulation.Stopped as stop:
            _stopped(stop)
    report_problems(problems)
    if output_format == "json":
        click.echo(json_report.document("emulate", reports, problems), nl=False)
    elif not setting("quiet"):
        out = console()
        out.print(table.check(out, reports))
        out.print(kernel_report.timing(timings))
    failed = any(r.failed for r in reports)
    sys.exit(EXIT_BAD_INPUT if problems else EXIT_FINDING if failed else EXIT_OK)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@_kernel_options
@quiet_option
@color_option
def verify(paths: tuple[str, ...], hop_limits_text: str, family: str | None,
           timeout: float) -> None:
    """Run each topology on the simulator and on the kernel, and compare.

    Per topology, hop limit and principal: the outcome and the node that
    dropped the token response, from each side; IPv4, and IPv6 where the
    topology enables it (or --family).

    Exit codes: 0 the simulator and the kernel agree on every case; 1 they
    disagree on one; 2 bad input, or this machine cannot build namespaces.
    """
    hop_limits = parse_hop_limits(hop_limits_text)
    topologies, problems = files.load(files.default_paths(paths), (), None, None)
    checks = []
    with emulation.stopping_on_signals():
        try:
            _kernel_ready()
            for topology in topologies:
                for ip in [int(family)] if family else emulation.families(topology):
                    try:
                        checks.append(emulation.verify(topology, hop_limits, ip,
                                                       timeout=timeout))
                    except emulation.PlanError as error:
                        problems.append(Problem(topology.file, None, "", str(error)))
                        break
            emulation.raise_if_stopped()
        except emulation.Stopped as stop:
            _stopped(stop)
    report_problems(problems)
    if not setting("quiet"):
        out = console()
        out.print(kernel_report.verification(out, checks))
    differ = any(c.disagreements for c in checks)
    sys.exit(EXIT_BAD_INPUT if problems else EXIT_FINDING if differ else EXIT_OK)


@click.command()
@click.option("--verify", "measure", is_flag=True,
              help="Run each product's real binary in namespaces and print what it did.")
@click.option("--format", "output_format", type=click.Choice(["table", "markdown"]),
              default="table", show_default=True, help="Output format.")
@click.option("--timeout", type=Seconds(0.05, 30.0),
              default=emulation.DEFAULT_TIMEOUT, show_default=True,
              help="Seconds the attacker waits for an answer, with --verify.")
def products(measure: bool, output_format: str, timeout: float) -> None:
    """The real relays a node can name with `product:` (docs/products.md).

    Without --verify: hopsim's model of each product in each mode, the
    defaults that decide the token exchange. With --verify: each product
    (Debian's package) run open to an attacker on the instance at hop limit
    1; what reached IMDS, the headers it added or dropped, what the attacker
    got, the TTL of its answer, and where the model differs. Exit 1 when it
    does.
    """
    from hopsim.emulate import survey
    from hopsim.report import products as products_report

    if not measure:
        columns, rows = products_report.DEFAULTS, products_report.defaults_rows()
        footer, differ = None, False
    else:
        with emulation.stopping_on_signals():
            try:
                _kernel_ready()
                measured = survey.survey(timeout)
                emulation.raise_if_stopped()
            except emulation.Stopped as stop:
                _stopped(stop)
            except emulation.PlanError as error:
                click.echo(f"error: {error}", err=True)
                sys.exit(EXIT_BAD_INPUT)
        columns, rows = products_report.MEASURED, products_report.measured_rows(measured)
        footer = products_report.summary(measured)
        differ = any(m.differences for m in measured)
    if output_format == "markdown":
        click.echo(products_report.markdown(columns, rows), nl=False)
        if footer:
            click.echo(f"\n{footer}")
    else:
        out = table.console()
        out.print(products_report.measured_lines(measured) if measure
                  else products_report.table(out, columns, rows))
    sys.exit(EXIT_FINDING if differ else EXIT_OK)

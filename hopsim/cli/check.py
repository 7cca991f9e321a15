"""Judging files: check, sweep and validate, with every report format, the
output files, accepted findings and --jobs (hopsim.workers)."""

from __future__ import annotations

import datetime
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import click

from hopsim import analysis, batch, settings, suppressions, workers
from hopsim.cli import files
from hopsim.cli.options import (
    color_option,
    idle,
    ignore_option,
    jobs_option,
    json_only,
    parse_hop_limits,
    prepare_outputs,
    quiet_option,
    report_options,
    settings_option,
    undeclared_option,
    view_format,
    what_if_options,
)
from hopsim.cli.say import (
    EXIT_BAD_INPUT,
    EXIT_FINDING,
    EXIT_OK,
    STDOUT,
    console,
    note,
    report_problems,
    say,
    setting,
    write,
)
from hopsim.loader import find
from hopsim.report import findings, formats, progress, table
from hopsim.report import json as json_report
from hopsim.report.wording import plural
from hopsim.suppressions import Suppression
from hopsim.topology import Problem, TopologyError


def _run_options(command: Callable) -> Callable:
    """The options check and sweep share beyond the what-if ones."""
    for option in reversed([settings_option, ignore_option, report_options, jobs_option,
                            quiet_option, color_option]):
        command = option(command)
    return command


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@what_if_options
@_run_options
def check(paths: tuple[str, ...], hop_limit: int | None, http_tokens: str | None,
          sets: tuple[str, ...], settings_file: str | None, ignore_file: str | None,
          output_format: str, outputs: Sequence[tuple[str | None, str]], all_principals: bool,
          jobs: int) -> None:
    """Check each topology at its configured hop limit.

    PATHS are files, folders (searched with their subfolders) or - for
    standard input (default: the bundled topologies).

    Exit codes: 0 no finding; 1 a leak, a starved workload or a failed expect
    entry; 2 bad input (the other files are still checked) or no topology found.
    """
    json_only(output_format, outputs, all_principals)
    prepare_outputs(outputs)
    accepted, problems = _read_suppressions(ignore_file)
    reports, more = _analyse("check", paths, jobs, sets, hop_limit, http_tokens,
                             settings_file)
    problems += more
    reports = _suppress("check", reports, accepted)
    report_problems(problems)
    _emit("check", output_format, outputs, reports, problems, (), all_principals)
    finding = findings.fails(reports, "check")
    sys.exit(EXIT_BAD_INPUT if problems else EXIT_FINDING if finding else EXIT_OK)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--hop-limits", "hop_limits_text", default="1-4", show_default=True,
              metavar="RANGES", help="Hop limits to try, e.g. 1-4 or 1,2,8.")
@what_if_options(hop_limit=False)
@_run_options
def sweep(paths: tuple[str, ...], hop_limits_text: str, hop_limit: int | None,
          http_tokens: str | None, sets: tuple[str, ...], settings_file: str | None,
          ignore_file: str | None, output_format: str,
          outputs: Sequence[tuple[str | None, str]], all_principals: bool, jobs: int) -> None:
    """Sweep hop limits: the verdict matrix and the recommended hop limit.

    Exit codes: 0 every expect entry holds (a deliberately leaky design is a
    lesson, not a failure); 1 an expect entry fails; 2 bad input or no
    topology found.
    """
    idle(click.get_current_context(), ["hop_limit"],
         "in sweep, which tries each hop limit of --hop-limits: use --hop-limits N, "
         "or check --hop-limit N")
    hop_limits = parse_hop_limits(hop_limits_text)
    json_only(output_format, outputs, all_principals)
    prepare_outputs(outputs)
    accepted, problems = _read_suppressions(ignore_file)
    reports, more = _analyse("sweep", paths, jobs, sets, hop_limit, http_tokens,
                             settings_file, hop_limits)
    problems += more
    reports = _suppress("sweep", reports, accepted)
    report_problems(problems)
    _emit("sweep", output_format, outputs, reports, problems, hop_limits, all_principals)
    failed = findings.fails(reports, "sweep")
    sys.exit(EXIT_BAD_INPUT if problems else EXIT_FINDING if failed else EXIT_OK)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@view_format
@undeclared_option
@quiet_option
def validate(paths: tuple[str, ...], output_format: str) -> None:
    """Check topology files for mistakes, without simulating.

    Exit codes: 0 every file is a valid topology; 2 a mistake (each reported
    with its file, line and key) or no topology found.
    """
    topologies, problems = files.load(files.default_paths(paths), (), None, None)
    if output_format == "json":
        click.echo(json_report.validation(topologies, problems), nl=False)
        sys.exit(EXIT_BAD_INPUT if problems else EXIT_OK)
    for t in topologies:
        copies = t.copies
        standing = f"; standing for {copies:,} nodes" if copies > len(t.nodes) else ""
        say(f"ok: {t.file}: {t.name} ({plural(len(t.nodes), 'node')}, "
            f"{plural(len(t.links), 'link')}, {plural(len(t.principals), 'principal')}"
            f"{standing})")
    report_problems(problems)
    sys.exit(EXIT_BAD_INPUT if problems else EXIT_OK)


def _analyse(command: str, paths: Sequence[str], jobs: int, sets: Sequence[str],
             hop_limit: int | None, http_tokens: str | None, settings_file: str | None,
             hop_limits: Sequence[int] = ()) -> tuple[list[analysis.Report], list[Problem]]:
    """Check or sweep every file (--settings applied, what-if options winning):
    the reports of those that could be, and every problem, in the files' order."""
    paths = files.default_paths(paths)
    found = find(paths)
    job = files.reading(files.job(sets, hop_limit, http_tokens, command, hop_limits), found)
    unusable: list[Problem] = []
    if settings_file:
        instances, unusable = batch.read_settings(settings_file)
        # Unusable settings: the files are still loaded, for their own problems.
        job = replace(job, instances=instances, settings_file=settings_file,
                      command=None if unusable else command)
    done = workers.each(batch.work, [f.path for f in found], job, jobs, weight=_size,
                        track=lambda completed: progress.track(
                            completed, job.command or "load", quiet=bool(setting("quiet"))))
    kept, problems = files.kept(done)
    problems += files.unfound(paths, found, done)
    if unusable:
        return [], problems + unusable
    if job.instances is not None and kept and not any(d.names_instances for d in kept):
        # settings.apply_all's problem when no topology names an instance
        return [], problems + settings.apply_all([], list(job.instances), settings_file or "")[1]
    for d in kept:
        problems += d.settings_problems
    return [d.report for d in kept if d.report], problems


def _size(file: Path) -> int:
    """A file's size, for the worker pool to start the largest first."""
    try:
        return file.stat().st_size
    except OSError:
        return 0  # its load says what is wrong


def _read_suppressions(ignore_file: str | None) -> tuple[list[Suppression], list[Problem]]:
    """--ignore-file's suppressions, or the default file's when there is one."""
    if ignore_file is None:
        if not Path(suppressions.DEFAULT_FILE).is_file():
            return [], []
        ignore_file = suppressions.DEFAULT_FILE
    try:
        return suppressions.read(ignore_file, [r.id for r in findings.RULES]), []
    except TopologyError as error:
        return [], list(error.problems)


def _suppress(command: str, reports: Sequence[analysis.Report],
              accepted: Sequence[Suppression]) -> list[analysis.Report]:
    """Each report with the suppressions of its topology; a note for those
    that expired or that match nothing, so a baseline does not rot unseen."""
    if not accepted:
        return list(reports)
    names = {r.topology.name for r in reports}
    reports = [replace(r, suppressions=tuple(s for s in accepted if s.topology == r.topology.name))
               for r in reports]
    used = {f.suppression for f in findings.of_run(reports, command) if f.suppression}
    today = datetime.date.today()
    for s in accepted:
        if s.topology not in names:
            continue
        if s.expired(today):
            note(f"{s.where}: the suppression of {s.describe()} expired on {s.expires}: "
                 "its findings fail the run again")
        elif s not in used:
            note(f"{s.where}: the suppression of {s.describe()} matches no finding")
    return reports


def _emit(command: str, output_format: str, outputs: Sequence[tuple[str | None, str]],
          reports: Sequence[analysis.Report], problems: Sequence[Problem],
          hop_limits: Sequence[int] = (), all_principals: bool = False) -> None:
    """Render the run: to each --output file, and to the terminal (the table
    whenever files are written, unless a report takes standard output)."""
    for name, file in outputs:
        pieces = formats.chunks(name or output_format, command, reports, problems, hop_limits,
                                all_principals)
        if file == STDOUT:
            for piece in pieces:
                click.echo(piece, nl=False)
        else:
            write(file, pieces)
    if any(file == STDOUT for _, file in outputs):
        return
    if outputs or output_format == "table":
        if setting("quiet"):
            return
        out = console()
        out.print(table.sweep(out, reports, hop_limits) if command == "sweep"
                  else table.check(out, reports))
    else:
        for piece in formats.chunks(output_format, command, reports, problems, hop_limits,
                                    all_principals):
            click.echo(piece, nl=False)

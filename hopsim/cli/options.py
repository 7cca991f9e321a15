"""The options several commands share, and the parsing of their values:
what-if (--hop-limit, --http-tokens, --set), --hop-limits, --jobs, -q,
--color, --format and --output, --settings, --ignore-file."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import click
import yaml

from hopsim import suppressions, workers
from hopsim.cli.say import STDOUT, fail, refuse_inputs, remember
from hopsim.imds import HTTP_TOKENS, MAX_HOP_LIMIT, MIN_HOP_LIMIT
from hopsim.importers.design import UNDECLARED
from hopsim.report import formats
from hopsim.topology.reader import MAX_DIGITS


class Seconds(click.FloatRange):
    """A float range that refuses nan (which every comparison lets through)
    and infinity."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"expected a number of seconds, got {value!r}", param, ctx)
        return number


def parse_set(values: Iterable[str]) -> list[tuple[str, str, Any]]:
    """--set NODE.KEY=VALUE ... -> (node, key, value), the value read as YAML."""
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
        except (RecursionError, ValueError):  # nested past Python's stack, digits past its limit
            raise click.BadParameter(
                f"{target}: the value is nested too deeply or holds a number longer than "
                f"{MAX_DIGITS:,} digits", param_hint="--set") from None
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
        if MIN_HOP_LIMIT <= last < first <= MAX_HOP_LIMIT:
            raise click.BadParameter(f"the range {part.strip()!r} is reversed: write "
                                     f"{last}-{first}", param_hint="--hop-limits")
        if not MIN_HOP_LIMIT <= first <= last <= MAX_HOP_LIMIT:
            raise click.BadParameter(
                f"hop limits are {MIN_HOP_LIMIT}..{MAX_HOP_LIMIT}, got {part.strip()!r}",
                param_hint="--hop-limits")
        limits.update(range(first, last + 1))
    return sorted(limits)


def what_if_options(command: Callable | None = None, *, hop_limit: bool = True) -> Callable:
    """--hop-limit, --http-tokens and --set: the 'what if' questions. Without
    hop_limit, --hop-limit is refused with why (sweep tries hop limits itself)."""
    if command is None:
        return lambda c: what_if_options(c, hop_limit=hop_limit)
    options = [
        click.option("--hop-limit", type=click.IntRange(MIN_HOP_LIMIT, MAX_HOP_LIMIT),
                     hidden=not hop_limit, help="Set every imds node's hop limit."),
        click.option("--http-tokens", type=click.Choice(HTTP_TOKENS),
                     help="Set every imds node's http_tokens."),
        click.option("--set", "sets", multiple=True, metavar="NODE.KEY=VALUE",
                     help="Change one node key, e.g. --set nginx.adds_xff=true."),
        undeclared_option,
    ]
    for option in reversed(options):
        command = option(command)
    return command


def undeclared_option(command: Callable) -> Callable:
    return click.option(
        "--undeclared", type=click.Choice(UNDECLARED), default=UNDECLARED[0],
        show_default=True, envvar="HOPSIM_UNDECLARED", expose_value=False, callback=remember,
        help="What a principal of a compose file, manifest or task definition with no "
             "declared role is: untrusted (it must hold nothing) or ignore (no verdict). "
             "Also HOPSIM_UNDECLARED.")(command)


def idle(ctx: click.Context, names: Iterable[str], why: str) -> None:
    """Refuse options given on the command line that would do nothing: an
    option silently ignored reads as one obeyed."""
    for name in names:
        if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE:
            option = next(p for p in ctx.command.params if p.name == name)
            raise click.UsageError(f"{option.opts[-1]} does nothing {why}", ctx)


class _Jobs(click.ParamType):
    """--jobs N: a count of processes, or 0 or auto for one per CPU."""

    name = "N|auto"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            count = value
        elif str(value).strip().lower() == "auto":
            count = 0
        else:
            try:
                count = int(str(value).strip())  # ValueError past 4,300 digits too
            except ValueError:
                self.fail(f"expected a number of processes or 'auto', got {value!r}", param, ctx)
        if count < 0:
            self.fail(f"expected 1 or more processes, or 0 or 'auto' for one per CPU, "
                      f"got {count}", param, ctx)
        cpus = workers.cpus()
        return min(count, cpus) or cpus  # more processes than CPUs only cost memory


def jobs_option(command: Callable) -> Callable:
    return click.option(
        "-j", "--jobs", type=_Jobs(), default=1, show_default=True, metavar="N",
        help="Analyse this many files at once, in worker processes (0 or auto: one per "
             "CPU). The output is the same as with 1.")(command)


def quiet_option(command: Callable) -> Callable:
    return click.option(
        "-q", "--quiet", is_flag=True, expose_value=False, callback=remember,
        help="Print only errors: no report on the terminal, no notes, no progress "
             "(--output files, a --format other than table and the exit code still "
             "tell).")(command)


def color_option(command: Callable) -> Callable:
    return click.option(
        "--color/--no-color", "color", default=None, expose_value=False, callback=remember,
        help="Colour and bold on, or every style off (default: on a terminal only, and "
             "off when NO_COLOR is set).")(command)


def view_format(command: Callable) -> Callable:
    return click.option("--format", "output_format", type=click.Choice(["table", "json"]),
                        default="table", show_default=True,
                        help="table for people, json for machines.")(command)


_FORMAT_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9_-]+")  # sarif in sarif:x (C in C:\x is a drive)


def _parse_outputs(ctx: click.Context, param: click.Parameter,
                   values: Sequence[str]) -> list[tuple[str | None, str]]:
    """--output FILE or FORMAT:FILE -> (format or None for --format's, file);
    FILE "-" is standard output."""
    outputs: list[tuple[str | None, str]] = []
    for value in values:
        name, sep, file = value.partition(":")
        if sep and name in formats.FORMATS:
            outputs.append((name, file))
        elif sep and _FORMAT_PREFIX.fullmatch(name):
            raise click.BadParameter(
                f"unknown format {name!r} in {value!r}; formats: {', '.join(formats.FORMATS)} "
                "(a file name with a colon: ./NAME)", param_hint="--output")
        else:
            outputs.append((None, value))
        if not outputs[-1][1]:
            raise click.BadParameter(f"expected FILE or FORMAT:FILE, got {value!r}",
                                     param_hint="--output")
    if sum(file == STDOUT for _, file in outputs) > 1:
        raise click.BadParameter("only one report can go to standard output (-)",
                                 param_hint="--output")
    return outputs


def prepare_outputs(outputs: Sequence[tuple[str | None, str]]) -> None:
    """Make the folders of the --output files, before any work: a report that
    cannot be written is known before the run, not after half of them are."""
    for _, file in outputs:
        if file == STDOUT:
            continue
        path = Path(file)
        if os.path.isdir(path):
            fail(f"--output {file}: is a folder; expected a file")
        refuse_inputs(file)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            fail(f"--output {file}: cannot make its folder {str(path.parent)!r}: "
                 f"{exc.strerror}")


def report_options(command: Callable) -> Callable:
    """--format (every report format), --output [FORMAT:]FILE and --all-principals."""
    command = click.option(
        "--all-principals", is_flag=True,
        help="JSON: list every principal at every hop limit (schema 1), instead of one "
             "entry per group of alike principals (schema 2).")(command)
    command = click.option(
        "--output", "outputs", multiple=True, metavar="[FORMAT:]FILE", callback=_parse_outputs,
        help="Write the report to FILE (in --format, or FORMAT such as sarif:hopsim.sarif; "
             "repeatable; FILE - is standard output); the table still goes to the terminal.")(
        command)
    return click.option("--format", "output_format", type=click.Choice(formats.FORMATS),
                        default="table", show_default=True, help="Output format.")(command)


def json_only(output_format: str, outputs: Sequence[tuple[str | None, str]],
              all_principals: bool) -> None:
    """--all-principals does something only where JSON is written."""
    if all_principals and "json" not in [output_format, *(n for n, _ in outputs)]:
        raise click.UsageError("--all-principals does nothing without JSON: add --format json "
                               "or --output json:FILE")


def settings_option(command: Callable) -> Callable:
    return click.option(
        "--settings", "settings_file", type=click.Path(dir_okay=False), metavar="FILE",
        help="Apply the real metadata options of the instances the imds nodes name "
             "(instance: ...), from `terraform show -json` or `aws ec2 describe-instances` "
             "output, Terraform source, CloudFormation, a Karpenter EC2NodeClass or an eksctl "
             "ClusterConfig, without rewriting the files.")(command)


def ignore_option(command: Callable) -> Callable:
    return click.option(
        "--ignore-file", "ignore_file", type=click.Path(dir_okay=False), metavar="FILE",
        help=f"Findings accepted on purpose, each with a reason and an optional expiry "
             f"(default: {suppressions.DEFAULT_FILE} in the current folder, when there). "
             "They are reported as suppressed and fail nothing.")(command)

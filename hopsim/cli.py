"""The `hopsim` command: parse arguments, call the library, render. No logic.

Exit codes: 0 fine, 1 a finding, 2 bad input or usage.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import re
import signal
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

import click
import yaml
from rich.console import Console

import hopsim.emulate as emulation
from hopsim import (
    __version__,
    analysis,
    engine,
    importers,
    interrupts,
    packets,
    settings,
    suppressions,
)
from hopsim import demo as teaching
from hopsim import draw as drawing
from hopsim import generate as fleets
from hopsim import schema as topology_schema
from hopsim.explain import explain as explain_principal
from hopsim.imds import HTTP_TOKENS, MAX_HOP_LIMIT, MIN_HOP_LIMIT
from hopsim.importers import instances as settings_files
from hopsim.report import demo as demo_report
from hopsim.report import findings, formats, progress, table
from hopsim.report import json as json_report
from hopsim.report import kernel as kernel_report
from hopsim.routing import Router
from hopsim.source import MAX_DIGITS
from hopsim.suppressions import Suppression
from hopsim.topology import (
    MAX_REPLICAS,
    STDIN,
    STDIN_NAME,
    Found,
    NotATopology,
    Problem,
    Topology,
    TopologyError,
    _closest,
    find,
    load,
    parse,
    read_stdin,
    what_if,
)
from hopsim.untrusted import shown

EXIT_OK, EXIT_FINDING, EXIT_BAD_INPUT = 0, 1, 2
BUNDLED = Path(__file__).resolve().parent.parent / "topologies"


class _Seconds(click.FloatRange):
    """A float range that refuses nan (which every comparison lets through)
    and infinity."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"expected a number of seconds, got {value!r}", param, ctx)
        return number


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
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _idle(ctx: click.Context, names: Iterable[str], why: str) -> None:
    """Refuse options given on the command line that would do nothing: an
    option silently ignored reads as one obeyed."""
    for name in names:
        if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE:
            option = next(p for p in ctx.command.params if p.name == name)
            raise click.UsageError(f"{option.opts[-1]} does nothing {why}", ctx)


@dataclass(frozen=True)
class _Job:
    """What to do with each file of a run: the same in this process and in
    every worker process (so it must pickle)."""

    overrides: tuple[tuple[str, str, Any], ...] = ()  # --set
    changes: Mapping[str, Any] = field(default_factory=dict)  # --hop-limit, --http-tokens
    keep_expect: bool = True
    command: str | None = None  # "check" or "sweep": analyse; None: only load
    hop_limits: tuple[int, ...] = ()  # sweep's
    instances: tuple[settings.Instance, ...] | None = None  # --settings, read
    settings_file: str = ""
    recognise: frozenset[str] = frozenset()  # files found in folders: skip non-topologies
    stdin: str | None = None  # standard input's text, read here once, for the file "-"


def _job(sets: Sequence[str], hop_limit: int | None, http_tokens: str | None,
         command: str | None = None, hop_limits: Sequence[int] = ()) -> _Job:
    """The what-if options as a _Job, with a note when they void `expect`."""
    overrides = _parse_set(sets)
    # `expect` describes the file as written, hop limit by hop limit: a what-if
    # hop limit keeps it meaningful; other changes do not.
    keep_expect = not overrides and http_tokens is None
    if not keep_expect:
        _note("--set/--http-tokens change the topology: its expect entries are not checked")
    return _Job(tuple(overrides), what_if(hop_limit, http_tokens), keep_expect, command,
                tuple(hop_limits))


@dataclass(frozen=True)
class _Done:
    """One file, loaded and, for check and sweep, analysed: what a worker
    process sends back. A check or sweep sends the Report (which holds its
    topology), never the topology a second time."""

    file: str
    problems: tuple[Problem, ...] = ()  # the file's own
    name: str | None = None  # None: the file did not load
    name_line: int | None = None
    topology: Topology | None = None  # when nothing is analysed
    names_instances: bool = False  # an imds node names a real instance (--settings)
    settings_problems: tuple[Problem, ...] = ()
    report: analysis.Report | None = None
    notes: tuple[str, ...] = ()  # what an importer assumed or left out
    skipped: str | None = None  # found in a folder, not a topology: why


def _do(file: Path, job: _Job) -> _Done:
    """Load one file, apply the what-if options and --settings, analyse it: the
    one definition of a file's work, run here or in a worker process."""
    recognise = str(file) in job.recognise
    try:
        topology, notes = _read_topology(file, job, recognise)
    except TopologyError as error:
        return _Done(str(file), error.problems)
    except NotATopology as other:
        return _Done(str(file), skipped=other.why)
    done = _Done(topology.file, name=topology.name, name_line=topology.line_of("name"),
                 notes=notes)
    if job.changes:
        topology = topology.with_imds(**job.changes)
    if not job.keep_expect:
        topology = replace(topology, expect={})
    if job.command is None:
        return replace(done, topology=topology)
    names = job.instances is not None and settings.names_instances(topology)
    if names:
        found, more = settings.apply_all([topology], list(job.instances or ()),
                                         job.settings_file)
        if more:
            return replace(done, names_instances=True, settings_problems=tuple(more))
        topology = found[0].with_imds(**job.changes) if job.changes else found[0]  # what-if wins
    report = (analysis.sweep(topology, job.hop_limits) if job.command == "sweep"
              else analysis.check(topology))
    return replace(done, names_instances=names, report=report)


_DESIGNS = {"compose": "a Docker Compose file", "kubernetes": "a Kubernetes manifest",
            "ecs": "an ECS task definition"}


def _read_topology(file: Path, job: _Job, found_in_folder: bool
                   ) -> tuple[Topology, tuple[str, ...]]:
    """A topology file, or a compose file, Kubernetes manifest or ECS task
    definition read into a topology (hopsim/importers), with its notes. A
    design found in a folder scan is skipped, not imported: it is checked
    when it is named (it may need --settings)."""
    if str(file) == STDIN:
        if job.stdin is not None:
            return parse(job.stdin, STDIN_NAME, job.overrides), ()
        return load(file, job.overrides), ()
    reader = importers.recognise(file)
    if reader is None:
        return load(file, job.overrides, recognise=found_in_folder), ()
    if found_in_folder:
        what = _DESIGNS.get(reader.__name__.rsplit(".", 1)[-1], "a design file")
        raise NotATopology(str(file), f"{what}; name it to check it")
    imported = importers.load(file, job.overrides, job.instances)
    return imported.topology, imported.notes


def _located(file: str, note: str) -> str:
    """A note with its file in front, once."""
    return note if note.startswith(file) else f"{file}: {note}"


def _kept(done: Iterable[_Done]) -> tuple[list[_Done], list[Problem]]:
    """The files that loaded, less those that repeat a topology name, and
    every problem, in the files' order."""
    kept: list[_Done] = []
    problems: list[Problem] = []
    names: dict[str, str] = {}
    for d in done:
        problems += d.problems
        for note in d.notes:
            _note(_located(d.file, note))
        if d.skipped:
            _note(f"{d.file}: not a topology ({d.skipped}), skipped")
        if d.name is None:
            continue
        if d.name in names:
            problems.append(Problem(d.file, d.name_line, "name",
                                    f"duplicate topology name {d.name!r} "
                                    f"(also in {names[d.name]})"))
            continue
        names[d.name] = d.file
        kept.append(d)
    return kept, problems


def _load(paths: Sequence[str], sets: Sequence[str], hop_limit: int | None,
          http_tokens: str | None) -> tuple[list[Topology], list[Problem]]:
    """Load every file of PATHS; a bad one is reported and the others still load."""
    found = find(paths)
    job = _reading(_job(sets, hop_limit, http_tokens), found)
    done = [_do(f.path, job) for f in found]
    kept, problems = _kept(done)
    return [d.topology for d in kept if d.topology], problems + _unfound(paths, found, done)


def _reading(job: _Job, found: Sequence[Found]) -> _Job:
    """The job, told which files were found in folders (and skipped when they
    are not topologies) and given standard input's text when "-" is a file."""
    stdin = sum(str(f.path) == STDIN for f in found)
    if stdin > 1:
        raise click.UsageError("standard input (-) can be read only once")
    try:
        text = read_stdin() if stdin else None
    except TopologyError as error:  # too large, not UTF-8
        _report_problems(error.problems)
        sys.exit(EXIT_BAD_INPUT)
    return replace(job, recognise=frozenset(str(f.path) for f in found if f.folder),
                   stdin=text)


def _unfound(paths: Sequence[str], found: Sequence[Found], done: Sequence[_Done]) -> list[Problem]:
    """A problem for each folder named that holds no topology: a wrong path
    must not pass for a folder that was checked and found fine."""
    topologies = Counter(f.folder for f, d in zip(found, done, strict=True)
                         if f.folder and not d.skipped)
    skipped = Counter(f.folder for f, d in zip(found, done, strict=True) if d.skipped)
    problems = []
    for path in map(Path, paths):
        if os.path.isdir(path) and not topologies[path]:
            why = (f"; {_count(skipped[path], 'YAML or JSON file')} skipped, not topologies"
                   if skipped[path] else "")
            problems.append(Problem(str(path), None, "", "no topology found in this folder "
                                    f"or its subfolders{why}"))
    return problems


# --- check and sweep: files analysed here or in worker processes (--jobs) ----------


WINDOWS_MAX_WORKERS = 61  # ProcessPoolExecutor refuses more there


def _cpus() -> int:
    """The CPUs this process may run on (a container's or CI job's share)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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
        return min(count, _cpus()) or _cpus()  # more processes than CPUs only cost memory


def _jobs_option(command: Callable) -> Callable:
    return click.option(
        "-j", "--jobs", type=_Jobs(), default=1, show_default=True, metavar="N",
        help="Analyse this many files at once, in worker processes (0 or auto: one per "
             "CPU). The output is the same as with 1.")(command)


def _worker_signals() -> None:
    """A worker leaves Ctrl-C to the main process, which stops it (one
    'Aborted!', not a traceback per worker), and ends on SIGTERM, which it
    also gets when the main process dies, even of a SIGKILL (a CI timeout)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not _pool's handler, inherited by fork
    # The parent: the main process when forked, else a forkserver that ends with it.
    parent = os.getppid()
    if _term_when_parent_dies() and os.getppid() != parent:  # it died before prctl
        signal.raise_signal(signal.SIGTERM)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _term_when_parent_dies() -> bool:
    """Ask Linux for SIGTERM when the process that forked this one ends
    (prctl(2) PR_SET_PDEATHSIG); False where there is no such call."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM) == 0
    except (OSError, AttributeError):
        return False


class _Completed:
    """(index, _Done) of each file as it completes: the files' work, for the
    progress bar to count. Without a pool the work is done here, in order."""

    def __init__(self, files: Sequence[Path], job: _Job, pool: ProcessPoolExecutor | None):
        self.files, self.job = files, job
        self.futures: dict[Future[_Done], int] = {}
        if pool:  # all submitted now: the pool forks before the bar starts its thread
            self.futures = {pool.submit(_do, files[i], job): i for i in _largest_first(files)}

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[tuple[int, _Done]]:
        if not self.futures:
            for index, file in enumerate(self.files):
                yield index, _do(file, self.job)
            return
        for future in as_completed(self.futures):
            yield self.futures[future], future.result()


def _largest_first(files: Sequence[Path]) -> list[int]:
    """Indexes of the files, the largest first: a large file met last keeps
    every other worker waiting for it."""
    def size(index: int) -> int:
        try:
            return files[index].stat().st_size
        except OSError:
            return 0  # its load says what is wrong
    return sorted(range(len(files)), key=lambda i: (-size(i), i))


def _each(files: Sequence[Path], job: _Job, jobs: int) -> list[_Done]:
    """_do for each file, in the files' order: in this process, or in a pool of
    up to `jobs` worker processes when there are files for more than one."""
    workers = min(jobs, len(files), WINDOWS_MAX_WORKERS if sys.platform == "win32" else jobs)
    with _pool(workers) as pool:
        done = dict(progress.track(_Completed(files, job, pool),  # type: ignore[arg-type]
                                   job.command or "load", quiet=bool(_setting("quiet"))))
    return [done[index] for index in range(len(files))]


@contextmanager
def _pool(workers: int) -> Iterator[ProcessPoolExecutor | None]:
    """A pool of `workers` processes (None for one: no pool), whose workers
    end with the run: on an error, Ctrl-C or SIGTERM (interrupts.Stopped,
    raised here by main's handlers) they are stopped at once, not left to
    finish their files or to wait for more."""
    if workers <= 1:
        yield None
        return
    pool = ProcessPoolExecutor(workers, initializer=_worker_signals)
    try:
        yield pool
    except BaseException as error:
        _stop(pool)
        if isinstance(error, interrupts.Stopped):
            error.workers_killed = True
        raise
    else:
        pool.shutdown()


def _stop(pool: ProcessPoolExecutor) -> None:
    """Drop the files not started, and end the workers busy with others."""
    terminate = getattr(pool, "terminate_workers", None)  # Python 3.14
    if terminate:
        terminate()
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())  # before shutdown
    pool.shutdown(wait=False, cancel_futures=True)  # drops _processes
    for process in processes:
        process.terminate()
    for process in processes:  # reaped: no zombie left for the pool's exit hook to wait on
        process.join(1)
        if process.is_alive():
            process.kill()
            process.join(1)


def _read_settings(file: str) -> tuple[tuple[settings.Instance, ...] | None, list[Problem]]:
    """--settings FILE's instances, or None and why they cannot be used."""
    try:
        instances = settings_files.read(file)
    except settings.SettingsError as error:
        return None, [Problem(file, None, "--settings", str(error))]
    if not instances:
        return None, settings.apply_all([], instances, file)[1]  # its "no instance" problem
    return tuple(instances), []


def _analyse(command: str, paths: Sequence[str], jobs: int, sets: Sequence[str],
             hop_limit: int | None, http_tokens: str | None, settings_file: str | None,
             hop_limits: Sequence[int] = ()) -> tuple[list[analysis.Report], list[Problem]]:
    """Check or sweep every file (--settings applied, what-if options winning):
    the reports of those that could be, and every problem, in the files' order."""
    paths = _default_paths(paths)
    found = find(paths)
    files = [f.path for f in found]
    job = _reading(_job(sets, hop_limit, http_tokens, command, hop_limits), found)
    unusable: list[Problem] = []
    if settings_file:
        instances, unusable = _read_settings(settings_file)
        # Unusable settings: the files are still loaded, for their own problems.
        job = replace(job, instances=instances, settings_file=settings_file,
                      command=None if unusable else command)
    done = _each(files, job, jobs)
    kept, problems = _kept(done)
    problems += _unfound(paths, found, done)
    if unusable:
        return [], problems + unusable
    if job.instances is not None and kept and not any(d.names_instances for d in kept):
        # settings.apply_all's problem when no topology names an instance
        return [], problems + settings.apply_all([], list(job.instances), settings_file or "")[1]
    for d in kept:
        problems += d.settings_problems
    return [d.report for d in kept if d.report], problems


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _report_problems(problems: Iterable[Problem]) -> None:
    for problem in problems:
        click.echo(f"error: {shown(problem)}", err=True)


def _note(text: str) -> None:
    """A remark on stderr that changes nothing in the result (none with -q)."""
    _say(f"note: {shown(text)}", err=True)


# --- conventions every command shares: -q, --color/--no-color ----------------------


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    ctx.meta[f"hopsim.{param.name}"] = value  # ctx.meta is shared by the whole run
    return value


def _setting(name: str) -> Any:
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(f"hopsim.{name}") if ctx else None


def _quiet_option(command: Callable) -> Callable:
    return click.option(
        "-q", "--quiet", is_flag=True, expose_value=False, callback=_remember,
        help="Print only errors: no report on the terminal, no notes, no progress "
             "(--output files, a --format other than table and the exit code still "
             "tell).")(command)


def _color_option(command: Callable) -> Callable:
    return click.option(
        "--color/--no-color", "color", default=None, expose_value=False, callback=_remember,
        help="Colour and bold on, or every style off (default: on a terminal only, and "
             "off when NO_COLOR is set).")(command)


def _view_format(command: Callable) -> Callable:
    return click.option("--format", "output_format", type=click.Choice(["table", "json"]),
                        default="table", show_default=True,
                        help="table for people, json for machines.")(command)


def _say(text: str, *, err: bool = False, nl: bool = True) -> None:
    """A line for people: left out with -q."""
    if not _setting("quiet"):
        click.echo(text, err=err, nl=nl)


def _console() -> Console:
    """The terminal's console, with --color/--no-color applied."""
    return table.console(color=_setting("color"))


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


STDOUT = "-"  # an --output file that means standard output


def _prepare_outputs(outputs: Sequence[tuple[str | None, str]]) -> None:
    """Make the folders of the --output files, before any work: a report that
    cannot be written is known before the run, not after half of them are."""
    for _, file in outputs:
        if file == STDOUT:
            continue
        path = Path(file)
        if os.path.isdir(path):
            _fail(f"--output {file}: is a folder; expected a file")
        _refuse_inputs(file)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            _fail(f"--output {file}: cannot make its folder {str(path.parent)!r}: "
                  f"{exc.strerror}")


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


# The parameters that name files a command reads: an output onto one of them
# would destroy the input (import's TOPOLOGY is edited in place on purpose).
_INPUT_PARAMS = ("paths", "file", "plan", "describe", "settings_file", "ignore_file",
                 "scenario")


def _an_input(file: str) -> str | None:
    """The input of this run that `file` is (the same file, by any path), or None."""
    try:
        target = Path(file).stat()
    except OSError:
        return None
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        for name in _INPUT_PARAMS:
            value = ctx.params.get(name)
            for given in (value if isinstance(value, (tuple, list)) else [value]):
                if not isinstance(given, str) or given == STDIN:
                    continue
                try:
                    found = Path(given).stat()
                except OSError:
                    continue
                if (found.st_dev, found.st_ino) == (target.st_dev, target.st_ino):
                    return given
        ctx = ctx.parent
    return None


def _refuse_inputs(file: str) -> None:
    given = _an_input(file)
    if given is not None:
        _fail(f"{file}: is {given!r}, an input of this run: it would be overwritten; "
              "write to another file")


def _write(file: str, pieces: Iterable[str] | bytes) -> None:
    """Write a report, a picture or a generated file: the one place output
    files are written (text as UTF-8). Atomic: a temporary file in the same
    folder, renamed over FILE when complete, so a failure, a full disk or a
    signal leaves the previous FILE as it was; never onto an input of the run."""
    _refuse_inputs(file)
    path = Path(os.path.realpath(file))  # through a symlink, not over it
    try:
        if os.path.exists(path) and not os.path.isfile(path):  # /dev/null, a FIFO: not ours
            with open(path, "wb") as stream:
                stream.write(pieces if isinstance(pieces, bytes) else
                             "".join(pieces).encode("utf-8"))
            return
        _atomically(path, pieces)
    except OSError as exc:
        _fail(f"{file}: cannot write: {exc.strerror or exc}")


def _atomically(path: Path, pieces: Iterable[str] | bytes) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:64]}.",
                                     suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as stream:
            if isinstance(pieces, bytes):
                stream.write(pieces)
            else:
                for piece in pieces:
                    stream.write(piece.encode("utf-8"))
            stream.flush()
            os.fsync(stream.fileno())
        try:
            mode = path.stat().st_mode & 0o7777
        except OSError:  # a new file: what open() would have made
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _output_format(command: Callable) -> Callable:
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


def _settings_option(command: Callable) -> Callable:
    return click.option(
        "--settings", "settings_file", type=click.Path(dir_okay=False), metavar="FILE",
        help="Apply the real metadata options of the instances the imds nodes name "
             "(instance: ...), from `terraform show -json` or `aws ec2 describe-instances` "
             "output, Terraform source, CloudFormation, a Karpenter EC2NodeClass or an eksctl "
             "ClusterConfig, without rewriting the files.")(command)


def _ignore_option(command: Callable) -> Callable:
    return click.option(
        "--ignore-file", "ignore_file", type=click.Path(dir_okay=False), metavar="FILE",
        help=f"Findings accepted on purpose, each with a reason and an optional expiry "
             f"(default: {suppressions.DEFAULT_FILE} in the current folder, when there). "
             "They are reported as suppressed and fail nothing.")(command)


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
            _note(f"{s.where}: the suppression of {s.describe()} expired on {s.expires}: "
                  "its findings fail the run again")
        elif s not in used:
            _note(f"{s.where}: the suppression of {s.describe()} matches no finding")
    return reports


def _json_only(output_format: str, outputs: Sequence[tuple[str | None, str]],
               all_principals: bool) -> None:
    """--all-principals does something only where JSON is written."""
    if all_principals and "json" not in [output_format, *(n for n, _ in outputs)]:
        raise click.UsageError("--all-principals does nothing without JSON: add --format json "
                               "or --output json:FILE")


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
            _write(file, pieces)
    if any(file == STDOUT for _, file in outputs):
        return
    if outputs or output_format == "table":
        if _setting("quiet"):
            return
        out = _console()
        out.print(table.sweep(out, reports, hop_limits) if command == "sweep"
                  else table.check(out, reports))
    else:
        for piece in formats.chunks(output_format, command, reports, problems, hop_limits,
                                    all_principals):
            click.echo(piece, nl=False)


class _Main(click.Group):
    """The command group, ending every command the same way on a signal
    (hopsim.interrupts): one line, exit 130 on SIGINT, 143 on SIGTERM."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        with interrupts.stopping():
            return super().main(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except interrupts.Stopped as stop:
            interrupts.leave(stop, f"stopped by {stop}")


@click.group(cls=_Main,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 80})
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
@_settings_option
@_ignore_option
@_output_format
@_jobs_option
@_quiet_option
@_color_option
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
    _json_only(output_format, outputs, all_principals)
    _prepare_outputs(outputs)
    accepted, problems = _read_suppressions(ignore_file)
    reports, more = _analyse("check", paths, jobs, sets, hop_limit, http_tokens,
                             settings_file)
    problems += more
    reports = _suppress("check", reports, accepted)
    _report_problems(problems)
    _emit("check", output_format, outputs, reports, problems, (), all_principals)
    finding = findings.fails(reports, "check")
    sys.exit(EXIT_BAD_INPUT if problems else EXIT_FINDING if finding else EXIT_OK)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--hop-limits", "hop_limits_text", default="1-4", show_default=True,
              metavar="RANGES", help="Hop limits to try, e.g. 1-4 or 1,2,8.")
@what_if_options(hop_limit=False)
@_settings_option
@_ignore_option
@_output_format
@_jobs_option
@_quiet_option
@_color_option
def sweep(paths: tuple[str, ...], hop_limits_text: str, hop_limit: int | None,
          http_tokens: str | None, sets: tuple[str, ...], settings_file: str | None,
          ignore_file: str | None, output_format: str,
          outputs: Sequence[tuple[str | None, str]], all_principals: bool, jobs: int) -> None:
    """Sweep hop limits: the verdict matrix and the recommended hop limit.

    Exit codes: 0 every expect entry holds (a deliberately leaky design is a
    lesson, not a failure); 1 an expect entry fails; 2 bad input or no
    topology found.
    """
    _idle(click.get_current_context(), ["hop_limit"],
          "in sweep, which tries each hop limit of --hop-limits: use --hop-limits N, "
          "or check --hop-limit N")
    hop_limits = parse_hop_limits(hop_limits_text)
    _json_only(output_format, outputs, all_principals)
    _prepare_outputs(outputs)
    accepted, problems = _read_suppressions(ignore_file)
    reports, more = _analyse("sweep", paths, jobs, sets, hop_limit, http_tokens,
                             settings_file, hop_limits)
    problems += more
    reports = _suppress("sweep", reports, accepted)
    _report_problems(problems)
    _emit("sweep", output_format, outputs, reports, problems, hop_limits, all_principals)
    failed = findings.fails(reports, "sweep")
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
@_view_format
@_quiet_option
@_color_option
def trace(file: str, principal: str, family: str | None, pcap: str | None,
          hop_limit: int | None, http_tokens: str | None, sets: tuple[str, ...],
          output_format: str) -> None:
    """Trace one principal's exchange: every packet, hop by hop, with its TTL.

    Exit codes: 0 whatever the outcome, a leak included: trace shows what
    happens, check judges it; 2 bad input.
    """
    topology = _one_topology(file, sets, hop_limit, http_tokens)
    topology, principal = _principal(topology, file, principal)
    exchange = engine.play(topology, principal, family=int(family) if family else None,
                           record=True)
    if output_format == "json":
        click.echo(json_report.trace(topology, exchange), nl=False)
    elif not _setting("quiet"):
        out = _console()
        out.print(table.trace(out, topology, exchange))
    if pcap:
        _write(pcap, packets.pcap_bytes(exchange.packets))
        _say(f"wrote {len(exchange.packets)} packets to {pcap}",
             err=output_format == "json")


@main.group("import")
def import_settings() -> None:
    """Write real instance settings into a topology file (terraform, ec2), or
    turn a compose file, Kubernetes manifests or ECS task definitions into one
    (compose, kubernetes, ecs).

    Each imds node that names its instance (instance: aws_instance.web, or an
    instance id) gets that instance's hop limit, http_tokens, http_endpoint and
    IPv6 setting; comments and the rest of the file are kept. Check and sweep
    take --settings to apply the same without rewriting.
    """


@import_settings.command("terraform")
@click.argument("plan", type=click.Path(dir_okay=False))
@click.argument("topology", type=click.Path(dir_okay=False))
@_quiet_option
def import_terraform(plan: str, topology: str) -> None:
    """From `terraform show -json` output (a plan or a state): aws_instance and
    aws_launch_template metadata_options, with AWS's defaults for what is unset.

    Exit codes: 0 written (or nothing to change); 2 bad input.
    """
    _import("terraform", plan, topology)


@import_settings.command("ec2")
@click.argument("describe", type=click.Path(dir_okay=False))
@click.argument("topology", type=click.Path(dir_okay=False))
@_quiet_option
def import_ec2(describe: str, topology: str) -> None:
    """From `aws ec2 describe-instances` output (MetadataOptions).

    Exit codes: 0 written (or nothing to change); 2 bad input.
    """
    _import("ec2", describe, topology)


def _import_design(source: str, file: str, output: str | None) -> None:
    """A compose file, manifest or task definition as a topology file."""
    try:
        design = importers.load(file, reader=importers.READERS[source]).design
        text = importers.dump(design, file)
        importers.check_dump(text, file)
    except TopologyError as error:
        _report_problems(error.problems)
        sys.exit(EXIT_BAD_INPUT)
    for note in design.notes:
        _note(_located(file, note))
    if output:
        _write(output, [text])
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


def _import_command(source: str, what: str) -> None:
    @import_settings.command(source, help=f"{what} as a topology file, for editing: each "
                             "node with a comment saying what it stands for and where it "
                             "is written (docs/importers.md).")
    @click.argument("file", type=click.Path(dir_okay=False))
    @click.option("-o", "--output", type=click.Path(dir_okay=False), metavar="FILE",
                  help="Write to FILE instead of stdout.")
    def command(file: str, output: str | None) -> None:
        _import_design(source, file, output)


_import_command("compose", "A Docker Compose file")
_import_command("kubernetes", "Kubernetes manifests (multi-document YAML)")
_import_command("ecs", "ECS task definitions (JSON, CloudFormation or Terraform)")


def _import(source: str, settings_file: str, file: str) -> None:
    topology = _one_topology(file, (), None, None)
    try:
        instances = settings.read(settings_file, source)
    except settings.SettingsError as error:
        click.echo(f"error: {settings_file}: {error}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if not settings.names_instances(topology):
        click.echo(f"error: {file}: no imds node names an instance: add `instance: "
                   "ADDRESS_OR_ID` to an imds node", err=True)
        sys.exit(EXIT_BAD_INPUT)
    applied, problems = settings.match(topology, instances)
    if problems:
        _report_problems(problems)
        sys.exit(EXIT_BAD_INPUT)
    text = Path(file).read_text(encoding="utf-8")
    try:
        new = settings.rewrite(text, topology, applied)
    except TopologyError as error:
        click.echo(f"error: {file}: cannot write the settings into this file "
                   f"({error.problems[0].message}); use --settings instead", err=True)
        sys.exit(EXIT_BAD_INPUT)
    for a in applied:
        _say(settings.describe(file, a))
    if new != text:
        _write(file, [new])


@main.command()
def schema() -> None:
    """Print the JSON Schema of topology files, for editors and other tools.

    Save it (hopsim schema > hopsim.schema.json) and start a topology file with
    "# yaml-language-server: $schema=hopsim.schema.json" to get completion and
    checks as you type. Exit code 0.
    """
    click.echo(json.dumps(topology_schema.json_schema(), indent=2))


# Nodes written one by one: past ~500,000 the file outgrows the loader's limits
# (64 MiB, 2,000,000 values), so `validate` would refuse what `generate` wrote.
MAX_WRITTEN_FLEET = 400_000


@main.group()
def generate() -> None:
    """Generate topologies: fleets at scale, for benchmarks and CI designs."""


@generate.command("fleet")
@click.option("--instances", type=click.IntRange(1, MAX_REPLICAS), required=True,
              help="Instances (units): docker hosts, k8s nodes, NAT instances, proxies ...")
@click.option("--containers", type=click.IntRange(1, MAX_REPLICAS), required=True,
              help="About this many containers, pods or clients per instance.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="The same seed gives the same fleet, byte for byte.")
@click.option("--compact", is_flag=True,
              help="Write units with counts and replicas: one unit per shape of instance, "
                   "a few lines whatever the size (the seed plays no part).")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write to FILE (JSON if it ends in .json, else YAML) instead of stdout.")
@_quiet_option
def generate_fleet(instances: int, containers: int, seed: int, compact: bool,
                   output: str | None) -> None:
    """A heterogeneous fleet as one topology file, deterministic for a seed.

    Exit codes: 0 written; 2 usage, or FILE cannot be written.
    """
    if compact:
        _idle(click.get_current_context(), ["seed"], "with --compact, which draws nothing")
    elif instances * containers > MAX_WRITTEN_FLEET:
        raise click.UsageError(
            f"{instances:,} instances of {containers:,} containers is more than the "
            f"{MAX_WRITTEN_FLEET:,} nodes a topology file can hold: use --compact")
    document = (fleets.compact_fleet(instances, containers) if compact else
                fleets.fleet(instances, containers, seed))
    text = fleets.dumps(document, "json" if output and output.endswith(".json") else "yaml")
    if not output:
        click.echo(text, nl=False)
        return
    _write(output, [text])
    if compact:
        _say(f"wrote {len(document['units'])} units standing for "
             f"{fleets.copies(document):,} nodes to {output}", err=True)
    else:
        _say(f"wrote {len(document['nodes'])} nodes, {len(document['links'])} links "
             f"to {output}", err=True)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@_view_format
@_quiet_option
def validate(paths: tuple[str, ...], output_format: str) -> None:
    """Check topology files for mistakes, without simulating.

    Exit codes: 0 every file is a valid topology; 2 a mistake (each reported
    with its file, line and key) or no topology found.
    """
    topologies, problems = _load(_default_paths(paths), (), None, None)
    if output_format == "json":
        click.echo(json_report.validation(topologies, problems), nl=False)
        sys.exit(EXIT_BAD_INPUT if problems else EXIT_OK)
    for t in topologies:
        copies = sum(n.replicas for n in t.nodes.values())
        standing = f"; standing for {copies:,} nodes" if copies > len(t.nodes) else ""
        _say(f"ok: {t.file}: {t.name} ({_count(len(t.nodes), 'node')}, "
             f"{_count(len(t.links), 'link')}, {_count(len(t.principals), 'principal')}"
             f"{standing})")
    _report_problems(problems)
    sys.exit(EXIT_BAD_INPUT if problems else EXIT_OK)


@main.command()
@click.argument("file", type=click.Path())
@what_if_options
@_view_format
@_color_option
def show(file: str, hop_limit: int | None, http_tokens: str | None,
         sets: tuple[str, ...], output_format: str) -> None:
    """Show a topology: nodes, addresses, links and each principal's route.

    Exit codes: 0 shown; 2 bad input.
    """
    topology = _one_topology(file, sets, hop_limit, http_tokens)
    if output_format == "json":
        router = Router(topology)
        click.echo(json_report.topology_view(topology, map(router.route, topology.principals)),
                   nl=False)
        return
    out = _console()
    out.print(table.show(out, topology))



@main.command()
@click.argument("file", type=click.Path())
@click.option("--from", "principal", metavar="NODE",
              help="Explain one principal (default: every principal).")
@what_if_options
@_view_format
@_color_option
def explain(file: str, principal: str | None, hop_limit: int | None, http_tokens: str | None,
            sets: tuple[str, ...], output_format: str) -> None:
    """Explain each principal's result: the defence that stopped it or the gap
    that let it through, and the changes that would fix it (each one checked
    by simulating it; none loosens a control).

    Exit codes: 0 whatever the outcomes, leaks included: explain says why, check
    judges; 2 bad input.
    """
    topology = _one_topology(file, sets, hop_limit, http_tokens)
    if principal:
        topology, principal = _principal(topology, file, principal)
    names = [principal] if principal else topology.principals
    router = Router(topology)
    items = [explain_principal(topology, n, router) for n in names]
    if output_format == "json":
        click.echo(json_report.explanations(topology, items), nl=False)
        return
    out = _console()
    out.print(table.explanations(out, topology, items))


def _one_topology(file: str, sets: Sequence[str], hop_limit: int | None,
                  http_tokens: str | None) -> Topology:
    """The one topology FILE holds, or exit 2 with its problems."""
    if os.path.isdir(file):
        raise click.BadParameter(f"{file!r} is a folder; this command takes one file",
                                 param_hint="FILE")
    topologies, problems = _load([file], sets, hop_limit, http_tokens)
    if problems:
        _report_problems(problems)
        sys.exit(EXIT_BAD_INPUT)
    return topologies[0]


def _principal(topology: Topology, file: str, name: str) -> tuple[Topology, str]:
    """`name` if it is a principal of the topology, or one copy of a principal
    that has replicas or is in a unit (`web#17/app#3`), else exit 2 with a hint."""
    if name not in topology.principals:
        copy = topology.copy_of(name)
        if copy is not None and copy[1] in copy[0].principals:
            return copy
        hint = _closest(name, topology.principals)
        first = topology.principals[:10]
        more = len(topology.principals) - len(first)
        listed = ", ".join(first) + (f" and {more:,} more" if more else "")
        if any(topology.nodes[n].replicas > 1 for n in topology.principals):
            listed += ("; a copy is named NODE#I for replicas, UNIT#I/NODE for a unit's "
                       "(I from 1)")
        click.echo(f"error: {file}: --from: no principal {name!r} in {topology.name}"
                   f"{hint}; principals: {listed}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    return topology, name



# --- the kernel: emulate and verify (hopsim/emulate) -----------------------------


def _kernel_options(command: Callable) -> Callable:
    options = [
        click.option("--hop-limits", "hop_limits_text", default="1-3", show_default=True,
                     metavar="RANGES", help="Hop limits to measure, e.g. 1-3 or 1,2,8."),
        click.option("--family", type=click.Choice(["4", "6"]), default=None,
                     help="Every principal uses this IP version."),
        click.option("--timeout", type=_Seconds(0.05, 30.0),
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


def _stopped(stop: emulation.Stopped) -> None:
    click.echo(f"hopsim: stopped by {stop}; its namespaces were removed", err=True)
    sys.exit(128 + stop.signum)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@_kernel_options
@click.option("--dry-run", is_flag=True,
              help="Print the commands that would build each topology; build nothing.")
@click.option("--cleanup", is_flag=True,
              help="Remove the namespaces that killed runs left behind, and exit.")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]),
              default="table", show_default=True, help="Output format.")
@_quiet_option
@_color_option
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
        _idle(ctx, ["hop_limits_text", "family", "timeout", "dry_run", "output_format"],
              "with --cleanup, which builds nothing")
        _kernel_ready()
        removed, kept = emulation.cleanup()
        for name in removed:
            _say(f"removed {name}")
        for name in kept:
            _say(f"kept {name}: the process that made it is still running")
        _say(f"{len(removed)} namespaces removed")
        sys.exit(EXIT_OK)
    if dry_run:
        _idle(ctx, ["timeout", "output_format"], "with --dry-run, which runs nothing")
    hop_limits = parse_hop_limits(hop_limits_text)
    topologies, problems = _load(_default_paths(paths), (), None, None)
    if family:
        topologies = [emulation.with_family(t, int(family)) for t in topologies]
    if dry_run:
        for topology in topologies:
            try:
                click.echo("\n".join(emulation.commands(topology)))
            except emulation.PlanError as error:
                problems.append(Problem(topology.file, None, "", str(error)))
        _report_problems(problems)
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
    _report_problems(problems)
    if output_format == "json":
        click.echo(json_report.document("emulate", reports, problems), nl=False)
    elif not _setting("quiet"):
        out = _console()
        out.print(table.check(out, reports))
        out.print(kernel_report.timing(timings))
    failed = any(r.failed for r in reports)
    sys.exit(EXIT_BAD_INPUT if problems else EXIT_FINDING if failed else EXIT_OK)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@_kernel_options
@_quiet_option
@_color_option
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
    topologies, problems = _load(_default_paths(paths), (), None, None)
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
    _report_problems(problems)
    if not _setting("quiet"):
        out = _console()
        out.print(kernel_report.verification(out, checks))
    differ = any(c.disagreements for c in checks)
    sys.exit(EXIT_BAD_INPUT if problems else EXIT_FINDING if differ else EXIT_OK)


@main.command()
@click.option("--verify", "measure", is_flag=True,
              help="Run each product's real binary in namespaces and print what it did.")
@click.option("--format", "output_format", type=click.Choice(["table", "markdown"]),
              default="table", show_default=True, help="Output format.")
@click.option("--timeout", type=_Seconds(0.05, 30.0),
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


@main.command()
@click.argument("scenario", required=False)
@click.option("--list", "list_scenarios", is_flag=True,
              help="List the scenarios, one line each, and exit.")
@click.option("--from", "principal", metavar="NODE",
              help="Follow this principal (default: a workload the hop limit changes, "
                   "else an attacker).")
@click.option("--auto", is_flag=True, help="Advance on a timer instead of on Enter.")
@click.option("--delay", type=_Seconds(min=0), default=2.5, show_default=True,
              metavar="S", help="Seconds between steps with --auto.")
@_color_option
def demo(scenario: str | None, list_scenarios: bool, principal: str | None, auto: bool,
         delay: float) -> None:
    """A guided show: one principal's token at hop limit 1, then at 2.

    SCENARIO is a bundled topology (default docker-bridge; see --list) or a
    topology file. Steps advance on Enter, or every S seconds with --auto.
    Without a terminal the show prints as plain text, for recording.

    Exit codes: 0 shown; 2 no such scenario or principal, or bad input.
    """
    ctx = click.get_current_context()
    if not auto:
        _idle(ctx, ["delay"], "without --auto: steps advance on Enter")
    if list_scenarios:
        _idle(ctx, ["principal", "auto", "delay"], "with --list")
    folder = BUNDLED if BUNDLED.is_dir() else Path.cwd() / "topologies"
    bundled = teaching.scenarios(folder) if folder.is_dir() else {}
    out = _console()
    if list_scenarios:
        out.print(demo_report.scenarios(out, [teaching.listing(load(f)) for f in bundled.values()]),
                  soft_wrap=True)
        return
    name = scenario or teaching.DEFAULT_SCENARIO
    if name not in bundled and not os.path.isfile(name):
        click.echo(f"error: demo: no scenario {name!r}{_closest(name, bundled)}; "
                   "hopsim demo --list shows them", err=True)
        sys.exit(EXIT_BAD_INPUT)
    file = str(bundled.get(name, name))
    topology = _one_topology(file, (), None, None)
    if principal:
        topology, principal = _principal(topology, file, principal)
    demo_report.present(out, teaching.build(topology, principal),
                        demo_report.pacing(out, auto, delay))


@main.command()
@click.argument("file", type=click.Path())
@click.option("--from", "principal", metavar="NODE",
              help="Draw this principal's token response (default: every principal's); "
                   "the page follows it.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write to FILE: .svg, .png, .mmd or .html (default: stdout).")
@click.option("--format", "picture_format", type=click.Choice(drawing.FORMATS),
              help="Picture format (default: from FILE's suffix, else svg).")
@what_if_options
@_quiet_option
def draw(file: str, principal: str | None, output: str | None, picture_format: str | None,
         hop_limit: int | None, http_tokens: str | None, sets: tuple[str, ...]) -> None:
    """Draw a topology: the token response's TTL on each link, the drops,
    leaking attackers and starved workloads, laid out from IMDS outwards.

    --format html writes a teaching page instead: one offline HTML file with
    the hop limit on a slider, an http_tokens switch and a play button that
    shows the answer to the token request hop by hop.

    Exit codes: 0 drawn, whatever it shows; 2 bad input.
    """
    suffix = Path(output).suffix.lower() if output else ""
    if picture_format is None and output:
        picture_format = drawing.SUFFIXES.get(suffix)
        if picture_format is None:
            raise click.BadParameter(f"cannot tell the format of {output!r}: use .svg, .png, "
                                     ".mmd or .html, or --format", param_hint="-o")
    picture_format = picture_format or "svg"
    if picture_format == "png" and not output:
        raise click.UsageError("PNG needs a file: -o FILE.png")
    topology = _one_topology(file, sets, hop_limit, http_tokens)
    if principal:
        topology, principal = _principal(topology, file, principal)
    try:
        data = drawing.render(topology, picture_format, [principal] if principal else None)
    except drawing.png.MissingPillow as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if output:
        _write(output, data)
        _say(f"wrote {output}")
    else:
        click.echo(data.decode(), nl=False)


# --- issue 12: what-if beyond the hop limit (diff, fix) -------------------------------


def _what_if_name(file: str, hop_limit: int | None, http_tokens: str | None,
                  sets: Sequence[str]) -> str:
    """A side of a diff as a person would write it: the file and its what-if."""
    parts = [file]
    parts += [f"--hop-limit {hop_limit}"] if hop_limit is not None else []
    parts += [f"--http-tokens {http_tokens}"] if http_tokens is not None else []
    parts += [f"--set {s}" for s in sets]
    return " ".join(parts)


@main.command(name="diff")
@click.argument("before", type=click.Path())
@click.argument("after", type=click.Path(), required=False)
@what_if_options
@click.option("--then-hop-limit", type=click.IntRange(MIN_HOP_LIMIT, MAX_HOP_LIMIT),
              help="AFTER's hop limit (with one file: the what-if to compare with).")
@click.option("--then-http-tokens", type=click.Choice(HTTP_TOKENS),
              help="AFTER's http_tokens.")
@click.option("--then-set", "then_sets", multiple=True, metavar="NODE.KEY=VALUE",
              help="A node key changed on AFTER only.")
@click.option("--format", "diff_format", type=click.Choice(["table", "json", "markdown"]),
              default="table", show_default=True,
              help="table for people, json for machines, markdown for a PR comment.")
@_quiet_option
@_color_option
def diff_command(before: str, after: str | None, hop_limit: int | None,
                 http_tokens: str | None, sets: tuple[str, ...], then_hop_limit: int | None,
                 then_http_tokens: str | None, then_sets: tuple[str, ...],
                 diff_format: str) -> None:
    """The principals whose outcome changes between two designs.

    BEFORE and AFTER are two topology files (AFTER defaults to BEFORE), each
    checked at its configured hop limit. --hop-limit, --http-tokens and --set
    change both; --then-hop-limit, --then-http-tokens and --then-set change
    AFTER only: `hopsim diff FILE --then-hop-limit 2` is what raising the hop
    limit would change.

    Exit codes: 0 no principal changes; 1 some do; 2 bad input.
    """
    from hopsim import diff as diffs

    after = after or before
    if after == before and not (then_hop_limit or then_http_tokens or then_sets):
        raise click.UsageError("one file and no --then-* option: nothing to compare")
    old = _one_topology(before, sets, hop_limit, http_tokens)
    new = _one_topology(after, (*sets, *then_sets), then_hop_limit or hop_limit,
                        then_http_tokens or http_tokens)
    found = diffs.diff(analysis.check(old), analysis.check(new),
                       _what_if_name(before, hop_limit, http_tokens, sets),
                       _what_if_name(after, then_hop_limit or hop_limit,
                                     then_http_tokens or http_tokens, (*sets, *then_sets)))
    if diff_format == "json":
        click.echo(found.to_json(), nl=False)
    elif diff_format == "markdown":
        click.echo(found.to_markdown(), nl=False)
    else:
        out = _console()
        if out.is_terminal:
            out.print(diffs.table(out, found))
        else:
            click.echo(found.to_text(), nl=False)
    sys.exit(EXIT_FINDING if found.changes else EXIT_OK)


@main.command(name="fix")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--max-changes", type=click.IntRange(1, 4), default=3, show_default=True,
              help="The most changes a fix may make.")
@click.option("--top", type=click.IntRange(1, 100), default=5, show_default=True,
              help="How many fixes to print.")
@click.option("--format", "fix_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text for people, json for machines.")
@_quiet_option
def fix_command(file: str, max_changes: int, top: int, fix_format: str) -> None:
    """The smallest sets of changes that make every verdict ok, each proved
    by simulating it: hop limit, http_tokens, relay settings, filter rules
    and blocking routes (docs/mitigations.md). Each fix is printed as
    options for check (--hop-limit, --http-tokens, --set) and the best one
    as a patch to FILE.

    Exit codes: 0 nothing to fix, or a fix found; 1 nothing hopsim knows
    works; 2 bad input.
    """
    from hopsim import fix as fixes

    if file == STDIN:
        raise click.BadParameter("fix reads FILE again for each change: give a file",
                                 param_hint="FILE")
    topology = _one_topology(file, (), None, None)
    found = fixes.search(file, topology, max_changes=max_changes)
    result = found.before.results[0]
    shown = found.fixes[:top]
    if fix_format == "json":
        click.echo(json.dumps({
            "file": file, "verdict": result.verdict.value, "reason": result.reason,
            "tried": found.tried,
            "fixes": [{"changes": [c.describe() for c in f.changes],
                       "options": f.options(topology),
                       "verdict": f.report.results[0].verdict.value} for f in shown],
            "patch": fixes.patch(file, topology, shown[0]) if shown else None,
        }, indent=2))
    elif not found.needed:
        click.echo(f"{file}: {result.verdict.value}: nothing to fix")
    elif not shown:
        click.echo(f"{file}: {result.verdict.value} ({result.reason})")
        click.echo(f"no fix of up to {max_changes} changes among the {len(found.candidates)} "
                   f"hopsim knows ({found.tried} sets simulated) makes every verdict ok")
    else:
        size = len(shown[0].changes)
        click.echo(f"{file}: {result.verdict.value} ({result.reason})")
        click.echo(f"{len(found.fixes)} fix{'es' if len(found.fixes) != 1 else ''} of {size} "
                   f"change{'s' if size != 1 else ''} ({found.tried} sets simulated), "
                   "each proved ok by simulation:")
        for i, f in enumerate(shown, 1):
            click.echo(f"{i:2}. {f.options(topology)}")
            for change in f.changes:
                click.echo(f"      {change.describe()}")
        click.echo(f"\nthe first as a patch to {file}:")
        click.echo(fixes.patch(file, topology, shown[0]), nl=False)
    sys.exit(EXIT_FINDING if found.needed and not shown else EXIT_OK)


if __name__ == "__main__":
    main()

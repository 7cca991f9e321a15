"""The files a command reads: PATHS (default: the bundled topologies), one
FILE, standard input, and --from NODE in them. A bad file is reported and
the others are still read (hopsim.batch does each file's work)."""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import click

from hopsim import batch, settings
from hopsim.cli.options import parse_set
from hopsim.cli.say import EXIT_BAD_INPUT, note, report_problems, setting
from hopsim.loader import STDIN, Found, find, read_stdin, what_if
from hopsim.report.wording import plural
from hopsim.topology import Problem, Topology, TopologyError, closest

BUNDLED = Path(__file__).resolve().parents[2] / "topologies"


def default_paths(paths: Sequence[str]) -> list[str]:
    if paths:
        return list(paths)
    for candidate in (BUNDLED, Path.cwd() / "topologies"):
        if candidate.is_dir():
            try:  # the short name, when run from the project
                return [str(candidate.relative_to(Path.cwd()))]
            except ValueError:
                return [str(candidate)]
    raise click.UsageError("no PATHS given and no bundled topologies/ folder found")


def job(sets: Sequence[str], hop_limit: int | None, http_tokens: str | None,
        command: str | None = None, hop_limits: Sequence[int] = ()) -> batch.Job:
    """The what-if options as a batch.Job, with a note when they void `expect`."""
    overrides = parse_set(sets)
    # `expect` describes the file as written, hop limit by hop limit: a what-if
    # hop limit keeps it meaningful; other changes do not.
    keep_expect = not overrides and http_tokens is None
    if not keep_expect:
        note("--set/--http-tokens change the topology: its expect entries are not checked")
    return batch.Job(tuple(overrides), what_if(hop_limit, http_tokens), keep_expect, command,
                     tuple(hop_limits), undeclared=setting("undeclared") or "untrusted")


def reading(job: batch.Job, found: Sequence[Found]) -> batch.Job:
    """The job, told which files were found in folders (and skipped when they
    are not topologies) and given standard input's text when "-" is a file."""
    stdin = sum(str(f.path) == STDIN for f in found)
    if stdin > 1:
        raise click.UsageError("standard input (-) can be read only once")
    try:
        text = read_stdin() if stdin else None
    except TopologyError as error:  # too large, not UTF-8
        report_problems(error.problems)
        sys.exit(EXIT_BAD_INPUT)
    return replace(job, recognise=frozenset(str(f.path) for f in found if f.folder),
                   stdin=text)


def located(file: str, text: str) -> str:
    """A note with its file in front, once."""
    return text if text.startswith(file) else f"{file}: {text}"


def kept(done: Iterable[batch.Done]) -> tuple[list[batch.Done], list[Problem]]:
    """The files that loaded, less those that repeat a topology name, and
    every problem, in the files' order; their notes said on the way."""
    loaded: list[batch.Done] = []
    problems: list[Problem] = []
    names: dict[str, str] = {}
    for d in done:
        problems += d.problems
        for text in d.notes:
            note(located(d.file, text))
        if d.skipped:
            note(f"{d.file}: not a topology ({d.skipped}), skipped")
        if d.name is None:
            continue
        if d.name in names:
            problems.append(Problem(d.file, d.name_line, "name",
                                    f"duplicate topology name {d.name!r} "
                                    f"(also in {names[d.name]})"))
            continue
        names[d.name] = d.file
        loaded.append(d)
    return loaded, problems


def unfound(paths: Sequence[str], found: Sequence[Found],
            done: Sequence[batch.Done]) -> list[Problem]:
    """A problem for each folder named that holds no topology: a wrong path
    must not pass for a folder that was checked and found fine."""
    topologies = Counter(f.folder for f, d in zip(found, done, strict=True)
                         if f.folder and not d.skipped)
    skipped = Counter(f.folder for f, d in zip(found, done, strict=True) if d.skipped)
    problems = []
    for path in map(Path, paths):
        if os.path.isdir(path) and not topologies[path]:
            why = (f"; {plural(skipped[path], 'YAML or JSON file')} skipped, not topologies"
                   if skipped[path] else "")
            problems.append(Problem(str(path), None, "", "no topology found in this folder "
                                    f"or its subfolders{why}"))
    return problems


def load(paths: Sequence[str], sets: Sequence[str], hop_limit: int | None,
         http_tokens: str | None) -> tuple[list[Topology], list[Problem]]:
    """Load every file of PATHS; a bad one is reported and the others still load."""
    found = find(paths)
    each_file = reading(job(sets, hop_limit, http_tokens), found)
    done = [batch.work(f.path, each_file) for f in found]
    loaded, problems = kept(done)
    return [d.topology for d in loaded if d.topology], problems + unfound(paths, found, done)


def one_topology(file: str, sets: Sequence[str], hop_limit: int | None,
                 http_tokens: str | None) -> Topology:
    """The one topology FILE holds, or exit 2 with its problems."""
    if os.path.isdir(file):
        raise click.BadParameter(f"{file!r} is a folder; this command takes one file",
                                 param_hint="FILE")
    topologies, problems = load([file], sets, hop_limit, http_tokens)
    if problems:
        report_problems(problems)
        sys.exit(EXIT_BAD_INPUT)
    return topologies[0]


def principal(topology: Topology, file: str, name: str) -> tuple[Topology, str]:
    """`name` if it is a principal of the topology, or one copy of a principal
    that has replicas or is in a unit (`web#17/app#3`), else exit 2 with a hint."""
    if name not in topology.principals:
        copy = topology.copy_of(name)
        if copy is not None and copy[1] in copy[0].principals:
            return copy
        hint = closest(name, topology.principals)
        first = topology.principals[:10]
        more = len(topology.principals) - len(first)
        listed = ", ".join(first) + (f" and {more:,} more" if more else "")
        if any(topology.like[n].replicas > 1 for n in topology.principals):
            listed += ("; a copy is named NODE#I for replicas, UNIT#I/NODE for a unit's "
                       "(I from 1)")
        click.echo(f"error: {file}: --from: no principal {name!r} in {topology.name}"
                   f"{hint}; principals: {listed}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    return topology, name


def one_with_settings(file: str, settings_file: str | None) -> Topology:
    """The one topology FILE holds with --settings applied as check applies
    them (an imported design told the instances), or exit 2 with the problems."""
    if not settings_file:
        return one_topology(file, (), None, None)
    instances, problems = batch.read_settings(settings_file)
    if not problems:
        found = find([file])
        each = replace(reading(job((), None, None), found), instances=instances)
        done = [batch.work(f.path, each) for f in found]
        loaded, problems = kept(done)
        if not problems:
            topologies, problems = settings.apply_all(
                [d.topology for d in loaded if d.topology], list(instances or ()),
                settings_file)
    if problems:
        report_problems(problems)
        sys.exit(EXIT_BAD_INPUT)
    return topologies[0]

"""One file of a run over many (check, sweep, validate ...): loaded, or
imported from a compose file, manifest or task definition; changed by the
what-if options and real instance settings; analysed. The one definition of a
file's work, done in this process or in a worker process (hopsim.workers), so
what goes in (Job) and what comes back (Done) must pickle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hopsim import analysis, importers, settings
from hopsim.importers import instances as settings_files
from hopsim.loader import STDIN, STDIN_NAME, load, parse
from hopsim.topology import NotATopology, Problem, Topology, TopologyError
from hopsim.topology.reader import gc_paused


@dataclass(frozen=True)
class Job:
    """What to do with each file of a run: the same in this process and in
    every worker process."""

    overrides: tuple[tuple[str, str, Any], ...] = ()  # --set
    changes: Mapping[str, Any] = field(default_factory=dict)  # --hop-limit, --http-tokens
    keep_expect: bool = True
    command: str | None = None  # "check" or "sweep": analyse; None: only load
    hop_limits: tuple[int, ...] = ()  # sweep's
    instances: tuple[settings.Instance, ...] | None = None  # --settings, read
    settings_file: str = ""
    recognise: frozenset[str] = frozenset()  # files found in folders: skip non-topologies
    stdin: str | None = None  # standard input's text, read once, for the file "-"
    undeclared: str = "untrusted"  # an imported principal with no role (importers.design)


@dataclass(frozen=True)
class Done:
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


def work(file: Path, job: Job) -> Done:
    """Load one file, apply the what-if options and --settings, analyse it.

    The cyclic garbage collector is paused for the whole of it, as the loader
    pauses it while reading: the topology lives through its analysis, and
    each collection during it looked through the 300,000 objects of a
    100,000-node fleet again (0.2 s of a 1.7 s sweep; 0.06 s now, one look
    when it resumes). What cycles the analysis leaves are collected then."""
    with gc_paused():
        return _work(file, job)


def _work(file: Path, job: Job) -> Done:
    recognise = str(file) in job.recognise
    try:
        topology, notes = _read_topology(file, job, recognise)
    except TopologyError as error:
        return Done(str(file), error.problems)
    except NotATopology as other:
        return Done(str(file), skipped=other.why)
    done = Done(topology.file, name=topology.name, name_line=topology.line_of("name"),
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


def _read_topology(file: Path, job: Job, found_in_folder: bool
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
    imported = importers.load(file, job.overrides, job.instances,
                              undeclared=job.undeclared)
    return imported.topology, imported.notes


def read_settings(file: str) -> tuple[tuple[settings.Instance, ...] | None, list[Problem]]:
    """--settings FILE's instances, or None and why they cannot be used."""
    try:
        instances = settings_files.read(file)
    except settings.SettingsError as error:
        return None, [Problem(file, None, "--settings", str(error))]
    if not instances:
        return None, settings.apply_all([], instances, file)[1]  # its "no instance" problem
    return tuple(instances), []

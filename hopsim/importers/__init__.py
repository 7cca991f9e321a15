"""Readers of the designs people already write: Docker Compose files,
Kubernetes manifests, ECS task definitions -> topologies.

Each reader turns a file into the plain document hopsim's own loader checks
(`loader.from_values`), with the line and column of each node in the
user's file, so a finding names the compose service, the pod spec or the
published port where it is written. `hopsim check` reads these files as it
reads topology files (`recognise` tells them apart by content); `hopsim
import compose|kubernetes|ecs FILE` writes the topology out for editing.
Instance settings (launch templates, node classes, plans) are read by
`hopsim.importers.instances` and applied with `--settings`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from hopsim.importers import compose, ecs, kubernetes
from hopsim.importers.design import CannotModel, Design
from hopsim.loader import Override, from_values, parse
from hopsim.settings import Instance
from hopsim.topology import Problem, Topology, TopologyError
from hopsim.topology.reader import MAX_FILE_BYTES, dotted, read_bytes

READERS: dict[str, ModuleType] = {"compose": compose, "kubernetes": kubernetes, "ecs": ecs}
_SNIFF_BYTES = 256 * 1024  # enough to see what a file is; fleets are read once, by load

_COMPOSE = re.compile(r"^services\s*:", re.M)
_HOPSIM = re.compile(r"^(nodes|units)\s*:|^\s*\"(nodes|units)\"\s*:", re.M)
_KUBERNETES = re.compile(r"^apiVersion\s*:", re.M)
_KIND = re.compile(r"^kind\s*:", re.M)


def recognise(path: str | Path) -> ModuleType | None:
    """The reader for a file, by its content, or None (a hopsim topology, or
    anything else: the topology loader then says what is wrong with it)."""
    try:
        head = read_bytes(path, _SNIFF_BYTES)[:_SNIFF_BYTES].decode("utf-8", errors="replace")
    except OSError:
        return None
    return recognise_text(head, str(path))


def recognise_text(text: str, file: str = "") -> ModuleType | None:
    if file.lower().endswith(".tf"):
        return ecs if "aws_ecs_task_definition" in text else None
    if _HOPSIM.search(text):
        return None
    if ecs.looks_like_text(text):
        return ecs
    if _COMPOSE.search(text):
        return compose
    if _KUBERNETES.search(text) and _KIND.search(text):
        return kubernetes
    return None


@dataclass(frozen=True)
class Imported:
    """A file read by one of the readers: its topology and what was assumed."""

    topology: Topology
    notes: tuple[str, ...]
    design: Design


def read_design(path: str | Path, reader: ModuleType | None = None) -> Design:
    """The design of a compose file, manifest or task definition; raise
    TopologyError with one located line when it cannot be read or modelled."""
    file = str(path)
    try:
        raw = read_bytes(path, MAX_FILE_BYTES)
    except OSError as exc:
        raise TopologyError([Problem(file, None, "", f"cannot read: {exc.strerror}")]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise TopologyError([Problem(file, None, "", f"larger than {MAX_FILE_BYTES:,} bytes")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise TopologyError([Problem(file, line, "", f"not UTF-8 text ({exc.reason} at byte "
                                     f"{exc.start})")]) from None
    reader = reader or recognise_text(text, file)
    if reader is None:
        raise TopologyError([Problem(file, None, "", "not a compose file, Kubernetes manifest "
                                     "or ECS task definition")])
    try:
        return reader.read(text, file)
    except CannotModel as cannot:
        raise TopologyError([Problem(file, cannot.line, cannot.key, cannot.message)]) from None


def load(path: str | Path, overrides: Iterable[Override] = (),
         instances: Sequence[Instance] | None = None, reader: ModuleType | None = None
         ) -> Imported:
    """The topology of a compose file, manifest or task definition. With the
    instances of --settings, the imds node names the one this file runs on:
    the file's own choice (x-hopsim instance, the hopsim.io/instance
    annotation), or the only settings there are."""
    design = read_design(path, reader)
    file = str(path)
    if instances is not None:
        choose_instance(design, instances, file)
        _blocked(design, instances, file)
        design.note("", _settings_note(design, instances))
    elif not design.imds_from_file:
        design.note("", "no --settings: AWS's defaults assumed (hop limit 1, http_tokens "
                    "optional); give the launch template, node class or plan with --settings")
    lines, columns = design.lines()
    try:
        topology = from_values(design.document(), file, lines, columns, overrides)
    except TopologyError as error:
        raise TopologyError(design.problems_in_own_words(error.problems)) from None
    return Imported(topology, tuple(design.notes), design)


def choose_instance(design: Design, instances: Sequence[Instance], file: str) -> None:
    if design.instance_name is not None:
        return
    distinct = {tuple(sorted(i.settings.items())) for i in instances}
    if len(distinct) == 1:
        design.instance_name = instances[0].address
        return
    names = ", ".join(i.address for i in instances[:6]) + (", ..." if len(instances) > 6
                                                           else "")
    raise TopologyError([Problem(file, None, "--settings", f"the settings hold "
                                 f"{len(instances)} instances with different metadata options "
                                 f"({names}); say which runs this file: {design.how_to_name}")])


# What an importer puts behind the instance's routed hop (not on it, not outside).
_BEHIND_THE_INSTANCE = frozenset({"container", "host", "proxy", "waf", "ssrf", "tunnel"})


def _blocked(design: Design, instances: Sequence[Instance], file: str) -> None:
    """An IMDS block in the chosen instance's user data that hopsim cannot
    express yet: ECS_AWSVPC_BLOCK_IMDS=true for awsvpc tasks [C], or an iptables
    rule dropping forwarded traffic to 169.254.169.254 (AWS's DOCKER-USER advice
    for bridged containers) for whatever sits behind a routed hop. Modelling
    the design without the block would call a blocked workload fed: say so
    instead, at the construct it concerns."""
    chosen = [i for i in instances if design.instance_name in i.keys]
    for instance in chosen:
        if "ECS_AWSVPC_BLOCK_IMDS" in instance.imds_blocks and design.awsvpc_at:
            raise TopologyError([Problem(
                file, design.awsvpc_at[0], "networkMode",
                f"awsvpc tasks on {instance.address}, whose user data sets "
                "ECS_AWSVPC_BLOCK_IMDS=true: the ECS agent blocks IMDS for these tasks, "
                "which hopsim cannot model yet; it would not judge them as if the block "
                "were not there")])
        routed = next((n for n, v in design.nodes.items() if n != "instance" and not
                       v.get("runs_on") and v.get("kind") in _BEHIND_THE_INSTANCE), None)
        if "iptables" in instance.imds_blocks and routed is not None:
            at = design.positions.get(dotted(("nodes", routed)))
            raise TopologyError([Problem(
                file, at[0] if at else None, routed,
                f"{instance.address}'s user data drops forwarded traffic to "
                "169.254.169.254 with iptables (DOCKER-USER or FORWARD): hopsim cannot model "
                "that rule yet; it would not judge the containers behind it as if it were "
                "not there")])


def _settings_note(design: Design, instances: Sequence[Instance]) -> str:
    """Where the settings applied to this file come from, key by key."""
    chosen = next((i for i in instances if design.instance_name in i.keys), None)
    if chosen is None:
        return f"settings: {design.instance_name}"  # the loader reports it missing
    keys = ", ".join(f"{k} {_shown(v)} ({chosen.origin.get(k, chosen.address)})"
                     for k, v in chosen.settings.items())
    return f"settings of {chosen.address}: {keys}"


def _shown(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def check_dump(text: str, file: str) -> None:
    """Never write a topology the loader would refuse: raise its problems."""
    parse(text, f"{file} (as imported)")


def dump(design: Design, file: str) -> str:
    """The design as a topology file a person can read and edit: each node
    with a comment saying what it stands for and where it is written."""
    lines, _ = design.lines()
    out = [f"# Imported by `hopsim import {design.source}` from {file}.",
           "# Each node says what it stands for; docs/importers.md says why.",
           "# Edit freely: this file is hopsim's own format now."]
    if design.notes:
        out.append("# Notes:")
        out += [f"#   - {note}" for note in design.notes]
    doc = design.document()
    out.append(_dump({"name": doc["name"], "description": doc["description"]}))
    out.append("imds: " + _dump(doc["imds"], flow=True))
    out.append("nodes:")
    for name, fields in doc["nodes"].items():
        line = lines.get(dotted(("nodes", name)))
        where = f", {file}:{line}" if line else ""
        out.append(f"  # {design.origin.get(name, name)}{where}")
        body = _dump({name: fields})
        out += ["  " + piece for piece in body.splitlines()]
    out.append("links:")
    out += [f"  - {_dump(link, flow=True)}" for link in doc["links"]]
    return "\n".join(out) + "\n"


def _dump(value: Any, flow: bool = False) -> str:
    text = yaml.safe_dump(value, sort_keys=False, default_flow_style=flow,
                          width=88, allow_unicode=True)
    return text.removesuffix("\n...\n").rstrip("\n")

"""Files, standard input and folders -> Topology: read (topology.reader), built
(topology.build), the routes a file writes checked by the routing model
(routing.written_route_problems); nothing in a file can make it read another
file. Above both the topology package and routing, which is built on it."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hopsim.routing import written_route_problems
from hopsim.topology.build import build
from hopsim.topology.checker import closest
from hopsim.topology.formats import TOPOLOGY_KEYS
from hopsim.topology.model import NotATopology, Problem, Topology, TopologyError
from hopsim.topology.reader import (
    MAX_FILE_BYTES,
    MAX_JSON_BYTES,
    Abort,
    SeveralDocuments,
    dotted,
    gc_paused,
    json_positions,
    read_bytes,
    read_json,
    read_yaml,
    show,
)

TOPOLOGY_SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"  # a path that means standard input
STDIN_NAME = "<stdin>"  # its name in messages and reports
Override = tuple[str, str, Any]  # (node, key, value): what `--set NODE.KEY=VALUE` says


def load(path: str | Path, overrides: Iterable[Override] = (), *,
         recognise: bool = False) -> Topology:
    """Load one topology file (YAML, or JSON if it ends in .json; "-" reads
    standard input, as YAML); raise TopologyError with every problem found.

    recognise: the file was found in a folder, not named: raise NotATopology
    for a document that is not a topology (is_topology) instead of reporting
    its problems."""
    file = str(path)
    if file == STDIN:
        return parse(read_stdin(), STDIN_NAME, overrides, recognise=recognise)
    limit = MAX_JSON_BYTES if _is_json(file) else MAX_FILE_BYTES
    return parse(load_text(path, limit), file, overrides, recognise=recognise)


def load_text(path: str | Path, limit: int = MAX_FILE_BYTES) -> str:
    """A file's text, UTF-8, at most `limit` bytes; raise TopologyError."""
    file = str(path)
    try:
        raw = read_bytes(path, limit)
    except OSError as exc:
        raise TopologyError([Problem(file, None, "", f"cannot read: {exc.strerror}")]) from None
    return _text(raw, file, limit)


def read_stdin() -> str:
    """Standard input as topology text, with a file's limits (YAML's)."""
    return _text(sys.stdin.buffer.read(MAX_FILE_BYTES + 1), STDIN_NAME, MAX_FILE_BYTES)


def _text(raw: bytes, file: str, limit: int) -> str:
    if len(raw) > limit:
        raise TopologyError([Problem(file, None, "", f"larger than {limit:,} bytes")])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise TopologyError([Problem(file, line, "", f"not UTF-8 text ({exc.reason} "
                                     f"at byte {exc.start})")]) from None


def parse(text: str, file: str = "<string>", overrides: Iterable[Override] = (), *,
          recognise: bool = False) -> Topology:
    """Parse topology text, YAML or (when `file` ends in .json) JSON; raise
    TopologyError with every problem found (NotATopology, with recognise, for
    another kind of document)."""
    with gc_paused():
        return _parse(text, file, overrides, recognise)


def is_topology(doc: Any) -> bool:
    """Whether a document found in a folder is a hopsim topology: a mapping
    with at least one of the keys only a topology has at its top (nodes,
    units, links, imds, expect). A Terraform plan, a Kubernetes manifest, a
    compose file or a CI workflow has none of them. A file named on the
    command line is read as a topology whatever it holds."""
    return isinstance(doc, dict) and any(key in doc for key in TOPOLOGY_KEYS)


def _not_a_topology(doc: Any) -> str:
    """Why is_topology(doc) is false, in a few words."""
    if doc is None:
        return "empty"
    if not isinstance(doc, dict):
        return f"a {'list' if isinstance(doc, list) else type(doc).__name__}, not a mapping"
    keys = [str(k) for k in list(doc)[:4]]
    more = ", ..." if len(doc) > 4 else ""
    return (f"its top keys, {', '.join(keys)}{more}, include none of "
            f"{', '.join(TOPOLOGY_KEYS)}" if keys else "an empty mapping")


def _parse(text: str, file: str, overrides: Iterable[Override], recognise: bool) -> Topology:
    try:
        doc, lines, columns, soft = (read_json if _is_json(file) else read_yaml)(text)
    except SeveralDocuments as abort:
        if recognise:
            raise NotATopology(file, "several YAML documents; a topology is one") from None
        raise TopologyError([Problem(file, abort.line, abort.key, abort.message)]) from None
    except Abort as abort:
        raise TopologyError([Problem(file, abort.line, abort.key, abort.message)]) from None
    if recognise and not is_topology(doc):
        raise NotATopology(file, _not_a_topology(doc))
    overrides = list(overrides)
    problems = [Problem(file, line, key, message) for line, key, message in soft]
    problems += _apply_overrides(doc, file, overrides)
    # JSON is read without lines, at C speed; a file with a problem gets them
    # in a second, pure-Python pass, made only then.
    positions = (lambda: json_positions(text)[:2]) if not lines and _is_json(file) else None
    topology, found = build(doc, file, lines, columns, written_route_problems, positions)
    return _loaded(topology, problems + _blame_overrides(found, overrides))


def from_values(doc: Any, file: str, lines: Mapping[str, int] | None = None,
                columns: Mapping[str, int] | None = None,
                overrides: Iterable[Override] = ()) -> Topology:
    """A topology from plain values that another reader made (hopsim/importers:
    a compose file, a Kubernetes manifest), checked as a topology file is, with
    `lines` and `columns` giving each key path's place in the file it came
    from; raise TopologyError with every problem found."""
    lines, columns = dict(lines or {}), dict(columns or {})
    overrides = list(overrides)
    with gc_paused():
        problems = _apply_overrides(doc, file, overrides)
        topology, found = build(doc, file, lines, columns, written_route_problems)
    return _loaded(topology, problems + _blame_overrides(found, overrides))


def _loaded(topology: Topology | None, problems: list[Problem]) -> Topology:
    """The topology, or TopologyError with every problem, in line order."""
    if problems:
        raise TopologyError(sorted(problems, key=lambda p: (p.line or 0)))
    assert topology is not None
    return topology


def _is_json(file: str) -> bool:
    return file.lower().endswith(".json")


def _apply_overrides(doc: Any, file: str, overrides: Iterable[Override]) -> list[Problem]:
    problems = []
    nodes = doc.get("nodes") if isinstance(doc, dict) else None
    for node, key, value in overrides:
        if not isinstance(nodes, dict) or not isinstance(nodes.get(node), dict):
            names = list(nodes) if isinstance(nodes, dict) else []
            problems.append(Problem(file, None, "", f"no node {show(node)}"
                                    f"{closest(node, names)}", option=f"--set {node}.{key}"))
            continue
        nodes[node][key] = value
    return problems


def _blame_overrides(problems: Iterable[Problem], overrides: Sequence[Override]) -> list[Problem]:
    """A problem with a key that --set wrote is the command line's, not a line
    of the file's: the file does not say what is wrong."""
    written = {dotted(("nodes", node, key)): f"--set {node}.{key}" for node, key, _ in overrides}
    blamed = []
    for p in problems:
        option = written.get(p.key) or next(
            (o for k, o in written.items() if p.key.startswith(k + ".")), "")
        blamed.append(replace(p, line=None, option=option) if option else p)
    return blamed


def what_if(hop_limit: int | None = None, http_tokens: str | None = None) -> dict[str, Any]:
    """The imds changes that `--hop-limit` and `--http-tokens` ask for."""
    changes: dict[str, Any] = {}
    if hop_limit is not None:
        changes["hop_limit"] = hop_limit
    if http_tokens is not None:
        changes["http_tokens"] = http_tokens
    return changes


@dataclass(frozen=True)
class Found:
    """A file to read, and the folder it was found in (None: named as is)."""

    path: Path
    folder: Path | None = None


def find(paths: Iterable[str | Path]) -> list[Found]:
    """Files named, and the *.yaml / *.yml / *.json files in folders named and
    their subfolders (hidden files and folders, such as .git, left out), each
    folder's in sorted order."""
    found: list[Found] = []
    for path in map(Path, paths):
        if not os.path.isdir(path):  # False, not OSError, for a name too long
            found.append(Found(path))
            continue
        inside = []
        for top, folders, files in os.walk(path):
            folders[:] = [f for f in folders if not f.startswith(".")]
            inside += [Path(top, f) for f in files if not f.startswith(".")
                       and Path(f).suffix in TOPOLOGY_SUFFIXES and os.path.isfile(Path(top, f))]
        found += [Found(f, path) for f in sorted(inside, key=lambda f: f.parts)]
    return found


def topology_files(paths: Iterable[str | Path]) -> list[Path]:
    """The files find() finds."""
    return [f.path for f in find(paths)]

"""A topology document as an importer builds it, with each node's place in
the user's own file.

Every importer (compose, Kubernetes, ECS) turns a file into the same plain
document hopsim's own loader checks (`loader.from_values`), so one set of
rules validates them all; the positions it records make findings point at the
service, the pod spec or the port in the user's file, not at hopsim's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from hopsim.importers.images import Relay
from hopsim.kinds import KINDS
from hopsim.outcome import Role
from hopsim.topology import Problem
from hopsim.topology.reader import dotted, show

Position = tuple[int, int]  # line, column; both from 1

# What hopsim assumes when neither --settings nor the file says: AWS's own
# defaults for an instance launched without metadata options (hop limit 1,
# IMDSv1 still answering). The pessimistic choice for leaks.
DEFAULT_IMDS = {"hop_limit": 1, "http_tokens": "optional"}


NAMING = {
    "compose": "`x-hopsim: {instance: ADDRESS}` at the top of the compose file",
    "kubernetes": "the annotation `hopsim.io/instance: ADDRESS` on a workload",
    "ecs": "`hopsim.instance` in the task definition's tags, or --settings with one "
           "instance",
}


class CannotModel(Exception):
    """A construct hopsim cannot model (yet): one line, at its place."""

    def __init__(self, line: int | None, key: str, message: str):
        super().__init__(message)
        self.line, self.key, self.message = line, key, message


@dataclass
class Design:
    """The document being built, and where each of its keys came from."""

    name: str
    description: str
    source: str  # "compose", "kubernetes", "ecs"
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    links: list[list[str]] = field(default_factory=list)
    imds: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_IMDS))
    positions: dict[str, Position] = field(default_factory=dict)  # topology key -> place
    notes: list[str] = field(default_factory=list)
    origin: dict[str, str] = field(default_factory=dict)  # node -> what it stands for
    instance_name: str | None = None  # the real instance (`instance:`) --settings applies
    imds_from_file: bool = False  # the file itself says hop limit or http_tokens
    awsvpc_at: Position | None = None  # an ECS awsvpc task: ECS_AWSVPC_BLOCK_IMDS matters
    user_keys: dict[str, str] = field(default_factory=dict)  # topology key -> the file's

    @property
    def how_to_name(self) -> str:
        """How a file of this kind names the instance it runs on."""
        return NAMING[self.source]

    def unique(self, wanted: str) -> str:
        """`wanted` as a node name: without / or # (they name units and copies),
        and not yet taken."""
        name = (wanted.replace("/", "-").replace("#", "-") or "unnamed").strip()
        candidate, n = name, 2
        while candidate in self.nodes:
            candidate, n = f"{name}-{n}", n + 1
        return candidate

    def node(self, wanted: str, at: Position | None, origin: str, **fields: Any) -> str:
        name = self.unique(wanted)
        self.nodes[name] = {k: v for k, v in fields.items() if v is not None}
        self.origin[name] = origin
        if at:
            self.positions[dotted(("nodes", name))] = at
        return name

    def place(self, name: str, key: str, at: Position | None, user_key: str = "") -> None:
        """A node's key (role, adds_xff ...) came from `at` in the user's file,
        where it is called `user_key` (services.api.x-hopsim.role)."""
        if at:
            self.positions[dotted(("nodes", name, key))] = at
        if user_key:
            self.user_keys[dotted(("nodes", name, key))] = user_key

    def problems_in_own_words(self, problems: Iterable[Problem]) -> list[Problem]:
        """The loader's problems with the keys the user's file has."""
        out = []
        for p in problems:
            key = self.user_keys.get(p.key)
            out.append(replace(p, key=key) if key else p)
        return out

    def link(self, a: str, b: str) -> None:
        if [a, b] not in self.links and [b, a] not in self.links:
            self.links.append([a, b])

    def note(self, where: str, message: str) -> None:
        self.notes.append(f"{where}: {message}" if where else message)

    def instance(self, masquerade: bool, description: str, at: Position | None) -> str:
        """The imds node and the instance it serves: a forwarding host (Docker
        and the kubelet's CNI both make the instance route for its containers)."""
        imds = self.node("imds", at, "the instance metadata service", kind="imds")
        host = self.node("instance", at, "the EC2 instance", kind="host", forwarding=True,
                         masquerade=masquerade or None, description=description)
        self.link(imds, host)
        return host

    def relay(self, wanted: str, relay: Relay, at: Position | None, origin: str,
              runs_on: str | None = None) -> str:
        return self.node(wanted, at, origin, kind=relay.kind, runs_on=runs_on,
                         adds_xff=relay.adds_xff, methods=list(relay.methods)
                         if relay.methods is not None else None,
                         forwards_headers=relay.forwards_headers, description=relay.description)

    def outsider(self, relay: str, entry: str, at: Position | None, what: str) -> str:
        """An outside client that reaches `relay` through `entry` (the host that
        publishes the port) and sends its requests through it: role attacker,
        as anyone on the internet may be."""
        client = self.node(f"outsider-{relay}", at, f"anyone who reaches {what}",
                           kind="client", role=Role.ATTACKER.value, via=[relay],
                           description=f"an outside client of {what}")
        self.link(client, entry)
        return client

    def document(self) -> dict[str, Any]:
        if self.instance_name is not None and "imds" in self.nodes:
            self.nodes["imds"]["instance"] = self.instance_name
        return {"name": self.name, "description": self.description, "imds": dict(self.imds),
                "nodes": self.nodes, "links": self.links}

    def lines(self) -> tuple[dict[str, int], dict[str, int]]:
        """Each key path's line and column in the user's file, for the loader's
        problems and for findings."""
        lines = {k: line for k, (line, _) in self.positions.items()}
        columns = {k: column for k, (_, column) in self.positions.items()}
        if "nodes" not in lines and self.positions:
            first = min(self.positions.values())
            lines[""], columns[""] = first
        return lines, columns


def hopsim_fields(raw: Any, where: str, design: Design) -> dict[str, Any]:
    """The keys a user may set for one service in hopsim's own words (compose
    `x-hopsim:`, Kubernetes `hopsim.io/...` annotations, ECS `hopsim.*` docker
    labels): role, relay (a relay kind, or false), adds_xff, methods,
    forwards_headers, outsiders (false: its published ports reach no outsider).
    Unknown keys are noted and ignored; wrong values are left for the loader
    to report at their line."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        design.note(where, f"expected a mapping of hopsim settings, got {show(raw)}; ignored")
        return {}
    known = {"role", "relay", "adds_xff", "methods", "forwards_headers", "outsiders",
             "description"}
    out = {}
    for key, value in raw.items():
        if key not in known:
            design.note(where, f"unknown hopsim key {show(key)} ignored; expected one of "
                        f"{', '.join(sorted(known))}")
            continue
        out[key] = _boolean(value) if key in ("adds_xff", "forwards_headers",
                                               "outsiders") else value
        if key == "relay":
            out[key] = _boolean(value) if str(value).lower() in ("true", "false") else value
    return out


def _boolean(value: Any) -> Any:
    """true/false as annotations and labels write them (strings)."""
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def relay_override(own: Mapping[str, Any], found: Relay | None) -> Relay | None:
    """The relay a service is, from the image's table entry and the user's
    `relay:` / `adds_xff:` / `methods:` / `forwards_headers:` (which win)."""
    relay = own.get("relay")
    if relay is False:
        return None
    if isinstance(relay, str) and relay in KINDS and KINDS[relay].relay is not None:
        spec = KINDS[relay].relay
        assert spec is not None
        found = Relay(relay, spec.adds_xff, spec.methods, spec.forwards_headers,
                      f"{relay}, as the file says")
    elif relay not in (None, True):
        found = Relay(str(relay), False, None, True, "")  # the loader reports the kind
    elif relay is True and found is None:
        found = Relay("proxy", False, None, True, "a relay, as the file says; assumed to "
                      "add no X-Forwarded-For")
    if found is None:
        return None
    changes = {k: own[k] for k in ("adds_xff", "methods", "forwards_headers") if k in own}
    return Relay(found.kind, changes.get("adds_xff", found.adds_xff),
                 tuple(changes["methods"]) if isinstance(changes.get("methods"), list)
                 else found.methods, changes.get("forwards_headers", found.forwards_headers),
                 found.description)


def imds_fields(raw: Any, where: str, design: Design) -> None:
    """Settings written in the workload file itself (compose top-level
    `x-hopsim: {imds: {...}}`); --settings wins over them."""
    if not isinstance(raw, Mapping):
        return
    for key, value in raw.items():
        if key in ("hop_limit", "http_tokens", "http_endpoint", "ipv6"):
            design.imds[key] = value
            design.imds_from_file = True
        elif key == "instance":
            design.instance_name = value
        else:
            design.note(where, f"unknown imds key {show(key)} ignored")


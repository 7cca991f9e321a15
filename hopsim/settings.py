"""Real instance settings in: Terraform plans and EC2 descriptions.

A topology's imds node names its real instance (`instance: aws_instance.web`,
`module.app.aws_launch_template.web`, or an instance id `i-0abc...`). Its
metadata options come from the output of `terraform show -json` (a plan or a
state) or of `aws ec2 describe-instances`; `--settings FILE` applies them to
the topology in memory, `hopsim import` writes them into the file.

Precedence, as EC2 applies them: the instance's own `metadata_options`, then
its launch template's, then the defaults of its AMI when the plan shows it was
registered with `imds_support = "v2.0"` (HttpTokens required, hop limit 2),
then AWS's defaults (hop limit 1, tokens optional, endpoint enabled, IPv6
off); docs/facts.md, "The hop limit". A value the plan does not
know yet (computed) counts as unset.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from hopsim.imds import HTTP_ENDPOINT, HTTP_TOKENS, MAX_HOP_LIMIT, MIN_HOP_LIMIT
from hopsim.loader import parse
from hopsim.topology import Problem, Topology
from hopsim.topology.reader import MAX_DIGITS, dotted, read_bytes

MAX_BYTES = 64 * 1024 * 1024  # plans of large estates run to tens of MB
AWS_DEFAULTS = {"hop_limit": 1, "http_tokens": "optional", "http_endpoint": "enabled",
                "ipv6": False}
IMDS_V2_AMI_DEFAULTS = {"hop_limit": 2, "http_tokens": "required"}
KEYS = tuple(AWS_DEFAULTS)
_INDEX = re.compile(r'\[(?:\d+|"(?:[^"\\]|\\.)*")\]')


class SettingsError(Exception):
    """A settings file that cannot be used: one line that says why."""


@dataclass(frozen=True)
class Instance:
    """One real instance (or launch template) and its metadata options."""

    address: str  # module.app[0].aws_instance.web[1], or i-0abc... from EC2
    settings: Mapping[str, Any]  # hop_limit, http_tokens, http_endpoint, ipv6
    origin: Mapping[str, str] = field(default_factory=dict)  # key -> where it came from
    instance_id: str | None = None
    # Read from source (hopsim/importers/instances.py): the line of each key set
    # in the file, for findings to point at; the IMDS blocks its user data sets
    # up ("ECS_AWSVPC_BLOCK_IMDS", "iptables"), which the importers cannot model.
    source_lines: Mapping[str, int] = field(default_factory=dict)
    source_file: str = ""
    imds_blocks: frozenset[str] = frozenset()

    @property
    def keys(self) -> set[str]:
        """What a topology may call it: the address, the address without
        count/for_each indexes, the instance id."""
        return {k for k in (self.address, _INDEX.sub("", self.address), self.instance_id) if k}


# --- reading -------------------------------------------------------------------


SOURCES = {"terraform": "`terraform show -json` output",
           "ec2": "`aws ec2 describe-instances` output"}


def read(path: str | Path, source: str | None = None) -> list[Instance]:
    """The instances of a `terraform show -json` or `describe-instances` file;
    `source` ("terraform" or "ec2") insists on one of them."""
    try:
        raw = read_bytes(path, MAX_BYTES)
    except OSError as exc:
        raise SettingsError(f"cannot read: {exc.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise SettingsError(f"larger than {MAX_BYTES:,} bytes")
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise SettingsError(f"not JSON{where}: expected the output of `terraform show -json` "
                            "or `aws ec2 describe-instances`") from None
    except RecursionError:
        raise SettingsError("not JSON: nested too deeply") from None
    except ValueError:  # an integer past Python's digit limit
        raise SettingsError("not JSON hopsim reads: a number longer than "
                            f"{MAX_DIGITS:,} digits") from None
    found = None
    if isinstance(doc, dict) and "Reservations" in doc:
        found = "ec2"
    elif isinstance(doc, dict) and "format_version" in doc and (
            "planned_values" in doc or "values" in doc or "resource_changes" in doc):
        found = "terraform"
    if found and source and found != source:
        raise SettingsError(f"this is {SOURCES[found]}, not {SOURCES[source]}: "
                            f"use `hopsim import {found}`")
    if found == "ec2":
        try:
            return from_ec2(doc)
        except (AttributeError, TypeError, KeyError, IndexError) as exc:
            raise SettingsError("not shaped as `aws ec2 describe-instances` writes its output "
                                f"({type(exc).__name__}: {exc})") from None
    if found == "terraform":
        return from_terraform(doc)
    raise SettingsError("neither `terraform show -json` output (no format_version and "
                        "planned_values) nor `aws ec2 describe-instances` output "
                        "(no Reservations)")


def from_ec2(doc: Mapping[str, Any]) -> list[Instance]:
    instances = []
    for reservation in _list(doc.get("Reservations"), "Reservations"):
        for raw in _list(_dict(reservation, "a reservation").get("Instances"), "Instances"):
            raw = _dict(raw, "an instance")
            instance_id = raw.get("InstanceId")
            if not isinstance(instance_id, str):
                raise SettingsError("an instance without an InstanceId")
            options = _dict(raw.get("MetadataOptions") or {}, f"{instance_id} MetadataOptions")
            found = _options(instance_id, {
                "http_put_response_hop_limit": options.get("HttpPutResponseHopLimit"),
                "http_tokens": options.get("HttpTokens"),
                "http_endpoint": options.get("HttpEndpoint"),
                "http_protocol_ipv6": options.get("HttpProtocolIpv6")})
            settings = {**AWS_DEFAULTS, **found}
            origin = {k: "MetadataOptions" if k in found else "AWS default" for k in KEYS}
            instances.append(Instance(instance_id, settings, origin, instance_id))
    return instances


def from_terraform(doc: Mapping[str, Any]) -> list[Instance]:
    """aws_instance and aws_launch_template resources of a plan or a state;
    raise SettingsError for a document of another shape (a list where
    Terraform writes an object, ...)."""
    try:
        return _from_terraform(doc)
    except (AttributeError, TypeError, KeyError, IndexError) as exc:
        raise SettingsError("not shaped as `terraform show -json` writes a plan or a state "
                            f"({type(exc).__name__}: {exc})") from None


def _from_terraform(doc: Mapping[str, Any]) -> list[Instance]:
    values = doc.get("planned_values") or doc.get("values") or {}
    resources = list(_resources(_dict(values, "planned_values").get("root_module") or {}))
    prior = ((doc.get("prior_state") or {}).get("values") or {}).get("root_module") or {}
    known = resources + list(_resources(prior))
    config = _Configuration((doc.get("configuration") or {}).get("root_module") or {})
    templates = [r for r in resources if r.get("type") == "aws_launch_template"]
    v2_amis = {r["values"].get("id"): r["address"] for r in known
               if r.get("type") == "aws_ami" and isinstance(r.get("values"), dict)
               and r["values"].get("imds_support") == "v2.0"}
    out = []
    for r in resources:
        if r.get("type") == "aws_launch_template" and r.get("mode") == "managed":
            out.append(_instance(r, None, v2_amis, config))
        elif r.get("type") == "aws_instance" and r.get("mode") == "managed":
            out.append(_instance(r, _template_of(r, templates, config), v2_amis, config))
    return out


def _instance(r: Mapping[str, Any], template: Mapping[str, Any] | None,
              v2_amis: Mapping[str, str], config: _Configuration) -> Instance:
    address = r["address"]
    values = r.get("values") or {}
    layers: list[tuple[str, dict[str, Any]]] = [(address, _metadata_options(r))]
    if template is not None:
        layers.append((template["address"], _metadata_options(template)))
    ami = _v2_ami(r, template, v2_amis, config)
    if ami:
        layers.append((f"{ami} (imds_support v2.0)", IMDS_V2_AMI_DEFAULTS))
    layers.append(("AWS default", AWS_DEFAULTS))
    settings: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for where, found in layers:
        for key, value in found.items():
            if key not in settings:
                settings[key], origin[key] = value, where
    instance_id = values.get("id") if isinstance(values.get("id"), str) else None
    return Instance(address, {k: settings[k] for k in KEYS}, origin, instance_id)


def _metadata_options(r: Mapping[str, Any]) -> dict[str, Any]:
    blocks = (r.get("values") or {}).get("metadata_options") or []
    if isinstance(blocks, dict):
        blocks = [blocks]
    block = _dict(blocks[0], f"{r['address']} metadata_options") if blocks else {}
    return _options(r["address"], block)


def _options(where: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Metadata options in either vocabulary -> hopsim's imds keys, checked."""
    out: dict[str, Any] = {}
    hop_limit = raw.get("http_put_response_hop_limit")
    if hop_limit is not None:
        if (not isinstance(hop_limit, int) or isinstance(hop_limit, bool)
                or not MIN_HOP_LIMIT <= hop_limit <= MAX_HOP_LIMIT):
            raise SettingsError(f"{where}: hop limit {hop_limit!r} is not "
                                f"{MIN_HOP_LIMIT}..{MAX_HOP_LIMIT}")
        out["hop_limit"] = hop_limit
    for key, choices in (("http_tokens", HTTP_TOKENS), ("http_endpoint", HTTP_ENDPOINT)):
        value = raw.get(key)
        if value is not None and value != "":
            if value not in choices:
                raise SettingsError(f"{where}: {key} {value!r} is not one of "
                                    f"{', '.join(choices)}")
            out[key] = value
    ipv6 = raw.get("http_protocol_ipv6")
    if ipv6 is not None and ipv6 != "":
        if ipv6 not in ("enabled", "disabled"):
            raise SettingsError(f"{where}: http_protocol_ipv6 {ipv6!r} is not one of "
                                "enabled, disabled")
        out["ipv6"] = ipv6 == "enabled"
    return out


def _resources(module: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for r in module.get("resources") or []:
        if isinstance(r, dict) and isinstance(r.get("address"), str):
            yield r
    for child in module.get("child_modules") or []:
        if isinstance(child, dict):
            yield from _resources(child)


def _module_of(address: str) -> str:
    """'module.app[0].aws_instance.web[1]' -> 'module.app[0]'."""
    parts = _split(address)
    prefix = []
    while len(parts) >= 2 and parts[0] == "module":
        prefix += parts[:2]
        parts = parts[2:]
    return ".".join(prefix)


def _split(address: str) -> list[str]:
    """Dots outside for_each keys: module.a["x.y"].aws_instance.web -> parts."""
    parts, current, quoted = [], "", False
    for char in address:
        if char == '"':
            quoted = not quoted
        if char == "." and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    return parts + [current]


class _Configuration:
    """The plan's `configuration`: which resource an expression refers to."""

    def __init__(self, root: Mapping[str, Any]):
        self.root = root

    def references(self, address: str, *path: str) -> list[str]:
        """The references of an argument of a resource, as plan addresses in
        its module instance (e.g. module.app[0].aws_launch_template.web)."""
        module = _module_of(address)
        resource = _INDEX.sub("", address[len(module) + 1 if module else 0:])
        body: Any = self.root
        for call in _INDEX.sub("", module).split(".")[1::2] if module else []:
            body = ((body.get("module_calls") or {}).get(call) or {}).get("module") or {}
        config = next((r for r in body.get("resources") or []
                       if isinstance(r, dict) and r.get("address") == resource), None)
        expression: Any = (config or {}).get("expressions") or {}
        for key in path:
            if isinstance(expression, list):
                expression = expression[0] if expression else {}
            expression = expression.get(key) if isinstance(expression, dict) else None
        refs = expression.get("references", []) if isinstance(expression, dict) else []
        return [f"{module}.{ref}" if module else ref for ref in refs if isinstance(ref, str)]


def _template_of(r: Mapping[str, Any], templates: list[dict[str, Any]],
                 config: _Configuration) -> dict[str, Any] | None:
    blocks = (r.get("values") or {}).get("launch_template") or []
    block = blocks[0] if blocks and isinstance(blocks[0], dict) else {}
    for key in ("id", "name"):
        if block.get(key):
            found = [t for t in templates if (t.get("values") or {}).get(key) == block[key]]
            if found:
                return found[0]
    refs = set(config.references(r["address"], "launch_template", "id")
               + config.references(r["address"], "launch_template", "name"))
    for template in templates:
        if template["address"] in refs or _INDEX.sub("", template["address"]) in refs:
            return template
    return None


def _v2_ami(r: Mapping[str, Any], template: Mapping[str, Any] | None,
            v2_amis: Mapping[str, str], config: _Configuration) -> str | None:
    """The imds-support v2.0 AMI the instance boots, if the plan shows one."""
    image = (r.get("values") or {}).get("ami") or (
        (template or {}).get("values") or {}).get("image_id")
    if image in v2_amis:
        return image
    refs = config.references(r["address"], "ami")
    if template is not None and not refs:
        refs = config.references(template["address"], "image_id")
    for ami_id, address in v2_amis.items():
        if address in refs or _INDEX.sub("", address) in refs:
            return ami_id or address
    return None


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise SettingsError(f"{what}: expected a list")
    return value


def _dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SettingsError(f"{what}: expected an object")
    return value


# --- applying ------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    """What the settings change on one imds node."""

    node: str
    instance: Instance  # the first of `matched`: they all have its settings
    changes: Mapping[str, tuple[Any, Any]]  # key -> (from, to)
    matched: tuple[str, ...] = ()  # the addresses the node's key names

    @property
    def source(self) -> str:
        if len(self.matched) > 1:
            return f"{', '.join(self.matched)}"
        return self.instance.address


def match(topology: Topology, instances: Iterable[Instance]
          ) -> tuple[list[Applied], list[Problem]]:
    """The instance of each imds node that names one, or a located problem."""
    instances = list(instances)
    applied, problems = [], []
    for name in topology.imds_nodes:
        node = topology.nodes[name]
        if not node.instance:
            continue
        found = [i for i in instances if node.instance in i.keys]
        where = topology.line_of("nodes", name, "instance")
        settings = {tuple(sorted(i.settings.items())) for i in found}
        if not found:
            known = sorted({i.address for i in instances})
            hint = f"; it has {', '.join(known[:8])}" + (", ..." if len(known) > 8 else "") \
                if known else "; it has no aws_instance, aws_launch_template or instance"
            problems.append(Problem(topology.file, where, dotted(("nodes", name, "instance")),
                                    f"no instance {node.instance!r} in the settings{hint}"))
        elif len(settings) > 1:
            problems.append(Problem(topology.file, where, dotted(("nodes", name, "instance")),
                                    f"{node.instance!r} names {len(found)} instances with "
                                    f"different settings ({', '.join(i.address for i in found)})"
                                    "; name one of them"))
        else:
            instance = found[0]
            current = node.imds
            changes = {k: (getattr(current, k), v) for k, v in instance.settings.items()
                       if getattr(current, k) != v}
            applied.append(Applied(name, instance, changes,
                                   tuple(i.address for i in found)))
    return applied, problems


def apply(topology: Topology, applied: Iterable[Applied]) -> Topology:
    """The topology with each matched imds node set to its instance's settings,
    and the file and line each came from where the settings file gives them."""
    sources = dict(topology.sources)
    for a in applied:
        node = topology.nodes[a.node]
        topology = topology.with_node(a.node, imds=replace(node.imds, **a.instance.settings))
        for key, line in a.instance.source_lines.items():
            sources[dotted(("nodes", a.node, key))] = (a.instance.source_file, line)
    return replace(topology, sources=sources) if sources else topology


def names_instances(topology: Topology) -> bool:
    return any(topology.nodes[n].instance for n in topology.imds_nodes)


def apply_all(topologies: Iterable[Topology], instances: list[Instance], file: str
              ) -> tuple[list[Topology], list[Problem]]:
    """Each topology with its instances' settings; one that names an instance
    the settings do not have is a problem, and is left out of the run."""
    topologies = list(topologies)
    if not instances:
        return [], [Problem(file, None, "--settings", "no aws_instance, aws_launch_template "
                            "or EC2 instance in this file")]
    if not any(names_instances(t) for t in topologies):
        return [], [Problem(file, None, "--settings", "no imds node of the topologies names "
                            "an instance: add `instance: ADDRESS_OR_ID` to an imds node")]
    out, problems = [], []
    for topology in topologies:
        applied, found = match(topology, instances)
        problems += found
        if not found:
            out.append(apply(topology, applied))
    return out, problems


def describe(file: str, a: Applied) -> str:
    """One line for `hopsim import`: what changed on a node, and from where."""
    source = a.source
    if not a.changes:
        return f"{file}: {a.node}: already as {source} says"
    changes = ", ".join(f"{k} {_scalar(old)} -> {_scalar(new)} ({a.instance.origin.get(k, source)})"
                        for k, (old, new) in a.changes.items())
    return f"{file}: {a.node} <- {source}: {changes}"


# --- writing into the file ---------------------------------------------------------


def rewrite(text: str, topology: Topology, applied: Iterable[Applied]) -> str:
    """The topology file's text with each matched imds node's keys set.

    Edits only the values that change (or adds the keys missing), so comments,
    order and style of the rest of the file stay as they were.
    """
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    edits: list[tuple[int, int, str]] = []
    nodes = _child(root, "nodes")
    for a in applied:
        if not a.changes:
            continue
        mapping = _child(nodes, a.node)
        assert isinstance(mapping, yaml.MappingNode)
        wanted = {k: to for k, (_, to) in a.changes.items()}
        if mapping.flow_style:
            edits.append(_flow(text, mapping, wanted,
                               as_json=topology.file.lower().endswith(".json")))
        else:
            edits += _block(text, mapping, wanted)
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    parse(text, topology.file)  # never write a file the loader would refuse
    return text


def _child(node: yaml.Node, key: str) -> yaml.Node:
    assert isinstance(node, yaml.MappingNode)
    return next(v for k, v in node.value if k.value == key)


def _scalar(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()


def _flow(text: str, mapping: yaml.MappingNode, wanted: dict[str, Any], *,
          as_json: bool = False) -> tuple[int, int, str]:
    """A flow mapping with the wanted keys set: YAML, or JSON for a JSON file
    (whose keys are quoted; issue 15: importing into one wrote YAML)."""
    scalar, key = (json.dumps, json.dumps) if as_json else (_scalar, str)
    items = [(k.value, text[v.start_mark.index:v.end_mark.index]) for k, v in mapping.value]
    items = [(k, scalar(wanted.pop(k)) if k in wanted else v) for k, v in items]
    items += [(k, scalar(v)) for k, v in wanted.items()]
    new = "{" + ", ".join(f"{key(k)}: {v}" for k, v in items) + "}"
    return mapping.start_mark.index, mapping.end_mark.index, new


def _block(text: str, mapping: yaml.MappingNode, wanted: dict[str, Any]
           ) -> list[tuple[int, int, str]]:
    edits = []
    for k, v in mapping.value:
        if k.value in wanted:
            edits.append((v.start_mark.index, v.end_mark.index, _scalar(wanted.pop(k.value))))
    if wanted:
        indent = " " * mapping.value[0][0].start_mark.column
        last = mapping.value[-1][1].end_mark.index
        if text[last - 1:last] == "\n":  # a block scalar ends after its newline
            at = last - 1
        else:
            line_end = text.find("\n", last)
            at = len(text) if line_end < 0 else line_end
        added = "".join(f"\n{indent}{k}: {_scalar(v)}" for k, v in wanted.items())
        edits.append((at, at, added))
    return edits

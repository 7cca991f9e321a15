"""ECS task definitions -> a topology: the JSON of `aws ecs
describe-task-definition` (or of register-task-definition), CloudFormation
`AWS::ECS::TaskDefinition`, Terraform `aws_ecs_task_definition`.

One container instance (an EC2 instance running the ECS agent) runs every
task of the file. What each network mode becomes (docs/importers.md):

- `bridge` (the default on Linux EC2): containers on docker0 behind the
  instance, which routes and masquerades: one routed hop [C];
- `host`: the containers run on the instance (no hop);
- `awsvpc`: each task has its own ENI in its own namespace, with no host hop
  between it and IMDS [C]; modelled as running in the instance's stack (the
  same count of routers: none). `ECS_AWSVPC_BLOCK_IMDS=true` in the agent's
  configuration blocks IMDS for such tasks [C]; hopsim cannot express that
  block yet, so with --settings whose user data sets it, the file cannot be
  modelled (exit 2), rather than judged as if the block were not there;
- `none`: no network, left out;
- FARGATE-only tasks run on no instance of yours: cannot be modelled.

The ECS agent itself runs in the instance's network stack and needs the
instance role: a workload on the instance. Port mappings publish a container;
a relay image published so gets an outside client (role attacker) that sends
its requests through it. Docker labels `hopsim.role`, `hopsim.relay`,
`hopsim.adds_xff` ... set hopsim's keys; a task definition's tag
`hopsim.instance` names the instance of --settings.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hopsim.importers.design import (
    CannotModel,
    Design,
    Position,
    hopsim_fields,
    relay_override,
)
from hopsim.importers.images import relay_of
from hopsim.importers.text import (
    Document,
    cloudformation_yaml,
    is_json,
    json_document,
    yaml_documents,
)
from hopsim.outcome import Role
from hopsim.topology.reader import show

SOURCE = "ecs"
LABEL = "hopsim."
MODES = ("bridge", "host", "awsvpc", "none")

_JSON_MARK = re.compile(r'"(containerDefinitions|ContainerDefinitions)"\s*:')
_CFN_MARK = re.compile(r"AWS::ECS::TaskDefinition")
_YAML_CFN = re.compile(r"^(Resources|AWSTemplateFormatVersion)\s*:", re.M)


def looks_like_text(text: str) -> bool:
    if is_json(text):
        return bool(_JSON_MARK.search(text))
    return bool(_YAML_CFN.search(text) and _CFN_MARK.search(text))


@dataclass
class _Container:
    name: str
    image: Any
    at: Position | None
    published: Position | None  # where its port mappings are, when it has some
    own: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Task:
    family: str
    mode: str
    mode_at: Position | None
    at: Position | None
    fargate_only: bool
    containers: list[_Container]
    instance: str | None = None


def read(text: str, file: str) -> Design:
    design = Design(Path(file).stem, f"Imported from {file} (ECS task definitions): one "
                    "container instance, an EC2 instance running the ECS agent, runs every "
                    "task.", SOURCE)
    if file.lower().endswith(".tf"):
        tasks = _from_terraform(text, file, design)
    elif is_json(text):
        tasks = _from_json(json_document(text), design, file)
    else:
        tasks = [t for doc in yaml_documents(cloudformation_yaml(text))
                 for t in _from_cloudformation(doc, design, file)]
    if not tasks:
        raise CannotModel(1, "", "no task definition in this file (containerDefinitions, "
                          "AWS::ECS::TaskDefinition or aws_ecs_task_definition)")
    for task in tasks:
        if task.fargate_only:
            line = task.at[0] if task.at else None
            raise CannotModel(line, "requiresCompatibilities", f"task {task.family} runs on "
                              "Fargate only: no EC2 instance of yours, and no instance "
                              "metadata service hopsim can model")
        if task.mode not in MODES:
            raise CannotModel(task.mode_at[0] if task.mode_at else None, "networkMode",
                              f"networkMode {show(task.mode)}: expected bridge, host, awsvpc "
                              "or none")
        if task.instance and design.instance_name is None:
            design.instance_name = task.instance
    awsvpc = [t for t in tasks if t.mode == "awsvpc"]
    design.awsvpc_at = awsvpc[0].mode_at if awsvpc else None
    host = design.instance(True, "the ECS container instance: routes and masquerades for "
                           "its bridged containers", tasks[0].at)
    design.node("ecs-agent", tasks[0].at, "the ECS agent", kind="container", runs_on=host,
                role=Role.WORKLOAD.value, description="the ECS agent, in the instance's network "
                "stack: it needs the instance role's credentials")
    names = [c.name for t in tasks for c in t.containers]
    for task in tasks:
        _task(task, design, host, file, names)
    return design


def _task(task: _Task, design: Design, host: str, file: str, names: list[str]) -> None:
    if task.mode == "none":
        design.note(_where(file, task.mode_at), f"task {task.family}: networkMode none: no "
                    "network, no IMDS; left out")
        return
    if task.mode == "awsvpc":
        design.note(_where(file, task.mode_at), f"task {task.family}: awsvpc: its own ENI, no "
                    "routed hop to IMDS (modelled in the instance's stack); "
                    "ECS_AWSVPC_BLOCK_IMDS=true in the agent's configuration would block it, "
                    "which hopsim cannot express yet")
    bridge = None
    if task.mode == "bridge":
        made = "network:docker0"
        bridge = next((n for n, o in design.origin.items() if o == made), None)
        if bridge is None:
            bridge = design.node("docker0", task.mode_at or task.at, made, kind="bridge",
                                 description="docker0, the bridge of ECS bridge-mode tasks")
            design.link(bridge, host)
    on_host = host if task.mode in ("host", "awsvpc") else None
    for c in task.containers:
        wanted = c.name if names.count(c.name) == 1 else f"{task.family}-{c.name}"
        what = f"task {task.family}, container {c.name}"
        relay = relay_override(c.own, relay_of(c.image))
        if relay is not None:
            node = design.relay(wanted, relay, c.at, f"{what} ({c.image})", runs_on=on_host)
            if bridge:
                design.link(node, bridge)
            if c.own.get("outsiders", c.published is not None):
                design.outsider(node, host, c.published or c.at, f"{what}'s port mappings")
            continue
        node = design.node(wanted, c.at, what + (f" ({c.image})" if c.image else ""),
                           kind="container", runs_on=on_host, role=c.own.get("role"),
                           description=c.own.get("description") or
                           f"{what}, networkMode {task.mode}")
        if bridge:
            design.link(node, bridge)
        elif task.mode_at:
            design.place(node, "runs_on", task.mode_at)


def _where(file: str, at: Position | None) -> str:
    return f"{file}:{at[0]}" if at else file


def _containers(doc: Document, path: tuple[Any, ...], raw: Any, keys: dict[str, str],
                design: Design, file: str) -> list[_Container]:
    """Container definitions, in either spelling (JSON camelCase or
    CloudFormation PascalCase, `keys` maps one to the other)."""
    out = []
    for i, c in enumerate(raw if isinstance(raw, list) else []):
        if not isinstance(c, dict):
            continue
        labels = c.get(keys["dockerLabels"])
        own = {k[len(LABEL):]: v for k, v in labels.items()
               if isinstance(k, str) and k.startswith(LABEL)} if isinstance(labels, dict) \
            else {}
        ports = c.get(keys["portMappings"])
        out.append(_Container(
            str(c.get(keys["name"], f"container-{i}")), c.get(keys["image"]),
            doc.at(*path, i, keys["name"]) or doc.at(*path, i),
            doc.at(*path, i, keys["portMappings"]) if isinstance(ports, list) and ports
            else None,
            hopsim_fields(own, _where(file, doc.at(*path, i)), design)))
    return out


_CAMEL = {k: k for k in ("name", "image", "portMappings", "dockerLabels")}
_PASCAL = {k: k[0].upper() + k[1:] for k in _CAMEL}


def _from_json(doc: Document, design: Design, file: str) -> list[_Task]:
    """describe-task-definition output, a task definition, or a list of them."""
    values = doc.values
    if isinstance(values, dict) and isinstance(values.get("taskDefinition"), dict):
        candidates = [(("taskDefinition",), values["taskDefinition"], values.get("tags"))]
    elif isinstance(values, dict) and "Resources" in values:
        return _from_cloudformation(doc, design, file)
    elif isinstance(values, list):
        candidates = [((i,), v, None) for i, v in enumerate(values) if isinstance(v, dict)]
    else:
        candidates = [((), values, values.get("tags") if isinstance(values, dict) else None)]
    tasks = []
    for path, task, tags in candidates:
        if not isinstance(task, dict) or "containerDefinitions" not in task:
            continue
        compat = task.get("requiresCompatibilities") or task.get("compatibilities") or []
        tasks.append(_Task(
            str(task.get("family", Path(file).stem)), task.get("networkMode") or "bridge",
            doc.at(*path, "networkMode") if "networkMode" in task else doc.at(*path),
            doc.at(*path, "family") or doc.at(*path), _fargate_only(compat, task),
            _containers(doc, (*path, "containerDefinitions"), task["containerDefinitions"],
                        _CAMEL, design, file), _tag(tags or task.get("tags"))))
    return tasks


def _fargate_only(compat: Any, task: dict[str, Any]) -> bool:
    return isinstance(compat, list) and bool(compat) and all(
        str(c).upper() == "FARGATE" for c in compat)


def _tag(tags: Any) -> str | None:
    """The value of the tag hopsim.instance, in ECS's or CloudFormation's form."""
    for tag in tags if isinstance(tags, list) else []:
        if isinstance(tag, dict):
            key = tag.get("key", tag.get("Key"))
            if key == "hopsim.instance":
                value = tag.get("value", tag.get("Value"))
                return str(value) if value is not None else None
    return None


def _from_cloudformation(doc: Document, design: Design, file: str) -> list[_Task]:
    resources = doc.values.get("Resources") if isinstance(doc.values, dict) else None
    tasks = []
    for name, resource in (resources or {}).items():
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::ECS::TaskDefinition":
            continue
        props = resource.get("Properties") if isinstance(resource.get("Properties"),
                                                         dict) else {}
        path = ("Resources", name, "Properties")
        family = props.get("Family") if isinstance(props.get("Family"), str) else str(name)
        mode = props.get("NetworkMode") or "bridge"
        tasks.append(_Task(
            family, mode.strip() if isinstance(mode, str) else mode,
            doc.at(*path, "NetworkMode") if "NetworkMode" in props else doc.at(
                "Resources", name),
            doc.at("Resources", name), _fargate_only(props.get("RequiresCompatibilities"),
                                                     props),
            _containers(doc, (*path, "ContainerDefinitions"), props.get("ContainerDefinitions"),
                        _PASCAL, design, file), _tag(props.get("Tags"))))
    return tasks


# --- Terraform -------------------------------------------------------------------


def _from_terraform(text: str, file: str, design: Design) -> list[_Task]:
    from hopsim.importers import hcl

    tasks = []
    for block in hcl.resources(text, file, "aws_ecs_task_definition"):
        body = block.body
        mode = hcl.literal(body.get("network_mode"))
        if body.get("network_mode") is not None and mode is None:
            raise CannotModel(block.line_of("network_mode"), f"{block.address}.network_mode",
                              f"network_mode is an expression "
                              f"({hcl.shown(body['network_mode'])}): hopsim reads source as "
                              "written; give the task definition's JSON instead")
        compat = [hcl.literal(c) for c in body.get("requires_compatibilities") or []]
        family = hcl.literal(body.get("family")) or block.name
        definitions = _hcl_containers(block, file)
        containers = []
        for i, c in enumerate(definitions):
            labels = c.get("dockerLabels") if isinstance(c.get("dockerLabels"), dict) else {}
            own = {k[len(LABEL):]: hcl.literal(v) for k, v in labels.items()
                   if isinstance(k, str) and k.startswith(LABEL)}
            name = hcl.literal(c.get("name")) or f"container-{i}"
            at = block.position_of_text(f'"{name}"') or (block.line, 1)
            ports = c.get("portMappings")
            containers.append(_Container(
                name, hcl.literal(c.get("image")) or hcl.shown(c.get("image")), at,
                (block.position_of_text("portMappings") or at) if ports else None,
                hopsim_fields(own, f"{file}:{block.line}", design)))
        tasks.append(_Task(family, mode or "bridge", (block.line_of("network_mode") or
                                                       block.line, 1), (block.line, 1),
                           _fargate_only(compat, body), containers))
    return tasks


def _hcl_containers(block: Any, file: str) -> list[dict[str, Any]]:
    """container_definitions: a JSON string (a heredoc), or jsonencode([...])
    of an HCL list, read as written."""
    from hopsim.importers import hcl

    raw = block.body.get("container_definitions")
    line = block.line_of("container_definitions")
    key = f"{block.address}.container_definitions"
    literal = hcl.literal(raw)
    if isinstance(literal, str):
        try:
            value = json.loads(literal)
        except json.JSONDecodeError as exc:
            raise CannotModel(line, key, f"container_definitions is not JSON ({exc.msg})") \
                from None
        return [c for c in value if isinstance(c, dict)] if isinstance(value, list) else []
    inner = hcl.call_argument(raw, "jsonencode")
    if inner is not None:
        value = hcl.expression(inner, file, line)
        return [c for c in value if isinstance(c, dict)] if isinstance(value, list) else []
    raise CannotModel(line, key, f"container_definitions is an expression "
                      f"({hcl.shown(raw)}): hopsim reads source as written; give the task "
                      "definition's JSON (aws ecs describe-task-definition) instead")

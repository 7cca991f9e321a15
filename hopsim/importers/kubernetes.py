"""Kubernetes manifests (Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet,
Job, CronJob; multi-document YAML such as `helm template` prints; List) ->
a topology.

One node (an EC2 instance) runs every pod. What each construct becomes
(docs/importers.md):

- a pod: a container linked to the node, which routes for it: the pod
  network as one routed hop (the Amazon VPC CNI routes each pod's veth [C];
  an overlay CNI adds one more [O], which a manifest does not show);
- `hostNetwork: true`: the pod runs on the node (no hop);
- a Deployment's `replicas`: the pod's replicas;
- a container whose image is a relay (nginx, envoy ...): an L7 relay node;
  reachable from outside (a LoadBalancer or NodePort Service, an Ingress, a
  hostPort), an outside client (role attacker) sends its requests through it;
- a docker:dind container: the pod runs a Docker daemon, which routes for the
  containers it starts: one more hop;
- annotations `hopsim.io/role`, `hopsim.io/relay`, `hopsim.io/adds-xff`,
  `hopsim.io/methods`, `hopsim.io/forwards-headers`, `hopsim.io/outsiders`
  on the workload or its pod template; `hopsim.io/instance` names the
  instance of --settings the pods run on.
"""

from __future__ import annotations

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
from hopsim.importers.images import is_docker_daemon, l4_relay_of, relay_of
from hopsim.importers.text import Document, yaml_documents

SOURCE = "kubernetes"
ANNOTATION = "hopsim.io/"

# kind -> the key path of its pod spec's parent (the object holding `spec`
# of the pod, with `metadata` for the template's annotations and labels).
POD_TEMPLATES: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


@dataclass
class _Workload:
    kind: str
    name: str
    doc: Document
    prefix: tuple[Any, ...]  # where the object is in its document (a List's items.N)
    template: tuple[Any, ...]
    labels: dict[str, Any] = field(default_factory=dict)
    own: dict[str, Any] = field(default_factory=dict)

    def at(self, *path: Any) -> Position | None:
        return self.doc.at(*self.prefix, *path)

    def value(self, *path: Any) -> Any:
        value: Any = self.doc.values
        for key in (*self.prefix, *path):
            if isinstance(value, dict):
                value = value.get(key)
            elif isinstance(value, list) and isinstance(key, int) and key < len(value):
                value = value[key]
            else:
                return None
        return value


def read(text: str, file: str) -> Design:
    documents = yaml_documents(text)
    objects = [(doc, prefix, obj) for doc in documents for prefix, obj in _objects(doc)]
    name = Path(file).stem
    design = Design(name, f"Imported from {file} (Kubernetes): one node, an EC2 instance, "
                    "runs every pod and routes each pod's traffic (the pod network as one "
                    "routed hop).", SOURCE)
    for doc in documents:
        for line, key, message in doc.soft:
            design.note(f"{file}:{line}", f"{key}: {message}")
    workloads = []
    exposed: list[dict[str, Any]] = []  # selectors of Services reachable from outside
    ingress_backends: set[str] = set()
    for doc, prefix, obj in objects:
        kind = obj.get("kind")
        if kind in POD_TEMPLATES:
            meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
            workloads.append(_Workload(kind, str(meta.get("name") or kind.lower()), doc,
                                       prefix, POD_TEMPLATES[kind]))
        elif kind == "Service":
            spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
            selector = spec.get("selector") if isinstance(spec.get("selector"), dict) else None
            meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
            if selector:
                exposed.append({"selector": selector, "name": meta.get("name"),
                                "outside": spec.get("type") in ("LoadBalancer", "NodePort")})
        elif kind == "Ingress":
            ingress_backends |= _ingress_backends(obj)
    if not workloads:
        raise CannotModel(documents[0].at("kind")[0] if documents and documents[0].at("kind")
                          else None, "kind", "no Pod, Deployment, ReplicaSet, StatefulSet, "
                          "DaemonSet, Job or CronJob in this file: nothing runs here")
    host = design.instance(False, "the Kubernetes node (an EC2 instance): routes each pod's "
                           "traffic", workloads[0].at("metadata", "name"))
    for w in workloads:
        _annotations(w, design, file)
        if w.own.get("instance") and design.instance_name is None:
            design.instance_name = str(w.own.pop("instance"))
        w.own.pop("instance", None)
    for w in workloads:
        reachable = any(s["outside"] or s["name"] in ingress_backends for s in exposed
                        if _selects(s["selector"], w.labels))
        _workload(w, design, host, file, reachable)
    return design


def _objects(doc: Document) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    values = doc.values
    if not isinstance(values, dict):
        return []
    if values.get("kind") == "List" or (str(values.get("kind", "")).endswith("List")
                                        and isinstance(values.get("items"), list)):
        return [(("items", i), item) for i, item in enumerate(values.get("items") or [])
                if isinstance(item, dict)]
    return [((), values)]


def _annotations(w: _Workload, design: Design, file: str) -> None:
    """hopsim.io/ annotations of the workload, then of its pod template (which
    win), as hopsim's keys; and the template's labels, for Services."""
    own: dict[str, Any] = {}
    where: dict[str, Position | None] = {}
    for path in (("metadata",), (*w.template, "metadata")):
        meta = w.value(*path)
        if not isinstance(meta, dict):
            continue
        annotations = meta.get("annotations") if isinstance(meta.get("annotations"),
                                                           dict) else {}
        for key, value in annotations.items():
            if isinstance(key, str) and key.startswith(ANNOTATION):
                name = key[len(ANNOTATION):].replace("-", "_")
                own[name] = value.split(",") if name == "methods" and isinstance(
                    value, str) else value
                where[name] = w.at(*path, "annotations", key)
        if path != ("metadata",) and isinstance(meta.get("labels"), dict):
            w.labels = meta["labels"]
    if not w.template and isinstance(w.value("metadata", "labels"), dict):
        w.labels = w.value("metadata", "labels")
    instance = own.pop("instance", None)
    w.own = hopsim_fields(own, _where(file, w.at("metadata")), design)
    if instance is not None:
        w.own["instance"] = instance
    w.own["_where"] = where


def _where(file: str, at: Position | None) -> str:
    return f"{file}:{at[0]}" if at else file


def _selects(selector: dict[str, Any], labels: dict[str, Any]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _ingress_backends(obj: dict[str, Any]) -> set[str]:
    """The Services an Ingress sends outside traffic to."""
    names: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            service = value.get("service")
            if isinstance(service, dict) and isinstance(service.get("name"), str):
                names.add(service["name"])
            if isinstance(value.get("serviceName"), str):  # extensions/v1beta1
                names.add(value["serviceName"])
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(obj.get("spec"))
    return names


def _workload(w: _Workload, design: Design, host: str, file: str, reachable: bool) -> None:
    spec_path = (*w.template, "spec")
    spec = w.value(*spec_path)
    if not isinstance(spec, dict):
        design.note(_where(file, w.at("metadata")), f"{w.kind} {w.name}: no pod spec; "
                    "left out")
        return
    containers = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    host_network = spec.get("hostNetwork") is True
    name_at = w.at("metadata", "name")
    pod_at = w.at(*spec_path, "hostNetwork") if host_network else name_at
    where: dict[str, Position | None] = w.own.pop("_where", {})
    replicas = w.value("spec", "replicas") if w.kind in (
        "Deployment", "ReplicaSet", "StatefulSet", "ReplicationController") else None
    replicas = replicas if isinstance(replicas, int) and not isinstance(replicas, bool) \
        and replicas > 1 and not host_network else None
    what = f"{w.kind} {w.name}"
    relays, others, daemons = [], [], []
    for i, c in enumerate(containers):
        if is_docker_daemon(c.get("image")):
            daemons.append((i, c))
            continue
        relay = relay_override(w.own, relay_of(c.get("image")) or l4_relay_of(
            c.get("image"), [*_words(c.get("command")), *_words(c.get("args"))]))
        (relays if relay is not None else others).append((i, c, relay))
    if w.own.get("relay") not in (None, False) and not relays and others:
        # the annotation makes the pod itself a relay (an SSRF-prone app ...)
        i, c, _ = others.pop(0)
        relays.append((i, c, relay_override(w.own, None)))
    outside = w.own.get("outsiders", reachable or _host_port(containers))
    pod = None
    if others or daemons or not relays:
        if daemons:
            pod = _dind(w, design, host, what, pod_at, host_network, daemons)
        else:
            pod = design.node(w.name, pod_at, what + (" (hostNetwork)" if host_network else ""),
                              kind="container", runs_on=host if host_network else None,
                              role=w.own.get("role"), replicas=replicas,
                              description=w.own.get("description") or (
                                  f"{what}: a hostNetwork pod, in the node's network stack"
                                  if host_network else f"{what}: a pod, one routed hop "
                                  "from the node"))
            if not host_network:
                design.link(pod, host)
            else:
                design.place(pod, "runs_on", pod_at)
        for key, at in where.items():
            design.place(pod, key, at, f"{ANNOTATION}{key.replace('_', '-')}")
    for i, c, relay in relays:
        wanted = f"{w.name}-{c.get('name', i)}" if pod else w.name
        node = design.relay(wanted, relay, w.at(*spec_path, "containers", i),
                            f"{what}, container {c.get('name', i)} ({c.get('image')})",
                            runs_on=host if host_network else None)
        if not host_network:
            design.link(node, host)
        for key, at in where.items():
            if key in ("adds_xff", "methods", "forwards_headers", "relay"):
                design.place(node, key, at, f"{ANNOTATION}{key.replace('_', '-')}")
        if outside:
            design.outsider(node, host, w.at("metadata", "name"), f"{what} from outside the "
                            "cluster")
    if w.own.get("role") and not pod:
        design.note(_where(file, name_at), f"{what}: a relay is not a principal; its role is "
                    "ignored")


def _host_port(containers: list[dict[str, Any]]) -> bool:
    return any(isinstance(p, dict) and p.get("hostPort") for c in containers
               for p in c.get("ports") or [])


def _dind(w: _Workload, design: Design, host: str, what: str, at: Position | None,
          host_network: bool, daemons: list[tuple[int, dict[str, Any]]]) -> str:
    """A pod with a docker:dind container: its Docker daemon routes and
    masquerades for the containers it starts [O: DinD needs one more hop]."""
    spec_path = (*w.template, "spec")
    if host_network:
        daemon = host
        pod = design.node(w.name, at, what + " (hostNetwork)", kind="container",
                          runs_on=host, role=w.own.get("role"),
                          description=f"{what}: a hostNetwork pod running a Docker daemon")
    else:
        daemon = pod = design.node(w.name, at, what + " (Docker-in-Docker)", kind="host",
                                   forwarding=True, masquerade=True, role=w.own.get("role"),
                                   description=f"{what}: a pod running a Docker daemon, "
                                   "which routes for its own containers")
        design.link(pod, host)
    daemon_at = w.at(*spec_path, "containers", daemons[0][0])
    inner = design.node(f"{w.name}-docker0", daemon_at, f"{what}'s Docker bridge",
                        kind="bridge", description="the bridge of the pod's Docker daemon")
    design.link(inner, daemon)
    jobs = design.node(f"{w.name}-jobs", daemon_at, f"containers {what}'s Docker daemon "
                       "starts", kind="container", description="containers the pod's "
                       "Docker daemon starts (CI jobs, builds)")
    design.link(jobs, inner)
    return pod


def _words(value: Any) -> list[Any]:
    """A container's command or args as a list (a manifest may write either)."""
    return value if isinstance(value, list) else [value] if value is not None else []

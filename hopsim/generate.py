"""Generated fleets: many instances of the patterns the bundled lessons teach.

A fleet is a topology document (a dict, the file format's schema), made of one
unit per instance: the instance, its imds and what runs behind it. The units
are the real ones (docker bridge, host-network agents, Docker-in-Docker
runners, Kubernetes nodes, NAT instances, reverse proxies), with a mix of hop
limits and http_tokens, so that verdicts differ from unit to unit. The same
seed always gives the same document.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import yaml

from hopsim.outcome import Role

# The roles as a topology file spells them (plain strings, as YAML writes them).
WORKLOAD, ATTACKER = Role.WORKLOAD.value, Role.ATTACKER.value

# Unit kinds and how often they appear in a fleet (weights, not shares: the
# first units of a fleet cover every kind once, see `fleet`).
UNIT_WEIGHTS = {
    "docker": 30,  # bridged containers behind docker0 (issue 1's lesson)
    "agents": 12,  # host-network agents: runs_on the instance, 0 routers
    "dind": 8,  # CI runners with Docker-in-Docker: two routers
    "k8s": 25,  # worker nodes, VPC CNI: pods routed, no bridge
    "nat": 10,  # NAT instances with private clients behind them
    "proxy": 15,  # reverse proxies, with or without X-Forwarded-For
}
HOP_LIMITS = ((1, 45), (2, 45), (3, 10))  # (hop limit, weight): AWS defaults 1 and 2
TOKENS = (("required", 80), ("optional", 20))
# A unit has its containers (pods, clients) and 2 to 5 nodes more: imds, the
# instance, bridges, a proxy, an outside attacker; about 3 on average.
EXTRA_NODES = 3


def fleet(instances: int, containers: int, seed: int = 0) -> dict[str, Any]:
    """A fleet topology document of `instances` units with about `containers`
    containers, pods or clients each; deterministic for `seed`."""
    if instances < 1 or containers < 1:
        raise ValueError("a fleet has at least one instance with one container")
    rng = random.Random(seed)
    kinds = list(UNIT_WEIGHTS)[:instances]  # every kind once, when there is room
    kinds += rng.choices(list(UNIT_WEIGHTS), weights=list(UNIT_WEIGHTS.values()),
                         k=instances - len(kinds))
    rng.shuffle(kinds)
    nodes: dict[str, dict[str, Any]] = {}
    links: list[list[str]] = []
    width = len(str(instances - 1))
    for index, kind in enumerate(kinds):
        prefix = f"i{index:0{width}d}-{kind}"
        count = rng.randint(max(1, containers - containers // 4), containers + containers // 4)
        unit = _Unit(prefix, rng, nodes, links)
        unit.imds()
        UNITS[kind](unit, count)
    return {
        "name": f"fleet-{instances}x{containers}-seed{seed}",
        "description": (f"A generated fleet (hopsim generate fleet --instances {instances} "
                        f"--containers {containers} --seed {seed}): {instances} instances, "
                        "each a docker host, host-network agents, a Docker-in-Docker "
                        "runner, a Kubernetes node, a NAT instance or a reverse proxy."),
        "imds": {"hop_limit": 2, "http_tokens": "required", "http_endpoint": "enabled",
                 "ipv6": False},
        "nodes": nodes,
        "links": links,
    }


class _Unit:
    """One instance's nodes and links, named under its prefix."""

    def __init__(self, prefix: str, rng: random.Random, nodes: dict[str, dict[str, Any]],
                 links: list[list[str]]):
        self.prefix, self.rng, self.nodes, self.links = prefix, rng, nodes, links
        self.host = self.name("host")

    def name(self, part: str) -> str:
        return f"{self.prefix}-{part}"

    def add(self, part: str, **fields: Any) -> str:
        name = self.name(part)
        self.nodes[name] = fields
        return name

    def link(self, a: str, b: str) -> None:
        self.links.append([a, b])

    def pick(self, weighted: tuple[tuple[Any, int], ...]) -> Any:
        values, weights = zip(*weighted, strict=True)
        return self.rng.choices(values, weights=weights)[0]

    def imds(self) -> None:
        imds = self.add("imds", kind="imds", hop_limit=self.pick(HOP_LIMITS),
                        http_tokens=self.pick(TOKENS),
                        instance=f"i-{self.rng.getrandbits(68):017x}")
        self.imds_name = imds

    def instance(self, **fields: Any) -> str:
        host = self.add("host", **fields)
        self.link(self.imds_name, host)
        return host

    def role(self, attacker_share: float) -> str:
        return ATTACKER if self.rng.random() < attacker_share else WORKLOAD


def _docker(unit: _Unit, count: int) -> None:
    host = unit.instance(kind="host", forwarding=True, masquerade=True, role=WORKLOAD)
    bridge = unit.add("docker0", kind="bridge")
    unit.link(host, bridge)
    unit.add("agent", kind="container", runs_on=host, role=WORKLOAD)
    for i in range(count - 1):
        app = unit.add(f"c{i:03d}", kind="container", role=WORKLOAD)
        unit.link(bridge, app)


def _agents(unit: _Unit, count: int) -> None:
    host = unit.instance(kind="host", role=WORKLOAD)
    for i in range(count):
        unit.add(f"agent{i:03d}", kind="container", runs_on=host, role=WORKLOAD)


def _dind(unit: _Unit, count: int) -> None:
    host = unit.instance(kind="host", forwarding=True, masquerade=True, role=WORKLOAD)
    bridge = unit.add("docker0", kind="bridge")
    dind = unit.add("dind", kind="host", forwarding=True, masquerade=True)
    inner = unit.add("inner0", kind="bridge")
    unit.link(host, bridge)
    unit.link(bridge, dind)
    unit.link(dind, inner)
    for i in range(count):
        job = unit.add(f"job{i:03d}", kind="container", role=WORKLOAD)
        unit.link(inner, job)


def _k8s(unit: _Unit, count: int) -> None:
    host = unit.instance(kind="host", forwarding=True, role=WORKLOAD)
    unit.add("aws-node", kind="container", runs_on=host, role=WORKLOAD)
    for i in range(count - 1):
        # Some pods run untrusted code: they must get nothing (eks-untrusted-pod).
        pod = unit.add(f"pod{i:03d}", kind="container", role=unit.role(0.2))
        unit.link(host, pod)


def _nat(unit: _Unit, count: int) -> None:
    nat = unit.add("host", kind="nat")
    unit.link(unit.imds_name, nat)
    for i in range(count):
        # A private client is another tenant's host: it must not get this instance's token.
        client = unit.add(f"client{i:03d}", kind="client",
                          **({"role": ATTACKER} if unit.rng.random() < 0.5 else {}))
        unit.link(nat, client)


def _proxy(unit: _Unit, count: int) -> None:
    host = unit.instance(kind="host", role=WORKLOAD)
    adds_xff = unit.rng.random() < 0.6
    unit.add("proxy", kind="proxy", runs_on=host, adds_xff=adds_xff, forwards_headers=True)
    for i in range(count - 1):
        unit.add(f"worker{i:03d}", kind="container", runs_on=host, role=WORKLOAD)
    attacker = unit.add("internet", kind="client", role=ATTACKER)
    unit.link(host, attacker)


UNITS: dict[str, Callable[[_Unit, int], None]] = {
    "docker": _docker, "agents": _agents, "dind": _dind, "k8s": _k8s, "nat": _nat,
    "proxy": _proxy,
}


def compact_fleet(instances: int, containers: int) -> dict[str, Any]:
    """The same kinds of instance as `fleet`, written compactly: one unit per
    shape (kind, hop limit, http_tokens, and X-Forwarded-For for proxies), its
    `count` the instances of that shape and its containers `replicas`.

    Every shape is present once there are as many instances as shapes, so a
    fleet of 1,000 nodes and one of 1,000,000 differ only in their counts.
    There is nothing random to seed: counts are apportioned by weight.
    """
    if instances < 1 or containers < 1:
        raise ValueError("a fleet has at least one instance with one container")
    shapes = [(kind, hop_limit, tokens, xff, weight * hop_weight * token_weight * xff_weight)
              for kind, weight in UNIT_WEIGHTS.items()
              for hop_limit, hop_weight in HOP_LIMITS
              for tokens, token_weight in TOKENS
              for xff, xff_weight in (((True, 6), (False, 4)) if kind == "proxy" else
                                      ((None, 10),))]
    counts = _apportion(instances, [shape[-1] for shape in shapes])
    units = {}
    for (kind, hop_limit, tokens, xff, _), count in zip(shapes, counts, strict=True):
        if count:
            name = f"{kind}-h{hop_limit}-{tokens}" + ("" if xff is None else
                                                      "-xff" if xff else "-no-xff")
            unit = COMPACT_UNITS[kind](containers, xff)
            imds = {"kind": "imds", "hop_limit": hop_limit, "http_tokens": tokens}
            units[name] = {"count": count, "nodes": {"imds": imds, **unit["nodes"]},
                           "links": unit["links"]}
    return {
        "name": f"compact-fleet-{instances}x{containers}",
        "description": (f"A generated compact fleet (hopsim generate fleet --compact "
                        f"--instances {instances} --containers {containers}): "
                        f"{instances} instances in {len(units)} units, one per shape."),
        "imds": {"hop_limit": 2, "http_tokens": "required", "http_endpoint": "enabled",
                 "ipv6": False},
        "units": units,
    }


def _apportion(total: int, weights: list[int]) -> list[int]:
    """`total` split in proportion to `weights` (largest remainders), at least
    one each while there are enough."""
    floor = 1 if total >= len(weights) else 0
    rest = total - floor * len(weights)
    shares = [rest * w / sum(weights) for w in weights]
    counts = [floor + int(share) for share in shares]
    by_remainder = sorted(range(len(weights)), key=lambda i: (int(shares[i]) - shares[i], i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _with_replicas(count: int, **fields: Any) -> dict[str, Any]:
    return {**fields, "replicas": count} if count > 1 else fields


def _compact_docker(containers: int, _: bool | None) -> dict[str, Any]:
    return {"nodes": {"host": {"kind": "host", "forwarding": True, "masquerade": True,
                               "role": WORKLOAD},
                      "docker0": {"kind": "bridge"},
                      "agent": {"kind": "container", "runs_on": "host", "role": WORKLOAD},
                      "app": _with_replicas(max(1, containers - 1), kind="container",
                                            role=WORKLOAD)},
            "links": [["imds", "host"], ["host", "docker0"], ["docker0", "app"]]}


def _compact_agents(containers: int, _: bool | None) -> dict[str, Any]:
    return {"nodes": {"host": {"kind": "host", "role": WORKLOAD},
                      "agent": _with_replicas(containers, kind="container", runs_on="host",
                                              role=WORKLOAD)},
            "links": [["imds", "host"]]}


def _compact_dind(containers: int, _: bool | None) -> dict[str, Any]:
    return {"nodes": {"host": {"kind": "host", "forwarding": True, "masquerade": True,
                               "role": WORKLOAD},
                      "docker0": {"kind": "bridge"},
                      "dind": {"kind": "host", "forwarding": True, "masquerade": True},
                      "inner0": {"kind": "bridge"},
                      "job": _with_replicas(containers, kind="container", role=WORKLOAD)},
            "links": [["imds", "host"], ["host", "docker0"], ["docker0", "dind"],
                      ["dind", "inner0"], ["inner0", "job"]]}


def _compact_k8s(containers: int, _: bool | None) -> dict[str, Any]:
    pods = max(1, containers - 1)
    untrusted = round(pods * 0.2)
    nodes = {"host": {"kind": "host", "forwarding": True, "role": WORKLOAD},
             "aws-node": {"kind": "container", "runs_on": "host", "role": WORKLOAD},
             "pod": _with_replicas(pods - untrusted, kind="container", role=WORKLOAD)}
    links = [["imds", "host"], ["host", "pod"]]
    if untrusted:
        nodes["untrusted-pod"] = _with_replicas(untrusted, kind="container", role=ATTACKER)
        links.append(["host", "untrusted-pod"])
    return {"nodes": nodes, "links": links}


def _compact_nat(containers: int, _: bool | None) -> dict[str, Any]:
    tenants = containers // 2
    nodes = {"host": {"kind": "nat"},
             "client": _with_replicas(containers - tenants, kind="client")}
    links = [["imds", "host"], ["host", "client"]]
    if tenants:
        nodes["tenant"] = _with_replicas(tenants, kind="client", role=ATTACKER)
        links.append(["host", "tenant"])
    return {"nodes": nodes, "links": links}


def _compact_proxy(containers: int, xff: bool | None) -> dict[str, Any]:
    nodes = {"host": {"kind": "host", "role": WORKLOAD},
             "proxy": {"kind": "proxy", "runs_on": "host", "adds_xff": bool(xff),
                       "forwards_headers": True},
             "internet": {"kind": "client", "role": ATTACKER}}
    if containers > 1:
        nodes["worker"] = _with_replicas(containers - 1, kind="container", runs_on="host",
                                         role=WORKLOAD)
    return {"nodes": nodes, "links": [["imds", "host"], ["host", "internet"]]}


COMPACT_UNITS: dict[str, Callable[[int, bool | None], dict[str, Any]]] = {
    "docker": _compact_docker, "agents": _compact_agents, "dind": _compact_dind,
    "k8s": _compact_k8s, "nat": _compact_nat, "proxy": _compact_proxy,
}


def copies(document: dict[str, Any]) -> int:
    """The nodes a document stands for, each replica and unit copy counted."""
    def count(nodes: dict[str, Any]) -> int:
        return sum(node.get("replicas", 1) for node in nodes.values())

    return count(document.get("nodes", {})) + sum(
        unit["count"] * count(unit["nodes"]) for unit in document.get("units", {}).values())


def dumps(document: dict[str, Any], fmt: str = "yaml") -> str:
    """A document as the text of a topology file: "yaml" (one line per node
    and per link) or "json"."""
    if fmt == "json":
        return json.dumps(document, indent=1) + "\n"
    head = {k: v for k, v in document.items() if k not in ("nodes", "links", "units")}
    text = yaml.safe_dump(head, sort_keys=False, width=100)
    if "units" in document:  # compact: a few lines per unit
        lines = [text.rstrip("\n"), "units:"]
        for name, unit in document["units"].items():
            lines += [f"  {name}:", f"    count: {unit['count']}", "    nodes:"]
            lines += [f"      {node}: {_flow(fields)}" for node, fields in unit["nodes"].items()]
            lines.append("    links: [" + ", ".join(f"[{a}, {b}]" for a, b in unit["links"]) + "]")
        return "\n".join(lines) + "\n"
    lines = [text.rstrip("\n"), "nodes:"]
    lines += [f"  {name}: {_flow(fields)}" for name, fields in document["nodes"].items()]
    lines.append("links:")
    lines += [f"  - [{a}, {b}]" for a, b in document["links"]]
    return "\n".join(lines) + "\n"


def _flow(fields: dict[str, Any]) -> str:
    def show(value: Any) -> str:
        return "true" if value is True else "false" if value is False else str(value)

    return "{" + ", ".join(f"{key}: {show(value)}" for key, value in fields.items()) + "}"

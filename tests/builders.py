"""Shared test helpers: build small topologies inline, play them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml

from hopsim import engine
from hopsim.loader import parse
from hopsim.topology import Topology

ROOT = Path(__file__).resolve().parent.parent
TOPOLOGIES = ROOT / "topologies"

# A valid topology: one container behind a forwarding instance and a bridge.
# The bad files of the error tests are this text with one edit.
BASE = """\
name: demo
description: a container on a bridge behind a forwarding instance
imds:
  hop_limit: 2
  http_tokens: required
nodes:
  imds: {kind: imds}
  instance: {kind: host, forwarding: true}
  docker0: {kind: bridge}
  app: {kind: container, role: workload}
links:
  - [imds, instance]
  - [instance, docker0]
  - [docker0, app]
expect:
  1: {app: none}
  2: {app: token}
"""


def count_walks(monkeypatch) -> list[str]:
    """The principals analysis walks from now on (the profiles' calls to
    play), in order."""
    from hopsim import profiles

    calls: list[str] = []
    real = profiles.play

    def counting(*args, **kwargs):
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(profiles, "play", counting)
    return calls


def make(nodes: dict, links: list, *, hop_limit: int = 1, http_tokens: str = "required",
         ipv6: bool = False, http_endpoint: str = "enabled", expect: dict | None = None,
         name: str = "t") -> Topology:
    """A topology from Python values, through the real loader."""
    doc = {
        "name": name,
        "description": "test topology",
        "imds": {"hop_limit": hop_limit, "http_tokens": http_tokens,
                 "http_endpoint": http_endpoint, "ipv6": ipv6},
        "nodes": nodes,
        "links": links,
    }
    if expect:
        doc["expect"] = expect
    return parse(yaml.safe_dump(doc, sort_keys=False), f"{name}.yaml")


def play(topology: Topology, principal: str, **kwargs) -> engine.Exchange:
    return engine.play(topology, principal, record=True, **kwargs)


def without_principals(nodes: dict, links: list) -> Topology:
    """A topology with no principal, built in code: the loader refuses one
    (issue 15: it would check nothing and say "ok"), but the Python API takes
    any Topology, so renderers must still cope. Loaded with one host that is
    then taken out."""
    loaded = make({**nodes, "asker": {"kind": "host"}},
                  [*links, [_attachable(nodes), "asker"]])
    return replace(loaded, nodes={n: v for n, v in loaded.nodes.items() if n != "asker"},
                   links=tuple(link for link in loaded.links if "asker" not in link))


def _attachable(nodes: dict) -> str:
    """A node a host may be linked to (any but the imds node)."""
    return next(name for name, node in nodes.items() if node["kind"] != "imds")

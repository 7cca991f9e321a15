"""Shared test helpers: build small topologies inline, play them."""

from __future__ import annotations

from pathlib import Path

import yaml

from hopsim import engine
from hopsim.topology import Topology, parse

ROOT = Path(__file__).resolve().parent.parent
TOPOLOGIES = ROOT / "topologies"


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

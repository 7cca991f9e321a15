"""Units: a part of a topology written once and counted (a fleet of identical
instances), merged into its nodes and links as UNIT/NODE with their own lines."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from hopsim.filters import IMDS
from hopsim.topology.checker import Checker
from hopsim.topology.formats import RESERVED, RESERVED_CHARS, UNIT_FIELDS, FieldTable
from hopsim.topology.model import Problem
from hopsim.topology.reader import dotted, show


class Units:
    """A topology's units merged into its nodes and links, as UNIT/NODE.

    A unit is written once and counted: its nodes stand for `count` copies
    each (Node.replicas), so a fleet of 2,000 identical instances costs what
    one does. The merged names get the lines of what was written, and
    problems are reported at the unit's own keys.
    """

    def __init__(self, check: Checker, raw: Mapping[Any, Any], lines: dict[str, int],
                 columns: dict[str, int], first_link: int):
        self.nodes: dict[str, Any] = {}
        self.links: list[Any] = []
        self.counts: dict[str, int] = {}
        self.units: dict[str, int] = {}
        self.keys: dict[str, str] = {}  # merged key path -> the one written
        known = FieldTable(UNIT_FIELDS)
        for unit, body in raw.items():
            path = ("units", unit)
            if not isinstance(unit, str) or not unit or not RESERVED_CHARS.isdisjoint(unit):
                check.add(path, f"a unit name is a string without {' or '.join(RESERVED)}, "
                          f"got {show(unit)}")
                continue
            if not isinstance(body, dict):
                check.add(path, f"expected a mapping with keys count, nodes, links, got "
                          f"{show(body)}")
                continue
            fields = check.fields(body, path, known, "a unit")
            count = fields.get("count", 1)
            for name, node in fields.get("nodes", {}).items():
                if not isinstance(name, str) or not name or not RESERVED_CHARS.isdisjoint(name):
                    check.add(path + ("nodes", name), "a node name is a string without "
                              f"{' or '.join(RESERVED)}, got {show(name)}")
                    continue
                self.units[unit] = count
                merged = f"{unit}/{name}"
                self.nodes[merged] = self._renamed(unit, node)
                self.counts[merged] = count
                self.keys[dotted(("nodes", merged))] = dotted(path + ("nodes", name))
            for i, link in enumerate(fields.get("links", [])):
                index = first_link + len(self.links)
                if isinstance(link, list) and all(isinstance(end, str) for end in link):
                    link = [f"{unit}/{end}" for end in link]
                self.links.append(link)
                self.keys[dotted(("links", index))] = dotted(path + ("links", i))
        merged_of = {written: merged for merged, written in self.keys.items()}
        for table in (lines, columns):  # the merged keys get the lines of what was written
            for key, value in list(table.items()):
                if key.startswith("units."):
                    parts = key.split(".")
                    merged = merged_of.get(".".join(parts[:4]))
                    if merged is not None:
                        table[".".join([merged, *parts[4:]])] = value

    @staticmethod
    def _renamed(unit: str, node: Any) -> Any:
        """A unit's node, with the names it refers to made UNIT/NAME."""
        if not isinstance(node, dict):
            return node
        node = dict(node)
        if isinstance(node.get("runs_on"), str):
            node["runs_on"] = f"{unit}/{node['runs_on']}"
        if isinstance(node.get("via"), list):
            node["via"] = [f"{unit}/{hop}" if isinstance(hop, str) else hop
                           for hop in node["via"]]
        if isinstance(node.get("filters"), list):
            node["filters"] = [
                {k: f"{unit}/{v}" if k in ("from", "to") and isinstance(v, str) and v != IMDS
                 else v for k, v in rule.items()} if isinstance(rule, dict) else rule
                for rule in node["filters"]]
        return node

    def located(self, problems: list[Problem]) -> list[Problem]:
        """Problems of merged nodes and links, at the keys the file has."""
        if not self.keys:
            return problems
        out = []
        for problem in problems:
            parts = problem.key.split(".")
            for i in range(len(parts), 1, -1):
                written = self.keys.get(".".join(parts[:i]))
                if written is not None:
                    problem = replace(problem, key=".".join([written, *parts[i:]]))
                    break
            out.append(problem)
        return out

"""Plain values against the format's tables, each problem at its file, line and
key: the Checker, and the checks of single nodes and of expectations."""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any

from hopsim.imds import MAX_HOP_LIMIT, MIN_HOP_LIMIT
from hopsim.kinds import HTTP_METHODS, KINDS
from hopsim.products import PRODUCTS, STACKS, mode_problem, refusal_directive
from hopsim.topology.formats import OUTCOMES, PRINCIPAL_KEYS, Field, FieldTable
from hopsim.topology.model import Problem
from hopsim.topology.reader import dotted, show


def closest(word: Any, choices: Iterable[str]) -> str:
    """' (did you mean ...?)' with the choice nearest `word`, or "" if none is near."""
    if not isinstance(word, str):
        return ""
    match = difflib.get_close_matches(word, [c for c in choices if isinstance(c, str)], n=1,
                                      cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _type_name(t: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", bool: "true or false", list: "a list",
             dict: "a mapping"}
    types = t if isinstance(t, tuple) else (t,)
    return " or ".join(names[x] for x in types)


def _is(value: Any, t: type | tuple[type, ...]) -> bool:
    """isinstance, except that true and false are not integers here."""
    if value.__class__ is bool:
        return t is bool or (isinstance(t, tuple) and bool in t)
    return isinstance(value, t)


class Checker:
    """Collects the problems of one document, each at its line."""

    def __init__(self, file: str, lines: Mapping[str, int]):
        self.file, self.lines = file, lines
        self.problems: list[Problem] = []

    def line(self, path: tuple[Any, ...]) -> int | None:
        path = tuple(path)
        while path:
            if dotted(path) in self.lines:
                return self.lines[dotted(path)]
            path = path[:-1]
        return self.lines.get("")

    def add(self, path: tuple[Any, ...], message: str) -> None:
        self.problems.append(Problem(self.file, self.line(path), dotted(path), message))

    def fields(self, mapping: Mapping[Any, Any], path: tuple[Any, ...],
               known: FieldTable, what: str) -> dict[str, Any]:
        """Check `mapping` against `known` fields; return the valid values.
        (A fleet has 100,000s of nodes: paths are built only for problems.)"""
        valid: dict[str, Any] = {}
        for key, value in mapping.items():
            spec = known.get(key) if key.__class__ is str else None
            if spec is None:
                self.add(path + (key,), f"unknown key {show(key)} for {what}"
                         f"{closest(key, known)}; expected one of {', '.join(known)}")
                continue
            if (value.__class__ is spec.type and spec.bounds is None
                    and (spec.choices is None or value in spec.choices)):
                valid[key] = value  # what _wrong accepts, without the call: the usual case
                continue
            problem = _wrong(value, spec)
            if problem is None:
                valid[key] = value
            else:
                self.add(path + (key,), problem)
        for name in known.required:
            if name not in mapping:
                self.add(path, f"missing required key {name!r} for {what}")
        return valid

    def value(self, value: Any, path: tuple[Any, ...], spec: Field) -> bool:
        problem = _wrong(value, spec)
        if problem is not None:
            self.add(path, problem)
        return problem is None


def _wrong(value: Any, spec: Field) -> str | None:
    """What is wrong with `value` for `spec`, or None."""
    if not _is(value, spec.type):
        return f"expected {_type_name(spec.type)}, got {show(value)}"
    if spec.choices is not None and value not in spec.choices:
        choices = ", ".join(map(_written, spec.choices))
        return (f"expected one of {choices}, got {show(value)}"
                f"{closest(value, map(str, spec.choices))}")
    if spec.bounds is not None and not spec.bounds[0] <= value <= spec.bounds[1]:
        return f"expected {spec.bounds[0]}..{spec.bounds[1]}, got {show(value)}"
    return None


def _written(value: Any) -> str:
    """A value as a file writes it (true, not True)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _check_methods(check: Checker, value: Any, path: tuple[Any, ...]) -> tuple[str, ...] | None:
    if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
        check.add(path, f"expected a list of HTTP methods, got {show(value)}")
        return None
    for i, method in enumerate(value):
        if method not in HTTP_METHODS:
            check.add(path + (i,), f"unknown HTTP method {show(method)}"
                      f"{closest(method.upper(), HTTP_METHODS)}; expected one of "
                      f"{', '.join(HTTP_METHODS)}")
            return None
    return tuple(value)


def check_node(check: Checker, name: str, raw: dict[str, Any],
               nodes: Mapping[str, dict[str, Any]], names: set[str]) -> None:
    path = ("nodes", name)
    spec = KINDS[raw["kind"]]
    if not spec.principal:
        for key in PRINCIPAL_KEYS:
            if key in raw:
                check.add(path + (key,), f"only principals (host, container, client) take "
                          f"{show(key)}; {show(name)} is a {spec.name}")
                raw.pop(key)
    _check_network(check, name, raw, nodes)
    if "runs_on" in raw:
        host = raw["runs_on"]
        # A user-space stack or a relay may run in a container's stack too
        # (socat in a bridged container pays that container's routers).
        stacked = "network" in raw or spec.layer.ends_tcp
        if not spec.can_run_on_host or (spec.name == "host" and not stacked):
            what = ("a host runs on another node only as a VM with a user-mode network: "
                    "add network: qemu-user (or another stack)" if spec.name == "host" else
                    f"a {spec.name} cannot run on a host; runs_on is for containers and "
                    "relays (relay, proxy, waf, ssrf)")
            check.add(path + ("runs_on",), what)
        elif host not in names:
            check.add(path + ("runs_on",), f"no node {show(host)}{closest(host, names)}")
        elif host == name:
            check.add(path + ("runs_on",), "a node cannot run on itself")
        elif host in nodes and stacked and nodes[host]["kind"] not in ("host", "container"):
            check.add(path + ("runs_on",), f"runs_on must name a host or a container (the "
                      f"node whose stack it opens connections in), but {show(host)} is a "
                      f"{nodes[host]['kind']}")
        elif host in nodes and not stacked and nodes[host]["kind"] != "host":
            check.add(path + ("runs_on",), f"runs_on must name a host, but {show(host)} is a "
                      f"{nodes[host]['kind']}" + (" (a container on a user-space stack "
                      "names it with network:)" if nodes[host]["kind"] == "container" else ""))
    for i, hop in enumerate(raw.get("via", [])):
        if not isinstance(hop, str) or hop not in names:
            check.add(path + ("via", i), f"no node {show(hop)}{closest(hop, names)}")
        elif hop == name:
            check.add(path + ("via", i), "a node cannot be its own waypoint")
        elif hop in nodes and not _can_be_waypoint(hop, nodes):
            check.add(path + ("via", i), f"{show(hop)} ({nodes[hop]['kind']}) is not a "
                      "relay; via names the relays (relay, proxy, waf, ssrf, or a host "
                      "carrying one) a principal addresses; routers are chosen by the routing "
                      "tables (write gateway: or routes: to steer them)")
    if "methods" in raw:
        methods = _check_methods(check, raw["methods"], path + ("methods",))
        if methods is None:
            raw.pop("methods")
        else:
            raw["methods"] = methods
    if "product" in raw:
        problem = mode_problem(raw["product"], raw.get("mode"), spec.name)
        if problem:
            check.add(path + ("mode" if "mode" in raw else "product",), problem)
            raw.pop("product")
    elif "mode" in raw:
        check.add(path + ("mode",), "mode goes with product (e.g. product: apache)")
    if raw.get("block_imds") and raw.get("product") and spec.layer.ends_tcp:
        setup = PRODUCTS[raw["product"]].setup(raw.get("mode"), spec.name)
        if refusal_directive(raw["product"], raw.get("mode"), spec.name) is None:
            # A false ok is the worst bug: a refusal the product cannot be told to make.
            ways = "; ".join(d.text for d in setup.directives) or "remove it"
            check.add(path + ("block_imds",), f"{raw['product']} has no rule that refuses a "
                      f"destination, so it cannot be told to refuse IMDS: {ways}; or an "
                      "owner-matched output rule on its host (filters: [{chain: output, "
                      f"owner: {name}, to: imds, action: drop}}])")
            raw.pop("block_imds")
    if raw["kind"] == "host" and raw.get("masquerade") and not raw.get("forwarding"):
        check.add(path + ("masquerade",), "masquerade needs forwarding: true")
    if raw["kind"] == "nat" and raw.get("masquerade") is False:
        check.add(path + ("masquerade",), "a nat always masquerades; list the neighbours it "
                  "masquerades towards, or make it a router")
    if isinstance(raw.get("masquerade"), list):
        _check_names(check, raw["masquerade"], path + ("masquerade",), names)
    if ("gateway" in raw or "routes" in raw) and "runs_on" in raw:
        key = "gateway" if "gateway" in raw else "routes"
        check.add(path + (key,), f"{show(name)} has no routing table of its own: it shares "
                  f"{show(raw['runs_on'])}'s; write the route there")
        raw.pop("gateway", None)
        raw.pop("routes", None)
    if "gateway" in raw and raw["gateway"] not in names:
        check.add(path + ("gateway",), f"no node {show(raw['gateway'])}"
                  f"{closest(raw['gateway'], names)}")
        raw.pop("gateway")
    for destination, via in list(raw.get("routes", {}).items()):
        here = path + ("routes", destination)
        if not isinstance(destination, str) or (destination not in names
                                                and destination != "imds"):
            check.add(here, f"no node {show(destination)}{closest(destination, names)}; a "
                      "destination is a node or imds")
            raw["routes"].pop(destination)
        elif not isinstance(via, str) or via not in names:
            check.add(here, f"no node {show(via)}{closest(via, names)} to send it to")
            raw["routes"].pop(destination)

    for key, parse in (("address", ipaddress.IPv4Address), ("address6", ipaddress.IPv6Address)):
        if key in raw:
            try:
                parse(raw[key])
            except ValueError:
                check.add(path + (key,), f"expected an IPv{4 if key == 'address' else 6} "
                          f"address, got {show(raw[key])}")
                raw.pop(key)


def _check_network(check: Checker, name: str, raw: dict[str, Any],
                   nodes: Mapping[str, dict[str, Any]]) -> None:
    """`network:` names a stack this kind may use and needs runs_on; `version:`
    goes with it. (A false ok is the worst bug: a stack with no node to open
    its connections would leave the container unrouted.)"""
    path = ("nodes", name)
    network = raw.get("network")
    if network is None:
        if "version" in raw:
            check.add(path + ("version",), "version goes with network (e.g. network: "
                      "gvisor-tap-vsock, version: 3.0.0)")
            raw.pop("version")
        return
    stack = STACKS[network]
    if raw["kind"] not in stack.kinds:
        check.add(path + ("network",), f"{network} is the network of a "
                  f"{' or a '.join(stack.kinds)}, not of a {raw['kind']}")
        raw.pop("network")
        return
    if "runs_on" not in raw:
        check.add(path + ("network",), f"a {raw['kind']} on {network} has no links: its stack "
                  "opens its connections in another node's stack; name it with runs_on: "
                  "NODE (the instance, or the container the rootless user runs in)")
    version = raw.get("version")
    if version is not None and not _VERSION.fullmatch(version):
        check.add(path + ("version",), f"expected a version such as 3.0.1, got "
                  f"{show(version)}")
        raw.pop("version")
    if raw.get("runs_on") == name:
        return  # said once, below: a node cannot run on itself
    chain = [name]  # a ring of runs_on would leave no node with links
    while (host := nodes.get(chain[-1], {}).get("runs_on")) and host in nodes:
        if host in chain:
            check.add(path + ("runs_on",), "runs_on goes round in a circle: "
                      + " -> ".join([*chain, host]))
            raw.pop("runs_on", None)
            break
        chain.append(host)


_VERSION = re.compile(r"\d+(\.\d+)*([-+~][0-9A-Za-z.]+)?")


def _can_be_waypoint(name: str, nodes: Mapping[str, dict[str, Any]]) -> bool:
    """A relay (L4 or L7), or a host that carries one."""
    raw = nodes[name]
    if KINDS[raw["kind"]].layer.ends_tcp:
        return True
    return raw["kind"] == "host" and any(
        n.get("runs_on") == name and KINDS[n["kind"]].relay for n in nodes.values())


def check_meaning(check: Checker, nodes: Mapping[str, dict[str, Any]]) -> None:
    """A topology with no imds node, or no principal to ask it, would check
    nothing and say "ok" (issue 15): an error instead, as a false "ok" is the
    worst result a security check can give."""
    if not nodes:
        return
    if not any(raw["kind"] == "imds" for raw in nodes.values()):
        check.add(("nodes",), "no imds node: nothing answers the token request; add one, "
                  "such as `imds: {kind: imds}`, linked to the instance")
    if not any(KINDS[raw["kind"]].principal for raw in nodes.values()):
        check.add(("nodes",), "no principal: no host, container or client asks for the "
                  "token, so there is nothing to check")


def _check_names(check: Checker, value: list[Any], path: tuple[Any, ...],
                 names: set[str]) -> None:
    for i, item in enumerate(value):
        if not isinstance(item, str) or item not in names:
            check.add(path + (i,), f"no node {show(item)}{closest(item, names)}")


def check_interceptors(check: Checker, nodes: Mapping[str, dict[str, Any]],
                       among: Iterable[str] | None = None) -> None:
    """An interceptor is a relay on a forwarding host, one per host, and one
    hopsim runs itself (a product listens where its own configuration says).
    `among`: the nodes that may intercept (default: every node), in the
    nodes' order."""
    taken: dict[str, str] = {}
    for name in nodes if among is None else among:
        raw = nodes[name]
        if not raw.get("intercepts"):
            continue
        path = ("nodes", name, "intercepts")
        host = raw.get("runs_on")
        if host is None or host not in nodes:
            check.add(path, "an interceptor runs on the host whose DNAT sends it the "
                      "metadata traffic: give it runs_on: HOST")
        elif not nodes[host].get("forwarding"):
            check.add(path, f"{show(host)} does not forward: the DNAT catches what the host "
                      "routes towards IMDS, and it routes nothing (forwarding: true)")
        elif host in taken:
            check.add(path, f"{show(host)} already DNATs to {show(taken[host])}: one "
                      "interceptor per host")
        elif "product" in raw:
            check.add(path, "an interceptor is hopsim's own relay: drop product (its "
                      "defaults can be written as methods, adds_xff, forwards_headers)")
        else:
            taken[host] = name


def check_expect(check: Checker, raw: Any, nodes: Mapping[str, dict[str, Any]],
                 names: set[str]) -> dict[int, dict[str, str]]:
    expect: dict[int, dict[str, str]] = {}
    for hop_limit, entries in raw.items():
        path = ("expect", hop_limit)
        if not _is(hop_limit, int) or not MIN_HOP_LIMIT <= hop_limit <= MAX_HOP_LIMIT:
            check.add(path, f"expected a hop limit {MIN_HOP_LIMIT}..{MAX_HOP_LIMIT}, "
                      f"got {show(hop_limit)}")
            continue
        if not isinstance(entries, dict):
            check.add(path, f"expected a mapping node -> outcome, got {show(entries)}")
            continue
        expect[hop_limit] = {}
        for node, outcome in entries.items():
            here = path + (node,)
            if node not in names:
                check.add(here, f"no node {show(node)}{closest(node, names)}")
            elif node in nodes and not KINDS[nodes[node]["kind"]].principal:
                check.add(here, f"{show(node)} is a {nodes[node]['kind']}, not a principal; "
                          "only hosts, containers and clients have outcomes")
            elif outcome not in OUTCOMES:
                check.add(here, f"unknown outcome {show(outcome)}{closest(outcome, OUTCOMES)}; "
                          f"expected one of {', '.join(OUTCOMES)}")
            else:
                expect[hop_limit][node] = outcome
    return expect

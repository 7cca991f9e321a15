"""Checks of what spans nodes, each problem at its line: links, the imds node's
peers, masquerade neighbours and packet filter rules (which name neighbours)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hopsim.filters import ACTIONS, CHAINS, IMDS, RULE_KEYS, Filter
from hopsim.kinds import INSTANCE_KINDS, KINDS
from hopsim.topology.checker import Checker, closest
from hopsim.topology.model import neighbours
from hopsim.topology.reader import show


def check_links(check: Checker, raw: Any, nodes: Mapping[str, dict[str, Any]],
                names: set[str]) -> list[tuple[str, str]]:
    links: list[tuple[str, str]] = []
    seen: dict[tuple[str, str], int] = {}
    # Found once, not per link: a fleet has 100,000s of links.
    hosted = {name for name, node in nodes.items() if node.get("runs_on")}
    replicated = {name for name, node in nodes.items() if node.get("replicas", 1) > 1}
    for i, link in enumerate(raw):
        if (link.__class__ is not list or len(link) != 2
                or link[0].__class__ is not str or link[1].__class__ is not str):
            check.add(("links", i),
                      f"expected a pair of node names such as [a, b], got {show(link)}")
            continue
        a, b = link
        suspect = (a not in names or b not in names or a == b or a in hosted or b in hosted
                   or (a in replicated and b in replicated))
        if suspect and not _bad_link(check, i, a, b, nodes, names):
            continue
        pair = (a, b) if a < b else (b, a)
        if pair in seen:
            check.add(("links", i), f"duplicate link [{a}, {b}] (first at links[{seen[pair]}])")
            continue
        seen[pair] = i
        links.append((a, b))
    return links


def _bad_link(check: Checker, i: int, a: str, b: str, nodes: Mapping[str, dict[str, Any]],
              names: set[str]) -> bool:
    """Say what is wrong with the link [a, b]; whether it still counts as a
    link for the checks that follow (it does when only an end is misplaced)."""
    path = ("links", i)
    bad = [end for end in (a, b) if end not in names]
    for end in bad:
        check.add(path, f"link to a missing node {show(end)}{closest(end, names)}")
    if bad:
        return False
    if a == b:
        check.add(path, f"self-link: {show(a)} is linked to itself")
        return False
    for end in (a, b):
        if end in nodes and nodes[end].get("runs_on"):
            check.add(path, f"{show(end)} runs on {show(nodes[end]['runs_on'])} and has no "
                      "links of its own")
    if all(end in nodes and nodes[end].get("replicas", 1) > 1 for end in (a, b)):
        check.add(path, f"both {show(a)} and {show(b)} have replicas: which copy links "
                  "to which is not said; give replicas to one end only")
        return False
    return True


def check_imds_links(check: Checker, nodes: Mapping[str, dict[str, Any]],
                     links: list[tuple[str, str]]) -> None:
    # One pass over the links: fleets have thousands of imds nodes.
    check_imds_peers(check, nodes, neighbours(
        links, [name for name, raw in nodes.items() if raw["kind"] == "imds"]))


def check_imds_peers(check: Checker, nodes: Mapping[str, dict[str, Any]],
                     peers_of: Mapping[str, list[str]]) -> None:
    """Each imds node's peers (its neighbours, in link order): its instance,
    and beside it only containers that own an ENI of it."""
    for name, peers in peers_of.items():
        path = ("nodes", name)
        # Beside its instance, an imds node may link to containers that own one
        # of the instance's ENIs (ECS awsvpc tasks): IMDS answers on every ENI,
        # with no host hop between (docs/mitigations.md).
        enis = [p for p in peers if p in nodes and nodes[p]["kind"] == "container"]
        hosts = [p for p in peers if p not in enis]
        if len(peers) > 1 and len(hosts) == 1:
            continue
        if len(peers) != 1:
            check.add(path, f"an imds node is linked to exactly one node, its instance, and "
                      f"beside it to containers that own an ENI of the instance; {show(name)} "
                      f"has {len(peers)} links" + (f", {len(hosts)} of them not containers"
                                                   if len(hosts) > 1 else ""))
        elif peers[0] in nodes and nodes[peers[0]]["kind"] not in INSTANCE_KINDS:
            check.add(path, f"{show(name)} is linked to {show(peers[0])}, a "
                      f"{nodes[peers[0]]['kind']}; its instance must be one of "
                      f"{', '.join(sorted(INSTANCE_KINDS))}")


def check_filters(check: Checker, nodes: Mapping[str, dict[str, Any]],
                  links: list[tuple[str, str]],
                  among: Mapping[str, dict[str, Any]] | None = None) -> None:
    """Each `filters:` rule, as Filter values in raw["filters"] (or dropped with
    a located problem): a rule hopsim cannot represent exactly is refused,
    never ignored (a false ok is the worst bug). `among`: the nodes that may
    write filters or block_imds (default: every node), in the nodes' order."""
    written = {name: raw for name, raw in (nodes if among is None else among).items()
               if "filters" in raw or "block_imds" in raw}
    if not written:
        return
    neighbours: dict[str, set[str]] = {}
    for a, b in links:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    for name, raw in written.items():
        path = ("nodes", name)
        if raw.get("runs_on"):
            # A container on a user-space stack has a namespace of its own, where
            # block_imds blackholes the metadata addresses; a relay's block_imds
            # is its own refusal (hopsim.kinds.RelayPolicy.refuses_imds).
            own = ("block_imds",) if "network" in raw or KINDS[raw["kind"]].relay else ()
            for key in ("filters", "block_imds"):
                if key in raw and key not in own:
                    check.add(path + (key,), f"{show(name)} shares {show(raw['runs_on'])}'s "
                              "stack and has no filters or routes of its own; write it on "
                              f"{show(raw['runs_on'])}")
                    raw.pop(key)
            continue
        if raw.get("block_imds") and any(d == IMDS for d in raw.get("routes", {})):
            check.add(path + ("block_imds",), "block_imds blackholes the metadata addresses; "
                      "a written route to imds contradicts it")
        rules: list[Filter] = []
        for i, rule in enumerate(raw.get("filters", ())):
            found = _filter(check, path + ("filters", i), rule, name, nodes,
                            neighbours.get(name, set()), i)
            if found is not None:
                rules.append(found)
        if "filters" in raw:
            raw["filters"] = tuple(rules)


def _filter(check: Checker, path: tuple[Any, ...], rule: Any, name: str,
            nodes: Mapping[str, dict[str, Any]], neighbours: set[str],
            index: int) -> Filter | None:
    if not isinstance(rule, dict):
        check.add(path, f"expected a rule such as {{chain: forward, to: imds, action: drop}}, "
                  f"got {show(rule)}")
        return None
    ok = True
    for key in rule:
        if key not in RULE_KEYS:
            check.add(path + (key,), f"unknown key {show(key)} for a filter rule"
                      f"{closest(key, RULE_KEYS)}; expected one of {', '.join(RULE_KEYS)}")
            ok = False
    for key, choices in (("chain", CHAINS), ("action", ACTIONS)):
        if key not in rule:
            check.add(path, f"missing required key {key!r} for a filter rule")
            ok = False
        elif rule[key] not in choices:
            check.add(path + (key,), f"expected one of {', '.join(choices)}, got "
                      f"{show(rule[key])}{closest(rule[key], choices)}")
            ok = False
    source, destination, owner = rule.get("from"), rule.get("to"), rule.get("owner")
    if "owner" in rule:
        ok = _owner(check, path + ("owner",), rule, name, nodes) and ok
    if "from" in rule:
        raw = nodes.get(source) if isinstance(source, str) else None
        if raw is None:
            check.add(path + ("from",), f"no node {show(source)}{closest(source, nodes)}")
            ok = False
        elif source in neighbours:
            if rule.get("chain") == "output":
                check.add(path + ("from",), f"the output chain sees packets {show(name)} "
                          "sends, which arrive on no link: from names a neighbour only on "
                          "input and forward")
                ok = False
        elif raw.get("runs_on"):
            check.add(path + ("from",), f"{show(source)} runs on {show(raw['runs_on'])} and "
                      "sends with its address: its packets differ from the host's only in "
                      f"the socket's owner; write owner: {source} on an output rule there")
            ok = False
        elif not KINDS[raw["kind"]].principal:
            check.add(path + ("from",), f"{show(source)} ({raw['kind']}) is not linked to "
                      f"{show(name)}: from names a neighbour (the link a packet arrives on) "
                      "or a principal (its source address)")
            ok = False
    if "to" in rule and destination != IMDS:
        raw = nodes.get(destination) if isinstance(destination, str) else None
        if raw is None:
            check.add(path + ("to",), f"no node {show(destination)}"
                      f"{closest(destination, [*nodes, IMDS])}; to names a node or imds")
            ok = False
        elif raw.get("runs_on") or raw["kind"] in ("bridge", "imds"):
            what = (f"runs on {show(raw['runs_on'])} and has its address" if raw.get("runs_on")
                    else "has no address of its own" if raw["kind"] == "bridge"
                    else "answers on the metadata addresses: write to: imds")
            check.add(path + ("to",), f"{show(destination)} {what}")
            ok = False
    if not ok:
        return None
    return Filter(rule["chain"], rule["action"], source, destination, index, owner)


def _owner(check: Checker, path: tuple[Any, ...], rule: dict[str, Any], name: str,
           nodes: Mapping[str, dict[str, Any]]) -> bool:
    """`owner:` names a node whose process opens sockets in `name`'s stack (a
    relay or a user-space stack whose runs_on is `name`), on an output rule:
    what nftables' `meta skuid` sees, and only there."""
    owner = rule["owner"]
    raw = nodes.get(owner) if isinstance(owner, str) else None
    if raw is None:
        check.add(path, f"no node {show(owner)}{closest(owner, nodes)}")
        return False
    if rule.get("chain") != "output":
        check.add(path, "owner matches the socket a process opens, which only the output "
                  "chain knows: write chain: output")
        return False
    if raw.get("runs_on") != name:
        where = (f"runs on {show(raw['runs_on'])}" if raw.get("runs_on")
                 else "has a stack of its own")
        check.add(path, f"{show(owner)} {where}: owner names a node whose process opens "
                  f"its sockets in {show(name)}'s stack (a relay or a user-space network "
                  f"stack with runs_on: {name})")
        return False
    return True


def check_masquerade_links(check: Checker, nodes: Mapping[str, dict[str, Any]],
                           links: list[tuple[str, str]],
                           among: Iterable[str] | None = None) -> None:
    """A masquerade list names neighbours. `among`: the nodes that may write
    one (default: every node), in the nodes' order."""
    listed = {name: nodes[name]["masquerade"] for name in (nodes if among is None else among)
              if isinstance(nodes[name].get("masquerade"), list)}
    if not listed:
        return
    linked = {(a, b) for a, b in links} | {(b, a) for a, b in links}
    for name, towards in listed.items():
        for i, neighbour in enumerate(towards):
            if neighbour in nodes and (name, neighbour) not in linked:
                check.add(("nodes", name, "masquerade", i), f"{show(neighbour)} is not linked "
                          f"to {show(name)}; masquerade lists the neighbours whose links it "
                          "masquerades out of")

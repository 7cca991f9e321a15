"""The teaching show: one principal's exchange at hop limit 1, then 2, as steps.

A demo is a list of `Step` values: what to say and show at each beat. The
steps are made from the packets the engine walked and from the outcomes, so
every bundled topology can be played; a player (report/player.py) shows them
one at a time. Nothing here prints or waits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path

from hopsim.analysis import Report, sweep
from hopsim.engine import TIMEOUT, Action, Exchange, Hop, play
from hopsim.explain import explain, story
from hopsim.imds import DEFAULT_TTL, MAX_HOP_LIMIT, MIN_HOP_LIMIT
from hopsim.kinds import HTTP_METHODS
from hopsim.loader import load, topology_files
from hopsim.outcome import Access, Cause, Outcome, Role
from hopsim.profiles import profile, profiles
from hopsim.report.wording import HOLDS, finding, plural
from hopsim.routing import Part, Route, Router, Station
from hopsim.topology import FACT_MARKER, Topology
from hopsim.untrusted import shown

DEFAULT_SCENARIO = "docker-bridge"
HOP_LIMITS = (1, 2)  # the show: the AWS default, then the Docker advice


class Beat(Enum):
    """What a step shows."""

    SCENE = "scene"  # the scenario, the principal and its route
    ACT = "act"  # a new hop limit
    REQUEST = "request"  # the token request, all its hops at once
    HOP = "hop"  # one hop of the answer, with the path so far
    FOLLOW_UP = "follow-up"  # the credentials GET, summed up
    OUTCOME = "outcome"  # what the principal holds at this hop limit, and why
    LESSON = "lesson"


@dataclass(frozen=True)
class Strip:
    """The answer's path from IMDS to the principal, and how far it has got."""

    stations: tuple[str, ...]  # from IMDS to the principal
    ttls: tuple[int | None, ...]  # TTL on each link crossed so far; None: not yet
    at: int  # the station the packet is at
    action: Action  # what happened to it there


@dataclass(frozen=True)
class Step:
    beat: Beat
    caption: str
    hops: tuple[Hop, ...] = ()  # the hops a REQUEST step lists
    strip: Strip | None = None
    action: Action | None = None  # for a HOP: what the node did
    hop_limit: int | None = None
    access: Access | None = None  # for an OUTCOME


@dataclass(frozen=True)
class Demo:
    topology: Topology
    principal: str
    steps: tuple[Step, ...]


# -- scenarios -------------------------------------------------------------------


def scenarios(folder: Path) -> dict[str, Path]:
    """The bundled topologies by name."""
    found = {}
    for file in topology_files([folder]):
        found[load(file).name] = file
    return dict(sorted(found.items()))


def lesson_of(topology: Topology) -> str:
    """What the topology teaches, in one line: its "It teaches ..." sentence."""
    text = shown(" ".join(topology.description.split()))
    match = re.search(r"\bIt teaches (.*?)(?:\.\s|\.$)", text)
    line = match.group(1) if match else text.split(". ")[0].rstrip(".")
    if len(line) > 70 and ":" in line:  # the claim, without its elaboration
        line = line.split(":")[0]
    line = FACT_MARKER.sub("", line)
    return ("teaches " + line) if match else line


@dataclass(frozen=True)
class Scenario:
    """One line of `hopsim demo --list`."""

    name: str
    principal: str
    role: str | None
    teaches: str


def listing(topology: Topology) -> Scenario:
    principal = choose_principal(topology)
    return Scenario(topology.name, principal, topology.nodes[principal].role,
                    lesson_of(topology))


def choose_principal(topology: Topology) -> str:
    """Who the show follows: a workload whose outcome the hop limit changes,
    else an attacker (one it changes first), else the first principal."""
    found = profiles(topology)

    def changes(name: str) -> bool:
        p = found[name]
        return p.at(MIN_HOP_LIMIT).access is not p.at(MAX_HOP_LIMIT).access

    ranked = sorted(
        topology.principals,
        key=lambda n: (
            0 if topology.nodes[n].role == Role.WORKLOAD and changes(n) else
            1 if topology.nodes[n].role == Role.ATTACKER and changes(n) else
            2 if topology.nodes[n].role == Role.ATTACKER else 3,
            topology.principals.index(n),
        ),
    )
    return ranked[0]


# -- the show ----------------------------------------------------------------------


def build(topology: Topology, principal: str | None = None,
          hop_limits: Sequence[int] = HOP_LIMITS) -> Demo:
    """The steps of the show: the scene, one act per hop limit, the lesson."""
    principal = principal or choose_principal(topology)
    router = Router(topology)
    route = router.route(principal)
    exchanges = {h: play(topology.with_imds(hop_limit=h), principal, record=True, router=router)
                 for h in hop_limits}
    steps = [_scene(topology, principal, route, exchanges[hop_limits[0]].outcome, hop_limits)]
    for h in hop_limits:
        steps += _act(topology.with_imds(hop_limit=h), route, exchanges[h], h)
    report = sweep(topology, hop_limits)
    # An unreachable principal's outcome names no hop limit (no imds was
    # reached): the lesson still says which hop limits were played.
    played = [exchanges[h].outcome if exchanges[h].outcome.hop_limit is not None
              else replace(exchanges[h].outcome, hop_limit=h) for h in hop_limits]
    steps.append(Step(Beat.LESSON, lesson(topology, principal, route, played, report)))
    return Demo(topology, principal, tuple(steps))


def _scene(topology: Topology, principal: str, route: Route, outcome: Outcome,
           hop_limits: Sequence[int]) -> Step:
    node = topology.nodes[principal]
    who = f"{principal} ({node.kind}" + (f", {node.role}" if node.role else "") + ")"
    where = f"route to IMDS: {route.describe()}" if route.stations else route.unreachable
    family = " over IPv6, where the hop limit field plays the TTL's part" if (
        outcome.family == 6) else ""
    teaches = lesson_of(topology)
    opening = f"{topology.name} {teaches}" if teaches.startswith("teaches") else (
        f"{topology.name}: {teaches}")
    caption = (f"{opening}.\nWe follow {who}{family}; {where}. "
               f"We play its IMDSv2 exchange at hop limit "
               f"{', then '.join(str(h) for h in hop_limits)}.")
    return Step(Beat.SCENE, caption)


def _is_request(hop: Hop) -> bool:
    return hop.message.split(" ")[0] in HTTP_METHODS


def messages(hops: Iterable[Hop]) -> list[tuple[bool, list[Hop]]]:
    """Consecutive hops grouped into requests and answers (True: a request)."""
    groups: list[tuple[bool, list[Hop]]] = []
    for hop in hops:
        request = _is_request(hop)
        if groups and groups[-1][0] == request:
            groups[-1][1].append(hop)
        else:
            groups.append((request, [hop]))
    return groups


def _act(topology: Topology, route: Route, exchange: Exchange, hop_limit: int) -> list[Step]:
    o = exchange.outcome
    steps = [Step(Beat.ACT, f"IMDS sends the token response with IP TTL {hop_limit}, the hop "
                  f"limit; every other packet it sends leaves with TTL {DEFAULT_TTL}.",
                  hop_limit=hop_limit)]
    groups = messages(exchange.hops)
    if groups:
        put, answer = groups[0][1], groups[1][1] if len(groups) > 1 else []
        steps.append(_request_step(topology, o.node, put, hop_limit))
        steps += _answer_steps(topology, route, answer, hop_limit, o.family)
        if len(groups) > 2:
            steps.append(_follow_up(o, route, groups[2][1],
                                    groups[3][1] if len(groups) > 3 else [], hop_limit))
    steps.append(Step(Beat.OUTCOME, f"At hop limit {hop_limit} {o.node} holds: "
                      f"{o.access.value}. {story(topology, o)}", hop_limit=hop_limit,
                      access=o.access))
    return steps


def _request_step(topology: Topology, principal: str, hops: list[Hop], hop_limit: int) -> Step:
    message = hops[0].message
    refused = next((h for h in hops if h.action is Action.REFUSE), None)
    if refused:
        end = f"{refused.node} refuses it ({refused.detail})."
    elif hops[-1].action is Action.DELIVER:
        end = "It reaches IMDS: a request leaves with TTL 64, which no hop limit touches."
    else:
        end = f"It is lost at {hops[-1].node}."
    return Step(Beat.REQUEST, f"{principal} asks IMDS for a token: {message}. {end}",
                hops=tuple(hops), hop_limit=hop_limit)


def _answer_steps(topology: Topology, route: Route, hops: list[Hop], hop_limit: int,
                  family: int) -> list[Step]:
    """One step per hop of the answer to the PUT, the packet's path drawn (its
    own way back, which need not retrace the request)."""
    stations = route.way_back
    labels = tuple(_label(s) for s in stations)
    ttls: list[int | None] = [None] * (len(stations) - 1)
    at = 0
    steps = []
    i = 0
    while i < len(hops):
        hop = hops[i]
        if hop.action is not Action.TIMEOUT:
            at = _advance(stations, at, hop.node)
        if hop.ttl_in is not None and at > 0 and hop.action is not Action.SEND:
            ttls[at - 1] = hop.ttl_in
        caption = step_caption(topology, hop, stations[at].part)
        if hop.action is Action.DROP and i + 1 < len(hops) and hops[i + 1].action is Action.ICMP:
            i += 1
            icmp = hops[i]
            protocol = "ICMPv6" if family == 6 else "ICMP"
            caption += (f" It sends {protocol} {icmp.detail.replace(' -> ', ' back to ')}"
                        " instead.")
        strip = None if hop.action is Action.TIMEOUT else Strip(labels, tuple(ttls), at,
                                                                hop.action)
        steps.append(Step(Beat.HOP, caption, strip=strip, action=hop.action,
                          hop_limit=hop_limit))
        i += 1
    return steps


def _label(station: Station) -> str:
    if station.relay and station.relay != station.node:
        return f"{station.node}[{station.relay}]"
    return station.node


def _advance(stations: Sequence[Station], at: int, actor: str) -> int:
    """The index of the next station (from `at` on) where `actor` acts."""
    for i in range(at, len(stations)):
        if actor in (stations[i].actor, stations[i].node):
            return i
    return at


def step_caption(topology: Topology, hop: Hop, part: Part) -> str:
    """What one node did to the answer, in words; `part`: what the node is
    on this path (IMDS sending, a relay receiving ...)."""
    node, ttl_in, ttl_out = hop.node, hop.ttl_in, hop.ttl_out
    token = hop.message.endswith("(token)")
    what = "the token" if token else f"the {hop.message.split(' ')[0]} answer"
    if hop.action is Action.SEND and part is Part.IMDS:
        if token:
            return (f"IMDS answers {hop.message}: the packet leaves with TTL {ttl_out}, the "
                    "hop limit.")
        return f"IMDS answers {hop.message}, with TTL {ttl_out}: only the token is hop-limited."
    if hop.action is Action.SEND:
        kind = topology.nodes[node].kind
        if token:
            return (f"{node} ({kind}, L7) re-sends the token on its own connection, with a "
                    f"fresh TTL of {ttl_out}.")
        return f"{node} ({kind}, L7) answers {hop.message} itself, with TTL {ttl_out}."
    if hop.action is Action.BRIDGE:
        return f"{node} is a bridge (L2): it passes {what} on, TTL still {ttl_out}."
    if hop.action is Action.FORWARD:
        return f"{node} routes {what} (L3): TTL {ttl_in} -> {ttl_out}."
    if hop.action is Action.NAT:
        return f"{node} un-NATs and routes {what} (L3): TTL {ttl_in} -> {ttl_out}."
    if hop.action is Action.DROP:
        return (f"{node} must route {what}, but its TTL is {ttl_in}: a router never forwards "
                f"a packet with TTL 1. Dropped.")
    if hop.action is Action.DELIVER:
        if part is Part.RELAY:
            return f"{node} receives {what} with TTL {ttl_in}: it ends this connection."
        tail = ": local delivery accepts any TTL, even 1" if ttl_in == 1 else ""
        return f"{node} receives {what} with TTL {ttl_in}{tail}."
    if hop.action is Action.TIMEOUT:
        return f"{node} waits for an answer that never comes, and gives up after {TIMEOUT:g} s."
    return f"{node}: {hop.action.value} {hop.detail}".strip()


def _follow_up(o: Outcome, route: Route, request: list[Hop], answer: list[Hop],
               hop_limit: int) -> Step:
    """The credentials GET, in a sentence or two."""
    sent = next((h for h in answer if h.action is Action.SEND), None)
    got = answer[-1] if answer else None
    if o.access is Access.TOKEN:
        opening = f"With the token, {o.node} asks for its credentials: {request[0].message}."
    else:
        opening = (f"Without a token, {o.node} falls back to IMDSv1: {request[0].message}, "
                   "with no token.")
    if sent is None:
        return Step(Beat.FOLLOW_UP, f"{opening} No answer comes.", hop_limit=hop_limit)
    who = "IMDS" if sent.node == route.imds else sent.node
    arrived = got is not None and got.action is Action.DELIVER and got.node == o.node
    closing = "and it arrives" if arrived else "and it is lost on the way"
    return Step(Beat.FOLLOW_UP, f"{opening} {who} answers {sent.message} with TTL "
                f"{sent.ttl_out}, {closing}.", hop_limit=hop_limit)


# -- the lesson ------------------------------------------------------------------------


def _holds(o: Outcome) -> str:
    said = {"leak": " (a leak)", "starved": " (a starved workload)", None: ""}
    return HOLDS[o.access] + said[finding(o.role, o.access)]


def _names(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def lesson(topology: Topology, principal: str, route: Route, outcomes: Sequence[Outcome],
           report: Report) -> str:
    """One paragraph, from the outcomes: what changed, why, and what to set."""
    budget = profile(topology, principal)
    matters = budget.at(MIN_HOP_LIMIT).access is not budget.at(MAX_HOP_LIMIT).access
    first, last = outcomes[0], outcomes[-1]
    limits = [o.hop_limit for o in outcomes]
    parts = []
    if first.access is not last.access:
        parts.append(f"At hop limit {limits[0]} {principal} {_holds(first)}; at {limits[-1]} "
                     f"it {_holds(last)}.")
    elif first.dropped_at and last.dropped_at:
        parts.append(f"At hop limit {limits[0]} and at {limits[-1]} alike {principal} "
                     f"{_holds(last)}: at {limits[0]} the token dies at {first.dropped_at}, "
                     f"at {limits[-1]} at {last.dropped_at}.")
    elif matters:
        parts.append(f"At hop limit {limits[0]} and at {limits[-1]} alike {principal} "
                     f"{_holds(last)}.")
    else:
        parts.append(f"At hop limit {limits[0]} and at {limits[-1]} alike {principal} "
                     f"{_holds(last)}: the hop limit makes no difference to it.")
    routers = route.token_routers
    receiver = last.receiver
    hop_limited = first.cause is Cause.TTL or last.cause is Cause.TTL or (
        last.access is Access.TOKEN)
    if route.stations and hop_limited and receiver:
        bridges = [s.node for s in route.token_path if s.part is Part.BRIDGE]
        if routers:
            parts.append(f"The token response must cross {plural(len(routers), 'router')} "
                         f"({_names(routers)}) on its way to {receiver}, and each takes 1 "
                         "from its TTL; a router never forwards a packet whose TTL is 1, so "
                         f"the token needs hop limit {len(routers) + 1} or more to reach "
                         f"{receiver}.")
        else:
            parts.append(f"No router stands between IMDS and {receiver}, so the token "
                         "reaches it at any hop limit, 1 included: local delivery accepts "
                         "any TTL.")
        if bridges:
            verb = "is a bridge" if len(bridges) == 1 else "are bridges"
            parts.append(f"{_names(bridges)} {verb} and take{'s' if len(bridges) == 1 else ''}"
                         " nothing.")
        if receiver != principal:
            parts.append(f"But {receiver} is an L7 relay: it re-sends the token with a fresh "
                         f"TTL of 64, so the hop limit guards only the way from IMDS to "
                         f"{receiver}.")
    else:
        parts.append(_defence(topology, last))
    if last.access is Access.CREDENTIALS and first.access is Access.CREDENTIALS:
        parts.append("But IMDSv1 is on (http_tokens: optional): the GET without a token "
                     "returns the role's credentials, and only the token's answer is "
                     "hop-limited.")
    parts += _fix(topology, principal, outcomes, routers, receiver, matters)
    if report.recommended_hop_limit:
        parts.append(f"For the whole of {topology.name}, hopsim recommends hop limit "
                     f"{report.recommended_hop_limit}: the smallest at which every workload "
                     "holds a token and no attacker anything.")
    else:
        why = report.recommendation.removeprefix("no hop limit works: ")
        parts.append(f"For the whole of {topology.name}, hopsim finds no right hop limit; "
                     f"{why}.")
    return " ".join(parts)


def _defence(topology: Topology, o: Outcome) -> str:
    """The defence that works whatever the hop limit, when one does."""
    keeps = f"What keeps the token from {o.node} is"
    never = "the hop limit never comes into play"
    if o.cause is Cause.METHOD:
        return (f"{keeps} the PUT requirement: {o.by[0]} does not pass PUT, so no token "
                f"request reaches IMDS; {never}.")
    if o.cause is Cause.XFF:
        return (f"{keeps} the X-Forwarded-For rule: {_names(o.by)} adds the header, and IMDS "
                f"refuses a token PUT that carries it; {never}.")
    if o.cause is Cause.TTL_HEADER:
        return (f"{keeps} the token PUT's ttl header: {_names(o.by)} does not pass it on, "
                f"and IMDS answers 400; {never}.")
    return story(topology, o)


def _fix(topology: Topology, principal: str, outcomes: Sequence[Outcome],
         routers: Sequence[str], receiver: str | None, matters: bool) -> list[str]:
    """For the principal: the hop limits that serve it, or a checked change
    that does when no hop limit can (never one that loosens a control), or
    that no single change does. `matters`: some hop limit changes what the
    principal holds."""
    role = topology.nodes[principal].role
    hop_limit_matters = any(o.cause is Cause.TTL for o in outcomes) or (
        routers and receiver is not None)
    if role == Role.WORKLOAD and hop_limit_matters and routers:
        return []  # the hop limit it needs is said above
    if role == Role.ATTACKER and routers and matters and outcomes[0].access is Access.NONE:
        keeps = "hop limit 1" if len(routers) == 1 else f"a hop limit of {len(routers)} or less"
        return [f"So only {keeps} keeps {principal} out."]
    bad = [o for o in outcomes if o.bad]
    if not bad:
        return []
    worst = bad[-1]
    changed = topology.with_imds(hop_limit=worst.hop_limit)
    good = Access.NONE if role == Role.ATTACKER else Access.TOKEN
    account = explain(changed, principal)
    for change in account.fixes:
        if change.access is good and not change.option.startswith("--hop-limit"):
            return [f"What would fix it: {change.description}, tried with {change.option}."]
    return [account.no_fix] if account.no_fix else []

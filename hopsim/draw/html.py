"""The teaching page: one self-contained HTML file with the hop limit on a slider.

Everything the page shows is hopsim's own output, computed here and embedded:
for every setting it offers (each hop limit from 1 to the largest that still
changes an outcome, with http_tokens required and optional) the sweep's result
as `hopsim sweep --format json` writes it, the picture as `hopsim draw` draws
it, and each principal's answer to its token request as the engine recorded
it, hop by hop, for the play button. The JavaScript only shows them: it has no
rule of its own about TTLs, routes or verdicts.

No network: the CSS, the JavaScript and the SVG pictures are inline, and the
page's Content-Security-Policy allows nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from html import escape
from importlib import resources
from itertools import pairwise
from typing import Any

from hopsim import lesson as teaching
from hopsim.analysis import configured_hop_limit, sweep
from hopsim.draw import layout, scene, svg
from hopsim.draw.layout import Picture
from hopsim.engine import Action, Exchange, Hop, play
from hopsim.imds import DEFAULT_TTL, HTTP_TOKENS, MIN_HOP_LIMIT
from hopsim.profiles import profiles
from hopsim.report import json as json_report
from hopsim.routing import Part, Router
from hopsim.topology import Topology
from hopsim.untrusted import shown

Point = tuple[float, float]

# Where the animation draws a TTL tag beside a link that the answer crosses both ways.
TAG_OFFSET = 12
ICMP_OFFSET = 22  # the ICMP's way back, drawn beside the link the answer came in on
CROP_MARGIN = 16


def hop_limits(topology: Topology) -> tuple[int, ...]:
    """The slider's hop limits: 1 up to the largest that still changes an
    outcome (a token response that dies at the last of n routers lives at
    n + 1), at least 2 so that "nothing changes" can be seen, and at least
    the configured hop limits."""
    found = profiles(topology)
    changes = max((len(p.token_routers) + 1 for p in found.values() if p.dropped is not None),
                  default=MIN_HOP_LIMIT)
    top = max(changes, MIN_HOP_LIMIT + 1, *topology.hop_limits().values())
    return tuple(range(MIN_HOP_LIMIT, top + 1))


def _configured_tokens(topology: Topology) -> str:
    """The http_tokens every imds node has, or "required" when they differ."""
    found = {topology.nodes[n].imds.http_tokens for n in topology.imds_nodes}  # type: ignore[union-attr]
    return found.pop() if len(found) == 1 else "required"


def _key(hop_limit: int, http_tokens: str) -> str:
    return f"{hop_limit}/{http_tokens}"


def lesson(topology: Topology, principals: Sequence[str] | None = None) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready values, and its pictures
    (SVG text, one per setting, under "pictures")."""
    limits = hop_limits(topology)
    router = Router(topology)
    settings: dict[str, dict[str, Any]] = {}
    scenes: dict[str, scene.Scene] = {}
    played: dict[str, dict[str, Exchange]] = {}
    for http_tokens in HTTP_TOKENS:
        variant = topology.with_imds(http_tokens=http_tokens)
        report = sweep(variant, limits)  # what `hopsim sweep --format json` reports
        for result in report.results:
            assert result.hop_limit is not None
            key = _key(result.hop_limit, http_tokens)
            at = variant.with_imds(hop_limit=result.hop_limit)
            played[key] = {p: play(at, p, record=True, router=router) for p in topology.principals}
            scenes[key] = scene.build(at, principals, played[key])
            settings[key] = {
                "hop_limit": result.hop_limit,
                "http_tokens": http_tokens,
                "verdict": result.verdict.value,
                "reason": result.reason,
                "recommended_hop_limit": report.recommended_hop_limit,
                "recommendation": report.recommendation,
                "principals": [json_report.outcome(o, topology.nodes[o.node].replicas)
                               for o in result.outcomes],
                "picture": f"picture-{len(settings)}",
            }
    pictures = {key: layout.layout(s, list(scenes.values())) for key, s in scenes.items()}
    geometry = next(iter(pictures.values()))  # the same in each: laid out together
    for key, entry in settings.items():
        entry["steps"] = {p: _steps(topology, p, e, geometry, entry["principals"])
                          for p, e in played[key].items()}
    nodes = topology.nodes
    start = configured_hop_limit(topology) or min(topology.hop_limits().values(),
                                                 default=MIN_HOP_LIMIT)
    return {
        "topology": topology.name,
        "teaches": teaching.lesson_of(topology),
        "description": shown(" ".join(topology.description.split())),
        "hop_limits": list(limits),
        "start": {"hop_limit": start, "http_tokens": _configured_tokens(topology)},
        "follow": principals[0] if principals else (
            teaching.choose_principal(topology) if topology.principals else None),
        "principals": [{"name": p, "role": nodes[p].role, "kind": nodes[p].kind}
                       for p in topology.principals],
        "boxes": {b.place.name: [_n(b.rect.x), _n(b.rect.y), _n(b.rect.w), _n(b.rect.h)]
                  for b in geometry.nodes},
        "size": [_n(geometry.width), _n(geometry.height)],
        # The page states the title and verdict itself: it shows the picture from the graph down.
        "crop": _n(max(0, min(b.rect.y for b in geometry.nodes) - CROP_MARGIN)),
        "settings": settings,
        "pictures": {settings[k]["picture"]: svg.render(p) for k, p in pictures.items()},
    }


# -- the animation: the engine's hops, placed on the picture ---------------------------


def _n(value: float) -> float:
    return round(value, 1)


def _short(message: str) -> str:
    """What the moving packet is called: "token", "PUT", "403" ..."""
    if message.endswith("(token)"):
        return "token"
    return message.split(" ")[0]


class _Paths:
    """Polylines on the picture between two nodes: along the drawn link, and
    the dotted line down to a node that runs on a host."""

    def __init__(self, picture: Picture):
        self.boxes = {b.place.name: b.rect for b in picture.nodes}
        self.host = {b.place.name: b.place.runs_on for b in picture.nodes
                     if b.place.runs_on in self.boxes}
        self.wires: dict[tuple[str, str], list[Point]] = {}
        for line in picture.lines:
            if line.wire is not None:
                points = list(line.points)
                self.wires.setdefault((line.wire.a, line.wire.b), points)
                self.wires.setdefault((line.wire.b, line.wire.a), points[::-1])

    def _down(self, name: str) -> list[Point]:
        """From a host's bottom to the top of a node that runs on it."""
        r, h = self.boxes[name], self.boxes[self.host[name]]
        return [(r.cx, h.bottom), (r.cx, r.y)]

    def between(self, start: str, end: str) -> tuple[list[Point], list[Point]]:
        """(the whole path from `start` to `end`, its part along a link)."""
        here, there = self.host.get(start, start), self.host.get(end, end)
        points = self._down(start)[::-1] if start in self.host else []
        link: list[Point] = []
        if here != there:
            link = self.wires.get((here, there)) or [
                (self.boxes[here].cx, self.boxes[here].cy),
                (self.boxes[there].cx, self.boxes[there].cy)]
            points += link
        if end in self.host:
            points += self._down(end)
        if not points:
            r = self.boxes[end]
            points = [(r.cx, r.cy), (r.cx, r.cy)]
        kept = [p for i, p in enumerate(points) if i == 0 or p != points[i - 1]]
        return kept, link or kept

    def centre(self, name: str) -> Point:
        r = self.boxes[name]
        return (r.cx, r.cy)


def _middle(points: Sequence[Point]) -> Point:
    """The middle of the longest segment, where `draw` writes a link's TTL."""
    if len(points) < 2:
        return points[0]
    (x1, y1), (x2, y2) = max(pairwise(points),
                             key=lambda s: math.hypot(s[1][0] - s[0][0], s[1][1] - s[0][1]))
    return ((x1 + x2) / 2, (y1 + y2) / 2)


def _heading(points: Sequence[Point]) -> str:
    """Which way a polyline goes on the page, from its start to its end:
    ">", "<", "v" or "^"."""
    dx, dy = points[-1][0] - points[0][0], points[-1][1] - points[0][1]
    if abs(dx) >= abs(dy):
        return ">" if dx >= 0 else "<"
    return "v" if dy > 0 else "^"


def _beside(points: list[list[float]]) -> list[list[float]]:
    """The polyline moved a little below (or right of) itself."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    dx, dy = (0, ICMP_OFFSET) if max(xs) - min(xs) >= max(ys) - min(ys) else (ICMP_OFFSET, 0)
    return [[_n(x + dx), _n(y + dy)] for x, y in points]


def _flat(points: Iterable[Point]) -> list[list[float]]:
    return [[_n(x), _n(y)] for x, y in points]


def _request(principal: str, hops: Sequence[Hop]) -> str:
    refused = next((h for h in hops if h.action is Action.REFUSE), None)
    lost = next((h for h in hops if h.action is Action.DROP), None)
    opening = (f"{principal} asks IMDS for a token: {hops[0].message}, sent with TTL "
               f"{DEFAULT_TTL}.")
    if refused:
        return f"{opening} {refused.node} refuses it ({refused.detail})."
    if lost:
        return f"{opening} It is lost at {lost.node}."
    return (f"{opening} It reaches IMDS: no hop limit applies to requests, only to the "
            "token response.")


def _steps(topology: Topology, principal: str, exchange: Exchange, picture: Picture,
           outcomes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The animation of `principal`'s token request and of the answer to it,
    one step per hop the engine recorded (so it follows whatever path the
    engine's packets took), then the outcome."""
    paths = _Paths(picture)
    layer = scene.layers(topology)
    groups = teaching.messages(exchange.hops)
    steps: list[dict[str, Any]] = []
    if groups and groups[0][0]:
        request = groups[0][1]
        stops = [h.node for h in request if h.action not in (Action.ICMP, Action.TIMEOUT,
                                                             Action.REFUSE)]
        stops = [n for i, n in enumerate(stops) if i == 0 or n != stops[i - 1]]
        points: list[Point] = []
        for a, b in pairwise(stops):
            points += paths.between(a, b)[0]
        steps.append({"action": "request", "node": principal, "packet": _short(request[0].message),
                      "points": _flat(points or [paths.centre(principal)] * 2),
                      "caption": _request(principal, request)})
    answer = groups[1][1] if len(groups) > 1 and not groups[1][0] else []
    family = exchange.outcome.family
    at = principal
    moves: list[dict[str, Any]] = []
    for i, hop in enumerate(answer):
        step: dict[str, Any] = {"action": hop.action.value, "node": hop.node,
                                "packet": _short(hop.message), "ttl_in": hop.ttl_in,
                                "ttl_out": hop.ttl_out}
        relay = hop.action is Action.DELIVER and any(
            h.node == hop.node and h.action is Action.SEND for h in answer[i + 1:])
        part = Part.IMDS if topology.nodes[hop.node].kind == "imds" else (
            Part.RELAY if relay else Part.ROUTE)
        step["caption"] = teaching.step_caption(topology, hop, part)
        if hop.action is Action.SEND:
            step["at"] = list(map(_n, paths.centre(hop.node)))  # moved to the next path's start
            at = hop.node
        elif hop.action is Action.ICMP:
            protocol = "ICMPv6" if family == 6 else "ICMP"
            step["packet"] = protocol
            step["caption"] = (f"{hop.node} sends {protocol} "
                               f"{hop.detail.replace(' -> ', ' back to ')} instead, with TTL "
                               f"{hop.ttl_out}.")
            step["points"] = _beside(moves[-1]["points"][::-1]) if moves else _flat(
                [paths.centre(hop.node)] * 2)
        elif hop.action is Action.TIMEOUT:
            step["at"] = list(map(_n, paths.centre(hop.node)))
        else:
            whole, link = paths.between(at, hop.node)
            step["points"] = _flat(whole)
            step["link"] = sorted((paths.host.get(at, at), paths.host.get(hop.node, hop.node)))
            step["outward"] = (layer[hop.node], hop.node) > (layer[at], at)  # away from IMDS
            step["tag"] = list(map(_n, _middle(link)))
            step["heading"] = _heading(link)
            moves.append(step)
            at = hop.node
        steps.append(step)
    # Tags of a link crossed both ways sit above (outward) and below (inward) it.
    both = {tuple(m["link"]) for m in moves if any(
        tuple(o["link"]) == tuple(m["link"]) and o["outward"] != m["outward"] for o in moves)}
    for m in moves:
        if tuple(m["link"]) in both:
            m["tag"][1] = _n(m["tag"][1] + (-TAG_OFFSET if m["outward"] else TAG_OFFSET))
        del m["link"], m["outward"]
    mine = next(o for o in outcomes if o["node"] == principal)
    steps.append({"action": "outcome", "node": principal,
                  "caption": f"{principal} holds: {mine['outcome']}. {mine['reason']}."})
    return steps


# -- the page --------------------------------------------------------------------------


def _clean(text: str) -> str:
    """Text without raw control or invisible characters, which HTML does not
    allow or a reader cannot see (hopsim.untrusted)."""
    return shown(text)


def script_json(value: Any) -> str:
    """JSON safe inside <script type="application/json">: no "<", ">" or "&"
    (so no "</script>" or "<!--"), and no raw control character or line
    separator (json escapes those below U+0020 and, with ensure_ascii, all
    others but DEL)."""
    text = json.dumps(value, ensure_ascii=True, sort_keys=True, separators=(",", ":"))
    for char, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                       ("\x7f", "\\u007f")):
        text = text.replace(char, code)
    return text


def _asset(name: str) -> str:
    return resources.files("hopsim.draw").joinpath(name).read_text(encoding="utf-8")


def _hash(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


def render(topology: Topology, principals: Sequence[str] | None = None) -> str:
    """The page, as text."""
    data = lesson(topology, principals)
    pictures = data.pop("pictures")
    style, code = _asset("lesson.css"), _asset("lesson.js")
    # Only this page's own style and script may run; nothing may be fetched.
    policy = (f"default-src 'none'; style-src {_hash(style)}; script-src {_hash(code)}; "
              "img-src data:; base-uri 'none'; form-action 'none'")
    name = escape(_clean(topology.name))
    templates = "\n".join(
        f'<template id="{key}">{_clean(text[text.index("<svg"):].strip())}</template>'
        for key, text in pictures.items())
    return _PAGE.format(
        policy=escape(policy), name=name, style=style, code=code, templates=templates,
        data=script_json(data), lowest=data["hop_limits"][0], highest=data["hop_limits"][-1],
        start=data["start"]["hop_limit"],
    )


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{policy}">
<meta name="generator" content="hopsim">
<title>{name}: the IMDSv2 hop limit, hop by hop</title>
<style>{style}</style>
</head>
<body>
<header>
  <h1><span class="topology">{name}</span> <span class="muted">the IMDSv2 hop limit, hop by hop</span></h1>
  <p id="teaches"></p>
  <details id="about"><summary>About this topology</summary><p id="description"></p></details>
</header>
<section id="controls" aria-label="settings">
  <div class="control hop">
    <label for="hop">Hop limit</label>
    <input type="range" id="hop" min="{lowest}" max="{highest}" value="{start}" step="1">
    <output id="hop-value" for="hop">{start}</output>
  </div>
  <div class="control">
    <span class="label" id="tokens-label">http_tokens</span>
    <button type="button" id="tokens" role="switch" aria-labelledby="tokens-label tokens-text" aria-checked="true"><span class="knob" aria-hidden="true"></span><span id="tokens-text">required</span></button>
  </div>
  <div class="control">
    <label for="follow">Follow</label>
    <select id="follow"></select>
  </div>
  <div class="control play">
    <button type="button" id="back" aria-label="previous step" title="previous step (PageUp)">&#x25C0;</button>
    <button type="button" id="play" title="play or pause (Space)"><span class="icon" aria-hidden="true">&#x25B6;</span> <span class="word">Play</span></button>
    <button type="button" id="next" aria-label="next step" title="next step (PageDown)">&#x25B6;&#x258F;</button>
    <label for="speed" class="label">Speed</label>
    <select id="speed"><option value="0.5">0.5&#xD7;</option><option value="1" selected>1&#xD7;</option><option value="2">2&#xD7;</option><option value="4">4&#xD7;</option></select>
  </div>
</section>
<section id="verdict" aria-live="polite"><span class="badge"></span> <span class="reason"></span><span class="recommendation"></span></section>
<figure id="stage">
  <div id="picture"></div>
  <figcaption id="caption" aria-live="polite"><span class="count"></span> <span class="text"></span></figcaption>
</figure>
<section id="outcomes-section" aria-label="each principal">
<table id="outcomes">
  <thead><tr><th scope="col">Principal</th><th scope="col">Role</th><th scope="col">Holds</th><th scope="col">Why</th></tr></thead>
  <tbody></tbody>
</table>
</section>
<footer>
  <p id="keys"><kbd>&#x2190;</kbd> <kbd>&#x2192;</kbd> hop limit &#xB7; <kbd>Space</kbd> play / pause &#xB7; <kbd>PgDn</kbd> <kbd>PgUp</kbd> step &#xB7; <kbd>Home</kbd> back to the start &#xB7; <kbd>T</kbd> http_tokens &#xB7; <kbd>&#x2191;</kbd> <kbd>&#x2193;</kbd> whom to follow</p>
  <p class="muted">Made by hopsim: every outcome and every hop on this page is hopsim's own simulation (<code>hopsim sweep</code>, <code>hopsim trace</code>), computed when the page was written.</p>
</footer>
{templates}
<script type="application/json" id="lesson-data">{data}</script>
<script>{code}</script>
</body>
</html>
"""

"""A Scene as a Mermaid flowchart, for Markdown and GitHub: the same nodes,
shapes and TTLs as the picture, laid out by Mermaid (left to right from IMDS)."""

from __future__ import annotations

import re

from hopsim.draw.layout import AMBER, RED, SHAPE_STYLE
from hopsim.draw.scene import Place, Scene, Shape

# Mermaid's shapes: (opening, closing) around the quoted label.
BRACKETS = {
    Shape.IMDS: ("[(", ")]"),  # cylinder
    Shape.ENDPOINT: ("(", ")"),  # rounded
    Shape.BRIDGE: ("[", "]"),  # rectangle
    Shape.ROUTER: ("{{", "}}"),  # hexagon
    Shape.NAT: ("{{", "}}"),
    Shape.RELAY: ("[[", "]]"),  # subroutine: double sides
}


def node_id(name: str) -> str:
    """A Mermaid id for a node name: letters, digits and _ only, never a keyword."""
    return "n_" + re.sub(r"[^A-Za-z0-9_]", lambda m: f"_{ord(m.group()):x}_", name)


def _quoted(lines: list[str]) -> str:
    text = "<br/>".join(line.replace('"', "#quot;") for line in lines)
    return f'"{text}"'


def _label(place: Place) -> list[str]:
    lines = [f"<b>{place.name}</b>", place.detail]
    if place.runs_on:
        lines.append(place.attachment)
    lines += [t for t in (place.outcome_text, place.drop_text) if t]
    return lines


def render(scene: Scene) -> str:
    out = ["---", f"title: {scene.title}", "---", "flowchart LR",
           f"  %% {scene.subtitle}",
           f"  %% verdict: {scene.verdict.value} ({scene.verdict_reason})"]
    for place in scene.places:
        left, right = BRACKETS[place.shape]
        out.append(f"  {node_id(place.name)}{left}{_quoted(_label(place))}{right}")
    for place in scene.places:
        if place.runs_on:
            out.append(f"  {node_id(place.runs_on)} -.- {node_id(place.name)}")
    for w in scene.wires:
        a, b = node_id(w.a), node_id(w.b)
        if not w.crossed:
            out.append(f"  {a} --- {b}")
        for start, end, ttls in ((w.a, w.b, w.outward), (w.b, w.a, w.inward)):
            ttl = f"TTL {', '.join(map(str, ttls))}"
            if end in w.passed:
                out.append(f'  {node_id(start)} -->|"{ttl}"| {node_id(end)}')
            if end in w.dropped_at:
                out.append(f'  {node_id(start)} --x|"{ttl}, dropped at {end}"| {node_id(end)}')
    for shape in Shape:
        members = [node_id(p.name) for p in scene.places if p.shape is shape and not p.finding]
        if members:
            fill, stroke = SHAPE_STYLE[shape]
            colour = ",color:#ffffff" if shape is Shape.IMDS else ""
            out.append(f"  classDef {shape.value} fill:{fill},stroke:{stroke}{colour}")
            out.append(f"  class {','.join(members)} {shape.value}")
    for finding, (fill, stroke) in (("leak", ("#fff5f5", RED)), ("starved", ("#fffbeb", AMBER))):
        members = [node_id(p.name) for p in scene.places if p.finding == finding]
        if members:
            out.append(f"  classDef {finding} fill:{fill},stroke:{stroke},stroke-width:3px")
            out.append(f"  class {','.join(members)} {finding}")
    return "\n".join(out) + "\n"

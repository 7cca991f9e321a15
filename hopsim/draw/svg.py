"""A Picture as SVG, written by hand: every label stays a <text> element
(searchable, selectable, read by screen readers), and the picture, each node
and each link carry a <title>; the whole has role="img" and a description."""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from hopsim.draw.layout import (
    CAP,
    FAINT,
    FONT_FAMILY,
    INK,
    MUTED,
    RED,
    RELAY_BAR,
    SHAPE_STYLE,
    TAG_FILL,
    TAG_STROKE,
    Label,
    Line,
    NodeBox,
    Picture,
    Rect,
    hexagon,
    triangle,
)
from hopsim.draw.scene import Shape
from hopsim.untrusted import shown


def _n(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _points(points) -> str:
    return " ".join(f"{_n(x)},{_n(y)}" for x, y in points)


def _xml(text: str) -> str:
    """Text as SVG character data: escaped, with no control character (XML
    forbids most even escaped) or invisible one left raw (hopsim.untrusted)."""
    return escape(shown(text))


def _text(label: Label) -> str:
    weight = ' font-weight="bold"' if label.bold else ""
    anchor = ' text-anchor="middle"' if label.anchor == "middle" else ""
    return (f'<text x="{_n(label.x)}" y="{_n(label.y)}" font-size="{_n(label.size)}"'
            f'{weight}{anchor} fill="{label.color}">{_xml(label.text)}</text>')


def _outline(shape: str, r: Rect, fill: str, stroke: str, width: float) -> list[str]:
    """The shape of a node kind in a rectangle (also used for legend samples)."""
    paint = f'fill="{fill}" stroke="{stroke}" stroke-width="{_n(width)}"'
    if shape == Shape.IMDS.value:
        rx, ry = r.w / 2, CAP
        body = (f'<path d="M{_n(r.x)},{_n(r.y + ry)} L{_n(r.x)},{_n(r.bottom - ry)} '
                f'A{_n(rx)},{_n(ry)} 0 0 0 {_n(r.right)},{_n(r.bottom - ry)} '
                f'L{_n(r.right)},{_n(r.y + ry)}" {paint}/>')
        cap = (f'<ellipse cx="{_n(r.cx)}" cy="{_n(r.y + ry)}" rx="{_n(rx)}" ry="{_n(ry)}" '
               f'fill="#3c4b5e" stroke="{stroke}" stroke-width="{_n(width)}"/>')
        return [body, cap]
    if shape in (Shape.ROUTER.value, Shape.NAT.value):
        parts = [f'<polygon points="{_points(hexagon(r))}" {paint}/>']
        if shape == Shape.NAT.value:
            parts.append(f'<polygon points="{_points(hexagon(r, 3.5))}" fill="none" '
                         f'stroke="{stroke}" stroke-width="1"/>')
        return parts
    rect = (f'<rect x="{_n(r.x)}" y="{_n(r.y)}" width="{_n(r.w)}" height="{_n(r.h)}"'
            f'{" rx=" + chr(34) + "9" + chr(34) if shape == Shape.ENDPOINT.value else ""} '
            f'{paint}/>')
    parts = [rect]
    if shape == Shape.RELAY.value:
        for x in (r.x + RELAY_BAR, r.right - RELAY_BAR):
            parts.append(f'<line x1="{_n(x)}" y1="{_n(r.y)}" x2="{_n(x)}" y2="{_n(r.bottom)}" '
                         f'stroke="{stroke}" stroke-width="{_n(width)}"/>')
    return parts


def _node(box: NodeBox) -> list[str]:
    p = box.place
    words = [p.name, p.detail]
    if p.runs_on:
        words.append(p.attachment)
    words += [t for t in (p.outcome_text, p.drop_text) if t]
    name = "; ".join(words)
    out = [f'<g id={quoteattr(shown("node-" + p.name))} role="img" '
           f'aria-label={quoteattr(shown(name))}>',
           f"<title>{_xml(name)}</title>"]
    out += _outline(p.shape.value, box.rect, box.fill, box.stroke, box.stroke_width)
    out += [_text(label) for label in box.labels]
    out.append("</g>")
    return out


def _cross(x: float, y: float, size: float = 6) -> str:
    return (f'<path d="M{_n(x - size)},{_n(y - size)} L{_n(x + size)},{_n(y + size)} '
            f'M{_n(x - size)},{_n(y + size)} L{_n(x + size)},{_n(y - size)}" stroke="{RED}" '
            'stroke-width="3" stroke-linecap="round"/>')


def _line(line: Line) -> list[str]:
    dash = ' stroke-dasharray="3 4"' if line.dotted else ""
    out = ["<g>", f"<title>{_xml(line.title)}</title>",
           f'<polyline points="{_points(line.points)}" fill="none" stroke="{line.color}" '
           f'stroke-width="{_n(line.width)}"{dash} stroke-linejoin="round"/>']
    out += [f'<polygon points="{_points(a)}" fill="{line.color}"/>' for a in line.arrows]
    out += [_cross(x, y) for x, y in line.crosses]
    for tag in line.tags:
        r = tag.rect
        out.append(f'<rect x="{_n(r.x)}" y="{_n(r.y)}" width="{_n(r.w)}" height="{_n(r.h)}" '
                   f'rx="4" fill="{TAG_FILL}" stroke="{TAG_STROKE}" stroke-width="1"/>')
        out.append(f'<polygon points="{_points(tag.triangle)}" fill="{TAG_STROKE}"/>')
        out.append(_text(tag.label))
    out.append("</g>")
    return out


def _sample(sample: str, r: Rect) -> list[str]:
    if sample in {s.value for s in Shape}:
        fill, stroke = SHAPE_STYLE[Shape(sample)]
        return _outline(sample, r, fill, stroke, 1.5)
    if sample == "runs-on":
        return [f'<line x1="{_n(r.cx)}" y1="{_n(r.y)}" x2="{_n(r.cx)}" y2="{_n(r.bottom)}" '
                f'stroke="{MUTED}" stroke-width="1.5" stroke-dasharray="3 4"/>']
    if sample == "tag":
        tip = (r.right - 7, r.cy)
        return [f'<rect x="{_n(r.x)}" y="{_n(r.y + 1)}" width="{_n(r.w)}" '
                f'height="{_n(r.h - 2)}" rx="4" fill="{TAG_FILL}" stroke="{TAG_STROKE}"/>',
                f'<text x="{_n(r.x + 5)}" y="{_n(r.cy + 4)}" font-size="11" font-weight="bold" '
                f'fill="{INK}">n</text>',
                f'<polygon points="{_points(triangle(tip, (tip[0] - 1, tip[1]), 7, 4))}" '
                f'fill="{TAG_STROKE}"/>']
    if sample == "cross":
        return [f'<line x1="{_n(r.x)}" y1="{_n(r.cy)}" x2="{_n(r.right)}" y2="{_n(r.cy)}" '
                f'stroke="{INK}" stroke-width="2"/>', _cross(r.cx, r.cy)]
    fill, stroke = {"leak": ("#fff5f5", RED), "starved": ("#fffbeb", "#b7791f")}[sample]
    return _outline(Shape.ENDPOINT.value, r, fill, stroke, 3)


def render(picture: Picture) -> str:
    scene = picture.scene
    w, h = picture.width, picture.height
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(w)}" height="{_n(h)}" '
        f'viewBox="0 0 {_n(w)} {_n(h)}" role="img" aria-labelledby="title desc" '
        f'font-family={quoteattr(FONT_FAMILY)}>',
        f'<title id="title">{_xml(scene.title)}</title>',
        f'<desc id="desc">{_xml(scene.describe())}</desc>',
        f'<rect width="{_n(w)}" height="{_n(h)}" fill="#ffffff"/>',
        _text(picture.title), _text(picture.subtitle), _text(picture.verdict),
    ]
    for line in picture.lines:
        if line.wire is None or not line.wire.crossed:
            out += _line(line)
    for line in picture.lines:  # the token's path on top
        if line.wire is not None and line.wire.crossed:
            out += _line(line)
    for box in picture.nodes:
        out += _node(box)
    f = picture.legend_frame
    out.append(f'<g id="legend" aria-label="legend"><rect x="{_n(f.x)}" y="{_n(f.y)}" '
               f'width="{_n(f.w)}" height="{_n(f.h)}" rx="6" fill="#f7fafc" '
               f'stroke="{FAINT}" stroke-width="1"/>')
    for item in picture.legend:
        out += _sample(item.sample, item.rect)
        out.append(_text(item.label))
    out += ["</g>", "</svg>", ""]
    return "\n".join(out)

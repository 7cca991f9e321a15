"""A Picture as PNG, drawn with Pillow (the optional `draw` extra).

The same layout as the SVG, drawn at twice the final size and scaled down,
so lines and text come out smooth. Text uses DejaVu Sans where the system has
it (the font the SVG asks for first), else the font Pillow ships.
"""

from __future__ import annotations

import io
import math
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

from hopsim.draw.layout import (
    CAP,
    INK,
    MUTED,
    RED,
    RELAY_BAR,
    SHAPE_STYLE,
    TAG_FILL,
    TAG_STROKE,
    Label,
    Picture,
    Rect,
    hexagon,
    triangle,
)
from hopsim.draw.scene import Shape

INSTALL = "pip install 'hopsim[draw]'"
FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu",
             "/usr/share/fonts/TTF", "/Library/Fonts", "C:/Windows/Fonts")


class MissingPillow(Exception):
    """PNG output needs Pillow, which comes with the `draw` extra."""

    def __init__(self) -> None:
        super().__init__(f"PNG output needs Pillow: {INSTALL}")


def available() -> bool:
    try:
        import PIL  # noqa: F401
    except ImportError:
        return False
    return True


@cache
def _font(size: int, bold: bool) -> Any:
    from PIL import ImageFont

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for folder in FONT_DIRS:
        path = Path(folder) / name
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


class _Canvas:
    """Pillow drawing in picture coordinates, multiplied by `k`."""

    def __init__(self, draw: Any, k: float):
        self.draw, self.k = draw, k

    def p(self, points) -> list[tuple[float, float]]:
        return [(x * self.k, y * self.k) for x, y in points]

    def w(self, width: float) -> int:
        return max(1, round(width * self.k))

    def box(self, r: Rect) -> list[float]:
        return [r.x * self.k, r.y * self.k, r.right * self.k, r.bottom * self.k]

    def text(self, label: Label) -> None:
        font = _font(round(label.size * self.k), label.bold)
        anchor = "ms" if label.anchor == "middle" else "ls"
        self.draw.text((label.x * self.k, label.y * self.k), label.text, font=font,
                       fill=label.color, anchor=anchor)

    def line(self, points, color: str, width: float, dotted: bool = False) -> None:
        if not dotted:
            self.draw.line(self.p(points), fill=color, width=self.w(width), joint="curve")
            return
        for (x1, y1), (x2, y2) in pairwise(points):
            length = math.hypot(x2 - x1, y2 - y1)
            t = 0.0
            while t < length:
                a, b = t / length, min(t + 3, length) / length
                self.draw.line(self.p([(x1 + (x2 - x1) * a, y1 + (y2 - y1) * a),
                                       (x1 + (x2 - x1) * b, y1 + (y2 - y1) * b)]),
                               fill=color, width=self.w(width))
                t += 7

    def cross(self, x: float, y: float, size: float = 6) -> None:
        for dx in (-size, size):
            self.draw.line(self.p([(x - dx, y - size), (x + dx, y + size)]), fill=RED,
                           width=self.w(3))

    def outline(self, shape: str, r: Rect, fill: str, stroke: str, width: float) -> None:
        d, k, lw = self.draw, self.k, self.w(width)
        if shape == Shape.IMDS.value:
            ry = CAP
            d.ellipse(self.box(Rect(r.x, r.bottom - 2 * ry, r.w, 2 * ry)), fill=fill,
                      outline=stroke, width=lw)
            d.rectangle(self.box(Rect(r.x, r.y + ry, r.w, r.h - 2 * ry)), fill=fill)
            for x in (r.x, r.right):
                d.line(self.p([(x, r.y + ry), (x, r.bottom - ry)]), fill=stroke, width=lw)
            d.ellipse(self.box(Rect(r.x, r.y, r.w, 2 * ry)), fill="#3c4b5e", outline=stroke,
                      width=lw)
        elif shape in (Shape.ROUTER.value, Shape.NAT.value):
            d.polygon(self.p(hexagon(r)), fill=fill, outline=stroke, width=lw)
            if shape == Shape.NAT.value:
                d.polygon(self.p(hexagon(r, 3.5)), outline=stroke, width=self.w(1))
        elif shape == Shape.ENDPOINT.value:
            d.rounded_rectangle(self.box(r), radius=9 * k, fill=fill, outline=stroke, width=lw)
        else:
            d.rectangle(self.box(r), fill=fill, outline=stroke, width=lw)
            if shape == Shape.RELAY.value:
                for x in (r.x + RELAY_BAR, r.right - RELAY_BAR):
                    d.line(self.p([(x, r.y), (x, r.bottom)]), fill=stroke, width=lw)


def _sample(c: _Canvas, sample: str, r: Rect) -> None:
    if sample in {s.value for s in Shape}:
        fill, stroke = SHAPE_STYLE[Shape(sample)]
        c.outline(sample, r, fill, stroke, 1.5)
    elif sample == "runs-on":
        c.line([(r.cx, r.y), (r.cx, r.bottom)], MUTED, 1.5, dotted=True)
    elif sample == "tag":
        c.draw.rounded_rectangle(c.box(Rect(r.x, r.y + 1, r.w, r.h - 2)), radius=4 * c.k,
                                 fill=TAG_FILL, outline=TAG_STROKE, width=c.w(1))
        c.text(Label("n", r.x + 5, r.cy + 4, 11, True, INK, "start"))
        tip = (r.right - 7, r.cy)
        c.draw.polygon(c.p(triangle(tip, (tip[0] - 1, tip[1]), 7, 4)), fill=TAG_STROKE)
    elif sample == "cross":
        c.line([(r.x, r.cy), (r.right, r.cy)], INK, 2)
        c.cross(r.cx, r.cy)
    else:
        fill, stroke = {"leak": ("#fff5f5", RED), "starved": ("#fffbeb", "#b7791f")}[sample]
        c.outline(Shape.ENDPOINT.value, r, fill, stroke, 3)


def render(picture: Picture, scale: float = 2) -> bytes:
    """PNG bytes of the picture, `scale` pixels per picture unit."""
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        raise MissingPillow() from None
    k = scale * 2  # drawn at twice the size, then scaled down: smooth edges
    image = Image.new("RGB", (math.ceil(picture.width * k), math.ceil(picture.height * k)),
                      "#ffffff")
    c = _Canvas(ImageDraw.Draw(image), k)
    for label in (picture.title, picture.subtitle, picture.verdict):
        c.text(label)
    ordered = sorted(picture.lines, key=lambda ln: ln.wire is not None and ln.wire.crossed)
    for line in ordered:
        c.line(line.points, line.color, line.width, line.dotted)
        for arrow in line.arrows:
            c.draw.polygon(c.p(arrow), fill=line.color)
        for x, y in line.crosses:
            c.cross(x, y)
        for tag in line.tags:
            c.draw.rounded_rectangle(c.box(tag.rect), radius=4 * k, fill=TAG_FILL,
                                     outline=TAG_STROKE, width=c.w(1))
            c.draw.polygon(c.p(tag.triangle), fill=TAG_STROKE)
            c.text(tag.label)
    for box in picture.nodes:
        c.outline(box.shape.value, box.rect, box.fill, box.stroke, box.stroke_width)
        for label in box.labels:
            c.text(label)
    f = picture.legend_frame
    c.draw.rounded_rectangle(c.box(f), radius=6 * k, fill="#f7fafc", outline="#a0aec0",
                             width=c.w(1))
    for item in picture.legend:
        _sample(c, item.sample, item.rect)
        c.text(item.label)
    size = (math.ceil(picture.width * scale), math.ceil(picture.height * scale))
    image = image.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()

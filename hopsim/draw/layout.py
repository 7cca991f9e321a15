"""Where everything goes: a Scene laid out as boxes, lines and text, in pixels.

Columns are distances from IMDS (IMDS on the left, the token flows right); a
node that runs on a host hangs under it, joined by a dotted line. Text widths
come from DejaVu Sans's advance widths (the font the SVG asks for first, and
wider than the usual fallbacks), so the same layout serves SVG and PNG.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from hopsim.draw.scene import Place, Scene, Shape, Wire, shape_meaning, shapes_in
from hopsim.outcome import Verdict

FONT_FAMILY = "DejaVu Sans, Verdana, Geneva, sans-serif"
# Advance widths of ASCII 32..126 in DejaVu Sans and DejaVu Sans Bold, per 1000 em.
_REGULAR = (
    318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636,
    636, 636, 636, 636, 636, 636, 636, 636, 337, 337, 838, 838, 838, 531, 1000, 684, 686, 698,
    770, 632, 575, 775, 752, 295, 295, 656, 557, 863, 748, 787, 603, 787, 695, 635, 611, 732,
    684, 989, 685, 611, 685, 390, 337, 390, 838, 500, 500, 613, 635, 550, 635, 615, 352, 635,
    634, 278, 278, 579, 278, 974, 634, 612, 635, 635, 411, 521, 392, 634, 592, 818, 592, 592,
    525, 636, 337, 636, 838)
_BOLD = (
    348, 456, 521, 838, 696, 1002, 872, 306, 457, 457, 523, 838, 380, 415, 380, 365, 696, 696,
    696, 696, 696, 696, 696, 696, 696, 696, 400, 400, 838, 838, 838, 580, 1000, 774, 762, 734,
    830, 683, 683, 821, 837, 372, 372, 775, 637, 995, 837, 850, 733, 850, 770, 720, 682, 812,
    774, 1103, 771, 724, 725, 457, 365, 457, 838, 500, 500, 675, 716, 593, 716, 678, 435, 716,
    712, 343, 343, 665, 343, 1042, 712, 687, 716, 716, 493, 595, 478, 712, 652, 924, 645, 652,
    582, 712, 365, 712, 838)
ASCENT, DESCENT = 0.929, 0.236  # per em

# Colours: ink, muted, and one pair (fill, stroke) per shape.
INK, MUTED, FAINT = "#1a202c", "#4a5568", "#a0aec0"
RED, AMBER, GREEN = "#c53030", "#b7791f", "#2f855a"
SHAPE_STYLE = {
    Shape.IMDS: ("#232f3e", "#232f3e"),
    Shape.ENDPOINT: ("#ffffff", "#4a5568"),
    Shape.BRIDGE: ("#edf2f7", "#718096"),
    Shape.ROUTER: ("#dbeafe", "#2b6cb0"),
    Shape.NAT: ("#ede4fb", "#6b46c1"),
    Shape.RELAY: ("#fff4db", "#b7791f"),
}
FINDING_STYLE = {"leak": ("#fff5f5", RED), "starved": ("#fffbeb", AMBER)}
TAG_FILL, TAG_STROKE = "#e6fffa", "#2c7a7b"

MARGIN = 24
NAME_SIZE, TEXT_SIZE, TITLE_SIZE, SUBTITLE_SIZE, TAG_SIZE = 14, 12, 20, 13, 12
PAD_X, PAD_Y = 14, 8
HEX_INSET = 12  # the slant of a router's hexagon
RELAY_BAR = 7  # the inner bars of a relay's box
CAP = 7  # the height of IMDS's cylinder cap
ATTACH_GAP = 22  # between a host and what runs on it
ROW_GAP = 34
MIN_GAP = 110  # between columns
TAG_H, TAG_PAD, ARROW = 18, 6, 8
MIN_WIDTH = 640


def text_width(text: str, size: float, bold: bool = False) -> float:
    table = _BOLD if bold else _REGULAR
    return sum(table[ord(c) - 32] if 32 <= ord(c) < 127 else 1000 for c in text) * size / 1000


def _line_height(size: float) -> float:
    return round(size * 1.3)


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    def overlaps(self, other: Rect, gap: float = 0) -> bool:
        return not (self.right + gap <= other.x or other.right + gap <= self.x
                    or self.bottom + gap <= other.y or other.bottom + gap <= self.y)


@dataclass(frozen=True)
class Label:
    """One line of text: anchored at x (its middle or its start), on baseline y."""

    text: str
    x: float
    y: float
    size: float
    bold: bool = False
    color: str = INK
    anchor: str = "middle"  # or "start"

    @property
    def width(self) -> float:
        return text_width(self.text, self.size, self.bold)

    @property
    def box(self) -> Rect:
        left = self.x - self.width / 2 if self.anchor == "middle" else self.x
        return Rect(left, self.y - ASCENT * self.size, self.width,
                    (ASCENT + DESCENT) * self.size)


@dataclass(frozen=True)
class NodeBox:
    place: Place
    rect: Rect
    labels: tuple[Label, ...]
    fill: str
    stroke: str
    stroke_width: float = 1.5

    @property
    def shape(self) -> Shape:
        return self.place.shape

    @property
    def summary(self) -> str:
        return ", ".join(label.text for label in self.labels)


@dataclass(frozen=True)
class Tag:
    """A TTL written on a link, with a triangle for the way the packet went."""

    rect: Rect
    label: Label
    triangle: tuple[tuple[float, float], ...]
    direction: str  # "outward" (away from IMDS) or "inward"


@dataclass(frozen=True)
class Line:
    """A link (`wire`) or a runs-on connector (`wire` None)."""

    points: tuple[tuple[float, float], ...]
    color: str
    width: float
    wire: Wire | None = None
    dotted: bool = False
    arrows: tuple[tuple[tuple[float, float], ...], ...] = ()
    crosses: tuple[tuple[float, float], ...] = ()  # where a token response died
    tags: tuple[Tag, ...] = ()
    title: str = ""


@dataclass(frozen=True)
class LegendItem:
    sample: str  # a Shape value, "runs-on", "tag", "cross", "leak" or "starved"
    rect: Rect  # where the sample goes
    label: Label


@dataclass(frozen=True)
class Picture:
    scene: Scene
    width: float
    height: float
    title: Label
    subtitle: Label
    verdict: Label
    nodes: tuple[NodeBox, ...]
    lines: tuple[Line, ...]
    legend_frame: Rect
    legend: tuple[LegendItem, ...] = field(default=())

    def labels(self) -> list[Label]:
        """Every piece of text in the picture."""
        found = [self.title, self.subtitle, self.verdict]
        for node in self.nodes:
            found += node.labels
        for line in self.lines:
            found += [t.label for t in line.tags]
        found += [item.label for item in self.legend]
        return found


# -- shapes, shared by the renderers ------------------------------------------------


def hexagon(r: Rect, inset: float = 0) -> list[tuple[float, float]]:
    k = HEX_INSET
    x, y, w, h = r.x + inset, r.y + inset, r.w - 2 * inset, r.h - 2 * inset
    return [(x + k, y), (x + w - k, y), (x + w, y + h / 2), (x + w - k, y + h), (x + k, y + h),
            (x, y + h / 2)]


def triangle(tip: tuple[float, float], towards: tuple[float, float], length: float = ARROW,
             half: float = 4.5) -> tuple[tuple[float, float], ...]:
    """An arrowhead with its tip at `tip`, pointing away from `towards`."""
    dx, dy = tip[0] - towards[0], tip[1] - towards[1]
    d = math.hypot(dx, dy) or 1
    ux, uy = dx / d, dy / d
    bx, by = tip[0] - ux * length, tip[1] - uy * length
    return ((tip[0], tip[1]), (bx - uy * half, by + ux * half), (bx + uy * half, by - ux * half))


def point_along(points: Sequence[tuple[float, float]], distance: float,
                from_end: bool = False) -> tuple[float, float]:
    """The point `distance` along the polyline (from its start, or its end)."""
    pts = list(reversed(points)) if from_end else list(points)
    for (x1, y1), (x2, y2) in pairwise(pts):
        seg = math.hypot(x2 - x1, y2 - y1)
        if seg >= distance and seg > 0:
            t = distance / seg
            return (x1 + (x2 - x1) * t, y1 + (y2 - y1) * t)
        distance -= seg
    return pts[-1]


# -- the layout ------------------------------------------------------------------------


def _node_lines(place: Place) -> list[tuple[str, float, bool, str]]:
    """(text, size, bold, colour) of each line in a node's box."""
    imds = place.shape is Shape.IMDS
    lines = [(place.name, NAME_SIZE, True, "#ffffff" if imds else INK),
             (place.detail, TEXT_SIZE, False, "#e2e8f0" if imds else MUTED)]
    if place.outcome is not None:
        finding = place.finding
        colour = RED if finding == "leak" else AMBER if finding == "starved" else (
            GREEN if place.outcome.access.value == "token" else MUTED)
        lines.append((place.outcome_text or "", TEXT_SIZE, True, colour))
    if place.drop_text:
        lines.append((place.drop_text, TEXT_SIZE, True, RED))
    return lines


def _extra_width(shape: Shape) -> float:
    return {Shape.ROUTER: 2 * HEX_INSET, Shape.NAT: 2 * HEX_INSET,
            Shape.RELAY: 2 * RELAY_BAR}.get(shape, 0)


def _box_size(place: Place) -> tuple[float, float]:
    lines = _node_lines(place)
    w = max(text_width(t, s, b) for t, s, b, _ in lines) + 2 * PAD_X + _extra_width(place.shape)
    h = sum(_line_height(s) for _, s, _, _ in lines) + 2 * PAD_Y
    if place.shape is Shape.IMDS:
        h += 2 * CAP
    return math.ceil(max(w, 96)), math.ceil(h)


def _box(place: Place, x: float, y: float, w: float, h: float) -> NodeBox:
    fill, stroke = SHAPE_STYLE[place.shape]
    width = 1.5
    if place.finding:
        fill, stroke = FINDING_STYLE[place.finding]
        width = 3.0
    top = y + PAD_Y + (2 * CAP if place.shape is Shape.IMDS else 0)
    labels = []
    for text, size, bold, colour in _node_lines(place):
        lh = _line_height(size)
        baseline = top + (lh - (ASCENT + DESCENT) * size) / 2 + ASCENT * size
        labels.append(Label(text, x + w / 2, round(baseline, 2), size, bold, colour))
        top += lh
    return NodeBox(place, Rect(x, y, w, h), tuple(labels), fill, stroke, width)


def _tag_text(ttls: Sequence[int]) -> str:
    return "TTL " + ", ".join(str(t) for t in ttls)


def _tag_width(ttls: Sequence[int]) -> float:
    return math.ceil(text_width(_tag_text(ttls), TAG_SIZE, True) + 2 * TAG_PAD + ARROW + 4)


def layout(scene: Scene, alike: Sequence[Scene] = ()) -> Picture:
    """Where everything in `scene` goes. `alike`: other scenes of the same
    topology (other settings) that must be drawn in the same places, as the
    teaching page swaps between them: boxes, gaps, width and legend make room
    for each."""
    scenes = (scene, *alike)
    places = scene.place
    main = [p for p in scene.places if not p.runs_on or p.runs_on not in places]
    attached: dict[str, list[Place]] = {}
    for p in scene.places:
        if p.runs_on and p.runs_on in places:
            attached.setdefault(p.runs_on, []).append(p)
    size = {p.name: _box_size(p) for p in scene.places}
    for other in alike:
        for p in other.places:
            (w, h), (ow, oh) = _box_size(p), size[p.name]
            size[p.name] = (max(w, ow), max(h, oh))
    neighbours: dict[str, set[str]] = {p.name: set() for p in scene.places}
    for w in scene.wires:
        neighbours[w.a].add(w.b)
        neighbours[w.b].add(w.a)

    # Rows: each node near the rows of its neighbours in the column before.
    columns = sorted({p.layer for p in main})
    row: dict[str, int] = {}
    for c in columns:
        wanted = {}
        for p in (p for p in main if p.layer == c):
            before = [row[n] for n in neighbours[p.name] if n in row]
            wanted[p.name] = sum(before) / len(before) if before else 0
        last = -1
        for name in sorted(wanted, key=lambda n: (wanted[n], n)):
            last = max(round(wanted[name]), last + 1)
            row[name] = last
    rows = max(row.values(), default=0) + 1

    def stack(name: str) -> float:
        return sum(size[a.name][1] + ATTACH_GAP for a in attached.get(name, ()))

    main_h = [max((size[n][1] for n in row if row[n] == r), default=0) for r in range(rows)]
    below = [max((stack(n) for n in row if row[n] == r), default=0) for r in range(rows)]
    col_w = {c: max(size[n.name][0] for p in main if p.layer == c
                    for n in [p, *attached.get(p.name, ())]) for c in columns}

    # Gaps between columns: room for the widest TTL tag on a link between them.
    layer = {p.name: p.layer for p in scene.places}
    gap = {c: MIN_GAP for c in columns}
    for w in (w for s in scenes for w in s.wires):
        c = min(layer[w.a], layer[w.b])
        for ttls in (w.outward, w.inward):
            if ttls:
                gap[c] = max(gap[c], _tag_width(ttls) + 2 * 46)

    title, subtitle, verdict = _headings(scene)
    top = verdict.y + DESCENT * SUBTITLE_SIZE + 28

    col_x, x = {}, MARGIN
    for c in columns:
        col_x[c] = x
        x += col_w[c] + gap[c]
    graph_right = x - gap[columns[-1]] if columns else MARGIN
    row_y, y = [], top
    for r in range(rows):
        row_y.append(y)
        y += main_h[r] + below[r] + ROW_GAP
    graph_bottom = y - ROW_GAP

    boxes: dict[str, NodeBox] = {}
    for p in main:
        w, h = size[p.name]
        c, r = p.layer, row[p.name]
        # A node and what runs on it share a centre line; the group starts at
        # the column's left edge, where the links from IMDS's side arrive.
        group_w = max(size[n.name][0] for n in [p, *attached.get(p.name, ())])
        centre = col_x[c] + group_w / 2
        by = row_y[r] + (main_h[r] - h) / 2
        boxes[p.name] = _box(p, centre - w / 2, by, w, h)
        under = boxes[p.name].rect.bottom
        for a in attached.get(p.name, ()):
            aw, ah = size[a.name]
            boxes[a.name] = _box(a, centre - aw / 2, under + ATTACH_GAP, aw, ah)
            under += ATTACH_GAP + ah

    lines = []
    for p in scene.places:
        if p.name in boxes and p.runs_on in boxes:
            host, node = boxes[p.runs_on].rect, boxes[p.name].rect
            above = max((b.rect.bottom for b in boxes.values()
                         if b.place.runs_on == p.runs_on and b.rect.bottom <= node.y),
                        default=host.bottom)
            lines.append(Line(((node.cx, above), (node.cx, node.y)), MUTED, 1.5, dotted=True,
                              title=f"{p.name}: {p.attachment}, no hop" if p.network
                              else f"{p.name} runs on {p.runs_on}: same network stack, "
                              "no hop"))
    for w in scene.wires:
        lines.append(_wire_line(w, boxes, layer, col_x, col_w, gap))

    # The legend: the shapes in the picture, then the marks it uses.
    samples: list[tuple[str, str]] = [(s.value, shape_meaning(s, scene.places)) for s in shapes_in(
        scene.places)]
    wires = [w for s in scenes for w in s.wires]
    found = [p for s in scenes for p in s.places]
    if any(p.runs_on for p in scene.places):
        hosts = {p.name for p in scene.places if p.kind == "host"}
        samples.append(("runs-on", "runs on the node above it; a user-space stack re-sends "
                        "from there, TTL 64" if any(p.network for p in scene.places)
                        else "runs on the node above it" if any(
                            p.runs_on and p.runs_on not in hosts for p in scene.places)
                        else "runs on the host above it"))
    if any(w.crossed for w in wires):
        samples.append(("tag", "TTL of the token response"))
    if any(w.dropped_at for w in wires):
        samples.append(("cross", "dropped: TTL exceeded, ICMP sent"))
    if any(p.finding == "leak" for p in found):
        samples.append(("leak", "leak: attacker gets in"))
    if any(p.finding == "starved" for p in found):
        samples.append(("starved", "starved: workload, no token"))
    width = max(graph_right + MARGIN, MIN_WIDTH,
                *(label.box.right + MARGIN for s in scenes for label in _headings(s)))
    legend, frame = _legend(samples, graph_bottom + 30, width)
    return Picture(scene, math.ceil(width), math.ceil(frame.bottom + MARGIN), title, subtitle,
                   verdict, tuple(boxes[p.name] for p in scene.places if p.name in boxes),
                   tuple(lines), frame, tuple(legend))


def _headings(scene: Scene) -> tuple[Label, Label, Label]:
    """The title, subtitle and verdict lines above the graph."""
    title = Label(scene.title, MARGIN, MARGIN + ASCENT * TITLE_SIZE, TITLE_SIZE, True, INK,
                  "start")
    subtitle = Label(scene.subtitle, MARGIN, title.y + 22, SUBTITLE_SIZE, False, MUTED, "start")
    verdict_colour = {Verdict.OK: GREEN, Verdict.LEAK: RED, Verdict.BROKEN: AMBER}[scene.verdict]
    verdict = Label(f"verdict: {scene.verdict.value} ({scene.verdict_reason})", MARGIN,
                    subtitle.y + 20, SUBTITLE_SIZE, True, verdict_colour, "start")
    return title, subtitle, verdict


def _wire_line(w: Wire, boxes: dict[str, NodeBox], layer: dict[str, int],
               col_x: dict[int, float], col_w: dict[int, float], gap: dict[int, float]) -> Line:
    a, b = boxes[w.a].rect, boxes[w.b].rect
    ca, cb = layer[w.a], layer[w.b]
    if ca == cb:  # same column: round the right-hand side
        side = col_x[ca] + col_w[ca] + gap[ca] / 3
        points = [(a.right, a.cy), (side, a.cy), (side, b.cy), (b.right, b.cy)]
    else:
        points = [(a.right, a.cy), (col_x[ca] + col_w[ca], a.cy), (col_x[cb], b.cy),
                  (b.x, b.cy)]
    points = [p for i, p in enumerate(points) if i == 0 or p != points[i - 1]]
    crossed = w.crossed
    arrows, crosses = [], []
    if w.b in w.passed:
        arrows.append(triangle(points[-1], point_along(points, 10, from_end=True)))
    if w.a in w.passed:
        arrows.append(triangle(points[0], point_along(points, 10)))
    if w.b in w.dropped_at:
        crosses.append(point_along(points, 26 if w.b in w.passed else 16, from_end=True))
    if w.a in w.dropped_at:
        crosses.append(point_along(points, 26 if w.a in w.passed else 16))
    # Tags go on the middle of the longest segment (the one between the columns).
    segments = list(pairwise(points))
    (x1, y1), (x2, y2) = max(segments, key=lambda s: math.hypot(s[1][0] - s[0][0],
                                                                 s[1][1] - s[0][1]))
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2
    tags = []
    both = bool(w.outward and w.inward)
    for direction, ttls in (("outward", w.outward), ("inward", w.inward)):
        if not ttls:
            continue
        tw = _tag_width(ttls)
        cy = my if not both else my + (-1 if direction == "outward" else 1) * (TAG_H / 2 + 3)
        rect = Rect(mx - tw / 2, cy - TAG_H / 2, tw, TAG_H)
        text_w = text_width(_tag_text(ttls), TAG_SIZE, True)
        baseline = cy + (ASCENT - DESCENT) * TAG_SIZE / 2
        if direction == "outward":
            text_x = rect.x + TAG_PAD
            tip = (rect.right - TAG_PAD + 1, cy)
            tri = triangle(tip, (tip[0] - 1, cy), length=7, half=4)
        else:
            text_x = rect.right - TAG_PAD - text_w
            tip = (rect.x + TAG_PAD - 1, cy)
            tri = triangle(tip, (tip[0] + 1, cy), length=7, half=4)
        tags.append(Tag(rect, Label(_tag_text(ttls), round(text_x, 2), round(baseline, 2),
                                    TAG_SIZE, True, INK, "start"), tri, direction))
    words = []
    if w.outward:
        words.append(f"token response {w.a} to {w.b}: {_tag_text(w.outward)}")
    if w.inward:
        words.append(f"token response {w.b} to {w.a}: {_tag_text(w.inward)}")
    for end in w.dropped_at:
        words.append(f"dropped at {end}")
    title = f"link {w.a} - {w.b}" + (": " + "; ".join(words) if words else "")
    return Line(tuple(points), INK if crossed else FAINT, 2.2 if crossed else 1.5, w,
                arrows=tuple(arrows), crosses=tuple(crosses), tags=tuple(tags), title=title)


LEGEND_SAMPLE_W, LEGEND_SAMPLE_H, LEGEND_ROW = 40, 20, 30


def _legend(samples: Sequence[tuple[str, str]], top: float,
            width: float) -> tuple[list[LegendItem], Rect]:
    """Sample and words for each item, flowed into rows across the picture."""
    inner_left, inner_right = MARGIN + 12, width - MARGIN - 12
    items, x, y = [], inner_left, top + 12
    for sample, words in samples:
        item_w = LEGEND_SAMPLE_W + 8 + text_width(words, TEXT_SIZE) + 22
        if x > inner_left and x + item_w - 22 > inner_right:
            x, y = inner_left, y + LEGEND_ROW
        rect = Rect(x, y + (LEGEND_ROW - LEGEND_SAMPLE_H) / 2 - 4, LEGEND_SAMPLE_W,
                    LEGEND_SAMPLE_H)
        label = Label(words, x + LEGEND_SAMPLE_W + 8,
                      round(rect.cy + (ASCENT - DESCENT) * TEXT_SIZE / 2, 2), TEXT_SIZE,
                      False, MUTED, "start")
        items.append(LegendItem(sample, rect, label))
        x += item_w
    frame = Rect(MARGIN, top, width - 2 * MARGIN, y + LEGEND_ROW - top)
    return items, frame

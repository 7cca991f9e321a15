"""hopsim draw: SVG, PNG and Mermaid pictures of every bundled topology."""

from __future__ import annotations

import math
import re
import struct
import sys
import xml.etree.ElementTree as ET
from itertools import combinations, pairwise

import pytest
from builders import ROOT, TOPOLOGIES, make
from click.testing import CliRunner

from hopsim.cli import main
from hopsim.draw import layout as geometry
from hopsim.draw import mermaid, png, render
from hopsim.draw.scene import build
from hopsim.loader import load

FILES = sorted(TOPOLOGIES.glob("*.yaml"))
IDS = [f.stem for f in FILES]
SVG = "{http://www.w3.org/2000/svg}"
PLAIN = {"NO_COLOR": "1", "COLUMNS": "80", "FORCE_COLOR": None, "TERM": "dumb"}


def run(*args: str):
    return CliRunner().invoke(main, list(args), env=PLAIN)


# --- what the picture says ------------------------------------------------------------


def test_docker_bridge_at_1_marks_the_drop_at_the_instance_and_the_starved_app():
    scene = build(load(TOPOLOGIES / "docker-bridge.yaml"))
    place = scene.place
    assert place["instance"].drops == ("app",)
    assert place["app"].finding == "starved"
    wire = next(w for w in scene.wires if {w.a, w.b} == {"imds", "instance"})
    # The token leaves IMDS with TTL 1: app's dies at the instance, the
    # instance's and the sidecar's are delivered there.
    assert (wire.a, wire.b, wire.outward, wire.dropped_at, wire.passed) == (
        "imds", "instance", (1,), ("instance",), ("instance",))
    assert not any(w.crossed for w in scene.wires if w.b in ("docker0", "app"))


def test_docker_bridge_at_2_writes_the_falling_ttl_on_each_link():
    scene = build(load(TOPOLOGIES / "docker-bridge.yaml").with_imds(hop_limit=2))
    ttl = {(w.a, w.b): w.outward for w in scene.wires}
    # IMDS -> instance with the hop limit; the instance routes (-1); docker0 is L2.
    assert ttl == {("imds", "instance"): (2,), ("instance", "docker0"): (1,),
                   ("docker0", "app"): (1,)}
    assert scene.verdict.value == "ok"


def test_a_relay_resets_the_ttl_on_the_way_back_to_the_attacker():
    scene = build(load(TOPOLOGIES / "reverse-proxy-in-container.yaml"), ["attacker"])
    wires = {(w.a, w.b): (w.outward, w.inward) for w in scene.wires}
    assert wires[("imds", "instance")] == ((2,), ())
    assert wires[("instance", "docker0")] == ((1,), (64,))  # to nginx with 1, back with 64
    assert wires[("docker0", "nginx")] == ((1,), (64,))
    assert wires[("instance", "attacker")] == ((63,), ())  # 64 less the instance's hop
    assert scene.place["attacker"].finding == "leak"
    assert scene.place["attacker"].outcome_text == "LEAK: token via nginx"


def test_layers_count_links_from_imds_and_a_node_on_a_host_takes_the_hosts():
    scene = build(load(TOPOLOGIES / "docker-in-docker.yaml"))
    assert {p.name: p.layer for p in scene.places} == {
        "imds": 0, "instance": 1, "docker0": 2, "dind": 3, "inner0": 4, "job": 5}
    scene = build(load(TOPOLOGIES / "docker-bridge.yaml"))
    assert scene.place["sidecar"].layer == scene.place["instance"].layer == 1


def test_node_kinds_get_distinct_shapes():
    scene = build(make({"imds": {"kind": "imds"}, "gw": {"kind": "router"},
                        "nat": {"kind": "nat"}, "br": {"kind": "bridge"},
                        "px": {"kind": "proxy"}, "c": {"kind": "client"}},
                       [["imds", "nat"], ["nat", "gw"], ["gw", "br"], ["br", "px"],
                        ["px", "c"]]))
    assert {p.name: p.shape.value for p in scene.places} == {
        "imds": "imds", "gw": "router", "nat": "nat", "br": "bridge", "px": "relay",
        "c": "endpoint"}


# --- SVG --------------------------------------------------------------------------------


@pytest.mark.parametrize("file", FILES, ids=IDS)
def test_svg_is_valid_and_every_label_is_text(file):
    topology = load(file)
    root = ET.fromstring(render(topology, "svg"))
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    title = root.find(f"{SVG}title")
    assert title is not None and title.text == f"{topology.name} at hop limit " + str(
        topology.hop_limits()["imds"])
    assert root.find(f"{SVG}desc") is not None
    texts = [t.text for t in root.iter(f"{SVG}text")]
    for name in topology.nodes:
        assert name in texts, name
        group = root.find(f".//{SVG}g[@id='node-{name}']")
        assert group is not None and group.find(f"{SVG}title") is not None
    assert not list(root.iter(f"{SVG}image"))  # no pictures of text
    assert any(t and t.startswith("TTL ") for t in texts) or not any(
        w.crossed for w in build(topology).wires)


def test_svg_names_the_drop_and_the_hop_limit():
    svg = render(load(TOPOLOGIES / "docker-bridge.yaml"), "svg").decode()
    assert "drops the token of app (TTL 1)" in svg
    assert "STARVED: none, dropped at instance" in svg
    assert "<title id=\"title\">docker-bridge at hop limit 1</title>" in svg


def test_svg_is_the_same_every_time():
    topology = load(TOPOLOGIES / "router-two-hops.yaml")
    assert render(topology, "svg") == render(topology, "svg")


# --- the layout: nothing overlaps ---------------------------------------------------------


def _inner(box: geometry.NodeBox) -> geometry.Rect:
    """Where text may go in a node's shape."""
    inset = {"router": geometry.HEX_INSET, "nat": geometry.HEX_INSET,
             "relay": geometry.RELAY_BAR}.get(box.shape.value, 0)
    r = box.rect
    return geometry.Rect(r.x + inset + 2, r.y, r.w - 2 * inset - 4, r.h)


def _inside(inner: geometry.Rect, outer: geometry.Rect) -> bool:
    return (inner.x >= outer.x - 0.01 and inner.y >= outer.y - 0.01
            and inner.right <= outer.right + 0.01 and inner.bottom <= outer.bottom + 0.01)


def _segment_hits(rect: geometry.Rect, p: tuple, q: tuple) -> bool:
    steps = max(2, int(math.hypot(q[0] - p[0], q[1] - p[1])))
    for i in range(steps + 1):
        x, y = p[0] + (q[0] - p[0]) * i / steps, p[1] + (q[1] - p[1]) * i / steps
        if rect.x < x < rect.right and rect.y < y < rect.bottom:
            return True
    return False


@pytest.mark.parametrize("hop_limit", [1, 2, 3])
@pytest.mark.parametrize("file", FILES, ids=IDS)
def test_nothing_overlaps(file, hop_limit):
    picture = geometry.layout(build(load(file).with_imds(hop_limit=hop_limit)))
    frame = geometry.Rect(0, 0, picture.width, picture.height)
    boxes = list(picture.nodes)
    for a, b in combinations(boxes, 2):
        assert not a.rect.overlaps(b.rect, gap=8), (a.place.name, b.place.name)
    for box in boxes:
        assert _inside(box.rect, frame)
        for label in box.labels:
            assert _inside(label.box, _inner(box)), (box.place.name, label.text)
    tags = [t for line in picture.lines for t in line.tags]
    crosses = [geometry.Rect(x - 7, y - 7, 14, 14) for line in picture.lines
               for x, y in line.crosses]
    for tag in tags:
        assert _inside(tag.label.box, tag.rect), tag.label.text
        for box in boxes:
            assert not tag.rect.overlaps(box.rect, gap=4), (tag.label.text, box.place.name)
        for cross in crosses:
            assert not tag.rect.overlaps(cross, gap=2), tag.label.text
    for a, b in combinations(tags, 2):
        assert not a.rect.overlaps(b.rect, gap=2), (a.label.text, b.label.text)
    for line in picture.lines:
        for other in picture.lines:
            if other is line:
                continue
            for tag in other.tags:
                for p, q in pairwise(line.points):
                    assert not _segment_hits(tag.rect, p, q), (tag.label.text, line.title)
        for p, q in pairwise(line.points):
            for box in boxes:
                shrunk = geometry.Rect(box.rect.x + 2, box.rect.y + 2, box.rect.w - 4,
                                       box.rect.h - 4)
                assert not _segment_hits(shrunk, p, q), (line.title, box.place.name)
    heading = [picture.title, picture.subtitle, picture.verdict]
    for label in heading:
        assert _inside(label.box, frame)
        for box in boxes:
            assert not label.box.overlaps(box.rect, gap=8)
    items = list(picture.legend)
    for item in items:
        assert _inside(item.rect, picture.legend_frame)
        assert _inside(item.label.box, picture.legend_frame), item.label.text
    for a, b in combinations(items, 2):
        assert not a.label.box.overlaps(b.rect) and not a.rect.overlaps(b.label.box)
        assert not a.label.box.overlaps(b.label.box, gap=4)
    for box in boxes:
        assert not box.rect.overlaps(picture.legend_frame, gap=8)
    assert _inside(picture.legend_frame, frame)


# --- PNG ----------------------------------------------------------------------------------


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("file", FILES, ids=IDS)
def test_png_is_valid_at_twice_the_picture_size(file):
    pytest.importorskip("PIL")
    topology = load(file)
    data = render(topology, "png")
    picture = geometry.layout(build(topology))
    assert _png_size(data) == (math.ceil(picture.width * 2), math.ceil(picture.height * 2))
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.verify()


@pytest.mark.parametrize("system_fonts", [True, False], ids=["dejavu", "pillow-font"])
@pytest.mark.parametrize("file", FILES, ids=IDS)
def test_png_text_fits_the_layout(file, system_fonts, monkeypatch):
    """The PNG font, DejaVu Sans or Pillow's own, is no wider than the widths
    the layout planned with."""
    pytest.importorskip("PIL")
    if not system_fonts:
        monkeypatch.setattr(png, "FONT_DIRS", ())
    png._font.cache_clear()
    try:
        picture = geometry.layout(build(load(file)))
        for label in picture.labels():
            font = png._font(round(label.size * 4), label.bold)
            assert font.getlength(label.text) / 4 <= label.width + 0.5, label.text
    finally:
        png._font.cache_clear()


def test_the_documented_picture_is_of_the_current_layout():
    data = (ROOT / "docs" / "docker-bridge-h1.png").read_bytes()
    picture = geometry.layout(build(load(TOPOLOGIES / "docker-bridge.yaml")))
    assert _png_size(data) == (math.ceil(picture.width * 2), math.ceil(picture.height * 2))
    assert "](docker-bridge-h1.png)" in (ROOT / "docs" / "teaching.md").read_text()


def test_draw_writes_png_and_svg_files(tmp_path):
    pytest.importorskip("PIL")
    for suffix in ("png", "svg"):
        out = tmp_path / f"bridge.{suffix}"
        result = run("draw", str(TOPOLOGIES / "docker-bridge.yaml"), "--hop-limit", "2",
                     "-o", str(out))
        assert result.exit_code == 0, result.output
        assert result.output == f"wrote {out}\n"
    assert _png_size((tmp_path / "bridge.png").read_bytes())[0] > 0
    assert "docker-bridge at hop limit 2" in (tmp_path / "bridge.svg").read_text()


def test_png_without_pillow_is_one_clear_line_and_exit_2(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL now raises ImportError
    out = tmp_path / "x.png"
    result = run("draw", str(TOPOLOGIES / "docker-bridge.yaml"), "-o", str(out))
    assert result.exit_code == 2
    assert result.output == "error: PNG output needs Pillow: pip install 'hopsim[draw]'\n"
    assert not out.exists()


def test_draw_from_one_principal_draws_only_its_token_response():
    result = run("draw", str(TOPOLOGIES / "router-two-hops.yaml"), "--from", "app",
                 "--format", "mermaid")
    assert result.exit_code == 0
    assert "%% TTL of app's token response on each link it crosses" in result.output
    edges = [line for line in result.output.splitlines() if "-->" in line or "--x" in line]
    # app's path only: the attacker's token, dropped at subnet-router, is not drawn.
    assert edges == ['  n_imds -->|"TTL 2"| n_instance',
                     '  n_instance -->|"TTL 1"| n_docker0',
                     '  n_docker0 -->|"TTL 1"| n_app']


def test_draw_bad_input_is_exit_2():
    assert run("draw", str(TOPOLOGIES / "docker-bridge.yaml"), "-o", "x.gif").exit_code == 2
    assert run("draw", str(TOPOLOGIES / "docker-bridge.yaml"), "--format", "png").exit_code == 2
    result = run("draw", str(TOPOLOGIES / "docker-bridge.yaml"), "--from", "ap")
    assert result.exit_code == 2 and "did you mean 'app'" in result.output


# --- Mermaid ------------------------------------------------------------------------------

NODE = re.compile(r'^  (n_\w+)(\[\(|\(|\[\[|\[|\{\{)"([^"]*)"(\)\]|\)|\]\]|\]|\}\})$')
EDGE = re.compile(r'^  (n_\w+) (---|-\.-|-->\|"[^"|]*"\||--x\|"[^"|]*"\|) (n_\w+)$')
PAIRS = {"[(": ")]", "(": ")", "[[": "]]", "[": "]", "{{": "}}"}


def parse_flowchart(text: str) -> tuple[str, dict[str, str], list[tuple[str, str, str]]]:
    """The subset of Mermaid that hopsim writes, strictly: every line must parse."""
    lines = text.splitlines()
    assert lines[:4] == ["---", lines[1], "---", "flowchart LR"] and lines[1].startswith(
        "title: ")
    nodes: dict[str, str] = {}
    edges = []
    for line in lines[4:]:
        if line.startswith("  %% ") or re.match(r"^  classDef \w+ [\w:#,.-]+$", line):
            continue
        if match := re.match(r"^  class ((?:n_\w+,)*n_\w+) \w+$", line):
            assert all(n in nodes for n in match.group(1).split(","))
            continue
        if match := NODE.match(line):
            assert PAIRS[match.group(2)] == match.group(4), line
            assert match.group(1) not in nodes
            nodes[match.group(1)] = match.group(3)
            continue
        match = EDGE.match(line)
        assert match, f"not a flowchart statement: {line!r}"
        assert match.group(1) in nodes and match.group(3) in nodes
        edges.append((match.group(1), match.group(2), match.group(3)))
    return lines[1][len("title: "):], nodes, edges


@pytest.mark.parametrize("file", FILES, ids=IDS)
def test_mermaid_is_a_flowchart_with_every_node_and_link(file):
    topology = load(file)
    result = run("draw", str(file), "--format", "mermaid")
    assert result.exit_code == 0
    title, nodes, edges = parse_flowchart(result.output)
    assert title.startswith(f"{topology.name} at hop limit")
    names = {mermaid.node_id(n): n for n in topology.nodes}
    assert set(nodes) == set(names)
    for node_id, label in nodes.items():
        assert label.startswith(f"<b>{names[node_id]}</b>")
    linked = {frozenset((names[a], names[b])) for a, kind, b in edges if kind != "-.-"}
    assert linked == {frozenset(link) for link in topology.links}
    hosted = {(names[a], names[b]) for a, kind, b in edges if kind == "-.-"}
    assert hosted == {(n.runs_on, n.name) for n in topology.nodes.values() if n.runs_on}


def test_mermaid_marks_the_drop_with_a_cross_edge():
    text = render(load(TOPOLOGIES / "docker-bridge.yaml"), "mermaid").decode()
    assert '  n_imds --x|"TTL 1, dropped at instance"| n_instance' in text.splitlines()
    assert '  n_imds -->|"TTL 1"| n_instance' in text.splitlines()  # the instance's own


def test_mermaid_ids_are_safe_for_any_name():
    assert mermaid.node_id("untrusted-pod") == "n_untrusted_2d_pod"
    assert mermaid.node_id("end") == "n_end"

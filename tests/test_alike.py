"""Per-shape work gives what per-node work gives (issue 23): nodes written
alike are checked and built once, and every output is the same bytes as when
each node is worked out alone (build.ALIKE_FROM = None), on random fleets,
with and without mistakes in them, in YAML and JSON, in every output format.
Here every file is worked per shape however small (ALIKE_FROM = 0): the
loader does so from 64 nodes."""

from __future__ import annotations

import json
import random

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import topology_docs

from hopsim.cli import main
from hopsim.generate import dumps, fleet
from hopsim.topology import build

PLAIN = {"NO_COLOR": "1", "COLUMNS": "80", "FORCE_COLOR": None, "TERM": "dumb"}


@pytest.fixture(autouse=True)
def per_shape_however_small(monkeypatch):
    monkeypatch.setattr(build, "ALIKE_FROM", 0)
COMMANDS = [["check", "--format", fmt] for fmt in ("table", "json", "junit", "sarif",
                                                    "markdown")] + [
    ["sweep", "--hop-limits", "1-4", "--format", "json"], ["sweep", "--hop-limits", "1-3"],
    ["check", "--format", "json", "--all-principals"], ["validate"], ["show"],
    ["explain", "--format", "json"]]
MISTAKES = [  # (what a node gets, so that it is wrong), each a problem of its own
    {"colour": "red"}, {"role": "boss"}, {"runs_on": "nowhere"}, {"replicas": 0},
    {"kind": "containr"}, {"hop_limit": 2}, {"address": "10.0.0.300"}, {"masquerade": True},
]


def outputs(tmp_path, doc: dict, fmt: str) -> list[tuple[int, str]]:
    path = tmp_path / f"fleet.{fmt}"
    path.write_text(dumps(doc, fmt), encoding="utf-8")
    runner = CliRunner()
    return [(r.exit_code, r.output) for r in
            (runner.invoke(main, [*command, str(path)], env=PLAIN) for command in COMMANDS)]


def per_node(tmp_path, doc: dict, fmt: str, monkeypatch) -> list[tuple[int, str]]:
    with monkeypatch.context() as patch:
        patch.setattr(build, "ALIKE_FROM", None)
        return outputs(tmp_path, doc, fmt)


def with_mistakes(doc: dict, rng: random.Random, count: int) -> dict:
    doc = json.loads(json.dumps(doc))
    names = sorted(doc["nodes"])
    for _ in range(count):
        doc["nodes"][rng.choice(names)].update(rng.choice(MISTAKES))
    return doc


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(1, 6), st.integers(1, 5), st.integers(0, 2**16), st.integers(0, 3),
       st.sampled_from(["yaml", "json"]))
def test_a_fleet_gives_the_same_bytes_worked_per_shape_and_per_node(
        tmp_path_factory, monkeypatch, instances, containers, seed, mistakes, fmt):
    tmp_path = tmp_path_factory.mktemp("fleet")
    doc = with_mistakes(fleet(instances, containers, seed), random.Random(seed), mistakes)
    alike = outputs(tmp_path, doc, fmt)
    assert alike == per_node(tmp_path, doc, fmt, monkeypatch)
    if not mistakes:
        assert any(code == 1 or "ok" in out for code, out in alike)  # it was judged


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(topology_docs(), st.integers(0, 2), st.integers(0, 2**16),
       st.sampled_from(["yaml", "json"]))
def test_a_random_topology_gives_the_same_bytes_worked_per_shape_and_per_node(
        tmp_path_factory, monkeypatch, doc, mistakes, seed, fmt):
    tmp_path = tmp_path_factory.mktemp("topology")
    doc = with_mistakes(doc, random.Random(seed), mistakes)
    assert outputs(tmp_path, doc, fmt) == per_node(tmp_path, doc, fmt, monkeypatch)


def test_nodes_written_alike_are_worked_out_once_and_each_mistake_is_still_reported(
        tmp_path, monkeypatch):
    """The per-shape path is the one taken (else the tests above would compare
    the plain path with itself), and a shape found wrong is not cached: each
    node written with the same mistake gets its own line."""
    from hopsim.loader import load

    worked = []
    values = build._node_values
    monkeypatch.setattr(build, "_node_values", lambda raw, d: worked.append(1) or values(raw, d))
    doc = fleet(4, 12, 0)
    path = tmp_path / "fleet.json"
    path.write_text(dumps(doc, "json"), encoding="utf-8")
    assert len(load(path).nodes) == len(doc["nodes"]) > 2 * len(worked)
    for name in sorted(doc["nodes"])[:3]:
        doc["nodes"][name] = {"kind": "client", "colour": "red"}
    path.write_text(dumps(doc, "json"), encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(path)], env=PLAIN)
    assert result.exit_code == 2
    assert result.output.count("unknown key 'colour' for a client node") == 3


def test_a_node_on_itself_is_found_after_a_node_written_alike_passed():
    # runs_on checks read the node's own name: y passes, x (the same mapping) runs on itself.
    text = ("name: t\ndescription: alike but for the name\nnodes:\n  imds: {kind: imds}\n"
            "  h: {kind: host}\n  y: {kind: container, runs_on: x}\n"
            "  x: {kind: container, runs_on: x}\nlinks: [[imds, h]]\n")
    result = CliRunner().invoke(main, ["validate", "-"], input=text)
    assert result.exit_code == 2
    assert "nodes.x.runs_on: a node cannot run on itself" in result.output


def test_the_containers_of_one_host_are_checked_once(monkeypatch):
    """Written alike, runs_on and all, a host's containers share one check:
    fewer check_node calls than nodes that run on a host (else the per-shape
    path above would be the per-node one for them)."""
    from hopsim.loader import parse

    checked = []
    check_node = build.check_node
    monkeypatch.setattr(build, "check_node", lambda c, name, *a: checked.append(name)
                        or check_node(c, name, *a))
    doc = fleet(4, 12, 0)
    parse(dumps(doc, "json"), "fleet.json")
    on_hosts = [n for n, raw in doc["nodes"].items() if "runs_on" in raw]
    assert len(on_hosts) > 12
    assert len(set(checked) & set(on_hosts)) <= len(on_hosts) / 2


def test_a_circle_through_nodes_written_alike_is_checked_for_each(monkeypatch):
    """network: makes the check follow runs_on from the node's own name, so
    containers written alike are each checked: a is on the circle, b (the same
    mapping) is not, and the per-shape path says what the per-node one says."""
    text = ("name: t\ndescription: a circle of user-space stacks\nnodes:\n"
            "  imds: {kind: imds}\n  h: {kind: host}\n"
            "  a: {kind: container, network: pasta, runs_on: r}\n"
            "  b: {kind: container, network: pasta, runs_on: r}\n"
            "  r: {kind: container, network: pasta, runs_on: a}\nlinks: [[imds, h]]\n")
    result = CliRunner().invoke(main, ["validate", "-"], input=text, env=PLAIN)
    assert result.exit_code == 2
    assert "nodes.a.runs_on: runs_on goes round in a circle: a -> r -> a" in result.output
    with monkeypatch.context() as patch:
        patch.setattr(build, "ALIKE_FROM", None)
        alone = CliRunner().invoke(main, ["validate", "-"], input=text, env=PLAIN)
    assert (alone.exit_code, alone.output) == (result.exit_code, result.output)


def _built(doc: dict, alike: bool):
    from hopsim.routing import written_route_problems

    saved, build.ALIKE_FROM = build.ALIKE_FROM, 0 if alike else None
    try:
        return build.build(json.loads(json.dumps(doc)), "t.yaml", {}, {}, written_route_problems)
    finally:
        build.ALIKE_FROM = saved


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(topology_docs(), topology_docs(l4=True),
                 st.builds(fleet, st.integers(1, 5), st.integers(1, 4), st.integers(0, 99))),
       st.integers(0, 2**16), st.integers(0, 2))
def test_per_shape_and_per_node_build_the_same_topology_or_the_same_problems(doc, seed,
                                                                            mistakes):
    """Every field of every Node (addresses included), the links, the
    expectations and the adjacency; or, for a file with mistakes, the same
    problems. The per-shape path is the one that built a right file."""
    doc = with_mistakes(doc, random.Random(seed), mistakes)
    alike, each = _built(doc, True), _built(doc, False)
    assert alike[1] == each[1]
    if alike[0] is None:
        assert each[0] is None and alike[1]
        return
    first, second = alike[0], each[0]
    assert dict(first.nodes.items()) == dict(second.nodes.items())
    assert list(first.nodes) == list(second.nodes) == sorted(first.nodes)
    assert (first.links, first.expect, first.adjacency, first.copies) == (
        second.links, second.expect, second.adjacency, second.copies)
    assert sorted(first.nodes.where(lambda node: True)) == sorted(first.nodes)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(topology_docs(), topology_docs(l4=True)), st.integers(0, 2**16),
       st.integers(1, 3))
def test_the_per_shape_checks_leave_the_document_as_written(doc, seed, mistakes):
    """A file with a problem is checked again node by node, from the same
    values: the per-shape checks must not have dropped what they refused."""
    from hopsim.routing import written_route_problems

    doc = with_mistakes(doc, random.Random(seed), mistakes)
    before = json.loads(json.dumps(doc))
    build._alike(doc, "t.yaml", {}, {}, written_route_problems)
    assert doc == before


def test_a_sweep_of_a_fleet_makes_the_nodes_its_report_shows_not_every_node():
    """Routing and path classes read what nodes are written as (Nodes.like):
    a sweep makes a Node of a node's own only for the walks and the report."""
    import io

    from hopsim import analysis
    from hopsim.loader import parse
    from hopsim.report import json as json_report
    from hopsim.report import table

    doc = fleet(40, 12, 3)
    topology = parse(dumps(doc, "json"), "fleet.json")
    report = analysis.sweep(topology, range(1, 65))
    out = table.console(io.StringIO())
    out.print(table.sweep(out, [report], range(1, 65)))
    json_report.document("sweep", [report], [])
    made = {name for name, node in topology.nodes._made.items() if node.name == name}
    assert len(topology.nodes) > 500 and 0 < len(made) < len(topology.nodes) / 4


def _one_by_one(topology):
    """Path classes as classing each principal in name order finds them (the
    way the tree's per-shape classes must agree with): alike's groups, each
    principal's configured hop limit, and those groups split by it."""
    from hopsim.profiles import _Profiler

    profiler = _Profiler(topology)
    like = topology.like
    class_of = {}
    for name in topology.principals:
        key = profiler.classify(name)
        if key is not None:
            class_of[name] = key
    groups: dict = {}
    configured = topology.hop_limits()
    limits = {}
    for name in topology.principals:
        imds = profiler.router.imds_of(name)
        limits[name] = configured.get(imds) if imds else None
        key = (class_of.get(name) or ("own", name), like[name].role)
        groups.setdefault(key, []).append(name)
        groups.setdefault(key + (limits[name],), []).append(name)
    alike = [tuple(m) for k, m in groups.items() if len(k) == 2]
    split = [tuple(m) for k, m in groups.items() if len(k) == 3]
    return profiler, alike, limits, split


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(topology_docs(), topology_docs(l4=True),
                 st.builds(fleet, st.integers(1, 6), st.integers(1, 5), st.integers(0, 999))))
def test_principals_classed_per_shape_are_classed_as_one_by_one(doc):
    """Profiles classes a host's containers once and bridged apps by their
    next hop: the groups, the configured hop limits, the groups split by
    them and every principal's profile are what classing each principal in
    name order gives."""
    from hopsim.loader import parse
    from hopsim.profiles import Profiles

    topology = parse(dumps(doc, "yaml"), "t.yaml")
    found = Profiles(topology)
    profiler, alike, limits, split = _one_by_one(topology)
    assert [members for members, _ in found.alike] == alike
    assert found.limits(topology.hop_limits()) == limits
    assert [members for members, _, _ in found.split(limits)] == split
    for name in topology.principals:
        assert found[name] == profiler.profile(name), name

"""Compact fleets: `replicas` on a node and `units` counted, never expanded.

Every test here compares the compact notation with the same network written
out node by node: a replica must behave exactly as a written copy would.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from builders import count_walks
from click.testing import CliRunner

from hopsim import analysis
from hopsim.cli import main
from hopsim.loader import parse
from hopsim.profiles import profiles
from hopsim.topology import TopologyError

PLAIN = {"NO_COLOR": "1", "COLUMNS": "80", "FORCE_COLOR": None, "TERM": "dumb"}

# Two kinds of instance: a docker host (hop limit 1 starves its bridged apps)
# and a NAT instance whose private clients include attackers.
UNITS = {
    "web": {"count": 3, "nodes": {
        "imds": {"kind": "imds"},
        "instance": {"kind": "host", "forwarding": True, "masquerade": True},
        "docker0": {"kind": "bridge"},
        "app": {"kind": "container", "role": "workload", "replicas": 4},
        "agent": {"kind": "container", "runs_on": "instance", "role": "workload"}},
        "links": [["imds", "instance"], ["instance", "docker0"], ["docker0", "app"]]},
    "edge": {"count": 2, "nodes": {
        "imds": {"kind": "imds", "hop_limit": 2},
        "nat": {"kind": "nat"},
        "tenant": {"kind": "client", "role": "attacker", "replicas": 3}},
        "links": [["imds", "nat"], ["nat", "tenant"]]},
}


def compact(units=UNITS, **top) -> dict:
    return {"name": "fleet", "description": "compact", "imds": {"hop_limit": 1},
            "units": units, **top}


TEMPLATE: dict[str, str] = {}  # a written-out copy's name -> the compact node it copies


def written_out(doc: dict) -> dict:
    """The same fleet with every copy written out, as UNIT-I-NODE-J (names
    with / and # are the compact notation's own)."""
    nodes, links = {}, []
    for unit, body in doc["units"].items():
        for i in range(1, body["count"] + 1):
            def copies(name, unit=unit, i=i, body=body):
                n = body["nodes"][name].get("replicas", 1)
                base = f"{unit}-{i}-{name}"
                names = [base] if n == 1 else [f"{base}-{j}" for j in range(1, n + 1)]
                TEMPLATE.update(dict.fromkeys(names, f"{unit}/{name}"))
                return names

            for name, node in body["nodes"].items():
                node = {k: v for k, v in node.items() if k != "replicas"}
                if "runs_on" in node:
                    node["runs_on"] = f"{unit}-{i}-{node['runs_on']}"
                for copy in copies(name):
                    nodes[copy] = node
            for a, b in body["links"]:
                links += [[x, y] for x in copies(a) for y in copies(b)]
    return {"name": doc["name"], "description": "written out", "imds": doc["imds"],
            "nodes": nodes, "links": links}


def load(doc: dict, name: str = "fleet.yaml"):
    return parse(yaml.safe_dump(doc, sort_keys=False), name)


def test_nodes_stand_for_their_copies():
    t = load(compact())
    assert t.nodes["web/app"].replicas == 12 and t.nodes["web/instance"].replicas == 3
    assert t.nodes["edge/tenant"].replicas == 6 and t.units == {"web": 3, "edge": 2}
    assert len(t.nodes) == 8  # written once: 5 + 3
    assert t.label("web/app") == "web/app (×12)" and t.label("edge/nat") == "edge/nat (×2)"


@pytest.mark.parametrize("hop_limit", [1, 2, 3, 64])
def test_compact_and_written_out_fleets_agree_principal_by_principal(hop_limit):
    small, full = load(compact()), load(written_out(compact()))
    sweep_small = analysis.sweep(small, [hop_limit]).results[0]
    sweep_full = analysis.sweep(full, [hop_limit]).results[0]
    assert sweep_small.verdict is sweep_full.verdict
    by_template = {o.node: o for o in sweep_small.outcomes}
    copies = sum(small.nodes[n].replicas for n in small.principals)
    assert copies == len(full.principals) == 3 * (1 + 4 + 1) + 2 * 3
    for o in sweep_full.outcomes:
        mine = by_template[TEMPLATE[o.node]]
        assert (o.access, o.cause, o.routers, o.role) == (mine.access, mine.cause, mine.routers,
                                                         mine.role), o.node


def test_the_verdicts_at_every_hop_limit_count_copies_as_a_written_fleet_does():
    small, full = load(compact()), load(written_out(compact()))
    assert analysis.verdicts(profiles(small)) == \
        analysis.verdicts(profiles(full))
    report = analysis.sweep(small, [1])
    # At 1 the NAT (a router) drops the tenants' token: no leak; the 12 apps
    # behind the masquerading instance starve.
    assert report.results[0].reason == "web/app (×12) has no token"


def test_a_reason_names_ten_principals_then_counts_the_copies_of_the_rest():
    units = {f"u{i:02d}": {"count": 5, "nodes": {
        "imds": {"kind": "imds", "hop_limit": 2}, "nat": {"kind": "nat"},
        "evil": {"kind": "client", "role": "attacker", "replicas": 7}},
        "links": [["imds", "nat"], ["nat", "evil"]]} for i in range(12)}
    t = load(compact(units))
    result = analysis.check(t).results[0]
    assert result.verdict is analysis.Verdict.LEAK
    named = [f"u{i:02d}/evil (×35) gets token" for i in range(10)]
    assert result.reason == "; ".join(named) + "; and 70 more attackers"


def test_a_replica_costs_nothing_the_walks_are_per_path_class(monkeypatch):
    calls = count_walks(monkeypatch)
    few = compact({**UNITS, "web": {**UNITS["web"], "count": 2}})
    many = compact({**UNITS, "web": {**UNITS["web"], "count": 10**9}})
    analysis.sweep(load(few), range(1, 65))
    walked_few = len(calls)
    calls.clear()
    report = analysis.sweep(load(many), range(1, 65))
    assert len(calls) == walked_few
    assert report.results[0].reason.startswith("web/app (×4,000,000,000) has no token")


def test_expect_names_the_written_nodes_of_a_unit():
    t = load(compact(expect={1: {"web/app": "none", "web/agent": "token"},
                             2: {"web/app": "token", "edge/tenant": "token"}}))
    assert analysis.check(t).failed == []
    assert len(analysis.check(t).expectations) == 4


def test_one_copy_can_be_expanded_under_its_own_names():
    t = load(compact())
    copy, name = t.copy_of("web#2/app#3")
    assert name == "web#2/app#3" and copy.nodes[name].replicas == 1
    assert copy.nodes["web#2/agent"].runs_on == "web#2/instance"
    assert copy.graph.has_edge("web#2/docker0", "web#2/app#3")
    from hopsim.engine import play
    exchange = play(copy.with_imds(hop_limit=2), name)
    assert exchange.route.describe() == ("web#2/app#3 -> web#2/docker0 -> web#2/instance "
                                         "-> web#2/imds")
    assert exchange.outcome.access.value == "token"
    for bad in ("web#0/app#1", "web#4/app#1", "web#2/app#5", "web/app", "web#2/app",
                "web#02/app#1", "nope#1/app#1", "web#1/nope"):
        assert t.copy_of(bad) is None, bad


def write(tmp_path: Path, doc: dict, name: str = "fleet.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_trace_expands_one_copy_and_a_wrong_copy_is_one_line(tmp_path):
    path = write(tmp_path, compact())
    result = CliRunner().invoke(main, ["trace", str(path), "--from", "web#3/app#4",
                                       "--hop-limit", "2"], env=PLAIN)
    assert result.exit_code == 0, result.output
    assert "route: web#3/app#4 -> web#3/docker0 -> web#3/instance -> web#3/imds" in result.output
    wrong = CliRunner().invoke(main, ["trace", str(path), "--from", "web#4/app#1"], env=PLAIN)
    assert wrong.exit_code == 2
    (line,) = wrong.output.splitlines()
    assert "no principal 'web#4/app#1'" in line and "UNIT#I/NODE" in line


def test_reports_show_and_count_the_copies(tmp_path):
    path = write(tmp_path, compact())
    table = CliRunner().invoke(main, ["check", str(path)], env=PLAIN)
    assert "web/app (×12)" in table.output
    doc = json.loads(CliRunner().invoke(main, ["check", str(path), "--format", "json"],
                                        env=PLAIN).output)
    replicas = {g["members"][0]: g["replicas"] for g in doc["topologies"][0]["groups"]}
    assert replicas == {"edge/tenant": 6, "web/agent": 3, "web/app": 12, "web/instance": 3}


def first_problem(doc: dict):
    text = yaml.safe_dump(doc, sort_keys=False)
    with pytest.raises(TopologyError) as caught:
        parse(text, "bad.yaml")
    return caught.value.problems, text.splitlines()


def line_number(lines: list[str], needle: str) -> int:
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def test_a_mistake_in_a_unit_is_reported_at_the_units_own_line_and_key():
    bad = {**UNITS, "web": {**UNITS["web"], "nodes": {
        **UNITS["web"]["nodes"], "docker0": {"kind": "bridgee"}}}}
    (problem,), lines = first_problem(compact(bad))
    assert problem.key == "units.web.nodes.docker0.kind"
    assert problem.line == line_number(lines, "kind: bridgee")
    assert "unknown kind 'bridgee' (did you mean 'bridge'?)" in problem.message


def test_a_link_to_a_missing_node_in_a_unit_is_reported_at_that_link():
    bad = {**UNITS, "edge": {**UNITS["edge"], "links": [["imds", "nat"], ["nat", "tenantt"]]}}
    (problem,), lines = first_problem(compact(bad))
    assert problem.key == "units.edge.links.1"
    assert problem.line == line_number(lines, "- tenantt") - 1  # the pair's line: "- - nat"
    assert "missing node 'edge/tenantt'" in problem.message


@pytest.mark.parametrize("change, key, message", [
    ({"count": 0}, "units.web.count", "expected 1..1000000000, got 0"),
    ({"count": "many"}, "units.web.count", "expected an integer, got 'many'"),
    ({"nodes": {"a/b": {"kind": "client"}}}, "units.web.nodes.a/b",
     "a node name is a string without / or #, got 'a/b'"),
])
def test_unit_fields_are_checked(change, key, message):
    (problem, *_), _ = first_problem(compact({"web": {**UNITS["web"], **change}}))
    assert (problem.key, problem.message) == (key, message)


def test_replicas_only_on_containers_and_clients_and_never_on_both_ends_of_a_link():
    doc = compact({"web": {**UNITS["web"], "nodes": {
        **UNITS["web"]["nodes"], "docker0": {"kind": "bridge", "replicas": 2}}}})
    (problem,), _ = first_problem(doc)
    assert problem.key == "units.web.nodes.docker0.replicas"
    assert problem.message.startswith("unknown key 'replicas' for a bridge node")
    both = {"name": "x", "description": "x", "nodes": {
        "imds": {"kind": "imds"}, "h": {"kind": "host"},
        "a": {"kind": "client", "replicas": 2}, "b": {"kind": "client", "replicas": 3}},
        "links": [["imds", "h"], ["h", "a"], ["a", "b"]]}
    (problem,), _ = first_problem(both)
    assert problem.key == "links.2" and "give replicas to one end only" in problem.message


def test_top_level_names_cannot_take_the_copy_syntax():
    doc = {"name": "x", "description": "x", "nodes": {"imds": {"kind": "imds"},
                                                      "h#1": {"kind": "host"}},
           "links": [["imds", "h#1"]]}
    problems, _ = first_problem(doc)
    assert problems[0].key == "nodes.h#1" and "cannot contain / or #" in problems[0].message


def test_without_units_nodes_and_links_are_required():
    problems, _ = first_problem({"name": "x", "description": "x"})
    assert [p.message for p in problems] == ["missing required key 'nodes' for a topology",
                                             "missing required key 'links' for a topology"]


def test_show_says_what_the_written_nodes_stand_for(tmp_path):
    path = write(tmp_path, compact())
    result = CliRunner().invoke(main, ["show", str(path)], env=PLAIN)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    # written: web 5 + edge 3; copies: web 3 x (1+1+1+4+1) + edge 2 x (1+1+3)
    assert "8 nodes written, standing for 34 (units: web ×3, edge ×2)" in text
    assert "web/app (×12)" in text


def test_the_documented_fleet_is_two_thousand_hosts_of_48_apps_and_its_expectations_hold():
    from builders import ROOT

    readme = (ROOT / "docs" / "format.md").read_text()
    start = readme.index("name: web-fleet")
    topology = parse(readme[start:readme.index("```", start)], "web-fleet.yaml")
    assert topology.nodes["web/app"].replicas == 2000 * 48
    report = analysis.sweep(topology, [1, 2])
    assert report.failed == [] and len(report.expectations) == 3
    assert [r.verdict.value for r in report.results] == ["broken", "ok"]


def test_validate_says_what_a_compact_file_stands_for(tmp_path):
    path = write(tmp_path, compact())
    result = CliRunner().invoke(main, ["validate", str(path)], env=PLAIN)
    assert result.exit_code == 0
    assert result.output == (f"ok: {path}: fleet (8 nodes, 5 links, 4 principals; "
                             "standing for 34 nodes)\n")


def test_pictures_say_how_many_copies_a_node_stands_for(tmp_path):
    path = write(tmp_path, compact())
    result = CliRunner().invoke(main, ["draw", str(path), "--format", "mermaid"], env=PLAIN)
    assert result.exit_code == 0
    assert "container, workload, ×12" in result.output  # web/app: 3 copies x 4 replicas
    assert "<b>edge/nat</b><br/>NAT, L3, ×2\"" in result.output  # 2 copies of edge

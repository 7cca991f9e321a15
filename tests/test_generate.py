"""Generated fleets: deterministic, heterogeneous, loadable by hopsim itself."""

from __future__ import annotations

import json

from click.testing import CliRunner

from hopsim import analysis
from hopsim.cli import main
from hopsim.generate import EXTRA_NODES, UNIT_WEIGHTS, dumps, fleet
from hopsim.loader import load, parse
from hopsim.profiles import profiles


def run(*args: str):
    return CliRunner().invoke(main, list(args), env={"NO_COLOR": "1", "COLUMNS": "80"})


def test_the_same_seed_gives_a_byte_identical_file(tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    for out in (first, second):
        assert run("generate", "fleet", "--instances", "30", "--containers", "4",
                   "--seed", "7", "-o", str(out)).exit_code == 0
    assert first.read_bytes() == second.read_bytes()
    assert dumps(fleet(30, 4, 7)) == first.read_text()


def test_different_seeds_give_different_fleets():
    assert fleet(30, 4, 1) != fleet(30, 4, 2)


def test_node_count_is_close_to_instances_times_containers_plus_a_few():
    for instances, containers in ((50, 4), (200, 10)):
        nodes = len(fleet(instances, containers, 3)["nodes"])
        expected = instances * (containers + EXTRA_NODES)
        assert abs(nodes - expected) <= 0.15 * expected, (nodes, expected)


def test_every_unit_kind_and_setting_appears_in_a_50_instance_fleet():
    topology = parse(dumps(fleet(50, 4, 0)), "fleet.yaml")
    units = {name.split("-")[1] for name in topology.nodes}
    assert units == set(UNIT_WEIGHTS)
    kinds = {node.kind for node in topology.nodes.values()}
    assert kinds == {"imds", "host", "container", "client", "bridge", "nat", "proxy"}
    imds = [topology.nodes[n].imds for n in topology.imds_nodes]
    assert {s.hop_limit for s in imds} == {1, 2, 3}
    assert {s.http_tokens for s in imds} == {"required", "optional"}
    relays = [n.relay for n in topology.nodes.values() if n.kind == "proxy"]
    assert {r.adds_xff for r in relays} == {True, False}
    assert any(n.runs_on and n.kind == "container" for n in topology.nodes.values())


def test_outcomes_are_a_realistic_mix_not_one_answer():
    report = analysis.check(parse(dumps(fleet(50, 4, 0)), "fleet.yaml"))
    seen = {(o.role, o.access.value) for o in report.results[0].outcomes}
    assert {("workload", "token"), ("workload", "none"), ("attacker", "none"),
            ("attacker", "token")} <= seen


def test_a_generated_file_loads_and_check_and_sweep_run_on_it(tmp_path):
    for suffix in ("yaml", "json"):
        out = tmp_path / f"fleet.{suffix}"
        result = run("generate", "fleet", "--instances", "12", "--containers", "3",
                     "-o", str(out))
        assert result.exit_code == 0, result.output
        assert len(load(out).nodes) == len(fleet(12, 3, 0)["nodes"])
        for command in (("check",), ("sweep", "--hop-limits", "1-64")):
            result = run(*command, str(out), "--format", "json")
            assert result.exit_code in (0, 1), result.output
            assert json.loads(result.output)["errors"] == []


def test_generate_writes_yaml_to_stdout_without_a_file():
    result = run("generate", "fleet", "--instances", "6", "--containers", "2", "--seed", "5")
    assert result.exit_code == 0
    assert result.output == dumps(fleet(6, 2, 5))


# --- compact fleets -------------------------------------------------------------


def test_a_compact_fleet_is_the_same_units_whatever_its_size():
    from hopsim.generate import compact_fleet, copies

    small, large = compact_fleet(91, 8), compact_fleet(90_909, 8)
    assert list(small["units"]) == list(large["units"])  # every shape in both
    assert sum(u["count"] for u in small["units"].values()) == 91
    assert sum(u["count"] for u in large["units"].values()) == 90_909
    for fleet_doc, instances in ((small, 91), (large, 90_909)):
        # each instance stands for about 8 containers and 1 to 4 more nodes
        assert 9 * instances <= copies(fleet_doc) <= 13 * instances
    assert len(dumps(large).splitlines()) == len(dumps(small).splitlines()) < 400


def test_a_compact_fleet_and_its_written_out_copy_agree_on_every_verdict():
    """The compact fleet's units written out copy by copy (as `fleet` would
    write them) get the same verdict at every hop limit."""
    from hopsim.generate import compact_fleet

    doc = compact_fleet(50, 3)
    nodes, links = {}, []
    for unit, body in doc["units"].items():
        for i in range(body["count"]):
            def names(node, unit=unit, i=i, body=body):
                n = body["nodes"][node].get("replicas", 1)
                return [f"{unit}-{i}-{node}-{j}" for j in range(n)]

            for node, fields in body["nodes"].items():
                fields = {k: v for k, v in fields.items() if k != "replicas"}
                if "runs_on" in fields:
                    fields["runs_on"] = names(fields["runs_on"])[0]
                nodes |= dict.fromkeys(names(node), fields)
            links += [[a, b] for x, y in body["links"] for a in names(x) for b in names(y)]
    written = {"name": "w", "description": "w", "imds": doc["imds"], "nodes": nodes,
               "links": links}
    compact = parse(dumps(doc), "c.yaml")
    full = parse(json.dumps(written), "w.json")
    assert len(full.nodes) == sum(n.replicas for n in compact.nodes.values())
    assert analysis.verdicts(profiles(compact)) == \
        analysis.verdicts(profiles(full))


def test_generate_fleet_compact_writes_units(tmp_path):
    out = tmp_path / "compact.yaml"
    result = run("generate", "fleet", "--compact", "--instances", "2000", "--containers", "48",
                 "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "42 units standing for" in result.output
    topology = load(out)
    assert sum(topology.units.values()) == 2000
    assert out.stat().st_size < 20_000  # 2,000 instances x 48 containers in a few KB

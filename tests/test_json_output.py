"""The JSON report: written as it is made, byte for byte what json.dumps writes."""

from __future__ import annotations

import json

import pytest
from builders import TOPOLOGIES
from hypothesis import given
from hypothesis import strategies as st

from hopsim.analysis import GROUP_ABOVE, rows, sweep
from hopsim.generate import fleet
from hopsim.loader import load, parse
from hopsim.report import formats
from hopsim.report import json as json_report

scalars = st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False)
documents = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)


def _lazy(value):
    """`value` with every list made a Lazy array (read once, while written)."""
    if isinstance(value, dict):
        return {k: _lazy(v) for k, v in value.items()}
    if isinstance(value, list):
        return json_report.Lazy(_lazy(v) for v in value)
    return value


@given(documents)
def test_the_writer_writes_what_json_dumps_writes(document):
    expected = json.dumps(document, indent=2, sort_keys=True)
    assert "".join(json_report._encode(document, "")) == expected
    assert "".join(json_report._encode(_lazy(document), "")) == expected


tricky = st.sampled_from(["}", "{", "},", "},\n  {", "\n", '"', "\\", "é", "\u2028"])
tricky_text = st.lists(tricky, max_size=4).map("".join) | st.text(max_size=4)
plain_mappings = st.dictionaries(
    tricky_text, st.none() | st.booleans() | st.integers() | tricky_text, max_size=5)


@given(st.lists(plain_mappings, max_size=1200), st.integers(0, 3))
def test_runs_of_plain_mappings_are_written_as_json_dumps_writes_them(mappings, depth):
    """Principals go to json's C encoder in runs (json_report.RUN), whose
    separators are then re-indented: strings that look like them stay intact."""
    document = mappings
    for _ in range(depth):
        document = {"results": [document, {"n": 1}]}
    expected = json.dumps(document, indent=2, sort_keys=True)
    assert "".join(json_report._encode(document, "")) == expected


@pytest.mark.parametrize("all_principals", [False, True])
def test_a_sweep_document_is_json_dumps_of_its_values(all_principals):
    topology = load(TOPOLOGIES / "docker-in-docker.yaml")
    report = sweep(topology, [1, 2, 3])
    text = json_report.document("sweep", [report], [], all_principals)
    doc = json.loads(text)
    assert text == json.dumps(doc, indent=2, sort_keys=True) + "\n"
    assert doc["schema"] == (1 if all_principals else 2)
    if all_principals:
        principals = doc["topologies"][0]["results"][0]["principals"]
        assert [p["node"] for p in principals] == topology.principals
        assert {p["hop_limit"] for p in principals} == {1}
    else:  # 3 principals: a group each, with its outcome at each of the 3 hop limits
        groups = doc["topologies"][0]["groups"]
        assert [g["members"] for g in groups] == [[p] for p in topology.principals]
        assert [[o["hop_limit"] for o in g["outcomes"]] for g in groups] == [[1, 2, 3]] * 3


def test_a_large_document_comes_in_pieces_that_make_the_whole():
    topology = load(TOPOLOGIES / "docker-in-docker.yaml")
    reports = [sweep(topology, range(1, 65))]
    pieces = list(formats.chunks("json", "sweep", reports, []))
    assert len(pieces) > 1
    assert all(len(p) < 2 * 65536 for p in pieces)
    assert "".join(pieces) == formats.render("json", "sweep", reports, [])


def test_writing_a_sweep_keeps_no_outcome():
    """A fleet's sweep writes 81,000 principals at each of 64 hop limits: each
    outcome is made when written and let go (the results' outcomes stay unmade)."""
    report = sweep(load(TOPOLOGIES / "docker-in-docker.yaml"), range(1, 65))
    results = json.loads(json_report.document("sweep", [report], [], all_principals=True))[
        "topologies"][0]["results"]
    assert [len(r["principals"]) for r in results] == [len(report.topology.principals)] * 64
    assert all(r.outcomes._made is None for r in report.results)


# --- schema 2: alike principals grouped, as the other formats group them ----------


@pytest.fixture(scope="module")
def fleet_sweep():
    """A generated fleet of some 450 nodes, swept over every hop limit."""
    document = fleet(40, 8, seed=3)
    topology = parse(json.dumps(document), "fleet.json")
    assert len(topology.principals) > GROUP_ABOVE
    return sweep(topology, range(1, 65))


def test_a_fleet_is_one_entry_per_group_with_its_outcome_at_each_hop_limit(fleet_sweep):
    report = fleet_sweep
    doc = json.loads(json_report.document("sweep", [report], []))
    groups = doc["topologies"][0]["groups"]
    table_rows = rows(report.results[0].outcomes)  # what the table and CI formats list
    assert [g["members"][0] for g in groups] == [r.first.node for r in table_rows]
    assert sorted(m for g in groups for m in g["members"]) == sorted(report.topology.principals)
    assert all(g["principals"] == len(g["members"]) for g in groups)
    assert all([o["hop_limit"] for o in g["outcomes"]] == list(range(1, 65)) for g in groups)
    assert "principals" not in doc["topologies"][0]["results"][0]


def test_every_member_of_a_group_holds_the_groups_outcome(fleet_sweep):
    """Checked against schema 1, which lists each principal at each hop limit."""
    report = fleet_sweep
    grouped = json.loads(json_report.document("sweep", [report], []))["topologies"][0]
    every = json.loads(json_report.document("sweep", [report], [], all_principals=True))[
        "topologies"][0]
    held = {(p["node"], r["hop_limit"]): p for r in every["results"] for p in r["principals"]}
    for group in grouped["groups"]:
        for outcome in group["outcomes"]:
            for member in group["members"]:
                one = held[(member, outcome["hop_limit"])]
                assert (one["outcome"], one["cause"], one["routers"], one["role"]) == (
                    outcome["outcome"], outcome["cause"], outcome["routers"], group["role"])
            first = held[(group["members"][0], outcome["hop_limit"])]
            assert (first["reason"], first["dropped_at"]) == (outcome["reason"],
                                                             outcome["dropped_at"])


def test_grouped_json_is_a_small_part_of_every_principal(fleet_sweep):
    grouped = json_report.document("sweep", [fleet_sweep], [])
    every = json_report.document("sweep", [fleet_sweep], [], all_principals=True)
    assert len(grouped) * 10 < len(every)  # 351 principals in 21 groups: 19 times smaller

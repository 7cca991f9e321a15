"""Sweeps, path classes and the recommended hop limit."""

from __future__ import annotations

from builders import count_walks, make

from hopsim import analysis, engine
from hopsim.profiles import profiles


def fleet(instances: int, containers: int, **kwargs):
    nodes, links = {}, []
    for i in range(instances):
        nodes |= {f"imds{i}": {"kind": "imds"},
                  f"host{i}": {"kind": "host", "forwarding": True},
                  f"br{i}": {"kind": "bridge"}}
        links += [[f"imds{i}", f"host{i}"], [f"host{i}", f"br{i}"]]
        for j in range(containers):
            nodes[f"c{i}x{j}"] = {"kind": "container", "role": "workload"}
            links.append([f"br{i}", f"c{i}x{j}"])
    return make(nodes, links, **kwargs)


def test_members_of_one_path_class_get_their_own_names():
    t = fleet(3, 2)
    found = profiles(t)
    for i in range(3):
        for j in range(2):
            o = found[f"c{i}x{j}"].at(1)
            assert (o.node, o.dropped_at, o.receiver) == (f"c{i}x{j}", f"host{i}", f"c{i}x{j}")
            assert o == engine.play(t, f"c{i}x{j}").outcome


def test_one_walk_pair_serves_a_whole_path_class(monkeypatch):
    calls = count_walks(monkeypatch)
    profiles(fleet(4, 5))
    # Two classes (hosts, containers); the containers' class is walked at hop
    # limits 64 and 1, the hosts' only at 64 (no router: the hop limit is moot).
    assert len(calls) == 3


def test_recommended_hop_limit_is_the_smallest_ok_one():
    report = analysis.sweep(fleet(1, 1), [1, 2])
    assert report.recommended_hop_limit == 2
    assert [r.verdict.value for r in report.results] == ["broken", "ok"]


def test_counted_verdicts_equal_judging_every_outcome_on_the_bundled_topologies():
    from builders import TOPOLOGIES

    from hopsim.loader import load

    for path in sorted(TOPOLOGIES.glob("*.yaml")):
        found = profiles(load(path))
        counted = analysis.verdicts(found)
        judged = {h: analysis.judge(p.at(h) for p in found.values())[0]
                  for h in analysis.ALL_HOP_LIMITS}
        assert counted == judged, path.name


def test_a_large_table_shows_one_row_per_kind_of_path_and_counts_every_principal():
    import re

    from rich.console import Console

    from hopsim.report import table

    t = fleet(12, 5)  # 12 instances: 12 hosts + 60 containers = 72 principals
    report = analysis.check(t)
    out = Console(width=100, no_color=True, file=None)
    with out.capture() as captured:
        out.print(table.principals(out, report, report.results[0]))
    text = captured.get()
    assert "c0x0 and 59 more like it" in text and "host0 and 11 more like it" in text
    assert "72 principals in 2 rows" in text
    # each row's principal says which one it shows: the first by name
    assert re.findall(r"\| (\S+) and", text) == ["c0x0", "host0"]


def test_a_small_table_lists_every_principal():
    from rich.console import Console

    from hopsim.report import table

    report = analysis.check(fleet(2, 3))
    out = Console(width=100, no_color=True)
    with out.capture() as captured:
        out.print(table.principals(out, report, report.results[0]))
    text = captured.get()
    assert "more like it" not in text
    assert all(f"c{i}x{j}" in text for i in range(2) for j in range(3))

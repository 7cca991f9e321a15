"""The fleet benchmark runs and reports its ratios (no timing assertions)."""

from __future__ import annotations

import json

from hopsim import bench, engine
from hopsim.topology import parse


def test_the_benchmark_at_a_tiny_size_writes_every_ratio_as_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    bench.main(["--sizes", "200", "--repeat", "1", "--json", str(out)])
    result = json.loads(out.read_text())
    assert [row["format"] for row in result["fleets"]] == ["json", "yaml"]
    for row in result["fleets"]:
        assert 150 <= row["nodes"] <= 250
        assert set(row["ratios"]) == {"sweep/baseline", "sweep/check", "load/baseline"}
        assert all(value > 0 for value in row["ratios"].values())
        assert row["peak_rss_mib"] > 0
    assert result["trace"]["ratios"]["trace/scapy-only"] > 0
    assert "sw/base" in capsys.readouterr().out


def test_the_trace_chain_is_a_10_hop_path_whose_client_gets_the_token():
    topology = parse(bench.dumps(bench.chain(10)), "chain.yaml")
    exchange = engine.play(topology, "client")
    assert len(topology.links) == 10
    assert exchange.outcome.access.value == "token"

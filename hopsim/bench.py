"""The fleet benchmark: hopsim's cost against the least any tool must do.

    python -m hopsim.bench [--sizes 1000,10000] [--repeat 3] [--json out.json]

For a generated fleet of about each size (nodes), written once as YAML and as
JSON to a temporary folder, it measures in one process the medians of:

- baseline: read and parse the file (the fastest parser: json, or PyYAML's C
  loader), build the networkx graph, one BFS from every imds node;
- load: hopsim's loader alone (validation, addresses, line numbers);
- check at the configured hop limits and sweep over 1-64, end to end (load
  included);
and, in a fresh process, the peak memory (max RSS) of load + sweep 1-64. Once
per run: a trace with pcap of a 10-hop path against building and writing the
same packets with scapy alone. It prints a table and the ratios, and writes
them as JSON for tracking. No targets are asserted here: issue 4 has them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import reduce
from pathlib import Path
from typing import Any

import networkx as nx
import yaml
from scapy.packet import NoPayload, Packet
from scapy.utils import wrpcap

from hopsim import analysis, engine, packets
from hopsim.generate import EXTRA_NODES, dumps, fleet
from hopsim.source import MAX_FILE_BYTES
from hopsim.topology import TopologyError, load

ALL_HOP_LIMITS = range(1, 65)
CONTAINERS = 8  # per instance, about: a fleet of N nodes has N / (8 + 3) instances
TRACE_HOPS = 10


def median_time(action: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def baseline(path: Path) -> int:
    """Parse, build the graph, one BFS from every imds node."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        doc = json.loads(text)
    else:
        doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    graph = nx.Graph()
    graph.add_nodes_from(doc["nodes"])
    graph.add_edges_from(doc["links"])
    imds = [name for name, node in doc["nodes"].items() if node["kind"] == "imds"]
    # One BFS per imds node: in a fleet each instance is its own component, so
    # together they visit each node about once, as one multi-source BFS would.
    return sum(len(nx.single_source_shortest_path_length(graph, name)) for name in imds)


def peak_rss_mib(path: Path) -> float:
    """Max RSS of a fresh process that loads `path` and sweeps 1-64."""
    code = ("import sys; from hopsim import analysis; from hopsim.topology import load; "
            "analysis.sweep(load(sys.argv[1]), range(1, 65))")
    child = subprocess.Popen([sys.executable, "-c", code, str(path)])
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise RuntimeError(f"memory run failed on {path} (exit {child.returncode})")
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, else KiB
    return usage.ru_maxrss * scale / 2**20


def measure_size(size: int, folder: Path, repeat: int, seed: int) -> list[dict[str, Any]]:
    instances = max(1, round(size / (CONTAINERS + EXTRA_NODES)))
    document = fleet(instances, CONTAINERS, seed)
    rows = []
    for fmt in ("json", "yaml"):
        path = folder / f"fleet-{size}.{fmt}"
        path.write_text(dumps(document, fmt), encoding="utf-8")
        row: dict[str, Any] = {
            "size": size, "format": fmt, "nodes": len(document["nodes"]),
            "links": len(document["links"]), "instances": instances,
            "file_bytes": path.stat().st_size,
        }
        rows.append(row)
        if fmt == "yaml" and row["file_bytes"] > MAX_FILE_BYTES:
            row["skipped"] = f"larger than the YAML limit of {MAX_FILE_BYTES:,} bytes"
            continue
        try:
            topology = load(path)
        except TopologyError as error:
            raise SystemExit(f"the generated fleet does not load:\n{error}") from None
        row["principals"] = len(topology.principals)
        row["baseline_s"] = median_time(lambda p=path: baseline(p), repeat)
        row["load_s"] = median_time(lambda p=path: load(p), repeat)
        row["check_s"] = median_time(lambda p=path: analysis.check(load(p)), repeat)
        row["sweep_s"] = median_time(
            lambda p=path: analysis.sweep(load(p), ALL_HOP_LIMITS), repeat)
        row["peak_rss_mib"] = peak_rss_mib(path)
        row["ratios"] = {
            "sweep/baseline": row["sweep_s"] / row["baseline_s"],
            "sweep/check": row["sweep_s"] / row["check_s"],
            "load/baseline": row["load_s"] / row["baseline_s"],
        }
    return rows


def chain(hops: int) -> dict[str, Any]:
    """imds, the instance and routers to a client `hops` links away; the hop
    limit lets the token through."""
    routers = [f"r{i:02d}" for i in range(1, hops - 1)]
    names = ["imds", "instance", *routers, "client"]
    nodes: dict[str, Any] = {"imds": {"kind": "imds"},
                             "instance": {"kind": "host", "forwarding": True}}
    nodes |= {r: {"kind": "router"} for r in routers}
    nodes["client"] = {"kind": "client", "role": "workload"}
    return {"name": f"chain-{hops}", "description": f"a {hops}-hop path from a client to IMDS",
            "imds": {"hop_limit": hops, "http_tokens": "required"}, "nodes": nodes,
            "links": [[a, b] for a, b in itertools.pairwise(names)]}


def _layers(packet: Packet) -> list[tuple[type, dict[str, Any]]]:
    layers = []
    while not isinstance(packet, NoPayload):
        layers.append((type(packet), dict(packet.fields)))
        packet = packet.payload
    return layers


def measure_trace(folder: Path, repeat: int) -> dict[str, Any]:
    """Load + walk with every packet recorded + pcap, against scapy building
    and writing the same packets from their field values."""
    path = folder / f"chain-{TRACE_HOPS}.yaml"
    path.write_text(dumps(chain(TRACE_HOPS)), encoding="utf-8")
    pcap = folder / "trace.pcap"

    def trace() -> engine.Exchange:
        exchange = engine.play(load(path), "client", record=True)
        packets.write_pcap(pcap, exchange.packets)
        return exchange

    recorded = trace().packets
    specs = [(_layers(p), p.time) for p in recorded]

    def scapy_only() -> None:
        built = []
        for layers, stamp in specs:
            packet = reduce(lambda a, b: a / b, (cls(**fields) for cls, fields in layers))
            packet = packet.__class__(bytes(packet))
            packet.time = stamp
            built.append(packet)
        wrpcap(str(folder / "scapy.pcap"), built)

    trace_s, scapy_s = median_time(trace, repeat), median_time(scapy_only, repeat)
    return {"hops": TRACE_HOPS, "packets": len(recorded), "trace_s": trace_s,
            "scapy_only_s": scapy_s, "ratios": {"trace/scapy-only": trace_s / scapy_s}}


def run(sizes: list[int], repeat: int, seed: int = 0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hopsim-bench-") as tmp:
        folder = Path(tmp)
        rows = [row for size in sizes for row in measure_size(size, folder, repeat, seed)]
        trace = measure_trace(folder, repeat)
    return {"python": sys.version.split()[0], "repeat": repeat, "seed": seed,
            "containers_per_instance": CONTAINERS, "fleets": rows, "trace": trace}


def table(result: dict[str, Any]) -> str:
    head = (f"{'nodes':>7} {'fmt':4} {'MB':>6} {'baseline':>9} {'load':>8} {'check':>8} "
            f"{'sweep':>8} {'RSS MiB':>8} {'sw/base':>8} {'sw/check':>8}")
    lines = [head, "-" * len(head)]
    for row in result["fleets"]:
        start = f"{row['nodes']:>7} {row['format']:4} {row['file_bytes'] / 1e6:>6.2f}"
        if "skipped" in row:
            lines.append(f"{start}  skipped: {row['skipped']}")
            continue
        ratios = row["ratios"]
        lines.append(f"{start} {row['baseline_s']:>8.3f}s {row['load_s']:>7.3f}s "
                     f"{row['check_s']:>7.3f}s {row['sweep_s']:>7.3f}s "
                     f"{row['peak_rss_mib']:>8.0f} {ratios['sweep/baseline']:>8.1f} "
                     f"{ratios['sweep/check']:>8.2f}")
    trace = result["trace"]
    lines.append(f"trace --pcap, {trace['hops']} hops, {trace['packets']} packets: "
                 f"{trace['trace_s'] * 1e3:.1f} ms; scapy alone {trace['scapy_only_s'] * 1e3:.1f} "
                 f"ms; trace/scapy-only {trace['ratios']['trace/scapy-only']:.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hopsim.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000",
                        help="fleet sizes in nodes, comma-separated (default: 1000,10000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per median (default: 3)")
    parser.add_argument("--seed", type=int, default=0, help="the fleets' seed (default: 0)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    result = run(sizes, max(1, args.repeat), args.seed)
    print(table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

"""The fleet benchmark: hopsim's cost against the least any tool must do.

    python -m hopsim.bench [--sizes 1000,10000,100000] [--tiny 10000] [--repeat 3]
                           [--json out.json]

For a generated fleet of about each size (nodes), written once as JSON and as
YAML to a temporary folder, it measures in one process the medians of:

- baseline: read and parse the file (json, or PyYAML's C loader), build the
  networkx graph, one BFS from every imds node: the least any tool must do;
- floor: a skeleton of a sweep without any of hopsim's care (see floor());
- load: hopsim's loader alone (validation, addresses, line numbers);
- check at one hop limit and sweep 1-64, end to end: `hopsim check
  --hop-limit 2 FILE` and `hopsim sweep --hop-limits 1-64 FILE` run in this
  process, their table output included;
and, in a fresh process, the peak memory (max RSS) of the sweep; for the
JSON fleets, the size of the sweep's JSON report (`--format json`, alike
principals grouped: issue 14's target is 50 MB at 100,000 nodes). Every timed
run has the cyclic garbage collector paused (see median_time). Then compact
fleets (units with counts and replicas) of about 1,000 and 1,000,000 nodes,
swept 1-64 end to end; a trace with pcap of a 10-hop path against building
and writing the same packets with scapy alone; and `hopsim check -q` of a
folder of 10,000 tiny files (one fleet instance each, issue 15) against the
same instances in one file and against parsing each file alone. It prints a
table, the ratios against issue 4's targets, and writes everything as JSON
for tracking. It asserts nothing: tests/test_bench.py runs it small, without
timing.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from functools import reduce
from pathlib import Path
from typing import Any

import networkx as nx
import yaml
from click.testing import CliRunner
from scapy.packet import NoPayload, Packet
from scapy.utils import wrpcap

from hopsim import engine, packets
from hopsim.cli import main as cli
from hopsim.generate import EXTRA_NODES, compact_fleet, copies, dumps, fleet
from hopsim.kinds import KINDS
from hopsim.loader import load
from hopsim.outcome import Role
from hopsim.topology import TopologyError, node_fields
from hopsim.topology.reader import MAX_FILE_BYTES, MAX_JSON_BYTES, gc_paused

ALL_HOP_LIMITS = range(1, 65)
CONTAINERS = 8  # per instance, about: a fleet of N nodes has N / (8 + 3) instances
TRACE_HOPS = 10
TINY_FILES = 10_000  # issue 15: "10,000 tiny files take 40 s without -j"
TINY_CONTAINERS = 2  # per instance: each tiny file holds 3 to 7 nodes


def median_time(action: Callable[[], Any], repeat: int) -> float:
    """The median wall time of `action`, each run with the cyclic garbage
    collector paused (after a collection): what the collector costs depends on
    what the process already holds, which made the same baseline take from 0.4
    to 1.7 s. Paused, each measure is its own work; hopsim pauses it itself
    while loading, and this keeps the baseline from paying what hopsim does not."""
    times = []
    for _ in range(repeat):
        gc.collect()
        with gc_paused():
            start = time.perf_counter()
            action()
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def baseline(path: Path) -> int:
    """Parse, build the graph, one BFS from every imds node."""
    doc = _parsed(path)
    graph = nx.Graph()
    graph.add_nodes_from(doc["nodes"])
    graph.add_edges_from(doc["links"])
    imds = [name for name, node in doc["nodes"].items() if node["kind"] == "imds"]
    # One BFS per imds node: in a fleet each instance is its own component, so
    # together they visit each node about once, as one multi-source BFS would.
    return sum(len(nx.single_source_shortest_path_length(graph, name)) for name in imds)


def floor(path: Path) -> int:
    """A skeleton of a sweep, without hopsim's care: parse; each node's kind
    and keys against its kind's (a set comparison); links into adjacency
    lists (no networkx); one BFS from all imds nodes to next hops; one class
    key per principal (kind, next hop's kind). No problems located, no
    addresses, routes, outcomes or report. Its ratio to the baseline is what
    any Python answer costs before doing its job; what is left of 1.5 is the
    room issue 4's sweep/baseline target leaves for that job."""
    doc = _parsed(path)
    nodes = doc["nodes"]
    allowed = {kind: frozenset(node_fields(kind)) for kind in KINDS}
    principals = []
    for name, node in nodes.items():
        if not node.keys() <= allowed[node["kind"]]:
            raise ValueError(f"{name}: unknown key")
        if KINDS[node["kind"]].principal:
            principals.append(name)
    adjacency: dict[str, list[str]] = {name: [] for name in nodes}
    for a, b in doc["links"]:
        adjacency[a].append(b)
        adjacency[b].append(a)
    imds = sorted(name for name, node in nodes.items() if node["kind"] == "imds")
    distance, next_hop = dict.fromkeys(imds, 0), {}
    queue = deque(imds)
    while queue:
        here = queue.popleft()
        for there in adjacency[here]:
            if there not in distance:
                distance[there] = distance[here] + 1
                next_hop[there] = here
                queue.append(there)
    classes: dict[tuple[str, str], list[str]] = {}
    for name in principals:
        hop = next_hop.get(nodes[name].get("runs_on") or name)
        key = (nodes[name]["kind"], nodes[hop]["kind"] if hop else "")
        classes.setdefault(key, []).append(name)
    return sum(map(len, classes.values()))  # the principals classified


def _parsed(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


PLAIN = {"NO_COLOR": "1", "COLUMNS": "80", "TERM": "dumb"}  # what a CI log gets
TARGETS = {  # issue 4: ratios of medians, measured side by side
    "sweep/baseline": 1.5, "sweep/check": 1.2, "compact large/small": 3.0,
    "trace/scapy-only": 3.0,
}
MAX_RSS_MIB = 2048
MAX_JSON_MB = 50  # issue 14: the default JSON of a 100k-node sweep over 1-64


def command(*args: str) -> Callable[[], None]:
    """A hopsim command run end to end in this process, its output captured."""
    def run() -> None:
        result = CliRunner().invoke(cli, list(args), env=PLAIN)
        if result.exit_code not in (0, 1):  # 1: findings, as fleets have
            raise RuntimeError(f"hopsim {' '.join(args)} failed:\n{result.output}")
    return run


def peak_rss_mib(*args: str) -> float:
    """Max RSS of a fresh process running a hopsim command."""
    child = subprocess.Popen([sys.executable, "-m", "hopsim.cli", *args],
                             stdout=subprocess.DEVNULL, env={**os.environ, **PLAIN})
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise RuntimeError(f"memory run failed: hopsim {' '.join(args)}")
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
        limit = MAX_JSON_BYTES if fmt == "json" else MAX_FILE_BYTES
        if row["file_bytes"] > limit:
            row["skipped"] = f"larger than the {fmt.upper()} limit of {limit:,} bytes"
            continue
        try:
            topology = load(path)
        except TopologyError as error:
            raise SystemExit(f"the generated fleet does not load:\n{error}") from None
        row["principals"] = len(topology.principals)
        del topology
        sweep = ("sweep", "--hop-limits", "1-64", str(path))
        row["baseline_s"] = median_time(lambda p=path: baseline(p), repeat)
        row["floor_s"] = median_time(lambda p=path: floor(p), repeat)
        row["load_s"] = median_time(lambda p=path: load(p), repeat)
        row["check_s"] = median_time(command("check", "--hop-limit", "2", str(path)), repeat)
        row["sweep_s"] = median_time(command(*sweep), repeat)
        row["peak_rss_mib"] = peak_rss_mib(*sweep)
        if fmt == "json":  # the report is the same whatever the input format
            report = folder / f"sweep-{size}.json"
            command(*sweep, "--output", f"json:{report}", "-q")()
            row["json_report_bytes"] = report.stat().st_size
            report.unlink()
        row["ratios"] = {
            "sweep/baseline": row["sweep_s"] / row["baseline_s"],
            "sweep/check": row["sweep_s"] / row["check_s"],
            "load/baseline": row["load_s"] / row["baseline_s"],
            "floor/baseline": row["floor_s"] / row["baseline_s"],
        }
    return rows


def measure_compact(sizes: tuple[int, int], folder: Path, repeat: int) -> dict[str, Any]:
    """Compact fleets of about each size in nodes (replicas and unit copies
    counted), swept 1-64 end to end; the ratio of the larger to the smaller."""
    rows = []
    for size in sizes:
        document = compact_fleet(max(1, round(size / (CONTAINERS + EXTRA_NODES))), CONTAINERS)
        path = folder / f"compact-{size}.yaml"
        path.write_text(dumps(document), encoding="utf-8")
        rows.append({"size": size, "nodes": copies(document), "units": len(document["units"]),
                     "file_bytes": path.stat().st_size,
                     "sweep_s": median_time(command("sweep", "--hop-limits", "1-64",
                                                    str(path)), repeat)})
    small, large = rows
    return {"fleets": rows, "ratios": {"compact large/small": large["sweep_s"] / small["sweep_s"]}}


def chain(hops: int) -> dict[str, Any]:
    """imds, the instance and routers to a client `hops` links away; the hop
    limit lets the token through."""
    routers = [f"r{i:02d}" for i in range(1, hops - 1)]
    names = ["imds", "instance", *routers, "client"]
    nodes: dict[str, Any] = {"imds": {"kind": "imds"},
                             "instance": {"kind": "host", "forwarding": True}}
    nodes |= {r: {"kind": "router"} for r in routers}
    nodes["client"] = {"kind": "client", "role": Role.WORKLOAD.value}
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


def tiny_files(instances: int, folder: Path, seed: int) -> tuple[Path, Path]:
    """A fleet of small instances written twice: one YAML file per instance in
    a folder, and the whole fleet in one file. `fleet` names every node
    `i<index>-<kind>-<part>`, so an instance is the nodes of one index."""
    document = fleet(instances, TINY_CONTAINERS, seed)
    units: dict[str, dict[str, Any]] = {}
    for name, node in document["nodes"].items():
        unit = units.setdefault(name.split("-", 1)[0], {"nodes": {}, "links": []})
        unit["nodes"][name] = node
    for a, b in document["links"]:
        units[a.split("-", 1)[0]]["links"].append([a, b])
    files = folder / "tiny"
    files.mkdir()
    for name, unit in units.items():
        (files / f"{name}.yaml").write_text(
            dumps({**document, "name": name, "description": "one instance of a fleet", **unit}),
            encoding="utf-8")
    one = folder / f"tiny-fleet-{instances}.yaml"
    one.write_text(dumps(document), encoding="utf-8")
    return files, one


def measure_tiny(instances: int, folder: Path, repeat: int, seed: int) -> dict[str, Any]:
    """`hopsim check -q FOLDER` of one tiny file per instance, against `check
    -q` of the same instances in one file and against parsing each file alone
    (PyYAML's C loader): what a file costs beyond its principals' work."""
    files, one = tiny_files(instances, folder, seed)
    paths = sorted(files.iterdir())
    files_s = median_time(command("check", "-q", str(files)), repeat)
    one_s = median_time(command("check", "-q", str(one)), repeat)
    parse_s = median_time(lambda: [_parsed(path) for path in paths], repeat)
    return {"files": len(paths), "principals": len(load(one).principals),
            "bytes": sum(path.stat().st_size for path in paths), "files_s": files_s,
            "one_file_s": one_s, "parse_s": parse_s,
            "ratios": {"tiny files/one file": files_s / one_s,
                       "tiny files/parse": files_s / parse_s}}


def run(sizes: list[int], repeat: int, seed: int = 0,
        compact: tuple[int, int] = (1000, 1_000_000), tiny: int = TINY_FILES) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hopsim-bench-") as tmp:
        folder = Path(tmp)
        rows = [row for size in sizes for row in measure_size(size, folder, repeat, seed)]
        small = measure_compact(compact, folder, repeat)
        trace = measure_trace(folder, repeat)
        files = measure_tiny(tiny, folder, repeat, seed)
    return {"python": sys.version.split()[0], "repeat": repeat, "seed": seed,
            "containers_per_instance": CONTAINERS, "fleets": rows, "compact": small,
            "trace": trace, "tiny_files": files,
            "targets": {**TARGETS, "peak_rss_mib": MAX_RSS_MIB, "json_report_mb": MAX_JSON_MB},
            "verdicts": verdicts(rows, small, trace)}


def verdicts(rows: list[dict[str, Any]], compact: dict[str, Any],
             trace: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target against its measure: at the largest size measured per format."""
    out = []
    for fmt in ("json", "yaml"):
        measured = [r for r in rows if r["format"] == fmt and "skipped" not in r]
        if not measured:
            continue
        row = max(measured, key=lambda r: r["nodes"])
        at = f"{row['nodes']:,} nodes, {fmt}"
        out += [{"target": f"{name} <= {TARGETS[name]}", "at": at, "value": row["ratios"][name],
                 "met": row["ratios"][name] <= TARGETS[name]}
                for name in ("sweep/baseline", "sweep/check")]
        out.append({"target": f"peak RSS <= {MAX_RSS_MIB} MiB", "at": at,
                    "value": row["peak_rss_mib"], "met": row["peak_rss_mib"] <= MAX_RSS_MIB})
        if "json_report_bytes" in row:
            mb = row["json_report_bytes"] / 1e6
            out.append({"target": f"JSON report MB <= {MAX_JSON_MB}", "at": at, "value": mb,
                        "met": mb <= MAX_JSON_MB})
    value = compact["ratios"]["compact large/small"]
    small, large = (f"{row['nodes']:,}" for row in compact["fleets"])
    out.append({"target": f"compact large/small <= {TARGETS['compact large/small']}",
                "at": f"{large} vs {small} nodes", "value": value,
                "met": value <= TARGETS["compact large/small"]})
    value = trace["ratios"]["trace/scapy-only"]
    out.append({"target": f"trace/scapy-only <= {TARGETS['trace/scapy-only']}",
                "at": f"{trace['hops']}-hop path", "value": value,
                "met": value <= TARGETS["trace/scapy-only"]})
    return out


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
                     f"{row['peak_rss_mib']:>8.0f} {ratios['sweep/baseline']:>8.2f} "
                     f"{ratios['sweep/check']:>8.2f}")
    floors = [row for row in result["fleets"] if "floor_s" in row]
    if floors:
        lines.append("floor (parse, keys, adjacency, BFS, class keys; no checks, addresses, "
                     "outcomes):")
        lines += [f"{row['nodes']:>7} {row['format']:4} {row['floor_s']:>8.3f}s = "
                  f"{row['ratios']['floor/baseline']:.2f} x baseline" for row in floors]
    for row in result["compact"]["fleets"]:
        lines.append(f"compact fleet, {row['nodes']:,} nodes in {row['units']} units "
                     f"({row['file_bytes'] / 1e3:.0f} kB): sweep 1-64 {row['sweep_s']:.3f}s")
    trace = result["trace"]
    lines.append(f"trace --pcap, {trace['hops']} hops, {trace['packets']} packets: "
                 f"{trace['trace_s'] * 1e3:.1f} ms; scapy alone {trace['scapy_only_s'] * 1e3:.1f} "
                 "ms")
    lines += [f"JSON report of sweep 1-64, {row['nodes']:,} nodes: "
              f"{row['json_report_bytes'] / 1e6:.2f} MB (alike principals grouped)"
              for row in result["fleets"] if "json_report_bytes" in row]
    tiny = result["tiny_files"]
    ratios = tiny["ratios"]
    lines.append(f"check -q of {tiny['files']:,} tiny files ({tiny['principals']:,} principals):"
                 f" {tiny['files_s']:.2f}s, {tiny['files_s'] / tiny['files'] * 1e3:.2f} ms a file")
    lines.append(f"  = {ratios['tiny files/one file']:.1f} x the same in one file "
                 f"({tiny['one_file_s']:.2f}s), {ratios['tiny files/parse']:.1f} x parsing "
                 f"each file alone ({tiny['parse_s']:.2f}s)")
    lines += ["", "targets (issues 4 and 14):"]
    for v in result["verdicts"]:
        lines.append(f"  {'met    ' if v['met'] else 'NOT MET'} {v['target']:<30} "
                     f"{v['value']:>9.2f}  ({v['at']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hopsim.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000",
                        help="fleet sizes in nodes, comma-separated (default: 1000,10000,100000)")
    parser.add_argument("--compact", default="1000,1000000",
                        help="the two compact fleet sizes compared (default: 1000,1000000)")
    parser.add_argument("--tiny", type=int, default=TINY_FILES,
                        help=f"tiny files checked as one folder (default: {TINY_FILES})")
    parser.add_argument("--repeat", type=int, default=3, help="runs per median (default: 3)")
    parser.add_argument("--seed", type=int, default=0, help="the fleets' seed (default: 0)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    small, large = (int(s) for s in args.compact.split(","))
    result = run(sizes, max(1, args.repeat), args.seed, (small, large), max(1, args.tiny))
    print(table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

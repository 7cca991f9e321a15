"""The fleet benchmark: hopsim's cost against the least any tool must do.

    python -m hopsim.bench [--sizes 1000,10000,100000] [--tiny 10000] [--repeat 3]
                           [--pairs 5] [--whole-only] [--json out.json]

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
same instances in one file and against parsing each file alone. Last, issue
23's comparison of whole processes, side by side (--whole-only alone): the
sweep of `generate fleet --instances 2000 --containers 48 --seed 7` in a fresh
process against a fresh process doing the baseline, alternating, medians of
--pairs pairs with their peak RSS, and the same for compact fleets of 1M and
1k nodes. It prints a table, the ratios against issue 4's and 23's targets,
and writes everything as JSON for tracking. It asserts nothing:
tests/test_bench.py runs it small, without timing.
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


WHOLE_FLEET = (2000, 48, 7)  # issue 23: `generate fleet --instances 2000 --containers 48 --seed 7`
WHOLE_TARGETS = {"json": 1.5, "yaml": 0.6}  # issue 23: hopsim's process / the baseline's
WHOLE_RSS_MIB = 494  # issue 23: the sweep's peak RSS before its work
# The least any tool does, as its own fresh process: read the file, build the
# networkx graph, one BFS per imds. No garbage collector paused: a plain script.
BASELINE_PROCESS = """\
import json, sys
import networkx as nx
import yaml
path = sys.argv[1]
with open(path, encoding="utf-8") as file:
    doc = json.load(file) if path.endswith(".json") else yaml.load(file, Loader=yaml.CSafeLoader)
graph = nx.Graph()
graph.add_nodes_from(doc["nodes"])
graph.add_edges_from(doc["links"])
imds = [name for name, node in doc["nodes"].items() if node["kind"] == "imds"]
sum(len(nx.single_source_shortest_path_length(graph, name)) for name in imds)
"""


def timed_process(argv: list[str]) -> tuple[float, float]:
    """Wall time and peak RSS (MiB) of a fresh process, its output to /dev/null.
    Linux keeps a process's peak RSS across exec, so a child forked from this
    (large) process would count this one's pages: /usr/bin/time, small, starts
    it and reports its own child's peak; without it, the child's own wait4."""
    timer = Path("/usr/bin/time")
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as report:
        wrapped = [str(timer), "-f", "%M", "-o", report.name, *argv] if timer.exists() else argv
        start = time.perf_counter()
        child = subprocess.Popen(wrapped, stdout=subprocess.DEVNULL,
                                 env={**os.environ, **PLAIN})
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode not in (0, 1):  # 1: findings, as fleets have
            raise RuntimeError(f"{' '.join(argv)} failed with exit {child.returncode}")
        if timer.exists():
            return wall, int(report.read().split()[-1]) / 1024  # %M: KiB
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, else KiB
    return wall, usage.ru_maxrss * scale / 2**20


def paired(first: list[str], second: list[str], pairs: int) -> dict[str, Any]:
    """`first` and `second` run alternately (which goes first alternates too),
    `pairs` times: the median of the pairs' ratios first/second, each process's
    median time and peak RSS. Paired, a busy machine slows both sides alike."""
    runs: list[tuple[tuple[float, float], tuple[float, float]]] = []
    for index in range(pairs):
        if index % 2:
            b = timed_process(second)
            a = timed_process(first)
        else:
            a = timed_process(first)
            b = timed_process(second)
        runs.append((a, b))
    return {"ratio": statistics.median(a[0] / b[0] for a, b in runs),
            "first_s": statistics.median(a[0] for a, _ in runs),
            "second_s": statistics.median(b[0] for _, b in runs),
            "first_rss_mib": max(a[1] for a, _ in runs),
            "second_rss_mib": max(b[1] for _, b in runs),
            "ratios": [a[0] / b[0] for a, b in runs]}


def measure_whole(folder: Path, pairs: int, shape: tuple[int, int, int] = WHOLE_FLEET,
                  compact: tuple[int, int] = (1000, 1_000_000)) -> dict[str, Any]:
    """Issue 23's comparison, whole processes side by side: `hopsim sweep
    --hop-limits 1-64` of the generated fleet (JSON and YAML; table to
    /dev/null) against a fresh process doing the baseline (BASELINE_PROCESS);
    then the sweep of a compact fleet of about compact[1] nodes against one of
    compact[0]."""
    instances, containers, seed = shape
    document = fleet(instances, containers, seed)
    hopsim = [sys.executable, "-m", "hopsim.cli", "sweep", "--hop-limits", "1-64"]
    rows = []
    for fmt in ("json", "yaml"):
        path = folder / f"whole-fleet.{fmt}"
        path.write_text(dumps(document, fmt), encoding="utf-8")
        rows.append({"format": fmt, "nodes": len(document["nodes"]),
                     "file_bytes": path.stat().st_size,
                     **paired([*hopsim, str(path)],
                              [sys.executable, "-c", BASELINE_PROCESS, str(path)], pairs)})
    paths = []
    for size in compact:
        unit = compact_fleet(max(1, round(size / (CONTAINERS + EXTRA_NODES))), CONTAINERS)
        path = folder / f"whole-compact-{size}.yaml"
        path.write_text(dumps(unit), encoding="utf-8")
        paths.append((path, copies(unit)))
    (small_path, small_nodes), (large_path, large_nodes) = paths
    return {"fleet": {"instances": instances, "containers": containers, "seed": seed},
            "pairs": pairs, "rows": rows,
            "compact": {"small_nodes": small_nodes, "large_nodes": large_nodes,
                        **paired([*hopsim, str(large_path)], [*hopsim, str(small_path)],
                                 pairs)}}


def whole_verdicts(whole: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 23's targets against the whole-process measures."""
    out = []
    for row in whole["rows"]:
        fmt, at = row["format"], f"{row['nodes']:,} nodes, {row['format']}"
        out.append({"target": f"process/baseline <= {WHOLE_TARGETS[fmt]}", "at": at,
                    "value": row["ratio"], "met": row["ratio"] <= WHOLE_TARGETS[fmt]})
        out.append({"target": f"peak RSS <= {WHOLE_RSS_MIB} MiB", "at": at,
                    "value": row["first_rss_mib"],
                    "met": row["first_rss_mib"] <= WHOLE_RSS_MIB})
    compact = whole["compact"]
    out.append({"target": f"compact large/small <= {TARGETS['compact large/small']}",
                "at": f"{compact['large_nodes']:,} vs {compact['small_nodes']:,} nodes",
                "value": compact["ratio"],
                "met": compact["ratio"] <= TARGETS["compact large/small"]})
    return out


def whole_table(whole: dict[str, Any]) -> str:
    shape = whole["fleet"]
    lines = [f"whole processes, side by side ({whole['pairs']} pairs, medians): hopsim sweep "
             f"--hop-limits 1-64 of `generate fleet --instances {shape['instances']} "
             f"--containers {shape['containers']} --seed {shape['seed']}`, table to /dev/null,",
             "against a fresh process doing json.load / yaml CSafeLoader + networkx graph + "
             "one BFS per imds:",
             f"{'fmt':4} {'nodes':>7} {'MB':>6} {'hopsim':>8} {'baseline':>9} {'ratio':>6} "
             f"{'RSS MiB':>8} {'base RSS':>8}"]
    for row in whole["rows"]:
        lines.append(f"{row['format']:4} {row['nodes']:>7} {row['file_bytes'] / 1e6:>6.2f} "
                     f"{row['first_s']:>7.2f}s {row['second_s']:>8.2f}s {row['ratio']:>6.2f} "
                     f"{row['first_rss_mib']:>8.0f} {row['second_rss_mib']:>8.0f}")
    compact = whole["compact"]
    lines.append(f"compact sweep 1-64, {compact['large_nodes']:,} nodes {compact['first_s']:.2f}s"
                 f" vs {compact['small_nodes']:,} nodes {compact['second_s']:.2f}s: "
                 f"{compact['ratio']:.2f} x")
    lines += ["", "targets (issue 23, whole processes):"]
    lines += [f"  {'met    ' if v['met'] else 'NOT MET'} {v['target']:<30} {v['value']:>9.2f}  "
              f"({v['at']})" for v in whole_verdicts(whole)]
    return "\n".join(lines)


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
    parser.add_argument("--pairs", type=int, default=5,
                        help="paired whole-process runs per median (default: 5)")
    parser.add_argument("--whole-fleet", default=",".join(map(str, WHOLE_FLEET)),
                        metavar="INSTANCES,CONTAINERS,SEED",
                        help="the whole-process fleet (default: %(default)s)")
    parser.add_argument("--whole-only", action="store_true",
                        help="measure only the whole-process comparison (issue 23)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    small, large = (int(s) for s in args.compact.split(","))
    instances, containers, seed = (int(s) for s in args.whole_fleet.split(","))
    result: dict[str, Any] = {"python": sys.version.split()[0]}
    if not args.whole_only:
        result = run(sizes, max(1, args.repeat), args.seed, (small, large), max(1, args.tiny))
        print(table(result))
        print()
    with tempfile.TemporaryDirectory(prefix="hopsim-bench-") as tmp:
        whole = measure_whole(Path(tmp), max(1, args.pairs), (instances, containers, seed),
                              (small, large))
    result["whole_process"] = {**whole, "verdicts": whole_verdicts(whole)}
    print(whole_table(whole))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

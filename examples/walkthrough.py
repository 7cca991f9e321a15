"""A walk through hopsim's Python API: load a topology, play one principal's
IMDSv2 exchange, sweep the hop limits, and trace the packets to a pcap.

    python examples/walkthrough.py

Its output is checked against walkthrough.out by tests/test_examples.py.
"""

import tempfile
from pathlib import Path

import hopsim

TOPOLOGIES = Path(__file__).resolve().parent.parent / "topologies"

# 1. Load: a topology is data (nodes, links, expectations), validated on load.
topology = hopsim.load(TOPOLOGIES / "docker-bridge.yaml")
print(f"{topology.name}: {len(topology.nodes)} nodes, {len(topology.links)} links")
print(f"principals: {', '.join(topology.principals)}")
print(f"hop limit as configured: {topology.hop_limits()['imds']}")

# 2. Play: one principal's exchange, as real packets, at a hop limit of your choice.
for hop_limit in (1, 2):
    exchange = hopsim.play(topology.with_imds(hop_limit=hop_limit), "app")
    outcome = exchange.outcome
    print(f"\nhop limit {hop_limit}: app gets {outcome.access.value}"
          f" (dropped at: {outcome.dropped_at})")
    print(f"  route: {exchange.route.describe()}")
    print(f"  why: {hopsim.reason(outcome)}")

# 3. Sweep: every principal at each hop limit, a verdict, and the recommendation.
report = hopsim.sweep(topology, range(1, 5))
print()
for result in report.results:
    holds = ", ".join(f"{o.node} {o.access.value}" for o in result.outcomes)
    print(f"hop limit {result.hop_limit}: {result.verdict.value:<6} {holds}")
print(f"recommended hop limit: {report.recommended_hop_limit}")
passed = sum(e.passed for e in report.expectations)
print(f"expect entries in the file: {passed} of {len(report.expectations)} hold")

# 4. Trace: record every packet at every hop, and write them to a pcap.
exchange = hopsim.play(topology, "app", record=True)  # hop limit 1, as configured
print("\nthe token response at hop limit 1, hop by hop:")
for hop in exchange.hops:
    if hop.message == "200 OK (token)":
        ttl = hop.ttl_in if hop.ttl_in is not None else hop.ttl_out
        ttl_text = f"TTL {ttl}" if ttl is not None else ""
        print(f"  {hop.node:<9} {hop.action.value:<10} {ttl_text:<7} {hop.detail}")
with tempfile.TemporaryDirectory() as folder:
    pcap = Path(folder) / "app.pcap"
    hopsim.write_pcap(pcap, exchange.packets)
    packets = hopsim.read_pcap(pcap)
print(f"wrote {len(exchange.packets)} packets to app.pcap and read back {len(packets)}")
tokens = [p for p in packets if p.haslayer("TCP") and p["TCP"].sport == 80
          and bytes(p["TCP"].payload).startswith(b"HTTP/1.1 200")]
print(f"  the token response in it, once per hop: TTL {', '.join(str(p.ttl) for p in tokens)}")
icmp = [p for p in packets if p.haslayer("ICMP")]
for p in icmp:
    print(f"  ICMP type {p['ICMP'].type} code {p['ICMP'].code} from {p['IP'].src}"
          f" to {p['IP'].dst}, quoting a packet with TTL {p['IPerror'].ttl}")

"""hopsim: who gets the IMDSv2 token, hop by hop.

The public API; notebooks and scripts import from here, never from modules:

    import hopsim
    topology = hopsim.load("topologies/docker-bridge.yaml")
    report = hopsim.sweep(topology, range(1, 4))
    exchange = hopsim.play(topology.with_imds(hop_limit=2), "app", record=True)
    hopsim.write_pcap("app.pcap", exchange.packets)
"""

__version__ = "0.1.0"

from hopsim.analysis import Report, Result, Verdict, check, sweep
from hopsim.engine import Access, Exchange, Hop, Outcome, play
from hopsim.packets import read_pcap, write_pcap
from hopsim.routing import Route, Router
from hopsim.topology import Problem, Topology, TopologyError, load, parse

__all__ = [
    "Access", "Exchange", "Hop", "Outcome", "Problem", "Report", "Result", "Route", "Router",
    "Topology", "TopologyError", "Verdict", "check", "load", "parse", "play", "read_pcap",
    "sweep", "write_pcap",
]

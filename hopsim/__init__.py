"""hopsim: who gets the IMDSv2 token, hop by hop.

The public API; notebooks and scripts import from here, never from modules:

    import hopsim
    topology = hopsim.load("topologies/docker-bridge.yaml")
    report = hopsim.sweep(topology, range(1, 4))
    exchange = hopsim.play(topology.with_imds(hop_limit=2), "app", record=True)
    print(exchange.outcome.access, hopsim.reason(exchange.outcome))
    hopsim.write_pcap("app.pcap", exchange.packets)
"""

__version__ = "0.1.0"

import importlib as _importlib
from typing import Any as _Any

# Each name of the API and its module, imported on first use: `import hopsim`
# costs nothing until then, so the `hopsim` command can take Ctrl-C from its
# first instruction (hopsim.interrupts), before scapy's ~0.3 s of imports.
_HOMES = {
    "Report": "analysis", "Result": "analysis", "check": "analysis", "sweep": "analysis",
    "Exchange": "engine", "Hop": "engine", "play": "engine",
    "Access": "outcome", "Cause": "outcome", "Outcome": "outcome", "Role": "outcome",
    "Verdict": "outcome",
    "reason": "report.wording",
    "read_pcap": "packets", "write_pcap": "packets",
    "Route": "routing", "Router": "routing",
    "Problem": "topology", "Topology": "topology", "TopologyError": "topology",
    "load": "loader", "parse": "loader",
}

__all__ = sorted(_HOMES, key=lambda name: (name[0].islower(), name))


def __getattr__(name: str) -> _Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'hopsim' has no attribute {name!r}")
    value = getattr(_importlib.import_module(f"hopsim.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*(n for n in globals() if not n.startswith("_")), *_HOMES})

"""Topology files -> `Topology` values, with every problem located.

A topology is data: nodes, links, expectations. Nothing here runs it. The
loader collects every problem of a file (file, line, key, what was expected)
instead of stopping at the first, and nothing in a file can make it read
another file, recurse without bound or hang.

The rooms, each importing only those above it:

    reader.py    text -> plain values with lines (YAML, JSON), bounded
    model.py     the values: Node, Topology, Problem and the errors
    formats.py   the file format's tables; schema.py: the JSON Schema from them
    checker.py   Checker, single nodes, expectations; links.py, units.py
    build.py     plain values -> Topology or every problem

Files become topologies in hopsim.loader (`from hopsim.loader import load`),
above this package and hopsim.routing: the routes a file writes are checked
by the routing model, which is built on the values here. The values
themselves are imported from here: `from hopsim.topology import Topology`.
"""

from hopsim.topology.checker import closest
from hopsim.topology.formats import (
    FAMILIES,
    IMDS_FIELDS,
    KIND_FIELDS,
    MAX_REPLICAS,
    NODE_FIELDS,
    OUTCOMES,
    PRINCIPAL_KEYS,
    RESERVED,
    TOP_FIELDS,
    TOPOLOGY_KEYS,
    UNIT_FIELDS,
    Field,
    node_fields,
)
from hopsim.topology.model import (
    FACT_MARKER,
    FACT_MARKERS,
    Node,
    NotATopology,
    Problem,
    Topology,
    TopologyError,
)

__all__ = [
    "FACT_MARKER", "FACT_MARKERS", "FAMILIES", "IMDS_FIELDS", "KIND_FIELDS", "MAX_REPLICAS",
    "NODE_FIELDS", "OUTCOMES", "PRINCIPAL_KEYS", "RESERVED", "TOPOLOGY_KEYS", "TOP_FIELDS",
    "UNIT_FIELDS", "Field", "Node", "NotATopology", "Problem", "Topology", "TopologyError",
    "closest", "node_fields",
]

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
    loader.py    files, standard input and folders -> Topology

Callers import from here: `from hopsim.topology import load, Topology`.
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
from hopsim.topology.loader import (
    STDIN,
    STDIN_NAME,
    TOPOLOGY_SUFFIXES,
    Found,
    Override,
    find,
    from_values,
    is_topology,
    load,
    load_text,
    parse,
    read_stdin,
    topology_files,
    what_if,
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
    "NODE_FIELDS", "OUTCOMES", "PRINCIPAL_KEYS", "RESERVED", "STDIN", "STDIN_NAME",
    "TOPOLOGY_KEYS", "TOPOLOGY_SUFFIXES", "TOP_FIELDS", "UNIT_FIELDS", "Field", "Found",
    "Node", "NotATopology", "Override", "Problem", "Topology", "TopologyError", "closest",
    "find", "from_values", "is_topology", "load", "load_text", "node_fields", "parse",
    "read_stdin", "topology_files", "what_if",
]

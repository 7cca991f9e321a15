"""Addresses the loader gives nodes: deterministic, unique, and formatted as
the ipaddress module would (the loader formats them itself, for speed)."""

from __future__ import annotations

import ipaddress
from itertools import islice

from builders import make
from hypothesis import given
from hypothesis import strategies as st

from hopsim.topology.build import _POOL4, _POOL6, _hosts


@given(st.integers(min_value=22, max_value=30), st.integers(min_value=0))
def test_ipv4_pool_addresses_read_as_ipaddress_writes_them(prefix, index):
    size = 1 << (32 - prefix)
    start = int(_POOL4.network_address) + index % ((1 << 24) // size) * size
    network = ipaddress.IPv4Network((start, prefix))
    written = [str(network[i]) for i in range(1, network.num_addresses - 1)]
    written = [a for a in written if not a.endswith((".0", ".255"))]
    assert list(_hosts(network)) == written


def test_ipv6_pool_addresses_are_compressed_as_ipaddress_compresses_them():
    start = int(_POOL6.network_address)
    count = (1 << 17) + 3  # past fd00:1::ffff and fd00:1::1:ffff
    written = [str(ipaddress.IPv6Address(start + i)) for i in range(1, count + 1)]
    assert list(islice(_hosts(_POOL6), count)) == written


@given(st.integers(min_value=118, max_value=126), st.integers(min_value=0, max_value=1 << 40))
def test_other_ipv6_pools_are_written_by_ipaddress(prefix, index):
    network = ipaddress.IPv6Network((0xFD00_0002 << 96 | index << (128 - prefix), prefix))
    assert list(_hosts(network)) == [str(network[i]) for i in range(1, network.num_addresses - 1)]


def test_a_fleet_of_nodes_gets_distinct_addresses_skipping_dot_0_and_dot_255():
    nodes = {"imds": {"kind": "imds"}, "host": {"kind": "host", "forwarding": True},
             "br": {"kind": "bridge"}}
    nodes |= {f"c{i:04d}": {"kind": "container"} for i in range(600)}
    links = [["imds", "host"], ["host", "br"]] + [["br", f"c{i:04d}"] for i in range(600)]
    t = make(nodes, links)
    v4 = [n.address for name, n in t.nodes.items() if name != "imds"]
    v6 = [n.address6 for name, n in t.nodes.items() if name != "imds"]
    assert len(set(v4)) == len(v4) == 602 and len(set(v6)) == len(v6) == 602
    assert not [a for a in v4 if a.endswith((".0", ".255"))]
    assert all(ipaddress.IPv4Address(a) in _POOL4 for a in v4)
    assert all(ipaddress.IPv6Address(a) in _POOL6 for a in v6)
    # In name order from the pool's first address: br, c0000, ... host.
    assert t.nodes["br"].address == "10.0.0.1" and t.nodes["c0000"].address == "10.0.0.2"
    assert t.nodes["c0253"].address == "10.0.1.1"  # 10.0.0.255 and 10.0.1.0 skipped


def test_loaded_nodes_are_whole_nodes_equal_to_ones_built_field_by_field():
    """The loader builds Nodes without Node.__init__ (for speed): each must
    carry every field, as Node(...) would."""
    from dataclasses import asdict, fields

    from builders import TOPOLOGIES

    from hopsim.loader import load
    from hopsim.topology import Node

    names = {f.name for f in fields(Node)}
    for path in sorted(TOPOLOGIES.glob("*.yaml")):
        for node in load(path).nodes.values():
            assert set(vars(node)) == names, path.name
            assert Node(**asdict(node) | {"relay": node.relay, "imds": node.imds,
                                              "filters": node.filters}) == node

"""Addresses the loader gives nodes: deterministic, unique, numbered from the
pools in name order around the written ones, and formatted as the ipaddress
module writes them; the same per shape and per node."""

from __future__ import annotations

import ipaddress
from contextlib import contextmanager

from builders import make
from hypothesis import given, settings
from hypothesis import strategies as st

from hopsim.topology import build
from hopsim.topology.build import _POOL4, _POOL6, _pool_address, _pool_index


def _written(network: ipaddress.IPv4Network | ipaddress.IPv6Network, count: int) -> list[str]:
    """The first `count` host addresses of a pool as ipaddress writes them,
    IPv4's x.x.x.0 and x.x.x.255 left out."""
    found = []
    for address in network.hosts():
        text = str(address)
        if network.version == 4 and text.endswith((".0", ".255")):
            continue
        found.append(text)
        if len(found) == count:
            break
    return found


def test_ipv4_pool_addresses_are_numbered_as_ipaddress_writes_them():
    count = 254 * 3 + 5  # past 10.0.0.254, 10.0.1.0 and 10.0.2.255
    written = _written(_POOL4, count)
    assert [_pool_address(_POOL4, i) for i in range(count)] == written
    assert [_pool_index(_POOL4, a) for a in written] == list(range(count))


def test_ipv6_pool_addresses_are_compressed_as_ipaddress_compresses_them():
    start = int(_POOL6.network_address)
    count = (1 << 17) + 3  # past fd00:1::ffff and fd00:1::1:ffff
    written = [str(ipaddress.IPv6Address(start + i)) for i in range(1, count + 1)]
    assert [_pool_address(_POOL6, i) for i in range(count)] == written
    assert _pool_index(_POOL6, written[-1]) == count - 1


@given(st.integers(min_value=0, max_value=(1 << 24) - 1))
def test_an_ipv4_address_is_at_its_place_in_the_pool(address):
    text = str(_POOL4.network_address + address)
    index = _pool_index(_POOL4, text)
    if address & 255 in (0, 255) or address == (1 << 24) - 1:
        assert index is None  # not a host address the pool numbers
    else:
        assert _pool_address(_POOL4, index) == text


def test_the_pool_ends_and_other_addresses_are_not_its():
    assert _pool_address(_POOL4, 254 * 65536) == ""  # 10.255.255.254 was the last
    assert _pool_address(_POOL4, 254 * 65536 - 1) == "10.255.255.254"
    assert _pool_index(_POOL4, "192.168.0.1") is None
    assert _pool_index(_POOL4, "169.254.169.254") is None
    assert _pool_index(_POOL6, "fd00:ec2::254") is None
    assert _pool_index(_POOL6, "10.0.0.1") is None


def _reference(nodes: dict[str, dict], key: str) -> dict[str, str]:
    """Addresses as the format documents them, the plain way: imds on the
    metadata endpoint, written ones kept, a node on a host sends from its
    host's stack, every other node numbered from the pool in name order,
    the written addresses skipped."""
    endpoint, pool = ("169.254.169.254", _POOL4) if key == "address" else ("fd00:ec2::254",
                                                                             _POOL6)
    own: dict[str, str] = {}
    written = {str(ipaddress.ip_address(raw[key])) for raw in nodes.values()
               if key in raw and raw["kind"] != "imds"}
    free = (a for a in _written(pool, len(nodes) + len(written)) if a not in written)
    for name in sorted(nodes):
        raw = nodes[name]
        if raw["kind"] == "imds":
            own[name] = endpoint
        elif key in raw:
            own[name] = str(ipaddress.ip_address(raw[key]))
        elif "runs_on" not in raw:
            own[name] = next(free)

    def stack(name: str) -> str:
        while "runs_on" in nodes[name]:
            name = nodes[name]["runs_on"]
        return name

    return {name: own[stack(name)] for name in nodes}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=300), max_size=3, unique=True),
       st.lists(st.integers(min_value=0, max_value=40), max_size=3, unique=True),
       st.integers(min_value=1, max_value=30), st.integers(min_value=0, max_value=8),
       st.booleans())
def test_addresses_are_numbered_in_name_order_around_the_written_ones(
        written4, written6, bridged, on_host, alike):
    """Per shape and per node, a fleet's addresses are the reference's, with
    written addresses inside the pool taken out of it wherever they fall."""
    nodes: dict[str, dict] = {"imds": {"kind": "imds"},
                              "host": {"kind": "host", "forwarding": True, "role": "workload"},
                              "br": {"kind": "bridge"}}
    nodes |= {f"c{i:02d}": {"kind": "container", "role": "workload"} for i in range(bridged)}
    nodes |= {f"a{i}": {"kind": "container", "runs_on": "host"} for i in range(on_host)}
    names = sorted(f"c{i:02d}" for i in range(bridged))
    for n, low in zip(names, written4, strict=False):
        nodes[n]["address"] = f"10.0.{low // 254}.{low % 254 + 1}"  # in the pool
    for n, low in zip(reversed(names), written6, strict=False):
        nodes[n]["address6"] = f"fd00:1::{low:x}"
    links = [["imds", "host"], ["host", "br"]] + [["br", n] for n in names]
    with pools_worked(alike):
        t = make(nodes, links)
    for key in ("address", "address6"):
        assert {name: getattr(t.nodes[name], key) for name in nodes} == _reference(nodes, key)


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


@contextmanager
def pools_worked(alike: bool):
    """Nodes built per shape (the fast path) or node by node."""
    saved = build.ALIKE_FROM
    build.ALIKE_FROM = 0 if alike else None
    try:
        yield
    finally:
        build.ALIKE_FROM = saved

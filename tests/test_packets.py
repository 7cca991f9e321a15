"""pcap files from `hopsim trace --pcap`, dissected back with scapy.

Expected values come from docs/facts.md and the topology files:

- docker-bridge.yaml: app's path is app - docker0 (bridge, L2) - instance
  (host, forwarding: true, masquerade) - imds. One L3 forwarder.
- eks-ipv6-pod.yaml: pod (family 6) - node (host, forwarding: true) - imds,
  imds ipv6: true. One L3 forwarder.
- [C] The token response leaves IMDS with IP TTL (IPv6 hop limit) = the hop
  limit; [O] only the token response is limited (other responses: Linux's 64).
- [C] A router drops a packet to forward at TTL <= 1 and sends ICMP Time
  Exceeded (v4 type 11 code 0, v6 type 3 code 0) from itself to the packet's
  source; otherwise TTL -= 1. [C] Bridges never touch the TTL. [C] Local
  delivery accepts any TTL.
- [C] The token request is `PUT /latest/api/token` with
  `X-aws-ec2-metadata-token-ttl-seconds: N`, N in 1..21600, and the token
  response echoes that header.
- RFC 792: an ICMP error quotes the IP header and at least 8 bytes of the
  datagram it is about.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.inet6 import ICMPv6TimeExceeded, IPv6
from scapy.packet import Raw
from scapy.utils import RawPcapReader, checksum

from hopsim import engine, packets
from hopsim.cli import main
from hopsim.http import parse_request, parse_response
from hopsim.loader import load
from hopsim.packets import read_pcap

TOPOLOGIES = Path(__file__).resolve().parent.parent / "topologies"
DOCKER_BRIDGE = TOPOLOGIES / "docker-bridge.yaml"
EKS_IPV6 = TOPOLOGIES / "eks-ipv6-pod.yaml"
IMDS_V4 = "169.254.169.254"
IMDS_V6 = "fd00:ec2::254"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
LINUX_DEFAULT_TTL = 64


# --- helpers ---------------------------------------------------------------------


def trace_pcap(path: Path, topology: Path, principal: str, hop_limit: int) -> Path:
    """Run `hopsim trace TOPOLOGY --from PRINCIPAL --hop-limit N --pcap PATH`."""
    result = CliRunner().invoke(main, ["trace", str(topology), "--from", principal,
                                       "--hop-limit", str(hop_limit), "--pcap", str(path)])
    assert result.exit_code == 0, result.output
    assert path.is_file()
    return path


def raw_frames(path: Path) -> list[bytes]:
    with RawPcapReader(str(path)) as reader:
        return [data for data, _meta in reader]


def linktype(path: Path) -> int:
    return struct.unpack("<I", path.read_bytes()[20:24])[0]


def exchange(topology: Path, principal: str, hop_limit: int) -> engine.Exchange:
    return engine.play(load(topology).with_imds(hop_limit=hop_limit), principal, record=True)


def packet_hops(ex: engine.Exchange) -> list[engine.Hop]:
    return [h for h in ex.hops if h.packet is not None]


def hop_ttl(hop: engine.Hop) -> int:
    """The TTL of the packet a hop recorded: what it sent on, else what it received."""
    return hop.ttl_out if hop.ttl_out is not None else hop.ttl_in


def ttl_of(packet) -> int:
    return packet[IPv6].hlim if IPv6 in packet else packet[IP].ttl


def is_tcp(packet) -> bool:
    if IPv6 in packet:
        return packet[IPv6].nh == 6
    return packet[IP].proto == 6


def is_token_response(packet) -> bool:
    """[C] The token response: a 200 from port 80 that echoes the ttl header."""
    if not is_tcp(packet) or packet[TCP].sport != 80 or Raw not in packet:
        return False
    response = parse_response(packet[Raw].load)
    return response.status == 200 and response.header(TTL_HEADER) is not None


def is_icmp_time_exceeded(packet) -> bool:
    if IPv6 in packet:
        return ICMPv6TimeExceeded in packet
    return packet[IP].proto == 1 and ICMP in packet and packet[ICMP].type == 11


def ip_header_length(raw: bytes) -> int:
    return 40 if raw[0] >> 4 == 6 else (raw[0] & 0x0F) * 4


# --- (a) the pcap has the TTLs of the recorded hops --------------------------------


@pytest.mark.parametrize("hop_limit", [1, 2])
def test_pcap_dissects_to_the_recorded_hops_ttls_in_order(tmp_path, hop_limit):
    pcap = trace_pcap(tmp_path / "t.pcap", DOCKER_BRIDGE, "app", hop_limit)
    dissected = read_pcap(pcap)
    hops = packet_hops(exchange(DOCKER_BRIDGE, "app", hop_limit))
    assert dissected, "the pcap holds packets"
    assert all(IP in p for p in dissected), "an IPv4 trace dissects to IP packets"
    assert [ttl_of(p) for p in dissected] == [hop_ttl(h) for h in hops]
    assert [ttl_of(p) for p in dissected] == [ttl_of(h.packet) for h in hops]
    # Same packets, not just the same TTLs.
    assert raw_frames(pcap) == [bytes(h.packet) for h in hops]


def test_docker_bridge_path_is_one_forwarder():
    """The derivations below rest on this reading of docker-bridge.yaml."""
    topo = load(DOCKER_BRIDGE)
    assert set(topo.links) >= {("imds", "instance"), ("instance", "docker0"),
                               ("docker0", "app")}
    assert topo.nodes["docker0"].kind == "bridge"
    assert topo.nodes["instance"].kind == "host" and topo.nodes["instance"].forwarding
    assert topo.nodes["app"].kind == "container" and topo.nodes["app"].runs_on is None


def test_hop_limit_1_token_response_dies_at_the_instance(tmp_path):
    """[C] The token leaves IMDS with TTL 1; [C] the instance routes
    (eth0 <-> docker0) and drops a packet to forward at TTL <= 1, sending ICMP
    Time Exceeded type 11 code 0 from its own address to the source, IMDS."""
    instance = load(DOCKER_BRIDGE).nodes["instance"].address
    app = load(DOCKER_BRIDGE).nodes["app"].address
    pcap = trace_pcap(tmp_path / "h1.pcap", DOCKER_BRIDGE, "app", 1)
    dissected = read_pcap(pcap)
    hops = packet_hops(exchange(DOCKER_BRIDGE, "app", 1))

    token_at = [i for i, p in enumerate(dissected) if is_token_response(p)]
    assert [ttl_of(dissected[i]) for i in token_at] == [1, 1]
    assert [(hops[i].node, hops[i].action) for i in token_at] == [
        ("imds", engine.Action.SEND), ("instance", engine.Action.DROP)]
    assert all(dissected[i][IP].src == IMDS_V4 for i in token_at)
    assert not any(is_token_response(p) and p[IP].dst == app for p in dissected)

    icmp = dissected[token_at[-1] + 1]
    assert IP in icmp and ICMP in icmp
    assert (icmp[ICMP].type, icmp[ICMP].code) == (11, 0)
    assert (icmp[IP].src, icmp[IP].dst) == (instance, IMDS_V4)
    assert hops[token_at[-1] + 1].node == "instance"
    assert sum(is_icmp_time_exceeded(p) for p in dissected) == 1


def test_hop_limit_2_token_response_reaches_the_app(tmp_path):
    """[C] TTL 2 at IMDS; the instance routes: 2 -> 1; docker0 is L2 and keeps
    1; local delivery at the app accepts TTL 1. No ICMP."""
    app = load(DOCKER_BRIDGE).nodes["app"].address
    pcap = trace_pcap(tmp_path / "h2.pcap", DOCKER_BRIDGE, "app", 2)
    dissected = read_pcap(pcap)
    hops = packet_hops(exchange(DOCKER_BRIDGE, "app", 2))

    token_at = [i for i, p in enumerate(dissected) if is_token_response(p)]
    assert [ttl_of(dissected[i]) for i in token_at] == [2, 1, 1, 1]
    assert [hops[i].node for i in token_at] == ["imds", "instance", "docker0", "app"]
    assert hops[token_at[-1]].action is engine.Action.DELIVER
    assert dissected[token_at[-1]][IP].dst == app
    assert not any(is_icmp_time_exceeded(p) for p in dissected)


@pytest.mark.parametrize("hop_limit", [1, 2])
def test_only_the_token_response_carries_the_hop_limit(hop_limit):
    """[O] Only the token response is limited: every other IMDS response leaves
    with Linux's default TTL, 64; requests cross one router (64 -> 63)."""
    hops = packet_hops(exchange(DOCKER_BRIDGE, "app", hop_limit))
    sent_by_imds = [h for h in hops if h.node == "imds" and h.action is engine.Action.SEND]
    assert len(sent_by_imds) == 2  # the token response, then the GET's response
    for hop in sent_by_imds:
        expected = hop_limit if is_token_response(hop.packet) else LINUX_DEFAULT_TTL
        assert ttl_of(hop.packet) == expected
    delivered_at_imds = [h for h in hops if h.node == "imds" and h.action is engine.Action.DELIVER]
    assert [ttl_of(h.packet) for h in delivered_at_imds] == [LINUX_DEFAULT_TTL - 1] * 2


# --- (b) checksums ---------------------------------------------------------------------


def _internet_checksum_ok(data: bytes, at: int) -> bool:
    """Recompute the checksum over `data` with its field (at `at`) zeroed."""
    stored = struct.unpack("!H", data[at:at + 2])[0]
    zeroed = data[:at] + b"\0\0" + data[at + 2:]
    return checksum(zeroed) == stored


@pytest.mark.parametrize("hop_limit", [1, 2])
def test_every_ipv4_packet_has_valid_ip_and_tcp_checksums(tmp_path, hop_limit):
    pcap = trace_pcap(tmp_path / "c.pcap", DOCKER_BRIDGE, "app", hop_limit)
    frames = raw_frames(pcap)
    assert frames
    for raw in frames:
        packet = IP(raw)
        rebuilt = packet.copy()
        del rebuilt.chksum
        assert IP(bytes(rebuilt)).chksum == packet.chksum, packet.summary()
        if packet.proto == 6:
            rebuilt = IP(raw)
            del rebuilt[TCP].chksum
            assert IP(bytes(rebuilt))[TCP].chksum == packet[TCP].chksum, packet.summary()
            assert bytes(IP(bytes(rebuilt))) == raw
        else:
            assert packet.proto == 1
            ihl = ip_header_length(raw)
            assert _internet_checksum_ok(raw[ihl:], 2), "ICMP checksum"


def test_every_ipv6_packet_has_valid_upper_layer_checksums(tmp_path):
    pcap = trace_pcap(tmp_path / "c6.pcap", EKS_IPV6, "pod", 1)
    for raw in raw_frames(pcap):
        packet = IPv6(raw)
        if packet.nh == 6:
            rebuilt = IPv6(raw)
            del rebuilt[TCP].chksum
            assert IPv6(bytes(rebuilt))[TCP].chksum == packet[TCP].chksum, packet.summary()
        else:
            assert packet.nh == 58
            body = raw[40:]
            pseudo = (raw[8:24] + raw[24:40] + struct.pack("!I", len(body)) + b"\0\0\0"
                      + bytes([58]))
            stored = struct.unpack("!H", body[2:4])[0]
            assert checksum(pseudo + body[:2] + b"\0\0" + body[4:]) == stored, "ICMPv6"


# --- (c) determinism and timestamps --------------------------------------------------


@pytest.mark.parametrize("topology,principal,hop_limit",
                         [(DOCKER_BRIDGE, "app", 1), (DOCKER_BRIDGE, "app", 2),
                          (EKS_IPV6, "pod", 1)])
def test_same_trace_twice_gives_byte_identical_pcaps(tmp_path, topology, principal, hop_limit):
    first = trace_pcap(tmp_path / "first.pcap", topology, principal, hop_limit)
    second = trace_pcap(tmp_path / "second.pcap", topology, principal, hop_limit)
    assert first.read_bytes() == second.read_bytes()


def test_pcap_is_identical_across_processes_and_hash_seeds(tmp_path):
    """Determinism must not hang on Python's per-process string hashing."""
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / f"seed{seed}.pcap"
        env = {**os.environ, "PYTHONHASHSEED": seed, "NO_COLOR": "1"}
        subprocess.run([sys.executable, "-m", "hopsim.cli", "trace", str(DOCKER_BRIDGE),
                        "--from", "app", "--hop-limit", "1", "--pcap", str(out)],
                       check=True, capture_output=True, env=env, timeout=120)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("topology,principal,hop_limit",
                         [(DOCKER_BRIDGE, "app", 1), (DOCKER_BRIDGE, "app", 2),
                          (EKS_IPV6, "pod", 1), (EKS_IPV6, "pod", 2)])
def test_timestamps_never_go_backwards(tmp_path, topology, principal, hop_limit):
    pcap = trace_pcap(tmp_path / "t.pcap", topology, principal, hop_limit)
    times = [p.time for p in read_pcap(pcap)]
    assert len(times) > 1
    assert all(a <= b for a, b in itertools.pairwise(times)), times


# --- (d) IPv6 ----------------------------------------------------------------------


def test_eks_ipv6_path_is_one_forwarder():
    topo = load(EKS_IPV6)
    assert ("imds", "node") in topo.links and ("node", "pod") in topo.links
    assert topo.nodes["node"].kind == "host" and topo.nodes["node"].forwarding
    assert topo.nodes["pod"].family == 6
    assert topo.nodes["imds"].imds.ipv6


def test_ipv6_hop_limit_1_gives_icmpv6_time_exceeded(tmp_path):
    """[C] ip6_forward(): hop limit <= 1 -> drop and ICMPv6 Time Exceeded
    (type 3, code 0), from the node to the source, [fd00:ec2::254]."""
    node = load(EKS_IPV6).nodes["node"].address6
    pcap = trace_pcap(tmp_path / "v6.pcap", EKS_IPV6, "pod", 1)
    dissected = read_pcap(pcap)
    hops = packet_hops(exchange(EKS_IPV6, "pod", 1))
    assert all(IPv6 in p and IP not in p for p in dissected)
    assert [p[IPv6].hlim for p in dissected] == [hop_ttl(h) for h in hops]

    token_at = [i for i, p in enumerate(dissected) if is_token_response(p)]
    assert [dissected[i][IPv6].hlim for i in token_at] == [1, 1]
    assert [(hops[i].node, hops[i].action) for i in token_at] == [
        ("imds", engine.Action.SEND), ("node", engine.Action.DROP)]

    icmp = dissected[token_at[-1] + 1]
    assert ICMPv6TimeExceeded in icmp
    assert (icmp[ICMPv6TimeExceeded].type, icmp[ICMPv6TimeExceeded].code) == (3, 0)
    assert ipaddress.ip_address(icmp[IPv6].src) == ipaddress.ip_address(node)
    assert ipaddress.ip_address(icmp[IPv6].dst) == ipaddress.ip_address(IMDS_V6)
    assert icmp[IPv6].nh == 58
    assert sum(is_icmp_time_exceeded(p) for p in dissected) == 1


def test_ipv6_hop_limit_2_token_arrives_with_hop_limit_1(tmp_path):
    pod = load(EKS_IPV6).nodes["pod"].address6
    pcap = trace_pcap(tmp_path / "v6.pcap", EKS_IPV6, "pod", 2)
    dissected = read_pcap(pcap)
    hops = packet_hops(exchange(EKS_IPV6, "pod", 2))
    assert [p[IPv6].hlim for p in dissected] == [hop_ttl(h) for h in hops]
    token_at = [i for i, p in enumerate(dissected) if is_token_response(p)]
    assert [dissected[i][IPv6].hlim for i in token_at] == [2, 1, 1]
    assert [hops[i].node for i in token_at] == ["imds", "node", "pod"]
    assert ipaddress.ip_address(dissected[token_at[-1]][IPv6].dst) == ipaddress.ip_address(pod)
    assert not any(is_icmp_time_exceeded(p) for p in dissected)


def test_pcap_link_types_are_raw_ipv4_and_ipv6(tmp_path):
    """LINKTYPE_IPV4 (228) and LINKTYPE_IPV6 (229): no link layer, as
    hopsim.packets.write_pcap documents."""
    assert linktype(trace_pcap(tmp_path / "4.pcap", DOCKER_BRIDGE, "app", 1)) == 228
    assert linktype(trace_pcap(tmp_path / "6.pcap", EKS_IPV6, "pod", 1)) == 229


# --- (e) the token PUT's payload -----------------------------------------------------


@pytest.mark.parametrize("topology,principal,endpoint",
                         [(DOCKER_BRIDGE, "app", IMDS_V4), (EKS_IPV6, "pod", IMDS_V6)])
def test_token_put_payload_parses_back(tmp_path, topology, principal, endpoint):
    """[C] `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds: N`,
    N in 1..21600, to the IMDS endpoint on port 80."""
    pcap = trace_pcap(tmp_path / "put.pcap", topology, principal, 2)
    first = read_pcap(pcap)[0]
    layer = first[IPv6] if IPv6 in first else first[IP]
    assert ipaddress.ip_address(layer.dst) == ipaddress.ip_address(endpoint)
    assert first[TCP].dport == 80
    request = parse_request(first[Raw].load)
    assert (request.method, request.path) == ("PUT", "/latest/api/token")
    ttl = request.header(TTL_HEADER)
    assert ttl is not None and ttl.isascii() and ttl.isdigit()
    assert 1 <= int(ttl) <= 21600
    # The token response echoes it [C].
    token = next(p for p in read_pcap(pcap) if is_token_response(p))
    assert parse_response(token[Raw].load).header(TTL_HEADER) == ttl


# --- (f) the ICMP error quotes the dropped packet --------------------------------------


@pytest.mark.parametrize("topology,principal,endpoint",
                         [(DOCKER_BRIDGE, "app", IMDS_V4), (EKS_IPV6, "pod", IMDS_V6)])
def test_icmp_error_quotes_the_dropped_packets_header(tmp_path, topology, principal, endpoint):
    """RFC 792 / RFC 4443: the error carries the dropped packet's IP header and
    at least 8 bytes after it; the dropped packet is the token response from
    IMDS (source the endpoint, TTL 1 as received), and the error goes back to
    that source."""
    pcap = trace_pcap(tmp_path / "icmp.pcap", topology, principal, 1)
    frames = raw_frames(pcap)
    dissected = read_pcap(pcap)
    hops = packet_hops(exchange(topology, principal, 1))
    at = next(i for i, p in enumerate(dissected) if is_icmp_time_exceeded(p))
    dropped, error = frames[at - 1], frames[at]
    assert hops[at - 1].action is engine.Action.DROP
    assert is_token_response(dissected[at - 1])

    quote = error[ip_header_length(error) + 8:]  # after the ICMP header
    assert len(quote) >= ip_header_length(dropped) + 8
    assert quote == dropped[:len(quote)]
    if endpoint == IMDS_V4:
        assert quote[0] >> 4 == 4
        assert socket.inet_ntop(socket.AF_INET, quote[12:16]) == IMDS_V4  # source
        assert quote[8] == 1  # TTL as received
        assert quote[9] == 6  # TCP
        quoted = dissected[at][ICMP].payload
        assert quoted.src == IMDS_V4 and quoted.ttl == 1
        assert dissected[at][IP].dst == quoted.src
    else:
        assert quote[0] >> 4 == 6
        assert ipaddress.ip_address(quote[8:24]) == ipaddress.ip_address(IMDS_V6)  # source
        assert quote[7] == 1  # hop limit as received
        assert quote[6] == 6  # TCP
        assert ipaddress.ip_address(dissected[at][IPv6].dst) == ipaddress.ip_address(IMDS_V6)
    # The quoted transport header starts with the dropped segment's ports: 80 -> client.
    sport, dport = struct.unpack("!HH", quote[ip_header_length(dropped):][:4])
    assert sport == 80
    assert dport == dissected[at - 1][TCP].dport


# --- (g) packets are built only for what is recorded ----------------------------------


def test_a_walk_that_records_nothing_builds_no_scapy_packet(monkeypatch):
    """check and sweep walk without recording (`play(record=False)`): building
    scapy packets there cost three quarters of a check of a tiny file. Every
    bundled topology, at hop limits 1 to 3 (drops, ICMP, NAT, relays, IPv6)."""
    def built(*_):
        raise AssertionError("a scapy packet was built for a walk that records nothing")

    monkeypatch.setattr(packets.Segment, "packet", built)
    monkeypatch.setattr(packets.TimeExceeded, "packet", built)
    walked = 0
    for path in sorted(TOPOLOGIES.rglob("*.yaml")):
        topology = load(path)
        for hop_limit in (1, 2, 3):
            played = topology.with_imds(hop_limit=hop_limit)
            for principal in played.principals:
                assert engine.play(played, principal).hops == ()
                walked += 1
    assert walked > 100
    with pytest.raises(AssertionError, match="records nothing"):  # the same walk, recorded
        engine.play(load(DOCKER_BRIDGE), "app", record=True)

"""A trace's pcap, read by Wireshark's own dissectors (tshark).

.ci/run installs tshark; elsewhere these tests are skipped with the reason.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from builders import TOPOLOGIES
from click.testing import CliRunner

from hopsim.cli import main

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None,
                                reason="tshark not installed (.ci/run installs it)")

FIELDS = ["ip.ttl", "ipv6.hlim", "ip.checksum.status", "tcp.checksum.status",
          "icmp.type", "icmp.code", "icmpv6.type", "icmpv6.code",
          "http.request.method", "http.response.code"]


def dissect(tmp_path, topology: str, principal: str, hop_limit: int) -> list[dict[str, str]]:
    pcap = tmp_path / "trace.pcap"
    result = CliRunner().invoke(main, ["trace", str(TOPOLOGIES / f"{topology}.yaml"), "--from",
                                       principal, "--hop-limit", str(hop_limit),
                                       "--pcap", str(pcap)])
    assert result.exit_code == 0, result.output
    args = ["tshark", "-r", str(pcap), "-o", "ip.check_checksum:TRUE",
            "-o", "tcp.check_checksum:TRUE", "-T", "fields", "-E", "occurrence=f"]
    for field in FIELDS:
        args += ["-e", field]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=60).stdout
    return [dict(zip(FIELDS, line.split("\t"), strict=False)) for line in out.splitlines()]


def test_wireshark_reads_http_with_good_checksums_and_the_ttl_falling(tmp_path):
    frames = dissect(tmp_path, "docker-bridge", "app", 2)
    assert all(f["ip.checksum.status"] == "1" for f in frames)  # 1: good
    assert all(f["tcp.checksum.status"] == "1" for f in frames)
    assert frames[0]["http.request.method"] == "PUT"
    assert [f["http.response.code"] for f in frames if f["http.response.code"]][:1] == ["200"]
    # Each segment once per node (the golden trace, checked by hand): the PUT
    # (64 until the instance routes it), the token (TTL = hop limit 2 at IMDS,
    # 1 after the instance), the GET, and its 200 (64, then 63).
    assert [int(f["ip.ttl"]) for f in frames] == [64, 64, 63, 63, 2, 1, 1, 1,
                                                  64, 64, 63, 63, 64, 63, 63, 63]


def test_wireshark_sees_the_icmp_time_exceeded_from_the_instance(tmp_path):
    frames = dissect(tmp_path, "docker-bridge", "app", 1)
    icmp = [f for f in frames if f["icmp.type"]]
    assert [(f["icmp.type"], f["icmp.code"]) for f in icmp] == [("11", "0")]


def test_wireshark_sees_icmpv6_time_exceeded_and_hop_limits(tmp_path):
    frames = dissect(tmp_path, "eks-ipv6-pod", "pod", 1)
    assert frames[0]["ipv6.hlim"] == "64"
    icmp = [f for f in frames if f["icmpv6.type"]]
    assert [(f["icmpv6.type"], f["icmpv6.code"]) for f in icmp] == [("3", "0")]

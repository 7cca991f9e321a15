"""Every bundled topology: well formed, complete expectations, and its matrix.

The verdicts and recommended hop limits below were derived by hand from
docs/facts.md (count the routers between IMDS and the principal or
the first L7 relay; the token needs hop limit >= routers + 1), independently
of the `expect` entries in the files, which were derived the same way.
"""

from __future__ import annotations

import pytest
from builders import TOPOLOGIES

from hopsim import analysis
from hopsim.kinds import KINDS
from hopsim.loader import load

FILES = sorted(TOPOLOGIES.glob("*.yaml"))

# name: (verdicts at hop limits 1, 2, 3; recommended hop limit)
MATRIX = {
    "host-process": (("ok", "ok", "ok"), 1),
    "docker-bridge": (("broken", "ok", "ok"), 2),  # [C] 2 for Docker bridge
    "docker-host-network": (("ok", "ok", "ok"), 1),  # [C] host network works with 1
    "docker-in-docker": (("broken", "broken", "ok"), 3),  # [O] DinD needs 3
    "k8s-pod-node-routing": (("broken", "ok", "ok"), 2),  # [C] 2 if pods need IMDS
    "eks-untrusted-pod": (("ok", "leak", "leak"), 1),  # [C] 1 blocks pods
    "open-router": (("ok", "leak", "leak"), 1),  # the article's open router
    "open-nat": (("ok", "leak", "leak"), 1),
    "vpn-endpoint": (("ok", "leak", "leak"), 1),
    "ssrf-alb-required": (("ok", "ok", "ok"), 1),  # SSRF cannot PUT
    "ssrf-alb-optional": (("leak", "leak", "leak"), None),  # IMDSv1 GET is TTL 64
    "open-waf": (("ok", "ok", "ok"), 1),  # WAFs rarely pass PUT
    "open-reverse-proxy-xff": (("ok", "ok", "ok"), 1),  # [C] XFF on PUT refused
    "nginx-reverse-proxy": (("leak", "leak", "leak"), None),  # nginx adds no XFF
    "reverse-proxy-in-container": (("broken", "leak", "leak"), None),
    "eks-ipv6-pod": (("broken", "ok", "ok"), 2),
    "pod-identity-proxy": (("ok", "ok", "ok"), 1),  # the relay resets the budget
    "router-two-hops": (("broken", "ok", "leak"), 2),  # routers are counted exactly
    # issue 10: a switched segment is one hop, the instance the only forwarder
    "dual-homed-client": (("ok", "leak", "leak"), 1),
    # issue 10: 4 forwarders on the response's own branch; token from 5
    "asymmetric-return": (("ok", "ok", "ok"), 1),
    # issue 12: DOCKER-USER drops bridged tasks on FORWARD; host-network ones are never seen
    "ecs-bridge-docker-user": (("ok", "ok", "ok"), 1),
    "ecs-host-network-task": (("leak", "leak", "leak"), None),
    # an awsvpc task owns an ENI: no host hop, so only ECS_AWSVPC_BLOCK_IMDS stops it
    "ecs-awsvpc": (("leak", "leak", "leak"), None),
    "ecs-awsvpc-block-imds": (("ok", "ok", "ok"), 1),
    # the DNAT sends the pod to the agent, whose proxy adds X-Forwarded-For: 403
    "kube2iam-interceptor": (("ok", "ok", "ok"), 1),
}


def test_every_bundled_file_is_in_the_matrix():
    assert sorted(f.stem for f in FILES) == sorted(MATRIX)


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_bundled_file_is_named_after_its_topology_and_says_what_it_teaches(path):
    topology = load(path)
    assert topology.name == path.stem
    assert len(topology.description.split()) >= 40


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_bundled_file_expects_every_principal_at_hop_limits_1_to_3(path):
    topology = load(path)
    for hop_limit in (1, 2, 3):
        assert sorted(topology.expect[hop_limit]) == topology.principals


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_bundled_matrix(path):
    topology = load(path)
    report = analysis.sweep(topology, [1, 2, 3])
    verdicts, recommended = MATRIX[topology.name]
    assert tuple(r.verdict.value for r in report.results) == verdicts
    assert report.recommended_hop_limit == recommended
    assert report.failed == []
    assert len([e for e in report.expectations if e.hop_limit <= 3]) == (
        3 * len(topology.principals))


def test_an_ipv6_variant_is_bundled():
    ipv6 = [load(f) for f in FILES
            if any(n.family == 6 for n in load(f).nodes.values())]
    assert ipv6 and all(any(n.imds and n.imds.ipv6 for n in t.nodes.values()) for t in ipv6)


def test_bundled_topologies_use_every_node_kind():
    kinds = {n.kind for f in FILES for n in load(f).nodes.values()}
    assert kinds == set(KINDS)

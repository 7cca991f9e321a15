"""What each node kind does to a packet (issue 2's table), one behaviour a test.

Expected values come from docs/facts.md: routers drop at TTL <= 1
and send ICMP Time Exceeded [C]; bridges never touch the TTL [C]; NATs and
tunnels decrement like routers [U]; L7 relays re-send with TTL 64 [U]; IMDS
refuses a PUT with X-Forwarded-For [C].
"""

from __future__ import annotations

import pytest
from builders import make, play
from scapy.layers.inet import ICMP, IP, TCP

from hopsim.engine import Action
from hopsim.http import parse_request
from hopsim.imds import XFF_HEADER
from hopsim.outcome import Access
from hopsim.report.wording import reason

BEHIND_ONE = {  # imds - instance - <middle> - app
    "imds": {"kind": "imds"},
    "app": {"kind": "container", "role": "workload"},
}


def behind(middle_kind: str, hop_limit: int, **middle: object):
    nodes = {**BEHIND_ONE, "instance": {"kind": "host"}, "mid": {"kind": middle_kind, **middle}}
    # The instance must route for `mid` to be reachable, unless mid is the instance.
    nodes["instance"] = {"kind": "host", "forwarding": True}
    links = [["imds", "instance"], ["instance", "mid"], ["mid", "app"]]
    return make(nodes, links, hop_limit=hop_limit)


def hops_of(exchange, message_start: str, action: Action | None = None):
    return [h for h in exchange.hops
            if h.message.startswith(message_start) and (action is None or h.action is action)]


# --- L2 ---------------------------------------------------------------------


def test_bridge_passes_the_token_without_touching_its_ttl():
    t = make({"imds": {"kind": "imds"}, "instance": {"kind": "host", "forwarding": True},
              "br": {"kind": "bridge"}, "app": {"kind": "container"}},
             [["imds", "instance"], ["instance", "br"], ["br", "app"]], hop_limit=2)
    ex = play(t, "app")
    bridged = hops_of(ex, "200 OK (token)", Action.BRIDGE)
    assert [(h.node, h.ttl_in, h.ttl_out) for h in bridged] == [("br", 1, 1)]
    assert ex.outcome.access is Access.TOKEN


def test_two_bridges_in_a_row_cost_nothing():
    t = make({"imds": {"kind": "imds"}, "instance": {"kind": "host", "forwarding": True},
              "b1": {"kind": "bridge"}, "b2": {"kind": "bridge"}, "app": {"kind": "container"}},
             [["imds", "instance"], ["instance", "b1"], ["b1", "b2"], ["b2", "app"]],
             hop_limit=2)
    assert play(t, "app").outcome.access is Access.TOKEN


# --- L3 ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["router", "nat", "tunnel"])
def test_l3_kinds_decrement_and_drop_at_ttl_one(kind):
    low, high = behind(kind, 2), behind(kind, 3)
    # Two routers (instance and mid) between IMDS and app: hop limit 3 needed.
    dropped = play(low, "app")
    assert dropped.outcome.access is Access.NONE
    assert dropped.outcome.dropped_at == "mid"
    delivered = play(high, "app")
    assert delivered.outcome.access is Access.TOKEN
    token = hops_of(delivered, "200 OK (token)")
    assert [(h.node, h.ttl_in, h.ttl_out) for h in token if h.action in
            (Action.FORWARD, Action.NAT)] == [("instance", 3, 2), ("mid", 2, 1)]


def test_router_sends_icmp_time_exceeded_from_its_own_address_to_the_source():
    t = behind("router", 1)
    ex = play(t, "app")
    drop = hops_of(ex, "200 OK (token)", Action.DROP)
    icmp = hops_of(ex, "200 OK (token)", Action.ICMP)
    assert [h.node for h in drop] == ["instance"]
    assert len(icmp) == 1
    packet = icmp[0].packet
    assert packet[IP].src == t.nodes["instance"].address
    assert packet[IP].dst == "169.254.169.254"
    assert (packet[ICMP].type, packet[ICMP].code) == (11, 0)


def test_router_forwards_a_packet_with_ttl_two_and_drops_one_with_ttl_one():
    # The boundary of ip_forward.c: TTL <= 1 is dropped, TTL 2 leaves with 1.
    one, two = behind("router", 2), behind("router", 3)
    assert play(one, "app").outcome.dropped_at == "mid"
    forwarded = hops_of(play(two, "app"), "200 OK (token)", Action.FORWARD)
    assert forwarded[-1].ttl_in == 2 and forwarded[-1].ttl_out == 1


def test_host_without_forwarding_is_not_transit():
    t = make({"imds": {"kind": "imds"}, "instance": {"kind": "host"},
              "app": {"kind": "container"}},
             [["imds", "instance"], ["instance", "app"]], hop_limit=64)
    ex = play(t, "app")
    assert ex.outcome.access is Access.NONE
    assert reason(ex.outcome).startswith("unreachable")
    assert ex.hops == ()


def test_host_with_forwarding_routes_and_decrements():
    t = make({"imds": {"kind": "imds"}, "instance": {"kind": "host", "forwarding": True},
              "app": {"kind": "container"}},
             [["imds", "instance"], ["instance", "app"]], hop_limit=1)
    ex = play(t, "app")
    assert ex.outcome.dropped_at == "instance"
    assert play(make({"imds": {"kind": "imds"},
                      "instance": {"kind": "host", "forwarding": True},
                      "app": {"kind": "container"}},
                     [["imds", "instance"], ["instance", "app"]], hop_limit=2),
                "app").outcome.access is Access.TOKEN


def test_nat_rewrites_the_source_out_and_restores_the_destination_back():
    t = behind("nat", 3)
    ex = play(t, "app")
    app, nat = t.nodes["app"].address, t.nodes["mid"].address
    put_at_imds = hops_of(ex, "PUT", Action.DELIVER)[-1].packet
    assert put_at_imds[IP].src == nat  # masqueraded
    token_at_app = hops_of(ex, "200 OK (token)", Action.DELIVER)[-1].packet
    assert token_at_app[IP].dst == app  # un-NATed
    assert token_at_app[IP].ttl == 1  # still decremented twice: 3 -> 1


def test_masquerading_host_rewrites_like_a_nat():
    t = make({"imds": {"kind": "imds"},
              "instance": {"kind": "host", "forwarding": True, "masquerade": True},
              "app": {"kind": "container"}},
             [["imds", "instance"], ["instance", "app"]], hop_limit=2)
    ex = play(t, "app")
    assert hops_of(ex, "PUT", Action.DELIVER)[-1].packet[IP].src == t.nodes["instance"].address


# --- endpoints ----------------------------------------------------------------


def test_process_running_on_the_host_gets_the_token_at_hop_limit_one():
    t = make({"imds": {"kind": "imds"}, "instance": {"kind": "host", "forwarding": True},
              "agent": {"kind": "container", "runs_on": "instance"}},
             [["imds", "instance"]], hop_limit=1)
    ex = play(t, "agent")
    assert ex.outcome.access is Access.TOKEN
    assert not hops_of(ex, "200 OK (token)", Action.FORWARD)
    assert t.nodes["agent"].address == t.nodes["instance"].address


def test_client_is_a_principal_that_plays_the_exchange():
    t = make({"imds": {"kind": "imds"}, "instance": {"kind": "host", "forwarding": True},
              "attacker": {"kind": "client", "role": "attacker"}},
             [["imds", "instance"], ["instance", "attacker"]], hop_limit=2)
    assert play(t, "attacker").outcome.access is Access.TOKEN


def test_only_the_token_response_is_ttl_limited():
    # [O] DataDog/datadog-agent#55269: with hop limit 1, the GET still answers
    # from a bridged container; with tokens optional it returns credentials.
    t = make({"imds": {"kind": "imds"}, "instance": {"kind": "host", "forwarding": True},
              "app": {"kind": "container"}},
             [["imds", "instance"], ["instance", "app"]], hop_limit=1, http_tokens="optional")
    ex = play(t, "app")
    assert ex.outcome.access is Access.CREDENTIALS
    assert ex.outcome.dropped_at == "instance"
    assert "after a timeout" in reason(ex.outcome)
    sent = [h for h in ex.hops if h.node == "imds" and h.action is Action.SEND]
    assert [h.ttl_out for h in sent] == [1, 64]  # token response, then the GET's


def test_disabled_endpoint_refuses_everyone():
    t = make({"imds": {"kind": "imds"}, "instance": {"kind": "host"}},
             [["imds", "instance"]], http_endpoint="disabled", http_tokens="optional")
    ex = play(t, "instance")
    assert ex.outcome.access is Access.NONE
    assert "disabled" in reason(ex.outcome)


def test_ipv6_principal_needs_the_ipv6_endpoint():
    nodes = {"imds": {"kind": "imds"}, "instance": {"kind": "host", "forwarding": True},
             "pod": {"kind": "container", "family": 6}}
    links = [["imds", "instance"], ["instance", "pod"]]
    off = play(make(nodes, links, hop_limit=2), "pod")
    assert off.outcome.access is Access.NONE and "IPv6" in reason(off.outcome)
    on = play(make(nodes, links, hop_limit=2, ipv6=True), "pod")
    assert on.outcome.access is Access.TOKEN
    first = on.hops[0].packet
    assert first["IPv6"].dst == "fd00:ec2::254"


# --- L7 relays ----------------------------------------------------------------


def relay_topology(**relay: object):
    """attacker - instance[relay] - imds, the relay running on the instance."""
    nodes = {"imds": {"kind": "imds"}, "instance": {"kind": "host"},
             "relay": {"runs_on": "instance", **relay},
             "attacker": {"kind": "client", "role": "attacker"}}
    return make(nodes, [["imds", "instance"], ["instance", "attacker"]])


def test_proxy_with_x_forwarded_for_so_imds_refuses_the_put():
    ex = play(relay_topology(kind="proxy", adds_xff=True), "attacker")
    assert ex.outcome.access is Access.NONE
    assert reason(ex.outcome).startswith(
        "IMDS refused the PUT (403): X-Forwarded-For added by relay")
    put = parse_request(bytes(hops_of(ex, "PUT", Action.DELIVER)[-1].packet[TCP].payload))
    assert put.header(XFF_HEADER) == relay_topology(kind="proxy").nodes["attacker"].address


def test_a_proxy_that_does_not_say_is_not_assumed_to_add_x_forwarded_for():
    # nginx, HAProxy, tinyproxy and Apache's forward proxy add none by default
    # (docs/products.md, measured): an unstated proxy relays the token.
    ex = play(relay_topology(kind="proxy"), "attacker")
    assert ex.outcome.access is Access.TOKEN
    assert ex.outcome.receiver == "relay"


def test_relay_resends_with_a_fresh_ttl_of_64():
    ex = play(relay_topology(kind="proxy", adds_xff=False), "attacker")
    token = hops_of(ex, "200 OK (token)", Action.SEND)
    assert [(h.node, h.ttl_out) for h in token] == [("imds", 1), ("relay", 64)]


def test_proxy_methods_limit_refuses_put_with_405_at_the_relay():
    ex = play(relay_topology(kind="proxy", adds_xff=False, methods=["GET"]), "attacker")
    assert ex.outcome.access is Access.NONE
    assert "PUT refused by relay (405)" in reason(ex.outcome)
    assert not [h for h in hops_of(ex, "PUT") if h.node == "imds"]  # never reached IMDS


def test_waf_cannot_send_put_but_passes_get():
    t = relay_topology(kind="waf")
    ex = play(t.with_imds(http_tokens="optional"), "attacker")
    assert "PUT refused by relay (405): it passes only GET, HEAD, POST" in reason(ex.outcome)
    assert ex.outcome.access is Access.CREDENTIALS
    assert play(t, "attacker").outcome.access is Access.NONE


def test_ssrf_that_can_put_still_drops_the_ttl_header():
    ex = play(relay_topology(kind="ssrf", methods=["GET", "PUT"]), "attacker")
    assert ex.outcome.access is Access.NONE
    assert reason(ex.outcome).startswith("IMDS refused the PUT (400)")


def test_x_forwarded_for_added_by_an_earlier_relay_reaches_imds():
    nodes = {"imds": {"kind": "imds"}, "instance": {"kind": "host"},
             "inner": {"kind": "proxy", "runs_on": "instance", "adds_xff": False},
             "edge": {"kind": "proxy", "adds_xff": True},
             "attacker": {"kind": "client", "role": "attacker"}}
    links = [["imds", "instance"], ["instance", "edge"], ["edge", "attacker"]]
    ex = play(make(nodes, links), "attacker")
    assert "X-Forwarded-For added by edge" in reason(ex.outcome)
    # Had `inner` not forwarded headers, the XFF (and the ttl header) would be gone.
    nodes["inner"]["forwards_headers"] = False
    ex = play(make(nodes, links), "attacker")
    assert reason(ex.outcome).startswith("IMDS refused the PUT (400)")


def test_forwarding_host_with_relay_routes_unless_via_names_the_relay():
    nodes = {"imds": {"kind": "imds"}, "node": {"kind": "host", "forwarding": True},
             "kiam": {"kind": "proxy", "runs_on": "node", "adds_xff": False},
             "pod": {"kind": "container"}}
    links = [["imds", "node"], ["node", "pod"]]
    routed = play(make(nodes, links), "pod")
    assert routed.outcome.dropped_at == "node"
    nodes["pod"]["via"] = ["kiam"]
    relayed = play(make(nodes, links), "pod")
    assert relayed.outcome.access is Access.TOKEN
    assert relayed.outcome.receiver == "kiam"


def test_relay_answers_504_when_the_token_dies_on_its_way_to_it():
    nodes = {"imds": {"kind": "imds"}, "instance": {"kind": "host", "forwarding": True},
             "br": {"kind": "bridge"},
             "nginx": {"kind": "proxy", "adds_xff": False},
             "attacker": {"kind": "client", "role": "attacker", "via": ["nginx"]}}
    links = [["imds", "instance"], ["instance", "br"], ["br", "nginx"], ["instance", "attacker"]]
    ex = play(make(nodes, links, hop_limit=1), "attacker")
    assert ex.outcome.dropped_at == "instance"
    assert "on its way to nginx" in reason(ex.outcome)
    assert next(h.message for h in ex.hops if h.node == "attacker"
            and h.action is Action.DELIVER) == "504 Gateway Timeout"
    assert play(make(nodes, links, hop_limit=2), "attacker").outcome.access is Access.TOKEN


# --- routing ------------------------------------------------------------------


def test_ties_between_equal_paths_take_the_smallest_names():
    nodes = {"imds": {"kind": "imds"}, "instance": {"kind": "host", "forwarding": True},
             "b": {"kind": "router"}, "a": {"kind": "bridge"}, "app": {"kind": "container"}}
    links = [["imds", "instance"], ["instance", "a"], ["instance", "b"], ["a", "app"],
             ["b", "app"]]
    ex = play(make(nodes, links, hop_limit=2), "app")
    assert [s.node for s in ex.route.stations] == ["app", "a", "instance", "imds"]
    assert ex.outcome.access is Access.TOKEN  # through the bridge, not the router


def test_principal_reaches_the_nearest_imds():
    nodes = {"imds-a": {"kind": "imds"}, "imds-b": {"kind": "imds", "hop_limit": 3},
             "near": {"kind": "host", "forwarding": True},
             "far": {"kind": "router"}, "mid": {"kind": "router"},
             "app": {"kind": "container"}}
    links = [["imds-a", "near"], ["near", "app"], ["imds-b", "far"], ["far", "mid"],
             ["mid", "app"]]
    ex = play(make(nodes, links, hop_limit=1), "app")
    assert ex.route.imds == "imds-a"

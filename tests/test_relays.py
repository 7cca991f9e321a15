"""L4 relays (`kind: relay`) and user-space network stacks (`network:`): the
measured table of issue 22 as the simulator's outcomes, their composition
with routed containers, what closes each path, and the located errors.

Expected outcomes come from the measurements on Debian 12's binaries (docs/
facts.md, "Rootless containers and L4 relays"): every relay and stack ends
the client's TCP connection and opens its own socket in the stack it runs
in, so the token response crosses only the routers between that stack and
IMDS, and the client's copy leaves with TTL 64. A Docker bridge container,
routed and masqueraded by the instance, is the control: one router.
"""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml
from builders import ROOT, make, play
from click.testing import CliRunner

from hopsim import importers, parse
from hopsim.cli import main
from hopsim.engine import Action
from hopsim.imds import IPV4_ENDPOINT, XFF_HEADER
from hopsim.kinds import KINDS, Layer
from hopsim.outcome import Access, Cause
from hopsim.products import PRODUCTS, STACKS
from hopsim.profiles import profiles
from hopsim.topology import TopologyError, schema

INSTANCE = {"kind": "host", "forwarding": True, "masquerade": True}
LIMITS = (1, 2)
TOKENS = ("required", "optional")


def on_instance(principal: dict, *, extra: dict | None = None, hop_limit: int = 1,
                http_tokens: str = "required"):
    """imds - instance (forwarding, MASQUERADE) - docker0 - bridged, and `job`."""
    nodes = {"imds": {"kind": "imds"}, "instance": dict(INSTANCE), "docker0": {"kind": "bridge"},
             "bridged": {"kind": "container", "role": "attacker"},
             "job": {"role": "attacker", **principal}, **(extra or {})}
    links = [["imds", "instance"], ["instance", "docker0"], ["docker0", "bridged"]]
    return make(nodes, links, hop_limit=hop_limit, http_tokens=http_tokens)


def through_relay(relay: dict, *, hop_limit: int = 1, http_tokens: str = "required"):
    """An outside client that addresses `relay`, which runs on the instance."""
    nodes = {"imds": {"kind": "imds"}, "instance": dict(INSTANCE),
             "relay": {"kind": "relay", "runs_on": "instance", **relay},
             "outside": {"kind": "client", "role": "attacker", "via": ["relay"]}}
    links = [["imds", "instance"], ["instance", "outside"]]
    return make(nodes, links, hop_limit=hop_limit, http_tokens=http_tokens)


def access(topology, principal: str) -> Access:
    return play(topology, principal).outcome.access


# --- the measured table ---------------------------------------------------------------

STACK_ROWS = [{"kind": "container", "network": "slirp4netns", "runs_on": "instance"},
              {"kind": "container", "network": "pasta", "runs_on": "instance"}]
RELAY_ROWS = [{"product": "socat"}, {"product": "haproxy", "mode": "tcp"},
              {"product": "nginx", "mode": "stream"}, {"product": "microsocks"},
              {"product": "dante"}, {"product": "ssh", "mode": "local-forward"},
              {"product": "ssh", "mode": "socks"}]


@pytest.mark.parametrize("http_tokens", TOKENS)
@pytest.mark.parametrize("hop_limit", LIMITS)
def test_the_docker_bridge_control_needs_hop_limit_2(hop_limit, http_tokens):
    topology = on_instance({"kind": "container", "network": "pasta", "runs_on": "instance"},
                           hop_limit=hop_limit, http_tokens=http_tokens)
    got = access(topology, "bridged")
    if hop_limit == 2:
        assert got is Access.TOKEN
    else:  # the token dies at the instance; IMDSv1's GET is not TTL-limited
        assert got is (Access.NONE if http_tokens == "required" else Access.CREDENTIALS)


@pytest.mark.parametrize("http_tokens", TOKENS)
@pytest.mark.parametrize("hop_limit", LIMITS)
@pytest.mark.parametrize("stack", STACK_ROWS, ids=lambda s: s["network"])
def test_a_rootless_container_gets_the_token_at_every_hop_limit(stack, hop_limit, http_tokens):
    topology = on_instance(stack, hop_limit=hop_limit, http_tokens=http_tokens)
    outcome = play(topology, "job").outcome
    assert outcome.access is Access.TOKEN
    assert outcome.routers == 0 and outcome.receiver == "job"


@pytest.mark.parametrize("http_tokens", TOKENS)
@pytest.mark.parametrize("hop_limit", LIMITS)
@pytest.mark.parametrize("relay", RELAY_ROWS, ids=lambda r: "-".join(r.values()))
def test_an_outside_client_through_an_l4_relay_on_the_instance_gets_the_token(
        relay, hop_limit, http_tokens):
    outcome = play(through_relay(relay, hop_limit=hop_limit, http_tokens=http_tokens),
                   "outside").outcome
    assert outcome.access is Access.TOKEN
    assert outcome.receiver == "relay" and outcome.routers == 0


@pytest.mark.parametrize("relay", RELAY_ROWS[:1] + RELAY_ROWS[-1:], ids=["socat", "ssh-D"])
def test_imds_sees_the_instance_address_and_no_forwarded_for(relay):
    topology = through_relay(relay)
    exchange = play(topology, "outside")
    at_imds = [h for h in exchange.hops if h.node == "imds" and h.action is Action.DELIVER]
    assert at_imds
    for hop in at_imds:
        assert hop.packet["IP"].src == topology.nodes["instance"].address
        assert XFF_HEADER.encode() not in bytes(hop.packet["TCP"].payload)


def test_a_rootless_stack_sends_from_the_instance_address_with_a_fresh_ttl():
    topology = on_instance({"kind": "container", "network": "slirp4netns",
                            "runs_on": "instance"})
    hops = play(topology, "job").hops
    sent = [h for h in hops if h.action is Action.SEND and h.packet is not None
            and h.packet["IP"].dst == IPV4_ENDPOINT]
    assert sent and all(h.ttl_out == 64 for h in sent)
    assert all(h.packet["IP"].src == topology.nodes["instance"].address for h in sent)
    assert all("job's slirp4netns opens its own connection: fresh TTL 64" in h.detail
               for h in sent)
    own = [h for h in hops if h.action is Action.SEND and "not routed" in h.detail]
    assert own  # the container's own leg, to its stack


# --- composition ------------------------------------------------------------------------


@pytest.mark.parametrize("hop_limit, expected", [(1, Access.NONE), (2, Access.TOKEN)])
def test_socat_in_a_bridged_container_pays_the_containers_router(hop_limit, expected):
    linked = make({"imds": {"kind": "imds"}, "instance": dict(INSTANCE),
                   "docker0": {"kind": "bridge"}, "bridged": {"kind": "container"},
                   "sidecar": {"kind": "relay", "product": "socat", "runs_on": "bridged"},
                   "peer": {"kind": "container", "role": "attacker", "via": ["sidecar"]}},
                  [["imds", "instance"], ["instance", "docker0"], ["docker0", "bridged"],
                   ["docker0", "peer"]], hop_limit=hop_limit)
    assert linked.nodes["sidecar"].address == linked.nodes["bridged"].address
    outcome = play(linked, "peer").outcome
    assert outcome.access is expected
    assert outcome.receiver == "sidecar"
    if expected is Access.NONE:
        assert outcome.cause is Cause.TTL and outcome.dropped_at == "instance"


@pytest.mark.parametrize("hop_limit, expected", [(1, Access.NONE), (2, Access.TOKEN)])
def test_a_rootless_container_inside_a_rootful_bridged_one_pays_its_router(hop_limit, expected):
    topology = on_instance({"kind": "container", "network": "pasta", "runs_on": "bridged"},
                           hop_limit=hop_limit)
    outcome = play(topology, "job").outcome
    assert outcome.access is expected
    assert outcome.routers == 1


def test_a_rootless_container_in_a_host_network_container_sends_from_the_instance():
    topology = on_instance({"kind": "container", "network": "slirp4netns", "runs_on": "agent"},
                           extra={"agent": {"kind": "container", "runs_on": "instance"}})
    assert access(topology, "job") is Access.TOKEN
    assert topology.nodes["job"].address == topology.nodes["instance"].address


def test_a_rootless_container_in_a_rootless_one_crosses_both_stacks():
    topology = on_instance({"kind": "container", "network": "slirp4netns", "runs_on": "outer"},
                           extra={"outer": {"kind": "container", "network": "pasta",
                                            "runs_on": "instance"}})
    exchange = play(topology, "job")
    assert exchange.outcome.access is Access.TOKEN
    relays = [s.actor for s in exchange.route.stations if s.part.value == "relay"]
    assert relays == ["job", "outer"]


def test_a_vm_on_qemu_user_networking_is_a_rootless_principal():
    topology = on_instance({"kind": "host", "network": "qemu-user", "runs_on": "instance"})
    assert access(topology, "job") is Access.TOKEN


# --- what closes each path -----------------------------------------------------------------


@pytest.mark.parametrize("http_tokens", TOKENS)
def test_gvisor_tap_vsock_3_0_0_refused_the_metadata_address(http_tokens):
    stack = {"kind": "container", "network": "gvisor-tap-vsock", "runs_on": "instance"}
    refused = play(on_instance({**stack, "version": "3.0.0"}, http_tokens=http_tokens), "job")
    assert refused.outcome.access is Access.NONE  # the IMDSv1 GET is refused as well
    assert refused.outcome.cause is Cause.CLOSED and refused.outcome.by == ("job",)
    assert not refused.token_issued
    for version in (None, "3.0.1"):
        passes = {**stack, **({"version": version} if version else {})}
        assert access(on_instance(passes, hop_limit=1), "job") is Access.TOKEN


REFUSING = [r for r in RELAY_ROWS if r["product"] != "microsocks"]


@pytest.mark.parametrize("http_tokens", TOKENS)
@pytest.mark.parametrize("relay", REFUSING, ids=lambda r: "-".join(r.values()))
def test_block_imds_on_a_relay_closes_the_connection(relay, http_tokens):
    exchange = play(through_relay({**relay, "block_imds": True}, hop_limit=2,
                                  http_tokens=http_tokens), "outside")
    outcome = exchange.outcome
    assert outcome.access is Access.NONE
    assert outcome.cause is Cause.CLOSED and outcome.by == ("relay",)
    assert outcome.path == ("outside", "instance", "relay") or outcome.path[-1] == "relay"
    assert not exchange.token_issued
    assert any(h.action is Action.REFUSE and h.node == "relay" for h in exchange.hops)


def test_microsocks_cannot_be_told_to_refuse_imds():
    with pytest.raises(TopologyError) as caught:
        through_relay({"product": "microsocks", "block_imds": True})
    (problem,) = caught.value.problems
    assert problem.key == "nodes.relay.block_imds"
    assert problem.message.startswith(
        "microsocks has no rule that refuses a destination, so it cannot be told to refuse "
        "IMDS: microsocks -i 127.0.0.1 (loopback only)")
    assert problem.message.endswith(
        "filters: [{chain: output, owner: relay, to: imds, action: drop}])")
    # a relay without a product is hopsim's generic one: its block_imds is taken as written
    assert through_relay({"block_imds": True}).nodes["relay"].relay.refuses_imds


def test_block_imds_in_a_rootless_containers_namespace_leaves_it_no_route():
    topology = on_instance({"kind": "container", "network": "pasta", "runs_on": "instance",
                            "block_imds": True})
    outcome = play(topology, "job").outcome
    assert outcome.access is Access.NONE and outcome.cause is Cause.UNREACHABLE
    assert access(topology, "instance") is Access.TOKEN


def test_an_owner_matched_output_rule_stops_the_rootless_stack_only():
    rule = {"chain": "output", "owner": "job", "to": "imds", "action": "drop"}
    filtered = make({"imds": {"kind": "imds"},
                     "instance": {**INSTANCE, "role": "workload", "filters": [rule]},
                     "job": {"kind": "container", "network": "slirp4netns",
                             "runs_on": "instance", "role": "attacker"},
                     "agent": {"kind": "container", "runs_on": "instance", "role": "workload"}},
                    [["imds", "instance"]], http_tokens="optional")
    job = play(filtered, "job").outcome
    assert job.access is Access.NONE and job.cause is Cause.FILTERED
    assert job.filtered_at == "instance"
    assert access(filtered, "instance") is Access.TOKEN
    assert access(filtered, "agent") is Access.TOKEN


def test_an_owner_rule_on_the_relays_host_stops_the_relay():
    rule = {"chain": "output", "owner": "relay", "to": "imds", "action": "reject"}
    topology = make({"imds": {"kind": "imds"},
                     "instance": {**INSTANCE, "role": "workload", "filters": [rule]},
                     "relay": {"kind": "relay", "product": "socat", "runs_on": "instance"},
                     "outside": {"kind": "client", "role": "attacker", "via": ["relay"]}},
                    [["imds", "instance"], ["instance", "outside"]])
    outside = play(topology, "outside").outcome
    assert outside.access is Access.NONE and outside.cause is Cause.FILTERED
    assert "closed the connection" in outside.filter  # an L4 relay answers no 502
    assert access(topology, "instance") is Access.TOKEN


def test_sweep_classes_agree_with_walks_for_stacks_that_differ_only_in_version():
    topology = on_instance({"kind": "container", "network": "gvisor-tap-vsock",
                            "runs_on": "instance"}, extra={
        "old": {"kind": "container", "network": "gvisor-tap-vsock", "version": "3.0.0",
                "runs_on": "instance", "role": "attacker"},
        "agent": {"kind": "container", "runs_on": "instance", "role": "attacker"}})
    found = profiles(topology)
    for name in ("job", "old", "agent"):
        assert found[name].at(1) == play(topology, name).outcome
    assert found["old"].at(1).access is Access.NONE
    assert found["job"].at(1).access is Access.TOKEN


# --- the tables --------------------------------------------------------------------------


def test_the_relay_kind_ends_tcp_at_l4():
    assert KINDS["relay"].layer is Layer.L4 and Layer.L4.ends_tcp and Layer.L7.ends_tcp
    assert not Layer.L3.ends_tcp and not Layer.ENDPOINT.ends_tcp
    policy = KINDS["relay"].relay
    assert policy.methods is None and not policy.adds_xff and policy.forwards_headers


def test_every_l4_product_and_stack_names_its_sources_and_what_closes_it():
    l4 = [s for p in PRODUCTS.values() for s in p.setups if s.kind == "relay"]
    assert {s.label for s in l4} == {
        "socat", "ssh (local-forward)", "ssh (socks)", "haproxy (tcp)", "nginx (stream)",
        "microsocks", "dante"}
    for setup in l4:
        assert setup.sources and setup.directives, setup.label
        assert all(len(s) > 40 for s in setup.sources), setup.label
        for d in setup.directives:
            assert d.change in ("block_imds=true", "remove") and d.where and d.source
            assert d.written() == d.text  # no {methods} in an L4 directive
    for stack in STACKS.values():
        assert stack.sources and stack.directives and stack.certainty in ("M", "U"), stack.name
    # emulated stacks are the ones Debian ships here
    assert {s.name for s in STACKS.values() if s.binary} == {"slirp4netns", "pasta"}
    ssh = PRODUCTS["ssh"].setup("socks")
    assert ssh.directive("block_imds", True).text == "AllowTcpForwarding no"
    assert any("PermitOpen" in d.text for d in PRODUCTS["ssh"].setup("local-forward").directives)
    assert PRODUCTS["dante"].setup(None).directive("block_imds", True).written() == (
        "socks block { from: 0.0.0.0/0 to: 169.254.169.254/32 }")
    assert PRODUCTS["microsocks"].setup(None).directive("block_imds", True) is None


def test_a_product_that_is_a_proxy_and_a_relay_takes_the_kinds_setup():
    assert through_relay({"product": "nginx"}).nodes["relay"].mode == "stream"
    assert through_relay({"product": "haproxy"}).nodes["relay"].mode == "tcp"


# --- errors --------------------------------------------------------------------------------

BASE = """\
name: t
description: a rootless job
nodes:
  imds: {kind: imds}
  instance: {kind: host}
  docker0: {kind: bridge}
  job: {kind: container, network: pasta, runs_on: instance}
links:
  - [imds, instance]
  - [instance, docker0]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(TopologyError) as caught:
        parse(text, "t.yaml")
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize("job, expected", [
    ("{kind: container, network: pasta}",
     "t.yaml:7: nodes.job.network: a container on pasta has no links: its stack opens its "
     "connections in another node's stack; name it with runs_on: NODE (the instance, or the "
     "container the rootless user runs in)"),
    ("{kind: container, network: qemu-user, runs_on: instance}",
     "t.yaml:7: nodes.job.network: qemu-user is the network of a host, not of a container"),
    ("{kind: container, network: slirp, runs_on: instance}",
     "t.yaml:7: nodes.job.network: expected one of slirp4netns, pasta, gvisor-tap-vsock, "
     "bypass4netns, qemu-user, got 'slirp' (did you mean 'slirp4netns'?)"),
    ("{kind: container, version: 3.0.0}",
     "t.yaml:7: nodes.job.version: version goes with network (e.g. network: "
     "gvisor-tap-vsock, version: 3.0.0)"),
    ("{kind: container, network: gvisor-tap-vsock, version: latest, runs_on: instance}",
     "t.yaml:7: nodes.job.version: expected a version such as 3.0.1, got 'latest'"),
    ("{kind: container, network: pasta, runs_on: docker0}",
     "t.yaml:7: nodes.job.runs_on: runs_on must name a host or a container (the node whose "
     "stack it opens connections in), but 'docker0' is a bridge"),
    ("{kind: host, runs_on: instance}",
     "t.yaml:7: nodes.job.runs_on: a host runs on another node only as a VM with a "
     "user-mode network: add network: qemu-user (or another stack)"),
    ("{kind: container, network: pasta, runs_on: job}",
     "t.yaml:7: nodes.job.runs_on: a node cannot run on itself"),
    ("{kind: relay, product: ssh, runs_on: instance}",
     "t.yaml:7: nodes.job.product: ssh is a local forward (-L) or a SOCKS server (-D), and "
     "they differ on how a client addresses it: say which with mode: local-forward or "
     "mode: socks"),
    ("{kind: proxy, product: socat, runs_on: instance}",
     "t.yaml:7: nodes.job.product: socat is a relay, not a proxy: write kind: relay"),
    ("{kind: proxy, product: nginx, mode: stream, runs_on: instance}",
     "t.yaml:7: nodes.job.mode: nginx in mode stream is a relay: write kind: relay"),
    ("{kind: relay, methods: [GET], runs_on: instance}",
     "t.yaml:7: nodes.job.methods: unknown key 'methods' for a relay node; expected one of "
     "kind, role, runs_on, via, family, address, address6, description, gateway, routes, "
     "filters, block_imds, product, mode"),
])
def test_each_mistake_is_one_located_problem(job, expected):
    assert problems(BASE.replace("{kind: container, network: pasta, runs_on: instance}",
                                 job)) == [expected]


def test_a_circle_of_runs_on_is_refused():
    text = BASE + ("  a: {kind: container, network: pasta, runs_on: b}\n"
                   "  b: {kind: container, network: pasta, runs_on: a}\n")
    text = text.replace("links:\n  - [imds, instance]\n  - [instance, docker0]\n", "") + (
        "links:\n  - [imds, instance]\n  - [instance, docker0]\n")
    found = problems(text)
    assert any("runs_on goes round in a circle: a -> b -> a" in p for p in found), found


@pytest.mark.parametrize("rule, expected", [
    ("{chain: input, owner: job, action: drop}",
     "owner matches the socket a process opens, which only the output chain knows: write "
     "chain: output"),
    ("{chain: output, owner: jb, action: drop}", "no node 'jb' (did you mean 'job'?)"),
    ("{chain: output, owner: other, action: drop}",
     "'other' runs on 'docker0host': owner names a node whose process opens its sockets in "
     "'instance''s stack (a relay or a user-space network stack with runs_on: instance)"),
])
def test_an_owner_rule_names_a_process_in_this_stack_on_output(rule, expected):
    text = BASE.replace("instance: {kind: host}", f"instance: {{kind: host, filters: [{rule}]}}")
    text = text.replace("links:", "  docker0host: {kind: host}\n"
                        "  other: {kind: container, network: pasta, runs_on: docker0host}\n"
                        "links:\n  - [docker0, docker0host]")
    found = problems(text)
    assert len(found) == 1 and found[0].endswith(expected), found
    assert found[0].startswith("t.yaml:5: nodes.instance.filters.0.owner: "), found


def test_a_bad_network_is_one_error_line_and_exit_2(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(BASE.replace("network: pasta", "network: pasta2"))
    result = CliRunner().invoke(main, ["check", str(path)], env={"NO_COLOR": "1"})
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert lines == [f"error: {path}:7: nodes.job.network: expected one of slirp4netns, pasta, "
                     "gvisor-tap-vsock, bypass4netns, qemu-user, got 'pasta2' (did you mean "
                     "'pasta'?)"]
    assert "Traceback" not in result.output


# --- the reports name the stack and the relay leg ------------------------------------------

RUNNER = "topologies/rootless-ci-runner.yaml"


def cli(*args: str):
    return CliRunner().invoke(main, list(args), env={"NO_COLOR": "1", "COLUMNS": "200",
                                                      "TERM": "dumb"})


def test_trace_shows_the_unrouted_leg_and_the_stacks_fresh_connection():
    result = cli("trace", str(ROOT / RUNNER), "--from", "ci-job")
    assert result.exit_code == 0, result.output
    assert "(to its slirp4netns stack, in its own namespace: not routed)" in result.output
    assert "ci-job's slirp4netns opens its own connection: fresh TTL 64" in result.output


def test_draw_and_explain_name_the_stack():
    mermaid = cli("draw", str(ROOT / RUNNER), "--format", "mermaid").output
    assert "its slirp4netns re-sends from instance at TTL 64" in mermaid
    assert "its pasta re-sends from instance at TTL 64" in mermaid
    explained = cli("explain", str(ROOT / RUNNER)).output
    assert "ci-job gets a token through its slirp4netns stack" in explained
    assert "blackhole IMDS in ci-job's own namespace (block_imds)" in explained


def test_show_json_carries_the_stack_only_where_there_is_one():
    result = cli("show", str(ROOT / RUNNER), "--format", "json")
    assert result.exit_code == 0, result.output
    nodes = {n["name"]: n for n in json.loads(result.output)["topology"]["nodes"]}
    assert nodes["ci-job"]["network"] == {"stack": "slirp4netns", "version": None}
    assert "network" not in nodes["build"] and "network" not in nodes["instance"]


# --- the files people have: Podman's rootless network_mode ---------------------------------

ROOTLESS_COMPOSE = """\
services:
  app:
    image: python:3.12
  ci:
    image: alpine
    network_mode: slirp4netns
    x-hopsim: {role: attacker}
  ci2:
    image: alpine
    network_mode: "pasta:--map-gw"
  front:
    image: nginx
    network_mode: pasta
    ports: ["8080:80"]
"""


def test_compose_network_mode_slirp4netns_and_pasta_are_rootless_stacks(tmp_path):
    path = tmp_path / "compose.yaml"
    path.write_text(ROOTLESS_COMPOSE)
    topology = importers.load(path).topology
    assert (topology.nodes["ci"].network, topology.nodes["ci"].runs_on) == (
        "slirp4netns", "instance")
    assert topology.nodes["ci2"].network == "pasta"  # Podman's options after the colon
    assert topology.nodes["front"].runs_on == "instance"  # a relay re-opened at the instance
    assert access(topology, "ci") is Access.TOKEN  # at AWS's default hop limit 1
    assert access(topology, "app") is not Access.TOKEN  # the bridged one needs 2


def test_compose_vpn_on_a_rootless_stack_is_one_line_not_a_model(tmp_path):
    path = tmp_path / "compose.yaml"
    path.write_text("services:\n  vpn:\n    image: wireguard\n    network_mode: pasta\n")
    result = cli("check", str(path))
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {path}:4: services.vpn.network_mode: network_mode pasta: a VPN "
                      "endpoint on a rootless user-space stack is not modelled"]


def test_compose_relay_images_become_l4_relays_only_where_they_lead_to_imds(tmp_path):
    path = tmp_path / "compose.yaml"
    path.write_text("""\
services:
  imds-forward:
    image: alpine/socat
    command: TCP-LISTEN:8081,fork,reuseaddr TCP:169.254.169.254:80
    ports: ["8081:8081"]
  db-forward:
    image: alpine/socat
    command: ["TCP-LISTEN:5432,fork", "TCP:db.internal:5432"]
  socks:
    image: vimagick/microsocks
    ports: ["1080:1080"]
""")
    topology = importers.load(path).topology.with_imds(hop_limit=2)
    forward, socks = topology.nodes["imds-forward"], topology.nodes["socks"]
    assert (forward.kind, forward.product) == ("relay", "socat")
    assert (socks.kind, socks.product) == ("relay", "microsocks")
    assert topology.nodes["db-forward"].kind == "container"  # its upstream is not IMDS
    # bridged relays pay the instance's router: their outsiders hold the token at 2
    assert access(topology, "outsider-imds-forward") is Access.TOKEN
    assert access(topology, "outsider-socks") is Access.TOKEN
    assert access(topology.with_imds(hop_limit=1, http_tokens="required"),
                  "outsider-socks") is Access.NONE


@pytest.mark.parametrize("action, waits", [("drop", True), ("reject", False)])
def test_an_l4_relays_client_waits_while_its_upstream_connect_is_dropped(action, waits):
    """Measured: an owner drop rule for a rootless stack leaves its client's
    connect() unfinished (timed out); a refused upstream connect closes it."""
    rule = {"chain": "output", "owner": "job", "to": "imds", "action": action}
    topology = make({"imds": {"kind": "imds"},
                     "instance": {"kind": "host", "filters": [rule]},
                     "job": {"kind": "container", "network": "pasta", "runs_on": "instance",
                             "role": "attacker"}}, [["imds", "instance"]])
    outcome = play(topology, "job").outcome
    assert outcome.cause is Cause.FILTERED and outcome.waited is waits
    assert ("job's pasta and job wait until their timeout" in outcome.filter) is waits


def test_the_picture_names_each_stack_and_the_l4_relay_in_its_legend():
    runner = cli("draw", str(ROOT / RUNNER), "--format", "svg").output
    assert "container on slirp4netns, attacker" in runner
    assert "a user-space stack re-sends from there, TTL 64" in runner
    sidecar = cli("draw", str(ROOT / "topologies/socat-sidecar.yaml"), "--format", "svg").output
    assert "L4 relay: re-sends with TTL 64" in sidecar
    assert "runs on the node above it" in sidecar  # the sidecar runs on a container
    # an L7-only picture keeps its legend word for word
    nginx = cli("draw", str(ROOT / "topologies/nginx-reverse-proxy.yaml"), "--format",
                "svg").output
    assert "L7 relay: re-sends with TTL 64" in nginx and "L4" not in nginx


def test_the_schema_takes_the_new_keys_as_the_loader_does():
    checker = jsonschema.Draft7Validator(schema.json_schema())
    good = yaml.safe_load(BASE.replace(
        "instance: {kind: host}",
        "instance: {kind: host, filters: [{chain: output, owner: job, to: imds, "
        "action: drop}]}"))
    good["nodes"]["relay"] = {"kind": "relay", "product": "ssh", "mode": "socks",
                              "runs_on": "instance", "block_imds": True}
    good["nodes"]["vm"] = {"kind": "host", "network": "qemu-user", "runs_on": "instance"}
    good["nodes"]["old"] = {"kind": "container", "network": "gvisor-tap-vsock",
                            "version": "3.0.0", "runs_on": "instance"}
    assert [e.message for e in checker.iter_errors(good)] == []
    parse(yaml.safe_dump(good), "t.yaml")  # and the loader takes it
    bad = yaml.safe_load(yaml.safe_dump(good))
    bad["nodes"]["job"]["network"] = "slirp"
    assert list(checker.iter_errors(bad))
    bad = yaml.safe_load(yaml.safe_dump(good))
    bad["nodes"]["relay"]["methods"] = ["GET"]  # an L4 relay reads no HTTP
    assert list(checker.iter_errors(bad))


def test_kubernetes_and_ecs_socat_images_forwarding_to_imds_are_l4_relays(tmp_path):
    pods = tmp_path / "pods.yaml"
    pods.write_text("""\
apiVersion: v1
kind: Pod
metadata: {name: imds-forward}
spec:
  containers:
    - {name: socat, image: alpine/socat, args: ["TCP-LISTEN:8081,fork", "TCP:169.254.169.254:80"],
       ports: [{containerPort: 8081, hostPort: 8081}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db-forward}
spec:
  containers:
    - {name: socat, image: alpine/socat, args: ["TCP-LISTEN:5432,fork", "TCP:db:5432"]}
""")
    nodes = importers.load(pods).topology.nodes
    assert (nodes["imds-forward"].kind, nodes["imds-forward"].product) == ("relay", "socat")
    assert nodes["db-forward"].kind == "container"
    task = tmp_path / "task.json"
    task.write_text(json.dumps({"family": "fwd", "networkMode": "bridge",
                                "containerDefinitions": [{
                                    "name": "socat", "image": "alpine/socat",
                                    "command": ["TCP-LISTEN:8081,fork",
                                                "TCP:169.254.169.254:80"],
                                    "portMappings": [{"containerPort": 8081,
                                                      "hostPort": 8081}]}]}))
    topology = importers.load(task).topology
    assert (topology.nodes["socat"].kind, topology.nodes["socat"].product) == ("relay", "socat")
    # a bridged task's relay pays the instance's router: its outsider holds the token at 2
    assert access(topology.with_imds(hop_limit=2), "outsider-socat") is Access.TOKEN

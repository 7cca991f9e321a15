"""Rootless containers and L4 relays on the real kernel (issue 22): the
user-space stacks (slirp4netns, pasta) run as unprivileged uids, the L4
relays' binaries closed by their own directives, owner-matched output rules,
and the composition with routed containers; each compared with the
simulator by `verify`. The plan and the configurations are checked as any
user; the rest needs root (markers `kernel` and `products`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from builders import TOPOLOGIES
from click.testing import CliRunner

from hopsim import load, parse, socks
from hopsim.cli import main
from hopsim.emulate import build, netns
from hopsim.emulate import products as real
from hopsim.emulate import stacks as user
from hopsim.emulate import verify as verify_one
from hopsim.report.wording import reason

PLAIN = {"NO_COLOR": "1", "COLUMNS": "80", "FORCE_COLOR": None, "TERM": "dumb"}
RUNNER = TOPOLOGIES / "rootless-ci-runner.yaml"
WHY_NOT = netns.missing()
kernel = pytest.mark.skipif(WHY_NOT is not None, reason=f"needs the kernel: {WHY_NOT}")


def run(*args: str):
    return CliRunner().invoke(main, list(args), env=PLAIN)


def doc_of(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def parsed(doc: dict):
    return parse(yaml.safe_dump(doc, sort_keys=False), "<t>")


def _disagreements(check) -> str:
    return "\n".join(
        f"hop limit {c.hop_limit} {c.principal}: simulator {c.simulated.access.value} "
        f"{'>'.join(c.simulated.path)} ({reason(c.simulated)}); kernel "
        f"{c.measured.access.value} {'>'.join(c.measured.path)} ({reason(c.measured)})"
        for c in check.disagreements)


def measured(check) -> dict[tuple[int, str], str]:
    return {(c.hop_limit, c.principal): c.measured.access.value for c in check.cases}


# --- SOCKS5 bytes ------------------------------------------------------------------


def test_socks_connect_asks_for_the_address_and_port_in_network_order():
    assert socks.GREETING == b"\x05\x01\x00"
    assert socks.connect_request("169.254.169.254", 80) == b"\x05\x01\x00\x01\xa9\xfe\xa9\xfe\x00P"
    assert socks.connect_request("fd00:ec2::254", 80)[3:4] == b"\x04"
    assert len(socks.connect_request("fd00:ec2::254", 80)) == 4 + 16 + 2


def test_a_socks_refusal_says_the_relays_reply():
    socks.check_reply(b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00")
    # dante's answer to a `socks block` rule, as measured
    with pytest.raises(socks.SocksRefused, match="connection not allowed by ruleset"):
        socks.check_reply(b"\x05\x02\x00\x01\xa9\xfe\xa9\xfe\x00P")
    # ssh -D when sshd refuses the forward: the connection closes, no reply
    with pytest.raises(socks.SocksRefused, match="without a reply"):
        socks.check_reply(b"")
    with pytest.raises(socks.SocksRefused, match="asks for method 0x02"):
        socks.check_method(b"\x05\x02")


# --- the plan and the configurations: any user ----------------------------------------


def test_dry_run_shows_each_stack_run_by_its_own_uid_in_the_instance():
    result = run("emulate", "--dry-run", str(RUNNER))
    assert result.exit_code == 0, result.output
    out = result.output
    holders = [line for line in out.splitlines() if "unshare -Urn sleep infinity" in line]
    assert len(holders) == 2
    assert all("-instance setpriv" in line for line in holders)
    assert "--reuid=200000" in holders[0] and "--reuid=200001" in holders[1]
    assert ("slirp4netns --configure --mtu=65520 --disable-host-loopback --enable-sandbox "
            "--enable-seccomp") in out
    assert "pasta --config-net --foreground -i eth" in out
    assert out.count("ip netns attach ") == 2
    # hopsim's own relay does not stand in for a stack
    assert "socat" not in out


def test_an_owner_rule_matches_the_uid_the_stack_runs_as():
    doc = doc_of(RUNNER)
    doc["nodes"]["instance"]["filters"] = [
        {"chain": "output", "owner": "ci-job-pasta", "to": "imds", "action": "drop"}]
    plan = build.plan(parsed(doc), "hs1-0-")
    ruleset = plan.namespaces["instance"].nft_ruleset()
    assert "meta l4proto tcp meta skuid 200001 ip daddr 169.254.169.254 drop" in ruleset
    assert "skuid 200000" not in ruleset


def test_an_owner_rule_on_a_relay_run_as_root_is_refused():
    doc = doc_of(TOPOLOGIES / "products" / "haproxy-tcp.yaml")
    doc["nodes"]["instance"]["filters"] = [
        {"chain": "output", "owner": "relay", "to": "imds", "action": "drop"}]
    with pytest.raises(build.PlanError, match="owner: relay is not emulated: the emulator "
                       "runs haproxy as root"):
        build.plan(parsed(doc), "hs1-0-")


def test_socat_named_by_an_owner_rule_runs_as_the_uid_the_rule_matches():
    doc = doc_of(TOPOLOGIES / "products" / "socat-forward.yaml")
    doc["nodes"]["instance"]["filters"] = [
        {"chain": "output", "owner": "relay", "to": "imds", "action": "drop"}]
    plan = build.plan(parsed(doc), "hs1-0-")
    assert f"meta skuid {build.RELAY_UIDS} " in plan.namespaces["instance"].nft_ruleset()
    (relay,) = real.relays(plan)
    assert all(argv[:2] == ["setpriv", f"--reuid={build.RELAY_UIDS}"]
               for argv in relay.commands())


def test_an_owner_rule_on_an_sshd_shared_by_two_relays_is_refused():
    doc = doc_of(TOPOLOGIES / "ssh-bastion.yaml")
    doc["nodes"]["bastion"]["filters"] = [
        {"chain": "output", "owner": "sshd-forward", "to": "imds", "action": "drop"}]
    with pytest.raises(build.PlanError, match="share one sshd"):
        build.plan(parsed(doc), "hs1-0-")


@pytest.mark.parametrize("stack", ["gvisor-tap-vsock", "bypass4netns"])
def test_a_stack_with_no_binary_here_is_refused_with_the_reason(stack, tmp_path):
    doc = doc_of(RUNNER)
    doc["nodes"]["ci-job"]["network"] = stack
    path = tmp_path / "stack.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = run("emulate", "--dry-run", str(path))
    assert result.exit_code == 2
    assert "ci-job uses" in result.output
    assert "has no Debian package here: the simulator models it, the emulator cannot run it" \
        in result.output
    assert "Traceback" not in result.output


def test_one_sshd_serves_both_ssh_relays_of_a_bastion():
    plan = build.plan(load(TOPOLOGIES / "ssh-bastion.yaml"), "hs1-0-")
    relays = real.relays(plan)
    daemons = [r for r in relays if r.commands()]
    assert [r.node for r in daemons] == ["sshd-forward"]
    config = daemons[0].files()["sshd_config"]
    # each relay listens where its own clients reach it
    assert config.count("ListenAddress ") == 4
    directives = [line.split()[0] for line in config.splitlines() if not line.startswith("#")]
    assert "AllowTcpForwarding" not in directives and "PermitOpen" not in directives
    socks_relay = next(r for r in relays if r.node == "sshd-socks")
    assert socks_relay.key_directory == daemons[0].directory


@pytest.mark.parametrize("product,line", [
    ("ssh-local-forward", "AllowTcpForwarding no"),
    ("dante", "socks block { from: 0.0.0.0/0 to: 169.254.169.254/32 }"),
    ("socat-forward", "TCP4:127.0.0.1:9"),
    ("haproxy-tcp", "server imds 127.0.0.1:9"),
    ("nginx-stream", "proxy_pass 127.0.0.1:9;"),
])
def test_block_imds_on_an_l4_relay_is_the_products_own_refusal(product, line):
    doc = doc_of(TOPOLOGIES / "products" / f"{product}.yaml")
    doc["nodes"]["relay"]["block_imds"] = True
    [relay] = real.relays(build.plan(parsed(doc), "hs1-0-"))
    text = "\n".join([*relay.files().values(), *(" ".join(a) for a in relay.commands())])
    text = "\n".join(x for x in text.splitlines() if not x.startswith("# hopsim:"))
    assert line in text
    assert "169.254.169.254:80" not in text.replace("to: 169.254.169.254/32", "")


# --- the real binaries ------------------------------------------------------------------


def _missing() -> str | None:
    if WHY_NOT:
        return f"needs the kernel: {WHY_NOT}"
    plan = build.plan(load(RUNNER), "hs1-0-")
    why = user.missing(user.stacks(plan))
    for name in ("ssh-bastion.yaml", "products/dante.yaml", "products/socat-forward.yaml",
                 "products/haproxy-tcp.yaml", "products/nginx-stream.yaml",
                 "products/microsocks.yaml"):
        why = why or real.missing(real.relays(build.plan(load(TOPOLOGIES / name), "hs1-0-")))
    return f"needs Debian's packages (.ci/run installs them): {why}" if why else None


BINARIES_MISSING = _missing()
binaries = pytest.mark.skipif(BINARIES_MISSING is not None, reason=BINARIES_MISSING or "")


def agreed(topology, hop_limits=(1, 2), family=4):
    check = verify_one(topology, hop_limits, family)
    assert not check.disagreements, _disagreements(check)
    return check


@pytest.mark.kernel
@pytest.mark.products
@binaries
def test_the_rootless_runner_with_tokens_optional_agrees_at_hop_limits_1_and_2():
    check = agreed(load(RUNNER).with_imds(http_tokens="optional"))
    # IMDSv1 is on: the bridged build falls back to credentials at 1; the rootless
    # jobs hold the token through their stacks at both.
    assert measured(check) == {
        (1, "build"): "credentials", (1, "ci-job"): "token", (1, "ci-job-pasta"): "token",
        (1, "instance"): "token",
        (2, "build"): "token", (2, "ci-job"): "token", (2, "ci-job-pasta"): "token",
        (2, "instance"): "token"}


@pytest.mark.kernel
@pytest.mark.products
@binaries
def test_an_owner_rule_for_one_rootless_users_stack_closes_that_stack_only():
    doc = doc_of(RUNNER)
    doc["nodes"]["instance"]["filters"] = [
        {"chain": "output", "owner": "ci-job", "to": "imds", "action": "drop"}]
    check = agreed(parsed(doc))
    found = measured(check)
    assert found[1, "ci-job"] == found[2, "ci-job"] == "none"  # slirp4netns' uid: dropped
    assert found[1, "ci-job-pasta"] == found[2, "ci-job-pasta"] == "token"  # another uid
    assert found[1, "instance"] == "token"  # root's sockets: not matched


@pytest.mark.kernel
@pytest.mark.products
@binaries
def test_block_imds_in_a_rootless_namespace_closes_it_before_its_stack():
    doc = doc_of(RUNNER)
    doc["nodes"]["ci-job-pasta"]["block_imds"] = True
    found = measured(agreed(parsed(doc)))
    assert found[1, "ci-job-pasta"] == found[2, "ci-job-pasta"] == "none"
    assert found[1, "ci-job"] == "token"


@pytest.mark.kernel
@pytest.mark.products
@binaries
@pytest.mark.parametrize("stack", ["slirp4netns", "pasta"])
def test_a_rootless_container_inside_a_bridged_rootful_one_pays_its_router(stack):
    doc = doc_of(RUNNER)
    doc["nodes"]["ci-job"] = {"kind": "container", "network": stack, "runs_on": "build",
                              "role": "attacker"}
    del doc["nodes"]["ci-job-pasta"]
    doc.pop("expect", None)
    found = measured(agreed(parsed(doc)))
    assert (found[1, "ci-job"], found[2, "ci-job"]) == ("none", "token")


@pytest.mark.kernel
@pytest.mark.products
@binaries
@pytest.mark.parametrize("product", ["ssh-local-forward", "ssh-socks", "dante", "socat-forward",
                                     "haproxy-tcp", "nginx-stream"])
def test_each_l4_relay_closed_by_its_own_directive_agrees(product):
    doc = doc_of(TOPOLOGIES / "products" / f"{product}.yaml")
    doc["nodes"]["relay"]["block_imds"] = True
    doc.pop("expect", None)
    found = measured(agreed(parsed(doc)))
    assert found[1, "attacker"] == found[2, "attacker"] == "none"


@pytest.mark.kernel
@pytest.mark.products
@binaries
def test_an_owner_rule_on_sshds_user_closes_its_forward():
    # sshd opens a forward from its user's session (nobody, 65534), not as root
    doc = doc_of(TOPOLOGIES / "products" / "ssh-local-forward.yaml")
    doc["nodes"]["instance"]["filters"] = [
        {"chain": "output", "owner": "relay", "to": "imds", "action": "drop"}]
    doc.pop("expect", None)
    found = measured(agreed(parsed(doc), (1,)))
    assert found[1, "attacker"] == "none" and found[1, "instance"] == "token"


@pytest.mark.kernel
@pytest.mark.products
@binaries
def test_no_stack_or_ssh_client_outlives_its_run():
    agreed(load(TOPOLOGIES / "ssh-bastion.yaml"), (1,))
    agreed(load(RUNNER), (1,))
    left = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            uid = os.stat(entry).st_uid
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue  # dead, waiting for its parent (init) to reap it
        except OSError:
            continue
        if uid >= build.STACK_UIDS or ("ssh -F /dev/null" in command and "hs" in command):
            left.append(command)
    assert left == []
    assert netns.existing(netns.run_prefix()) == []

"""Products: the table of product defaults (hopsim.products), the keys that
name them, their real binaries in namespaces (hopsim.emulate.products), and
the products table of docs/products.md.

Tests marked `products` run Debian's binaries (nginx, apache2 with
ModSecurity and the CRS, squid, haproxy, tinyproxy, php) in network
namespaces: they need root and the packages that .ci/run installs, and skip
with the reason (the missing package) otherwise.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest
import yaml
from builders import ROOT, TOPOLOGIES
from click.testing import CliRunner

from hopsim import analysis, load, parse
from hopsim.cli import main
from hopsim.emulate import build, netns
from hopsim.emulate import products as real
from hopsim.emulate import verify as verify_one
from hopsim.emulate.build import PlanError
from hopsim.emulate.flows import Flows
from hopsim.engine import play
from hopsim.http import HTTP_PORT
from hopsim.imds import token_request
from hopsim.loader import topology_files
from hopsim.outcome import Access, Cause
from hopsim.products import PRODUCTS, Form, setups
from hopsim.report import products as products_report
from hopsim.report.wording import reason
from hopsim.topology import TopologyError

PLAIN = {"NO_COLOR": "1", "COLUMNS": "80", "FORCE_COLOR": None, "TERM": "dumb"}
PRODUCT_FILES = topology_files([TOPOLOGIES / "products"])
DOC = (ROOT / "docs" / "products.md").read_text()


def run(*args: str):
    return CliRunner().invoke(main, list(args), env=PLAIN)


def relay_doc(**relay: object) -> dict:
    """attacker - instance[relay] - imds, as the article's open relays."""
    return {"name": "t", "description": "a relay on the instance",
            "imds": {"hop_limit": 1, "http_tokens": "required"},
            "nodes": {"imds": {"kind": "imds"}, "instance": {"kind": "host", "role": "workload"},
                      "relay": {"runs_on": "instance", **relay},
                      "attacker": {"kind": "client", "role": "attacker"}},
            "links": [["imds", "instance"], ["instance", "attacker"]]}


def topo(**relay: object):
    return parse(yaml.safe_dump(relay_doc(**relay)), "<relay>")


# --- the table and the keys -------------------------------------------------------------


@pytest.mark.parametrize("product,mode,attacker", [
    ("nginx", None, Access.TOKEN), ("apache", "reverse", Access.NONE),
    ("apache", "forward", Access.TOKEN), ("squid", None, Access.NONE),
    ("squid", "reverse", Access.NONE), ("haproxy", None, Access.TOKEN),
    ("tinyproxy", None, Access.TOKEN)])
def test_a_proxy_product_decides_whether_the_attacker_gets_the_token(product, mode, attacker):
    # The measured cases of docs/products.md: four of seven open proxies leak.
    relay = {"kind": "proxy", "product": product, **({"mode": mode} if mode else {})}
    assert play(topo(**relay), "attacker").outcome.access is attacker


def test_modsecurity_refuses_the_put_with_403_not_405():
    outcome = play(topo(kind="waf", product="modsecurity-crs"), "attacker").outcome
    assert (outcome.access, outcome.cause, outcome.status) == (Access.NONE, Cause.METHOD, 403)
    assert reason(outcome).startswith("PUT refused by relay (403): it passes only GET, HEAD, "
                                     "POST, OPTIONS")


def test_the_php_ssrf_app_sends_the_put_as_a_get():
    exchange = play(topo(kind="ssrf", product="php-ssrf"), "attacker", record=True)
    outcome = exchange.outcome
    assert (outcome.access, outcome.cause, outcome.sent_as) == (Access.NONE, Cause.METHOD, "GET")
    assert "relay sent the PUT as a GET: IMDS answered 405" in reason(outcome)
    at_imds = [h for h in exchange.hops if h.node == "imds" and h.action.value == "delivered"]
    assert at_imds[0].message.startswith("GET /latest/api/token")


def test_a_key_on_the_node_overrides_the_product():
    nginx = topo(kind="proxy", product="nginx", adds_xff=True).nodes["relay"].relay
    assert nginx.adds_xff and nginx.methods is None
    waf = topo(kind="waf", product="modsecurity-crs", methods=["GET"]).nodes["relay"].relay
    assert waf.methods == ("GET",) and waf.refusal_status == 403  # still ModSecurity's answer


def test_a_product_with_one_way_of_relaying_takes_its_mode_and_squid_defaults_to_forward():
    assert topo(kind="proxy", product="nginx").nodes["relay"].mode == "reverse"
    assert topo(kind="proxy", product="squid").nodes["relay"].mode == "forward"
    assert topo(kind="ssrf", product="php-ssrf").nodes["relay"].mode is None


def test_validate_locates_each_bad_product_or_mode(tmp_path):
    doc = relay_doc(kind="proxy", product="apache")
    doc["nodes"] |= {
        "a": {"kind": "proxy", "runs_on": "instance", "product": "nginx", "mode": "forward"},
        "b": {"kind": "waf", "runs_on": "instance", "product": "nginx"},
        "c": {"kind": "proxy", "runs_on": "instance", "mode": "reverse"},
        "d": {"kind": "proxy", "runs_on": "instance", "product": "ngnix"},
        "e": {"kind": "ssrf", "runs_on": "instance", "product": "php-ssrf", "mode": "reverse"}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = run("validate", str(path))
    assert result.exit_code == 2
    lines = [line.split(": ", 2)[2] for line in result.output.splitlines()]
    assert lines == [
        "nodes.relay.product: apache is both a reverse and a forward proxy, and they differ "
        "on what decides the token: say which with mode: reverse or mode: forward",
        "nodes.a.mode: nginx is emulated as a reverse proxy only",
        "nodes.b.product: nginx is a proxy or a relay, not a waf: write kind: proxy or kind: "
        "relay",
        "nodes.c.mode: mode goes with product (e.g. product: apache)",
        "nodes.d.product: expected one of nginx, apache, squid, haproxy, tinyproxy, "
        "modsecurity-crs, php-ssrf, socat, ssh, microsocks, dante, got 'ngnix' (did you mean "
        "'nginx'?)",
        "nodes.e.mode: php-ssrf has no mode"]
    assert all(re.match(rf"error: {re.escape(str(path))}:\d+: ", line)
               for line in result.output.splitlines())


def test_the_schema_offers_the_products_and_modes_on_relays_only():
    nodes = json.loads(run("schema").output)["definitions"]
    text = json.dumps(nodes)
    assert '"enum": ["nginx", "apache", "squid", "haproxy", "tinyproxy", "modsecurity-crs", ' \
           '"php-ssrf", "socat", "ssh", "microsocks", "dante"]' in text
    assert '"enum": ["reverse", "forward", "stream", "tcp", "local-forward", "socks"]' in text
    with pytest.raises(TopologyError, match="unknown key 'product' for a host node"):
        parse(yaml.safe_dump({**relay_doc(kind="proxy"), "nodes": {
            **relay_doc(kind="proxy")["nodes"],
            "instance": {"kind": "host", "product": "nginx"}}}))


def test_every_product_names_its_sources_and_packages():
    for setup in setups():
        assert setup.sources and all(len(s) > 40 for s in setup.sources), setup.label
        assert setup.kind in PRODUCTS[setup.product].kinds
    assert {p for product in PRODUCTS.values() for p in product.packages} == {
        "nginx", "apache2", "libapache2-mod-security2", "modsecurity-crs", "squid", "haproxy",
        "tinyproxy", "php-cli", "socat", "openssh-server", "openssh-client", "microsocks",
        "dante-server"}


# --- the emulator's side, pure --------------------------------------------------------


def _plan(doc: dict):
    topology = parse(yaml.safe_dump(doc), "<t>")
    plan = build.plan(topology, "hs1-0-")
    return plan, real.relays(plan)


def test_a_forward_proxy_gets_the_absolute_url_and_the_ssrf_app_gets_it_as_site():
    doc = relay_doc(kind="ssrf", product="php-ssrf")
    doc["nodes"]["alb"] = {"kind": "proxy", "adds_xff": True}
    doc["links"] = [["imds", "instance"], ["instance", "alb"], ["alb", "attacker"]]
    plan, relays = _plan(doc)
    assert [r.node for r in relays] == ["relay"]
    flow = Flows().open("attacker", "PUT token", 4, plan.routes["attacker"])
    sent = real.addressed(plan, flow, token_request())
    assert sent.path == ("/?site=http%3A%2F%2F169.254.169.254%2Flatest%2Fapi%2Ftoken"
                         "%3Fhopsim-flow%3D20000")
    assert sent.method == "PUT" and sent.headers == token_request().headers
    plan, _ = _plan(relay_doc(kind="proxy", product="tinyproxy"))
    flow = Flows().open("attacker", "PUT token", 6, plan.routes["attacker"])
    assert real.addressed(plan, flow, token_request()).path == (
        "http://[fd00:ec2::254]/latest/api/token?hopsim-flow=20000")
    assert real.flow_mark("/latest/api/token?hopsim-flow=20000") == 20000


def test_a_flow_that_meets_no_product_is_sent_as_it_is():
    plan, _ = _plan(relay_doc(kind="proxy", adds_xff=True))
    flow = Flows().open("attacker", "PUT token", 4, plan.routes["attacker"])
    assert real.addressed(plan, flow, token_request()) == token_request()


def test_dry_run_shows_the_generated_configuration_with_the_nodes_own_line():
    result = run("emulate", "--dry-run", str(TOPOLOGIES / "products" / "nginx-proxy-pass-xff.yaml"))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "proxy_pass http://169.254.169.254;  # open relay" in out
    assert ("proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;  "
            "# from the node: adds_xff: true") in out
    assert re.search(r"^ip netns exec hs\d+-0-\d-instance nginx -e \S+ -p \S+ -c \S+nginx.conf &$",
                     out, re.M)


@pytest.mark.parametrize("relay,message", [
    ({"kind": "proxy", "product": "tinyproxy", "methods": ["GET"]},
     "methods on tinyproxy (forward) is not emulated with the real binary"),
])
def test_an_override_a_binary_cannot_show_is_refused_before_building(relay, message):
    with pytest.raises(PlanError, match=re.escape(message)):
        _plan(relay_doc(**relay))


def test_hopsims_own_relay_after_a_product_is_refused():
    doc = relay_doc(kind="proxy", product="nginx")
    doc["nodes"] |= {"edge": {"kind": "proxy", "adds_xff": True}, "gw": {"kind": "router"}}
    doc["nodes"]["relay"] = {"kind": "proxy", "product": "nginx"}
    doc["links"] = [["imds", "instance"], ["instance", "edge"], ["edge", "relay"],
                    ["relay", "attacker"]]
    del doc["nodes"]["gw"]
    doc["nodes"]["instance"]["forwarding"] = True
    with pytest.raises(PlanError, match=r"reaches edge \(hopsim's own relay\) after the product"):
        _plan(doc)


def test_a_product_cannot_share_its_stack_with_another_relay():
    doc = relay_doc(kind="proxy", product="nginx")
    doc["nodes"]["other"] = {"kind": "proxy", "runs_on": "instance"}
    doc["nodes"]["attacker"]["via"] = ["relay"]
    with pytest.raises(PlanError, match="shares its network stack with the relay other"):
        _plan(doc)


def test_every_generated_configuration_marks_its_open_relay_line():
    for setup in setups():
        relay = {"kind": setup.kind, "product": setup.product,
                 **({"mode": setup.mode} if setup.mode else {})}
        _, relays = _plan(relay_doc(**relay))
        files = relays[0].files()
        if not files:  # socat, microsocks: the command line is the whole configuration
            argv = [" ".join(a) for a in relays[0].commands()]
            assert argv and not any(" -u " in a or " -P " in a for a in argv), setup.label
            if setup.form is not Form.SOCKS:  # a port forward names its upstream
                assert all(f":{HTTP_PORT}" in a.split()[-1] for a in argv), argv
            continue
        text = "".join(files.values())
        if setup.product == "ssh":  # Debian's sshd_config forwards as it is
            assert "AllowTcpForwarding no" not in text and "\nPermitOpen" not in text, text
        assert "open relay" in text, setup.label
        assert "from the node" not in text, setup.label  # no key set: the defaults only


# --- the docs ----------------------------------------------------------------------------


def _doc_block(command: str) -> str:
    block = re.search(rf"<!-- {re.escape(command)} -->\n(.*?)<!-- end -->", DOC, re.S)
    assert block, f"docs/products.md has no `{command}` block"
    return block.group(1)


def test_the_docs_defaults_table_is_what_hopsim_products_prints():
    result = run("products", "--format", "markdown")
    assert result.exit_code == 0
    assert result.output == _doc_block("hopsim products --format markdown")


def test_the_products_table_fits_80_columns():
    result = run("products")
    assert result.exit_code == 0
    assert max(len(line) for line in result.output.splitlines()) <= 80
    row = next(line for line in result.output.splitlines() if "modsecurity-crs" in line)
    assert re.search(r"\| modsecurity-crs \| reverse +\| GET HEAD +\|", row), row
    assert "others 403" in result.output  # its answer to the methods it refuses


def test_the_product_topologies_are_the_articles_cases_with_expectations():
    assert {f.stem for f in PRODUCT_FILES} >= {
        "squid-open-forward-proxy", "apache-reverse-proxy", "nginx-proxy-pass",
        "nginx-proxy-pass-xff", "modsecurity-waf", "php-ssrf-alb"}
    for path in PRODUCT_FILES:
        topology = load(path)
        assert topology.name == path.stem
        assert len(topology.description.split()) >= 40
        assert any(n.product for n in topology.nodes.values())
        for hop_limit in (1, 2, 3):
            assert sorted(topology.expect[hop_limit]) == topology.principals
        report = analysis.sweep(topology, [1, 2, 3])
        assert report.failed == [], path.stem


# --- the real binaries ----------------------------------------------------------------


def _binaries_missing() -> str | None:
    why = netns.missing()
    if why:
        return f"needs the kernel: {why}"
    for product in PRODUCTS.values():
        for setup in product.setups:
            relay = {"kind": setup.kind, "product": setup.product,
                     **({"mode": setup.mode} if setup.mode else {})}
            _, relays = _plan(relay_doc(**relay))
            why = real.missing(relays)
            if why:
                return f"needs Debian's relay packages (.ci/run installs them): {why}"
    for path in ("/usr/lib/apache2/modules/mod_security2.so",
                 "/usr/share/modsecurity-crs/owasp-crs.load"):
        if not os.path.exists(path):
            return (f"needs {path}: apt-get install libapache2-mod-security2 "
                    "modsecurity-crs")
    return None


WHY_NOT = _binaries_missing()
binaries = pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or "")
HOP_LIMITS = (1, 2, 3)
REFUSALS = (Cause.METHOD, Cause.XFF, Cause.TTL_HEADER, Cause.DISABLED)


def _disagreements(check) -> str:
    return "\n".join(
        f"hop limit {c.hop_limit} {c.principal}: simulator {c.simulated.access.value} "
        f"@{c.simulated.dropped_at} ({reason(c.simulated)}); kernel {c.measured.access.value} "
        f"@{c.measured.dropped_at} ({reason(c.measured)})" for c in check.disagreements)


@pytest.mark.kernel
@pytest.mark.products
@binaries
@pytest.mark.parametrize("path", PRODUCT_FILES, ids=lambda f: f.stem)
def test_the_real_binaries_confirm_every_product_topology(path):
    topology = load(path)
    for family, variant in ((4, topology), (6, topology.with_imds(ipv6=True))):
        check = verify_one(variant, HOP_LIMITS, family)
        assert not check.disagreements, _disagreements(check)
        # Why the product kept the token: read off what IMDS received from it.
        assert [(c.principal, c.simulated.cause, c.measured.cause) for c in check.cases
                if c.simulated.cause in REFUSALS and c.measured.cause is not c.simulated.cause
                ] == []
        assert check.measured.failed == [], f"IPv{family}: {check.measured.failed}"
        assert len(check.measured.expectations) == 3 * len(topology.principals)
    # What-if IMDSv1 is on (or off): the fallback GET through the product.
    other = "required" if topology.nodes["imds"].imds.http_tokens == "optional" else "optional"
    # An L4 relay at 1 and 2 (issue 22's table: tokens required and optional at each).
    l4 = any(n.kind == "relay" for n in topology.nodes.values())
    check = verify_one(topology.with_imds(http_tokens=other), (1, 2) if l4 else (1,), 4)
    assert not check.disagreements, _disagreements(check)


@pytest.mark.kernel
def test_a_missing_binary_is_one_line_with_the_package_to_install(monkeypatch):
    if netns.missing():
        pytest.skip(f"needs the kernel: {netns.missing()}")
    monkeypatch.setattr(real, "_which", lambda program: None)
    path = TOPOLOGIES / "products" / "modsecurity-waf.yaml"
    result = run("verify", str(path))
    assert result.exit_code == 2
    assert (f"error: {path}: waf is modsecurity-crs, whose binary 'apache2' is not installed: "
            "apt-get install apache2 libapache2-mod-security2 modsecurity-crs") in result.output


ROUTED = """
name: routed-products
description: products one router away from IMDS
imds: {hop_limit: 1, http_tokens: required}
nodes:
  imds: {kind: imds}
  instance: {kind: host, role: workload, forwarding: true}
  nginx: {kind: proxy, product: nginx}
  haproxy: {kind: proxy, product: haproxy}
  tinyproxy: {kind: proxy, product: tinyproxy}
  squid: {kind: proxy, product: squid}
  php: {kind: ssrf, product: php-ssrf}
  a-nginx: {kind: client, role: attacker}
  a-haproxy: {kind: client, role: attacker}
  a-tinyproxy: {kind: client, role: attacker}
  a-squid: {kind: client, role: attacker}
  a-php: {kind: client, role: attacker}
links:
  - [imds, instance]
  - [instance, nginx]
  - [nginx, a-nginx]
  - [instance, haproxy]
  - [haproxy, a-haproxy]
  - [instance, tinyproxy]
  - [tinyproxy, a-tinyproxy]
  - [instance, squid]
  - [squid, a-squid]
  - [instance, php]
  - [php, a-php]
"""


@pytest.mark.kernel
@pytest.mark.products
@binaries
def test_a_product_one_router_from_imds_gets_the_token_at_hop_limit_2_not_1():
    # The token's TTL is the hop limit up to the product, which then re-sends
    # it with 64: the drop at the router is seen through the product's own
    # connection (its flow mark at IMDS names the port it chose).
    check = verify_one(parse(ROUTED, "<routed>"), (1, 2), 4)
    assert not check.disagreements, _disagreements(check)
    measured = {(r.hop_limit, o.node): o for r in check.measured.results for o in r.outcomes}
    for leaky in ("a-nginx", "a-haproxy", "a-tinyproxy"):
        assert (measured[1, leaky].access, measured[1, leaky].dropped_at) == (
            Access.NONE, "instance")
        assert measured[2, leaky].access is Access.TOKEN
    for safe in ("a-squid", "a-php"):  # X-Forwarded-For; a GET
        assert measured[1, safe].access is measured[2, safe].access is Access.NONE
        assert measured[2, safe].dropped_at is None


@pytest.mark.kernel
@pytest.mark.products
@binaries
def test_verify_catches_a_model_that_the_binary_contradicts(monkeypatch):
    # Were nginx modelled as adding X-Forwarded-For (the old generic proxy),
    # the simulator would say ok; the real nginx hands out the token.
    setup = PRODUCTS["nginx"].setups[0]
    wrong = type(setup.policy)(None, adds_xff=True, forwards_headers=True)
    monkeypatch.setitem(PRODUCTS, "nginx", type(PRODUCTS["nginx"])(
        "nginx", "proxy", ("nginx",), "nginx",
        (type(setup)(**{**vars(setup), "policy": wrong}),), "reverse"))
    check = verify_one(load(TOPOLOGIES / "products" / "nginx-proxy-pass.yaml"), (1,), 4)
    assert [(c.principal, c.simulated.access, c.measured.access)
            for c in check.disagreements] == [("attacker", Access.NONE, Access.TOKEN)]


@pytest.mark.kernel
@pytest.mark.products
@binaries
def test_the_docs_products_table_is_what_the_binaries_do():
    result = run("products", "--verify", "--format", "markdown")
    assert result.exit_code == 0, result.output
    assert result.output == _doc_block("hopsim products --verify --format markdown")
    assert result.output.endswith("16 products and modes measured: 16 as modelled, 0 differ\n")


@pytest.mark.kernel
@pytest.mark.products
@binaries
def test_no_daemon_outlives_its_run(monkeypatch):
    started: list[real.Daemon] = []
    original = real.Daemon.start

    def start(self):
        original(self)
        started.append(self)

    monkeypatch.setattr(real.Daemon, "start", start)
    result = run("emulate", str(TOPOLOGIES / "products"), "--hop-limits", "1")
    assert result.exit_code == 0, result.output
    assert len(started) == len(PRODUCT_FILES)
    pids = [p.pid for d in started for p in d.processes]
    assert not [pid for pid in pids if os.path.exists(f"/proc/{pid}")]
    assert not netns.existing(netns.run_prefix())
    assert not list(started[0].relay.directory.parent.parent.glob(f"{netns.run_prefix()}*"))


@pytest.mark.kernel
def test_deleting_a_namespace_kills_what_still_runs_in_it():
    name = f"{netns.run_prefix()}kill-probe"
    netns.add_namespaces([name])
    try:
        process = subprocess.Popen([netns.tool("ip"), "netns", "exec", name, "sleep", "60"],
                                   start_new_session=True)
        deadline = time.monotonic() + 5
        while os.readlink(f"/proc/{process.pid}/ns/net") == os.readlink("/proc/self/ns/net"):
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        netns.delete_namespaces([name])
    assert process.wait(timeout=5) == -9
    assert name not in netns.existing()


def test_the_measured_rows_say_where_the_model_differs():
    from hopsim.emulate.survey import Measured
    setup = PRODUCTS["nginx"].setup(None)
    outcome = play(topo(kind="proxy", product="nginx"), "attacker").outcome
    measured = Measured(setup, "PUT", ("X-Forwarded-For",), (), Access.NONE, 403, 64, outcome)
    assert measured.differences == ["the model adds no X-Forwarded-For",
                                    "the model gives the attacker token"]
    (row,) = products_report.measured_rows([measured])
    assert row[-1] == "the model adds no X-Forwarded-For; the model gives the attacker token"


def test_a_signal_one_run_took_does_not_stop_the_next():
    # Found when these tests ran after test_emulate's stopped run in one
    # process: its SIGTERM, kept, stopped every later emulate at its first check.
    from hopsim.emulate import raise_if_stopped, stopping_on_signals
    from hopsim.emulate.run import Stopped

    with pytest.raises(Stopped), stopping_on_signals():
        signal.raise_signal(signal.SIGTERM)
    raise_if_stopped()  # nothing: that signal was this context's


def _leaky(setup) -> dict:
    """The setup as an open relay the attacker gets something through: its
    defaults, less the one that keeps the token (X-Forwarded-For for Apache
    reverse, Squid, the CRS; the CRS's methods let PUT through too), or with
    IMDSv1 on for the PHP app, which never sends a PUT."""
    relay = {"kind": setup.kind, "product": setup.product,
             **({"mode": setup.mode} if setup.mode else {})}
    if setup.policy.adds_xff:
        relay["adds_xff"] = False
    if setup.policy.methods is not None:
        relay["methods"] = [*setup.policy.methods, "PUT"]
    doc = relay_doc(**relay)
    if setup.policy.sends_method == "GET":
        doc["imds"]["http_tokens"] = "optional"
    return doc


@pytest.mark.kernel
@pytest.mark.products
@binaries
@pytest.mark.parametrize("setup", setups(), ids=lambda s: s.label)
def test_the_fix_hopsim_proposes_turns_the_real_binary_ok(setup, tmp_path):
    # For every product: the first fix `hopsim fix` prints, its directive written into
    # the product's real configuration, run on the real binary (one emulate each).
    from hopsim import fix

    path = tmp_path / "leaky.yaml"
    path.write_text(yaml.safe_dump(_leaky(setup)))
    topology = load(path)
    found = fix.search(str(path), topology, max_changes=1)
    assert found.needed and found.fixes, setup.label  # the simulator sees the leak
    first = found.fixes[0]
    if any(d.key != "remove" for d in setup.directives):
        # a product with directives is fixed in its own configuration (microsocks has
        # none but "remove": it is closed on its host, by a filter the kernel runs)
        (change,) = first.changes
        assert change.node == "relay"
        assert setup.directive(change.key, change.value) is not None
    proof = fix.prove(str(path), topology, first)
    assert proof.said.startswith(f"proven on {setup.title} (the real binary"), proof.said
    assert not proof.refuted

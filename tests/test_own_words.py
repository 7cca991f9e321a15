"""Fixes in the user's own words (hopsim.own_words, Setup.directives): the
product's directive beside hopsim's --set, the settings file's line as a
patch, the compose file's line for a principal meant to hold the role.

The directives' proof on the real binaries is in tests/test_products.py
(marker products); here, that each is the very line emulate writes into the
product's configuration for the change, so that proof is of this text.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from builders import ROOT, TOPOLOGIES
from ci_helpers import position, run

from hopsim import load
from hopsim.emulate.configs import GENERATORS
from hopsim.emulate.products import ProductRelay
from hopsim.explain import explain
from hopsim.own_words import _patch_setting, for_node
from hopsim.products import PRODUCTS, setups

PRODUCTS_DIR = TOPOLOGIES / "products"
LAUNCH_TEMPLATE = "tests/fixtures/importers/launch-template.tf"


POLICY_FIELD = {"block_imds": "refuses_imds"}  # the node key -> the policy's field


def _configuration(setup, key, value, tmp_path: Path) -> str:
    """The product's files and command lines as emulate writes them for the change."""
    field = POLICY_FIELD.get(key, key)
    policy = replace(setup.policy, **{field: tuple(value) if key == "methods" else value})
    relay = ProductRelay("relay", setup, policy, "ns", {4: "10.0.0.2"},
                         {4: "169.254.169.254"}, tmp_path)
    config = GENERATORS[setup.product](relay)
    return "\n".join([*config.files.values(), *(" ".join(argv) for argv in config.argv)])


@pytest.mark.parametrize("setup", setups(), ids=lambda s: s.label)
def test_every_directive_is_the_line_emulate_writes_into_the_real_configuration(
        setup, tmp_path):
    changes = {d.change: [e for e in setup.directives if e.change == d.change]
               for d in setup.directives}
    for change, alternatives in changes.items():
        key, _, written = change.partition("=")
        if key == "remove":  # nothing to write: the fix is not running it (microsocks)
            with pytest.raises(Exception, match="no rule on destinations"):
                _configuration(setup, "block_imds", True, tmp_path)
            continue
        assert all(d.source and d.where for d in alternatives)
        # methods: a list unlike every product's default, so the directive is written
        value = ["GET", "HEAD"] if key == "methods" else written == "true"
        config = _configuration(setup, key, value, tmp_path)
        if getattr(setup.policy, POLICY_FIELD.get(key, key)) == value:
            # the product's default (Apache's ProxyAddHeaders On, Squid's forwarded_for
            # on): the directive restates it, and the configuration says nothing against it
            assert alternatives[0].text.split()[0] not in config, (setup.label, config)
            continue
        # One of the ways it may be written is the very text emulate writes (sshd:
        # AllowTcpForwarding no; PermitOpen is the other way) ...
        if any(all(line in config for line in d.written(value).splitlines())
               for d in alternatives if "<" not in d.text):
            continue
        # ... or it is a port forward's upstream "that is not 169.254.169.254": the
        # real configuration then points elsewhere, and no longer at IMDS
        assert all("<" in d.text for d in alternatives), (setup.label, change, config)
        assert "169.254.169.254" in _configuration(setup, key, not value, tmp_path)
        assert "169.254.169.254" not in config, (setup.label, config)


def test_php_ssrf_and_tinyproxy_methods_have_no_directive_and_say_so():
    assert PRODUCTS["php-ssrf"].setup(None).directives == ()
    t = load(TOPOLOGIES / "open-waf.yaml")
    t = t.with_node("waf", product="tinyproxy", mode="forward")
    words = for_node(t, "waf", "methods", ["GET", "HEAD"])
    assert words.text == "" and "tinyproxy (forward) has no directive for methods" in \
        words.where


def test_fix_prints_the_nginx_directive_beside_the_set_option():
    result = run("fix", str(PRODUCTS_DIR / "nginx-proxy-pass.yaml"))
    assert result.exit_code == 0, result.output
    assert (" 1. --set nginx.adds_xff=true\n"
            "      nginx: adds_xff = true\n"
            "        nginx (reverse): proxy_set_header X-Forwarded-For "
            "$proxy_add_x_forwarded_for;\n"
            "          where: in the location block that proxy_passes to 169.254.169.254 "
            "(nginx.conf)\n") in result.stdout
    assert "if ($request_method !~ ^(GET|HEAD)$) { return 405; }" in result.stdout
    data = json.loads(run("fix", str(PRODUCTS_DIR / "nginx-proxy-pass.yaml"), "--format",
                          "json").stdout)
    (words,) = data["fixes"][0]["in_words"]
    assert words["product"] == "nginx (reverse)" and words["text"].startswith(
        "proxy_set_header X-Forwarded-For")


def test_a_hop_limit_from_a_launch_template_is_a_patch_to_its_line(monkeypatch):
    compose = "tests/corpus/compose/nginx-golang-mysql/compose.yaml"
    result = run("fix", compose, "--settings", LAUNCH_TEMPLATE, monkeypatch=monkeypatch)
    assert result.exit_code == 0, result.output
    line = position(LAUNCH_TEMPLATE, "http_put_response_hop_limit")[0]
    assert f" 1. --hop-limit 1\n      every imds: hop_limit = 1\n" \
           f"        that is: http_put_response_hop_limit = 1\n" \
           f"          where: {LAUNCH_TEMPLATE}:{line}\n" in result.stdout
    assert (f"the first's change to {LAUNCH_TEMPLATE}:{line}:\n"
            f"--- a/{LAUNCH_TEMPLATE}\n+++ b/{LAUNCH_TEMPLATE}\n") in result.stdout
    assert "-    http_put_response_hop_limit = 2\n+    http_put_response_hop_limit = 1\n" \
        in result.stdout
    # the compose file itself is not rewritten; its undeclared services are named at
    # their lines, with how to declare one meant to hold the role
    assert "the first as a patch to" not in result.stdout
    assert (f"  db: add `x-hopsim: {{role: workload}}` on the service "
            f"({compose}:{position(compose, 'db:', after='service_healthy')[0]})") in result.stdout


def test_a_settings_line_is_rewritten_in_each_format_or_not_at_all(tmp_path):
    karpenter = "tests/corpus/settings/karpenter-windows-2022.yaml"
    line = position(karpenter, "httpTokens")[0]
    diff, new = _patch_setting(str(ROOT / karpenter), line, "http_tokens", "optional")
    assert new == "httpTokens: optional" and "-    httpTokens: required\n" in diff
    eksctl = "tests/corpus/settings/eksctl-advanced-nodegroups.yaml"
    line = position(eksctl, "disableIMDSv1")[0]
    _, new = _patch_setting(str(ROOT / eksctl), line, "http_tokens", "required")
    assert new == "disableIMDSv1: true"
    assert _patch_setting(str(ROOT / eksctl), line, "hop_limit", 3) is None  # no such switch
    cloudformation = tmp_path / "lt.json"
    cloudformation.write_text('{"MetadataOptions": {\n  "HttpTokens": "optional",\n'
                              '  "HttpPutResponseHopLimit": 2}}\n')
    _, new = _patch_setting(str(cloudformation), 2, "http_tokens", "required")
    assert new == '"HttpTokens": "required",'
    _, new = _patch_setting(str(cloudformation), 3, "hop_limit", 1)
    assert new == '"HttpPutResponseHopLimit": 1}}'


def test_explain_gives_the_crs_rule_for_a_waf_that_passes_put():
    # A CRS whose tx.allowed_methods lets PUT through, behind ProxyAddHeaders Off: the
    # attacker's PUT reaches IMDS without X-Forwarded-For. Taking PUT out closes it.
    t = load(PRODUCTS_DIR / "modsecurity-waf.yaml")
    policy = replace(t.nodes["waf"].relay, adds_xff=False,
                     methods=("GET", "HEAD", "POST", "OPTIONS", "PUT"))
    t = t.with_node("waf", relay=policy)
    fixes = {c.option: c for c in explain(t, "attacker").fixes}
    change = fixes["--set waf.methods=[GET,HEAD,POST,OPTIONS]"]
    assert change.words.text == ("SecAction \"id:900200,phase:1,nolog,pass,t:none,"
                                 "setvar:'tx.allowed_methods=GET HEAD POST OPTIONS'\"")
    assert fixes["--set waf.adds_xff=true"].words.text == "ProxyAddHeaders On"


def test_prove_says_why_a_fix_without_a_product_is_not_run_on_a_binary():
    result = run("fix", str(TOPOLOGIES / "eks-untrusted-pod.yaml"), "--prove", "--top", "1")
    assert result.exit_code == 0, result.output
    assert ("      not run on a binary: no product (nginx, Apache ...) in the design; the "
            "simulation is the proof\n") in result.stdout


def test_ci_formats_carry_the_fix_in_the_products_words():
    nginx = str(PRODUCTS_DIR / "nginx-proxy-pass.yaml")
    directive = "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"
    (result,) = json.loads(run("check", nginx, "--format", "sarif").stdout)["runs"][0][
        "results"]
    first = result["properties"]["fixes"][0]
    assert first.startswith(f"nginx (reverse): {directive}  [in the location block")
    assert first.endswith("(hopsim: --set nginx.adds_xff=true)")
    assert f"\nFix: nginx (reverse): {directive}" in result["message"]["text"]
    junit = run("check", nginx, "--format", "junit").stdout
    assert f"\nfix: nginx (reverse): {directive}  [in the location block" in junit
    markdown = run("check", nginx, "--format", "markdown").stdout
    assert "\n  - fix: nginx (reverse): proxy\\_set\\_header X-Forwarded-For" in markdown


def test_a_fix_that_starves_a_workload_says_so_in_the_finding():
    # gateway-drift: hop limit 1 keeps neighbour out and app from its token
    markdown = run("check", "tests/fixtures/ci/gateway-drift.yaml", "--format",
                   "markdown").stdout
    assert "(hopsim: --hop-limit 1); but app would get no token" in markdown


def test_fleets_findings_leave_their_fixes_to_hopsim_fix(tmp_path):
    from hopsim.report import findings

    fleet = tmp_path / "fleet.yaml"
    assert run("generate", "fleet", "--instances", "20", "--containers", "3", "-o",
               str(fleet)).exit_code == 0
    t = load(fleet)
    assert len(t.principals) > findings.FIXES_UP_TO
    from hopsim import analysis
    found = findings.of_report(analysis.check(t), "check")
    assert found and all(findings.fixes_in_words(f) == () for f in found)


def test_an_imported_nginx_is_fixed_in_nginx_conf(monkeypatch):
    # The compose file's nginx image is nginx (the images table): its fix is nginx's own
    compose = "tests/corpus/compose/nginx-golang-mysql/compose.yaml"
    markdown = run("check", compose, "--settings", LAUNCH_TEMPLATE, "--format", "markdown",
                   monkeypatch=monkeypatch).stdout
    outsider = markdown[markdown.index("outsider-proxy (role attacker)"):]
    assert ("  - fix: nginx (reverse): proxy\\_set\\_header X-Forwarded-For "
            "$proxy\\_add\\_x\\_forwarded\\_for; \\[in the location block") in outsider


def test_every_leak_of_the_compose_corpus_has_a_fix_at_a_line_or_in_a_directive():
    # The bar: with the launch template given, every finding's fix names the
    # user's own file and line (the template's hop limit, the service to declare) or
    # the product's directive.
    from hopsim import analysis, importers, settings
    from hopsim.importers import instances
    from hopsim.report import findings

    template = instances.read(ROOT / LAUNCH_TEMPLATE)
    count = 0
    for path in sorted((ROOT / "tests" / "corpus" / "compose").glob("*/compose.y*ml")):
        t = importers.load(path, instances=template).topology
        (t,), _ = settings.apply_all([t], template, LAUNCH_TEMPLATE)
        for f in findings.of_report(analysis.check(t), "check"):
            count += 1
            fixes = findings.fixes_in_words(f)
            assert any(f"{LAUNCH_TEMPLATE}:" in x or f"{path}:" in x
                       or x.startswith(("nginx (", "haproxy (")) for x in fixes), (path, fixes)
    assert count >= 40  # the corpus's bridged services at hop limit 2, and its outsiders


def test_fix_offers_a_product_no_change_its_configuration_cannot_make(tmp_path):
    # tinyproxy passes every method: refusing PUT is no fix a tinyproxy user can make
    doc = (TOPOLOGIES / "products" / "nginx-proxy-pass.yaml").read_text()
    path = tmp_path / "tinyproxy.yaml"
    path.write_text(doc.replace("product: nginx", "product: tinyproxy"))
    assert "product: tinyproxy" in path.read_text()
    data = json.loads(run("fix", str(path), "--format", "json").stdout)
    changes = [c for f in data["fixes"] for c in f["changes"]]
    assert "nginx: adds_xff = true" in changes  # AddHeader, tinyproxy's own
    assert not any("methods" in c for c in changes)


def test_explain_and_show_call_an_undeclared_service_untrusted_and_say_how_to_declare():
    compose = "tests/corpus/compose/apache-php/compose.yaml"
    explained = run("explain", str(ROOT / compose), "--from", "web").stdout
    assert "\nweb (untrusted): credentials - leak\n" in explained
    assert "If web is meant to use the instance's role: add `x-hopsim: {role: workload}`" \
        in explained
    assert "untrusted (no role declared)" in run("show", str(ROOT / compose)).stdout

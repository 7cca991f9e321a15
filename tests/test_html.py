"""hopsim draw --format html: the teaching page's content, without a browser
(tests/test_browser.py loads it in Chromium)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import replace
from functools import cache
from html.parser import HTMLParser

import pytest
from builders import TOPOLOGIES, make, without_principals
from click.testing import CliRunner

from hopsim.cli import main
from hopsim.draw import html, layout, scene
from hopsim.imds import HTTP_TOKENS
from hopsim.loader import load

FILES = sorted(TOPOLOGIES.glob("*.yaml"))
IDS = [f.stem for f in FILES]
PLAIN = {"NO_COLOR": "1", "COLUMNS": "80", "FORCE_COLOR": None, "TERM": "dumb"}


def run(*args: str):
    return CliRunner().invoke(main, list(args), env=PLAIN)


class Page(HTMLParser):
    """The parts of a page the tests read: scripts, templates, meta tags."""

    def __init__(self, text: str):
        super().__init__()
        self.scripts: list[tuple[dict, str]] = []
        self.templates: dict[str, str] = {}
        self.meta: list[dict] = []
        self.resources: list[str] = []  # src=, href= and the like
        self._in: tuple[str, dict] | None = None
        self._text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.resources += [v for k, v in attrs.items() if k in ("src", "href", "xlink:href")]
        if tag == "meta":
            self.meta.append(attrs)
        if tag in ("script", "template") and self._in is None:
            self._in, self._text = (tag, attrs), []

    def handle_endtag(self, tag):
        if self._in and tag == self._in[0]:
            text = "".join(self._text)
            if tag == "script":
                self.scripts.append((self._in[1], text))
            else:
                self.templates[self._in[1]["id"]] = text
            self._in = None

    def handle_data(self, data):
        if self._in:
            self._text.append(data)

    def data(self) -> dict:
        [(_, text)] = [(a, t) for a, t in self.scripts if a.get("type") == "application/json"]
        return json.loads(text)


def page_of(topology, principals=None) -> tuple[str, Page]:
    text = html.render(topology, principals)
    return text, Page(text)


@cache
def bundled(name: str) -> dict:
    """The data of a bundled topology's page (made once for the module)."""
    return page_of(load(TOPOLOGIES / f"{name}.yaml"))[1].data()


# --- which settings the page offers ------------------------------------------------------


def test_the_slider_ends_where_the_hop_limit_stops_changing_anything():
    # One router (the instance) for the bridged app: the token dies at 1 and
    # lives from 2 on [C: AWS recommends 2 for Docker bridge containers].
    assert html.hop_limits(load(TOPOLOGIES / "docker-bridge.yaml")) == (1, 2)
    # Two routers: at 2 the token still dies, at the second router; 3 is the first that works.
    assert html.hop_limits(load(TOPOLOGIES / "router-two-hops.yaml")) == (1, 2, 3)
    # Docker-in-Docker needs 3 [O].
    assert html.hop_limits(load(TOPOLOGIES / "docker-in-docker.yaml")) == (1, 2, 3)


def test_the_slider_keeps_two_positions_where_nothing_changes_and_reaches_the_configured_one():
    # No router anywhere: 1 and 2 alike, so the class can see that nothing changes.
    assert html.hop_limits(load(TOPOLOGIES / "host-process.yaml")) == (1, 2)
    configured = load(TOPOLOGIES / "docker-bridge.yaml").with_imds(hop_limit=5)
    assert html.hop_limits(configured) == (1, 2, 3, 4, 5)
    _, page = page_of(configured)
    assert page.data()["start"] == {"hop_limit": 5, "http_tokens": "required"}


@pytest.mark.parametrize("file", FILES, ids=IDS)
def test_every_setting_carries_what_sweep_json_says(file):
    topology = load(file)
    data = bundled(file.stem)
    limits = data["hop_limits"]
    assert limits == list(html.hop_limits(topology))
    for tokens in HTTP_TOKENS:
        result = run("sweep", str(file), "--format", "json", "--all-principals", "--hop-limits",
                     f"{limits[0]}-{limits[-1]}", "--http-tokens", tokens)
        assert result.exit_code in (0, 1), result.output
        [report] = json.loads(result.stdout)["topologies"]
        for swept in report["results"]:
            shown = data["settings"][f"{swept['hop_limit']}/{tokens}"]
            assert shown["principals"] == swept["principals"]
            assert (shown["verdict"], shown["reason"]) == (swept["verdict"], swept["reason"])
            assert shown["recommended_hop_limit"] == report["recommended_hop_limit"]
            assert shown["recommendation"] == report["recommendation"]
    assert len(data["settings"]) == len(limits) * len(HTTP_TOKENS)


def test_http_tokens_optional_turns_the_dropped_token_into_imdsv1_credentials():
    data = bundled("docker-bridge")
    app = {s: next(o for o in data["settings"][s]["principals"] if o["node"] == "app")
           for s in ("1/required", "1/optional", "2/optional")}
    # [O] hop limit 1 does not stop IMDSv1: with tokens optional the app reads credentials.
    assert app["1/required"]["outcome"] == "none"
    assert app["1/optional"]["outcome"] == "credentials"
    assert app["2/optional"]["outcome"] == "token"


# --- the animation: the engine's hops ----------------------------------------------------


def actions(steps) -> list[tuple]:
    return [(s["action"], s["node"], s.get("ttl_in"), s.get("ttl_out")) for s in steps]


def test_at_hop_limit_1_the_token_dies_at_the_instance_and_icmp_goes_back():
    data = bundled("docker-bridge")
    assert data["follow"] == "app"  # a workload the hop limit changes, as `hopsim demo`
    steps = data["settings"]["1/required"]["steps"]["app"]
    # [C] the token leaves with TTL = hop limit; a router drops TTL <= 1 and
    # sends ICMP Time Exceeded 11/0 (with its own TTL 64); the app waits.
    assert actions(steps) == [
        ("request", "app", None, None),
        ("sent", "imds", None, 1),
        ("dropped", "instance", 1, None),
        ("ICMP sent", "instance", None, 64),
        ("timed out", "app", None, None),
        ("outcome", "app", None, None),
    ]
    assert "Time Exceeded 11/0 back to 169.254.169.254" in steps[3]["caption"]
    assert steps[-1]["caption"].startswith("app holds: none. token response dropped at instance")


def test_at_hop_limit_2_the_ttl_counts_down_at_the_router_and_not_at_the_bridge():
    steps = bundled("docker-bridge")[
        "settings"]["2/required"]["steps"]["app"]
    # [C] routing (and NAT) takes 1; a bridge takes nothing; local delivery accepts TTL 1.
    assert actions(steps)[1:5] == [
        ("sent", "imds", None, 2),
        ("NATed", "instance", 2, 1),
        ("bridged", "docker0", 1, 1),
        ("delivered", "app", 1, None),
    ]
    assert "local delivery accepts any TTL" in steps[4]["caption"]


def test_a_relay_re_sends_the_token_with_ttl_64():
    steps = bundled("reverse-proxy-in-container")[
        "settings"]["2/required"]["steps"]["attacker"]
    answer = [a for a in actions(steps) if a[0] not in ("request", "outcome")]
    # [U, consistent with reports] nginx ends the connection and re-sends with 64;
    # the instance routes it (64 -> 63) on its way to the attacker.
    assert answer == [
        ("sent", "imds", None, 2),
        ("NATed", "instance", 2, 1),
        ("bridged", "docker0", 1, 1),
        ("delivered", "nginx", 1, None),
        ("sent", "nginx", None, 64),
        ("bridged", "docker0", 64, 64),
        ("NATed", "instance", 64, 63),
        ("delivered", "attacker", 63, None),
    ]
    relay = next(s for s in steps if s["action"] == "sent" and s["node"] == "nginx")
    assert "fresh TTL of 64" in relay["caption"]


def test_a_refused_put_animates_the_refusal_not_a_token():
    steps = bundled("open-reverse-proxy-xff")[
        "settings"]["2/required"]["steps"]["attacker"]
    packets = {s.get("packet") for s in steps if s["action"] not in ("request", "outcome")}
    assert "token" not in packets and "403" in packets  # [C] XFF on the PUT: 403


def test_the_animation_is_the_engines_hops_not_a_reversed_request(monkeypatch):
    """The lead is changing routing: the answer's path must come from the
    recorded hops. A made-up recording shows that the page follows it."""
    from hopsim import engine

    topology = load(TOPOLOGIES / "docker-bridge.yaml")
    real = engine.play

    def replayed(*args, **kwargs):
        exchange = real(*args, **kwargs)
        # The token's answer, as if it had come back through the sidecar's host
        # only: drop every hop at docker0 from the answer.
        hops = tuple(h for h in exchange.hops
                     if not (h.node == "docker0" and not h.message.startswith("PUT")))
        return engine.Exchange(exchange.route, exchange.outcome, hops, exchange.token_issued)

    monkeypatch.setattr(html, "play", replayed)
    steps = html.lesson(topology)["settings"]["2/required"]["steps"]["app"]
    assert "docker0" not in [s["node"] for s in steps if s["action"] != "request"]


@pytest.mark.parametrize("file", FILES, ids=IDS)
def test_every_move_runs_from_box_to_box_along_the_picture(file):
    data = bundled(file.stem)
    boxes = data["boxes"]

    def touches(point, name, slack=1.0):
        x, y, w, h = boxes[name]
        return (x - slack <= point[0] <= x + w + slack) and (y - slack <= point[1] <= y + h + slack)

    for setting in data["settings"].values():
        for principal, steps in setting["steps"].items():
            at = None
            for step in steps:
                if step["action"] == "sent":
                    at = step["node"]
                elif step["action"] in ("bridged", "forwarded", "NATed", "dropped", "delivered"):
                    start, end = step["points"][0], step["points"][-1]
                    assert touches(start, at), (principal, step)
                    assert touches(end, step["node"]), (principal, step)
                    at = step["node"]
            assert steps[-1]["action"] == "outcome"


def test_every_setting_puts_each_node_in_the_same_place():
    topology = load(TOPOLOGIES / "reverse-proxy-in-container.yaml")
    scenes = [scene.build(topology.with_imds(hop_limit=h, http_tokens=t))
              for h in (1, 2) for t in HTTP_TOKENS]
    pictures = [layout.layout(s, scenes) for s in scenes]
    where = [{b.place.name: b.rect for b in p.nodes} for p in pictures]
    assert all(w == where[0] for w in where)
    assert len({(p.width, p.height) for p in pictures}) == 1
    # Alone, the boxes differ (the outcome lines differ in length): the shared
    # layout is what keeps them still.
    alone = [{b.place.name: b.rect for b in layout.layout(s).nodes} for s in scenes]
    assert any(a != alone[0] for a in alone)


# --- one file, nothing fetched, nothing injected ---------------------------------------


def test_the_page_is_self_contained_and_its_policy_allows_only_its_own_code():
    text, page = page_of(load(TOPOLOGIES / "docker-bridge.yaml"))
    assert page.resources == []  # no src=, no href=: nothing to fetch
    assert "url(" not in text and "@import" not in text
    [policy] = [m["content"] for m in page.meta if m.get("http-equiv") == "Content-Security-Policy"]
    assert "default-src 'none'" in policy
    [(_, code)] = [(a, t) for a, t in page.scripts if "type" not in a]
    digest = base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy
    assert len(page.templates) == 4  # hop limits 1 and 2, tokens required and optional


# Markup in names; control characters and line separators only in the
# description, since the loader refuses them in names (issue 15).
EVIL_NAME = "x</script><script>alert(1)</script><!--"
EVIL_NODE = "<img src=x onerror=alert(2)>"
EVIL_DESCRIPTION = "bell\x07 separator\u2028 </script><!-- \x1b[2J"


def evil():
    return replace(make({"imds": {"kind": "imds"}, "gw": {"kind": "router"},
                         EVIL_NODE: {"kind": "container", "role": "workload"}},
                        [["imds", "gw"], ["gw", EVIL_NODE]], name=EVIL_NAME),
                   description=EVIL_DESCRIPTION)


def test_names_from_the_file_cannot_break_out_of_the_page():
    text, page = page_of(evil())
    # Two scripts, as written: the names opened none.
    assert [a.get("type") for a, _ in page.scripts] == ["application/json", None]
    assert text.count("<script") == 2 and text.count("</script>") == 2
    assert "<img" not in text and "<!--" not in text
    # No raw control character (HTML forbids them); in the JSON no line
    # separator either (old JavaScript parsers end a string there).
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", text)
    [(_, block)] = [(a, t) for a, t in page.scripts if a.get("type") == "application/json"]
    assert "\u2028" not in block and "\u2029" not in block
    # The JSON still holds the names exactly.
    data = page.data()
    assert data["topology"] == EVIL_NAME
    assert EVIL_NODE in data["settings"]["1/required"]["steps"]


def test_script_json_escapes_what_could_end_the_script():
    text = html.script_json({"a": "</script><!--&\x7f\u2028"})
    assert json.loads(text) == {"a": "</script><!--&\x7f\u2028"}
    assert not set(text) & set("<>&\x7f\u2028")


# --- the command ---------------------------------------------------------------------------


def test_draw_writes_the_page_from_the_suffix(tmp_path):
    out = tmp_path / "lesson.html"
    result = run("draw", str(TOPOLOGIES / "docker-bridge.yaml"), "-o", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert Page(text).data()["topology"] == "docker-bridge"


def test_draw_format_html_prints_the_page_and_follows_from():
    result = run("draw", str(TOPOLOGIES / "nginx-reverse-proxy.yaml"), "--format", "html",
                 "--from", "attacker", "--http-tokens", "optional")
    assert result.exit_code == 0, result.output
    data = Page(result.stdout).data()
    assert data["follow"] == "attacker"
    assert data["start"]["http_tokens"] == "optional"


def test_a_topology_without_principals_still_makes_a_page():
    data = page_of(without_principals({"imds": {"kind": "imds"}, "gw": {"kind": "router"}},
                                      [["imds", "gw"]]))[1].data()
    assert data["follow"] is None and data["principals"] == []
    assert data["settings"]["1/required"]["verdict"] == "ok"


def test_an_unreachable_principal_is_told_not_animated():
    data = page_of(make({"imds": {"kind": "imds"}, "gw": {"kind": "router"},
                         "lone": {"kind": "container", "role": "workload"}},
                        [["imds", "gw"]]))[1].data()
    assert data["settings"]["1/required"]["steps"]["lone"] == [
        {"action": "outcome", "node": "lone",
         "caption": "lone holds: none. unreachable: no route to an imds node."}]

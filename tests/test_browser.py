"""The teaching page (hopsim draw --format html) in a real browser: Debian's
Chromium and chromedriver, driven by selenium, one browser for the module.

Marker `browser`: skipped with the reason where no browser can be had; with
HOPSIM_REQUIRE_BROWSER=1 (as .ci/run sets when it could install one) a
missing browser fails instead. Screenshots go to a temporary folder, or to
$HOPSIM_SCREENSHOTS to keep them.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pytest
from builders import TOPOLOGIES, make, without_principals
from click.testing import CliRunner

from hopsim.cli import main
from hopsim.draw import html

FILES = sorted(TOPOLOGIES.glob("*.yaml"))
IDS = [f.stem for f in FILES]
PLAIN = {"NO_COLOR": "1", "COLUMNS": "80", "FORCE_COLOR": None, "TERM": "dumb"}
DESKTOP, PHONE = (1280, 720), (390, 844)
REQUIRED = os.environ.get("HOPSIM_REQUIRE_BROWSER") == "1"
# Chromium as root, offline: no sandbox (root), and none of its own network
# traffic (updates, sync, QUIC probes), in a profile of its own.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--hide-scrollbars", "--mute-audio")


def _why_no_browser() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for tool, package in (("chromium", "chromium"), ("chromedriver", "chromium-driver")):
        if shutil.which(tool) is None:
            return f"no {tool} on PATH (apt-get install {package})"
    return None


WHY_NOT = _why_no_browser()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(WHY_NOT is not None and not REQUIRED, reason=f"needs a browser: {WHY_NOT}"),
]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if WHY_NOT is not None:
        pytest.fail(f"HOPSIM_REQUIRE_BROWSER=1 but {WHY_NOT}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")  # type: ignore[assignment]
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver named outright: selenium's own driver manager (which would go
    # online to look for one) never runs.
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    kept = os.environ.get("HOPSIM_SCREENSHOTS")
    if kept:
        Path(kept).mkdir(parents=True, exist_ok=True)
        return Path(kept)
    return tmp_path_factory.mktemp("screenshots")


def viewport(driver, size: tuple[int, int]) -> None:
    width, height = size
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 700})


def open_page(driver, page: Path, speed: float | None = None) -> None:
    driver.get(page.as_uri() + (f"?speed={speed}" if speed else ""))
    wait(driver, "document.documentElement.dataset.ready === 'true'")


def wait(driver, condition: str, seconds: float = 20) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, seconds, poll_frequency=0.02).until(
        lambda d: d.execute_script(f"return {condition};"), message=condition)


def press(driver, *keys: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    chain = ActionChains(driver)
    for key in keys:
        chain.send_keys(key)
    chain.perform()


def errors(driver) -> list[str]:
    """What the page logged as an error: a script error, a blocked resource or
    a Content-Security-Policy refusal."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


SHOWN = """
const text = (q) => (document.querySelector(q) || {}).textContent;
return {
  setting: document.documentElement.dataset.setting,
  hop: text('#hop-value'), slider: document.getElementById('hop').value,
  tokens: text('#tokens-text'),
  verdict: document.getElementById('verdict').dataset.verdict,
  badge: text('#verdict .badge'), reason: text('#verdict .reason'),
  recommendation: text('#verdict .recommendation'),
  title: text('#picture svg > title'),
  rows: Array.from(document.querySelectorAll('#outcomes tbody tr')).map((r) => ({
    node: r.dataset.principal, outcome: r.querySelector('.outcome').textContent,
    finding: r.dataset.finding || null, reason: r.querySelector('.reason').textContent})),
};
"""


def sweep_json(file: Path, limits: list[int], tokens: str) -> dict:
    result = CliRunner().invoke(main, ["sweep", str(file), "--format", "json", "--all-principals",
                                       "--hop-limits",
                                       f"{limits[0]}-{limits[-1]}", "--http-tokens", tokens],
                                env=PLAIN)
    assert result.exit_code in (0, 1), result.output
    [report] = json.loads(result.stdout)["topologies"]
    return report


def check_shown(shown: dict, name: str, report: dict, hop_limit: int, tokens: str) -> None:
    """What the page shows at one setting against `hopsim sweep --format json`."""
    [result] = [r for r in report["results"] if r["hop_limit"] == hop_limit]
    assert shown["setting"] == f"{hop_limit}/{tokens}"
    assert (shown["hop"], shown["slider"], shown["tokens"]) == (str(hop_limit), str(hop_limit),
                                                                 tokens)
    assert shown["title"] == f"{name} at hop limit {hop_limit}"  # the picture moved with it
    assert shown["verdict"] == result["verdict"]
    assert shown["badge"].endswith(f"verdict: {result['verdict']}")
    assert shown["reason"] == result["reason"]
    wanted = report["recommended_hop_limit"]
    assert (f"hop limit {wanted}." if wanted else report["recommendation"]) in (
        shown["recommendation"])
    assert [(r["node"], r["outcome"], r["reason"]) for r in shown["rows"]] == [
        (p["node"], p["outcome"], p["reason"]) for p in result["principals"]]
    for row, p in zip(shown["rows"], result["principals"], strict=True):
        leak = p["role"] == "attacker" and p["outcome"] != "none"
        starved = p["role"] == "workload" and p["outcome"] != "token"
        assert row["finding"] == ("leak" if leak else "starved" if starved else None)


def not_blank(png: bytes, size: tuple[int, int]) -> None:
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size == size
    grey = image.convert("L").histogram()
    inked = sum(grey[:200]) / sum(grey)
    assert 0.03 < inked < 0.7, inked  # text and lines on a white page, not a white or black one
    assert len(image.getcolors(1 << 20)) > 40  # shapes, colours, anti-aliased text


# --- every bundled topology, in one browser ------------------------------------------------


@pytest.mark.parametrize("file", FILES, ids=IDS)
def test_the_page_shows_sweeps_results_and_plays_the_answer(browser, shots, tmp_path, file):
    from selenium.webdriver.common.keys import Keys

    page = tmp_path / f"{file.stem}.html"
    page.write_bytes(CliRunner().invoke(main, ["draw", str(file), "--format", "html"],
                                        env=PLAIN).stdout_bytes)
    viewport(browser, DESKTOP)
    open_page(browser, page, speed=50)
    data = browser.execute_script(
        "return JSON.parse(document.getElementById('lesson-data').textContent);")
    name, limits = data["topology"], data["hop_limits"]
    assert errors(browser) == []

    # Every setting, reached as a presenter would: arrows and T.
    press(browser, *[Keys.ARROW_LEFT] * len(limits))
    first = data["start"]["http_tokens"]
    for tokens in (first, "optional" if first == "required" else "required"):
        report = sweep_json(file, limits, tokens)
        for h in limits:
            check_shown(browser.execute_script(SHOWN), name, report, h, tokens)
            press(browser, Keys.ARROW_RIGHT)
        press(browser, "t", *[Keys.ARROW_LEFT] * len(limits))

    # Back where the file is (T twice, at hop limit 1), play the followed
    # principal's answer to the end.
    start = f"{data['start']['hop_limit']}/{data['start']['http_tokens']}"
    press(browser, *[Keys.ARROW_RIGHT] * (data["start"]["hop_limit"] - 1))
    assert browser.execute_script("return document.documentElement.dataset.setting") == start
    steps = data["settings"][start]["steps"][data["follow"]]
    press(browser, Keys.SPACE)
    wait(browser, f"document.documentElement.dataset.played === '{start}/{data['follow']}'")
    played = browser.execute_script("""
        const o = document.getElementById('overlay');
        return {caption: document.querySelector('#caption .text').textContent,
                count: document.querySelector('#caption .count').textContent,
                trails: o.querySelectorAll('.trail').length,
                tags: Array.from(o.querySelectorAll('.tag text')).map((t) => t.textContent),
                crosses: o.querySelectorAll('.cross').length};""")
    assert played["caption"] == steps[-1]["caption"]
    assert played["count"] == f"Step {len(steps)} of {len(steps)}:"
    moves = [s for s in steps if s["action"] in ("bridged", "forwarded", "NATed", "dropped",
                                                 "delivered")]
    trails = [s for s in steps if "points" in s]
    assert played["trails"] == len(trails)
    # Each link crossed carries the TTL the packet had on it, as the engine recorded.
    assert [t.strip("\u25b6\u25c0\u25bc\u25b2 ").removeprefix("TTL ") for t in played["tags"]] == [
        str(s["ttl_in"]) for s in moves]
    assert played["crosses"] == sum(s["action"] == "dropped" for s in moves)
    assert errors(browser) == []
    png = browser.get_screenshot_as_png()
    (shots / f"played-{file.stem}.png").write_bytes(png)
    not_blank(png, DESKTOP)

    # On a phone: nothing wider than the screen but the picture, which scrolls in its box.
    viewport(browser, PHONE)
    layout = browser.execute_script("""
        const box = document.getElementById('picture');
        return {page: document.documentElement.scrollWidth,
                caption: parseFloat(getComputedStyle(document.getElementById('caption')).fontSize),
                picture: box.getBoundingClientRect().width};""")
    assert layout["page"] <= PHONE[0]
    assert layout["picture"] <= PHONE[0] and layout["caption"] >= 14
    png = browser.get_screenshot_as_png()
    (shots / f"phone-{file.stem}.png").write_bytes(png)
    not_blank(png, PHONE)


def test_the_readme_frame_shows_the_drop_and_the_icmp(browser, shots, tmp_path):
    """docs/lesson-docker-bridge.png is this screenshot:
    HOPSIM_SCREENSHOTS=docs pytest tests/test_browser.py -k readme."""
    from selenium.webdriver.common.keys import Keys

    page = tmp_path / "docker-bridge.html"
    page.write_text(html.render(html_topology("docker-bridge")), encoding="utf-8")
    viewport(browser, DESKTOP)
    open_page(browser, page)
    press(browser, *[Keys.PAGE_DOWN] * 4)
    assert browser.find_element("css selector", "#caption").text == (
        "Step 4 of 6: instance sends ICMP Time Exceeded 11/0 back to 169.254.169.254 "
        "instead, with TTL 64.")
    assert browser.execute_script(
        "return document.querySelectorAll('#overlay .cross, #overlay .packet.icmp').length") == 2
    png = browser.get_screenshot_as_png()
    (shots / "lesson-docker-bridge.png").write_bytes(png)
    not_blank(png, DESKTOP)


# --- the presenter's keys ------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_hops(tmp_path_factory) -> Path:
    page = tmp_path_factory.mktemp("pages") / "router-two-hops.html"
    page.write_text(html.render(html_topology("router-two-hops")), encoding="utf-8")
    return page


def html_topology(name: str):
    from hopsim.loader import load

    return load(TOPOLOGIES / f"{name}.yaml")


def setting(driver) -> str:
    return driver.execute_script("return document.documentElement.dataset.setting")


def test_a_focused_slider_moves_one_step_per_key(browser, two_hops):
    from selenium.webdriver.common.keys import Keys

    viewport(browser, DESKTOP)
    open_page(browser, two_hops)
    assert setting(browser) == "2/required"  # as the file says
    browser.find_element("id", "hop").send_keys(Keys.ARROW_RIGHT)
    # one step, not one from the slider and one from the page
    assert setting(browser) == "3/required"
    browser.find_element("id", "hop").send_keys(Keys.ARROW_LEFT, Keys.ARROW_LEFT)
    assert setting(browser) == "1/required"


def test_keys_switch_tokens_follow_and_step(browser, two_hops):
    from selenium.webdriver.common.keys import Keys

    viewport(browser, DESKTOP)
    open_page(browser, two_hops)
    data = browser.execute_script(
        "return JSON.parse(document.getElementById('lesson-data').textContent);")
    press(browser, "t")
    assert setting(browser) == "2/optional"
    assert browser.find_element("id", "tokens").get_attribute("aria-checked") == "false"
    names = [p["name"] for p in data["principals"]]
    follow = data["follow"]
    press(browser, Keys.ARROW_DOWN)
    after = names[(names.index(follow) + 1) % len(names)]
    assert browser.find_element("id", "follow").get_attribute("value") == after
    press(browser, Keys.PAGE_DOWN)
    steps = data["settings"]["2/optional"]["steps"][after]
    assert browser.find_element("css selector", "#caption .count").text == (
        f"Step 1 of {len(steps)}:")
    press(browser, Keys.END)
    assert browser.find_element("css selector", "#caption .text").text == steps[-1]["caption"]
    press(browser, Keys.HOME)
    assert browser.execute_script("return document.documentElement.dataset.step") == "-1"
    overlay = "return document.getElementById('overlay').childElementCount"
    assert browser.execute_script(overlay) == 0


def test_space_pauses_after_a_mouse_click_on_play(browser, two_hops):
    from selenium.webdriver.common.keys import Keys

    viewport(browser, DESKTOP)
    open_page(browser, two_hops)
    browser.find_element("id", "play").click()
    assert browser.execute_script("return document.documentElement.dataset.playing") == "true"
    press(browser, Keys.SPACE)  # the button kept no focus: Space is the page's, once
    assert browser.execute_script("return document.documentElement.dataset.playing") == "false"
    assert browser.find_element("id", "play").text.endswith("Play")


# --- untrusted names -----------------------------------------------------------------------


def test_names_are_shown_as_text_and_run_nothing(browser, tmp_path):
    from selenium.common.exceptions import NoAlertPresentException

    name = "x</script><script>alert(1)</script>"
    node = "<img src=x onerror=alert(2)>"
    topology = make({"imds": {"kind": "imds"}, "gw": {"kind": "router"},
                     node: {"kind": "container", "role": "workload"}},
                    [["imds", "gw"], ["gw", node]], name=name)
    page = tmp_path / "evil.html"
    page.write_text(html.render(topology), encoding="utf-8")
    open_page(browser, page)
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018
    assert browser.execute_script("return document.scripts.length") == 2
    assert browser.execute_script("return document.images.length") == 0
    assert browser.find_element("css selector", "h1 .topology").text == name
    row = browser.find_element("css selector", "#outcomes tbody tr")
    assert row.get_attribute("data-principal") == node
    assert errors(browser) == []


def test_a_page_without_principals_plays_nothing_and_fails_nothing(browser, tmp_path):
    from selenium.webdriver.common.keys import Keys

    page = tmp_path / "empty.html"
    topology = without_principals({"imds": {"kind": "imds"}, "gw": {"kind": "router"}},
                                  [["imds", "gw"]])
    page.write_text(html.render(topology), encoding="utf-8")
    open_page(browser, page)
    press(browser, Keys.SPACE, Keys.ARROW_DOWN, Keys.PAGE_DOWN, Keys.ARROW_RIGHT)
    assert setting(browser) == "2/required"
    assert browser.find_element("css selector", "#caption .text").text == (
        "No principal in this topology: nothing to follow.")
    assert errors(browser) == []

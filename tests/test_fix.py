"""hopsim fix: the smallest sets of changes that make every verdict ok.

What each bundled topology needs was derived by hand from docs/facts.md and
docs/mitigations.md: docker-bridge's app crosses one router, so hop limit 2;
nginx passes PUT without X-Forwarded-For, so making it add the header (IMDS
then refuses the PUT) or stop passing PUT fixes it; the SSRF app's GET gets
IMDSv1 credentials, which only http_tokens required stops; a host-network
task shares the stack of the ECS agent that needs IMDS, so nothing works.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from builders import TOPOLOGIES
from click.testing import CliRunner

from hopsim import analysis
from hopsim import fix as fixes
from hopsim.cli import main
from hopsim.loader import load, topology_files
from hopsim.outcome import Verdict

PLAIN = {"NO_COLOR": "1", "COLUMNS": "80", "FORCE_COLOR": None, "TERM": "dumb"}


def best(name: str) -> list[str]:
    file = str(TOPOLOGIES / f"{name}.yaml")
    found = fixes.search(file, load(file))
    return [f.options(found.topology) for f in found.fixes]


def test_the_bridged_container_needs_hop_limit_2_and_no_more():
    assert best("docker-bridge") == ["--hop-limit 2"]


def test_an_open_nginx_is_fixed_by_its_own_settings():
    assert best("nginx-reverse-proxy") == ["--set nginx.adds_xff=true",
                                           "--set 'nginx.methods=[GET, HEAD]'"]


def test_ssrf_with_imdsv1_needs_http_tokens_required():
    assert best("ssrf-alb-optional") == ["--http-tokens required"]


def test_an_untrusted_pod_has_settings_filters_and_a_blackhole_cheapest_first():
    found = best("eks-untrusted-pod")
    assert found[0] == "--hop-limit 1"
    assert found[-1] == "--set untrusted-pod.block_imds=true"
    # Quoted for a shell: what check takes to see the same.
    assert "--set 'node.filters=[{chain: forward, to: imds, action: drop}]'" in found


def test_a_host_network_task_has_no_fix_and_fix_says_so():
    result = CliRunner().invoke(main, ["fix", str(TOPOLOGIES / "ecs-host-network-task.yaml")],
                                env=PLAIN)
    assert result.exit_code == 1
    assert "no fix of up to 3 changes" in result.output


@pytest.mark.parametrize("file", topology_files([TOPOLOGIES]), ids=lambda f: f.stem)
def test_every_fix_printed_is_ok_when_checked_again_with_its_options(file):
    found = fixes.search(str(file), load(file))
    for f in found.fixes:
        again = fixes.apply(str(file), found.topology, f.changes)
        assert analysis.check(again).results[0].verdict is Verdict.OK, f.options(found.topology)
    if found.needed and file.stem != "ecs-host-network-task":
        assert found.fixes, f"{file.stem}: a bundled topology with a finding has a fix"


@pytest.mark.parametrize("name", ["docker-bridge", "nginx-reverse-proxy", "eks-untrusted-pod"])
def test_the_patch_applies_and_the_patched_file_is_ok(tmp_path, name):
    source = TOPOLOGIES / f"{name}.yaml"
    target = tmp_path / source.name
    found = fixes.search(str(source), load(source))
    for f in found.fixes:
        target.write_text(source.read_text())
        text = fixes.patch(str(source), found.topology, f).replace(str(source), source.name)
        # git apply works outside a repository, as patch(1) does (git is on CI).
        subprocess.run(["git", "apply", "-p1", "-"], input=text, text=True, check=True,
                       cwd=tmp_path)
        patched = load(target)
        assert analysis.check(patched).results[0].verdict is Verdict.OK, text


def test_json_lists_the_fixes_and_the_patch():
    result = CliRunner().invoke(main, ["fix", str(TOPOLOGIES / "docker-bridge.yaml"),
                                       "--format", "json"], env=PLAIN)
    doc = json.loads(result.output)
    assert doc["verdict"] == "broken" and doc["fixes"][0]["options"] == "--hop-limit 2"
    assert "+  hop_limit: 2" in doc["patch"]

"""Which files a run reads: folders searched with their subfolders, other YAML
and JSON skipped with a note, nothing found is bad input, "-" is standard
input."""

from __future__ import annotations

import shutil

import pytest
from builders import BASE, ROOT, TOPOLOGIES
from click.testing import CliRunner

from hopsim.cli import main
from hopsim.loader import find, is_topology, load, parse
from hopsim.topology import NotATopology, TopologyError

PLAIN = {"NO_COLOR": "1", "COLUMNS": "80", "FORCE_COLOR": None, "TERM": "dumb"}
PLAN = ROOT / "tests" / "fixtures" / "terraform" / "plan.json"
MANIFEST = """\
apiVersion: v1
kind: Pod
metadata: {name: app}
spec:
  containers: [{name: app, image: nginx}]
---
apiVersion: v1
kind: Service
metadata: {name: app}
"""


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), env=PLAIN, input=input)


@pytest.fixture
def repo(tmp_path):
    """A repository's network folder: topologies in subfolders, next to a
    Terraform plan, a Kubernetes manifest and a hidden folder."""
    network = tmp_path / "network"
    (network / "prod" / "web").mkdir(parents=True)
    shutil.copy(TOPOLOGIES / "docker-bridge.yaml", network / "prod" / "web")
    shutil.copy(TOPOLOGIES / "host-process.yaml", network / "prod")
    shutil.copy(PLAN, network / "plan.json")
    (network / "k8s").mkdir()
    (network / "k8s" / "app.yaml").write_text(MANIFEST)
    (network / ".cache").mkdir()
    (network / ".cache" / "broken.yaml").write_text("name: [")
    return network


def test_a_folder_is_searched_with_its_subfolders(repo):
    result = run("validate", str(repo))
    assert result.exit_code == 0, result.output
    assert f"ok: {repo}/prod/host-process.yaml: host-process" in result.output
    assert f"ok: {repo}/prod/web/docker-bridge.yaml: docker-bridge" in result.output


def test_other_yaml_and_json_in_a_folder_are_skipped_with_a_note(repo):
    result = run("check", str(repo))
    # docker-bridge starves its app at hop limit 1: the finding, not bad input
    assert result.exit_code == 1, result.output
    assert "unknown key" not in result.output
    assert (f"note: {repo}/plan.json: not a topology (its top keys, format_version, "
            "terraform_version, planned_values, resource_changes, ..., include none of "
            "nodes, units, links, imds, expect), skipped") in result.output
    # recognised as a Kubernetes manifest: checked when named (it may need
    # --settings), never imported behind the user's back by a folder scan
    assert (f"note: {repo}/k8s/app.yaml: not a topology (a Kubernetes manifest; name it "
            "to check it), skipped") in result.output
    assert "2 topologies, 2 results" in result.output


def test_hidden_folders_are_not_searched(repo):
    assert all(".cache" not in str(f.path) for f in find([repo]))


def test_a_file_named_on_the_command_line_is_read_as_a_topology_whatever_it_holds(repo):
    result = run("check", str(repo / "plan.json"))
    assert result.exit_code == 2
    assert "unknown key 'format_version'" in result.output


@pytest.mark.parametrize("command", ["check", "sweep", "validate"])
def test_an_empty_folder_is_bad_input_not_a_pass(tmp_path, command):
    result = run(command, str(tmp_path))
    assert result.exit_code == 2, result.output
    assert f"error: {tmp_path}: no topology found in this folder or its subfolders" in \
        result.output


def test_a_folder_of_other_files_only_is_bad_input(repo):
    result = run("check", str(repo / "k8s"))
    assert result.exit_code == 2
    assert (f"error: {repo}/k8s: no topology found in this folder or its subfolders; "
            "1 YAML or JSON file skipped, not topologies") in result.output


def test_one_empty_folder_among_good_paths_still_fails_the_run(repo, tmp_path):
    empty = tmp_path / "typo-in-the-path"
    empty.mkdir()
    result = run("check", str(repo / "prod" / "host-process.yaml"), str(empty))
    assert result.exit_code == 2
    assert "no topology found" in result.output


def test_folders_are_searched_the_same_with_jobs(repo):
    assert run("check", str(repo), "--jobs", "2").output == run("check", str(repo)).output


# --- is_topology: the one definition -------------------------------------------


@pytest.mark.parametrize("doc", [
    {"name": "x", "description": "y", "nodes": {}, "links": []},
    {"units": {}}, {"imds": {}}, {"expect": {}}, {"nodez": {}, "links": []}])
def test_a_mapping_with_a_key_only_topologies_have_is_a_topology(doc):
    assert is_topology(doc)


@pytest.mark.parametrize("doc", [
    None, [], "text", {}, {"apiVersion": "v1", "kind": "Pod"},
    {"format_version": "1.2", "planned_values": {}},
    {"services": {"web": {"image": "nginx"}}},  # compose
    {"name": "ci", "on": "push", "jobs": {}},  # a workflow: name alone is no topology
    {"name": "action", "description": "x", "runs": {}}])
def test_other_documents_are_not_topologies(doc):
    assert not is_topology(doc)


def test_a_topology_with_mistakes_found_in_a_folder_is_still_reported(tmp_path):
    (tmp_path / "bad.yaml").write_text(BASE.replace("kind: bridge", "kind: brigde"))
    with pytest.raises(TopologyError):
        load(tmp_path / "bad.yaml", recognise=True)
    result = run("check", str(tmp_path))
    assert result.exit_code == 2
    assert "unknown kind 'brigde'" in result.output


def test_recognise_raises_not_a_topology_for_other_documents():
    with pytest.raises(NotATopology, match="empty"):
        parse("", "empty.yaml", recognise=True)
    with pytest.raises(TopologyError):
        parse("", "empty.yaml")


# --- "-": standard input ----------------------------------------------------------


def test_a_dash_reads_the_topology_from_standard_input():
    text = (TOPOLOGIES / "eks-untrusted-pod.yaml").read_text()
    result = run("check", "-", input=text)
    assert result.exit_code == 1  # the untrusted pod gets the token at 2
    assert "eks-untrusted-pod at hop limit 2: leak (<stdin>)" in result.output


@pytest.mark.parametrize("command", [["validate"], ["show"], ["explain"],
                                     ["trace", "--from", "app"], ["sweep"]])
def test_every_command_that_reads_topologies_takes_a_dash(command):
    text = (TOPOLOGIES / "docker-bridge.yaml").read_text()
    result = run(command[0], "-", *command[1:], input=text)
    assert result.exit_code in (0, 1), result.output
    assert "docker-bridge" in result.output


def test_problems_on_standard_input_are_located_in_it():
    result = run("validate", "-", input=BASE.replace("hop_limit: 2", "hop_limit: 0"))
    assert result.exit_code == 2
    assert "error: <stdin>:4: imds.hop_limit: expected 1..64, got 0" in result.output


def test_standard_input_with_other_files_and_jobs():
    text = (TOPOLOGIES / "open-waf.yaml").read_text()
    result = run("check", "-", str(TOPOLOGIES / "host-process.yaml"), "-j", "2", input=text)
    assert result.exit_code == 0, result.output
    assert "open-waf at hop limit 1: ok (<stdin>)" in result.output


def test_standard_input_is_read_once():
    result = run("check", "-", "-", input="")
    assert result.exit_code == 2
    assert "standard input (-) can be read only once" in result.output

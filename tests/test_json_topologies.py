"""JSON topology files: the same schema as YAML, the same answers."""

from __future__ import annotations

import json

import pytest
import yaml
from builders import TOPOLOGIES
from click.testing import CliRunner

from hopsim import analysis
from hopsim.cli import main
from hopsim.loader import load, topology_files
from hopsim.topology import TopologyError

BUNDLED = sorted(TOPOLOGIES.glob("*.yaml"))


def run(*args: str):
    return CliRunner().invoke(main, list(args), env={"NO_COLOR": "1", "COLUMNS": "80"})


def json_twin(source, folder):
    twin = folder / f"{source.stem}.json"
    twin.write_text(json.dumps(yaml.safe_load(source.read_text()), indent=2))
    return twin


@pytest.mark.parametrize("source", BUNDLED, ids=lambda p: p.stem)
def test_a_json_twin_of_a_bundled_file_sweeps_identically(source, tmp_path):
    original, twin = load(source), load(json_twin(source, tmp_path))
    assert twin.nodes == original.nodes and twin.links == original.links
    assert twin.expect == original.expect
    first, second = (analysis.sweep(t, range(1, 65)) for t in (original, twin))
    assert second.results == first.results
    assert second.expectations == first.expectations
    assert second.recommendation == first.recommendation


def test_folders_pick_up_json_files_beside_yaml(tmp_path):
    json_twin(TOPOLOGIES / "docker-bridge.yaml", tmp_path)
    (tmp_path / "notes.txt").write_text("not a topology")
    assert [p.name for p in topology_files([tmp_path])] == ["docker-bridge.json"]


def test_bad_json_is_one_error_line_with_its_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "name": "x",\n  "nodes": {,}\n}\n')
    result = run("check", str(bad))
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines[0] == (f"error: {bad}:3: not valid JSON: Expecting property name enclosed "
                        "in double quotes (column 13)")
    assert len([line for line in lines if line.startswith("error:")]) == 1


def _line_of(text: str, fragment: str) -> int:
    """The line (from 1) of the one line of `text` holding `fragment`."""
    found = [i for i, line in enumerate(text.splitlines(), 1) if fragment in line]
    assert len(found) == 1, (fragment, found)
    return found[0]


def test_a_duplicate_key_in_json_is_reported_at_its_line_with_the_first(tmp_path):
    doc = json.loads(json.dumps(yaml.safe_load((TOPOLOGIES / "docker-bridge.yaml").read_text())))
    text = json.dumps(doc, indent=1).replace('"kind": "bridge"',
                                             '"kind": "bridge",\n"kind": "router"')
    path = tmp_path / "dup.json"
    path.write_text(text)
    with pytest.raises(TopologyError) as error:
        load(path)
    first, second = _line_of(text, '"kind": "bridge"'), _line_of(text, '"kind": "router"')
    assert [str(p) for p in error.value.problems] == [
        f"{path}:{second}: nodes.docker0.kind: duplicate key 'kind' (first at line {first})"]


def test_json_schema_mistakes_name_the_file_line_and_key(tmp_path):
    doc = json.loads(json.dumps(yaml.safe_load((TOPOLOGIES / "docker-bridge.yaml").read_text())))
    doc["nodes"]["app"]["kind"] = "contianer"
    doc["nodes"]["docker0"]["colour"] = "blue"
    doc["links"].append(["app", "nowhere"])
    path = tmp_path / "typo.json"
    text = json.dumps(doc, indent=2)
    path.write_text(text)
    result = run("validate", str(path))
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    kind, colour = _line_of(text, '"contianer"'), _line_of(text, '"colour"')
    link = _line_of(text, '"nowhere"') - 2  # indented, the pair starts at its "["
    expected = sorted([  # in line order, as YAML's
        (kind, f"error: {path}:{kind}: nodes.app.kind: unknown kind 'contianer' (did you "
               "mean 'container'?)"),
        (colour, f"error: {path}:{colour}: nodes.docker0.colour: unknown key 'colour'"),
        (link, f"error: {path}:{link}: links.{len(doc['links']) - 1}: link to a missing "
               "node 'nowhere'")])
    assert len(errors) == 3
    for error, (_, start) in zip(errors, expected, strict=True):
        assert error.startswith(start)


def test_a_valid_json_file_is_read_without_a_second_pass(tmp_path, monkeypatch):
    import hopsim.loader

    def refused(text):
        raise AssertionError("json_positions ran on a valid file")

    monkeypatch.setattr(hopsim.loader, "json_positions", refused)
    assert load(json_twin(TOPOLOGIES / "docker-bridge.yaml", tmp_path)).name == "docker-bridge"

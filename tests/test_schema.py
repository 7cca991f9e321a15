"""`hopsim schema`: made from the loader's Field tables, it accepts every
bundled topology and rejects what the loader rejects, key by key."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml
from builders import TOPOLOGIES
from ci_helpers import run

from hopsim.kinds import KINDS
from hopsim.loader import parse
from hopsim.topology import IMDS_FIELDS, KIND_FIELDS, NODE_FIELDS, TOP_FIELDS, TopologyError, schema

SCHEMA = schema.json_schema()
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)
ALL_NODE_FIELDS = {f.name: f for f in (*NODE_FIELDS, *KIND_FIELDS.values())}


def as_json(text: str):
    """What an editor validates: the YAML document as JSON (integer keys become strings)."""
    return json.loads(json.dumps(yaml.safe_load(text)))


def schema_errors(text: str) -> list[str]:
    return [e.message for e in VALIDATOR.iter_errors(as_json(text))]


def loader_problems(text: str) -> list[str]:
    try:
        parse(text, "t.yaml")
    except TopologyError as error:
        return [str(p) for p in error.problems]
    return []


def test_the_command_prints_the_schema():
    result = run("schema")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == SCHEMA
    jsonschema.Draft7Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", sorted(TOPOLOGIES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_bundled_topology_is_valid(path):
    assert schema_errors(path.read_text()) == []


def test_every_key_of_the_field_tables_is_in_the_schema():
    assert set(SCHEMA["properties"]) == {f.name for f in TOP_FIELDS}
    assert set(SCHEMA["properties"]["imds"]["properties"]) == {f.name for f in IMDS_FIELDS}
    kinds = SCHEMA["definitions"]
    assert set(kinds) == {"node", *KINDS}
    covered = {key for kind in KINDS for key in kinds[kind]["properties"]}
    assert covered == set(ALL_NODE_FIELDS)


def test_every_list_or_mapping_key_says_what_it_holds():
    for f in (*TOP_FIELDS, *IMDS_FIELDS, *ALL_NODE_FIELDS.values()):
        if f.type in (list, dict):
            assert f.name in schema.CONTENTS, f"{f.name}: add its contents to schema.CONTENTS"


SAMPLE = {"runs_on": "h", "via": ["h"], "family": 6, "address": "10.9.9.9",
          "address6": "fd00::9", "methods": ["GET"], "description": "x", "role": "workload",
          "masquerade": True, "gateway": "h", "routes": {"imds": "h"},
          "filters": [{"chain": "forward", "to": "imds", "action": "drop"}]}


def sample(name: str):
    f = ALL_NODE_FIELDS[name]
    if name in SAMPLE:
        return SAMPLE[name]
    if f.choices:
        return f.choices[0]
    if f.bounds:
        return f.bounds[0]
    return {bool: True, str: "x"}[f.type]


def with_node(kind: str, key: str) -> str:
    node = {"kind": kind, key: sample(key)}
    doc = {"name": "t", "description": "t", "nodes": {
        "imds": {"kind": "imds"}, "h": {"kind": "host", "forwarding": True}, "x": node},
        "links": [["imds", "h"]]}
    return yaml.safe_dump(doc, sort_keys=False)


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_schema_accepts_a_key_on_a_kind_exactly_when_the_loader_does(kind):
    for key in ALL_NODE_FIELDS:
        if key == "kind":
            continue
        text = with_node(kind, key)
        loader_refuses = any(f"unknown key '{key}'" in p or "only principals" in p
                             or "cannot run on a host" in p for p in loader_problems(text))
        assert bool(schema_errors(text)) == loader_refuses, (kind, key, loader_problems(text))


GOOD = """\
name: t
description: t
imds: {hop_limit: 2}
nodes:
  imds: {kind: imds}
  instance: {kind: host, forwarding: true}
  web: {kind: proxy, runs_on: instance, methods: [GET]}
  app: {kind: container, role: workload, via: [instance]}
links:
  - [imds, instance]
  - [instance, app]
expect:
  2: {app: token}
"""


@pytest.mark.parametrize("old,new", [
    ("imds: {hop_limit: 2}", "imds: {hop_limit: 0}"),
    ("imds: {hop_limit: 2}", "imds: {hop_limit: 65}"),
    ("imds: {hop_limit: 2}", "imds: {hop_limit: '2'}"),
    ("imds: {hop_limit: 2}", "imds: {http_tokens: maybe}"),
    ("imds: {hop_limit: 2}", "imds: {hoplimit: 2}"),
    ("{kind: host, forwarding: true}", "{kind: routr}"),
    ("{kind: host, forwarding: true}", "{kind: host, forwarding: yes please}"),
    ("role: workload", "role: admin"),
    ("methods: [GET]", "methods: [FETCH]"),
    ("{kind: imds}", "{kind: imds, role: workload}"),
    ("  - [instance, app]", "  - [instance, app, web]"),
    ("{app: token}", "{app: tokn}"),
    ("2: {app: token}", "65: {app: token}"),
    ("description: t\n", ""),
    ("name: t\n", "name: t\nextra: 1\n"),
])
def test_mistakes_are_refused_by_the_schema_and_the_loader(old, new):
    assert schema_errors(GOOD) == [] and loader_problems(GOOD) == []
    bad = GOOD.replace(old, new)
    assert bad != GOOD
    assert schema_errors(bad), bad
    assert loader_problems(bad), bad


def test_compact_fleets_are_valid_and_their_mistakes_refused_by_both():
    from hopsim.generate import compact_fleet, dumps

    text = dumps(compact_fleet(100, 8))
    assert schema_errors(text) == [] and loader_problems(text) == []
    doc = yaml.safe_load(text)
    unit = next(iter(doc["units"].values()))
    for mistake in ({"count": 0}, {"nodes": {**unit["nodes"], "a/b": {"kind": "client"}}}):
        bad = {**doc, "units": {**doc["units"], "u": {**unit, **mistake}}}
        bad_text = yaml.safe_dump(bad, sort_keys=False)
        assert schema_errors(bad_text), mistake
        assert loader_problems(bad_text), mistake
    no_count = {**doc, "units": {"u": {k: v for k, v in unit.items() if k != "count"}}}
    assert schema_errors(yaml.safe_dump(no_count)) and loader_problems(yaml.safe_dump(no_count))
    neither = {k: v for k, v in doc.items() if k != "units"}
    assert schema_errors(yaml.safe_dump(neither)) and loader_problems(yaml.safe_dump(neither))

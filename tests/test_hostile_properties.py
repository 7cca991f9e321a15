"""The fuzzing of issue 15, kept: hypothesis draws hostile input for every
surface a file or an argument reaches, and each property says what issue 15
promises: a refusal is one line (an error the reader raises, exit 2 on the
command line), never a traceback; nothing a reader cannot see is shown raw.

Surfaces: the topology loader (YAML and JSON, any text and any shape of
values), the settings readers (plans, describe-instances, Terraform source),
the importers' readers (compose, Kubernetes, ECS), `--set` values, names,
and `--output` paths. HOPSIM_EXAMPLES=20 hunts 20 times longer.
"""

from __future__ import annotations

import json
import os
import re
import string
import tempfile
from pathlib import Path

import yaml
from builders import BASE, TOPOLOGIES
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hopsim import importers
from hopsim.cli import main
from hopsim.importers import instances as settings_files
from hopsim.loader import parse
from hopsim.settings import SettingsError
from hopsim.topology import NotATopology, TopologyError
from hopsim.untrusted import name_problem, name_problems, shown

_SCALE = int(os.environ.get("HOPSIM_EXAMPLES", "1"))
FAST = settings(max_examples=150 * _SCALE, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=30 * _SCALE, deadline=None,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])
PLAIN = {"NO_COLOR": "1", "COLUMNS": "80", "FORCE_COLOR": None, "TERM": "dumb"}
DOCKER = str(TOPOLOGIES / "docker-bridge.yaml")
HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069"
                    "\u2028\u2029\ufeff\ud800-\udfff]")



class Digits(str):
    """A JSON number written as these digits: past Python's 4,300-digit limit."""


# Hostile scalars: huge and odd numbers, control and bidi characters, surrogates.
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
    st.just(Digits("9" * 5000)), st.just(Digits("-" + "1" * 4400)),
    st.text(max_size=20),
    st.sampled_from(["\x1b[31m", "\u202e", "\ud800", "..", ".", "", "\x00", "a#9999",
                     "*a", "&a", "!!python/object:os.system", "1e999", "0x10", "NaN"]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8) | SCALARS.filter(
        lambda v: type(v) is str), inner, max_size=4)), max_leaves=25)
KEYS = st.sampled_from(["name", "description", "imds", "nodes", "links", "expect", "units",
                        "hop_limit", "kind", "role", "via", "runs_on", "replicas", "count",
                        "forwarding", "masquerade", "routes", "gateway", "family"])


def _json_text(value) -> str:
    """JSON text of any value, numbers past Python's digit limit included."""
    if isinstance(value, Digits):
        return str.__str__(value)
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, list):
        return "[" + ",".join(_json_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_json_text(v)}"
                              for k, v in value.items()) + "}"
    return json.dumps(value)


@st.composite
def mangled_topologies(draw) -> dict:
    doc = yaml.safe_load(BASE)
    where = draw(st.sampled_from(["top", "imds", "node", "links", "new-node"]))
    key, value = draw(KEYS), draw(VALUES)
    if where == "top":
        doc[key] = value
    elif where == "imds":
        doc["imds"][key] = value
    elif where == "node":
        doc["nodes"][draw(st.sampled_from(sorted(doc["nodes"])))][key] = value
    elif where == "links":
        doc["links"].append(value)
    else:
        name = draw(st.text(max_size=6) | SCALARS.filter(lambda v: type(v) is str))
        doc["nodes"][name] = value
    return doc


def _loads_or_refuses(text: str, file: str) -> None:
    try:
        parse(text, file)
    except (TopologyError, NotATopology) as error:
        for problem in getattr(error, "problems", []):
            assert not HIDDEN.search(shown(str(problem)))


@FAST
@given(st.text(max_size=300))
def test_any_text_loads_or_is_refused_as_yaml_and_json(text):
    _loads_or_refuses(text, "t.yaml")
    _loads_or_refuses(text, "t.json")


@FAST
@given(mangled_topologies())
def test_a_topology_with_any_hostile_value_loads_or_is_refused(doc):
    _loads_or_refuses(_json_text(doc), "t.json")
    try:
        text = yaml.safe_dump(doc, allow_unicode=True)
    except (yaml.YAMLError, ValueError):  # surrogates, Digits: PyYAML will not write them
        return
    _loads_or_refuses(text, "t.yaml")


def _temporary(text: str, suffix: str) -> Path:
    handle, name = tempfile.mkstemp(suffix=suffix)
    with os.fdopen(handle, "w", encoding="utf-8", errors="surrogatepass") as stream:
        stream.write(text)
    return Path(name)


@FAST
@given(VALUES, st.sampled_from(["plan", "ec2", "bare"]))
def test_a_settings_file_of_any_shape_reads_or_is_one_error(value, wrapper):
    doc = ({"format_version": "1.2", "planned_values": value} if wrapper == "plan" else
           {"Reservations": value} if wrapper == "ec2" else value)
    path = _temporary(_json_text(doc), ".json")
    try:
        settings_files.read(path)
    except SettingsError as error:
        assert "\n" not in str(error)
    finally:
        path.unlink()


@FAST
@given(st.text(max_size=200), st.sampled_from([".tf", ".yaml", ".json"]))
def test_a_settings_file_of_any_text_reads_or_is_one_error(text, suffix):
    path = _temporary(text, suffix)
    try:
        settings_files.read(path)
    except SettingsError:
        pass
    finally:
        path.unlink()


@FAST
@given(VALUES, st.sampled_from(["compose", "kubernetes", "ecs"]))
def test_a_design_of_any_shape_imports_or_is_refused(value, reader):
    doc = ({"services": value} if reader == "compose" else
           {"apiVersion": "v1", "kind": "Pod", "spec": value} if reader == "kubernetes" else
           {"family": "x", "containerDefinitions": value})
    path = _temporary(_json_text(doc), ".json")
    try:
        importers.load(path, reader=getattr(importers, reader))
    except (TopologyError, NotATopology):
        pass
    finally:
        path.unlink()


def run(*args: str):
    result = CliRunner().invoke(main, list(args), env=PLAIN)
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        (result.exception, result.output)
    assert result.exit_code in (0, 1, 2)
    assert not HIDDEN.search(result.output)
    return result


@SLOW
@given(st.sampled_from(["imds.hop_limit", "instance.forwarding", "app.role", "app.via",
                        "nope.kind", "app.replicas"]),
       st.text(max_size=40) | st.sampled_from(["[" * 3000, "{a: " * 2000, "9" * 5000,
                                               "!!python/object/apply:os.system [x]",
                                               "*x", "&a [*a, *a]", "\x1b[2J"]))
def test_any_set_value_is_used_or_refused_in_one_line(target, value):
    run("check", DOCKER, "--set", f"{target}={value}")


@FAST
@given(st.text(max_size=30))
def test_a_name_is_refused_or_shows_as_itself(name):
    problem = name_problem(name)
    if problem is None:
        assert shown(name) == name
        assert not HIDDEN.search(name)
    else:
        assert not HIDDEN.search(problem)


@FAST
@given(st.lists(st.text(max_size=8) | st.sampled_from(["i0001-docker-app", "a.b", "..", "/./",
                                                        "x\ty", "café", "раypal", "ﬁle", ""]),
                max_size=12))
def test_names_checked_in_one_pass_are_refused_as_each_alone(names):
    """name_problems (one pass for a fleet's names) refuses exactly what
    name_problem refuses name by name, with the same words."""
    alone = {name: name_problem(name) for name in names}
    assert name_problems(names) == {name: p for name, p in alone.items() if p}


@SLOW
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1,
               max_size=12))
def test_any_node_name_loads_and_shows_clean_or_is_refused(name):
    doc = yaml.safe_load(BASE)
    doc["nodes"][name] = {"kind": "container", "role": "workload"}
    doc["links"].append(["docker0", name])
    path = _temporary(json.dumps(doc), ".json")
    try:
        for command in ("check", "show", "explain"):
            run(command, str(path))
    finally:
        path.unlink()


@FAST
@given(st.text(max_size=500))
def test_shown_leaves_nothing_hidden(text):
    assert not HIDDEN.search(shown(text))


@SLOW
@given(st.text(alphabet=string.ascii_letters + string.digits + "./-_:\x1b \u202e",
               min_size=1, max_size=40))
def test_any_output_path_is_written_or_refused(name):
    with tempfile.TemporaryDirectory() as folder:
        target = os.path.join(folder, name)
        result = run("check", DOCKER, "--output", f"json:{target}")
        if result.exit_code == 1 and os.path.isfile(target):
            json.loads(Path(target).read_text())
        left = [f for _, _, files in os.walk(folder) for f in files if f.endswith(".tmp")]
        assert left == []

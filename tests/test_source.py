"""Reading YAML three ways, with one result (issue 4: fleet-scale YAML).

With libyaml (PyYAML's C extension), a plain document is read straight from
libyaml's events (`_read_plain`) and anything else by composing the node graph
on libyaml's events (`_read_nodes(libyaml=True)`); without libyaml, by PyYAML's
pure-Python parser, as every file was read before (`_read_nodes(libyaml=False)`).
Each test reads a text all three ways and asserts the same values, lines,
columns and soft problems, or the same located Abort. tests/test_topology_errors.py
holds the contract itself (which line, which key, which message).
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
import yaml
from builders import TOPOLOGIES
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_topology_errors import BASE, HOSTILE, _hostile_line, line_of

from hopsim.generate import dumps, fleet
from hopsim.loader import load, parse
from hopsim.topology import reader as source
from hopsim.topology.reader import MAX_DEPTH, Abort

needs_libyaml = pytest.mark.skipif(not source._with_libyaml(),
                                   reason="PyYAML is built without libyaml here")


def _not_plain(text: str) -> Any:
    raise source._NotPlain


def _no_graph(text: str, libyaml: bool) -> Any:
    raise AssertionError("a plain document was left to _read_nodes")


def read(text: str, how: str) -> Any:
    """read_yaml's result, or its Abort as a tuple, read:

    - "plain": with libyaml, insisting on `_read_plain` (no node graph);
    - "libyaml": with libyaml, as read_yaml chooses;
    - "graph": with libyaml, always composing the node graph;
    - "pure": without libyaml (PyYAML's pure-Python parser).
    """
    with pytest.MonkeyPatch.context() as patch:
        if how == "pure":
            patch.setattr(yaml, "__with_libyaml__", False)
        elif how == "graph":
            patch.setattr(source, "_read_plain", _not_plain)
        elif how == "plain":
            patch.setattr(source, "_read_nodes", _no_graph)
        try:
            return source.read_yaml(text)
        except Abort as abort:
            return ("abort", abort.line, abort.key, abort.message)


def three_ways(text: str) -> Any:
    """The result, after asserting that all three readers give it.

    Syntax errors are worded by the parser: libyaml's and PyYAML's words
    differ ("did not find expected ',' or ']'", "expected ',' or ']', but got
    ':'"), so there only the line and key must be the same.
    """
    pure = read(text, "pure")
    if source._with_libyaml():
        libyaml = read(text, "libyaml")
        assert comparable(libyaml) == comparable(read(text, "graph"))
        if _syntax_error(libyaml) and _syntax_error(pure):
            assert libyaml[:3] == pure[:3]
        else:
            assert comparable(libyaml) == comparable(pure)
    return pure


def _syntax_error(result: Any) -> bool:
    return result[0] == "abort" and result[3].startswith("not valid YAML: ")


def comparable(value: Any) -> Any:
    """`value` with each NaN (equal to nothing, itself included) as a string."""
    if isinstance(value, float) and value != value:
        return "<NaN>"
    if isinstance(value, dict):
        return [(comparable(k), comparable(v)) for k, v in value.items()]
    if isinstance(value, list | tuple):
        return [comparable(item) for item in value]
    return value


# --- what every file is read with --------------------------------------------------


@needs_libyaml
def test_libyaml_reads_yaml_here_and_allows_64_mib():
    assert source._CParser is not None
    assert source.MAX_FILE_BYTES == 64 * 1024 * 1024


@needs_libyaml
@pytest.mark.parametrize("path", sorted(TOPOLOGIES.glob("*.yaml")), ids=lambda p: p.name)
def test_bundled_topologies_read_the_same_three_ways_and_plainly(path):
    text = path.read_text()
    doc, lines, columns, soft = three_ways(text)
    assert (doc, lines, columns, soft) == read(text, "plain")
    assert doc == yaml.safe_load(text)
    assert soft == []
    assert lines["nodes"] == line_of(text, "nodes:")
    assert columns["nodes"] == 1


@needs_libyaml
def test_a_generated_fleet_reads_the_same_three_ways_and_plainly():
    text = dumps(fleet(40, 4, 3), "yaml")
    result = three_ways(text)
    assert result == read(text, "plain")
    doc, lines, columns, _ = result
    first = next(iter(doc["nodes"]))
    assert lines[f"nodes.{first}"] == line_of(text, f"  {first}: ")
    assert columns[f"nodes.{first}.kind"] == text.splitlines()[lines[f"nodes.{first}"] - 1] \
        .index("kind") + 1
    assert lines[f"links.{len(doc['links']) - 1}.1"] == text.count("\n")


@needs_libyaml
def test_a_plain_file_larger_than_the_old_1_mib_limit_loads_without_a_node_graph(
        tmp_path, monkeypatch):
    document = fleet(1200, 8, 0)
    path = tmp_path / "fleet.yaml"
    path.write_text(dumps(document, "yaml"))
    assert path.stat().st_size > 1024 * 1024
    monkeypatch.setattr(source, "_read_nodes", _no_graph)
    topology = load(path)
    assert len(topology.nodes) == len(document["nodes"])
    assert len(topology.links) == len(document["links"])


def test_without_libyaml_the_pure_python_parser_reads_and_libyaml_is_not_touched(monkeypatch):
    class Refused:
        def __init__(self, *args: Any):
            raise AssertionError("libyaml used although PyYAML says it has none")

    expected = three_ways(BASE)
    monkeypatch.setattr(yaml, "__with_libyaml__", False)
    monkeypatch.setattr(source, "_CParser", Refused)
    assert source.read_yaml(BASE) == expected
    monkeypatch.setattr(source, "_CParser", None)  # PyYAML built without it at all
    monkeypatch.setattr(yaml, "__with_libyaml__", True)
    assert source.read_yaml(BASE) == expected
    assert expected[0]["nodes"]["app"] == {"kind": "container", "role": "workload"}


# --- hostile and odd texts: the same Abort, or the same values ---------------------------

# texts that are not plain, or not valid, or both: (id, text)
ODD = [
    ("anchor-and-alias", "a: &x {k: v}\nb: *x\n"),
    ("merge", "base: &b {kind: host, role: x}\nnode: {<<: *b, role: y}\n"),
    ("merge-of-a-list", "a: &a {x: 1}\nb: &b {y: 2}\nc:\n  <<: [*a, *b]\n  z: 3\n"),
    ("merge-of-a-list-with-a-scalar", "a: &a {x: 1}\nc:\n  <<: [*a, 1]\n"),
    ("merge-key-at-the-top", "<<: {a: 1}\nb: 2\n"),
    ("value-key", "a: {=: 1, b: 2}\n"),
    ("merge-key-as-a-value", "a: <<\n"),
    ("value-key-as-a-value", "a: =\n"),
    ("undefined-alias", "a: 1\nb: *nope\n"),
    ("duplicate-anchor", "a: &x 1\nb: &x 2\n"),
    ("two-documents", "a: 1\n---\nb: 2\n"),
    ("an-empty-document", "---\n"),
    ("only-a-comment", "# nothing\n"),
    ("a-scalar", "just text\n"),
    ("a-list-at-the-top", "- a\n- [b, c]\n"),
    ("list-as-a-key", "? [a, b]\n: 1\n"),
    ("seq-tagged-scalar-as-a-key", "x:\n  {!!seq a: 1}\n"),
    ("set-tagged-scalar-as-a-key", "!!set a: 1\n"),
    ("seq-tagged-scalar", "a: !!seq x\n"),
    ("tags-the-safe-loader-builds",
     "a: !!str 12\nb: !!int '7'\nc: !!float 1\nd: !!bool yes\ne: !!null ''\n"
     "f: !!binary aGk=\ng: !!timestamp 2001-12-14\nh: !!set {x, y}\ni: !!omap [{p: 1}]\n"
     "j: !<tag:yaml.org,2002:str> 5\nk: ! 12\nl: ! '12'\n"),
    ("unsupported-tag-on-a-key", "!!python/none a: 1\n"),
    ("local-tag", "a: !local 1\n"),
    ("bad-binary", "a: !!binary é\n"),
    ("bad-bool", "a: !!bool maybe\n"),
    ("bad-date", "a: 2020-13-45\n"),
    ("bad-int", "a: !!int ''\n"),
    ("keys-of-every-kind",
     "1: a\ntrue: b\nnull: c\n1.5: d\n2001-01-01: e\n'x.y': f\n\"t\\tab\": g\n~: h\n0x10: i\n"),
    ("nan-keys-are-one-key", ".nan: a\n.nan: b\n"),
    ("equal-keys-of-two-types", "1: a\ntrue: b\n1.0: c\n'1': d\n"),
    ("a-key-named-<key>", "m: {a: 1, <key>: 2}\n"),
    ("duplicate-in-a-list", "- {a: 1, a: 2}\n- {a: 1}\n"),
    ("duplicate-holding-what-is-never-read",
     "a: 1\na: !!python/object:os.system [!!int '', !!bool maybe, {[x]: 1}]\n"),
    ("duplicate-holding-an-anchor", "a: 1\na: &x 2\nb: *x\n"),
    ("duplicate-holding-deep-nesting", "a: 1\na: " + "[" * (MAX_DEPTH + 3) + "]" * (MAX_DEPTH + 3)
     + "\n"),
    ("duplicate-of-a-duplicate", "a: 1\na: 2\na: {b: 3}\n"),
    ("depth-exactly-the-limit", "a: " + "[" * (MAX_DEPTH - 1) + "1" + "]" * (MAX_DEPTH - 1) + "\n"),
    ("depth-one-more", "a: " + "[" * MAX_DEPTH + "1" + "]" * MAX_DEPTH + "\n"),
    ("empty-at-the-limit", "a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n"),
    ("deep-block-lists", "a:\n" + "".join("  " * i + "-\n" for i in range(1, MAX_DEPTH + 4))),
    ("deep-in-a-top-level-list", "- x\n- " + "[" * 50 + "\n"),
    ("deep-in-a-key", "? " + "[" * 50 + "\n"),
    ("libyaml-limit-after-text",
     "name: é\nlong: " + "x " * 800 + "\ndeep: " + "{a: " * 3000 + "\n"),
    ("libyaml-limit-in-block-lists", "a:\n" + "- " * 1500 + "x\n"),
    ("control-character-after-a-syntax-error", "a: [\nb: 1\nc: \x01\n"),
    ("control-character-after-wide-text", "é€😀: x\n" * 3 + "z: \x7f\n"),
    ("bom", "\ufeffa: 1\n"),
    ("wide-characters", "é: 😀\n😀: {€: [é, 😀]}\n"),
    ("line-breaks-yaml-knows", "a: 'x\u2028y'\nb: \"\\x85\"\nc: 1\r\nd: 2\r\n"),
    ("syntax-error", "a: [1, 2\nb: 3\n"),
    ("tab-indent", "a:\n\tb: 1\n"),
    ("alias-cycle-through-a-mapping", "a: &a {b: [*a]}\n"),
]


@pytest.mark.parametrize("text", [case[1] for case in ODD], ids=[case[0] for case in ODD])
def test_odd_texts_read_the_same_three_ways(text):
    three_ways(text)


_HOSTILE_TEXTS = [case for case in HOSTILE if isinstance(case[1], str)]


@pytest.mark.parametrize("text, needle, key, message", [case[1:] for case in _HOSTILE_TEXTS],
                         ids=[case[0] for case in _HOSTILE_TEXTS])
def test_the_hostile_files_of_the_contract_read_the_same_three_ways(text, needle, key, message):
    result = three_ways(text)
    if message.startswith("expected a mapping"):  # the topology's problem, not the YAML's
        assert result[0] in (None, [["imds", "instance"]])
    else:
        assert result[:3] == ("abort", _hostile_line(text, needle), key)
        assert result[3].startswith(message)


def test_some_odd_texts_read_as_the_contract_says():
    """A few of ODD, spelled out: three_ways agreeing on a wrong answer fails here."""
    cases = dict(ODD)
    # A mapping's own keys override merged ones (yaml.org/type/merge.html), each
    # at the line it is written on; an override is not a duplicate.
    doc, lines, _, soft = three_ways(cases["merge"])
    assert doc["node"] == {"kind": "host", "role": "y"}
    assert soft == []
    assert (lines["node.kind"], lines["node.role"]) == (1, 2)
    # In a merge list, earlier mappings override later ones: as PyYAML reads it
    doc, lines, _, soft = three_ways(cases["merge-of-a-list"])
    assert doc == yaml.safe_load(cases["merge-of-a-list"]) and soft == []
    text = "a: &a {x: 1, w: 0}\nb: &b {y: 2, x: 9, w: 5}\nc:\n  <<: [*a, *b]\n  w: 7\n"
    doc, lines, _, soft = three_ways(text)
    assert doc["c"] == {"x": 1, "w": 7, "y": 2} == yaml.safe_load(text)["c"] and soft == []
    assert (lines["c.x"], lines["c.y"], lines["c.w"]) == (1, 2, 5)
    # Written twice in the mapping itself is still a mistake
    assert three_ways("base: &b {kind: host}\nnode: {<<: *b, role: y, role: z}\n")[3] == [
        (2, "node.role", "duplicate key 'role' (first at line 2)")]
    assert three_ways(cases["duplicate-holding-what-is-never-read"])[3] == [
        (2, "a", "duplicate key 'a' (first at line 1)")]
    assert three_ways(cases["duplicate-holding-deep-nesting"]) == (
        "abort", 2, "a", f"nested deeper than {MAX_DEPTH} levels")
    assert three_ways(cases["depth-one-more"])[0] == "abort"
    assert three_ways(cases["depth-exactly-the-limit"])[0] == {"a": [[[[[[[[[[[[[[[[[[[[
        [[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}
    assert three_ways(cases["libyaml-limit-after-text"]) == (
        "abort", 3, "deep", f"nested deeper than {MAX_DEPTH} levels")
    assert three_ways(cases["libyaml-limit-in-block-lists"]) == (
        "abort", 2, "a", f"nested deeper than {MAX_DEPTH} levels")
    assert three_ways(cases["control-character-after-a-syntax-error"]) == (
        "abort", 3, "", "not valid YAML: unacceptable character U+0001 "
        "(special characters are not allowed)")
    assert three_ways(cases["control-character-after-wide-text"])[1] == 4
    for name, line, message in [
            ("undefined-alias", 2, "found undefined alias 'nope'"),
            ("duplicate-anchor", 2, "found duplicate anchor 'x'; first occurrence (line 1); "
                                    "second occurrence"),  # issue 15: not cut
            ("two-documents", 2, "but found another document"),
            ("merge-of-a-list-with-a-scalar", 3, "expected a mapping for merging, but found "
                                                 "scalar")]:
        assert {read(cases[name], how) for how in ("pure", "libyaml", "graph")} == {
            ("abort", line, "", f"not valid YAML: {message}")}, name
    assert three_ways(cases["seq-tagged-scalar-as-a-key"]) == (
        "abort", 2, "x", "a key must be a plain value, not a list or mapping")
    doc, lines, columns, soft = three_ways(cases["keys-of-every-kind"])
    assert list(doc) == [1, None, 1.5, datetime.date(2001, 1, 1), "x.y", "t\tab", 16]
    # true == 1: a duplicate, whose first is under another path ("1", not "True")
    assert soft == [(2, "True", "duplicate key True (first at line 1)"),
                    (8, "None", "duplicate key None (first at line 3)")]
    assert (lines["'t\\tab'"], columns["'t\\tab'"]) == (7, 1)
    # PyYAML builds every .nan as one object: the second is the first's duplicate
    doc, _, _, soft = three_ways(cases["nan-keys-are-one-key"])
    assert len(doc) == 1 and soft == [(2, "nan", "duplicate key nan (first at line 1)")]
    doc, lines, columns, soft = three_ways(cases["wide-characters"])
    # columns count characters (libyaml says where in bytes only for bad bytes)
    assert (lines["😀.€.1"], columns["😀.€.1"]) == (
        2, cases["wide-characters"].splitlines()[1].rindex("😀") + 1)


# --- values as written: more than MAX_YAML_VALUES is refused while composing ---------------


def test_more_values_than_the_limit_as_written_abort_at_the_value_that_crosses_it(monkeypatch):
    limit = 40
    monkeypatch.setattr(source, "MAX_YAML_VALUES", limit)
    items = [f"  - item{i}\n" for i in range(60)]
    text = "name: x\nbig:\n" + "".join(items)
    # the root, name, x, big, the list: 5 values; the 36th item is value 41
    assert three_ways(text) == ("abort", line_of(text, "item35"), "big",
                                f"the document holds more than {limit:,} values")
    assert three_ways("name: x\nbig:\n" + "".join(items[:limit - 5]))[0]["big"][-1] == "item34"


def test_more_values_than_the_limit_in_a_top_level_list_or_a_duplicate(monkeypatch):
    monkeypatch.setattr(source, "MAX_YAML_VALUES", 20)
    text = "".join(f"- [a{i}, b{i}]\n" for i in range(10))
    assert three_ways(text) == ("abort", line_of(text, "a6,"), "6",
                                "the document holds more than 20 values")
    text = "a: 1\na: [" + ", ".join(f"x{i}" for i in range(30)) + "]\n"
    assert three_ways(text)[:3] == ("abort", 2, "a")


def test_aliases_that_expand_past_the_limit_are_still_counted_before_expanding(monkeypatch):
    monkeypatch.setattr(source, "MAX_YAML_VALUES", 100)
    text = "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" \
           "c: [*b]\n"
    assert three_ways(text) == (
        "abort", 2, "b", "the document expands to more than 100 values "
        "(this value alone: 91; aliases?)")


# --- random documents -----------------------------------------------------------------------

_TEXT = st.lists(st.sampled_from(["a", "Z", " ", ":", "#", "-", "'", '"', "\\", "\t", "\n",
                                  "é", "😀", "\u2028", "1", ".", "[", ",", "&", "*", "!", "?",
                                  "<<", "=", "~", "null", "yes", "0x", "2001-12-14"]),
                 max_size=6).map("".join)
_SCALARS = (_TEXT | st.integers(-10**20, 10**20) | st.booleans() | st.none()
            | st.floats(allow_nan=False) | st.dates() | st.binary(max_size=4))
_KEYS = _TEXT | st.integers(-100, 100) | st.booleans() | st.none()


@st.composite
def _documents(draw: st.DrawFn) -> Any:
    """A mapping of random values; often with one list or mapping in two or
    three places, which safe_dump writes as an anchor and aliases."""
    value = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(_KEYS, inner, max_size=4), max_leaves=20)
    document = draw(st.dictionaries(_KEYS, value, max_size=5))
    if draw(st.booleans()):
        shared = draw(st.lists(value, min_size=1, max_size=3)
                      | st.dictionaries(_KEYS, value, min_size=1, max_size=3))
        for key in draw(st.lists(_KEYS, min_size=2, max_size=3)):
            document[key] = [shared] if draw(st.booleans()) else shared
    return document


# Texts put before a random document's first key: plain or not, valid or not,
# and read alike by libyaml and PyYAML.
_BEFORE = [text for name, text in ODD if name in {
    "anchor-and-alias", "merge", "merge-of-a-list", "merge-of-a-list-with-a-scalar",
    "merge-key-at-the-top", "value-key", "merge-key-as-a-value", "undefined-alias",
    "duplicate-anchor", "list-as-a-key", "set-tagged-scalar-as-a-key", "seq-tagged-scalar",
    "tags-the-safe-loader-builds", "unsupported-tag-on-a-key", "local-tag", "bad-bool",
    "bad-date", "keys-of-every-kind", "nan-keys-are-one-key", "equal-keys-of-two-types",
    "duplicate-holding-what-is-never-read", "duplicate-holding-an-anchor",
    "duplicate-holding-deep-nesting", "depth-one-more", "alias-cycle-through-a-mapping"}]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=_documents(), style=st.sampled_from([False, True, None]),
       width=st.sampled_from([12, 80]), canonical=st.sampled_from([False, False, True]),
       before=st.lists(st.sampled_from(_BEFORE), max_size=2))
def test_random_documents_read_the_same_three_ways(document, style, width, canonical, before):
    text = yaml.safe_dump(document, default_flow_style=style, width=width, canonical=canonical,
                          allow_unicode=True)
    if before and document and not text.startswith(("{", "---")):
        text = "".join(before) + text  # a block mapping: more entries fit before it
    else:
        before = []
    result = three_ways(text)
    if not before:
        assert comparable(result[0]) == comparable(yaml.safe_load(text))


# --- JSON: read at C speed; lines found in a second pass, for problems only ---------------


def _positions_point_at_what_they_name(document: Any, text: str, ensure_ascii: bool) -> None:
    """Each key's line and column are where the key is written; each array
    item's, where the item starts."""
    lines, columns, duplicates = source.json_positions(text)
    rows = text.split("\n")  # lines as json counts them (not splitlines: U+0085, U+2028)
    assert duplicates == []

    def at(path: str) -> str:
        return rows[lines[path] - 1][columns[path] - 1:]

    def walk(value: Any, prefix: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                path = prefix + source.dotted((key,))
                written = json.dumps({key: 0}, ensure_ascii=ensure_ascii)[1:]  # "1": for 1
                assert at(path).startswith(written[: written.rindex(": ")]), path
                walk(item, path + ".")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                path = f"{prefix}{index}"
                written = json.dumps(item, ensure_ascii=ensure_ascii)
                assert at(path)[0] == written[0], path
                walk(item, path + ".")

    walk(document, "")


@pytest.mark.parametrize("path", sorted(TOPOLOGIES.glob("*.yaml")), ids=lambda p: p.stem)
def test_json_positions_of_a_bundled_file_are_the_keys_yaml_gives(path):
    document = yaml.safe_load(path.read_text())
    for indent in (None, 2):
        text = json.dumps(document, indent=indent)
        assert set(source.json_positions(text)[0]) == set(source.read_yaml(path.read_text())[1])
        _positions_point_at_what_they_name(document, text, True)


json_documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=25,
)


@given(json_documents, st.sampled_from([None, 0, 1, 2, "\t"]), st.booleans())
# Found by this test: an empty key and a key "." once read as the same path.
@example({"": {"": None}, ".": None}, None, True)
def test_json_positions_point_at_each_key_and_item_however_it_is_written(document, indent,
                                                                          ensure_ascii):
    text = json.dumps(document, indent=indent, ensure_ascii=ensure_ascii)
    _positions_point_at_what_they_name(document, text, ensure_ascii)


def test_a_duplicate_json_key_is_reported_at_its_line_as_in_yaml():
    text = '{"nodes": {\n  "a": {"kind": "host"},\n  "a": {"kind": "router", "x": 1}\n}}'
    doc, lines, _, soft = source.read_json(text)
    assert doc == {"nodes": {"a": {"kind": "host"}}}
    assert soft == [(3, "nodes.a", "duplicate key 'a' (first at line 2)")]
    assert "nodes.a.x" not in lines  # a duplicate's value is not read, as in YAML
    assert source.read_json('{"a": 1}')[1:] == ({}, {}, [])  # no problem: no second pass


def _read_json_plain(text: str) -> Any:
    """read_json with json alone (as without msgspec installed), or its Abort."""
    fast, source._fast_json = source._fast_json, lambda text: None
    try:
        return _read_or_abort(source.read_json, text)
    finally:
        source._fast_json = fast


def _read_or_abort(read: Any, text: str) -> Any:
    try:
        return read(text)
    except Abort as abort:
        return ("abort", abort.line, abort.key, abort.message)


def _json_text(draw: Any) -> str:
    """A JSON text written by hand, so that keys may repeat, colons may hide in
    strings or escapes, and numbers, whitespace and mistakes vary."""
    keys = st.sampled_from(["a", "b", "a:b", ":", "\\u003a", "\\u0041", "é", '\\"', ""])
    atoms = st.sampled_from(["1", "-0", "1.5e3", "1e400", "NaN", "-Infinity", "true", "null",
                             "123456789012345678901234567890", "9" * 4301, '"x:y"',
                             '"\\u003a"', '"\\ud800"', '"\\/"', "01", "[1,]", "{}", "[]"])

    def value(depth: int) -> str:
        kind = draw(st.integers(0, 2 if depth < 3 else 0))
        if kind == 0:
            return draw(atoms)
        if kind == 1:
            return "[" + ",".join(value(depth + 1) for _ in range(draw(st.integers(0, 3)))) + "]"
        colons = st.sampled_from([":", " : ", ":\n"])
        entries = ['"' + draw(keys) + '"' + draw(colons) + value(depth + 1)
                   for _ in range(draw(st.integers(0, 4)))]
        return "{" + draw(st.sampled_from([",", ", ", ",\n"])).join(entries) + "}"

    return draw(st.sampled_from(["", " ", "\n", "\ufeff"])) + value(0) + draw(
        st.sampled_from(["", "\n", " x", "\x0c"]))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
@example(None)
def test_json_read_with_msgspec_or_json_alone_gives_the_same_values_and_problems(data):
    """msgspec's result is taken only where it is json's (issue 23): duplicate
    keys, escaped colons, NaN, huge numbers and every error fall back to json,
    whose values, lines and messages are the contract."""
    text = ('{"a":1,"a":2,"b":"\\u003a"}' if data is None  # a duplicate an escape hides
            else _json_text(data.draw))
    assert _read_or_abort(source.read_json, text) == _read_json_plain(text)


def test_msgspec_reads_a_json_topology_without_duplicates_and_hands_duplicates_to_json():
    """The fast path is taken where it may be (else the speed-up would vanish
    unseen), and refused where a key repeats, however deep."""
    pytest.importorskip("msgspec")
    text = dumps(fleet(3, 2, 0), "json")
    assert source._fast_json(text) == json.loads(text)
    assert source._fast_json('{"a": {"b": 1, "b": 2}}') is None
    assert source._fast_json('{"a": [{"b": 1}, {"c": {"d": 0, "d": 0}}]}') is None
    assert source._fast_json('{"a": 1, "a": 1, "k": "\\u003a"}') is None
    assert source._fast_json('{"a": NaN}') is None


def test_a_topology_overriding_merged_defaults_loads_with_its_overrides():
    """YAML's merge key is how a file shares defaults between nodes: a key the
    node writes itself overrides the merged one, without a problem."""
    text = BASE.replace("  app: {kind: container, role: workload}\n",
                        "  app: &container {kind: container, role: workload}\n"
                        "  rogue: {<<: *container, role: attacker}\n")
    text = text.replace("  - [docker0, app]\n", "  - [docker0, app]\n  - [docker0, rogue]\n")
    topology = parse(text, "merged.yaml")
    assert (topology.nodes["rogue"].kind, topology.nodes["rogue"].role) == ("container",
                                                                           "attacker")
    assert topology.nodes["app"].role == "workload"
    rogue = text.splitlines().index("  rogue: {<<: *container, role: attacker}") + 1
    assert topology.line_of("nodes", "rogue", "role") == rogue
    assert topology.line_of("nodes", "rogue", "kind") == rogue - 1  # where it is written

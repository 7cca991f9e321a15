"""Bad topology files (issue 2, section 4): every mistake is one located line.

The contract: a problem is `FILE:LINE: KEY: message` (the CLI prints it after
`error: `), exit 2, no traceback, and the other files of the run are still
checked. Nothing a file holds (alias bombs, recursive aliases, deep nesting,
python or include tags, junk bytes) can make hopsim hang, recurse without
bound, run code or read another file.

Every expected line is computed from the text the test wrote (`line_of`),
never taken from the program's output.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from builders import BASE
from click.testing import CliRunner

from hopsim.cli import main
from hopsim.loader import load, parse
from hopsim.topology import Problem, TopologyError
from hopsim.topology.reader import MAX_DEPTH, MAX_FILE_BYTES, MAX_YAML_VALUES

PLAIN = {"NO_COLOR": "1", "COLUMNS": "80", "FORCE_COLOR": None, "TERM": "dumb"}
TIMEOUT = 60  # seconds: a bound on a hang, far above what any case below needs



def line_of(text: str, needle: str) -> int:
    """The 1-based line of the one line of `text` that contains `needle`."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(hits) == 1, f"{needle!r} is on lines {hits}"
    return hits[0]


def edit(old: str, new: str, text: str = BASE) -> str:
    assert text.count(old) == 1, f"{old!r} is not unique in the text"
    return text.replace(old, new)


def add_after(anchor: str, line: str, text: str = BASE) -> str:
    return edit(anchor, f"{anchor}\n{line}", text)


def write(tmp_path: Path, text: str | bytes, name: str = "topo.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def problems_of(path: Path, overrides=()) -> list[Problem]:
    with pytest.raises(TopologyError) as error:
        load(path, overrides)
    return list(error.value.problems)


def only_problem(path: Path) -> Problem:
    problems = problems_of(path)
    assert len(problems) == 1, problems
    return problems[0]


def cli(*args: str):
    return CliRunner().invoke(main, list(args), env=PLAIN)


def errors(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error: ")]


def run_hopsim(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real command in its own process: a hang fails the test at TIMEOUT."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "80"}
    return subprocess.run([sys.executable, "-m", "hopsim.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)


# --- the starting point is valid ------------------------------------------------


def test_the_base_file_every_case_edits_is_valid_and_passes_check(tmp_path):
    path = write(tmp_path, BASE)
    assert sorted(load(path).nodes) == ["app", "docker0", "imds", "instance"]
    result = cli("check", str(path))
    assert result.exit_code == 0, result.output
    assert errors(result.stderr) == []


# --- one mistake, one located problem ---------------------------------------------

# (id, edited text, the text on the problem's line, key, message)
_AGENT = "  agent: {kind: container, runs_on: instance}"
ONE_MISTAKE = [
    ("unknown-kind-suggests-closest",
     edit("{kind: bridge}", "{kind: routr}"), "{kind: routr}", "nodes.docker0.kind",
     "unknown kind 'routr' (did you mean 'router'?); expected one of imds, host, container, "
     "client, bridge, router, nat, tunnel, proxy, waf, ssrf"),
    ("unknown-top-level-key-suggests-closest",
     edit("expect:", "expct:"), "expct:", "expct",
     "unknown key 'expct' for a topology (did you mean 'expect'?); expected one of name, "
     "description, imds, nodes, links, units, expect"),
    ("unknown-node-key-suggests-closest",
     edit("forwarding: true", "forwardng: true"), "forwardng", "nodes.instance.forwardng",
     "unknown key 'forwardng' for a host node (did you mean 'forwarding'?); expected one of "
     "kind, role, runs_on, via, family, address, address6, description, forwarding, "
     "masquerade, gateway, routes, filters, block_imds"),
    ("unknown-imds-key-suggests-closest",
     edit("  hop_limit: 2", "  hop_limt: 2"), "hop_limt", "imds.hop_limt",
     "unknown key 'hop_limt' for imds defaults (did you mean 'hop_limit'?); expected one of "
     "hop_limit, http_tokens, http_endpoint, ipv6"),
    ("missing-node-kind",
     edit("{kind: container, role: workload}", "{role: workload}"), "app: {role",
     "nodes.app", "missing required key 'kind'"),
    ("kind-that-is-a-list",
     edit("{kind: bridge}", "{kind: [router]}"), "{kind: [router]}", "nodes.docker0.kind",
     "unknown kind ['router']; expected one of imds, host, container, client, bridge, router, "
     "nat, tunnel, proxy, waf, ssrf"),
    ("duplicate-top-level-key",
     add_after("name: demo", "name: other"), "name: other", "name",
     "duplicate key 'name' (first at line 1)"),
    ("duplicate-node",
     add_after("  app: {kind: container, role: workload}", "  app: {kind: client}"),
     "app: {kind: client}", "nodes.app",
     f"duplicate key 'app' (first at line {line_of(BASE, 'app: {kind: container')})"),
    ("link-to-a-missing-node-suggests-closest",
     edit("[instance, docker0]", "[instanse, docker0]"), "[instanse, docker0]", "links.1",
     "link to a missing node 'instanse' (did you mean 'instance'?)"),
    ("self-link",
     edit("[docker0, app]", "[docker0, docker0]"), "[docker0, docker0]", "links.2",
     "self-link: 'docker0' is linked to itself"),
    ("runs-on-a-non-host",
     add_after("  app: {kind: container, role: workload}",
               "  agent: {kind: container, runs_on: docker0}"),
     "agent:", "nodes.agent.runs_on", "runs_on must name a host, but 'docker0' is a bridge"),
    ("runs-on-a-missing-node-suggests-closest",
     add_after("  app: {kind: container, role: workload}",
               "  agent: {kind: container, runs_on: instanse}"),
     "agent:", "nodes.agent.runs_on", "no node 'instanse' (did you mean 'instance'?)"),
    ("node-that-runs-on-a-host-and-has-a-link",
     add_after("  - [docker0, app]", "  - [docker0, agent]",
               add_after("  app: {kind: container, role: workload}", _AGENT)),
     "[docker0, agent]", "links.3", "'agent' runs on 'instance' and has no links of its own"),
    ("imds-linked-to-two-nodes",
     add_after("  - [docker0, app]", "  - [imds, docker0]"), "imds: {kind: imds}",
     "nodes.imds", "an imds node is linked to exactly one node, its instance, and beside it "
     "to containers that own an ENI of the instance; 'imds' has 2 links, 2 of them not "
     "containers"),
    ("via-naming-a-node-that-carries-no-traffic",
     edit("role: workload}", "role: workload, via: [imds]}"), "via: [imds]",
     "nodes.app.via.0", "'imds' (imds) is not an L7 relay; via names the relays (proxy, waf, "
     "ssrf, or a host carrying one) a principal addresses; routers are chosen by the routing "
     "tables (write gateway: or routes: to steer them)"),
    ("via-naming-a-missing-node",
     edit("role: workload}", "role: workload, via: [dokcer0]}"), "via: [dokcer0]",
     "nodes.app.via.0", "no node 'dokcer0' (did you mean 'docker0'?)"),
    ("role-on-a-non-principal",
     edit("{kind: bridge}", "{kind: bridge, role: workload}"), "{kind: bridge, role",
     "nodes.docker0.role",
     "only principals (host, container, client) take 'role'; 'docker0' is a bridge"),
    ("imds-default-hop-limit-above-64",
     edit("  hop_limit: 2", "  hop_limit: 65"), "hop_limit: 65", "imds.hop_limit",
     "expected 1..64, got 65"),
    ("imds-default-hop-limit-0",
     edit("  hop_limit: 2", "  hop_limit: 0"), "hop_limit: 0", "imds.hop_limit",
     "expected 1..64, got 0"),
    ("hop-limit-on-an-imds-node-out-of-range",
     edit("{kind: imds}", "{kind: imds, hop_limit: 65}"), "{kind: imds, hop_limit: 65}",
     "nodes.imds.hop_limit", "expected 1..64, got 65"),
    ("hop-limit-as-a-word",
     edit("  hop_limit: 2", '  hop_limit: "two"'), "hop_limit:", "imds.hop_limit",
     "expected an integer, got 'two'"),
    ("forwarding-as-a-phrase",
     edit("forwarding: true", 'forwarding: "yes please"'), "yes please",
     "nodes.instance.forwarding", "expected one of true, false, ipv4, ipv6, got 'yes please'"),
    ("expect-hop-limit-above-64",
     edit("  1: {app: none}", "  65: {app: none}"), "65: {app: none}", "expect.65",
     "expected a hop limit 1..64, got 65"),
    ("expect-hop-limit-0",
     edit("  1: {app: none}", "  0: {app: none}"), "0: {app: none}", "expect.0",
     "expected a hop limit 1..64, got 0"),
    ("expect-naming-a-missing-node-suggests-closest",
     edit("  2: {app: token}", "  2: {ap: token}"), "{ap: token}", "expect.2.ap",
     "no node 'ap' (did you mean 'app'?)"),
    ("expect-naming-an-unknown-outcome-suggests-closest",
     edit("  2: {app: token}", "  2: {app: tokn}"), "{app: tokn}", "expect.2.app",
     "unknown outcome 'tokn' (did you mean 'token'?); expected one of token, credentials, "
     "none"),
]


@pytest.mark.parametrize("text, needle, key, message",
                         [case[1:] for case in ONE_MISTAKE], ids=[c[0] for c in ONE_MISTAKE])
def test_each_mistake_is_one_problem_at_its_line_and_key(tmp_path, text, needle, key, message):
    path = write(tmp_path, text)
    assert only_problem(path) == Problem(str(path), line_of(text, needle), key, message)


@pytest.mark.parametrize("text, needle, key, message",
                         [case[1:] for case in ONE_MISTAKE], ids=[c[0] for c in ONE_MISTAKE])
def test_each_mistake_is_one_error_line_and_exit_2_from_the_cli(tmp_path, text, needle, key,
                                                                 message):
    path = write(tmp_path, text)
    result = cli("validate", str(path))
    assert result.exit_code == 2
    assert errors(result.stderr) == [f"error: {path}:{line_of(text, needle)}: {key}: {message}"]


def test_problem_prints_as_file_line_key_message():
    problem = Problem("t.yaml", 9, "nodes.docker0.kind", "unknown kind 'routr'")
    assert str(problem) == "t.yaml:9: nodes.docker0.kind: unknown kind 'routr'"


@pytest.mark.parametrize("key, block", [
    ("name", "name: demo\n"),
    ("description", "description: a container on a bridge behind a forwarding instance\n"),
    ("nodes", BASE[BASE.index("nodes:"):BASE.index("links:")]),
    ("links", BASE[BASE.index("links:"):BASE.index("expect:")]),
])
def test_missing_required_top_level_key_is_reported_at_the_document_start(tmp_path, key, block):
    text = edit(block, "")
    path = write(tmp_path, text)
    # Removing nodes or links also leaves links or the imds dangling: those are
    # problems too; the missing key must be among them, at line 1.
    assert Problem(str(path), 1, "", f"missing required key {key!r} for a topology") \
        in problems_of(path)


# --- many mistakes in one file --------------------------------------------------------


def test_every_problem_of_a_file_is_reported_sorted_by_line(tmp_path):
    text = BASE + "extra: 1\n"  # last line
    text = edit("{kind: bridge}", "{kind: routr}", text)
    text = edit("[docker0, app]", "[docker0, docker0]", text)
    text = edit("  2: {app: token}", "  2: {app: tokn}", text)
    text = add_after("name: demo", "name: again", text)  # a YAML-level (duplicate) problem
    path = write(tmp_path, text)
    expected = [
        (line_of(text, "name: again"), "name"),
        (line_of(text, "{kind: routr}"), "nodes.docker0.kind"),
        (line_of(text, "[docker0, docker0]"), "links.2"),
        (line_of(text, "{app: tokn}"), "expect.2.app"),
        (line_of(text, "extra: 1"), "extra"),
    ]
    assert [(p.line, p.key) for p in problems_of(path)] == expected

    result = cli("validate", str(path))
    assert result.exit_code == 2
    printed = errors(result.stderr)
    assert [line.split(": ")[1:3] for line in printed] == [
        [f"{path}:{line}", key] for line, key in expected]


# --- options that name things ---------------------------------------------------------


def test_set_naming_a_missing_node_is_bad_input_of_the_command_line(tmp_path):
    path = write(tmp_path, BASE)
    result = cli("check", str(path), "--set", "ap.role=attacker")
    assert result.exit_code == 2
    assert errors(result.stderr) == [
        f"error: --set ap.role ({path}): no node 'ap' (did you mean 'app'?)"]


def test_set_of_a_bad_value_is_bad_input_of_the_command_line(tmp_path):
    path = write(tmp_path, BASE)
    result = cli("check", str(path), "--set", "docker0.kind=routr")
    assert result.exit_code == 2
    assert errors(result.stderr) == [
        f"error: --set docker0.kind ({path}): "
        "unknown kind 'routr' (did you mean 'router'?); expected one of imds, host, "
        "container, client, bridge, router, nat, tunnel, proxy, waf, ssrf"]


@pytest.mark.parametrize("command", ["check", "sweep", "trace"])
@pytest.mark.parametrize("hop_limit", ["0", "65", "two"])
def test_hop_limit_option_outside_1_to_64_is_a_usage_error(tmp_path, command, hop_limit):
    path = write(tmp_path, BASE)
    extra = ["--from", "app"] if command == "trace" else []
    result = cli(command, str(path), *extra, "--hop-limit", hop_limit)
    assert result.exit_code == 2  # click's usage error, not a crash (that would be 1)
    assert "Invalid value for '--hop-limit'" in result.stderr


def test_duplicate_topology_names_across_files_report_the_second(tmp_path):
    first = write(tmp_path, BASE, "a.yaml")
    text = "# the same name again\n" + BASE
    second = write(tmp_path, text, "b.yaml")
    result = cli("validate", str(first), str(second))
    assert result.exit_code == 2
    assert f"ok: {first}: demo" in result.stdout
    assert errors(result.stderr) == [
        f"error: {second}:{line_of(text, 'name: demo')}: name: duplicate topology name "
        f"'demo' (also in {first})"]


# --- other files of the run are still checked -----------------------------------------


def test_check_still_reports_a_good_file_given_with_a_bad_one(tmp_path):
    bad_text = edit("{kind: bridge}", "{kind: routr}")
    bad = write(tmp_path, bad_text, "bad.yaml")
    good = write(tmp_path, edit("name: demo", "name: good-one"), "good.yaml")
    result = cli("check", str(bad), str(good))
    assert result.exit_code == 2
    assert "good-one" in result.stdout
    assert "app" in result.stdout and "workload" in result.stdout
    assert [e.split(": ", 2)[1] for e in errors(result.stderr)] == [
        f"{bad}:{line_of(bad_text, 'routr')}"]


def test_sweep_json_carries_the_good_topology_and_the_bad_files_problem(tmp_path):
    bad_text = edit("[docker0, app]", "[docker0, docker0]")
    bad = write(tmp_path, bad_text, "bad.yaml")
    good = write(tmp_path, edit("name: demo", "name: good-one"), "good.yaml")
    result = cli("sweep", str(good), str(bad), "--format", "json")
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert [t["name"] for t in doc["topologies"]] == ["good-one"]
    assert doc["topologies"][0]["recommended_hop_limit"] == 2
    assert doc["errors"] == [{"file": str(bad), "line": line_of(bad_text, "[docker0, docker0]"),
                              "key": "links.2",
                              "message": "self-link: 'docker0' is linked to itself"}]


def test_a_bad_file_in_a_folder_does_not_stop_the_others(tmp_path):
    write(tmp_path, b"\xff\xfe junk", "a-junk.yaml")
    write(tmp_path, edit("name: demo", "name: zz-good"), "z-good.yaml")
    result = cli("validate", str(tmp_path))
    assert result.exit_code == 2
    assert f"ok: {tmp_path / 'z-good.yaml'}: zz-good" in result.stdout
    assert len(errors(result.stderr)) == 1


# --- files that are not topologies at all ---------------------------------------------


def test_invalid_yaml_is_one_problem_at_the_offending_line(tmp_path):
    text = edit("  instance: {kind: host", "   instance: {kind: host")  # indented too far
    path = write(tmp_path, text)
    problem = only_problem(path)
    assert (problem.line, problem.key) == (line_of(text, "   instance:"), "")
    assert problem.message.startswith("not valid YAML: ")


def test_an_empty_file_is_a_problem_at_line_1(tmp_path):
    path = write(tmp_path, "")
    assert only_problem(path) == Problem(
        str(path), 1, "", "expected a mapping with keys name, description, nodes, links")


def test_a_top_level_list_is_a_problem_at_its_line(tmp_path):
    text = "# a list, not a mapping\n- name: demo\n- nodes: {}\n"
    path = write(tmp_path, text)
    assert only_problem(path) == Problem(
        str(path), line_of(text, "- name"), "",
        "expected a mapping with keys name, description, nodes, links")


def test_bytes_that_are_not_utf8_are_a_problem_at_their_line(tmp_path):
    raw = BASE.encode() + bytes(range(256))  # 0x80, the first invalid byte, after a \n
    path = write(tmp_path, raw)
    first_bad = raw.index(b"\x80")
    problem = only_problem(path)
    assert (problem.line, problem.key) == (raw[:first_bad].count(b"\n") + 1, "")
    assert problem.message.startswith("not UTF-8 text")


def test_control_characters_are_a_problem_at_their_line(tmp_path):
    text = BASE + "junk: \x00\x01\x02\n"
    path = write(tmp_path, text)
    problem = only_problem(path)
    assert (problem.line, problem.key) == (line_of(text, "junk:"), "")
    assert "U+0000" in problem.message


@pytest.mark.parametrize("value, key, message", [
    ("0x" + "f" * 5000, "imds.hop_limit", "expected 1..64, got <an integer of 20,000 bits>"),
    ("1" * 5000, "imds.hop_limit", "not a valid int: "),
    ("!!bool maybe", "imds.hop_limit", "not a valid bool: 'maybe'"),
    ("!!int ''", "imds.hop_limit", "not a valid int: ''"),
])
def test_scalars_python_cannot_build_are_problems(tmp_path, value, key, message):
    text = edit("  hop_limit: 2", f"  hop_limit: {value}")
    path = write(tmp_path, text)
    problem = only_problem(path)
    assert (problem.line, problem.key) == (line_of(text, "hop_limit:"), key)
    assert problem.message.startswith(message)
    assert len(problem.message) < 300  # a 5,000-digit number is not echoed in full


def test_an_impossible_date_is_a_problem(tmp_path):
    text = edit("description: a container on a bridge behind a forwarding instance",
                "description: 2020-13-45")
    path = write(tmp_path, text)
    assert only_problem(path) == Problem(
        str(path), line_of(text, "2020-13-45"), "description",
        "not a valid timestamp: '2020-13-45' (month must be in 1..12)")


# --- hostile files: problems, not hangs, crashes, code or other files ---------------


def _laughs() -> tuple[str, str]:
    """A billion laughs (9**9 'lol's) at the top level, and the key that crosses
    MAX_YAML_VALUES first: each level holds 9 of the one before."""
    keys = "abcdefghi"
    lines = [f"a: &a [{', '.join(['lol'] * 9)}]"]
    lines += [f"{k}: &{k} [{', '.join([f'*{prev}'] * 9)}]" for prev, k in itertools.pairwise(keys)]
    total, size, crossing = 0, 10, None
    for k in keys:
        total += size + 1  # the key and its value
        if total > MAX_YAML_VALUES and crossing is None:
            crossing = k
        size = 1 + 9 * size
    return "\n".join(lines) + "\n", crossing


LAUGHS, LAUGHS_KEY = _laughs()
DEEP = 10_000

# (id, file text or bytes, the text on the problem's line, key, message start)
HOSTILE = [
    ("billion-laughs", "name: demo\n" + LAUGHS, f"{LAUGHS_KEY}: &{LAUGHS_KEY}", LAUGHS_KEY,
     f"the document expands to more than {MAX_YAML_VALUES:,} values"),
    ("recursive-alias", "name: demo\nloop: &a [*a]\n", "loop:", "loop.0",
     "recursive alias: the value contains itself"),
    ("recursive-mapping-alias", "name: demo\nloop: &a {self: *a}\n", "loop:", "loop.self",
     "recursive alias: the value contains itself"),
    ("deeply-nested-lists", "name: demo\ndeep: " + "[" * DEEP + "]" * DEEP + "\n", "deep:",
     "deep", f"nested deeper than {MAX_DEPTH} levels"),
    ("unclosed-deep-lists", "name: demo\ndeep: " + "[" * DEEP + "\n", "deep:", "deep",
     f"nested deeper than {MAX_DEPTH} levels"),
    ("deeply-nested-mappings", "name: demo\ndeep: " + "{a: " * DEEP + "1" + "}" * DEEP + "\n",
     "deep:", "deep", f"nested deeper than {MAX_DEPTH} levels"),
    ("alias-chain-deeper-than-the-limit",
     "".join(f"a{i}: &a{i} [{f'*a{i - 1}' if i else 'x'}]\n" for i in range(MAX_DEPTH + 5)),
     f"a{MAX_DEPTH - 1}: ", f"a{MAX_DEPTH - 1}", f"nested deeper than {MAX_DEPTH} levels"),
    ("python-tag", 'name: !!python/object/apply:os.system ["touch PWNED"]\n', "name:", "name",
     "unsupported YAML tag 'tag:yaml.org,2002:python/object/apply:os.system'"),
    ("python-tag-on-a-mapping",
     "name: demo\nnodes: !!python/object/new:os.system {args: [touch PWNED]}\n", "nodes:",
     "nodes", "unsupported YAML tag 'tag:yaml.org,2002:python/object/new:os.system'"),
    ("include-tag", "name: demo\nnodes: !include secret.yaml\n", "nodes:", "nodes",
     "unsupported YAML tag '!include'"),
    ("binary-junk", bytes(range(256)) * 64, None, "", "not UTF-8 text"),
    ("empty-file", "", None, "", "expected a mapping"),
    ("top-level-list", "- [imds, instance]\n", None, "", "expected a mapping"),
]


def _hostile_line(content: str | bytes, needle: str | None) -> int:
    if needle is not None:
        return line_of(content, needle)
    if isinstance(content, bytes):
        return content[:content.index(b"\x80")].count(b"\n") + 1
    return 1


@pytest.mark.parametrize("content, needle, key, message", [c[1:] for c in HOSTILE],
                         ids=[c[0] for c in HOSTILE])
def test_hostile_file_is_one_located_problem(tmp_path, content, needle, key, message):
    path = write(tmp_path, content)
    problem = only_problem(path)
    assert (problem.line, problem.key) == (_hostile_line(content, needle), key)
    assert problem.message.startswith(message), problem.message
    assert "\n" not in problem.message


@pytest.mark.parametrize("content, needle, key, message", [c[1:] for c in HOSTILE],
                         ids=[c[0] for c in HOSTILE])
def test_hostile_file_in_a_real_process_ends_with_exit_2_and_the_good_file_checked(
        tmp_path, content, needle, key, message):
    write(tmp_path, content, "bad.yaml")
    write(tmp_path, BASE, "good.yaml")
    secret = write(tmp_path, "SECRET-CANARY: 1\n", "secret.yaml")
    done = run_hopsim("validate", "bad.yaml", "good.yaml", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    where = f"bad.yaml:{_hostile_line(content, needle)}"
    prefix = f"error: {where}: {key}: " if key else f"error: {where}: "
    printed = errors(done.stderr)
    assert len(printed) == 1 and printed[0].startswith(prefix + message), printed
    assert "ok: good.yaml: demo" in done.stdout
    assert not (tmp_path / "PWNED").exists()  # no tag ran code
    assert "SECRET-CANARY" not in done.stdout + done.stderr  # nor read another file
    assert secret.read_text() == "SECRET-CANARY: 1\n"


def test_merge_of_a_non_mapping_is_one_line(tmp_path):
    text = "name: demo\nbase: &b 1\nnode: {<<: *b}\n"
    path = write(tmp_path, text)
    problem = only_problem(path)
    # PyYAML points at the value that cannot be merged.
    assert (problem.line, problem.key) == (line_of(text, "&b 1"), "")
    assert problem.message == ("not valid YAML: expected a mapping or list of mappings for "
                               "merging, but found scalar")


def test_anchors_and_merges_that_stay_small_are_fine(tmp_path):
    text = edit("  app: {kind: container, role: workload}",
                "  app: &ctr {kind: container, role: workload}\n  app2: {<<: *ctr}")
    text = add_after("  - [docker0, app]", "  - [docker0, app2]", text)
    app2 = load(write(tmp_path, text)).nodes["app2"]
    assert (app2.kind, app2.role) == ("container", "workload")


def test_a_huge_but_flat_file_loads(tmp_path):
    count = 5000
    text = edit("  app: {kind: container, role: workload}\n", "".join(
        f"  app{i}: {{kind: container, role: workload}}\n" for i in range(count)))
    text = edit("  - [docker0, app]\n", "".join(f"  - [docker0, app{i}]\n" for i in range(count)),
                text)
    text = text[:text.index("expect:")]
    assert len(text) > 250_000
    path = write(tmp_path, text)
    topology = load(path)
    assert len(topology.nodes) == count + 3
    assert len(topology.links) == count + 2
    done = run_hopsim("validate", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"({count + 3:,} nodes, {count + 2:,} links" in done.stdout


def test_a_file_larger_than_the_limit_is_refused_without_parsing(tmp_path):
    path = write(tmp_path, "# " + "x" * MAX_FILE_BYTES + "\n" + BASE)
    assert only_problem(path) == Problem(str(path), None, "",
                                         f"larger than {MAX_FILE_BYTES:,} bytes")


def test_a_node_name_with_a_dot_keeps_its_own_line():
    """Key paths quote a part with a dot, so `nodes.'web.example'` is not the
    path of a key `example` under a node `web`; lookups by path agree."""
    text = ("name: t\ndescription: t\nnodes:\n  imds: {kind: imds}\n"
            "  web.example: {kind: host, role: workload}\nlinks: [[imds, web.example]]\n")
    topology = parse(text, "dot.yaml")
    assert topology.line_of("nodes", "web.example") == 5
    assert topology.position("nodes", "web.example", "role") == (5, 29)
    with pytest.raises(TopologyError) as caught:
        parse(text.replace("role: workload}", "role: workload, colour: red}"), "dot.yaml")
    [problem] = caught.value.problems
    assert (problem.line, problem.key) == (5, "nodes.'web.example'.colour")

"""Hostile input and faults (issue 15): no traceback, no hang, no lost file.

Each test here reproduces one finding of the fuzzing that issue 15 reports
and fails without its fix: a FIFO that blocked for ever, digit strings past
Python's limit, nesting past its stack, wrong-shaped plans, outputs into a
missing folder, onto an input or cut short by a signal, signals that exited 1
with a traceback. The property tests over the same surfaces are in
tests/test_hostile_properties.py.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml
from builders import BASE, TOPOLOGIES
from click.testing import CliRunner

import hopsim.output
import hopsim.report.formats
from hopsim.cli import main
from hopsim.topology.reader import MAX_DIGITS, MAX_YAML_VALUES
from hopsim.untrusted import shown

PLAIN = {"NO_COLOR": "1", "COLUMNS": "80", "FORCE_COLOR": None, "TERM": "dumb"}
DOCKER = str(TOPOLOGIES / "docker-bridge.yaml")
LONG_NUMBER = "9" * (MAX_DIGITS + 700)


def run(*args: str, input: str | None = None):
    """The command in this process; an exception it did not handle fails the test."""
    result = CliRunner().invoke(main, list(args), env=PLAIN, input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        (result.exception, result.output)
    return result


def refused(result, *words: str) -> str:
    """A one-line refusal: exit 2, no traceback, `words` in its message."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception,
                                                                     SystemExit)
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output
    return result.output


def base_json() -> dict:
    return yaml.safe_load(BASE)


# --- files that are not files -------------------------------------------------------


@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("args", [
    ["check", "{fifo}"],
    ["validate", "{fifo}"],
    ["show", "{fifo}"],
    ["check", DOCKER, "--settings", "{fifo}"],
    ["import", "terraform", "{fifo}", "{copy}"],
    ["import", "compose", "{fifo}"],
], ids=["check", "validate", "show", "settings", "import-terraform", "import-compose"])
def test_a_fifo_is_refused_not_waited_on(args, fifo, tmp_path):
    # Issue 15: a FIFO as a topology, settings or import file blocked for ever.
    copy = tmp_path / "copy.yaml"
    copy.write_text(BASE)
    argv = [a.format(fifo=fifo, copy=copy) for a in args]
    process = subprocess.run([sys.executable, "-m", "hopsim.cli", *argv], env={
        **os.environ, "NO_COLOR": "1"}, capture_output=True, text=True, timeout=60)
    assert process.returncode == 2, process.stderr
    assert "not a regular file" in process.stderr
    assert "Traceback" not in process.stderr


def test_a_path_too_long_is_one_line(tmp_path):
    long = "a/" * 2500 + "x.yaml"
    for args in (["check", long], ["show", long], ["validate", long]):
        output = refused(run(*args))
        assert "File name too long" in output


# --- numbers past Python's digit limit, nesting past its stack ------------------------


def test_a_json_number_past_the_digit_limit_is_located(tmp_path):
    doc = base_json()
    text = json.dumps(doc, indent=1).replace('"hop_limit": 2', f'"hop_limit": {LONG_NUMBER}')
    file = tmp_path / "t.json"
    file.write_text(text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if LONG_NUMBER in t)
    refused(run("check", str(file)), f"t.json:{line}:", f"longer than {MAX_DIGITS:,} digits")


def test_a_settings_file_number_past_the_digit_limit_is_one_line(tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text('{"Reservations": [{"Instances": [{"InstanceId": "i-1", '
                    f'"MetadataOptions": {{"HttpPutResponseHopLimit": {LONG_NUMBER}}}}}]}}]}}')
    refused(run("check", DOCKER, "--settings", str(plan)), "digits")


@pytest.mark.parametrize("value", [LONG_NUMBER, "[" * 5000, "{a: " * 3000])
def test_a_set_value_too_long_or_deep_is_a_usage_error(value):
    refused(run("check", DOCKER, "--set", f"imds.hop_limit={value}"), "--set")


def test_a_principal_index_past_the_digit_limit_is_one_line():
    output = refused(run("trace", DOCKER, "--from", f"app#{LONG_NUMBER}"))
    assert "app#" in output


# --- bounded work --------------------------------------------------------------------


def test_json_with_more_values_than_yaml_allows_is_refused_before_it_is_built(tmp_path):
    # Issue 15: a 60 MB JSON array of numbers took 7.6 GB and 80 s before its error.
    file = tmp_path / "many.json"
    file.write_text('{"name": "x", "nodes": [' + "0," * MAX_YAML_VALUES + "0]}")
    refused(run("check", str(file)), f"more than {MAX_YAML_VALUES:,} values")


def test_json_keys_count_as_values_as_yamls_do(tmp_path):
    # 1,000,001 nodes "n: 1" are 2,000,002 values in YAML (keys and values) and
    # were refused there, while the same JSON took 2 GB and 68 s to report
    # a million problems.
    count = MAX_YAML_VALUES // 2 + 1
    file = tmp_path / "keys.json"
    file.write_text('{"name": "x", "nodes": {' + ",".join(f'"n{i}": 1' for i in range(count))
                    + "}}")
    refused(run("validate", str(file)), f"more than {MAX_YAML_VALUES:,} values")


def test_commas_inside_strings_do_not_count_as_values(tmp_path):
    doc = base_json()
    doc["description"] = ",:" * (MAX_YAML_VALUES + 10)
    file = tmp_path / "commas.json"
    file.write_text(json.dumps(doc))
    assert run("validate", str(file)).exit_code == 0


def test_generate_refuses_counts_past_what_a_file_can_hold():
    refused(run("generate", "fleet", "--instances", "1" + "0" * 31, "--containers", "1"),
            "--instances")
    refused(run("generate", "fleet", "--instances", "100000", "--containers", "100"),
            "--compact")


@pytest.mark.parametrize("args", [["demo", "--auto", "--delay", "nan"],
                                  ["emulate", "--timeout", "nan", DOCKER],
                                  ["verify", "--timeout", "nan", DOCKER]])
def test_nan_seconds_are_refused(args):
    refused(run(*args), "expected a number of seconds")


# --- wrong shapes --------------------------------------------------------------------


@pytest.mark.parametrize("plan", [
    {"format_version": "1.2", "values": {"root_module": [1]}},
    {"format_version": "1.2", "values": {"root_module": {"resources": 5}}},
    {"format_version": "1.2", "values": {"root_module": {"resources": [1]}}},
    {"format_version": "1.2", "planned_values": {"root_module": {"child_modules": 3}}},
    {"Reservations": [{"Instances": [{"InstanceId": "i-1", "MetadataOptions": [1]}]}]},
    {"Reservations": 7},
])
def test_a_plan_of_the_wrong_shape_is_one_line(plan, tmp_path):
    file = tmp_path / "plan.json"
    file.write_text(json.dumps(plan))
    topology = tmp_path / "t.yaml"
    topology.write_text(BASE)
    refused(run("check", str(topology), "--settings", str(file)))
    refused(run("import", "terraform" if "format_version" in plan else "ec2", str(file),
                str(topology)))
    assert topology.read_text() == BASE


# --- outputs: atomic, never onto an input --------------------------------------------


@pytest.mark.parametrize("args", [
    ["draw", DOCKER, "-o", "{missing}/x.svg"],
    ["trace", DOCKER, "--from", "app", "--pcap", "{missing}/x.pcap"],
])
def test_an_output_into_a_missing_folder_is_one_line(args, tmp_path):
    output = refused(run(*[a.format(missing=tmp_path / "no" / "such") for a in args]))
    assert "cannot write" in output


def test_an_output_onto_an_input_is_refused_and_the_input_kept(tmp_path):
    topology = tmp_path / "t.yaml"
    topology.write_text(BASE)
    link = tmp_path / "link.yaml"
    link.symlink_to(topology)
    for args in (["check", str(topology), "--output", str(topology)],
                 ["check", str(link), "--output", f"json:{topology}"],
                 ["sweep", str(tmp_path / "t.yaml"), "--output", f"sarif:{link}"],
                 ["draw", str(topology), "--format", "svg", "-o", str(topology)]):
        refused(run(*args), "an input of this run")
        assert topology.read_text() == BASE


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    report = tmp_path / "report.json"
    report.write_text("previous")

    def broken(*args, **kwargs):
        yield "{\n  partial"
        raise KeyboardInterrupt  # Ctrl-C halfway through the report

    monkeypatch.setattr(hopsim.report.formats, "chunks", broken)
    run("check", DOCKER, "--output", f"json:{report}")
    assert report.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_a_written_file_keeps_its_mode_and_a_new_one_gets_the_umask(tmp_path):
    old = tmp_path / "old.json"
    old.write_text("x")
    old.chmod(0o640)
    new = tmp_path / "new.json"
    assert run("check", DOCKER, "--output", f"json:{old}", "--output", f"json:{new}"
               ).exit_code == 1
    assert old.stat().st_mode & 0o777 == 0o640
    umask = os.umask(0)
    os.umask(umask)
    assert new.stat().st_mode & 0o777 == 0o666 & ~umask
    json.loads(old.read_text())


def test_an_output_to_dev_null_writes_through_it(tmp_path):
    assert run("check", DOCKER, "--output", "json:/dev/null").exit_code == 1
    assert Path("/dev/null").is_char_device()


# --- signals -------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_ends_a_command_with_128_plus_it_and_no_traceback(signum):
    # Issue 15: SIGINT exited 1, the finding code; the demo waits between steps.
    process = subprocess.Popen([sys.executable, "-m", "hopsim.cli", "demo", "--auto",
                                "--delay", "30"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "NO_COLOR": "1"})
    try:
        time.sleep(3)  # past the imports (scapy) into the show
        started = time.monotonic()
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=30)
        took = time.monotonic() - started
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 128 + signum
    assert "Traceback" not in stderr
    assert f"stopped by {signal.Signals(signum).name}" in stderr
    assert took < 5  # ~0.1 s here; a bound on a hang, not a timing check on a busy machine


# --- untrusted text: names restricted, everything else escaped where shown -------------

HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069"
                    "\ufeff\ud800-\udfff]")


@pytest.mark.parametrize("name,words", [
    ("a\x1b[31mred", ["control character", "\\x1b"]),
    ("evil\u202egnp.exe", ["invisible or control", "\\u202e", "RIGHT-TO-LEFT OVERRIDE"]),
    ("ap\u200bp", ["ZERO WIDTH SPACE"]),
    ("a\ud800", ["\\ud800"]),
    ("\u0430pp", ["mixes letters of CYRILLIC and LATIN"]),  # a Cyrillic a
    ("\uff41pp", ["NFKC", "'app'"]),  # a fullwidth a
    (".", ["cannot be '.'"]),
    ("..", ["cannot be '..'"]),
    ("", ["cannot be empty"]),
    ("a\u2028b", ["LINE SEPARATOR"]),
])
def test_a_name_that_hides_or_imitates_is_refused_with_its_line(name, words, tmp_path):
    doc = base_json()
    doc["nodes"][name] = {"kind": "container", "role": "workload"}
    doc["links"].append(["docker0", name])
    file = tmp_path / "t.json"
    file.write_text(json.dumps(doc, indent=1))
    output = refused(run("validate", str(file)), "t.json:", *words)
    assert not HIDDEN.search(output)


def test_a_name_in_one_script_other_than_latin_is_fine(tmp_path):
    doc = base_json()
    doc["nodes"]["приложение"] = {"kind": "container", "role": "workload"}
    doc["links"].append(["docker0", "приложение"])
    file = tmp_path / "t.json"
    file.write_text(json.dumps(doc))
    assert run("validate", str(file)).exit_code == 0


def test_the_topology_name_is_held_to_the_same_rule(tmp_path):
    file = tmp_path / "t.yaml"
    file.write_text(BASE.replace("name: demo", 'name: "demo\\e[2J"'))
    refused(run("validate", str(file)), "t.yaml:1: name:", "\\x1b")


def test_shown_escapes_what_a_reader_cannot_see_and_keeps_the_rest():
    assert shown("a\x1b]0;x\x07b") == "a\\x1b]0;x\\x07b"
    assert shown("x\u202ey\u200b\ud800") == "x\\u202ey\\u200b\\ud800"
    assert shown("tab\tand\nnewline, émigré, приложение") == \
        "tab\tand\nnewline, émigré, приложение"


HOSTILE = "evil \x1b]0;pwn\x07 \x1b[2J text \u202e and \x01 \x9b"


@pytest.fixture
def hostile_description(tmp_path) -> Path:
    doc = base_json()
    doc["description"] = HOSTILE
    doc["nodes"]["app"]["description"] = HOSTILE
    file = tmp_path / "t.json"
    file.write_text(json.dumps(doc))
    return file


@pytest.mark.parametrize("args", [
    ["check"], ["sweep"], ["show"], ["explain"], ["trace", "--from", "app"],
    ["check", "--format", "markdown"], ["sweep", "--format", "markdown"],
    ["demo", "--auto", "--delay", "0"],
])
def test_free_text_from_a_file_reaches_no_output_raw(args, hostile_description):
    # Issue 15: ANSI sequences in descriptions were printed raw by check, show,
    # explain and demo (a pull request could rewrite a CI log).
    command, *rest = args
    result = run(command, str(hostile_description), *rest)
    assert result.exit_code in (0, 1), result.output
    assert not HIDDEN.search(result.output)


@pytest.mark.parametrize("suffix", ["svg", "html"])
def test_pictures_of_a_hostile_file_hold_no_raw_control_character(suffix,
                                                                   hostile_description,
                                                                   tmp_path):
    picture = tmp_path / f"t.{suffix}"
    assert run("draw", str(hostile_description), "-o", str(picture)).exit_code == 0
    text = picture.read_text(encoding="utf-8")
    assert not HIDDEN.search(text)
    if suffix == "svg":
        ElementTree.fromstring(text)  # well-formed XML


def test_a_file_name_with_escapes_is_shown_escaped(tmp_path):
    folder = tmp_path / "scan"
    folder.mkdir()
    (folder / "bad\x1b[2J.yaml").write_text(BASE.replace("{kind: bridge}", "{kind: bridg}"))
    result = run("check", str(folder))
    assert result.exit_code == 2
    assert "bad\\x1b[2J.yaml" in result.output
    assert not HIDDEN.search(result.output)


# --- topologies that mean nothing; lines as editors count them ------------------------


@pytest.mark.parametrize("nodes,links,message", [
    ({"instance": {"kind": "host"}, "app": {"kind": "container", "role": "workload"}},
     [["instance", "app"]], "no imds node"),
    ({"imds": {"kind": "imds"}, "gw": {"kind": "router"}}, [["imds", "gw"]],
     "no principal"),
])
def test_a_topology_that_checks_nothing_is_an_error_not_ok(nodes, links, message, tmp_path):
    # Issue 15: both were "ok" (validate), the second also "ok" in check.
    file = tmp_path / "t.yaml"
    file.write_text(yaml.safe_dump({"name": "t", "description": "d", "nodes": nodes,
                                    "links": links}, sort_keys=False))
    nodes_line = file.read_text().splitlines().index("nodes:") + 1
    for command in ("validate", "check"):
        refused(run(command, str(file)), f"t.yaml:{nodes_line}: nodes: {message}")


@pytest.mark.parametrize("odd", ["\u2028", "\u2029", "\x85", "\r"])
def test_lines_after_a_yaml_only_line_break_are_the_editors(odd, tmp_path):
    # Issue 15: YAML counts U+2028, U+2029, U+0085 and a bare CR as line breaks.
    text = BASE.replace("description: a container on a bridge behind a forwarding instance",
                        f'description: "a container{odd}on a bridge"'
                        ).replace("{kind: bridge}", "{kind: bridg}")
    file = tmp_path / "t.yaml"
    file.write_bytes(text.encode("utf-8"))
    line = next(i for i, t in enumerate(text.split("\n"), 1) if "bridg}" in t)
    refused(run("validate", str(file)), f"t.yaml:{line}: nodes.docker0.kind")


def test_json_nested_past_pythons_stack_is_refused_at_its_line(tmp_path):
    # Issue 15: the message had no line.
    file = tmp_path / "deep.json"
    file.write_text('{"name": "x",\n "nodes": ' + "[\n" * 3000 + "]" * 3000 + "}")
    # "{" opens level 1 on line 1, line k opens level k: level 33 is on line 33.
    refused(run("validate", str(file)), "deep.json:33: nested deeper than 32 levels")


def test_a_repeated_anchor_says_where_both_are(tmp_path):
    # Issue 15: the message was cut to "second occurrence".
    file = tmp_path / "t.yaml"
    file.write_text(BASE.replace("name: demo", "name: &a demo").replace(
        "description: a", "description: &a a"))
    refused(run("validate", str(file)),
            "t.yaml:2: not valid YAML: found duplicate anchor 'a'; first occurrence (line 1); "
            "second occurrence")


def test_import_terraform_into_a_json_topology_writes_json(tmp_path):
    # Issue 15: the settings were written into a JSON file as YAML flow syntax.
    doc = yaml.safe_load((TOPOLOGIES / "docker-bridge.yaml").read_text())
    doc["nodes"]["imds"]["instance"] = "aws_instance.bastion"
    file = tmp_path / "t.json"
    file.write_text(json.dumps(doc, indent=2))
    plan = TOPOLOGIES.parent / "tests" / "fixtures" / "terraform" / "plan.json"
    assert run("import", "terraform", str(plan), str(file)).exit_code == 0
    written = json.loads(file.read_text())
    assert written["nodes"]["imds"] == {"kind": "imds", "instance": "aws_instance.bastion",
                                        "http_tokens": "optional"}
    assert run("validate", str(file)).exit_code == 0


@pytest.mark.parametrize("suffix", ["yaml", "json"])
def test_the_largest_compact_fleet_generate_writes_validates(suffix, tmp_path):
    # Issue 15: generate wrote compact files (counts past 10**9) validate refused.
    file = tmp_path / f"fleet.{suffix}"
    biggest = str(10 ** 9)
    assert run("generate", "fleet", "--compact", "--instances", biggest, "--containers",
               biggest, "-o", str(file)).exit_code == 0
    assert run("validate", str(file)).exit_code == 0
    refused(run("generate", "fleet", "--compact", "--instances", str(10 ** 9 + 1),
                "--containers", "1"), "--instances")


COMMAND_LINE = "from hopsim.cli.__main__ import command_line; command_line()"  # the `hopsim` script


def _catches_sigterm(pid: int) -> bool:
    """Whether the process has a handler of its own for SIGTERM (SigCgt in
    /proc): Python catches SIGINT from its start, only hopsim catches SIGTERM."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True  # it has ended: nothing more to wait for
    caught = int(re.search(r"^SigCgt:\s*([0-9a-f]+)$", status, re.M).group(1), 16)
    return bool(caught >> (signal.SIGTERM - 1) & 1)


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.15, 0.3])
def test_ctrl_c_during_the_imports_is_130_without_a_traceback(delay):
    # Issue 15: SIGINT while scapy imported printed a KeyboardInterrupt traceback.
    # The delay counts from the moment hopsim holds the signals, not from the
    # process's start: before that the interpreter itself is starting, which no
    # program can shorten (on a loaded machine it takes more than 50 ms).
    process = subprocess.Popen([sys.executable, "-c", COMMAND_LINE, "check", DOCKER],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "NO_COLOR": "1"})
    deadline = time.monotonic() + 30
    while not _catches_sigterm(process.pid) and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert "Traceback" not in stderr
    # the check takes ~0.7 s here; on a fast machine it may be done (exit 1) first
    assert process.returncode == 130 or (process.returncode == 1 and not stderr)


HANDLERS_FIRST = """
import builtins, signal, sys
real, first = builtins.__import__, []
def spy(name, *args, **kwargs):
    if not first and name.split(".")[0] in {"click", "rich", "scapy", "networkx", "yaml"}:
        first.append((name, signal.getsignal(signal.SIGTERM)))
    return real(name, *args, **kwargs)
builtins.__import__ = spy
sys.argv = ["hopsim", "--version"]
from hopsim import interrupts
from hopsim.cli.__main__ import command_line
try:
    command_line()
except SystemExit:
    pass
name, handler = first[0]
assert handler is interrupts.raise_stopped, (name, handler)
"""


def test_the_command_holds_the_signals_before_it_imports_anything_heavy():
    # What the Ctrl-C test above relies on: its delays count from the handlers.
    subprocess.run([sys.executable, "-c", HANDLERS_FIRST], check=True, timeout=60,
                   capture_output=True)


def test_importing_hopsim_imports_nothing_heavy():
    probe = ("import sys, hopsim; assert 'scapy' not in sys.modules; "
             "assert callable(hopsim.load) and callable(hopsim.write_pcap)")
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)


# The real command in its own process, its report made to stall halfway: the
# signal surely comes while the output file is being written.
STALLING_REPORT = """\
import sys, time
from hopsim import cli
from hopsim.report import formats
def stalling(*args, **kwargs):
    yield '{"partial": '
    time.sleep(600)
    yield '1}'
formats.chunks = stalling
from hopsim.cli.__main__ import command_line
sys.argv = ["hopsim", *sys.argv[1:]]
command_line()
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_writing_leaves_the_previous_report(signum, tmp_path):
    # Issue 15: a signal while writing --output left a truncated file.
    report = tmp_path / "report.json"
    report.write_text('{"previous": true}')
    process = subprocess.Popen([sys.executable, "-c", STALLING_REPORT, "check", DOCKER,
                                "--output", f"json:{report}"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "NO_COLOR": "1"})
    try:
        deadline = time.monotonic() + 60
        while not any(p.suffix == ".tmp" for p in tmp_path.iterdir()):
            assert time.monotonic() < deadline, "the report was never started"
            time.sleep(0.05)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 128 + signum
    assert "Traceback" not in stderr
    assert report.read_text() == '{"previous": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_full_disk_is_one_line_and_leaves_the_previous_file(tmp_path, monkeypatch):
    # The disk fills while the report is flushed: ENOSPC, as a full disk says it.
    report = tmp_path / "report.json"
    report.write_text("previous")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(hopsim.output.os, "fsync", full)
    refused(run("check", DOCKER, "--output", f"json:{report}"), "No space left on device")
    assert report.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("args", [["draw", DOCKER, "--format", "svg", "-o", "/dev/full"],
                                  ["trace", DOCKER, "--from", "app", "--pcap", "/dev/full"]])
def test_writing_into_dev_full_is_one_line(args):
    refused(run(*args), "/dev/full: cannot write: No space left on device")

"""check and sweep --jobs N (issue 4): files analysed in worker processes, the
run's output byte for byte what one process gives.

Each comparison also checks that a pool was really used (or, where it must not
be, that none was), so that a run that silently stayed serial cannot pass.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from builders import BASE, ROOT, TOPOLOGIES
from click.testing import CliRunner

import hopsim.report.progress
import hopsim.workers
from hopsim import analysis
from hopsim.cli import main
from hopsim.loader import load, topology_files
from hopsim.report import formats

PLAIN = {"NO_COLOR": "1", "COLUMNS": "80", "FORCE_COLOR": None, "TERM": "dumb"}
TERRAFORM = ROOT / "tests" / "fixtures" / "terraform"
PLAN = str(TERRAFORM / "plan.json")
FORMATS = ("table", "json", "junit", "sarif", "markdown")

# A valid topology (builders.BASE) and bad files made from it.
GOOD = BASE
UNKNOWN_KIND = GOOD.replace("{kind: bridge}", "{kind: routr}")
NOT_YAML = GOOD.replace("  - [docker0, app]", "  - [docker0, app")


def run(*args: str):
    return CliRunner().invoke(main, list(args), env=PLAIN)


@pytest.fixture
def pools(monkeypatch):
    """The worker counts of the process pools a run starts."""
    started: list[int] = []
    real = concurrent.futures.ProcessPoolExecutor
    monkeypatch.setattr(hopsim.workers, "cpus", lambda: 16)  # --jobs is capped to the CPUs

    def spy(max_workers, **kwargs):
        started.append(max_workers)
        return real(max_workers, **kwargs)

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", spy)
    return started


@pytest.fixture
def bad_files(tmp_path) -> list[str]:
    """Three bad files: an unknown kind, broken YAML, and a good file whose
    topology name repeats the first bundled one (docker-bridge)."""
    files = {"a-unknown-kind.yaml": UNKNOWN_KIND, "b-not-yaml.yaml": NOT_YAML,
             "c-same-name.yaml": GOOD.replace("name: demo", "name: docker-bridge")}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return [str(tmp_path / name) for name in files]


def same_run(args: list[str], pools: list[int], outputs: Sequence[Path] = ()):
    """Run args with --jobs 1 and --jobs 3; assert that all they show, write
    and exit with is the same, and that only the second used a pool."""
    runs = []
    for jobs in ("1", "3"):
        pools.clear()
        result = run(*args, "--jobs", jobs)
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            result.exception
        written = [path.read_bytes() for path in outputs]
        runs.append((result.stdout, result.stderr, result.exit_code, written))
        assert pools == ([] if jobs == "1" else [3])
    serial, parallel = runs
    assert parallel[2] == serial[2]  # the exit code
    assert parallel[1] == serial[1]  # stderr: problems, one line each, in the files' order
    assert parallel[0] == serial[0]  # stdout
    assert parallel[3] == serial[3]  # the --output files
    return serial


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


# --- the same output, for every format ----------------------------------------------


@pytest.mark.parametrize("output_format", FORMATS)
@pytest.mark.parametrize("command", ["check", "sweep"])
def test_jobs_3_prints_what_jobs_1_prints(command, output_format, bad_files, pools):
    stdout, stderr, code, _ = same_run(
        [command, str(TOPOLOGIES), *bad_files, "--format", output_format], pools)
    assert code == 2  # bad files, while the others are still checked
    problems = errors(stderr)
    assert [p.split(":")[1] for p in problems] == [
        f" {bad_files[0]}", f" {bad_files[1]}", f" {bad_files[2]}"]
    assert "duplicate topology name 'docker-bridge'" in problems[2]
    assert "Traceback" not in stderr
    for name in SHOWN.get((command, output_format), ("docker-bridge", "open-router")):
        assert name in stdout  # reports made in the pool


# What each output shows of the bundled topologies; SARIF shows findings only
# (a sweep's are failed expect entries, and the bundled files have none).
SHOWN = {("check", "sarif"): ("topologies/docker-bridge.yaml", "topologies/docker-in-docker.yaml"),
         ("sweep", "sarif"): ()}


@pytest.mark.parametrize("command", ["check", "sweep"])
def test_jobs_3_writes_every_output_file_as_jobs_1_does(command, bad_files, pools, tmp_path):
    outputs = [tmp_path / f"out.{name}" for name in FORMATS[1:]]
    options = [f"--output={name}:{path}" for name, path in zip(FORMATS[1:], outputs,
                                                                 strict=True)]
    stdout, _, code, written = same_run(
        [command, str(TOPOLOGIES), bad_files[0], *options], pools, outputs)
    assert code == 2
    assert all(written)
    assert "docker-bridge" in stdout  # the table still goes to the terminal


@pytest.mark.parametrize("args", [
    ["check", "--hop-limit", "2", "--http-tokens", "optional"],
    ["sweep", "--hop-limits", "1-64", "--format", "json"],
    ["check", "--set", "app.role=attacker", "--format", "sarif"],
], ids=["what-if", "sweep-1-64", "set-on-some-files"])
def test_what_if_options_give_the_same_run(args, pools):
    command, *options = args
    _, stderr, _, _ = same_run([command, str(TOPOLOGIES), *options], pools)
    assert "Traceback" not in stderr


def test_settings_give_the_same_run_with_their_problems(bad_files, pools, tmp_path):
    # workers and bastion name instances of the plan; the bundled topologies
    # name none and are checked as written; a copy naming a missing instance
    # is a problem at its instance line.
    missing = tmp_path / "missing.yaml"
    missing.write_text((TERRAFORM / "workers.yaml").read_text()
                       .replace("module.app.aws_instance.worker", "aws_instance.gone")
                       .replace("name: app-workers", "name: gone"))
    stdout, stderr, code, _ = same_run(
        ["check", str(TERRAFORM / "workers.yaml"), str(TERRAFORM / "bastion.yaml"),
         str(TOPOLOGIES), str(missing), bad_files[0], "--settings", PLAN,
         "--format", "json"], pools)
    assert code == 2
    problems = errors(stderr)
    assert len(problems) == 2
    assert problems[0].startswith(f"error: {bad_files[0]}:")
    assert problems[1].startswith(f"error: {missing}:")
    assert "no instance 'aws_instance.gone' in the settings" in problems[1]
    assert '"name": "app-workers"' in stdout and '"name": "docker-bridge"' in stdout


@pytest.mark.parametrize("settings_text,message", [
    (None, "no imds node of the topologies names an instance"),
    ("not json", "not JSON at line 1"),
], ids=["naming-no-instance", "unusable"])
def test_settings_problems_of_the_whole_run_are_the_same(settings_text, message, bad_files,
                                                         pools, tmp_path):
    file = PLAN
    if settings_text is not None:
        file = str(tmp_path / "plan.json")
        Path(file).write_text(settings_text)
    stdout, stderr, code, _ = same_run(
        ["check", str(TOPOLOGIES), bad_files[0], "--settings", file, "--format", "json"],
        pools)
    assert code == 2
    problems = errors(stderr)
    assert problems[0].startswith(f"error: {bad_files[0]}:")  # the files' own, first
    assert problems[-1].startswith(f"error: {file}: --settings: {message}")
    assert '"topologies": []' in stdout


# --- when there is no pool ------------------------------------------------------------


def test_one_file_starts_no_pool_whatever_jobs_says(pools):
    result = run("check", str(TOPOLOGIES / "docker-bridge.yaml"), "--jobs", "8")
    assert result.exit_code == 1  # hop limit 1 starves the app
    assert "docker-bridge at hop limit 1: broken" in result.stdout
    assert pools == []


def test_jobs_1_and_the_default_start_no_pool(pools):
    assert run("sweep", str(TOPOLOGIES), "--jobs", "1").exit_code == 0
    assert run("sweep", str(TOPOLOGIES)).exit_code == 0
    assert pools == []


def test_a_pool_has_no_more_workers_than_files(pools):
    files = [str(TOPOLOGIES / f"{name}.yaml") for name in ("docker-bridge", "open-router")]
    serial = run("check", *files)
    parallel = run("check", *files, "--jobs", "16")
    assert pools == [2]
    assert (parallel.stdout, parallel.exit_code) == (serial.stdout, serial.exit_code)


def test_the_progress_bar_counts_each_file_as_it_completes(monkeypatch, pools):
    # The bar (drawn on a terminal only) is given every file of the run, and
    # advances once per file, in this process or from the pool.
    seen: list[tuple[int, list[int]]] = []
    real = hopsim.report.progress.track

    def spy(items, description, *args, **kwargs):
        indexes: list[int] = []
        seen.append((len(items), indexes))
        for item in real(items, description, *args, **kwargs):
            indexes.append(item[0])
            yield item

    monkeypatch.setattr(hopsim.report.progress, "track", spy)
    files = topology_files([TOPOLOGIES])
    for jobs in ("1", "3"):
        assert run("check", str(TOPOLOGIES), "--jobs", jobs).exit_code == 1
    assert pools == [3]
    assert [(size, sorted(indexes)) for size, indexes in seen] == \
        [(len(files), list(range(len(files))))] * 2


# --- --jobs itself ----------------------------------------------------------------------


@pytest.mark.parametrize("value,message", [
    ("-1", "expected 1 or more processes, or 0 or 'auto' for one per CPU, got -1"),
    ("two", "expected a number of processes or 'auto', got 'two'"),
    ("1.5", "expected a number of processes or 'auto', got '1.5'"),
    ("", "expected a number of processes or 'auto', got ''"),
])
@pytest.mark.parametrize("command", ["check", "sweep"])
def test_a_bad_jobs_value_is_a_usage_error(command, value, message, pools):
    result = run(command, str(TOPOLOGIES), "--jobs", value)
    assert result.exit_code == 2
    assert "Invalid value for '-j' / '--jobs'" in result.stderr
    assert message in result.stderr
    assert result.stdout == ""
    assert pools == []


@pytest.mark.parametrize("value", ["0", "auto", "AUTO"])
def test_zero_and_auto_mean_one_process_per_cpu(value, monkeypatch, pools):
    monkeypatch.setattr(hopsim.workers, "cpus", lambda: 5)
    serial = run("check", str(TOPOLOGIES), "--format", "json")
    result = run("check", str(TOPOLOGIES), "--format", "json", "-j", value)
    assert pools == [5]
    assert (result.stdout, result.exit_code) == (serial.stdout, serial.exit_code)


@pytest.mark.parametrize("value", ["200", "99999999999999999999999999"])
def test_jobs_is_capped_to_the_cpus(value, monkeypatch, pools):
    # Issue 15: --jobs 200 on a 2-CPU machine started 202 processes.
    monkeypatch.setattr(hopsim.workers, "cpus", lambda: 2)
    assert run("check", str(TOPOLOGIES), "-j", value).exit_code in (0, 1)
    assert pools == [2]


def test_cpus_counts_at_least_one():
    assert hopsim.workers.cpus() >= 1


def test_help_documents_jobs():
    result = run("check", "--help")
    assert "-j, --jobs N" in result.stdout
    assert "0 or auto: one per" in result.stdout


# --- what crosses the process boundary ---------------------------------------------


@pytest.mark.parametrize("command", ["check", "sweep"])
def test_a_report_survives_pickling_with_the_same_output(command):
    # A worker sends its Report back pickled: whatever analysis.Report holds
    # (a topology with its graph, lazily made outcomes) must pickle, and the
    # copy must render exactly as the original, in every format.
    topologies = [load(f) for f in topology_files([TOPOLOGIES])]
    hop_limits = [1, 2, 3, 4] if command == "sweep" else []
    for topology in topologies:
        report = (analysis.sweep(topology, hop_limits) if command == "sweep"
                  else analysis.check(topology))
        copy = pickle.loads(pickle.dumps(report))
        for name in FORMATS[1:]:
            assert formats.render(name, command, [copy], [], hop_limits) == \
                formats.render(name, command, [report], [], hop_limits), (topology.name, name)


@pytest.mark.skipif(multiprocessing.get_start_method() != "fork",
                    reason="the workers see the patched analysis only when forked")
def test_an_unexpected_error_in_a_worker_is_raised_as_in_one_process(monkeypatch, pools):
    def broken(topology):
        raise RuntimeError(f"analysis failed on {topology.name}")

    monkeypatch.setattr(analysis, "check", broken)
    serial = run("check", str(TOPOLOGIES))
    parallel = run("check", str(TOPOLOGIES), "--jobs", "2")
    assert pools == [2]
    assert isinstance(serial.exception, RuntimeError)
    assert isinstance(parallel.exception, RuntimeError)
    assert str(parallel.exception).startswith("analysis failed on ")


@pytest.mark.parametrize("method", sorted(set(multiprocessing.get_all_start_methods())
                                          & {"forkserver", "spawn"}))
def test_workers_not_forked_from_the_main_process_give_the_same_run(method):
    """Python 3.14 starts workers from a forkserver on Linux, macOS spawns them:
    their parent is not the main process (a worker that took that for its
    parent's death ended at once)."""
    real = concurrent.futures.ProcessPoolExecutor
    started: list[int] = []

    def started_by(max_workers, **kwargs):
        started.append(max_workers)
        return real(max_workers, mp_context=multiprocessing.get_context(method), **kwargs)

    serial = run("check", str(TOPOLOGIES), "--format", "json")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(concurrent.futures, "ProcessPoolExecutor", started_by)
        pooled = run("check", str(TOPOLOGIES), "--format", "json", "--jobs", "2")
    assert started == [2]
    assert (pooled.exit_code, pooled.output) == (serial.exit_code, serial.output)


# --- a stopped run leaves no worker behind ---------------------------------------------

# The real command in its own process, with each file's analysis made to hang:
# the workers are surely busy when the signal comes.
DRIVER = """\
import signal, sys, time
from hopsim import analysis, cli, workers
signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignoring it
analysis.check = lambda topology: time.sleep(600)
workers.cpus = lambda: 2  # --jobs is capped to the CPUs; 2 workers on any machine
cli.main(["check", *sys.argv[1:], "--jobs", "2"])
"""
PROC = Path("/proc")


def _cmdline(pid: int) -> bytes:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return b""


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _workers(pid: int) -> list[int]:
    """The running children of pid that are forks of it (same command line)."""
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit() and _running(int(entry.name)):
            try:
                ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid and _cmdline(int(entry.name)) == _cmdline(pid):
                found.append(int(entry.name))
    return found


def _eventually(condition, bound: float = 60.0):
    """Poll until condition() is true; a bound on a hang, not a timing check."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    return condition()


@pytest.mark.skipif(not PROC.is_dir() or multiprocessing.get_start_method() != "fork",
                    reason="needs /proc, and workers forked with the hanging analysis")
@pytest.mark.parametrize("signum,returncode", [(signal.SIGTERM, 128 + signal.SIGTERM),
                                               (signal.SIGINT, 128 + signal.SIGINT),
                                               (signal.SIGKILL, -signal.SIGKILL)],
                         ids=["SIGTERM", "SIGINT", "SIGKILL"])
def test_a_stopped_run_ends_its_busy_workers(signum, returncode):
    process = subprocess.Popen([sys.executable, "-c", DRIVER, str(TOPOLOGIES)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, **{k: v for k, v in PLAIN.items() if v}})
    workers: list[int] = []
    try:
        workers = _eventually(lambda: len(_workers(process.pid)) == 2 and _workers(process.pid))
        assert workers, "the pool never started its 2 workers"
        process.send_signal(signum)  # to the main process only, as a CI runner does
        _, stderr = process.communicate(timeout=60)  # a worker left behind holds the pipes
    finally:
        process.kill()
        process.wait()
        for pid in workers:  # when the test fails: no process left sleeping
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
    assert process.returncode == returncode
    assert "Traceback" not in stderr
    assert _eventually(lambda: not any(_running(pid) for pid in workers)), \
        "a worker outlived the run"

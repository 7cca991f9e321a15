"""--format and --output: any format to a file while the table still goes to the
terminal; one run, the same Report objects, every format; exit codes unchanged."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET

import pytest
from builders import TOPOLOGIES
from ci_helpers import FIXTURES, run
from rich.console import Console

from hopsim.report import formats, progress


def test_output_writes_the_format_and_the_table_still_goes_to_the_terminal(tmp_path,
                                                                            monkeypatch):
    sarif = tmp_path / "hopsim.sarif"
    result = run("check", "topologies/docker-bridge.yaml", "--format", "sarif", "--output",
                 str(sarif), monkeypatch=monkeypatch)
    assert result.exit_code == 1  # the finding still sets the exit code
    assert "docker-bridge at hop limit 1: broken (topologies/docker-bridge.yaml)" in \
        result.stdout
    assert json.loads(sarif.read_text())["version"] == "2.1.0"


def test_several_outputs_in_one_run_each_in_its_format(tmp_path, monkeypatch):
    files = {name: tmp_path / f"out.{name}" for name in formats.FORMATS}
    args = [a for name, file in files.items() for a in ("--output", f"{name}:{file}")]
    result = run("sweep", "--hop-limits", "1-2", *args, monkeypatch=monkeypatch)
    assert result.exit_code == 0
    assert "+----" in result.stdout and "best" in result.stdout
    assert json.loads(files["json"].read_text())["command"] == "sweep"
    assert json.loads(files["sarif"].read_text())["runs"][0]["results"] == []
    assert ET.fromstring(files["junit"].read_text()).get("name") == "hopsim sweep"
    assert files["markdown"].read_text().startswith("### hopsim sweep (hop limits 1-2)")
    assert files["table"].read_text() == result.stdout  # plain text, 80 columns


@pytest.mark.parametrize("output_format", formats.FORMATS)
def test_a_file_holds_what_stdout_would_hold(output_format, tmp_path, monkeypatch):
    file = tmp_path / "out"
    written = run("check", FIXTURES, "--format", output_format, "--output", str(file),
                  monkeypatch=monkeypatch)
    printed = run("check", FIXTURES, "--format", output_format, monkeypatch=monkeypatch)
    assert written.exit_code == printed.exit_code == 2
    assert file.read_text() == printed.stdout


@pytest.mark.parametrize("output_format", formats.FORMATS)
@pytest.mark.parametrize("command", ["check", "sweep"])
def test_every_format_is_deterministic(command, output_format, monkeypatch):
    first = run(command, "--format", output_format, monkeypatch=monkeypatch)
    again = run(command, "--format", output_format, monkeypatch=monkeypatch)
    assert first.stdout == again.stdout
    assert first.exit_code == again.exit_code == (1 if command == "check" else 0)


def test_a_missing_folder_of_an_output_is_made(tmp_path, monkeypatch):
    sarif = tmp_path / "reports" / "hopsim" / "x.sarif"
    result = run("check", "topologies/host-process.yaml", "--output", f"sarif:{sarif}",
                 monkeypatch=monkeypatch)
    assert result.exit_code == 0, result.output
    assert json.loads(sarif.read_text())["version"] == "2.1.0"


def test_an_output_that_cannot_be_written_is_refused_before_any_work(tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    first = tmp_path / "first.xml"
    result = run("check", "topologies/host-process.yaml", "--output", f"junit:{first}",
                 "--output", f"sarif:{tmp_path}/a-file/x.sarif", monkeypatch=monkeypatch)
    assert result.exit_code == 2
    assert (f"error: --output {tmp_path}/a-file/x.sarif: cannot make its folder "
            f"'{tmp_path}/a-file'") in result.stderr
    assert not first.exists()  # refused before the first report was written
    assert "host-process" not in result.stdout  # and before the run


def test_an_output_that_is_a_folder_is_refused(tmp_path, monkeypatch):
    result = run("check", "topologies/host-process.yaml", "--output", str(tmp_path),
                 monkeypatch=monkeypatch)
    assert result.exit_code == 2
    assert f"error: --output {tmp_path}: is a folder; expected a file" in result.stderr


def test_an_output_without_a_file_is_a_usage_error(monkeypatch):
    result = run("check", "--output", "sarif:", monkeypatch=monkeypatch)
    assert result.exit_code == 2
    assert "expected FILE or FORMAT:FILE" in result.output


def test_an_unknown_format_prefix_is_an_error_that_lists_the_formats(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("check", str(TOPOLOGIES / "host-process.yaml"), "--output", "xml:out.xml")
    assert result.exit_code == 2
    assert ("unknown format 'xml' in 'xml:out.xml'; formats: table, json, junit, sarif, "
            "markdown") in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_file_name_with_a_colon_is_written_as_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("check", str(TOPOLOGIES / "host-process.yaml"),
                 "--format", "json", "--output", "./report:1.json")
    assert result.exit_code == 0
    assert json.loads((tmp_path / "report:1.json").read_text())["command"] == "check"


def test_a_dash_writes_the_report_to_standard_output_instead_of_the_table(tmp_path,
                                                                          monkeypatch):
    sarif = tmp_path / "x.sarif"
    result = run("check", "topologies/docker-bridge.yaml", "--output", "json:-",
                 "--output", f"sarif:{sarif}", monkeypatch=monkeypatch)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["topologies"][0]["name"] == "docker-bridge"
    assert json.loads(sarif.read_text())["runs"][0]["results"]
    assert not (tmp_path / "-").exists()


def test_only_one_report_can_take_standard_output(monkeypatch):
    result = run("check", "--output", "json:-", "--output", "sarif:-", monkeypatch=monkeypatch)
    assert result.exit_code == 2
    assert "only one report can go to standard output (-)" in result.output


def test_the_progress_bar_shows_on_a_terminal_for_many_files_only():
    items = list(range(progress.MANY))
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=80)
    assert list(progress.track(items, "check", terminal)) == items
    assert "check" in screen.getvalue() and f"{len(items)}/{len(items)}" in screen.getvalue()
    screen = io.StringIO()
    assert list(progress.track(items[:-1], "check", Console(file=screen,
                                                            force_terminal=True))) == items[:-1]
    assert screen.getvalue() == ""
    piped = io.StringIO()
    assert list(progress.track(items, "check", Console(file=piped))) == items
    assert piped.getvalue() == ""

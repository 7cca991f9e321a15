"""Shared by the CI-format tests: run the CLI from the project root."""

from __future__ import annotations

from builders import ROOT
from click.testing import CliRunner

from hopsim.cli import main

FIXTURES = "tests/fixtures/ci"
SCHEMAS = ROOT / "tests" / "schemas"
PLAIN = {"NO_COLOR": "1", "COLUMNS": "80", "FORCE_COLOR": None, "TERM": "dumb"}


def run(*args: str, monkeypatch=None):
    """The CLI from the project root, so files are named as a CI job names them."""
    if monkeypatch is not None:
        monkeypatch.chdir(ROOT)
    return CliRunner().invoke(main, list(args), env=PLAIN)


def position(file: str, needle: str, after: str | None = None) -> tuple[int, int]:
    """(line, column) from 1 of `needle` in a file, optionally on a line after `after`."""
    lines = (ROOT / file).read_text().splitlines()
    start = 0
    if after is not None:
        start = next(i for i, line in enumerate(lines) if after in line)
    for i in range(start, len(lines)):
        if needle in lines[i]:
            return i + 1, lines[i].index(needle) + 1
    raise AssertionError(f"{needle!r} not in {file}")

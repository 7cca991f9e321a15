"""The README shows real output: its examples are re-run and compared."""

from __future__ import annotations

import re

import pytest
from builders import ROOT
from click.testing import CliRunner

from hopsim.cli import main

README = (ROOT / "README.md").read_text()
PLAIN = {"NO_COLOR": "1", "COLUMNS": "80", "FORCE_COLOR": None, "TERM": "dumb"}


def blocks():
    """Code blocks that start with `$ hopsim ...` and show the whole output."""
    for block in re.findall(r"```\n(\$ hopsim .*?)```", README, re.S):
        command, _, output = block.partition("\n")
        if "..." not in output:  # excerpts are marked with ...
            yield command[2:], re.split(r"^\$ ", output, flags=re.M)[0]


EXAMPLES = list(blocks())


def test_readme_has_full_examples():
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("command,output", EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_readme_example_is_real_output(command, output, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    args = command.split()[1:]
    if "typo.yaml" in args:
        (tmp_path / "typo.yaml").write_text(TYPO)
        monkeypatch.chdir(tmp_path)
        (tmp_path / "topologies").symlink_to(ROOT / "topologies")
    result = CliRunner().invoke(main, args, env=PLAIN)
    assert result.output == output


def test_readme_sweep_table_is_real_output(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["sweep"], env=PLAIN)
    assert result.output in README


TYPO = """\
name: typo
description: A topology with mistakes.
imds: {hop_limit: 0}
nodes:
  imds: {kind: imds}
  instance: {kind: host, forwarding: true}
  gw: {kind: routr}
  app: {kind: container, runs_on: gw}
links:
  - [imds, instance]
  - [instance, docker0]
expect:
  2: {app: tokn}
"""

"""The examples run, and print what their committed .out files say.

Each .out was checked by hand against docs/facts.md (SimPy's habit:
example programs whose output is a golden file)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from builders import ROOT

EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def test_there_are_examples():
    assert [e.name for e in EXAMPLES] == ["walkthrough.py"]


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_example_prints_its_golden_output(example, tmp_path):
    # From another folder: the example finds the topologies on its own, and
    # leaves nothing behind (its pcap goes to a temporary folder).
    result = subprocess.run([sys.executable, str(example)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == example.with_suffix(".out").read_text()
    assert list(tmp_path.iterdir()) == []

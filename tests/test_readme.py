"""The README and docs/ show real output: their examples are re-run and
compared; the README stays a short front door from which every page of docs/
can be reached, and nothing points outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from builders import ROOT
from click.testing import CliRunner

from hopsim.cli import main

README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "topologies" / "README.md"]
PLAIN = {"NO_COLOR": "1", "COLUMNS": "80", "FORCE_COLOR": None, "TERM": "dumb"}
README_LIMIT = 15_000  # bytes: what it is, set-up, the first result, a first topology, links


def _name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def files_shown(text: str) -> dict[str, str]:
    """YAML blocks whose first line is `# NAME.yaml`: files an example uses."""
    return {m.group(1): m.group(0)[len("```yaml\n"):-len("```")]
            for m in re.finditer(r"```yaml\n# (\S+\.ya?ml)\n.*?```", text, re.S)}


def blocks():
    """Code blocks that start with `$ hopsim ...` and show the whole output."""
    for page in PAGES:
        text = page.read_text()
        for block in re.findall(r"```\n(\$ hopsim .*?)```", text, re.S):
            command, _, output = block.partition("\n")
            if "..." not in output:  # excerpts are marked with ...
                yield page, command[2:], re.split(r"^\$ ", output, flags=re.M)[0]


EXAMPLES = list(blocks())


def test_the_pages_have_full_examples():
    assert len(EXAMPLES) >= 5
    assert any(page == README for page, _, _ in EXAMPLES)


@pytest.mark.parametrize("page,command,output", EXAMPLES,
                         ids=[f"{_name(p)}: {c}" for p, c, _ in EXAMPLES])
def test_example_is_real_output(page, command, output, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    args = command.split()[1:]
    shown = files_shown(page.read_text())
    if "typo.yaml" in args:
        shown["typo.yaml"] = TYPO
    if any(a in shown for a in args):
        for name, text in shown.items():
            (tmp_path / name).write_text(text)
        monkeypatch.chdir(tmp_path)
        (tmp_path / "topologies").symlink_to(ROOT / "topologies")
    result = CliRunner().invoke(main, args, env=PLAIN)
    assert result.output == output


def test_readme_sweep_table_is_real_output(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["sweep"], env=PLAIN)
    assert result.output in README.read_text()


def test_the_readme_first_topology_is_short_and_starves_its_app_at_1_not_2(tmp_path):
    text = files_shown(README.read_text())["first.yaml"]
    assert len(text.splitlines()) <= 11  # its name comment and ten lines
    (tmp_path / "first.yaml").write_text(text)
    assert CliRunner().invoke(main, ["check", str(tmp_path / "first.yaml")],
                              env=PLAIN).exit_code == 1
    assert CliRunner().invoke(main, ["check", str(tmp_path / "first.yaml"), "--hop-limit",
                                     "2"], env=PLAIN).exit_code == 0


def test_the_readme_is_a_short_front_door():
    assert len(README.read_bytes()) < README_LIMIT


def test_the_readme_has_exactly_its_two_set_up_commands_and_ci_runs_the_second():
    commands = re.findall(r"```sh\n(python3 -m venv .*?)\n```", README.read_text())
    assert commands == [
        "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/hopsim sweep",
        "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/pytest"]
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith(commands[1])


def _links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return re.findall(r"\]\(([^)\s]+)\)", text)


def test_every_page_of_docs_is_linked_from_the_readme():
    linked = {(ROOT / link.split("#")[0]).resolve() for link in _links(README)}
    missing = [_name(p) for p in PAGES[1:] if p.resolve() not in linked
               and p.parent.name == "docs"]
    assert not missing, f"not linked from README.md: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_relative_links_lead_to_files_of_the_repository(page):
    for link in _links(page):
        if re.match(r"[a-z]+:", link) or link.startswith("#"):
            continue
        target = (page.parent / link.split("#")[0]).resolve()
        assert target.is_relative_to(ROOT.resolve()), f"{link}: outside the repository"
        assert target.exists(), f"{_name(page)}: {link}: no such file"


def test_nothing_committed_points_at_files_outside_the_repository():
    texts = [*PAGES, *ROOT.glob("hopsim/**/*.py"), *ROOT.glob("topologies/*.yaml"),
             ROOT / "action.yml"]
    for path in texts:
        assert "../shared" not in path.read_text(), path
        assert "imds-facts" not in path.read_text(), path


def test_the_facts_page_explains_every_marker_it_and_the_lessons_use():
    facts = (ROOT / "docs" / "facts.md").read_text()
    used = set(re.findall(r"\[([COUM])\]", facts))
    for lesson in ROOT.glob("topologies/*.yaml"):
        used |= set(re.findall(r"\[([COUM])\]", lesson.read_text()))
    legend = facts[facts.index("## The markers"):facts.index("## The IMDSv2 exchange")]
    for marker in used:
        assert f"| **[{marker}]** |" in legend, marker


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


def test_the_markers_are_explained_where_the_lessons_use_them():
    legend = (ROOT / "topologies" / "README.md").read_text()
    for marker in "COUM":
        assert f"| [{marker}] |" in legend
    result = CliRunner().invoke(main, ["show", str(ROOT / "topologies" / "docker-bridge.yaml")],
                                env=PLAIN)
    assert "[C] confirmed in a primary source; [O] observed in public reports; [U]" in \
        result.output

"""The house: hopsim's modules import one way (no circle) and no room reaches
into another's private names.

What counts as an import: every `import` and `from ... import` anywhere in a
module, at the top level, inside a function, under TYPE_CHECKING; relative
imports resolved; `from pkg import name` is an import of the submodule
pkg.name when there is one, else of pkg itself.

What does not count: the implicit run of a package's __init__ when one of its
submodules is imported. A package's __init__ re-exporting its submodules
(hopsim.topology re-exporting hopsim.topology.model) is no circle as long as
no submodule imports the __init__ back.

A private name (`_x`) imported from another module of hopsim is reaching into
another room, siblings of one package included: what two modules share is
public in the one that owns it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import hopsim

PACKAGE = Path(hopsim.__file__).parent


def _module_name(path: Path) -> str:
    parts = ["hopsim", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _imports(module: str) -> list[tuple[str, str | None, int]]:
    """(target module, name imported from it or None, line) of every import."""
    tree = ast.parse(MODULES[module].read_text())
    package = module if _is_package(module) else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, None, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                if f"{source}.{alias.name}" in MODULES:
                    found.append((f"{source}.{alias.name}", None, node.lineno))
                else:
                    found.append((source, alias.name, node.lineno))
    return [(target, name, line) for target, name, line in found if target in MODULES]


GRAPH = {module: sorted({target for target, _, _ in _imports(module)} - {module})
         for module in MODULES}


def _cycles() -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each
    shown as one circle through it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in GRAPH[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while True:
                top = stack.pop()
                group.append(top)
                if top == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    return [_circle_through(group) for group in sorted(groups)]


def _circle_through(group: list[str]) -> list[str]:
    """The shortest path from the group's first module back to itself."""
    start = group[0]
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for module in frontier:
            for target in GRAPH[module]:
                if target == start:
                    return [*paths[module], start]
                if target in group and target not in paths:
                    paths[target] = [*paths[module], target]
                    following.append(target)
        frontier = following
    return group


def test_the_graph_sees_imports_inside_functions_and_from_packages():
    # guards on the scanner itself: a lazy import and `from pkg import module`
    assert "hopsim.cli.commands" in GRAPH["hopsim.cli"]
    assert "hopsim.cli.files" in GRAPH["hopsim.cli.check"]


def test_no_import_circle_among_hopsims_modules():
    circles = _cycles()
    assert circles == [], "\n".join(
        f"{len(c) - 1} modules: " + " -> ".join(c) for c in circles)


def test_no_module_imports_a_private_name_of_another():
    found = [f"{MODULES[module].relative_to(PACKAGE.parent)}:{line}: {name} from {target}"
             for module in MODULES for target, name, line in _imports(module)
             if name and name.startswith("_") and not name.startswith("__") and target != module]
    assert found == []


def test_the_layout_in_docs_model_names_every_room_and_no_other():
    text = (PACKAGE.parent / "docs" / "model.md").read_text()
    block = text[text.index("```\nhopsim/"):]
    block = block[:block.index("\n```", 4)]
    named = set(re.findall(r"^  (\w+\.py|\w+/)", block, re.M))
    rooms = ({p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
             | {f"{p.name}/" for p in PACKAGE.iterdir() if (p / "__init__.py").exists()
                or any(p.glob("*.py"))})
    assert named == rooms

"""Reading topology text: YAML or JSON into plain values, with positions.

Nothing in a file can make this read another file, recurse without bound or
hang: sizes, nesting and alias expansion are bounded, and every way a text can
fail ends in one `Abort` with the line and key where it did.
"""

from __future__ import annotations

import json
import reprlib
from typing import Any

import yaml

MAX_FILE_BYTES = 1024 * 1024  # PyYAML parses ~150 KB/s: this also bounds the time
MAX_JSON_BYTES = 64 * 1024 * 1024  # json parses ~100 MB/s: fleets of 100,000s of nodes
MAX_YAML_VALUES = 2_000_000  # after alias expansion: stops "billion laughs"
MAX_DEPTH = 32


# --- YAML with line numbers -------------------------------------------------


class Abort(Exception):
    def __init__(self, line: int | None, key: str, message: str):
        super().__init__(message)
        self.line, self.key, self.message = line, key, message


def dotted(path: tuple[Any, ...] | list[Any]) -> str:
    parts = (show(p) if isinstance(p, int) else str(p) for p in path)
    return ".".join(p if p.isprintable() else repr(p) for p in parts)


class _Short(reprlib.Repr):
    """repr, cut short. An integer too long to print (`0x` and 5,000 digits) is
    described instead: str() of it raises ValueError."""

    def __init__(self) -> None:
        super().__init__()
        self.maxstring = self.maxother = self.maxlong = 80

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 256:
            return f"<an integer of {x.bit_length():,} bits>"
        return super().repr_int(x, level)


def show(value: Any) -> str:
    """A value as it goes into a one-line message: repr, cut short."""
    return _Short().repr(value)


def _too_deep(line: int | None, path: tuple[Any, ...] | list[Any]) -> Abort:
    return Abort(line, dotted(path[:1]), f"nested deeper than {MAX_DEPTH} levels")


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing to compose deeper than MAX_DEPTH.

    PyYAML's composer recurses once per level, so 10,000 `[` would otherwise
    end in a RecursionError.
    """

    def __init__(self, text: str):
        super().__init__(text)
        self.depth = 0
        self.top: Any = None  # the top-level key being composed, for the message

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.depth == 1:
            self.top = index.value if isinstance(index, yaml.ScalarNode) else index
        if self.depth > MAX_DEPTH:
            top = [] if self.top is None else [self.top]
            raise _too_deep(self.peek_event().start_mark.line + 1, top)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _yaml_abort(exc: yaml.YAMLError, text: str) -> Abort:
    """A PyYAML error as one located line."""
    if isinstance(exc, yaml.reader.ReaderError):
        return Abort(text.count("\n", 0, exc.position) + 1, "", "not valid YAML: "
                      f"unacceptable character U+{exc.character:04X} ({exc.reason})")
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        return Abort(mark.line + 1 if mark else None, "",
                      f"not valid YAML: {exc.problem or exc.context}")
    return Abort(None, "", f"not valid YAML: {str(exc).splitlines()[0]}")


def _refuse_bombs(root: yaml.Node, size: Any, loader: yaml.SafeLoader) -> None:
    """Refuse an alias bomb before expanding any of it, at the top-level key
    where the walk would have stopped (its sizes are counted, not built)."""
    if not isinstance(root, yaml.MappingNode) or size(root) <= MAX_YAML_VALUES:
        return
    loader.flatten_mapping(root)
    budget = MAX_YAML_VALUES - 1  # the root
    for key_node, value_node in root.value:
        budget -= size(key_node)
        if size(value_node) > budget:
            raise Abort(value_node.start_mark.line + 1, dotted((key_node.value,)),
                         f"the document expands to more than {MAX_YAML_VALUES:,} values "
                         f"(this value alone: {size(value_node):,}; aliases?)")
        budget -= size(value_node)


def read_yaml(text: str) -> tuple[Any, dict[str, int], dict[str, int],
                                   list[tuple[int, str, str]]]:
    """Parse YAML into plain values, the line and column of every key path, and
    soft problems.

    Duplicate keys are soft problems (the first value is kept); syntax errors,
    unsupported tags, unreadable scalars, deep nesting and runaway or recursive
    aliases abort.
    """
    try:
        loader = _Loader(text)
    except yaml.YAMLError as exc:
        raise _yaml_abort(exc, text) from None
    lines: dict[str, int] = {}
    columns: dict[str, int] = {}
    soft: list[tuple[int, str, str]] = []
    budget = [MAX_YAML_VALUES]
    sizes: dict[int, int] = {}  # id(node) -> values it expands to, aliases included
    active: set[int] = set()  # collections being walked: meeting one again is a cycle

    def size(node: yaml.Node) -> int:
        """Count before expanding: an alias bomb is refused without being built.

        Recursion stays shallow: aliases name earlier nodes, already counted
        (or being counted: a cycle, counted 0 here and reported by walk).
        """
        known = sizes.get(id(node))
        if known is not None:
            return known
        sizes[id(node)] = 0
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            children = node.value if isinstance(node, yaml.SequenceNode) else []
        sizes[id(node)] = total = 1 + sum(size(child) for child in children)
        return total

    def walk(node: yaml.Node, path: tuple[Any, ...]) -> Any:
        line = node.start_mark.line + 1
        if id(node) in active:
            raise Abort(line, dotted(path), "recursive alias: the value contains itself")
        if len(path) > MAX_DEPTH:  # through aliases: the composer bounds the rest
            raise _too_deep(lines.get(dotted(path[:1]), line), path)
        if path and size(node) > budget[0]:
            raise Abort(line, dotted(path), "the document expands to more than "
                         f"{MAX_YAML_VALUES:,} values (this value alone: {size(node):,}; "
                         "aliases?)")
        budget[0] -= 1
        if node.tag not in yaml.SafeLoader.yaml_constructors:
            raise Abort(line, dotted(path), f"unsupported YAML tag {show(node.tag)}")
        lines.setdefault(dotted(path), line)
        columns.setdefault(dotted(path), node.start_mark.column + 1)
        if isinstance(node, yaml.ScalarNode):
            try:
                return loader.construct_object(node)
            except yaml.YAMLError:
                raise
            except Exception as exc:  # PyYAML's own: '!!bool abc' is a KeyError, '!!int ""' ...
                kind = node.tag.rpartition(":")[2]
                detail = f" ({exc})" if isinstance(exc, ValueError) else ""
                raise Abort(line, dotted(path), f"not a valid {kind}: "
                             f"{show(node.value)}{detail}") from None
        active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [walk(item, path + (i,)) for i, item in enumerate(node.value)]
            loader.flatten_mapping(node)
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise Abort(key_node.start_mark.line + 1, dotted(path),
                                 "a key must be a plain value, not a list or mapping")
                key = walk(key_node, path + ("<key>",))
                key_line = key_node.start_mark.line + 1
                if key in result:
                    first = lines.get(dotted(path + (key,)))
                    soft.append((key_line, dotted(path + (key,)),
                                 f"duplicate key {show(key)} (first at line {first})"))
                    continue
                lines[dotted(path + (key,))] = key_line
                columns[dotted(path + (key,))] = key_node.start_mark.column + 1
                result[key] = walk(value_node, path + (key,))
            return result
        finally:
            active.discard(id(node))

    try:
        root = loader.get_single_node()
        if root is None:
            lines[""] = 1
            return None, lines, columns, soft
        _refuse_bombs(root, size, loader)
        return walk(root, ()), lines, columns, soft
    except yaml.YAMLError as exc:
        raise _yaml_abort(exc, text) from None
    except RecursionError:
        raise Abort(None, "", f"nested deeper than {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()


# --- JSON ---------------------------------------------------------------------


def read_json(text: str) -> tuple[Any, dict[str, int], dict[str, int],
                                   list[tuple[int | None, str, str]]]:
    """Parse JSON (the same schema) into plain values and soft problems.

    No line numbers: finding them would cost a second, pure-Python parse, and
    JSON files are mostly generated. Duplicate keys are soft problems (the
    first value is kept, as in YAML); JSON object keys are strings, so the
    hop limits of `expect` ("1") become integers.
    """
    duplicates: list[tuple[dict[str, Any], str]] = []

    def first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        mapping: dict[str, Any] = {}
        for key, value in pairs:
            if key in mapping:
                duplicates.append((mapping, key))
            else:
                mapping[key] = value
        return mapping

    try:
        doc = json.loads(text, object_pairs_hook=first_wins)
    except json.JSONDecodeError as exc:
        raise Abort(exc.lineno, "", f"not valid JSON: {exc.msg} (column {exc.colno})") \
            from None
    except RecursionError:
        raise Abort(None, "", f"nested deeper than {MAX_DEPTH} levels") from None
    paths = _paths_of(doc) if duplicates else {}
    soft = [(None, dotted(paths.get(id(mapping), ()) + (key,)), f"duplicate key {show(key)}")
            for mapping, key in duplicates]
    if isinstance(doc, dict) and isinstance(doc.get("expect"), dict):
        doc["expect"] = {int(k) if k.isdecimal() else k: v for k, v in doc["expect"].items()}
    return doc, {}, {}, soft


def _paths_of(doc: Any) -> dict[int, tuple[Any, ...]]:
    """id(mapping) -> its key path, for every mapping of a parsed document."""
    paths: dict[int, tuple[Any, ...]] = {}
    stack: list[tuple[Any, tuple[Any, ...]]] = [(doc, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > MAX_DEPTH:
            raise _too_deep(None, path)
        if isinstance(value, dict):
            paths[id(value)] = path
            stack += [(v, path + (k,)) for k, v in value.items()]
        elif isinstance(value, list):
            stack += [(v, path + (i,)) for i, v in enumerate(value)]
    return paths

"""Terraform source read as written, without running terraform: python-hcl2
(an optional extra, `pip install 'hopsim[terraform]'`) for the values, and
the text itself for the line of each resource and argument.

A value that is an expression (`var.hop_limit`, `local.x`) is not known
from source; hopsim says so and asks for a plan (`terraform show -json`)
rather than guessing.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hopsim.importers.design import CannotModel, Position

INSTALL = "pip install 'hopsim[terraform]'"


def _parser() -> Any:
    try:
        import hcl2
    except ImportError:
        raise CannotModel(None, "", "reading Terraform source needs python-hcl2, which is not "
                          f"installed: {INSTALL}") from None
    return hcl2


def parse(text: str, file: str) -> dict[str, Any]:
    hcl2 = _parser()
    try:
        return hcl2.loads(text)
    except Exception as exc:  # lark's errors, or any other the parser raises
        line = getattr(exc, "line", None)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CannotModel(line if isinstance(line, int) and line > 0 else None, "",
                          f"not Terraform (HCL) that python-hcl2 can read: {first}") from None


@dataclass
class Block:
    """One `resource "TYPE" "NAME" {...}` or `module "NAME" {...}` block."""

    kind: str  # resource type, or "module"
    name: str
    body: dict[str, Any]
    text: str  # the whole file
    start: int  # offset of the block's first line in text
    end: int

    @property
    def address(self) -> str:
        return f"module.{self.name}" if self.kind == "module" else f"{self.kind}.{self.name}"

    @property
    def line(self) -> int:
        return self.text.count("\n", 0, self.start) + 1

    def line_of(self, *keys: str) -> int | None:
        """The line of the first `KEY =` or `KEY {` of each key in turn, within the
        block (nested: metadata_options, then http_put_response_hop_limit)."""
        offset = self.start
        for key in keys:
            found = re.compile(rf'(?m)^[ \t]*"?{re.escape(key)}"?[ \t]*(=|{{)').search(
                self.text, offset, self.end)
            if not found:
                return None
            offset = found.start()
        return self.text.count("\n", 0, offset) + 1

    def position_of_text(self, needle: str) -> Position | None:
        at = self.text.find(needle, self.start, self.end)
        if at < 0:
            return None
        line_start = self.text.rfind("\n", 0, at) + 1
        return self.text.count("\n", 0, at) + 1, at - line_start + 1


def resources(text: str, file: str, *types: str) -> Iterator[Block]:
    """The resource blocks of the given types (or `module` blocks, for the
    type "module"), in file order."""
    doc = parse(text, file)
    wanted_modules = "module" in types
    for entry in doc.get("resource") or []:
        for rtype, named in (entry or {}).items():
            rtype = unquote(rtype)
            if rtype not in types or not isinstance(named, dict):
                continue
            for name, body in named.items():
                name = unquote(name)
                yield _block(text, rtype, name, body, rf'resource\s+"?{re.escape(rtype)}"?\s+'
                             rf'"?{re.escape(name)}"?\s*{{')
    if wanted_modules:
        for entry in doc.get("module") or []:
            for name, body in (entry or {}).items():
                name = unquote(name)
                yield _block(text, "module", name, body,
                             rf'module\s+"?{re.escape(name)}"?\s*{{')


def _block(text: str, kind: str, name: str, body: Any, header: str) -> Block:
    found = re.compile(rf"(?m)^[ \t]*{header}").search(text)
    start = found.start() if found else 0
    end = _block_end(text, found.end() if found else 0)
    return Block(kind, name, body if isinstance(body, dict) else {}, text, start, end)


def _block_end(text: str, opened: int) -> int:
    """The offset after the `}` that closes the block opened before `opened`;
    strings and comments skipped roughly (enough to find lines)."""
    depth, i, n = 1, opened, len(text)
    while i < n and depth:
        char = text[i]
        if char == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif char == "#" or text.startswith("//", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        i += 1
    return i


def unquote(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def literal(value: Any) -> Any:
    """A value as written, or None when it is an expression: `"x"` -> x, a
    heredoc -> its text, numbers and booleans as they are."""
    if isinstance(value, bool | int | float):
        return value
    if not isinstance(value, str):
        return None
    if value.startswith("${") and value.endswith("}"):
        return None
    text = unquote(value)
    if "${" in text:
        return None
    heredoc = re.match(r"<<(-?)(\w+)\n(.*)\n\s*\2\s*$", text, re.S)
    if heredoc:
        body = heredoc.group(3)
        return textwrap.dedent(body) if heredoc.group(1) else body
    return text.replace('\\"', '"')


def shown(value: Any) -> str:
    """An expression as a person wrote it, shortly."""
    text = str(value)
    if text.startswith("${") and text.endswith("}"):
        text = text[2:-1]
    return text if len(text) <= 60 else text[:57] + "..."


def call_argument(value: Any, function: str) -> str | None:
    """The argument of `${function(...)}`, as text."""
    if isinstance(value, str) and value.startswith(f"${{{function}(") and value.endswith(")}"):
        return value[len(function) + 3:-2]
    return None


def expression(text: str, file: str, line: int | None) -> Any:
    """An HCL literal (a list or object, as jsonencode takes) as plain values:
    parsed as the value of an attribute; keys and strings unquoted."""
    try:
        value = parse(f"x = {text}\n", file).get("x")
    except CannotModel as cannot:
        raise CannotModel(line, "", cannot.message) from None
    return _plain(value)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {unquote(k): _plain(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def block_values(value: Any) -> dict[str, Any] | None:
    """A nested block (`metadata_options { ... }`: a list of one mapping) or an
    object argument (`metadata_options = { ... }`) as a mapping."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        value = value[0]
    if isinstance(value, dict):
        return {unquote(k): v for k, v in value.items() if k != "__is_block__"}
    return None


def dynamic_block(body: dict[str, Any], name: str) -> bool:
    """Whether the body has `dynamic "NAME" { ... }` (its content is computed)."""
    dynamic = body.get("dynamic")
    for entry in dynamic if isinstance(dynamic, list) else [dynamic]:
        if isinstance(entry, dict) and any(unquote(k) == name for k in entry):
            return True
    return False

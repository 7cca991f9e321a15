"""Reading the files importers meet, with the line of every key: multi-document
YAML (what `helm template` prints), JSON, CloudFormation's YAML tags.

Everything goes through hopsim's own bounded readers (hopsim/topology/reader.py), so a
hostile manifest is as harmless as a hostile topology file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from hopsim.importers.design import CannotModel, Position
from hopsim.topology.reader import Abort, json_positions, nearest, read_json, read_yaml

_DOCUMENT_START = re.compile(r"^---(?=\s|$)")
_DOCUMENT_END = re.compile(r"^\.\.\.\s*$")
_HELM = re.compile(r"\{\{-?\s")


@dataclass
class Document:
    """One document of a file: its values and each key path's place."""

    values: Any
    lines: dict[str, int]
    columns: dict[str, int]
    soft: list[tuple[int, str, str]]

    def at(self, *path: Any) -> Position | None:
        """(line, column) of a key path, or of its nearest parent that has one."""
        found = nearest(self.lines, self.columns, path)
        if found is None and "" in self.lines:
            return self.lines[""], self.columns.get("", 1)
        return found


def yaml_documents(text: str) -> list[Document]:
    """Every document of a YAML stream, with lines counted in the whole file.

    Each document is read on its own by read_yaml (single-document, bounded);
    `---` at the start of a line opens the next one, `...` closes one.
    """
    helm = _HELM.search(text)
    if helm:
        line = text.count("\n", 0, helm.start()) + 1
        raise CannotModel(line, "", "a Helm template, not a manifest: check the output of "
                          "`helm template` instead")
    chunks: list[tuple[int, list[str]]] = [(0, [])]
    for number, line in enumerate(text.splitlines(keepends=True)):
        if _DOCUMENT_START.match(line):
            rest = line[3:]
            chunks.append((number, ["   " + rest] if rest.strip() and
                           not rest.lstrip().startswith("#") else ["\n"]))
        elif _DOCUMENT_END.match(line):
            chunks.append((number + 1, []))
        else:
            chunks[-1][1].append(line)
    out = []
    for offset, lines in chunks:
        chunk = "".join(lines)
        if not chunk.strip() or all(not x.strip() or x.lstrip().startswith("#") for x in lines):
            continue
        try:
            values, where, columns, soft = read_yaml(chunk)
        except Abort as abort:
            raise CannotModel(abort.line + offset if abort.line else None, abort.key,
                              abort.message) from None
        out.append(Document(values, {k: v + offset for k, v in where.items()}, columns,
                            [(line + offset, key, message) for line, key, message in soft]))
    return out


def json_document(text: str) -> Document:
    try:
        values, lines, columns, soft = read_json(text)
    except Abort as abort:
        raise CannotModel(abort.line, abort.key, abort.message) from None
    if not lines:
        lines, columns, _ = json_positions(text)
    return Document(values, lines, columns, soft)


def is_json(text: str) -> bool:
    return text.lstrip().startswith(("{", "["))


# CloudFormation's short-form intrinsic functions. hopsim's YAML reader refuses
# tags (a topology has none); here each is blanked to spaces, so lines and
# columns stay where they were, and the value it tagged is read as written
# (`!Ref HopLimit` -> the text HopLimit, which no hop limit check accepts).
_CFN_TAG = re.compile(r"(?<![\w\"'])!(Ref|Sub|GetAtt|Join|Select|Split|If|Equals|Not|And|Or|"
                      r"FindInMap|Base64|Cidr|GetAZs|ImportValue|Condition|Transform|"
                      r"ToJsonString|Length)(?=[\s\[{]|$)")


def cloudformation_yaml(text: str) -> str:
    return _CFN_TAG.sub(lambda m: " " * len(m.group()), text)

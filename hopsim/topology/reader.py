"""Reading topology text: YAML or JSON into plain values, with positions.

One module of ~900 lines on purpose: its three YAML readers must give one
result, and share the bounds, the error wording and the key paths (`dotted`),
so a change to one is made beside the others.

Nothing in a file can make this read another file, recurse without bound or
hang: sizes, nesting and alias expansion are bounded, and every way a text can
fail ends in one `Abort` with the line and key where it did.

YAML is read with libyaml, PyYAML's C parser, where PyYAML has it (its wheels
do), and with PyYAML's pure-Python parser where it does not. Three readers,
one result (tests/test_source.py holds them to it):

- `_read_plain` builds values straight from libyaml's events. It reads what
  generated files hold (no anchors, aliases or merge keys, nothing wrong in
  them but syntax) at ~5.5 MB/s, and leaves anything else to
- `_read_nodes`, which composes the node graph (PyYAML's composer on
  libyaml's events, `_compose`; ~2 MB/s), counts it and then walks it into
  values: aliases are counted before they are expanded. Without libyaml it is
  the only reader, on PyYAML's own composer and parser (`_Loader`, ~0.3 MB/s).
"""

from __future__ import annotations

import contextlib
import errno
import gc
import json
import os
import re
import reprlib
import stat
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

try:  # libyaml: PyYAML's C extension
    from yaml.cyaml import CParser as _CParser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _CParser = None

# With libyaml, YAML reads at ~5.5 MB/s (a 100,000-node fleet, 9 MB, in 1.6 s);
# a 64 MiB file holds at most MAX_YAML_VALUES values, read in under ~20 s and
# ~1.3 GB even when they need the node graph (anchors, aliases, a problem).
# PyYAML's pure-Python parser reads ~0.3 MB/s: without libyaml, 1 MiB.
MAX_FILE_BYTES = (64 if _CParser is not None else 1) * 1024 * 1024
MAX_JSON_BYTES = 64 * 1024 * 1024  # json parses ~100 MB/s: fleets of 100,000s of nodes
MAX_YAML_VALUES = 2_000_000  # as written, and after alias expansion: stops "billion laughs"
MAX_DEPTH = 32
# Python refuses to turn longer digit strings into integers (CVE-2020-10735);
# no value hopsim reads needs more than a handful.
MAX_DIGITS = getattr(sys, "get_int_max_str_digits", lambda: 4300)() or 4300


def read_bytes(path: Any, limit: int) -> bytes:
    """At most limit + 1 bytes of a regular file; raise OSError for anything
    else: a FIFO, a device or a socket could block for ever or never end, so
    it is opened without blocking and refused before a byte is read."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise OSError(errno.EISDIR, os.strerror(errno.EISDIR))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO, device or socket)")
        with os.fdopen(fd, "rb", closefd=False) as stream:
            return stream.read(limit + 1)
    finally:
        os.close(fd)


# --- YAML with line numbers -------------------------------------------------


class Abort(Exception):
    def __init__(self, line: int | None, key: str, message: str):
        super().__init__(message)
        self.line, self.key, self.message = line, key, message


class SeveralDocuments(Abort):
    """A YAML stream of more than one document (a Kubernetes manifest often
    is): never a topology, which is one document."""


def dotted(path: tuple[Any, ...] | list[Any]) -> str:
    """A key path as problems name it and lines are kept by: `nodes.app.kind`.
    A part that is empty, holds a dot or is not printable is quoted, so that
    no two paths read the same (`nodes.'a.b'` is not `nodes.a.b`)."""
    parts = (show(p) if isinstance(p, int) else str(p) for p in path)
    return ".".join(p if _plain_part(p) else repr(p) for p in parts)


def nearest(lines: Mapping[str, int], columns: Mapping[str, int],
            path: Sequence[Any]) -> tuple[int, int] | None:
    """(line, column) of a key path, or of its nearest parent that has one."""
    keys = list(path)
    while keys:
        key = dotted(keys)
        if lines.get(key):
            return lines[key], columns.get(key, 1)
        keys.pop()
    return None


def _plain_part(part: str) -> bool:
    return bool(part) and "." not in part and part.isprintable()


def _part(key: Any) -> str:
    """dotted((key,)), sooner for the usual keys: text and small integers."""
    if key.__class__ is str and key and "." not in key and key.isprintable():
        return key
    if key.__class__ is int and -_SMALL < key < _SMALL:
        return str(key)
    return dotted((key,))


_SMALL = 10**70  # integers whose show() is their str()


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


def _too_many(line: int | None, top: list[Any]) -> Abort:
    """More values than MAX_YAML_VALUES as written, before any alias: refused
    while composing, before they fill the memory."""
    return Abort(line, dotted(top), f"the document holds more than {MAX_YAML_VALUES:,} values")


Read = tuple[Any, dict[str, int], dict[str, int], list[tuple[int, str, str]]]


# What YAML 1.1 counts as a line break besides "\n" (and "\r\n"): editors and
# `grep -n` do not, so lines after one would be off by one.
_ODD_BREAKS = re.compile("\r(?!\n)|[\x85\u2028\u2029]")
_YAML_BREAKS = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def read_yaml(text: str) -> Read:
    """Parse YAML into plain values, the line and column of every key path, and
    soft problems.

    Duplicate keys are soft problems (the first value is kept); syntax errors,
    unsupported tags, unreadable scalars, deep nesting, too many values and
    runaway or recursive aliases abort. Lines are counted as editors count them.
    """
    if not _ODD_BREAKS.search(text):
        return _read_yaml(text)
    # YAML's line k starts after its k-th break; the editor's line is one more
    # than the newlines before that.
    real, newlines = [1], 0
    for match in _YAML_BREAKS.finditer(text):
        newlines += match.group().endswith("\n")
        real.append(newlines + 1)

    def fixed(line: int | None) -> int | None:
        return real[line - 1] if line is not None and 0 < line <= len(real) else line

    try:
        doc, lines, columns, soft = _read_yaml(text)
    except Abort as abort:
        abort.line = fixed(abort.line)
        raise
    return (doc, {key: fixed(line) or line for key, line in lines.items()}, columns,
            [(fixed(line) or line, key, message) for line, key, message in soft])


def _read_yaml(text: str) -> Read:
    with gc_paused():
        if not _with_libyaml():
            return _read_nodes(text, libyaml=False)
        bad = _NON_PRINTABLE.search(text)
        if bad:  # as PyYAML's reader says it, before parsing anything
            raise _yaml_abort(yaml.reader.ReaderError(
                "<unicode string>", bad.start(), ord(bad.group()), "unicode",
                "special characters are not allowed"), text)
        try:
            return _read_libyaml(text)
        except _LibyamlTooDeep as deep:
            # libyaml refuses 1,000 levels while it scans ahead, before the
            # composer meets MAX_DEPTH: read the text up to there, where the
            # composer meets it as it does without libyaml.
            with contextlib.suppress(_LibyamlTooDeep):
                _read_libyaml(text[:deep.index])
            raise deep.abort from None


def _with_libyaml() -> bool:
    return (_CParser is not None and getattr(yaml, "__with_libyaml__", False)
            and not yaml.SafeLoader.yaml_path_resolvers)  # resolving by path: PyYAML's own


def _read_libyaml(text: str) -> Read:
    try:
        return _read_plain(text)
    except _NotPlain:
        pass  # read again out of the except clause: in it, the exception's
        # traceback would keep what _read_plain had built alive
    return _read_nodes(text, libyaml=True)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while reading (and, in topology.parse,
    while checking and building): a document is millions of young objects that
    all live, and looking through them again and again for cycles took longer
    than parsing (yaml.load with libyaml spends 3/4 of its time there). What
    cycles they leave are collected once it resumes."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# PyYAML's reader refuses these before parsing anything; libyaml as it meets
# them (and says where in bytes, not characters).
_NON_PRINTABLE = yaml.reader.Reader.NON_PRINTABLE


class _LibyamlTooDeep(Exception):
    """libyaml's own nesting limit (1,000 levels), met at character `index`."""

    def __init__(self, index: int, abort: Abort):
        super().__init__(abort.message)
        self.index, self.abort = index, abort


def _libyaml_nesting(exc: yaml.YAMLError) -> bool:
    """Is this libyaml refusing to nest 1,000 levels deep?"""
    return (isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None
            and exc.problem == "exceeded maximum nesting depth")


def _yaml_abort(exc: yaml.YAMLError, text: str) -> Abort:
    """A PyYAML error as one located line."""
    if isinstance(exc, yaml.reader.ReaderError):
        return Abort(text.count("\n", 0, exc.position) + 1, "", "not valid YAML: "
                      f"unacceptable character U+{exc.character:04X} ({exc.reason})")
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        if exc.context == "expected a single document in the stream":
            return SeveralDocuments(mark.line + 1 if mark else None, "",
                                    f"not valid YAML: {exc.problem or exc.context}")
        what = exc.problem or exc.context
        if exc.problem and exc.context_mark and "first occurrence" in (exc.context or ""):
            # "found duplicate anchor 'a'; first occurrence" (line 1), "second occurrence"
            what = f"{exc.context} (line {exc.context_mark.line + 1}); {exc.problem}"
        return Abort(mark.line + 1 if mark else None, "", f"not valid YAML: {what}")
    return Abort(None, "", f"not valid YAML: {str(exc).splitlines()[0]}")


_STR = yaml.resolver.BaseResolver.DEFAULT_SCALAR_TAG
_SEQ = yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG
_MAP = yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG
_MERGE = "tag:yaml.org,2002:merge"


def _implicit_tag(value: str) -> str:
    """The tag of a plain scalar, as PyYAML's safe loader resolves it."""
    resolvers = yaml.SafeLoader.yaml_implicit_resolvers
    for tag, regexp in resolvers.get(value[:1], []) + resolvers.get(None, []):
        if regexp.match(value):
            return tag
    return _STR


# --- every YAML: the node graph, counted, then walked ---------------------------


class _Loader(yaml.SafeLoader):
    """PyYAML's pure-Python safe loader, refusing to compose deeper than
    MAX_DEPTH or more than MAX_YAML_VALUES values (aliases count 1 here).

    PyYAML's composer recurses once per level, so 10,000 `[` would otherwise
    end in a RecursionError.
    """

    def __init__(self, text: str):
        super().__init__(text)
        self.depth = self.count = 0
        self.top: Any = None  # the top-level key being composed, for the message

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.depth == 1:
            self.top = index.value if isinstance(index, yaml.ScalarNode) else index
        if self.depth > MAX_DEPTH:
            raise _too_deep(self.peek_event().start_mark.line + 1,
                            [] if self.top is None else [self.top])
        self.count += 1
        if self.count > MAX_YAML_VALUES:
            raise _too_many(self.peek_event().start_mark.line + 1,
                            [] if self.top is None else [self.top])
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _compose(parser: Any) -> yaml.Node | None:
    """What `_Loader.get_single_node` does, on libyaml's events: PyYAML's
    composer, bounded as there (and with the same errors), minus what it
    spends on resolving by path (never done here) and end marks (unused)."""
    get, peek, check = parser.get_event, parser.peek_event, parser.check_event
    tags: dict[str, str] = {}  # a plain scalar's text -> its tag
    anchors: dict[str, yaml.Node] = {}
    depth = count = 0
    top: Any = None

    def compose(index: Any) -> yaml.Node:
        nonlocal depth, count, top
        if depth == 1:
            top = index.value if isinstance(index, yaml.ScalarNode) else index
        if depth > MAX_DEPTH:
            raise _too_deep(peek().start_mark.line + 1, [] if top is None else [top])
        count += 1
        if count > MAX_YAML_VALUES:
            raise _too_many(peek().start_mark.line + 1, [] if top is None else [top])
        event = get()
        kind, anchor, tag = event.__class__, event.anchor, getattr(event, "tag", None)
        if kind is AliasEvent:
            if anchor not in anchors:
                raise ComposerError(None, None, f"found undefined alias {anchor!r}",
                                    event.start_mark)
            return anchors[anchor]
        if anchor is not None and anchor in anchors:
            raise ComposerError(f"found duplicate anchor {anchor!r}; first occurrence",
                                anchors[anchor].start_mark, "second occurrence",
                                event.start_mark)
        node: yaml.Node
        if kind is ScalarEvent:
            value = event.value
            if tag is None or tag == "!":
                if event.implicit[0]:
                    tag = tags.get(value) or tags.setdefault(value, _implicit_tag(value))
                else:
                    tag = _STR
            node = yaml.ScalarNode(tag, value, event.start_mark)
            if anchor is not None:
                anchors[anchor] = node
            return node
        depth += 1
        if kind is SequenceStartEvent:
            node = yaml.SequenceNode(_SEQ if tag is None or tag == "!" else tag, [],
                                     event.start_mark)
            if anchor is not None:
                anchors[anchor] = node
            items = node.value
            while not check(SequenceEndEvent):
                items.append(compose(len(items)))
        else:
            node = yaml.MappingNode(_MAP if tag is None or tag == "!" else tag, [],
                                    event.start_mark)
            if anchor is not None:
                anchors[anchor] = node
            pairs = node.value
            while not check(MappingEndEvent):
                key = compose(None)
                pairs.append((key, compose(key)))
        get()
        depth -= 1
        return node

    try:
        get()  # the stream starts
        if check(StreamEndEvent):
            get()
            return None
        get()  # the document starts
        root = compose(None)
        get()  # the document ends
        if not check(StreamEndEvent):
            raise ComposerError("expected a single document in the stream", root.start_mark,
                                "but found another document", get().start_mark)
        get()
        return root
    finally:
        compose = None  # it calls itself: a cycle, holding the anchors, that the paused GC keeps


def _read_nodes(text: str, libyaml: bool) -> Read:
    """Compose the node graph, count it, then walk it into values: exact for
    every input, aliases and merge keys included."""
    try:
        loader = yaml.SafeLoader("") if libyaml else _Loader(text)  # builds the scalars
    except yaml.YAMLError as exc:
        raise _yaml_abort(exc, text) from None
    parser = _CParser(text) if libyaml else loader
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

    constructors = yaml.SafeLoader.yaml_constructors
    plain_str = constructors.get(_STR) is SafeConstructor.construct_yaml_str

    def walk(node: yaml.Node, depth: int, where: str, top: str) -> Any:
        """The value of `node`, `depth` keys down: at `where` (its path, dotted),
        under `top` (the top-level key, dotted)."""
        line = node.start_mark.line + 1
        ident = id(node)
        if ident in active:
            raise Abort(line, where, "recursive alias: the value contains itself")
        if depth > MAX_DEPTH:  # through aliases: the composer bounds the rest
            raise Abort(lines.get(top, line), top, f"nested deeper than {MAX_DEPTH} levels")
        if depth:
            total = sizes.get(ident) or size(node)
            if total > budget[0]:
                raise Abort(line, where, "the document expands to more than "
                             f"{MAX_YAML_VALUES:,} values (this value alone: {total:,}; "
                             "aliases?)")
        budget[0] -= 1
        tag = node.tag
        if tag not in constructors:
            raise Abort(line, where, f"unsupported YAML tag {show(tag)}")
        lines.setdefault(where, line)
        columns.setdefault(where, node.start_mark.column + 1)
        if isinstance(node, yaml.ScalarNode):
            if tag == _STR and plain_str:
                return node.value  # what construct_object gives, sooner
            try:
                return loader.construct_object(node)
            except yaml.YAMLError:
                raise
            except Exception as exc:  # PyYAML's own: '!!bool abc' is a KeyError, '!!int ""' ...
                kind = tag.rpartition(":")[2]
                detail = f" ({exc})" if isinstance(exc, ValueError) else ""
                raise Abort(line, where, f"not a valid {kind}: "
                             f"{show(node.value)}{detail}") from None
        prefix, down = (where + ".", depth + 1) if depth else ("", 1)
        active.add(ident)
        try:
            if isinstance(node, yaml.SequenceNode):
                items = []
                for index, item in enumerate(node.value):
                    entry = f"{prefix}{index}"
                    items.append(walk(item, down, entry, top if depth else entry))
                return items
            own = sum(k.tag != _MERGE for k, _ in node.value)
            loader.flatten_mapping(node)  # merged pairs first, then the mapping's own
            merged = len(node.value) - own
            chosen: dict[Any, tuple[yaml.Node, yaml.Node]] = {}
            own_lines: dict[Any, int] = {}
            keys = prefix + "<key>"
            for index, (key_node, value_node) in enumerate(node.value):
                if not isinstance(key_node, yaml.ScalarNode):
                    raise Abort(key_node.start_mark.line + 1, where,
                                 "a key must be a plain value, not a list or mapping")
                key = walk(key_node, down, keys, top if depth else keys)
                key_line = key_node.start_mark.line + 1
                try:
                    hash(key)
                except TypeError:  # a scalar tagged !!seq, !!set ...: [] would crash `in`
                    raise Abort(key_line, where, "a key must be a plain value, not a list or "
                                 "mapping") from None
                if index >= merged:  # the mapping's own key: written twice is a mistake
                    if key in own_lines:
                        soft.append((key_line, prefix + _part(key), f"duplicate key "
                                     f"{show(key)} (first at line {own_lines[key]})"))
                        continue
                    own_lines[key] = key_line
                # The later pair wins, as in PyYAML: the mapping's own keys override
                # merged ones, and flatten_mapping puts a merge list's earlier
                # mappings after its later ones (yaml.org/type/merge.html).
                chosen[key] = key_node, value_node
            result: dict[Any, Any] = {}
            for key, (key_node, value_node) in chosen.items():
                entry = prefix + _part(key)
                lines[entry] = key_node.start_mark.line + 1
                columns[entry] = key_node.start_mark.column + 1
                result[key] = walk(value_node, down, entry, top if depth else entry)
            return result
        finally:
            active.discard(ident)

    try:
        root = _compose(parser) if libyaml else loader.get_single_node()
        if root is None:
            lines[""] = 1
            return None, lines, columns, soft
        _refuse_bombs(root, size, loader)
        return walk(root, 0, "", ""), lines, columns, soft
    except yaml.YAMLError as exc:
        abort = _yaml_abort(exc, text)
        if libyaml and _libyaml_nesting(exc):
            raise _LibyamlTooDeep(exc.problem_mark.index, abort) from None
        raise abort from None
    except RecursionError:
        raise _too_deep(None, ()) from None
    finally:
        parser.dispose()
        walk = size = None  # they call themselves: cycles the paused GC would keep


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


# --- plain YAML: values straight from libyaml's events ---------------------------


class _NotPlain(Exception):
    """Something `_read_plain` leaves to `_read_nodes`."""


# The scalar tags `_read_plain` builds.
_PLAIN_TAGS = frozenset(f"tag:yaml.org,2002:{kind}" for kind in (
    "null", "bool", "int", "float", "timestamp", "binary", "str"))


def _read_plain(text: str) -> Read:
    """What `_read_nodes` reads from a plain document, built as libyaml's
    events come: no node graph, no second walk over it.

    "Plain": no anchors, aliases or merge keys, only scalar keys, each once,
    tags PyYAML's safe loader builds, and every scalar readable. Anything else raises
    _NotPlain, for `_read_nodes` to say exactly what it says. What the composer
    refuses (syntax errors, nesting deeper than MAX_DEPTH, more values than
    MAX_YAML_VALUES) aborts here as there: up to it, both read the same events.
    """
    resolvers = yaml.SafeLoader.yaml_implicit_resolvers
    if None in resolvers:
        raise _NotPlain  # resolving whatever a scalar starts with
    firsts = frozenset(resolvers)  # what implicit tags start with ("" for null)
    constructors = yaml.SafeLoader.yaml_constructors
    constructor = yaml.SafeLoader("")
    # A plain scalar's text -> its value, built once: the values are immutable
    # (None, bool, int, float, date, str), and PyYAML too builds every .nan as
    # one object, so a second .nan key is a duplicate either way.
    plain: dict[str, Any] = {}
    lines: dict[str, int] = {}
    columns: dict[str, int] = {}
    soft: list[tuple[int, str, str]] = []
    count = 0  # values as written, duplicates' included: as the composer counts
    top: Any = None  # the top-level key or index being read, for messages
    parser = _CParser(text)
    get, check = parser.get_event, parser.check_event

    def too_many(event: yaml.Event) -> Abort:
        return _too_many(event.start_mark.line + 1, [] if top is None else [top])

    def construct(tag: str, event: yaml.ScalarEvent) -> Any:
        node = yaml.ScalarNode(tag, event.value, event.start_mark)
        try:
            return constructors[tag](constructor, node)
        except Exception:  # "not a valid ...": _read_nodes says it, in its turn
            raise _NotPlain from None

    def scalar(event: yaml.ScalarEvent) -> Any:
        nonlocal count
        count += 1
        if count > MAX_YAML_VALUES:
            raise too_many(event)
        if event.anchor is not None:
            raise _NotPlain
        tag = event.tag
        if tag is None or tag == "!":
            value = event.value
            if not event.implicit[0] or value[:1] not in firsts:
                return value
            try:
                return plain[value]
            except KeyError:
                tag = _implicit_tag(value)
                if tag not in _PLAIN_TAGS:
                    raise _NotPlain from None  # a merge key (<<), a value key (=)
                result = plain[value] = value if tag == _STR else construct(tag, event)
                return result
        if tag not in _PLAIN_TAGS:
            raise _NotPlain
        return event.value if tag == _STR else construct(tag, event)

    def opened(event: yaml.Event, depth: int) -> None:
        """A sequence or mapping starts, at `depth` (its path's length)."""
        nonlocal count
        count += 1
        if count > MAX_YAML_VALUES:
            raise too_many(event)
        tag = event.tag
        if event.anchor is not None or (
                tag is not None and tag != "!" and tag not in constructors):
            raise _NotPlain
        if depth >= MAX_DEPTH and not check(SequenceEndEvent, MappingEndEvent):
            raise _too_deep(parser.peek_event().start_mark.line + 1,
                            [] if top is None else [top])

    def node(event: yaml.Event, path: str, depth: int) -> Any:
        kind = event.__class__
        if kind is ScalarEvent:
            return scalar(event)
        if kind is SequenceStartEvent:
            return sequence(event, path, depth)
        if kind is MappingStartEvent:
            return mapping(event, path, depth)
        raise _NotPlain  # an alias

    def sequence(event: yaml.Event, path: str, depth: int) -> list[Any]:
        nonlocal top
        opened(event, depth)
        result: list[Any] = []
        prefix = path + "." if depth else ""
        index = 0
        while True:
            event = get()
            kind = event.__class__
            if kind is SequenceEndEvent:
                return result
            if not depth:
                top = index
            item = f"{prefix}{index}"
            mark = event.start_mark
            lines.setdefault(item, mark.line + 1)
            columns.setdefault(item, mark.column + 1)
            result.append(scalar(event) if kind is ScalarEvent else node(event, item, depth + 1))
            index += 1

    def mapping(event: yaml.Event, path: str, depth: int) -> dict[Any, Any]:
        nonlocal top
        opened(event, depth)
        result: dict[Any, Any] = {}
        prefix = path + "." if depth else ""
        keys: str | None = prefix + "<key>"  # only the first key's setdefault can set it
        while True:
            event = get()
            kind = event.__class__
            if kind is MappingEndEvent:
                return result
            if not depth:
                top = None
            if kind is not ScalarEvent:
                raise _NotPlain  # a list, mapping or alias as a key
            key = scalar(event)
            if not depth:
                top = event.value
            mark = event.start_mark
            line, column = mark.line + 1, mark.column + 1
            if keys is not None:
                lines.setdefault(keys, line)
                columns.setdefault(keys, column)
                keys = None
            entry = prefix + _part(key)
            if key in result:  # a mistake: _read_nodes says where the first is, exactly
                raise _NotPlain  # (true after 1, or 1 after '1' and 1: the lines can't)
            lines[entry] = line
            columns[entry] = column
            event = get()
            result[key] = scalar(event) if event.__class__ is ScalarEvent \
                else node(event, entry, depth + 1)

    try:
        get()  # the stream starts
        if check(StreamEndEvent):
            lines[""] = 1
            return None, lines, columns, soft
        get()  # the document starts
        event = get()
        mark = event.start_mark
        lines[""], columns[""] = mark.line + 1, mark.column + 1
        doc = node(event, "", 0)
        get()  # the document ends
        if not check(StreamEndEvent):
            raise _NotPlain  # another document: _read_nodes says where
    except yaml.YAMLError as exc:
        abort = _yaml_abort(exc, text)
        if _libyaml_nesting(exc):
            raise _LibyamlTooDeep(exc.problem_mark.index, abort) from None
        raise abort from None
    finally:
        parser.dispose()
        node = sequence = mapping = None  # they call each other: cycles the paused GC would keep
    return doc, lines, columns, soft


# --- JSON ---------------------------------------------------------------------


def read_json(text: str) -> Read:
    """Parse JSON (the same schema) into plain values and soft problems.

    Read at C speed, without line numbers: json_positions finds them, in a
    second, pure-Python pass, only for a file with a problem. Duplicate keys
    are soft problems (the first value is kept, as in YAML); JSON object keys
    are strings, so the hop limits of `expect` ("1") become integers. msgspec,
    when installed, reads a text it can prove has no duplicate key (see
    _fast_json); anything else, each error included, is read by json below.
    """
    _count_json_values(text)
    doc = _fast_json(text)
    if doc is not None:
        return _with_expect(doc), {}, {}, []
    duplicated = False

    def first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal duplicated
        mapping = dict(pairs)  # in C; a fleet has 100,000s of objects
        if len(mapping) == len(pairs):
            return mapping
        duplicated = True
        mapping = {}
        for key, value in pairs:
            mapping.setdefault(key, value)
        return mapping

    try:
        doc = json.loads(text, object_pairs_hook=first_wins)
    except json.JSONDecodeError as exc:
        raise Abort(exc.lineno, "", f"not valid JSON: {exc.msg} (column {exc.colno})") \
            from None
    except RecursionError:
        raise _too_deep(_too_deep_json(text), ()) from None
    except ValueError:  # an integer past MAX_DIGITS digits
        raise _too_long_number(text) from None
    lines: dict[str, int] = {}
    columns: dict[str, int] = {}
    soft = []
    if duplicated:
        lines, columns, duplicates = json_positions(text)
        soft = [(line, entry, f"duplicate key {show(key)} (first at line {lines.get(entry)})")
                for line, entry, key in duplicates]
    return _with_expect(doc), lines, columns, soft


def _with_expect(doc: Any) -> Any:
    """`expect`'s hop limits as integers: JSON object keys are strings."""
    if isinstance(doc, dict) and isinstance(doc.get("expect"), dict):
        doc["expect"] = {int(k) if k.isdecimal() and len(k) < 8 else k: v
                         for k, v in doc["expect"].items()}
    return doc


def _fast_json(text: str) -> Any:
    """The document as msgspec reads it (twice json's speed), or None where it
    might differ from json.loads keeping the first of duplicate keys: msgspec
    not installed, any error (json then says where), or a duplicate key, which
    msgspec keeps the last of. A valid JSON text holds one colon per object
    entry plus those inside strings, and msgspec writes each back (it escapes
    none); a duplicate's entry, dropped, takes at least one colon with it. So
    equal counts prove there is none, unless a colon was written escaped
    (\\u003a), which the text is checked for. msgspec refuses what json would
    read otherwise (NaN, Infinity, 1e400, a lone surrogate) or not at all (an
    integer past 4,300 digits): those fall back too."""
    try:
        import msgspec
    except ImportError:
        return None
    if "\\u003" in text:  # the escaped colon, and a few characters near it
        return None
    try:
        doc = msgspec.json.decode(text)
    except Exception:  # whatever it is, json reads it and says where
        return None
    if msgspec.json.encode(doc).count(b":") != text.count(":"):
        return None
    return doc


_LONG_NUMBER = re.compile(rf"[0-9]{{{MAX_DIGITS + 1}}}")
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _too_long_number(text: str) -> Abort:
    found = _LONG_NUMBER.search(text)
    line = text.count("\n", 0, found.start()) + 1 if found else None
    return Abort(line, "", f"a number longer than {MAX_DIGITS:,} digits")


def _too_deep_json(text: str) -> int | None:
    """The line where JSON text opens its (MAX_DEPTH + 1)th level."""
    depth = 0
    for match in re.finditer(r'"(?:[^"\\]|\\.)*"|[][{}]', text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return text.count("\n", 0, match.start()) + 1
        elif token in "]}":
            depth -= 1
    return None


def _count_json_values(text: str) -> None:
    """Refuse JSON with more than MAX_YAML_VALUES values, keys counted as YAML
    counts them, before json builds them (tens of bytes of memory each).
    Commas, colons and brackets bound the count from above, counted in C;
    only a text over the bound is counted again without its strings, which
    may hold commas and colons of their own."""
    def bound(t: str) -> int:
        return t.count(",") + t.count(":") + t.count("[") + t.count("{") + 1
    if bound(text) <= MAX_YAML_VALUES:
        return
    if bound(_JSON_STRING.sub('""', text)) > MAX_YAML_VALUES:
        raise _too_many(None, [])


# A token of a valid JSON text: a string (which holds no raw newline), a
# punctuation mark, or a number, true, false or null.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[][{}:,]|[^\s][^][{}:,\s"]*')


class _Container:
    """An object or array being read: the prefix of its entries' dotted paths
    (None inside a duplicate key's value, which is not read)."""

    def __init__(self, prefix: str | None, is_object: bool):
        self.prefix, self.is_object = prefix, is_object
        self.index = 0  # an array's next item
        self.keys: set[str] = set()
        self.expect_key = is_object


def json_positions(text: str) -> tuple[dict[str, int], dict[str, int],
                                       list[tuple[int, str, str]]]:
    """The line and column of each key and array item of a valid JSON text,
    by dotted path, as read_yaml gives them; and its duplicate keys (line,
    dotted path, key)."""
    lines: dict[str, int] = {}
    columns: dict[str, int] = {}
    duplicates: list[tuple[int, str, str]] = []
    open_: list[_Container] = []
    path: str | None = ""  # the value read next
    line, line_start, scanned = 1, 0, 0
    for match in _JSON_TOKEN.finditer(text):
        start, token = match.start(), match.group()
        newlines = text.count("\n", scanned, start)
        if newlines:
            line += newlines
            line_start = text.rindex("\n", scanned, start) + 1
        scanned = start
        column = start - line_start + 1
        inside = open_[-1] if open_ else None
        if inside is not None and inside.expect_key and token[0] == '"':
            key = json.loads(token)
            inside.expect_key = False
            if inside.prefix is None:
                path = None
                continue
            path = inside.prefix + _part(key)
            lines.setdefault(inside.prefix + "<key>", line)
            columns.setdefault(inside.prefix + "<key>", column)
            if key in inside.keys:
                duplicates.append((line, path, key))
                path = None  # its value is not read, as in YAML
                continue
            inside.keys.add(key)
            lines[path], columns[path] = line, column
        elif token == ":":
            continue
        elif token == ",":
            inside.expect_key = inside.is_object  # type: ignore[union-attr]
            inside.index += 1  # type: ignore[union-attr]
        elif token in "]}":
            open_.pop()
        else:  # a value starts
            if inside is not None and not inside.is_object:
                path = None if inside.prefix is None else inside.prefix + str(inside.index)
                if path is not None:
                    lines.setdefault(path, line)
                    columns.setdefault(path, column)
            elif inside is None:
                lines[""], columns[""] = line, column
            if token in "[{":
                prefix = None if path is None else (path + "." if open_ else "")
                open_.append(_Container(prefix, token == "{"))
    return lines, columns, duplicates

"""Text from files other people write: what a name may be, and how any text
is shown.

Names are restricted, not normalised: a name is how a reviewer tells two
principals apart, so one that could look like another, or hide what it is,
is refused with its file and line (`name_problem`), rather than silently
changed into something the file does not say. Refused: an empty name, `.`
and `..`; any control, format (bidi overrides, zero-width), surrogate,
private-use, unassigned or line/paragraph-separator character, and any space
other than U+0020; a name that Unicode NFKC normalisation changes (fullwidth
letters, ligatures: write it as NFKC does); letters of more than one script
in one name (a Cyrillic "а" among Latin letters). Names in one script other
than Latin are fine.

Free text (descriptions, file names found in a folder) is not refused but
escaped wherever it is shown (`shown`): in the terminal, Markdown, SVG and
HTML, a control or invisible character becomes its visible escape (`\\x1b`,
`\\u202e`), so a file cannot rewrite a terminal or CI log, reorder what a
reviewer reads, or make a picture that is not well-formed XML.
"""

from __future__ import annotations

import re
import unicodedata

# The ASCII characters not shown as themselves (tab and newline are kept);
# non-ASCII text is tested per character (`_hidden`).
_ASCII_HIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _hidden(ch: str) -> bool:
    category = unicodedata.category(ch)
    return (category[0] == "C" and ch not in "\t\n") or category in ("Zl", "Zp") or (
        category == "Zs" and ch != " ")


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def shown(text: object) -> str:
    """`text` with every control or invisible character as its escape, for any
    output a person reads (tab and newline kept: renderers fold them)."""
    value = str(text)
    if value.isascii():
        return _ASCII_HIDDEN.sub(lambda m: _escape(m.group()), value)
    return "".join(_escape(ch) if _hidden(ch) else ch for ch in value)


def _script(ch: str) -> str | None:
    """The script of a letter, by its Unicode name (LATIN, CYRILLIC, GREEK ...)."""
    if not unicodedata.category(ch).startswith("L"):
        return None
    try:
        return unicodedata.name(ch).split()[0]
    except ValueError:
        return None


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a node, unit or topology, or None."""
    if name == "":
        return "a name cannot be empty"
    if name in (".", "..") or any(part in (".", "..") for part in name.split("/")):
        return f"a name cannot be {name!r}"
    if name.isascii():
        found = _ASCII_HIDDEN.search(name) or re.search(r"[\t\n]", name)
        if found:
            return (f"a name cannot hold the control character "
                    f"{_escape(found.group())}: '{shown(name)}'")
        return None
    for ch in name:
        if _hidden(ch) or ch in "\t\n":
            label = unicodedata.name(ch, unicodedata.category(ch))
            return (f"a name cannot hold the invisible or control character "
                    f"{_escape(ch)} ({label}): '{shown(name)}'")
    normal = unicodedata.normalize("NFKC", name)
    if normal != name:
        return f"write the name as Unicode NFKC does, {normal!r}, not '{shown(name)}'"
    scripts = sorted({s for s in map(_script, name) if s})
    if len(scripts) > 1:
        return (f"a name mixes letters of {' and '.join(scripts)}, which can look alike: "
                f"'{shown(name)}'")
    return None


def name_problems(names: list[str]) -> dict[str, str]:
    """name_problem of each of `names` that has one, in one pass for a fleet's
    100,000s: the names, joined, are searched for ASCII control characters at
    once; only an empty name, one holding a dot and one not in ASCII are looked
    at alone (all of them, when a control character is somewhere)."""
    joined = "".join(names)
    if _ASCII_HIDDEN.search(joined) or _TAB_OR_NEWLINE.search(joined):
        suspects = names
    elif joined.isascii():
        suspects = [name for name in names if not name or "." in name]
    else:
        suspects = [name for name in names if not name or "." in name or not name.isascii()]
    return {name: problem for name in suspects if (problem := name_problem(name))}


_TAB_OR_NEWLINE = re.compile(r"[\t\n]")


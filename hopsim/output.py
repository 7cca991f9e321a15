"""Output files: reports, pictures, pcaps and generated topologies, written
atomically and never onto an input of the run.

A temporary file in the same folder is renamed over the target when complete,
so a failure, a full disk or a signal (hopsim.interrupts) leaves the previous
file as it was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


class OutputError(Exception):
    """A file that cannot or must not be written; the message says which and why."""


def an_input(file: str, inputs: Iterable[str]) -> str | None:
    """The one of `inputs` that `file` is (the same file, by any path), or None."""
    try:
        target = Path(file).stat()
    except OSError:
        return None
    for given in inputs:
        try:
            found = Path(given).stat()
        except OSError:
            continue
        if (found.st_dev, found.st_ino) == (target.st_dev, target.st_ino):
            return given
    return None


def refuse_inputs(file: str, inputs: Iterable[str]) -> None:
    """OutputError if writing `file` would overwrite one of `inputs`."""
    given = an_input(file, inputs)
    if given is not None:
        raise OutputError(f"{file}: is {given!r}, an input of this run: it would be "
                          "overwritten; write to another file")


def write(file: str, pieces: Iterable[str] | bytes, inputs: Iterable[str] = ()) -> None:
    """Write FILE (text as UTF-8): the one place output files are written.
    Atomic, through a symlink rather than over it; a device or FIFO already
    there (/dev/null) is written through. OutputError when it cannot be."""
    refuse_inputs(file, inputs)
    path = Path(os.path.realpath(file))  # through a symlink, not over it
    try:
        if os.path.exists(path) and not os.path.isfile(path):  # /dev/null, a FIFO: not ours
            with open(path, "wb") as stream:
                stream.write(pieces if isinstance(pieces, bytes) else
                             "".join(pieces).encode("utf-8"))
            return
        atomically(path, pieces)
    except OSError as exc:
        raise OutputError(f"{file}: cannot write: {exc.strerror or exc}") from None


def atomically(path: Path, pieces: Iterable[str] | bytes) -> None:
    """Write `path` by renaming a complete temporary file over it, with the
    mode the file had (or the umask's, for a new one)."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:64]}.",
                                     suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as stream:
            if isinstance(pieces, bytes):
                stream.write(pieces)
            else:
                for piece in pieces:
                    stream.write(piece.encode("utf-8"))
            stream.flush()
            os.fsync(stream.fileno())
        try:
            mode = path.stat().st_mode & 0o7777
        except OSError:  # a new file: what open() would have made
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise

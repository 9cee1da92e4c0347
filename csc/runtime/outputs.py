"""Output locations checked before any work: writable folders and files, cleaned up on failure.

Long jobs check that their output can be written *before* computing (an hour of coding
lost to a read-only folder is the failure this prevents), and a job that fails before it
has written anything leaves no empty folders behind.

- :func:`prepare_dir` makes a folder (and its missing parents) and proves it writable with
  a probe file; :func:`prepare_file_parent` does the same for a file's folder.
- :func:`output_dir` does it as a context manager that removes the folders it created when
  the body raises while they are still empty.
- Each raises :class:`OutputError` (a ``ValueError``) with one line naming the argument and
  the path, e.g. ``--out: cannot write to '/data/run': Read-only file system``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

__all__ = ["OutputError", "output_dir", "prepare_dir", "prepare_file_parent", "remove_if_empty"]


class OutputError(ValueError):
    """An output folder or file that cannot be written."""


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _missing_parents(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, deepest first."""
    out, p = [], path
    while not p.exists() and p != p.parent:
        out.append(p)
        p = p.parent
    return out


def prepare_dir(path: str | os.PathLike, arg: str) -> list[Path]:
    """Create folder ``path`` if needed and check that files can be written in it.

    Returns the folders created (deepest first), for :func:`remove_if_empty`.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{arg}: {str(path)!r} is a file, expected a folder")
    created = _missing_parents(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".csc-write-probe.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        remove_if_empty(created)
        raise OutputError(f"{arg}: cannot write to {str(path)!r}: {_why(exc)}") from None
    return created


def prepare_file_parent(path: str | os.PathLike, arg: str) -> list[Path]:
    """Check that file ``path`` can be written: not a folder, its folder writable (created
    if needed). Returns the folders created."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{arg}: {str(path)!r} is a folder, expected a file name")
    try:
        return prepare_dir(path.parent, arg)
    except OutputError as exc:
        raise OutputError(f"{arg}: cannot write {str(path)!r}: {str(exc).split(': ', 1)[1]}") from None


def remove_if_empty(folders: list[Path]) -> None:
    """Remove each of ``folders`` (deepest first) that is empty; stop at the first that is not."""
    for d in folders:
        try:
            d.rmdir()
        except OSError:
            return


@contextlib.contextmanager
def output_dir(path: str | os.PathLike, arg: str) -> Iterator[Path]:
    """:func:`prepare_dir`, then the body; if the body raises, the folders created here are
    removed again when nothing was written into them."""
    created = prepare_dir(path, arg)
    try:
        yield Path(path)
    except BaseException:
        remove_if_empty(created)
        raise

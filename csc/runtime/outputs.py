"""Output locations checked before any work: writable folders and files, cleaned up on failure.

Long jobs check that their output can be written *before* computing (an hour of coding
lost to a read-only folder is the failure this prevents), and a job that fails before it
has written anything leaves no empty folders behind.

- :func:`prepare_dir` makes a folder (and its missing parents) and proves it writable with
  a probe file; :func:`prepare_file_parent` does the same for a file's folder.
- :func:`output_dir` does it as a context manager that removes the folders it created when
  the body raises while they are still empty.
- :func:`claim_dir` and :func:`claim_file` also refuse an output that holds something the
  command did not write (an earlier run's files included, except those the command
  resumes), unless the user asked to replace it (``--overwrite``).
- Every one of them refuses an empty path (which would mean the working folder).
- Each raises :class:`OutputError` (a ``ValueError``) with one line naming the argument and
  the path, e.g. ``--out: cannot write to '/data/run': Read-only file system``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["OutputError", "check_given", "claim_dir", "claim_file", "output_dir", "prepare_dir",
           "prepare_file_parent", "refuse_foreign", "remove_if_empty"]


class OutputError(ValueError):
    """An output folder or file that cannot be written."""


_PROBE = ".csc-write-probe."


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _missing_parents(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, deepest first."""
    out, p = [], path
    while not p.exists() and p != p.parent:
        out.append(p)
        p = p.parent
    return out


def check_given(path, arg: str) -> Path:
    """``path`` as a Path; OutputError naming ``arg`` for an empty one (it would write into the
    working folder without the user naming it) or one that is not a path."""
    if not isinstance(path, (str, os.PathLike)) or not str(os.fspath(path)).strip():
        raise OutputError(f"{arg}: expected a file or folder name, got {path!r} (an empty path would write "
                          "into the working folder)")
    return Path(path)


def _listing(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def refuse_foreign(path, arg: str, overwrite: bool = False, ours: Callable[[Path], bool] = lambda p: False,
                   flag: str = "--overwrite") -> Path:
    """OutputError naming ``arg`` unless ``path`` is given and, as a folder, holds only entries
    that are ``ours`` (the command's own resumable outputs; default none: an earlier run's
    files are refused too), or ``overwrite``. Reads only."""
    path = check_given(path, arg)
    if path.is_dir() and not overwrite:
        foreign = sorted(p.name for p in path.iterdir() if not ours(p) and not p.name.startswith(_PROBE))
        if foreign:
            raise OutputError(f"{arg}: {str(path)!r} already holds {_listing(foreign)}, which this command would "
                              f"not resume; choose a new or empty folder, or pass {flag} to write into it")
    return path


def claim_dir(path, arg: str, overwrite: bool = False, ours: Callable[[Path], bool] = lambda p: False,
              flag: str = "--overwrite") -> list[Path]:
    """:func:`refuse_foreign`, then :func:`prepare_dir`. Returns the folders created."""
    return prepare_dir(refuse_foreign(path, arg, overwrite, ours, flag), arg)


def claim_file(path, arg: str, overwrite: bool = False, ours: Callable[[Path], bool] = lambda p: False,
               flag: str = "--overwrite") -> list[Path]:
    """:func:`prepare_file_parent`, refusing a file that exists (unless it is ``ours``) unless
    ``overwrite``. Returns the folders created."""
    path = check_given(path, arg)
    if path.is_file() and not overwrite and not ours(path):
        raise OutputError(f"{arg}: {str(path)!r} already exists; choose another name, or pass {flag} to replace it")
    return prepare_file_parent(path, arg)


def prepare_dir(path: str | os.PathLike, arg: str) -> list[Path]:
    """Create folder ``path`` if needed and check that files can be written in it.

    Returns the folders created (deepest first), for :func:`remove_if_empty`.
    """
    path = check_given(path, arg)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{arg}: {str(path)!r} is a file, expected a folder")
    created = _missing_parents(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=_PROBE, dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        remove_if_empty(created)
        raise OutputError(f"{arg}: cannot write to {str(path)!r}: {_why(exc)}") from None
    return created


def prepare_file_parent(path: str | os.PathLike, arg: str) -> list[Path]:
    """Check that file ``path`` can be written: not a folder, its folder writable (created
    if needed). Returns the folders created."""
    path = check_given(path, arg)
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
def output_dir(path: str | os.PathLike, arg: str, **claim) -> Iterator[Path]:
    """:func:`prepare_dir` (with ``claim`` keywords ``overwrite``, ``ours``, ``flag``:
    :func:`claim_dir`), then the body; if the body raises, the folders created here are
    removed again when nothing was written into them."""
    created = claim_dir(path, arg, **claim) if claim else prepare_dir(path, arg)
    try:
        yield Path(path)
    except BaseException:
        remove_if_empty(created)
        raise

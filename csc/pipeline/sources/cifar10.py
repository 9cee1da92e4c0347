"""CIFAR-10 (Krizhevsky 2009) from the official archives in a user-given folder.

CIFAR-10 cannot be downloaded on these machines; point :func:`load_cifar10` at a copy
of either official distribution from https://www.cs.toronto.edu/~kriz/cifar.html:

* **binary version** — ``data_batch_1.bin`` … ``data_batch_5.bin``, ``test_batch.bin``;
  each is a sequence of 3073-byte records: 1 label byte, then 3072 pixel bytes, the
  1024 red values of the 32×32 image in row-major order, then green, then blue;
* **python version** — ``data_batch_1`` … ``data_batch_5``, ``test_batch``; each a
  pickled dict whose ``data`` entry is a uint8 array (N, 3072) laid out as above and
  ``labels`` a list of N ints.

``root`` may be the folder holding the batch files, a folder holding the extracted
``cifar-10-batches-bin/`` or ``cifar-10-batches-py/`` sub-folder, a folder holding the
downloaded ``cifar-10-binary.tar.gz`` / ``cifar-10-python.tar.gz``, or the ``.tar.gz``
file itself (read in place, nothing is extracted). The binary version is preferred
when both are present.

Security note: the python version is a pickle, and loading it cannot be avoided for
that format. It is read with a *restricted* unpickler that only resolves the globals
needed to rebuild numpy arrays (``numpy.core.multiarray._reconstruct``,
``numpy.ndarray``, ``numpy.dtype``, ``numpy.core.numeric._frombuffer``, plus
``_codecs.encode`` limited to latin-1) and refuses every other global, so a crafted
file cannot run code. Prefer the binary version when you can.
"""

from __future__ import annotations

import codecs
import io
import pickle
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import numpy as np

from .fashion_mnist import DatasetFormatError, DatasetNotFoundError

__all__ = ["CIFAR10", "CIFAR10_CLASSES", "load_cifar10"]

#: Class names, index = label (``batches.meta`` of the official archives).
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

_RECORD = 1 + 3 * 32 * 32
_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
_TEST = ["test_batch"]
_ARCHIVES = {"bin": "cifar-10-binary.tar.gz", "py": "cifar-10-python.tar.gz"}
_SUBDIRS = {"bin": "cifar-10-batches-bin", "py": "cifar-10-batches-py"}
_HINT = (
    "CIFAR-10 cannot be downloaded here: copy the official binary or python version "
    "(https://www.cs.toronto.edu/~kriz/cifar.html) into a folder and pass it as root"
)


@dataclass(frozen=True)
class CIFAR10:
    """One split of CIFAR-10.

    Attributes
    ----------
    images : np.ndarray, uint8, shape (N, 3, 32, 32)
        Channel-first R, G, B pixel values 0–255 (the archives' own layout; use
        ``images.transpose(0, 2, 3, 1)`` for (N, 32, 32, 3)).
    labels : np.ndarray, int64, shape (N,)
        Class indices 0–9.
    class_names : tuple of str
        ``class_names[label]`` (:data:`CIFAR10_CLASSES`).
    split : {"train", "test"}
    source : str
        The file(s) or archive the split was read from.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    split: str
    source: str

    def __len__(self) -> int:
        return int(self.images.shape[0])


# ------------------------------------------------------------------ restricted pickle


def _latin1_encode(obj, encoding: str = "utf-8", errors: str = "strict"):
    # Protocol-2 pickles of bytes written by Python 3 call _codecs.encode(str, "latin1").
    if codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return codecs.encode(obj, encoding, errors)


def _allowed_globals() -> dict[tuple[str, str], Callable | type]:
    try:
        from numpy._core import multiarray as _ma, numeric as _num  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray as _ma, numeric as _num  # type: ignore[no-redef]
    table: dict[tuple[str, str], Callable | type] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    for mod in ("numpy.core", "numpy._core"):
        table[(f"{mod}.multiarray", "_reconstruct")] = _ma._reconstruct
        table[(f"{mod}.multiarray", "scalar")] = _ma.scalar
        if hasattr(_num, "_frombuffer"):
            table[(f"{mod}.numeric", "_frombuffer")] = _num._frombuffer
    return table


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the numpy array-reconstruction globals."""

    _allowed = _allowed_globals()

    def find_class(self, module: str, name: str):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"global {module}.{name} is not allowed in a CIFAR-10 batch (only numpy arrays, "
                "lists, dicts, strings and numbers are)"
            ) from None


def _load_pickle(data: bytes, name: str) -> dict:
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise DatasetFormatError(f"{name}: refused or corrupt pickle: {exc}") from exc
    except Exception as exc:  # EOFError, ValueError, TypeError, ... from malformed data
        raise DatasetFormatError(f"{name}: corrupt or truncated pickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict):
        raise DatasetFormatError(f"{name}: expected a pickled dict, got {type(obj).__name__}")
    return obj


def _get(d: dict, key: str, name: str):
    for k in (key, key.encode()):
        if k in d:
            return d[k]
    raise DatasetFormatError(f"{name}: pickled batch has no {key!r} entry (keys: {sorted(map(repr, d))})")


# ------------------------------------------------------------------------- parsing


def _check_labels(labels: np.ndarray, name: str) -> np.ndarray:
    if labels.size and int(labels.max()) >= len(CIFAR10_CLASSES):
        raise DatasetFormatError(f"{name}: label {int(labels.max())} out of range 0-9")
    return labels.astype(np.int64)


def _parse_bin(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    if len(data) == 0:
        raise DatasetFormatError(f"{name}: empty file")
    if len(data) % _RECORD:
        raise DatasetFormatError(
            f"{name}: {len(data)} bytes is not a whole number of {_RECORD}-byte records "
            f"(1 label + 3072 pixels); the file is truncated or not a CIFAR-10 binary batch"
        )
    rec = np.frombuffer(data, dtype=np.uint8).reshape(-1, _RECORD)
    labels = _check_labels(rec[:, 0], name)
    images = rec[:, 1:].reshape(-1, 3, 32, 32).copy()
    return images, labels


def _parse_py(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    d = _load_pickle(data, name)
    raw = _get(d, "data", name)
    labels = np.asarray(_get(d, "labels", name))
    if not isinstance(raw, np.ndarray) or raw.dtype != np.uint8 or raw.ndim != 2 or raw.shape[1] != 3072:
        desc = f"{raw.dtype} {raw.shape}" if isinstance(raw, np.ndarray) else type(raw).__name__
        raise DatasetFormatError(f"{name}: 'data' must be a uint8 array of shape (N, 3072), got {desc}")
    if labels.ndim != 1 or labels.shape[0] != raw.shape[0] or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetFormatError(f"{name}: 'labels' must hold {raw.shape[0]} integers, got {labels.dtype} {labels.shape}")
    if labels.size and int(labels.min()) < 0:
        raise DatasetFormatError(f"{name}: negative label {int(labels.min())}")
    return raw.reshape(-1, 3, 32, 32).copy(), _check_labels(labels, name)


# ------------------------------------------------------------------------- sources


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DatasetNotFoundError(f"{path}: cannot be read ({exc.strerror or exc})") from exc


def _from_folder(folder: Path, fmt: str, names: list[str]) -> tuple[list[tuple[bytes, str]], str] | None:
    suffix = ".bin" if fmt == "bin" else ""
    paths = [folder / (n + suffix) for n in names]
    present = [p for p in paths if p.is_file()]
    if not present:
        return None
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DatasetNotFoundError(f"CIFAR-10 folder {folder} lacks {', '.join(missing)}; {_HINT}")
    return [(_read_file(p), str(p)) for p in paths], str(folder)


def _from_archive(path: Path, names: list[str]) -> tuple[list[tuple[bytes, str]], str, str]:
    """Read the wanted batches from an official .tar.gz; return (files, fmt, source)."""
    try:
        with tarfile.open(path, mode="r:*") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
            fmt = "bin" if any(k.endswith(".bin") for k in members) else "py"
            suffix = ".bin" if fmt == "bin" else ""
            missing = [n + suffix for n in names if n + suffix not in members]
            if missing:
                raise DatasetFormatError(f"{path}: archive lacks {', '.join(missing)}; is it the CIFAR-10 archive?")
            out = []
            for n in names:
                f = tar.extractfile(members[n + suffix])
                assert f is not None
                out.append((f.read(), f"{path}:{n + suffix}"))
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DatasetFormatError(f"{path}: corrupt or truncated archive ({type(exc).__name__}: {exc})") from exc
    return out, fmt, str(path)


def load_cifar10(root: str | Path, split: Literal["train", "test"] = "train") -> CIFAR10:
    """Load the training (50 000) or test (10 000) split of CIFAR-10.

    Parameters
    ----------
    root : str or Path
        Folder with the batch files (binary ``*.bin`` or python pickles), a folder with
        ``cifar-10-batches-bin/`` / ``cifar-10-batches-py/`` or the official
        ``.tar.gz`` in it, or the path of the ``.tar.gz`` itself.
    split : {"train", "test"}, optional (default "train")
        ``"train"`` reads ``data_batch_1`` … ``data_batch_5``; ``"test"`` reads
        ``test_batch``.

    Returns
    -------
    CIFAR10
        ``images`` uint8 (N, 3, 32, 32), ``labels`` int64 (N,), ``class_names``.

    Raises
    ------
    DatasetNotFoundError
        Nothing usable found at ``root`` or a batch file is missing.
    DatasetFormatError
        A file is truncated or corrupt, a pickle is refused, or an archive is damaged.

    Notes
    -----
    The python version is unpickled with a restricted unpickler (numpy arrays and
    plain containers only); see the module docstring.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    names = _TRAIN if split == "train" else _TEST
    root = Path(root)
    found: tuple[list[tuple[bytes, str]], str, str] | None = None
    if root.is_file():
        found = _from_archive(root, names)
    elif root.is_dir():
        for fmt in ("bin", "py"):
            for folder in (root, root / _SUBDIRS[fmt]):
                if folder.is_dir():
                    hit = _from_folder(folder, fmt, names)
                    if hit is not None:
                        found = (hit[0], fmt, hit[1])
                        break
            if found is not None:
                break
        if found is None:
            for fmt in ("bin", "py"):
                archive = root / _ARCHIVES[fmt]
                if archive.is_file():
                    found = _from_archive(archive, names)
                    break
    else:
        raise DatasetNotFoundError(f"CIFAR-10 root {root} does not exist; {_HINT}")
    if found is None:
        raise DatasetNotFoundError(
            f"no CIFAR-10 {split} batches in {root} (looked for {names[0]}.bin, {names[0]}, "
            f"{_SUBDIRS['bin']}/, {_SUBDIRS['py']}/, {_ARCHIVES['bin']}, {_ARCHIVES['py']}); {_HINT}"
        )
    files, fmt, source = found
    parse = _parse_bin if fmt == "bin" else _parse_py
    parts = [parse(data, name) for data, name in files]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return CIFAR10(images=images, labels=labels, class_names=CIFAR10_CLASSES, split=split, source=source)

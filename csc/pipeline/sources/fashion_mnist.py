"""Fashion-MNIST from IDX files (Xiao, Rasul & Vollgraf 2017).

70 000 grayscale 28×28 images of 10 clothing classes: 60 000 for training, 10 000 for
testing. On Debian/Ubuntu the package ``dataset-fashion-mnist`` installs the four
official gzip files in ``/usr/share/datasets/fashion-mnist/``::

    train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
    t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz

The loader also accepts the same files uncompressed, the ``train-images.idx3-ubyte``
spelling some mirrors use, and torchvision's download folder (``FashionMNIST/raw``).

The IDX header is parsed here (no third-party reader): two zero bytes, a type code
(0x08 unsigned byte, 0x09 signed byte, 0x0B int16, 0x0C int32, 0x0D float32,
0x0E float64), the number of dimensions, then each dimension as a big-endian uint32;
the data follows in big-endian order. Sizes are checked against the header.

This module also defines the errors every loader in :mod:`csc.pipeline.sources` raises:
:class:`DatasetNotFoundError` and :class:`DatasetFormatError`.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

__all__ = [
    "DEFAULT_FASHION_MNIST_DIR",
    "FASHION_MNIST_CLASSES",
    "DatasetFormatError",
    "DatasetNotFoundError",
    "FashionMNIST",
    "load_fashion_mnist",
    "read_idx",
]

#: Where the Debian package ``dataset-fashion-mnist`` installs the files.
DEFAULT_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

#: Class names, index = label (from the dataset's README).
FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

_INSTALL_HINT = (
    "install it with `apt-get install -y dataset-fashion-mnist` (files go to "
    f"{DEFAULT_FASHION_MNIST_DIR}/) or pass root= a folder holding the IDX files"
)


class DatasetNotFoundError(FileNotFoundError):
    """A dataset folder or one of its files does not exist; the message says how to get it."""


class DatasetFormatError(ValueError):
    """A dataset file exists but is truncated, corrupt or not in the expected format.

    The message names the file and what is wrong with it.
    """


# IDX type code -> (numpy big-endian dtype, name)
_IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_maybe_gzip(path: Path) -> bytes:
    """Return the file's bytes, gunzipped when it starts with the gzip magic number."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetNotFoundError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetFormatError(
            f"{path}: corrupt or truncated gzip data ({exc}); delete it and reinstall/re-download"
        ) from exc


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (gzip-compressed or raw) into a native-endian array.

    Parameters
    ----------
    path : str or Path
        The file; compression is detected from its first bytes, not its name.

    Returns
    -------
    np.ndarray
        Shape from the header; dtype from the type code (``uint8`` for
        Fashion-MNIST), converted to native byte order.

    Raises
    ------
    DatasetNotFoundError
        If the file does not exist.
    DatasetFormatError
        If the header is malformed or the data size disagrees with it.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: no such file")
    buf = _read_maybe_gzip(path)
    if len(buf) < 4:
        raise DatasetFormatError(f"{path}: {len(buf)} bytes, too short for an IDX header (4 bytes at least)")
    zero, code, ndim = struct.unpack(">HBB", buf[:4])
    if zero != 0:
        raise DatasetFormatError(
            f"{path}: not an IDX file (magic number 0x{buf[:4].hex()}: the first two bytes must be zero)"
        )
    if code not in _IDX_TYPES:
        raise DatasetFormatError(
            f"{path}: unknown IDX data type code 0x{code:02x} "
            f"(expected one of {', '.join(f'0x{k:02x}' for k in _IDX_TYPES)})"
        )
    if ndim == 0:
        raise DatasetFormatError(f"{path}: IDX header declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(buf) < header_len:
        raise DatasetFormatError(f"{path}: truncated header ({len(buf)} bytes, the {ndim} dimensions need {header_len})")
    dims = struct.unpack(f">{ndim}I", buf[4:header_len])
    dtype = _IDX_TYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    found = len(buf) - header_len
    if found != expected:
        what = "truncated" if found < expected else "has trailing data"
        raise DatasetFormatError(
            f"{path}: {what}: header says shape {tuple(dims)} ({expected} data bytes), found {found}"
        )
    arr = np.frombuffer(buf, dtype=dtype, offset=header_len).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


@dataclass(frozen=True)
class FashionMNIST:
    """One split of Fashion-MNIST.

    Attributes
    ----------
    images : np.ndarray, uint8, shape (N, 28, 28)
        Pixel values 0–255 (0 is background).
    labels : np.ndarray, int64, shape (N,)
        Class indices 0–9.
    class_names : tuple of str
        ``class_names[label]`` names the class (:data:`FASHION_MNIST_CLASSES`).
    split : {"train", "test"}
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    split: str

    def __len__(self) -> int:
        return int(self.images.shape[0])


_PREFIX = {"train": "train", "test": "t10k"}


def _candidates(prefix: str, kind: str, idx: int) -> list[str]:
    base = [f"{prefix}-{kind}-idx{idx}-ubyte", f"{prefix}-{kind}.idx{idx}-ubyte"]
    return [b + ext for b in base for ext in (".gz", "")]


def _find(root: Path, names: list[str]) -> Path | None:
    for folder in (root, root / "FashionMNIST" / "raw", root / "raw"):
        for name in names:
            p = folder / name
            if p.is_file():
                return p
    return None


def load_fashion_mnist(
    split: Literal["train", "test"] = "train",
    root: str | Path | None = None,
) -> FashionMNIST:
    """Load the training (60 000) or test (10 000) split of Fashion-MNIST.

    Parameters
    ----------
    split : {"train", "test"}, optional (default "train")
    root : str or Path, optional
        Folder holding the IDX files (gzip or raw, official names); default
        :data:`DEFAULT_FASHION_MNIST_DIR`.

    Returns
    -------
    FashionMNIST
        ``images`` uint8 (N, 28, 28), ``labels`` int64 (N,), ``class_names``.

    Raises
    ------
    DatasetNotFoundError
        Folder or file missing; the message says how to install the data.
    DatasetFormatError
        A file is corrupt, truncated, or not the expected IDX array.
    """
    if split not in _PREFIX:
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    folder = Path(root) if root is not None else DEFAULT_FASHION_MNIST_DIR
    if not folder.is_dir():
        raise DatasetNotFoundError(f"Fashion-MNIST folder {folder} does not exist; {_INSTALL_HINT}")
    prefix = _PREFIX[split]
    img_names = _candidates(prefix, "images", 3)
    lbl_names = _candidates(prefix, "labels", 1)
    img_path, lbl_path = _find(folder, img_names), _find(folder, lbl_names)
    for path, names in ((img_path, img_names), (lbl_path, lbl_names)):
        if path is None:
            raise DatasetNotFoundError(
                f"Fashion-MNIST {split} file not found in {folder} (looked for {names[0]} or "
                f"{', '.join(names[1:])}); {_INSTALL_HINT}"
            )
    images = read_idx(img_path)
    labels = read_idx(lbl_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DatasetFormatError(
            f"{img_path}: expected unsigned-byte images of shape (N, 28, 28), "
            f"got {images.dtype} {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DatasetFormatError(f"{lbl_path}: expected a 1-D unsigned-byte label array, got {labels.dtype} {labels.shape}")
    if labels.shape[0] != images.shape[0]:
        raise DatasetFormatError(
            f"{lbl_path}: {labels.shape[0]} labels for {images.shape[0]} images in {img_path.name}"
        )
    if labels.size and int(labels.max()) >= len(FASHION_MNIST_CLASSES):
        raise DatasetFormatError(f"{lbl_path}: label {int(labels.max())} out of range 0-9")
    return FashionMNIST(
        images=images,
        labels=labels.astype(np.int64),
        class_names=FASHION_MNIST_CLASSES,
        split=split,
    )

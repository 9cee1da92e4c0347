"""Pickle-free files: dictionaries and sparse codes.

Both are NumPy ``.npz`` archives read with ``allow_pickle=False``; metadata is a JSON
string stored as a 0-d unicode array. Files are written atomically (a temporary file in
the same folder, then ``os.replace``), so an interrupted write never leaves a
half-written file under the final name.

Dictionary file: ``kernels`` (K, kh, kw) plus ``metadata`` holding at least
``format`` (``"csc-dictionary"``), ``version``, ``shape``, ``dtype`` and ``sha256`` (of
the kernels' little-endian C-order bytes), and whatever the maker recorded (how it was
made, parameters). Shipped dictionaries live in the package ``csc.dictionaries`` with a
``manifest.json``; :func:`load_dictionary` takes either a path or a shipped name (a
shipped name given as a string is always the shipped dictionary; ``./name`` is a file).

Code file: ``shape`` (lead + (K, H, W)), ``index`` (flat C-order indices of the
nonzeros, int64), ``values`` (their values) and ``metadata``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from csc.core.checks import as_float_tensor, check_finite, check_float_dtype, check_ndim
from csc.core.sporco import from_sporco_layout

__all__ = [
    "save_dictionary",
    "load_dictionary",
    "dictionary_metadata",
    "shipped_dictionaries",
    "save_codes",
    "load_codes",
    "atomic_write",
    "sha256_of_array",
    "read_json",
]

DICTIONARY_FORMAT = "csc-dictionary"
CODES_FORMAT = "csc-codes"
FORMAT_VERSION = 1


def sha256_of_array(*arrays: np.ndarray) -> str:
    """SHA-256 of arrays' little-endian, C-order bytes, in order (independent of the host)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
    return h.hexdigest()


def atomic_write(path: str | Path, write) -> Path:
    """Call ``write(file_object)`` on a temporary file, then move it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _savez(path: str | Path, arrays: Mapping[str, np.ndarray]) -> Path:
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def unreadable_reason(exc: BaseException) -> str:
    """Why numpy could not read a file, in a few words, without numpy's advice on pickles
    (csc never loads pickled data)."""
    text = str(exc)
    if "pickle" in text.lower():
        return "not a numpy array file (numpy took it for pickled Python objects, which csc never loads)"
    if "zip" in type(exc).__name__.lower() or "zip" in text.lower() or isinstance(exc, EOFError):
        return f"truncated or not an .npz archive ({type(exc).__name__})"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def read_npz(path: str | Path, what: str, error: type[Exception] = ValueError) -> dict[str, np.ndarray]:
    """Every array of a pickle-free ``.npz`` (or the one array of a ``.npy``, as
    ``{"array": …}``); FileNotFoundError, or ``error`` naming ``what`` and the file for one
    that is truncated, corrupt or not numpy's."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what}: no such file {str(path)!r}")
    try:
        if path.suffix == ".npy":
            return {"array": np.load(path, allow_pickle=False)}
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise ValueError("a .npy array, not an .npz archive")
            return {k: z[k] for k in z.files}
    except Exception as exc:
        raise error(f"{what}: {str(path)!r} is not readable: {unreadable_reason(exc)}") from None


def _read_npz(path: Path, what: str) -> dict[str, np.ndarray]:
    return read_npz(path, what)


def read_json(path: str | Path, what: str) -> Any:
    """The JSON value in the file ``path``; FileNotFoundError, or ValueError naming ``what``
    and the file for one that is not valid JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{what}: no such file {str(path)!r}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what}: {str(path)!r} is not valid JSON ({exc})") from None


def json_metadata(arr: np.ndarray, path, what: str) -> dict[str, Any]:
    """The JSON object stored as a 0-d string array; ValueError naming ``what`` and ``path``."""
    try:
        meta = json.loads(str(arr[()]))
    except (json.JSONDecodeError, TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"{what}: metadata of {str(path)!r} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{what}: metadata of {str(path)!r} is not a JSON object")
    return meta


def _metadata(arrays: dict[str, np.ndarray], path: Path, what: str) -> dict[str, Any]:
    return json_metadata(arrays["metadata"], path, what) if "metadata" in arrays else {}


# --------------------------------------------------------------------- dictionaries
def save_dictionary(path: str | Path, kernels, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write kernels (K, kh, kw), or multi-channel (K, C, kh, kw), and metadata to a
    pickle-free ``.npz``; returns the path."""
    path = check_output_file("path", path)
    D = as_float_tensor("kernels", kernels)
    check_ndim("kernels", D, (3, 4), "(K, kh, kw) or (K, C, kh, kw)")
    check_finite("kernels", D)
    arr = D.detach().cpu().numpy()
    meta = _metadata_dict(metadata)
    meta.update(format=DICTIONARY_FORMAT, version=FORMAT_VERSION, shape=list(arr.shape),
                dtype=str(arr.dtype), sha256=sha256_of_array(arr))
    return _savez(path, {"kernels": arr, "metadata": np.array(json.dumps(meta, sort_keys=True))})


def check_output_file(name: str, path) -> Path:
    """``path`` as a Path to write a file at: TypeError for anything but a str or path,
    ValueError for an empty one, IsADirectoryError for a folder (each naming ``name``)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a file path, got {path!r}")
    if str(path) == "":
        raise ValueError(f"{name}: expected a file path, got an empty string")
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"{name}: {str(p)!r} is a folder; give a file path (e.g. {str(p / 'dict.npz')!r})")
    return p


def _metadata_dict(metadata) -> dict[str, Any]:
    """``metadata`` (None or a mapping of JSON values) as a dict; TypeError naming ``metadata``
    and the first key whose value JSON cannot hold."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata: expected a dict of JSON values or None, got {type(metadata).__name__}")
    for k, v in metadata.items():
        try:
            json.dumps({k: v})
        except (TypeError, ValueError) as exc:
            raise TypeError(f"metadata[{k!r}]: not storable as JSON ({exc}); convert it to a number, string, "
                            "list or dict") from None
    return dict(metadata)


def _manifest() -> dict[str, Any]:
    try:
        text = resources.files("csc.dictionaries").joinpath("manifest.json").read_text()
    except (FileNotFoundError, ModuleNotFoundError):
        return {}
    return json.loads(text)["dictionaries"]


def shipped_dictionaries() -> dict[str, dict[str, Any]]:
    """The shipped dictionaries: name → manifest entry (file, description, how made)."""
    return _manifest()


def _resolve(name_or_path: str | Path) -> Path:
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"dictionary: expected a shipped name (csc.shipped_dictionaries()) or a file path, "
                        f"got {name_or_path!r}")
    if str(name_or_path) == "":
        raise FileNotFoundError("dictionary: got an empty string; give a shipped name "
                                "(csc.shipped_dictionaries()) or a file path")
    manifest = _manifest()
    p = Path(name_or_path)
    if isinstance(name_or_path, str) and name_or_path in manifest:
        if p.exists():
            warnings.warn(f"dictionary: {name_or_path!r} is a shipped dictionary's name and loads the shipped "
                          f"dictionary, not the file {name_or_path!r} in the working folder; to load the file, "
                          f"give it as a path ('./{name_or_path}')", UserWarning, stacklevel=3)
        return Path(str(resources.files("csc.dictionaries").joinpath(manifest[name_or_path]["file"])))
    if p.is_dir():
        raise IsADirectoryError(f"dictionary: {str(p)!r} is a folder, not a dictionary file")
    if p.exists():
        return p
    raise FileNotFoundError(
        f"dictionary: {str(name_or_path)!r} is neither a file nor a shipped dictionary "
        f"(shipped: {', '.join(sorted(manifest)) or 'none'})"
    )


def load_dictionary(
    name_or_path: str | Path,
    *,
    key: str | None = None,
    layout: str = "csc",
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Load a dictionary (K, kh, kw) or (K, C, kh, kw) from a file written by :func:`save_dictionary`, a
    shipped name (``csc.shipped_dictionaries()``), or a plain ``.npy``/``.npz`` array.

    A string that is a shipped name (``"heterogeneous"``) always means the shipped
    dictionary, even when the working folder holds a file of that name (a warning then says
    so): give such a file as a path (``"./heterogeneous"`` or a :class:`pathlib.Path`).

    A csc file's checksum is verified. For plain arrays, ``key`` picks the array of an
    ``.npz`` (e.g. SPORCO's ``convdict.npz`` and key ``"G:12x12x36"``) and
    ``layout="sporco"`` reads SPORCO's (kh, kw, K) layout. ``dtype``: None (the file's),
    ``torch.float32``/``torch.float64`` or their names.
    """
    if layout not in ("csc", "sporco"):
        raise ValueError(f"layout: expected 'csc' or 'sporco', got {layout!r}")
    dtype = check_float_dtype("dtype", dtype)
    path = _resolve(name_or_path)
    arrays = read_npz(path, "dictionary")
    if path.suffix == ".npy":
        arrays = {"kernels": arrays["array"]}
    meta = _metadata(arrays, path, "dictionary")
    if meta.get("format") == DICTIONARY_FORMAT:
        arr = arrays.get("kernels")
        if arr is None:
            raise ValueError(f"dictionary: {str(path)!r} has no 'kernels' array")
        if sha256_of_array(arr) != meta.get("sha256"):
            raise ValueError(f"dictionary: checksum mismatch in {str(path)!r}: the file is corrupt")
    else:
        k = key if key is not None else ("kernels" if "kernels" in arrays else None)
        if k is None:
            if len(arrays) != 1:
                raise ValueError(f"key: {str(path)!r} holds several arrays {sorted(arrays)}; say which")
            k = next(iter(arrays))
        if k not in arrays:
            raise KeyError(f"key: {k!r} not in {str(path)!r} (has {sorted(arrays)})")
        arr = arrays[k]
        if layout == "sporco":
            arr = from_sporco_layout(arr, "dictionary")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"dictionary: expected floating-point kernels, got {arr.dtype}")
    D = torch.from_numpy(np.ascontiguousarray(arr))
    check_ndim("dictionary", D, (3, 4), "(K, kh, kw) or (K, C, kh, kw)")
    check_finite("dictionary", D)
    return D.to(dtype=dtype or D.dtype, device=device)


def dictionary_metadata(name_or_path: str | Path) -> dict[str, Any]:
    """The metadata stored with a dictionary file (empty for plain arrays)."""
    path = _resolve(name_or_path)
    if path.suffix == ".npy":
        return {}
    return _metadata(_read_npz(path, "dictionary"), path, "dictionary")


# ---------------------------------------------------------------------------- codes
def save_codes(path: str | Path, codes, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write codes (lead + (K, H, W)) sparsely: flat indices and values of the nonzeros."""
    c = as_float_tensor("codes", codes).detach().cpu()
    if c.ndim < 3:
        raise ValueError(f"codes: expected (..., K, H, W), got shape {tuple(c.shape)}")
    flat = c.reshape(-1)
    index = torch.nonzero(flat, as_tuple=True)[0]
    values = flat[index].numpy()
    index = index.numpy().astype(np.int64)
    shape = np.asarray(c.shape, dtype=np.int64)
    meta = dict(metadata or {})
    meta.update(format=CODES_FORMAT, version=FORMAT_VERSION, dtype=str(values.dtype),
                nnz=int(index.size), sha256=sha256_of_array(shape, index, values))
    return _savez(path, {
        "shape": shape,
        "index": index,
        "values": values,
        "metadata": np.array(json.dumps(meta, sort_keys=True)),
    })


def load_codes(path: str | Path) -> tuple[torch.Tensor, dict[str, Any]]:
    """Read a file written by :func:`save_codes`; returns (dense codes, metadata)."""
    path = Path(path)
    arrays = _read_npz(path, "codes")
    meta = _metadata(arrays, path, "codes")
    if meta.get("format") != CODES_FORMAT or not {"shape", "index", "values"} <= set(arrays):
        raise ValueError(f"codes: {str(path)!r} is not a csc code file")
    shape, index, values = arrays["shape"], arrays["index"], arrays["values"]
    n = int(np.prod(shape))
    if sha256_of_array(shape, index, values) != meta.get("sha256") or (
        index.size and (index.min() < 0 or index.max() >= n)
    ):
        raise ValueError(f"codes: {str(path)!r} is corrupt (checksum or index out of range)")
    out = np.zeros(n, dtype=values.dtype)
    out[index] = values
    return torch.from_numpy(out.reshape(tuple(shape))), meta

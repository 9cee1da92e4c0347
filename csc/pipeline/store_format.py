"""The code store's format: its settings, shard files and manifest (:mod:`csc.pipeline.store`).

:class:`EncodeSettings` is everything that determines a store's contents and
:func:`preprocess_images` what it codes; the rest is the format both the writer
(:mod:`csc.pipeline.store_writer`) and the reader (:class:`csc.pipeline.store.CodeStore`,
:func:`csc.pipeline.store.verify_store`) follow: a shard's arrays packed from dense codes
(``values``, ``coords``, ``offsets``; :func:`_pack`), written byte-for-byte deterministically
(:func:`_savez_deterministic`), read and checked against its manifest entry
(:func:`_read_shard`, :func:`_check_shard`), and the manifest's identity digest and
well-formedness (:func:`_identity_digest`, :func:`_check_manifest`). The layout is described
in :mod:`csc.pipeline.store`, whose names these are (re-exported there).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from csc.core.checks import check_bool, check_int, check_number
from csc.dictionary.io import read_npz, sha256_of_array
from csc.pipeline.preprocess import Preprocess, check_preprocess_kind

__all__ = ["LOCK", "MANIFEST", "STORE_FORMAT", "STORE_VERSION", "EncodeSettings", "StoreError", "preprocess_images"]


STORE_FORMAT = "csc-code-store"
STORE_VERSION = 1
MANIFEST = "manifest.json"
LOCK = ".lock"
_VALUE_DTYPES = {"float16": np.float16, "float32": np.float32}


class StoreError(ValueError):
    """A store is missing, inconsistent or corrupt."""


@dataclass(frozen=True)
class EncodeSettings:
    """Everything that determines a store's contents (recorded in the manifest).

    Attributes
    ----------
    dictionary : str
        Shipped name or file of the dictionary (its sha256 is recorded separately).
    lmbda : float
        CBPDN λ.
    max_iter, rel_stop_tol : int, float
        CBPDN stopping: at most ``max_iter`` ADMM iterations, fewer once both normalised
        residuals fall below ``rel_stop_tol`` (SPORCO's ``MaxMainIter``, ``RelStopTol``).
    size : int or None
        Bilinear resize of every image to size × size before coding (None: as is).
    preprocess : {"highpass", "lcn", "none"}
        Coded signal: Tikhonov highpass (λ 5, SPORCO's examples), local contrast
        normalisation on the 0–255 scale (authors' code), or the [0, 1] image.
    gray_weights : {"skimage", "bt601"}
        Luma weights for colour sources.
    value_dtype : {"float16", "float32"}
        Stored dtype of the nonzero values.
    shard_size : int
        Images per shard (also the encoding batch).
    solver_dtype : {"float32", "float64"}
    colour : bool
        Code RGB images (B, 3, H, W) with a multi-channel dictionary (K, 3, kh, kw), each
        channel preprocessed on its own; the codes are (K, H, W) per image as for gray
        images (default False: colour sources are converted to gray).
    l1_weight, relax, rsdl_ratio : float
        CBPDN's scalar ``L1Weight`` (1), ``RelaxParam`` (1.8) and ``AutoRho.RsdlRatio``
        (1.2), SPORCO's defaults; the authors' Table 1 encoding uses 0.5, 1.8 and 1.05
        (:class:`csc.science.protocol.EncodingProtocol`).
    """

    dictionary: str = "heterogeneous"
    lmbda: float = 0.1
    max_iter: int = 100
    rel_stop_tol: float = 1e-2
    size: int | None = None
    preprocess: str = "highpass"
    gray_weights: str = "skimage"
    value_dtype: str = "float16"
    shard_size: int = 256
    solver_dtype: str = "float32"
    colour: bool = False
    l1_weight: float = 1.0
    relax: float = 1.8
    rsdl_ratio: float = 1.2

    def __post_init__(self):
        if not isinstance(self.dictionary, (str, os.PathLike)):
            raise TypeError(f"dictionary: expected a shipped name or a file path, got {self.dictionary!r}")
        object.__setattr__(self, "dictionary", str(self.dictionary))
        check_number("lmbda", self.lmbda, minimum=0)
        check_int("max_iter", self.max_iter, 1)
        check_number("rel_stop_tol", self.rel_stop_tol, minimum=0)
        check_number("l1_weight", self.l1_weight, minimum=0)
        check_number("relax", self.relax, minimum=0, strict=True)
        check_number("rsdl_ratio", self.rsdl_ratio, minimum=1)
        check_int("shard_size", self.shard_size, 1)
        check_int("size", self.size, 1, none=True)
        object.__setattr__(self, "colour", check_bool("colour", self.colour))
        check_preprocess_kind("preprocess", self.preprocess)
        if self.value_dtype not in _VALUE_DTYPES:
            raise ValueError(f"value_dtype: expected 'float16' or 'float32', got {self.value_dtype!r}")
        if self.solver_dtype not in ("float32", "float64"):
            raise ValueError(f"solver_dtype: expected 'float32' or 'float64', got {self.solver_dtype!r}")

    def preprocessing(self) -> Preprocess:
        """The :class:`~csc.pipeline.preprocess.Preprocess` of ``preprocess`` (LCN on the 0–255 scale)."""
        return Preprocess(self.preprocess, lcn_input_scale=255.0)


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def preprocess_images(images, settings: EncodeSettings, device=None, dtype=torch.float32) -> torch.Tensor:
    """Source images → the signals CBPDN codes, shape (B, H', W') (or (B, 3, H', W') with
    ``settings.colour``).

    ``images``: uint8 (0–255) or floating ([0, 1]) array/tensor, (B, H, W) gray or
    (B, 3, H, W) colour. Steps (the paper's classifier pipeline: gray, bilinearly
    upscaled CIFAR-10): [0, 1] scale → grayscale (not with ``colour``) → bilinear resize
    → :meth:`EncodeSettings.preprocessing` (highpass / LCN / none, per channel).
    """
    from csc.pipeline import preprocess as pp

    x = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
    if device is not None and torch.device(device).type == "cuda" and x.device.type == "cpu":
        x = x.pin_memory().to(device, non_blocking=True)  # page-locked: an asynchronous copy
    elif device is not None:
        x = x.to(device)
    x = x.to(dtype) / 255.0 if x.dtype == torch.uint8 else x.to(dtype)
    if settings.colour:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"images: colour encoding takes RGB images (B, 3, H, W), got shape {tuple(x.shape)}")
    elif x.ndim == 4:
        x = pp.to_grayscale(x, settings.gray_weights)
    if x.ndim != (4 if settings.colour else 3):
        raise ValueError(f"images: expected (B, H, W) or (B, 3, H, W), got shape {tuple(x.shape)}")
    if settings.size is not None and tuple(x.shape[-2:]) != (settings.size, settings.size):
        x = pp.resize(x, settings.size)
    return settings.preprocessing().forward(x)[0]


# --------------------------------------------------------------------------- shards
def _coord_dtype(n: int):
    if n <= 1 << 16:
        return np.uint16
    if n <= 1 << 32:
        return np.uint32
    return np.int64


def _pack(codes: torch.Tensor, value_dtype: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense (n, K, H, W) → (values, coords, offsets).

    The nonzeros are found where the codes are (on the GPU for a CUDA solve) and only they
    and their positions are copied to the host; there they are cast to ``value_dtype``
    (numpy's rounding, as the stores always had) and the ones that underflow to 0 dropped."""
    n = codes.shape[0]
    flat = codes.detach().reshape(n, -1)
    nz = flat.nonzero()  # (nnz, 2), C order: by image, then position
    vals = flat[nz[:, 0], nz[:, 1]].cpu().numpy().astype(_VALUE_DTYPES[value_dtype])
    img, pos = (a.numpy() for a in nz.cpu().unbind(1))
    if value_dtype == "float16":
        if not np.isfinite(vals).all():
            raise StoreError("codes overflow float16 (|value| > 65504): use value_dtype='float32'")
    kept = vals != 0  # after the cast: float16 underflow to 0 is simply not stored
    vals, img, pos = vals[kept], img[kept], pos[kept]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(img, minlength=n), out=offsets[1:])
    return vals, pos.astype(_coord_dtype(flat.shape[1])), offsets


def _shard_name(i: int) -> str:
    return f"shard-{i:05d}.npz"


_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def _savez_deterministic(f, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez`` (uncompressed, readable by ``np.load``), but byte-for-byte a
    function of the arrays: fixed member timestamps and permissions."""
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, a in arrays.items():
            info = zipfile.ZipInfo(name + ".npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(a), allow_pickle=False)


def _shard_checksum(a: dict[str, np.ndarray]) -> str:
    return sha256_of_array(a["values"], a["coords"], a["offsets"], a["labels"], a["ids"])


def _read_shard(path: Path) -> dict[str, np.ndarray]:
    try:
        arrays = read_npz(path, "shard", StoreError)
    except FileNotFoundError:
        raise StoreError(f"{path.name}: missing") from None
    missing = {"values", "coords", "offsets", "labels", "ids", "metadata"} - set(arrays)
    if missing:
        raise StoreError(f"{path.name}: missing arrays {sorted(missing)}")
    return arrays


def _check_shard(arrays: dict[str, np.ndarray], entry: dict[str, Any], per_image: int, name: str) -> None:
    if _shard_checksum(arrays) != entry["sha256"]:
        raise StoreError(f"{name}: checksum mismatch (the shard is corrupt or was modified)")
    off = arrays["offsets"]
    n = entry["count"]
    if arrays["labels"].shape != (n,) or arrays["ids"].shape != (n,) or off.shape != (n + 1,):
        raise StoreError(f"{name}: expected {n} images")
    if off[0] != 0 or off[-1] != arrays["values"].size or np.any(np.diff(off) < 0):
        raise StoreError(f"{name}: inconsistent offsets")
    if arrays["coords"].size != arrays["values"].size or (
        arrays["coords"].size and int(arrays["coords"].max()) >= per_image
    ):
        raise StoreError(f"{name}: coordinates out of range")


_IDENTITY = ("settings", "dictionary_sha256", "code_shape", "num_images", "source_sha256")
_ENTRY_KEYS = {"file": str, "count": int, "start": int, "sha256": str}


def _identity_digest(m: dict[str, Any]) -> str:
    """The digest of what identifies a store (its settings, dictionary, code shape, source)."""
    return _digest({k: m.get(k) for k in _IDENTITY})


def _check_manifest(m: Any, path: Path) -> None:
    """StoreError naming ``path`` unless ``m`` is a whole, unedited manifest: its fields
    present, its identity matching its digest, its shard entries well formed and in order."""
    if not isinstance(m, dict) or m.get("format") != STORE_FORMAT:
        raise StoreError(f"{path}: not a {STORE_FORMAT} manifest")
    missing = [k for k in _IDENTITY + ("settings_digest", "shards", "num_shards", "kernels") if k not in m]
    if missing:
        raise StoreError(f"{path}: manifest lacks {missing} (truncated or edited)")
    if _identity_digest(m) != m["settings_digest"]:
        raise StoreError(f"{path}: the manifest's settings, dictionary hash, code shape or source do not match "
                         "its settings_digest (it was edited)")
    shape = m["code_shape"]
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(v, int) and v > 0 for v in shape)) \
            or m["kernels"][0] != shape[0]:
        raise StoreError(f"{path}: code_shape {shape!r} is not (K, H, W) with K = the kernels' count")
    if not isinstance(m["shards"], list):
        raise StoreError(f"{path}: 'shards' is not a list of shard entries")
    expected = 0
    for e in m["shards"]:
        if not isinstance(e, dict) or any(not isinstance(e.get(k), t) for k, t in _ENTRY_KEYS.items()):
            raise StoreError(f"{path}: malformed shard entry {e!r}")
        if e["start"] != expected:
            raise StoreError(f"{path}: shard entry {e['file']} starts at image {e['start']}, expected {expected} "
                             "(an entry is missing)")
        expected += e["count"]

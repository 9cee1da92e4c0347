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
import warnings
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from csc.core.checks import check_bool, check_int, check_number
from csc.dictionary.io import read_npz, sha256_of_array
from csc.pipeline.preprocess import Preprocess, check_preprocess_kind

__all__ = ["LOCK", "MANIFEST", "WARM_START_FILE", "STORE_FORMAT", "STORE_VERSION", "EncodeSettings", "StoreError", "StoreFormatWarning",
           "preprocess_images"]


STORE_FORMAT = "csc-code-store"
#: 2: the manifest's digest covers its whole header (kernels, num_classes, dtypes, counts
#: too) and each shard's header records a copy of it; 1: the digest covered only the
#: settings, dictionary hash, code shape, image count and source (still readable, with a warning)
STORE_VERSION = 2
MANIFEST = "manifest.json"
LOCK = ".lock"
#: the predictor a store trains with ``EncodeSettings(warm_start_train=N)`` (:mod:`csc.nn.warmstart`)
WARM_START_FILE = "warm-start.npz"
_VALUE_DTYPES = {"float16": np.float16, "float32": np.float32}


class StoreError(ValueError):
    """A store is missing, inconsistent or corrupt."""


class StoreFormatWarning(UserWarning):
    """A store of an earlier format: readable, but not every field of it is checked."""


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
    warm_start : str or None
        A warm-start predictor file (:mod:`csc.nn.warmstart`) trained for this dictionary,
        λ and preprocessing: every image's solve starts from its predicted code and runs to
        the same tolerance (default None: cold starts). Its sha256 is recorded.
    warm_start_train : int
        Train a predictor on the first ``warm_start_train`` images (coded cold first), save
        it in the store as ``warm-start.npz`` (a rerun reuses it) and code every image warm
        (default 0: no training). Not with ``warm_start``.
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
    warm_start: str | None = None
    warm_start_train: int = 0

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
        self._check_warm_start()

    def _check_warm_start(self) -> None:
        if self.warm_start is not None:
            if not isinstance(self.warm_start, (str, os.PathLike)):
                raise TypeError(f"warm_start: expected a predictor file path or None, got {self.warm_start!r}")
            object.__setattr__(self, "warm_start", str(self.warm_start))
        check_int("warm_start_train", self.warm_start_train, 0)
        if self.warm_start is not None and self.warm_start_train:
            raise ValueError("warm_start_train: give a predictor file (warm_start) or a number of images to "
                             "train one on, not both")
        if self.colour and (self.warm_start is not None or self.warm_start_train):
            raise ValueError("warm_start: the warm-start predictor codes gray images (a single-channel "
                             "dictionary); colour encoding runs cold")

    @property
    def warm(self) -> bool:
        """Whether the images are coded from a predictor's warm start."""
        return self.warm_start is not None or self.warm_start_train > 0

    def preprocessing_record(self) -> dict[str, Any]:
        """What a warm-start predictor records of the coded signals (checked when one is loaded)."""
        return {"kind": self.preprocess, "size": self.size, "gray_weights": self.gray_weights}

    def record(self) -> dict[str, Any]:
        """The settings as the manifest records them: every field; without the warm-start
        fields when cold (so a cold store's digest is the one earlier versions made), with the
        predictor file's sha256 when ``warm_start`` is a file."""
        rec = asdict(self)
        if not self.warm:
            del rec["warm_start"], rec["warm_start_train"]
        elif self.warm_start is not None:
            path = Path(self.warm_start)
            if not path.is_file():
                raise FileNotFoundError(f"warm_start: no such file {self.warm_start!r}")
            rec["warm_start_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        return rec

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


def is_store_file(path: Path) -> bool:
    """Whether ``path`` is one of a store folder's own files (manifest, shard, lock, a killed
    write's temporary file): what an encoding into that folder resumes or cleans up."""
    name = Path(path).name
    return name in (MANIFEST, LOCK, WARM_START_FILE) or (name.startswith("shard-") and name.endswith(".npz")) \
        or (name.startswith(".") and name.endswith(".tmp"))


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


_IDENTITY_V1 = ("settings", "dictionary_sha256", "code_shape", "num_images", "source_sha256")
#: every field of a format-2 manifest but its digest and shard entries (the store's header)
_HEADER = ("format", "version", "settings", "dictionary_sha256", "kernels", "code_shape", "value_dtype",
           "coord_dtype", "num_images", "num_shards", "num_classes", "source", "source_sha256")
_ENTRY_KEYS = {"file": str, "count": int, "start": int, "sha256": str}


def _identity_fields(m: dict[str, Any]) -> tuple[str, ...]:
    return _IDENTITY_V1 if m.get("version") == 1 else _HEADER


def _identity_digest(m: dict[str, Any]) -> str:
    """The digest of what identifies a store: its whole header (format 1: its settings,
    dictionary, code shape and source only)."""
    return _digest({k: m.get(k) for k in _identity_fields(m)})


def _store_header_copy(m: dict[str, Any]) -> dict[str, Any]:
    """What a format-2 shard records of its store: the manifest's header."""
    return {k: m.get(k) for k in _HEADER}


def _check_manifest(m: Any, path: Path) -> None:
    """StoreError naming ``path`` unless ``m`` is a whole, unedited manifest: its fields
    present, its header matching its digest, its shard entries well formed and in order."""
    if not isinstance(m, dict) or m.get("format") != STORE_FORMAT:
        raise StoreError(f"{path}: not a {STORE_FORMAT} manifest")
    if m.get("version") not in (1, STORE_VERSION):
        raise StoreError(f"{path}: store format version {m.get('version')!r} is not one this csc reads "
                         f"(1 or {STORE_VERSION}); upgrade csc or re-encode the store")
    missing = [k for k in _identity_fields(m) + ("settings_digest", "shards", "num_shards", "kernels") if k not in m]
    if missing:
        raise StoreError(f"{path}: manifest lacks {missing} (truncated or edited)")
    if _identity_digest(m) != m["settings_digest"]:
        raise StoreError(f"{path}: manifest field(s) {_edited_fields(m, path)} do not match its settings_digest "
                         "(it was edited); re-encode the store or restore its manifest")
    shape = m["code_shape"]
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(v, int) and v > 0 for v in shape)) \
            or not isinstance(m["kernels"], list) or not m["kernels"] or m["kernels"][0] != shape[0]:
        raise StoreError(f"{path}: code_shape {shape!r} is not (K, H, W) with K = the kernels' count")
    _check_entries(m, path)


def _check_entries(m: dict[str, Any], path: Path) -> None:
    """The shard entries: a list of well-formed entries, entry i for file shard-i and the
    images that follow entry i - 1's (format 2: as many as the store's shard size gives)."""
    if not isinstance(m["shards"], list):
        raise StoreError(f"{path}: 'shards' is not a list of shard entries")
    expected, size = 0, m["settings"].get("shard_size") if isinstance(m["settings"], dict) else None
    for i, e in enumerate(m["shards"]):
        if not isinstance(e, dict) or any(not isinstance(e.get(k), t) for k, t in _ENTRY_KEYS.items()):
            raise StoreError(f"{path}: malformed shard entry {e!r}")
        if e["start"] != expected:
            raise StoreError(f"{path}: shard entry {e['file']} starts at image {e['start']}, expected {expected} "
                             "(an entry is missing)")
        if e["file"] != _shard_name(i):
            raise StoreError(f"{path}: shard entry {i} names {e['file']!r}, expected {_shard_name(i)!r} "
                             "(the entries were reordered or edited)")
        if m["version"] != 1 and isinstance(size, int) and e["count"] != min(size, m["num_images"] - expected):
            raise StoreError(f"{path}: shard entry {e['file']} counts {e['count']} images, expected "
                             f"{min(size, m['num_images'] - expected)} (it was edited)")
        expected += e["count"]


def _edited_fields(m: dict[str, Any], path: Path) -> str:
    """The header fields of manifest ``m`` that differ from the copy its first shard
    records (format 2), else the list of fields its digest covers."""
    fields = _identity_fields(m)
    try:
        meta = _shard_meta(_read_shard(Path(path).parent / _shard_name(0)), _shard_name(0))
        recorded = meta["store"]
        diffs = [k for k in fields if recorded.get(k) != m.get(k)]
    except (StoreError, KeyError, TypeError, AttributeError):
        diffs = []
    return ", ".join(diffs) if diffs else "fields (" + ", ".join(fields) + ")"


def _shard_meta(arrays: dict[str, np.ndarray], name: str) -> dict[str, Any]:
    """A shard's header: the JSON object of its ``metadata`` array."""
    try:
        meta = json.loads(str(arrays["metadata"][()]))
    except (json.JSONDecodeError, TypeError, ValueError, IndexError) as exc:
        raise StoreError(f"{name}: its header (metadata) is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise StoreError(f"{name}: its header (metadata) is not a JSON object")
    return meta


def _check_shard_header(arrays: dict[str, np.ndarray], entry: dict[str, Any], position: int,
                        m: dict[str, Any]) -> None:
    """StoreError unless the shard's own header binds it to this store (same digest and,
    format 2, the same header), to position ``position`` and to ``entry``; and its labels
    lie in [0, num_classes). Cheap: no checksum."""
    name = entry["file"]
    meta = _shard_meta(arrays, name)
    if meta.get("settings_digest") != m["settings_digest"] or (
            m["version"] != 1 and meta.get("store") != _store_header_copy(m)):
        raise StoreError(f"{name}: belongs to another store (made with other settings, dictionary or source "
                         "images); re-encode it into this store (run its encode command again)")
    if meta.get("shard") != position:
        raise StoreError(f"{name}: is shard {meta.get('shard')!r} of its store but listed at position {position} "
                         "(the shard entries or files were reordered)")
    diffs = [k for k in ("start", "count", "sha256") if meta.get(k) != entry.get(k)]
    if diffs:
        raise StoreError(f"{name}: its header's {', '.join(diffs)} differ from its manifest entry (edited)")
    labels = arrays["labels"]
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= int(m.get("num_classes", 0))):
        raise StoreError(f"{name}: labels {int(labels.min())}..{int(labels.max())} outside 0.."
                         f"{int(m.get('num_classes', 0)) - 1} (num_classes {m.get('num_classes')!r})")


def warn_old_format(m: dict[str, Any], root: Path) -> None:
    """A StoreFormatWarning for a format-1 store (its header is not wholly bound)."""
    if m.get("version") == 1:
        warnings.warn(f"{root}: a store of format version 1 (an earlier csc): its kernels, num_classes, dtypes "
                      "and shard count are not bound to its digest, so edits to them go unnoticed; re-encode "
                      "it (the same encode-dataset command with a new --out) to bind them",
                      StoreFormatWarning, stacklevel=3)

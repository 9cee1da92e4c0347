"""Sparse code store: a dataset's CBPDN codes in compact, checksummed, resumable shards.

A store is a folder::

    manifest.json        settings, dictionary sha256, shapes, one entry per finished shard
    shard-00000.npz      images [0, S) of the source
    shard-00001.npz      images [S, 2S)
    ...

Each shard is a pickle-free ``.npz`` (read with ``allow_pickle=False``) holding, for its
``n`` images:

``values`` (nnz,) float16 or float32
    The nonzero coefficients of all its images, concatenated in image order and, within
    an image, in C order of (K, H, W).
``coords`` (nnz,) uint16 or uint32
    Flat position of each value inside its image's (K, H, W) array (uint16 when
    K·H·W ≤ 65 536, else uint32) — 2 or 4 bytes per nonzero instead of int64.
``offsets`` (n + 1,) int64
    Image i's nonzeros are ``values[offsets[i]:offsets[i + 1]]``.
``labels`` (n,) int64 and ``ids`` (n,) int64 (index of the image in the source).
``metadata``
    JSON: shard number, settings digest and the content checksum.

The content checksum is :func:`csc.dictionary.io.sha256_of_array` over (values, coords, offsets,
labels, ids); it is recorded both in the shard and in the manifest, so ``verify``
detects a shard that was altered, truncated or replaced.

Writing: shards are written with :func:`csc.dictionary.io.atomic_write` and the manifest is
rewritten (atomically) after every shard. A killed run leaves only whole shards; running
the same command again skips every shard that verifies and encodes the rest. A shard is a
fixed range of source images encoded as one batch, so an interrupted-then-resumed store
holds exactly the same arrays as an uninterrupted one (on the same device). Shard files
are written deterministically (fixed zip timestamps; timings only in the manifest), so
the same codes give the same bytes.

Several processes (``torchrun``, :mod:`csc.runtime.distributed`): shard ``i`` is encoded by rank
``i mod N``, each rank writes its own shards into the same folder (which must be shared
by every process), and after a barrier rank 0 writes the manifest from the entries all
ranks gathered. Which process encodes a shard does not change its bytes, so the store is
the one a single process writes (same device type and threads per process); a rerun
after a kill re-encodes only the missing shards, whatever the number of processes.
"""

from __future__ import annotations

import contextlib
import fcntl
from concurrent.futures import ThreadPoolExecutor
import hashlib
import json
import os
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from csc.core.checks import check_bool, check_image_size, check_int, check_number, host_array
from csc.dictionary.io import atomic_write, read_npz, sha256_of_array
from csc.pipeline.preprocess import Preprocess, check_preprocess_kind
from csc.runtime.device import resolve_device
from csc.runtime.outputs import OutputError, prepare_dir, remove_if_empty

__all__ = [
    "STORE_FORMAT",
    "EncodeSettings",
    "CodeStore",
    "StoreError",
    "check_same_encoding",
    "encode_dataset",
    "preprocess_images",
    "verify_store",
]

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


# --------------------------------------------------------------------------- encoding
def _source_digest(images: np.ndarray, labels: np.ndarray, ids: np.ndarray) -> str:
    return sha256_of_array(np.ascontiguousarray(images), labels.astype(np.int64), ids.astype(np.int64))


def _check_labels_ids(images, labels, ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``images``, ``labels`` (int64) and ``ids`` (int64, default 0..N-1) as arrays, shapes checked."""
    images = host_array(images)
    labels = host_array(labels).astype(np.int64)
    N = images.shape[0]
    if labels.shape != (N,):
        raise ValueError(f"labels: expected shape ({N},), got {labels.shape}")
    ids_arr = np.arange(N, dtype=np.int64) if ids is None else host_array(ids, np.int64)
    if ids_arr.shape != (N,):
        raise ValueError(f"ids: expected shape ({N},), got {ids_arr.shape}")
    return images, labels, ids_arr


def _load_store_dictionary(settings: EncodeSettings, dev: torch.device, sdtype: torch.dtype):
    """The coding dictionary D (K, kh, kw), or (K, 3, kh, kw) for colour, on ``dev`` and its
    sha256 (shipped metadata, else of D)."""
    from csc.dictionary.io import dictionary_metadata, load_dictionary

    D = load_dictionary(settings.dictionary, dtype=sdtype, device=dev)
    if settings.colour != (D.ndim == 4) or (D.ndim == 4 and D.shape[1] != 3):
        want = "a multi-channel (K, 3, kh, kw)" if settings.colour else "a single-channel (K, kh, kw)"
        raise ValueError(f"dictionary: {'colour' if settings.colour else 'gray'} encoding needs {want} "
                         f"dictionary, got shape {tuple(D.shape)}")
    try:
        dsha = dictionary_metadata(settings.dictionary).get("sha256")
    except Exception:
        dsha = None
    return D, dsha or sha256_of_array(D.cpu().numpy())


def _store_header(settings: EncodeSettings, images: np.ndarray, labels: np.ndarray, ids_arr: np.ndarray,
                  kernels: tuple[int, ...], dsha: str, sdtype: torch.dtype,
                  source: dict[str, Any] | None) -> dict[str, Any]:
    """The manifest's fixed part, including the ``settings_digest`` that identifies the store."""
    K, (kh, kw) = kernels[0], kernels[-2:]
    N = images.shape[0]
    if N == 0:
        raise ValueError("images: expected at least one image to encode")
    H, W = preprocess_images(images[:1], settings, dtype=sdtype).shape[-2:]
    check_image_size("size" if settings.size else "images", H, W, (kh, kw))
    S = int(settings.shard_size)
    header = {
        "format": STORE_FORMAT,
        "version": STORE_VERSION,
        "settings": asdict(settings),
        "dictionary_sha256": dsha,
        "kernels": [int(v) for v in kernels],
        "code_shape": [int(K), int(H), int(W)],
        "value_dtype": settings.value_dtype,
        "coord_dtype": np.dtype(_coord_dtype(K * H * W)).name,
        "num_images": int(N),
        "num_shards": (N + S - 1) // S,
        "num_classes": int(labels.max()) + 1 if N else 0,
        "source": dict(source or {}),
        "source_sha256": _source_digest(images, labels, ids_arr),
    }
    header["settings_digest"] = _identity_digest(header)
    return header


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


def _previous_shards(out: Path, settings_digest: str) -> dict[str, dict[str, Any]]:
    """Shard entries of the manifest already in ``out`` ({} if none); StoreError if it is another store."""
    manifest_path = out / MANIFEST
    if not manifest_path.is_file():
        return {}
    try:
        old = json.loads(manifest_path.read_text())
        _check_manifest(old, manifest_path)
    except (json.JSONDecodeError, StoreError) as exc:
        raise StoreError(f"{out}: holds a damaged store ({exc}); choose another folder (or delete it)") from None
    if old.get("settings_digest") != settings_digest and not old["shards"] \
            and not any(out.glob("shard-*.npz")):
        return {}  # a store begun with other settings that finished nothing: replaced
    if old.get("settings_digest") != settings_digest:
        raise StoreError(
            f"{out}: holds a store made with other settings, dictionary or source images; "
            "choose another folder (or delete it) to encode anew"
        )
    return {e["file"]: e for e in old.get("shards", [])}


def _store_summary(shards: dict[str, dict[str, Any]], N: int, per_image: int) -> dict[str, Any]:
    """Sizes and timings of a finished store, added to its final manifest."""
    total_bytes = sum(e["bytes"] for e in shards.values())
    total_seconds = sum(e.get("seconds") or 0.0 for e in shards.values())
    return {
        "bytes": total_bytes,
        "bytes_per_image": total_bytes / max(N, 1),
        "dense_float32_bytes_per_image": per_image * 4,
        "compression_vs_dense_float32": per_image * 4 * max(N, 1) / max(total_bytes, 1),
        "nnz_per_image": sum(e["nnz"] for e in shards.values()) / max(N, 1),
        "encode_seconds": total_seconds,
        "seconds_per_image": total_seconds / max(N, 1),
    }


@dataclass
class _StoreEncoder:
    """One :func:`encode_dataset` call: the store's header, its shard entries and the solver."""

    out: Path
    header: dict[str, Any]
    shards: dict[str, dict[str, Any]]
    images: np.ndarray
    labels: np.ndarray
    ids: np.ndarray
    settings: EncodeSettings
    solver: Any
    dev: torch.device
    sdtype: torch.dtype
    memory: Any = None  # csc.runtime.memory.MemoryBudget, or None for the default

    @property
    def per_image(self) -> int:
        K, H, W = self.header["code_shape"]
        return K * H * W

    def write_manifest(self, complete: bool, extra: dict[str, Any] | None = None) -> None:
        """Rewrite ``manifest.json`` (atomically) with the shards finished so far."""
        m = dict(self.header)
        m["shards"] = [self.shards[k] for k in sorted(self.shards)]
        m["complete"] = complete
        if extra:
            m.update(extra)
        text = json.dumps(m, indent=1, sort_keys=True)
        atomic_write(self.out / MANIFEST, lambda f: f.write(text.encode()))

    def _kept_entry(self, i: int, lo: int, hi: int) -> dict[str, Any] | None:
        """Shard i's entry if its file is there and verifies (also one written just before a kill)."""
        name = _shard_name(i)
        path = self.out / name
        entry = self.shards.get(name)
        if not path.is_file():
            return None
        try:
            arrays = _read_shard(path)
            meta = json.loads(str(arrays["metadata"][()]))
            if entry is None:
                entry = {"file": name, "count": hi - lo, "start": lo, "sha256": meta.get("sha256"),
                         "nnz": int(arrays["values"].size), "bytes": path.stat().st_size,
                         "seconds": meta.get("seconds"), "device": meta.get("device")}
            if meta.get("settings_digest") == self.header["settings_digest"] and entry["start"] == lo:
                _check_shard(arrays, entry, self.per_image, name)
                if np.array_equal(arrays["ids"], self.ids[lo:hi]):
                    return entry
        except (StoreError, ValueError, KeyError):
            pass
        return None

    def _solve_shard(self, i: int, lo: int, hi: int) -> tuple[dict[str, np.ndarray], float]:
        """Code images [lo, hi) (in batches sized to the device, :func:`csc.solve_in_batches`);
        shard i's arrays (nonzeros only) and the seconds it took."""
        from csc.problems.cbpdn import solve_in_batches

        t0 = time.perf_counter()
        signal = preprocess_images(self.images[lo:hi], self.settings, device=self.dev, dtype=self.sdtype)
        codes = solve_in_batches(self.solver, signal, self.memory).codes
        values, coords, offsets = _pack(codes, self.settings.value_dtype)
        seconds = time.perf_counter() - t0
        return {"values": values, "coords": coords, "offsets": offsets,
                "labels": self.labels[lo:hi].copy(), "ids": self.ids[lo:hi].copy()}, seconds

    def _write_shard(self, i: int, lo: int, hi: int, arrays: dict[str, np.ndarray], seconds: float) -> dict[str, Any]:
        """Write shard i's arrays (atomically) and return its manifest entry."""
        name = _shard_name(i)
        path = self.out / name
        sha = _shard_checksum(arrays)
        # no timings or device in the file: its bytes depend on the codes only
        meta = {"format": STORE_FORMAT + "-shard", "shard": i, "start": lo, "count": hi - lo,
                "settings_digest": self.header["settings_digest"], "sha256": sha}
        arrays = dict(arrays, metadata=np.array(json.dumps(meta, sort_keys=True)))
        atomic_write(path, lambda f: _savez_deterministic(f, arrays))
        return {"file": name, "count": hi - lo, "start": lo, "sha256": sha, "nnz": int(arrays["values"].size),
                "bytes": path.stat().st_size, "seconds": seconds, "device": str(self.dev)}

    def start_shard(self, i: int) -> "_Pending":
        """Shard i: kept if it verifies, else coded now, to be written by :meth:`_Pending.submit`."""
        S, N = int(self.settings.shard_size), self.images.shape[0]
        lo, hi = i * S, min(N, (i + 1) * S)
        entry = self._kept_entry(i, lo, hi)
        if entry is not None:
            return _Pending(entry=entry, new=False)
        self.shards.pop(_shard_name(i), None)
        arrays, seconds = self._solve_shard(i, lo, hi)
        return _Pending(job=(self._write_shard, i, lo, hi, arrays, seconds), new=True)

    def encode_shard(self, i: int) -> tuple[dict[str, Any], bool]:
        """Shard i's manifest entry, and whether it was (re-)encoded now (written before returning)."""
        with ThreadPoolExecutor(max_workers=1) as writer:
            return self.start_shard(i).submit(writer).result()

    def run_rounds(self, rank: int, world: int, distributed: bool, progress: bool,
                   on_shard: Callable[[int], None] | None) -> None:
        """Encode this rank's shards round by round, rank 0 rewriting the manifest after each.

        Round k: rank r does shard k·N + r. After each round the entries are gathered and
        rank 0 rewrites the manifest, as a single process does after each shard. A background
        thread writes round k's shard while round k + 1's is coded; the round is finished
        (manifest, ``on_shard``) once its file is written, before the next write starts.
        """
        from csc.runtime import distributed as _dist

        n_shards = self.header["num_shards"]
        main_process = rank == 0
        bar = None
        if progress and main_process:
            from tqdm import tqdm

            bar = tqdm(total=len(range(rank, n_shards, world)), unit="shard",
                       desc="encode" if world == 1 else f"encode (rank 0 of {world})")
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="csc-store-writer")
        pending: tuple[int, _Pending] | None = None
        try:
            for k in range((n_shards + world - 1) // world + 1):
                i = k * world + rank
                # code this round's shard while the previous round's is written, then finish that round
                started = (i, self.start_shard(i)) if i < n_shards else None
                if k > 0:
                    self._finish_round(pending, distributed, main_process, bar, on_shard)
                if started is not None:
                    started[1].submit(writer)
                pending = started
        finally:
            writer.shutdown(wait=True)
            if bar is not None:
                bar.close()

    def _finish_round(self, pending, distributed: bool, main_process: bool, bar, on_shard) -> None:
        """A round's shards are written: gather their entries, rank 0 rewrites the manifest."""
        from csc.runtime import distributed as _dist

        new = None if pending is None else pending[1].result()
        results = _dist.all_gather_object(new) if distributed else [new]
        for res in results:
            if res is not None:
                self.shards[res[0]["file"]] = res[0]
        if main_process and any(res is not None and res[1] for res in results):
            self.write_manifest(False)
        if bar is not None:
            bar.update(1 if new is not None else 0)
        if on_shard is not None and new is not None and new[1]:
            on_shard(pending[0])


@dataclass
class _Pending:
    """A shard being finished: its manifest entry (kept), or its write (new: ``job``, then
    the writer thread's future)."""

    entry: dict[str, Any] | None = None
    job: tuple | None = None
    future: Any = None
    new: bool = False

    def submit(self, writer: ThreadPoolExecutor) -> "_Pending":
        if self.job is not None:
            self.future, self.job = writer.submit(*self.job), None
        return self

    def result(self) -> tuple[dict[str, Any], bool]:
        return (self.future.result() if self.future is not None else self.entry), self.new


def encode_dataset(
    images,
    labels,
    out: str | Path,
    settings: EncodeSettings = EncodeSettings(),
    *,
    ids: Sequence[int] | None = None,
    source: dict[str, Any] | None = None,
    device: torch.device | str | None = None,
    progress: bool = False,
    on_shard: Callable[[int], None] | None = None,
    distributed: bool | None = None,
    memory=None,
) -> "CodeStore":
    """Encode ``images`` (N, H, W) / (N, 3, H, W), uint8 or [0, 1] float, into a store.

    Resumable: if ``out`` already holds a store made with the same settings, dictionary
    and source images, every shard that verifies is kept and only the rest is encoded. A
    store with other settings raises :class:`StoreError` (use another folder).

    Parameters
    ----------
    ids : optional
        Index of each image in its source (default 0..N-1); stored per image.
    source : dict, optional
        Description of the source (dataset, split, subset) recorded in the manifest.
    device : optional
        Where to encode: ``"auto"``/None (default: CUDA when available), ``"cpu"``,
        ``"cuda"``, ``"cuda:N"`` or a ``torch.device`` (:func:`csc.runtime.device.resolve_device`).
    on_shard : callable, optional
        Called with the shard number after each shard is written (progress hooks; a
        test uses it to interrupt a run).
    distributed : bool, optional
        Split the shards over the processes of the default process group (rank ``r``
        encodes shards ``r, r + N, …``; rank 0 writes the manifest after a barrier).
        Default: whenever one is initialised with several processes
        (:func:`csc.runtime.distributed.init_distributed`). Every process must call this with the
        same arguments and see the same ``out`` folder; each returns the finished store.
    memory : csc.runtime.memory.MemoryBudget, optional
        Caps the memory of a solve: a shard is coded in batches sized to it (default: the
        device's free memory), a batch that runs out of memory split and retried; the
        store's bytes do not depend on it.
    """
    from csc.problems.cbpdn import ConvBPDN
    from csc.core.options import CBPDNOptions
    from csc.runtime import distributed as _dist

    out = Path(out)
    images, labels, ids_arr = _check_labels_ids(images, labels, ids)
    dev = resolve_device(device)
    sdtype = torch.float64 if settings.solver_dtype == "float64" else torch.float32
    D, dsha = _load_store_dictionary(settings, dev, sdtype)
    header = _store_header(settings, images, labels, ids_arr, tuple(D.shape), dsha, sdtype, source)
    distributed, rank, world = _dist.resolve_distributed(distributed)
    # FFTW_ESTIMATE: the same FFT plans in every run, so a repeat gives the same bytes
    solver = ConvBPDN(D, settings.lmbda, CBPDNOptions(
        max_iter=settings.max_iter, rel_stop_tol=settings.rel_stop_tol, record_stats=False,
        l1_weight=settings.l1_weight, relax=settings.relax, rsdl_ratio=settings.rsdl_ratio,
        dtype=sdtype, device=dev, fftw_planner="FFTW_ESTIMATE"))
    with _store_lock(out, distributed, rank == 0) as created:
        shards = _previous_shards(out, header["settings_digest"])
        fresh = not shards and not (out / MANIFEST).is_file()
        enc = _StoreEncoder(out, header, shards, images, labels, ids_arr, settings, solver, dev, sdtype, memory)
        try:
            _encode_all(enc, distributed, rank, world, progress, on_shard)
        except BaseException:
            if fresh and rank == 0 and not any((out / _shard_name(i)).is_file() for i in range(header["num_shards"])):
                (out / MANIFEST).unlink(missing_ok=True)  # nothing finished: leave no store behind
                (out / LOCK).unlink(missing_ok=True)
                remove_if_empty(created)
            raise
    return CodeStore(out)


def _encode_all(enc: "_StoreEncoder", distributed: bool, rank: int, world: int, progress: bool,
                on_shard: Callable[[int], None] | None) -> None:
    """Write the manifest, encode every missing shard, then write the final manifest."""
    from csc.runtime import distributed as _dist

    main_process = rank == 0
    if distributed:
        _dist.barrier()  # every rank has read (and checked) the old manifest before rank 0 rewrites it
    if main_process:
        enc.write_manifest(False)
    if distributed:
        _dist.barrier()
    enc.run_rounds(rank, world, distributed, progress, on_shard)
    n_shards = enc.header["num_shards"]
    if len(enc.shards) != n_shards:
        raise StoreError(f"{enc.out}: {len(enc.shards)} of {n_shards} shards after encoding")
    if main_process:
        enc.write_manifest(True, _store_summary(enc.shards, enc.images.shape[0], enc.per_image))
    if distributed:
        _dist.barrier()  # the manifest is written before any rank opens the store


@contextlib.contextmanager
def _store_lock(out: Path, distributed: bool, main_process: bool):
    """Hold an exclusive lock on store folder ``out`` (made if needed) for one encoding job.

    The main process takes ``out/.lock`` (``flock``, released when the process ends, so a
    killed job leaves no stale lock) and tells the other ranks of its job whether it got
    it: a second job writing into the same folder gets a StoreError on every rank. Stale
    temporary files of a killed run are removed once the lock is held. Yields the folders
    created for the store.
    """
    from csc.runtime import distributed as _dist

    created: list[Path] = []
    fd, refusal = None, None
    if main_process:
        try:
            created = prepare_dir(out, "out")
            fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OutputError as exc:
            refusal = ("output", str(exc))
        except BlockingIOError:
            refusal = ("store", f"out: {str(out)!r} is being written by another encoding job (it holds {LOCK}); "
                                "wait for it to finish, or choose another folder")
        except OSError as exc:
            refusal = ("output", f"out: cannot write to {str(out)!r}: {exc.strerror or exc}")
        if refusal is not None and fd is not None:
            os.close(fd)
            fd = None
        if refusal is None:
            for tmp in out.glob(".*.tmp"):  # atomic_write's temporary files, left by a killed run
                tmp.unlink(missing_ok=True)
    if distributed:
        refusal = _dist.broadcast_object(refusal)
    if refusal is not None:
        raise (OutputError if refusal[0] == "output" else StoreError)(refusal[1])
    try:
        yield created
    finally:
        if fd is not None:
            os.close(fd)


# --------------------------------------------------------------------------- reading
class CodeStore:
    """Read access to a store: ``len(store)``, ``store.get(i)`` → (codes (K, H, W), label).

    Shards are loaded lazily and kept in memory (a store of sparse codes is small; pass
    ``cache_shards`` to bound how many stay loaded). Each shard is checked against the
    manifest's checksum when first loaded (``check=False`` skips that).
    """

    def __init__(self, root: str | Path, check: bool = True, cache_shards: int | None = None):
        self.root = Path(root)
        mp = self.root / MANIFEST
        if not mp.is_file():
            raise StoreError(f"{self.root}: no {MANIFEST} (not a code store)")
        try:
            self.manifest: dict[str, Any] = json.loads(mp.read_text())
        except json.JSONDecodeError as exc:
            raise StoreError(f"{mp}: not valid JSON ({exc})") from exc
        _check_manifest(self.manifest, mp)
        self.check = check
        self.cache_shards = cache_shards
        self.shards = list(self.manifest["shards"])
        self.code_shape = tuple(self.manifest["code_shape"])
        self._starts = np.array([e["start"] for e in self.shards], dtype=np.int64)
        self._cache: dict[int, dict[str, np.ndarray]] = {}
        self._labels: np.ndarray | None = None

    @property
    def complete(self) -> bool:
        return bool(self.manifest.get("complete")) and sum(e["count"] for e in self.shards) == self.manifest["num_images"]

    def __len__(self) -> int:
        return int(sum(e["count"] for e in self.shards))

    @property
    def num_classes(self) -> int:
        return int(self.manifest.get("num_classes", 0))

    def _shard(self, s: int) -> dict[str, np.ndarray]:
        if s not in self._cache:
            e = self.shards[s]
            arrays = _read_shard(self.root / e["file"])
            if self.check:
                _check_shard(arrays, e, int(np.prod(self.code_shape)), e["file"])
            if self.cache_shards is not None and len(self._cache) >= self.cache_shards:
                self._cache.pop(next(iter(self._cache)))
            self._cache[s] = arrays
        return self._cache[s]

    def _locate(self, i: int) -> tuple[int, int]:
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for a store of {len(self)} images")
        s = int(np.searchsorted(self._starts, i, side="right") - 1)
        return s, i - int(self._starts[s])

    def sparse(self, i: int) -> tuple[np.ndarray, np.ndarray, int, int]:
        """Image i as (values, flat coords, label, id) without densifying."""
        s, j = self._locate(i)
        a = self._shard(s)
        lo, hi = a["offsets"][j], a["offsets"][j + 1]
        return a["values"][lo:hi], a["coords"][lo:hi], int(a["labels"][j]), int(a["ids"][j])

    def get(self, i: int, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, int]:
        """Dense codes (K, H, W) and the label of image i."""
        values, coords, label, _ = self.sparse(i)
        out = torch.zeros(int(np.prod(self.code_shape)), dtype=dtype)
        out[torch.from_numpy(coords.astype(np.int64))] = torch.from_numpy(values.astype(np.float32)).to(dtype)
        return out.reshape(self.code_shape), label

    def dense(self, indices: Sequence[int] | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Dense codes of several images, (n, K, H, W)."""
        idx = range(len(self)) if indices is None else indices
        return torch.stack([self.get(int(i), dtype)[0] for i in idx]) if len(idx) else torch.zeros((0,) + self.code_shape)

    @property
    def labels(self) -> np.ndarray:
        if self._labels is None:
            self._labels = np.concatenate([self._shard(s)["labels"] for s in range(len(self.shards))]) \
                if self.shards else np.zeros(0, np.int64)
        return self._labels

    def nbytes(self) -> int:
        """Bytes of the shard files on disk."""
        return sum((self.root / e["file"]).stat().st_size for e in self.shards)


#: Settings that change what a code means (not how it is stored or which images it holds).
_ENCODING_SETTINGS = ("dictionary", "lmbda", "max_iter", "rel_stop_tol", "size", "preprocess", "gray_weights")


def check_same_encoding(reference: "CodeStore", other: "CodeStore", arg: str) -> None:
    """ValueError naming ``arg`` unless ``other`` was encoded like ``reference``: the same
    dictionary (by hash), code shape and coding settings (a classifier trained on one and
    tested on the other would be measuring nothing)."""
    a, b = reference.manifest, other.manifest
    diffs = [k for k in ("dictionary_sha256", "code_shape") if a.get(k) != b.get(k)]
    diffs += [f"settings.{k}" for k in _ENCODING_SETTINGS if a["settings"].get(k) != b["settings"].get(k)]
    if diffs:
        raise ValueError(f"{arg}: {str(other.root)!r} was encoded differently from {str(reference.root)!r} "
                         f"({', '.join(diffs)} differ); encode both with the same dictionary and settings")


def verify_store(root: str | Path) -> list[str]:
    """Check a store; returns a list of problems (empty when the store is intact and complete).

    Checks the manifest, that every shard exists, loads, matches its checksum, counts,
    offsets and coordinate range, that shards tile the source without gaps, and that the
    run completed.
    """
    problems: list[str] = []
    try:
        store = CodeStore(root, check=False)
    except StoreError as exc:
        return [str(exc)]
    m = store.manifest
    per_image = int(np.prod(store.code_shape))
    expected = 0
    for e in store.shards:
        if e["start"] != expected:
            problems.append(f"{e['file']}: starts at image {e['start']}, expected {expected}")
        expected = e["start"] + e["count"]
        path = store.root / e["file"]
        if not path.is_file():
            problems.append(f"{e['file']}: missing")
            continue
        try:
            arrays = _read_shard(path)
            _check_shard(arrays, e, per_image, e["file"])
            meta = json.loads(str(arrays["metadata"][()]))
            if meta.get("settings_digest") != m.get("settings_digest"):
                problems.append(f"{e['file']}: made with other settings")
        except StoreError as exc:
            problems.append(str(exc))
    if m.get("complete") and len(store.shards) != m.get("num_shards"):
        problems.append(f"{len(store.shards)} shard entries, expected {m.get('num_shards')}")
    if expected != m.get("num_images") or not m.get("complete"):
        problems.append(f"incomplete: {len(store)} of {m.get('num_images')} images encoded "
                        "(run the same encode command again to resume)")
    return problems

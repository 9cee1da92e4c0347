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
``labels`` (n,) int64 and ``ids`` (n,) int64
    The class label and the index of the image in the source.
``metadata``
    JSON, the shard's header: its number, start, count, the store's ``settings_digest``,
    the content checksum and (format 2) a copy of the manifest's header.

The manifest's ``settings_digest`` covers every field of its header (format 2: settings,
dictionary hash, kernels, code shape, dtypes, image, shard and class counts, source), so an
edited manifest is refused on open. The content checksum is
:func:`csc.dictionary.io.sha256_of_array` over (values, coords, offsets, labels, ids); it is
recorded both in the shard and in the manifest, so ``verify`` detects a shard that was
altered, truncated or replaced. The shard's header binds it to its store and position: a
reader (:class:`CodeStore`, hence the training datasets) checks it when it first loads the
shard, so shards reordered in the manifest or grafted in from another store are refused,
as ``verify`` refuses them. Stores of format 1 (whose digest left out kernels, class count
and dtypes) still open, with a :class:`StoreFormatWarning`.

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

The store's parts: :mod:`csc.pipeline.store_format` (settings, shard files, manifest checks),
:mod:`csc.pipeline.store_writer` (the encoding job) and this module (:func:`encode_dataset`,
the reader :class:`CodeStore`, :func:`check_same_encoding`, :func:`verify_store`), which
re-exports every public name of the other two.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from csc.pipeline.store_format import (  # noqa: F401  (STORE_VERSION: re-exported, as before the split)
    LOCK, MANIFEST, STORE_FORMAT, STORE_VERSION, EncodeSettings, StoreError, StoreFormatWarning, _check_manifest,
    _check_shard, _check_shard_header, _read_shard, _shard_name, preprocess_images, warn_old_format)
from csc.pipeline.store_writer import (_check_labels_ids, _encode_all, _load_store_dictionary, _previous_shards,
                                       _store_header, _store_lock, _StoreEncoder, _warm_start)
from csc.runtime.device import resolve_device
from csc.runtime.outputs import remove_if_empty

__all__ = [
    "STORE_FORMAT",
    "EncodeSettings",
    "CodeStore",
    "StoreError",
    "StoreFormatWarning",
    "check_same_encoding",
    "encode_dataset",
    "preprocess_images",
    "verify_store",
]


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
    from csc.core.options import CBPDNOptions
    from csc.problems.cbpdn import ConvBPDN
    from csc.runtime import distributed as _dist

    from csc.core.checks import check_bool

    progress = check_bool("progress", progress)
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
            enc.warm = _warm_start(enc, distributed, rank == 0, progress)
            _encode_all(enc, distributed, rank, world, progress, on_shard)
        except BaseException:
            if fresh and rank == 0 and not any((out / _shard_name(i)).is_file() for i in range(header["num_shards"])):
                (out / MANIFEST).unlink(missing_ok=True)  # nothing finished: leave no store behind
                (out / LOCK).unlink(missing_ok=True)
                remove_if_empty(created)
            raise
    return CodeStore(out)


# --------------------------------------------------------------------------- reading
class CodeStore:
    """Read access to a store: ``len(store)``, ``store.get(i)`` → (codes (K, H, W), label).

    Shards are loaded lazily and kept in memory (a store of sparse codes is small; pass
    ``cache_shards`` to bound how many stay loaded). Opening checks the manifest (its fields
    against its digest, its entries in order); each shard's header is checked when the shard
    is first loaded (it names this store's digest and header, its position and its entry:
    a reordered, foreign or edited shard raises :class:`StoreError`), and so is its content
    checksum unless ``check=False``. A store of format 1 opens with a
    :class:`StoreFormatWarning`.
    """

    def __init__(self, root: str | Path, check: bool = True, cache_shards: int | None = None):
        from csc.core.checks import check_bool

        check = check_bool("check", check)
        self.root = Path(root)
        mp = self.root / MANIFEST
        if not mp.is_file():
            raise StoreError(f"{self.root}: no {MANIFEST} (not a code store)")
        try:
            self.manifest: dict[str, Any] = json.loads(mp.read_text())
        except json.JSONDecodeError as exc:
            raise StoreError(f"{mp}: not valid JSON ({exc})") from exc
        _check_manifest(self.manifest, mp)
        warn_old_format(self.manifest, self.root)
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
            arrays = self._load_shard(s, self.check)
            if self.cache_shards is not None and len(self._cache) >= self.cache_shards:
                self._cache.pop(next(iter(self._cache)))
            self._cache[s] = arrays
        return self._cache[s]

    def _load_shard(self, s: int, checksum: bool) -> dict[str, np.ndarray]:
        """Shard s's arrays, its header checked (and its content, with ``checksum``)."""
        e = self.shards[s]
        arrays = _read_shard(self.root / e["file"])
        _check_shard_header(arrays, e, s, self.manifest)
        if checksum:
            _check_shard(arrays, e, int(np.prod(self.code_shape)), e["file"])
        return arrays

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

    Checks the manifest (every field against its digest, the entries in order), and every
    shard: present, loadable, bound to this store and to its position by its own header,
    matching its checksum, counts, offsets and coordinate range, and that the run completed.
    """
    try:
        store = CodeStore(root, check=False)
    except StoreError as exc:
        return [str(exc)]
    m = store.manifest
    problems: list[str] = []
    for s, e in enumerate(store.shards):
        try:
            store._load_shard(s, checksum=True)
        except StoreError as exc:
            problems.append(str(exc))
    if m.get("complete") and len(store.shards) != m.get("num_shards"):
        problems.append(f"{len(store.shards)} shard entries, expected {m.get('num_shards')}")
    if len(store) != m.get("num_images") or not m.get("complete"):
        problems.append(f"incomplete: {len(store)} of {m.get('num_images')} images encoded "
                        "(run the same encode command again to resume)")
    return problems

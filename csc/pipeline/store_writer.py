"""Writing a code store: the encoding job behind :func:`csc.pipeline.store.encode_dataset`.

The job's parts, in the order it runs them: the inputs checked (:func:`_check_labels_ids`),
the dictionary loaded (:func:`_load_store_dictionary`), the manifest's fixed part and the
digest that identifies the store (:func:`_store_header`), the folder locked for one job
(:func:`_store_lock`), the shards of an earlier run of the same store found
(:func:`_previous_shards`), and the shards coded and written (:class:`_StoreEncoder`: a
shard that verifies is kept, a new one coded while the previous one is written by a
background thread, the manifest rewritten after every round; across processes, shard ``i``
by rank ``i mod N``, rank 0 writing the manifest), then the final manifest with the store's
sizes and timings (:func:`_encode_all`, :func:`_store_summary`). The format is
:mod:`csc.pipeline.store_format`'s; the layout and the resume rules are described in
:mod:`csc.pipeline.store`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from csc.core.checks import check_image_size, host_array
from csc.dictionary.io import atomic_write, sha256_of_array
from csc.pipeline.store_format import (MANIFEST, LOCK, STORE_FORMAT, STORE_VERSION, WARM_START_FILE, EncodeSettings,
                                       StoreError,
                                       _check_manifest, _check_shard, _check_shard_header, _coord_dtype,
                                       _identity_digest, _pack, _read_shard, _savez_deterministic, _shard_checksum,
                                       _shard_meta, _shard_name, _store_header_copy, preprocess_images)
from csc.runtime.outputs import OutputError, prepare_dir

__all__: list[str] = []  # the job's parts: encode_dataset (csc.pipeline.store) is the public entry


def _source_digest(images: np.ndarray, labels: np.ndarray, ids: np.ndarray) -> str:
    return sha256_of_array(np.ascontiguousarray(images), labels.astype(np.int64), ids.astype(np.int64))


def _check_labels_ids(images, labels, ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``images``, ``labels`` (int64) and ``ids`` (int64, default 0..N-1) as arrays, checked:
    images uint8 (0–255) or floating in [0, 1], labels whole numbers ≥ 0, ids unique and ≥ 0."""
    images = _check_images(host_array(images))
    N = images.shape[0] if images.ndim else 0
    labels = _whole_numbers("labels", host_array(labels), N)
    if labels.size and labels.min() < 0:
        i = int(np.argmin(labels))
        raise ValueError(f"labels: expected class indices >= 0, got {labels[i]} (image {i})")
    ids_arr = np.arange(N, dtype=np.int64) if ids is None else _whole_numbers("ids", host_array(ids), N)
    if ids_arr.size and ids_arr.min() < 0:
        raise ValueError(f"ids: expected indices >= 0 into the source, got {int(ids_arr.min())}")
    uniq, counts = np.unique(ids_arr, return_counts=True)
    if np.any(counts > 1):
        raise ValueError(f"ids: expected one id per image, id {int(uniq[np.argmax(counts > 1)])} appears "
                         f"{int(counts.max())} times")
    return images, labels, ids_arr


def _check_images(images: np.ndarray) -> np.ndarray:
    """uint8 (0–255) or floating [0, 1] images; ValueError naming ``images`` for another dtype
    (uint16, int64 … would be coded unscaled) or floats outside [0, 1] (0–255 floats)."""
    if images.dtype == np.uint8:
        return images
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"images: expected uint8 (0-255) or floating-point images in [0, 1], got {images.dtype}; "
                         "scale them to [0, 1] floats (e.g. uint16: images / 65535.0)")
    if images.size and not np.isfinite(images).all():
        raise ValueError("images: expected finite values, got NaN or infinity")
    if images.size and (images.min() < -1e-3 or images.max() > 1 + 1e-3):
        raise ValueError(f"images: floating-point images are expected in [0, 1], got values in "
                         f"[{float(images.min()):g}, {float(images.max()):g}]; divide 0-255 images by 255 "
                         "(or pass them as uint8)")
    return images


def _whole_numbers(name: str, a: np.ndarray, n: int) -> np.ndarray:
    """``a`` of shape (n,) as int64; ValueError naming ``name`` for another shape, or for a
    non-integer value (a float label 2.7 would be truncated)."""
    if a.shape != (n,):
        raise ValueError(f"{name}: expected shape ({n},), got {a.shape}")
    if a.dtype == np.bool_ or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"{name}: expected integers, got dtype {a.dtype}")
    if np.issubdtype(a.dtype, np.floating) and a.size and not (np.isfinite(a).all() and np.all(a == np.round(a))):
        bad = a[~(np.isfinite(a) & (a == np.round(a)))][0]
        raise ValueError(f"{name}: expected whole numbers, got {bad!r}")
    return a.astype(np.int64)


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
        "settings": settings.record(),
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
    if old.get("settings_digest") != settings_digest and old.get("version") != STORE_VERSION:
        raise StoreError(f"{out}: holds a store of format version {old.get('version')} (an earlier csc), which "
                         "this one does not extend; encode into another folder (or delete this one)")
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
    warm: Any = None  # the warm-start predictor (csc.nn.warmstart), or None: cold starts

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
        if not path.is_file():
            return None
        try:
            arrays = _read_shard(path)
            meta = _shard_meta(arrays, name)
            entry = self.shards.get(name) or {
                "file": name, "count": hi - lo, "start": lo, "sha256": meta.get("sha256"),
                "nnz": int(arrays["values"].size), "bytes": path.stat().st_size,
                "seconds": meta.get("seconds"), "device": meta.get("device")}
            _check_shard_header(arrays, entry, i, self.header)
            if entry["start"] == lo and entry["count"] == hi - lo:
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
        codes = solve_in_batches(self.solver, signal, self.memory, warm_start=self.warm).codes
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
                "settings_digest": self.header["settings_digest"], "sha256": sha,
                "store": _store_header_copy(self.header)}
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


def _warm_start(enc: "_StoreEncoder", distributed: bool, main_process: bool, progress: bool):
    """The store's warm-start predictor (None when cold): ``settings.warm_start``'s file, checked
    against the dictionary, λ and preprocessing; or, with ``warm_start_train`` N, the one in the
    store (``warm-start.npz``, trained for this store's digest) or a new one trained on the first
    N images coded cold (:func:`csc.nn.warmstart.fit_warm_start`, generator seed 0), saved there
    by the main process. Its training's record goes into the manifest (``warm_start_training``)."""
    from csc.nn.warmstart import fit_warm_start, load_warm_start
    from csc.runtime import distributed as _dist

    st, D = enc.settings, enc.solver.dictionary
    pre = st.preprocessing_record()
    if st.warm_start is not None:
        return load_warm_start(st.warm_start, D, st.lmbda, preprocessing=pre)
    if not st.warm_start_train:
        return None
    path, digest = enc.out / WARM_START_FILE, enc.header["settings_digest"]
    pred = _stored_predictor(path, D, st.lmbda, pre, digest) if main_process else None
    if main_process and pred is None:
        n = min(st.warm_start_train, enc.images.shape[0])
        signal = preprocess_images(enc.images[:n], st, device=enc.dev, dtype=enc.sdtype)
        pred, _ = fit_warm_start(enc.solver, signal, generator=torch.Generator().manual_seed(0),
                                 preprocessing=pre, progress=progress)
        pred.record["store_settings_digest"] = digest
        pred.save(path)
    if distributed:
        _dist.barrier()  # the main process has saved the predictor
        if not main_process:
            pred = load_warm_start(path, D, st.lmbda, preprocessing=pre)
    enc.header["warm_start_training"] = {k: v for k, v in pred.record.items() if k != "losses"}
    return pred


def _stored_predictor(path: Path, D, lmbda: float, pre: dict, digest: str):
    """The predictor a previous run of this store saved at ``path``, or None (none, another
    store's, or unreadable: it is then trained again)."""
    from csc.nn.warmstart import load_warm_start

    if not path.is_file():
        return None
    try:
        pred = load_warm_start(path, D, lmbda, preprocessing=pre)
    except ValueError:
        return None
    return pred if pred.record.get("store_settings_digest") == digest else None

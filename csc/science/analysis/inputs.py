"""Input handling: arrays and tensors to float64 ndarrays, checked, with errors naming the argument."""

from __future__ import annotations

import numpy as np


def _to_numpy(name: str, value) -> np.ndarray:
    """Convert a tensor / array / sequence to a float64 ndarray, naming ``name`` on error."""
    try:
        import torch

        if isinstance(value, torch.Tensor):
            if value.is_complex():
                raise TypeError(f"{name}: expected real values, got {value.dtype}")
            value = value.detach().cpu().to(torch.float64).numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    try:
        arr = np.asarray(value)
    except Exception as exc:
        raise TypeError(f"{name}: expected an array or tensor, got {type(value).__name__}") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating)
        or np.issubdtype(arr.dtype, np.integer)
        or arr.dtype == np.bool_
    ):
        raise TypeError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def _check_finite(name: str, arr: np.ndarray) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{name}: expected finite values, found {int(bad.sum())} NaN/Inf entries")


def _check_bins(name: str, bins, minimum: int) -> int:
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer number of bins, got {bins!r}")
    if bins < minimum:
        raise ValueError(f"{name}: expected at least {minimum} bins, got {bins}")
    return int(bins)


def _codes_array(codes, ndim: int, layout: str) -> np.ndarray:
    arr = _to_numpy("codes", codes)
    if arr.ndim != ndim:
        raise ValueError(f"codes: expected {ndim} dimensions ({layout}), got shape {arr.shape}")
    _check_finite("codes", arr)
    return arr


def _theta_array(theta, n_kernels: int) -> np.ndarray:
    th = _to_numpy("theta", theta)
    if th.ndim != 1:
        raise ValueError(f"theta: expected a 1-D array of K per-kernel orientations, got shape {th.shape}")
    if th.shape[0] != n_kernels:
        raise ValueError(
            f"theta: expected one orientation per kernel (K = {n_kernels}), got length {th.shape[0]}"
        )
    _check_finite("theta", th)
    return th

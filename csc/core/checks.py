"""Input validation shared by every public entry point.

Each check raises an error that names the argument and says what was expected, so a
user never has to read a traceback from deep inside an FFT to learn that an image held
a NaN.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import torch

__all__ = [
    "as_float_tensor",
    "check_finite",
    "check_ndim",
    "check_nonnegative",
]


def as_float_tensor(
    name: str,
    value,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Convert ``value`` (tensor, ndarray or nested sequence) to a floating tensor.

    Integer and boolean input is rejected rather than silently rescaled: the caller
    must decide what an integer pixel value means.
    """
    if isinstance(value, torch.Tensor):
        t = value
    elif isinstance(value, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(value))
    else:
        try:
            t = torch.as_tensor(np.asarray(value))
        except Exception as exc:  # pragma: no cover - message path
            raise TypeError(f"{name}: expected a tensor or array, got {type(value).__name__}") from exc
    if dtype is None and not t.is_floating_point():
        raise TypeError(
            f"{name}: expected a floating-point tensor (float32 or float64), got {t.dtype}; "
            "convert it first, e.g. images.float() / 255"
        )
    if t.is_complex():
        raise TypeError(f"{name}: expected a real tensor, got {t.dtype}")
    if dtype is not None or device is not None:
        t = t.to(dtype=dtype or t.dtype, device=device or t.device)
    if t.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{name}: expected float32 or float64, got {t.dtype}")
    return t


def check_finite(name: str, t: torch.Tensor) -> None:
    """Raise ``ValueError`` if ``t`` holds NaN or Inf."""
    if not bool(torch.isfinite(t).all()):
        n_bad = int((~torch.isfinite(t)).sum())
        raise ValueError(f"{name}: expected finite values, found {n_bad} NaN/Inf entries")


def check_ndim(name: str, t: torch.Tensor, allowed: Iterable[int], layout: str) -> None:
    """Raise ``ValueError`` unless ``t.ndim`` is one of ``allowed``."""
    allowed = tuple(allowed)
    if t.ndim not in allowed:
        raise ValueError(
            f"{name}: expected {' or '.join(map(str, allowed))} dimensions ({layout}), "
            f"got shape {tuple(t.shape)}"
        )


def check_nonnegative(name: str, value: float) -> float:
    """Return ``value`` as a float, raising unless it is a finite number ≥ 0."""
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected a number, got {value!r}") from exc
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name}: expected a finite value >= 0, got {value!r}")
    return v


def check_weights(name: str, w, like: torch.Tensor) -> "float | torch.Tensor":
    """Non-negative finite weights: a float for a scalar (or a 0-d array), else a tensor of
    ``like``'s dtype and device (its shape is the caller's to check)."""
    if isinstance(w, (int, float, np.floating, np.integer)) and not isinstance(w, bool):
        return check_nonnegative(name, w)
    wt = as_float_tensor(name, w, like.dtype, like.device)
    check_finite(name, wt)
    if bool((wt < 0).any()):
        raise ValueError(f"{name}: expected weights >= 0, found negative entries")
    return float(wt) if wt.ndim == 0 else wt

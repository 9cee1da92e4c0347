"""Conversions between SPORCO's array layouts and csc's.

SPORCO puts the spatial axes first: dictionary D (kh, kw[, C], K), images
S (H, W[, C][, B]), codes X (H, W, C, B, K). csc is batch-first: dictionary (K, kh, kw),
images (B, H, W) or (B, C, H, W), codes (B, K, H, W) or (B, C, K, H, W).
SPORCO's option names map to :class:`csc.CBPDNOptions` fields through
:meth:`csc.CBPDNOptions.from_sporco` (table :data:`csc.core.options.SPORCO_CBPDN_NAMES`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

__all__ = ["from_sporco_layout", "to_sporco_layout"]

Kind = Literal["dictionary", "images", "codes"]


def _perm(a, axes):
    if isinstance(a, torch.Tensor):
        return a.permute(*axes)
    return np.transpose(a, axes)


#: kind → (number of axes → the axis permutation from SPORCO's layout to csc's (None: none),
#: the layouts accepted, for the message); codes are converted apart (their channel axis)
_FROM_SPORCO = {
    "dictionary": ({3: (2, 0, 1), 4: (3, 2, 0, 1)}, "a SPORCO dictionary is (kh, kw, K) or (kh, kw, C, K)"),
    "images": ({2: None, 3: (2, 0, 1), 4: (3, 2, 0, 1)}, "SPORCO images are (H, W[, C][, B])"),
}
#: the same from csc's layout to SPORCO's (the inverse permutations)
_TO_SPORCO = {
    "dictionary": ({3: (1, 2, 0), 4: (2, 3, 1, 0)}, "a csc dictionary is (K, kh, kw) or (K, C, kh, kw)"),
    "images": ({2: None, 3: (1, 2, 0), 4: (2, 3, 1, 0)}, "csc images are (H, W), (B, H, W) or (B, C, H, W)"),
}


def _permuted(array, layouts):
    """``array`` with its axes permuted as ``layouts`` (an entry of :data:`_FROM_SPORCO` or
    :data:`_TO_SPORCO`) says for its number of axes; ValueError naming the layouts otherwise."""
    axes, accepted = layouts
    if array.ndim not in axes:
        raise ValueError(f"array: {accepted}, got shape {tuple(array.shape)}")
    return array if axes[array.ndim] is None else _perm(array, axes[array.ndim])


def _check_kind(kind: str, array) -> None:
    if kind not in ("dictionary", "images", "codes"):
        raise ValueError(f"kind: expected 'dictionary', 'images' or 'codes', got {kind!r}")
    if not isinstance(array, (np.ndarray, torch.Tensor)):
        raise TypeError(f"array: expected a numpy array or a tensor ({kind}), got {type(array).__name__}")


def from_sporco_layout(array, kind: Kind, multichannel: bool = False):
    """Convert a SPORCO-layout array (ndarray or tensor) to csc's layout.

    Parameters
    ----------
    array : ndarray or tensor
    kind : 'dictionary', 'images' or 'codes'
        dictionary (kh, kw, K) → (K, kh, kw) and (kh, kw, C, K) → (K, C, kh, kw);
        images (H, W) unchanged, (H, W, B) → (B, H, W) (or (H, W, C) → (1, C, H, W) with
        ``multichannel``), (H, W, C, B) → (B, C, H, W); codes (H, W, C, B, K) →
        (B, K, H, W) when C = 1, else (B, C, K, H, W).
    multichannel : bool
        For 3-D images only: whether the third axis holds channels (SPORCO's ``dimK=0``)
        rather than images (``dimK=1``).
    """
    _check_kind(kind, array)
    if kind != "codes":
        out = _permuted(array, _FROM_SPORCO[kind])
        return out[None] if kind == "images" and array.ndim == 3 and multichannel else out
    if array.ndim != 5:
        raise ValueError(f"array: SPORCO codes are (H, W, C, B, K), got shape {tuple(array.shape)}")
    out = _perm(array, (3, 2, 4, 0, 1))  # (B, C, K, H, W)
    return out[:, 0] if array.shape[2] == 1 else out


def to_sporco_layout(array, kind: Kind):
    """Convert a csc-layout array (ndarray or tensor) to SPORCO's layout.

    The inverse of :func:`from_sporco_layout`: dictionary (K, kh, kw) → (kh, kw, K);
    images (B, H, W) → (H, W, B) and (B, C, H, W) → (H, W, C, B); codes (B, K, H, W) →
    (H, W, 1, B, K) and (B, C, K, H, W) → (H, W, C, B, K).
    """
    _check_kind(kind, array)
    if kind != "codes":
        return _permuted(array, _TO_SPORCO[kind])
    if array.ndim == 4:
        array = array[:, None]
    if array.ndim != 5:
        raise ValueError(f"array: csc codes are (B, K, H, W) or (B, C, K, H, W), got shape {tuple(array.shape)}")
    return _perm(array, (3, 4, 1, 0, 2))

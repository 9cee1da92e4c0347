"""Dictionaries drawn as one image: kernels tiled on a grid (SPORCO's ``util.tiledict``).

:func:`tile_dictionary` lays out grey kernels (K, kh, kw) — each scaled to its own
max |·|, so the grid is in [-1, 1] with NaN in the gaps — or colour kernels
(K, 3, kh, kw) — each mapped to [0, 1] by its own minimum and maximum over its channels,
an (H, W, 3) image with white gaps. ``style="sporco"`` gives SPORCO's ``tiledict``
image instead (the whole dictionary shifted and scaled to [0, 1], ⌊√K⌋ rows, one-pixel
white gaps and no border). :func:`plot_dictionary` shows it on matplotlib axes.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["plot_dictionary", "tile_dictionary"]


def _as_array(kernels) -> np.ndarray:
    D = kernels.detach().cpu().numpy() if isinstance(kernels, torch.Tensor) else np.asarray(kernels)
    if not np.issubdtype(D.dtype, np.floating):
        raise TypeError(f"kernels: expected floating-point kernels, got {D.dtype}")
    if D.ndim == 4 and D.shape[1] != 3:
        raise ValueError(f"kernels: colour kernels are (K, 3, kh, kw), got shape {D.shape}")
    if D.ndim not in (3, 4) or D.shape[0] == 0:
        raise ValueError(f"kernels: expected (K, kh, kw) or (K, 3, kh, kw), got shape {D.shape}")
    if not np.isfinite(D).all():
        raise ValueError("kernels: expected finite values")
    return D.astype(np.float64)


def _sporco_tiles(D: np.ndarray) -> np.ndarray:
    """SPORCO's ``util.tiledict`` of csc-layout kernels (K, kh, kw) or (K, 3, kh, kw)."""
    K, kh, kw = D.shape[0], D.shape[-2], D.shape[-1]
    D = D - D.min()
    D = D / D.max() if D.max() > 0 else D
    nrows = int(math.floor(math.sqrt(K)))
    ncols = int(math.ceil(K / nrows))
    im = np.ones((nrows * kh + nrows - 1, ncols * kw + ncols - 1) + ((3,) if D.ndim == 4 else ()))
    for k in range(K):
        r, c = divmod(k, ncols)
        block = np.moveaxis(D[k], 0, -1) if D.ndim == 4 else D[k]
        im[r * (kh + 1): r * (kh + 1) + kh, c * (kw + 1): c * (kw + 1) + kw] = block
    return im


def tile_dictionary(kernels, ncols: int | None = None, pad: int = 1, style: str = "csc") -> np.ndarray:
    """Kernels on a grid of ``ncols`` columns (default ⌈√K⌉), ``pad`` pixels apart.

    Returns (rows·(kh+pad)+pad, cols·(kw+pad)+pad) in [-1, 1] with NaN gaps for grey
    kernels (K, kh, kw), or the same with a trailing axis of 3, in [0, 1] with white (1)
    gaps, for colour kernels (K, 3, kh, kw). ``style="sporco"``: SPORCO's ``tiledict``
    image of the same kernels (``ncols`` and ``pad`` are then SPORCO's).
    """
    D = _as_array(kernels)
    if style not in ("csc", "sporco"):
        raise ValueError(f"style: expected 'csc' or 'sporco', got {style!r}")
    if style == "sporco":
        return _sporco_tiles(D)
    K, kh, kw = D.shape[0], D.shape[-2], D.shape[-1]
    if ncols is not None and (not isinstance(ncols, int) or isinstance(ncols, bool) or ncols < 1):
        raise ValueError(f"ncols: expected an integer >= 1 or None, got {ncols!r}")
    if not isinstance(pad, int) or isinstance(pad, bool) or pad < 0:
        raise ValueError(f"pad: expected an integer >= 0, got {pad!r}")
    ncols = ncols or int(math.ceil(math.sqrt(K)))
    nrows = int(math.ceil(K / ncols))
    colour = D.ndim == 4
    shape = (nrows * (kh + pad) + pad, ncols * (kw + pad) + pad) + ((3,) if colour else ())
    grid = np.full(shape, 1.0 if colour else np.nan)
    for k in range(K):
        r, c = divmod(k, ncols)
        rows = slice(pad + r * (kh + pad), pad + r * (kh + pad) + kh)
        cols = slice(pad + c * (kw + pad), pad + c * (kw + pad) + kw)
        if colour:
            lo, hi = D[k].min(), D[k].max()
            grid[rows, cols] = np.moveaxis((D[k] - lo) / (hi - lo) if hi > lo else np.full_like(D[k], 0.5), 0, -1)
        else:
            m = np.abs(D[k]).max()
            grid[rows, cols] = D[k] / m if m > 0 else D[k]
    return grid


def plot_dictionary(ax, kernels, ncols: int | None = None, title: str | None = None, pad: int = 1,
                    style: str = "csc"):
    """Show :func:`tile_dictionary` of ``kernels`` on matplotlib axes ``ax``; returns ``ax``."""
    grid = tile_dictionary(kernels, ncols, pad, style)
    if grid.ndim == 3 or style == "sporco":
        ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    else:
        cmap = __import__("matplotlib").colormaps["gray"].with_extremes(bad="white")
        ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return ax

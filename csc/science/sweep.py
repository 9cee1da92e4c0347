r"""Pruning sweeps: sparseness and PSNR of pruned codes.

The sweep of §3.3 and Fig. 6 of the paper (Ladret, Casanova & Perrinet, "Kernel
heterogeneity improves sparseness of natural images representations").

For each threshold :math:`c` the codes are pruned with :func:`csc.science.prune.prune`
(absolute: zero :math:`|x| < c`; relative: zero :math:`|x| < c\max|x|` per image),
reconstructed as the solver does (circular synthesis :math:`\sum_k d_k * x_k`,
:func:`csc.core.ops.synthesis`, here in float64), mapped back to image space and compared
with the reference images:

.. math:: \hat I = a \odot \Big(\sum_k d_k * x'_k\Big) + \ell

where :math:`\ell` is the ``lowpass`` that was split off before coding (SPORCO's
examples code the highpass part of a Tikhonov filter and add the lowpass back) and
:math:`a` an optional ``scale`` (the local norm for codes of a local-contrast-normalised
image: ``scale=lcn.norm, lowpass=lcn.mean``).  Sparseness is the fraction of exactly
zero coefficients (:func:`csc.science.metrics.sparseness`), PSNR SPORCO's form
(:func:`csc.science.metrics.psnr`, the paper's figures) or the paper's eq. 6
(:func:`csc.science.metrics.psnr_paper`).

The paper's sweep is ``c = linspace(0.001, 0.5, 6)`` (absolute); the authors'
classifier prunes relative to the maximum with ``c = 1/m``, m ∈ {4, 2}.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from csc.core import ops
from csc.core.checks import check_bool, as_float_tensor, check_finite, check_ndim
from csc.science.metrics import broadcast_checked
from csc.science.metrics import psnr as _psnr
from csc.science.metrics import psnr_paper as _psnr_paper
from csc.science.metrics import sparseness as _sparseness
from csc.science.prune import prune

__all__ = [
    "DEFAULT_THRESHOLDS",
    "DICTIONARY_COLORS",
    "PruningSweep",
    "dictionary_color",
    "plot_pruning_curves",
    "pruning_sweep",
]

#: The paper's absolute pruning thresholds (Fig. 6): ``linspace(0.001, 0.5, 6)``.
DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(float(c) for c in np.linspace(0.001, 0.5, 6))

#: Colours of the paper's Fig. 2 for the five dictionaries (others get matplotlib's cycle).
DICTIONARY_COLORS: dict[str, str] = {
    "homogeneous": "tab:green",
    "heterogeneous": "tab:blue",
    "homogeneous-learned": "tab:orange",
    "heterogeneous-learned": "tab:purple",
    "homogeneous-batch-learned": "tab:brown",
    "heterogeneous-batch-learned": "tab:pink",
    "random-batch-learned": "black",
}

_OTHER_COLORS = ("tab:red", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray")


_LOGIT_EDGE = 1e-6


def dictionary_color(name: str, index: int = 0) -> str:
    """The colour of a dictionary in csc's figures (the paper's colours for its five)."""
    return DICTIONARY_COLORS.get(name, _OTHER_COLORS[index % len(_OTHER_COLORS)])


@dataclass(frozen=True)
class PruningSweep:
    """Sparseness and PSNR of pruned codes, per threshold and per image.

    Attributes
    ----------
    thresholds : np.ndarray, float64, shape (T,)
        The thresholds, in the order given.
    relative : bool
        True: ``c`` is a fraction of each image's max |x|; False: an absolute value.
    sparseness, psnr : np.ndarray, float64, shape (T, B)
        Per threshold (row) and image (column).
    unpruned_sparseness, unpruned_psnr : np.ndarray, float64, shape (B,)
        The same for the codes as given (no pruning).
    metric : str
        ``"sporco"`` (10 log10(range²/MSE)) or ``"paper"`` (eq. 6).
    names : tuple of str
        Image names (``"0"``, ``"1"``, … when not given).
    label : str or None
        What was swept, e.g. the dictionary's name.
    """

    thresholds: np.ndarray
    relative: bool
    sparseness: np.ndarray
    psnr: np.ndarray
    unpruned_sparseness: np.ndarray
    unpruned_psnr: np.ndarray
    metric: str = "sporco"
    names: tuple[str, ...] = field(default=())
    label: str | None = None

    @property
    def median_sparseness(self) -> np.ndarray:
        """Median over images, per threshold (T,)."""
        return np.median(self.sparseness, axis=1)

    @property
    def median_psnr(self) -> np.ndarray:
        """Median over images, per threshold (T,)."""
        return np.median(self.psnr, axis=1)

    @property
    def psnr_drop(self) -> np.ndarray:
        """``psnr - unpruned_psnr`` (T, B): the PSNR lost by pruning (≤ 0 usually)."""
        return self.psnr - self.unpruned_psnr[None, :]

    def to_dict(self) -> dict[str, Any]:
        """Plain lists for JSON (non-finite PSNR, e.g. a perfect reconstruction, as None)."""

        def clean(a):
            a = np.asarray(a, dtype=np.float64)
            return [None if not math.isfinite(v) else float(v) for v in a.ravel()] if a.ndim <= 1 else [
                clean(row) for row in a
            ]

        return {
            "label": self.label,
            "relative": self.relative,
            "metric": self.metric,
            "names": list(self.names),
            "thresholds": clean(self.thresholds),
            "sparseness": clean(self.sparseness),
            "psnr": clean(self.psnr),
            "median_sparseness": clean(self.median_sparseness),
            "median_psnr": clean(self.median_psnr),
            "unpruned_sparseness": clean(self.unpruned_sparseness),
            "unpruned_psnr": clean(self.unpruned_psnr),
            "median_unpruned_sparseness": float(np.median(self.unpruned_sparseness)),
            "median_unpruned_psnr": float(np.median(self.unpruned_psnr)),
        }


def _thresholds(thresholds) -> np.ndarray:
    if thresholds is None:
        return np.asarray(DEFAULT_THRESHOLDS, dtype=np.float64)
    if isinstance(thresholds, torch.Tensor):
        thresholds = thresholds.detach().cpu().numpy()
    try:
        t = np.asarray(thresholds, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"thresholds: expected a sequence of numbers, got {thresholds!r}") from exc
    if t.ndim == 0:
        t = t[None]
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"thresholds: expected a non-empty 1-D sequence, got shape {t.shape}")
    if not np.isfinite(t).all() or (t < 0).any():
        raise ValueError(f"thresholds: expected finite values >= 0, got {t.tolist()}")
    return t


def _image_like(name: str, value, shape: tuple[int, ...], device) -> torch.Tensor | None:
    if value is None:
        return None
    t = as_float_tensor(name, value).to(device=device, dtype=torch.float64)
    check_finite(name, t)
    return broadcast_checked(name, t, shape, f"a shape broadcastable to the images {tuple(shape)}")


def pruning_sweep(
    codes,
    dictionary=None,
    reference_images=None,
    thresholds=None,
    relative: bool = False,
    lowpass=None,
    *,
    scale=None,
    metric: str = "sporco",
    names: Sequence[str] | None = None,
    label: str | None = None,
) -> PruningSweep:
    r"""Prune codes at each threshold, reconstruct, and measure sparseness and PSNR.

    Parameters
    ----------
    codes : tensor or ndarray, shape (B, K, H, W) or (K, H, W); or a CBPDNResult
        Coefficient maps (for a :class:`csc.CBPDNResult`, its ``codes``; its
        ``dictionary`` is used when ``dictionary`` is None).
    dictionary : tensor or ndarray, shape (K, kh, kw)
        The kernels the codes were computed with.
    reference_images : tensor or ndarray, shape (B, H, W) or (H, W)
        The images to compare with (image space: the originals, not the highpass).
    thresholds : sequence of float, optional
        ``c`` values (≥ 0), default ``linspace(0.001, 0.5, 6)`` (:data:`DEFAULT_THRESHOLDS`).
    relative : bool
        Prune ``|x| < c·max|x|`` per image instead of ``|x| < c``.
    lowpass : tensor or ndarray, broadcastable to (B, H, W), optional
        Added to each reconstruction (the lowpass split off before coding a highpass).
    scale : tensor or ndarray, broadcastable to (B, H, W), optional
        Multiplies each reconstruction before ``lowpass`` is added (the local norm of
        local contrast normalisation).
    metric : {"sporco", "paper"}
        PSNR form: :func:`csc.psnr` (default, the paper's figures) or :func:`csc.psnr_paper`.
    names : sequence of str, optional
        Image names, stored in the result.
    label : str, optional
        Stored in the result (e.g. the dictionary's name).

    Returns
    -------
    PruningSweep
        Per threshold and image sparseness and PSNR, and the unpruned values.
    """
    from csc.problems.cbpdn import CBPDNResult

    if isinstance(codes, CBPDNResult):
        if dictionary is None:
            dictionary = codes.dictionary
        codes = codes.codes
    x, D, ref = _sweep_arrays(codes, dictionary, reference_images, metric)
    B, K, H, W = x.shape
    t = _thresholds(thresholds)
    if check_bool("relative", relative) and (t > 1).any():
        raise ValueError(f"thresholds: relative thresholds are fractions of max|x| in [0, 1], got {t.tolist()} "
                         "(above 1 every coefficient is pruned)")
    names = _image_names(names, B)
    dev = x.device
    low = _image_like("lowpass", lowpass, (B, H, W), dev)
    sc = _image_like("scale", scale, (B, H, W), dev)
    un_sp, un_ps, spars, psnrs = _measure_sweep(x, D.to(device=dev, dtype=torch.float64),
                                                ref.to(device=dev, dtype=torch.float64), t, relative, low, sc,
                                                _psnr if metric == "sporco" else _psnr_paper)
    return PruningSweep(
        thresholds=t, relative=bool(relative), sparseness=spars, psnr=psnrs,
        unpruned_sparseness=un_sp, unpruned_psnr=un_ps, metric=metric, names=names, label=label,
    )


def _checked_array(name: str, value, ndims: tuple[int, ...], shape_text: str) -> torch.Tensor:
    """``value`` as a float tensor, its number of dimensions and finiteness checked (ValueError)."""
    t = as_float_tensor(name, value)
    check_ndim(name, t, ndims, shape_text)
    check_finite(name, t)
    return t


def _sweep_arrays(codes, dictionary, reference_images, metric: str):
    """Checked (codes (B, K, H, W), dictionary (K, kh, kw), reference images (B, H, W)) of a sweep."""
    if dictionary is None:
        raise ValueError("dictionary: required (the kernels the codes were computed with)")
    if reference_images is None:
        raise ValueError("reference_images: required (the images the codes should reconstruct)")
    if metric not in ("sporco", "paper"):
        raise ValueError(f"metric: expected 'sporco' or 'paper', got {metric!r}")
    x = _checked_array("codes", codes, (3, 4), "(B, K, H, W) or (K, H, W)")
    if x.ndim == 3:
        x = x[None]
    B, K, H, W = x.shape
    D = _checked_array("dictionary", dictionary, (3,), "(K, kh, kw)")
    if D.shape[0] != K:
        raise ValueError(f"dictionary: has {D.shape[0]} kernels but the codes have {K} maps")
    if D.shape[1] > H or D.shape[2] > W:
        raise ValueError(f"dictionary: kernels {tuple(D.shape[1:])} are larger than the maps {H}x{W}")
    ref = _checked_array("reference_images", reference_images, (2, 3), "(B, H, W) or (H, W)")
    if ref.ndim == 2:
        ref = ref[None]
    if tuple(ref.shape) != (B, H, W):
        raise ValueError(
            f"reference_images: expected shape {(B, H, W)} to match the codes {tuple(x.shape)}, "
            f"got {tuple(ref.shape)}"
        )
    return x, D, ref


def _image_names(names: Sequence[str] | None, B: int) -> tuple[str, ...]:
    """``names`` as a tuple of B strings (default "0".."B-1")."""
    if names is None:
        return tuple(str(i) for i in range(B))
    names = tuple(str(n) for n in names)
    if len(names) != B:
        raise ValueError(f"names: expected {B} names, got {len(names)}")
    return names


def _measure_sweep(x: torch.Tensor, D64: torch.Tensor, ref: torch.Tensor, t: np.ndarray, relative: bool,
                   low: torch.Tensor | None, sc: torch.Tensor | None, measure):
    """(unpruned sparseness (B,), unpruned PSNR (B,), sparseness (T, B), PSNR (T, B)) of a sweep."""
    B, K, H, W = x.shape
    spars = np.empty((t.size, B))
    psnrs = np.empty((t.size, B))
    un_sp = np.empty(B)
    un_ps = np.empty(B)
    # one image at a time: a 256² code with K = 144 is ~38 MB, its float64 DFT ~75 MB
    Df = ops.kernel_dft(D64, (H, W))
    for b in range(B):
        xb = x[b : b + 1]

        def evaluate(c: torch.Tensor) -> tuple[float, float]:
            rec = torch.fft.irfft2(ops.synthesis_dft(Df, torch.fft.rfft2(c.to(torch.float64))), s=(H, W))
            if sc is not None:
                rec = rec * sc[b : b + 1]
            if low is not None:
                rec = rec + low[b : b + 1]
            return float(_sparseness(c)[0]), float(measure(ref[b : b + 1], rec)[0])

        un_sp[b], un_ps[b] = evaluate(xb)
        for i, c in enumerate(t):
            spars[i, b], psnrs[i, b] = evaluate(prune(xb, float(c), relative=relative))
    return un_sp, un_ps, spars, psnrs


def plot_pruning_curves(
    ax,
    sweeps: Mapping[str, PruningSweep] | Sequence[PruningSweep],
    *,
    per_image: bool = True,
    annotate: bool = True,
    xscale: str = "linear",
):
    """PSNR against sparseness of pruned codes, one curve per dictionary (paper Fig. 6a).

    Each curve starts at the unpruned codes (open circle) and follows the medians over
    images at increasing thresholds (dots, labelled with ``c`` when ``annotate``);
    ``per_image`` adds every image's own trajectory as faint lines.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    sweeps : mapping name → PruningSweep, or a sequence of PruningSweep (named by ``label``)
    per_image : bool
        Draw each image's trajectory too.
    annotate : bool
        Write the threshold next to each median point of the first curve.
    xscale : str
        ``"linear"`` or ``"logit"`` (spreads sparseness values close to 1; a sparseness of
        exactly 1, nothing left, is drawn at 1 − 10⁻⁶).

    Returns
    -------
    ax
    """
    per_image = check_bool("per_image", per_image)
    annotate = check_bool("annotate", annotate)
    if isinstance(sweeps, Mapping):
        items = list(sweeps.items())
    else:
        items = [(s.label or f"codes {i}", s) for i, s in enumerate(sweeps)]
    if not items:
        raise ValueError("sweeps: expected at least one PruningSweep")
    for i, (name, s) in enumerate(items):
        if not isinstance(s, PruningSweep):
            raise TypeError(f"sweeps: expected PruningSweep values, got {type(s).__name__} for {name!r}")
        color = dictionary_color(name, i)
        sp = np.vstack([s.unpruned_sparseness[None], s.sparseness])
        if xscale == "logit":  # sparseness 0 or 1 has no logit: draw it at the edge
            sp = np.clip(sp, _LOGIT_EDGE, 1.0 - _LOGIT_EDGE)
        ps = np.vstack([s.unpruned_psnr[None], s.psnr])
        if per_image:
            for b in range(sp.shape[1]):
                ax.plot(sp[:, b], ps[:, b], color=color, alpha=0.18, lw=0.8)
        msp, mps = np.median(sp, axis=1), np.median(ps, axis=1)
        ax.plot(msp, mps, "-o", color=color, lw=2, ms=4, label=name)
        ax.plot(msp[:1], mps[:1], "o", mfc="white", mec=color, ms=7)
        if annotate and i == 0:
            for c, xv, yv in zip(s.thresholds, msp[1:], mps[1:]):
                ax.annotate(f"{c:.3g}", (xv, yv), textcoords="offset points", xytext=(4, 4), fontsize=7,
                            color=color)
    first = items[0][1]
    kind = "c·max|x|" if first.relative else "c"
    ax.set_xscale(xscale)
    if xscale == "logit":
        from matplotlib.ticker import NullFormatter

        ax.xaxis.set_minor_formatter(NullFormatter())  # minor logit labels collide
    ax.set_xlabel("sparseness (fraction of zero coefficients)")
    ax.set_ylabel("PSNR (dB)" + (" [eq. 6]" if first.metric == "paper" else ""))
    ax.set_title(f"pruning |x| < {kind}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return ax

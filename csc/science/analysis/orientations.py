"""Orientations of coefficients (paper Fig. 5, eq. 11): the circular histogram and its uniform,
von Mises and double von Mises fits, ranked by BIC.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from csc.science.analysis.curves import KAPPA_MAX
from csc.science.analysis.fitting import _best, _least_squares
from csc.science.analysis.inputs import _check_bins, _check_finite, _codes_array, _theta_array, _to_numpy
from csc.science.analysis.records import CurveFit, Histogram, OrientationStatistics, VonMisesComponent


def _orientation_histogram(x: np.ndarray, w: np.ndarray, bins: int, n: int) -> Histogram:
    idx = np.floor(x * bins + 0.5).astype(np.int64) % bins
    mass = np.bincount(idx, weights=w, minlength=bins)
    sq = np.bincount(idx, weights=w * w, minlength=bins)
    scale = bins / mass.sum()
    density = mass * scale
    stderr = np.sqrt(np.maximum(sq, float(np.mean(w * w)))) * scale
    centers = np.arange(bins) / bins
    edges = (np.arange(bins + 1) - 0.5) / bins
    return Histogram(edges=edges, centers=centers, density=density, stderr=stderr, n_samples=n)


def _kappa_from_width(y: np.ndarray, peak: int) -> float:
    """Concentration from the half width at half maximum of a histogram peak."""
    bins = y.size
    top, floor = y[peak], y.min()
    half = floor + 0.5 * (top - floor)
    steps = 0
    while steps < bins // 2 and y[(peak + steps) % bins] > half and y[(peak - steps) % bins] > half:
        steps += 1
    hw = max(steps, 0.5) / bins  # half width, as a fraction of the period
    return float(np.clip(math.log(2.0) / max(1.0 - math.cos(2.0 * math.pi * hw), 1e-9), 0.1, KAPPA_MAX))


def _peaks(y: np.ndarray) -> list[int]:
    """Indices of circular local maxima of a lightly smoothed histogram, highest first."""
    s = (np.roll(y, 1) + 2.0 * y + np.roll(y, -1)) / 4.0
    is_peak = (s >= np.roll(s, 1)) & (s >= np.roll(s, -1))
    idx = np.flatnonzero(is_peak)
    if idx.size == 0:
        idx = np.array([int(np.argmax(s))])
    return [int(i) for i in idx[np.argsort(-s[idx], kind="stable")]]


def _fit_orientation_models(h: Histogram) -> tuple[CurveFit, CurveFit, CurveFit]:
    x, y = h.centers, h.density
    bins = x.size
    inf = np.inf
    ymax = float(y.max())
    peaks = _peaks(y)
    p1 = peaks[0]
    k1 = _kappa_from_width(y, p1)

    sig = h.stderr
    uniform = _least_squares("uniform", x, y, [[float(y.mean())]], ([0.0], [inf]), sig)

    single_starts = [[ymax, k, x[p1]] for k in (k1, 1.0, 4.0)]
    single = _least_squares(
        "von_mises", x, y, single_starts, ([0.0, 0.0, -1.0], [inf, KAPPA_MAX, 2.0]), sig
    )

    phase_pairs = [(x[p1], x[p1] + 0.5)]
    amp_pairs = [(y[p1], y[(p1 + bins // 2) % bins])]
    kap_pairs = [(k1, k1)]
    for p2 in peaks[1:3]:
        phase_pairs.append((x[p1], x[p2]))
        amp_pairs.append((y[p1], y[p2]))
        kap_pairs.append((k1, _kappa_from_width(y, p2)))
    starts = []
    for (f1, f2), (a1, a2), (ka, kb) in zip(phase_pairs, amp_pairs, kap_pairs):
        starts.append([a1, ka, f1, a2, kb, f2])
        starts.append([a1, 2.0, f1, a2, 2.0, f2])
    # a peaked term on a broad one: covers unimodal data and a pedestal
    starts.append([ymax, k1, x[p1], float(y.min()), 0.1, x[p1] + 0.5])
    lo = [0.0, 0.0, -1.0, 0.0, 0.0, -1.0]
    hi = [inf, KAPPA_MAX, 2.0, inf, KAPPA_MAX, 2.0]
    double = _least_squares("double_von_mises", x, y, starts, (lo, hi), sig)
    return uniform, _wrap_phases(single), _wrap_phases(double)


def _wrap_phases(fit: CurveFit) -> CurveFit:
    """Put every phi in [0, 1) and order double terms by decreasing amplitude."""
    if not fit.valid:
        return fit
    p = list(fit.params)
    for i, name in enumerate(fit.param_names):
        if name.startswith("phi"):
            p[i] = float(p[i] % 1.0)
            if p[i] >= 1.0:  # -tiny % 1.0 == 1.0 in floating point
                p[i] = 0.0
    if fit.family == "double_von_mises" and p[3] > p[0]:
        p = p[3:] + p[:3]
    return CurveFit(
        fit.family, fit.param_names, tuple(p), fit.rss, fit.bic, fit.n_params, fit.n_points,
        fit.converged,
    )


def fit_orientations(
    theta,
    weights=None,
    *,
    bins: int = 36,
) -> OrientationStatistics:
    """Fit the distribution of (axial) orientations.

    Parameters
    ----------
    theta : array-like or torch.Tensor, shape (N,)
        Orientation of each sample in radians; folded into [0, pi) (axial data).
    weights : array-like or torch.Tensor, shape (N,), optional
        Non-negative weight of each sample (default: 1 each).
    bins : int, optional
        Number of circular histogram bins, centred on ``j / bins`` for j = 0..bins-1
        (default 36, i.e. 5 degrees). At least 8, so that the 6-parameter double von Mises
        leaves residual degrees of freedom.

    Returns
    -------
    OrientationStatistics
        Normalised histogram over x = theta / pi, uniform / von Mises / double von Mises
        fits, their BICs and the best model.

    Raises
    ------
    ValueError
        If ``theta`` is empty, not 1-D or not finite, or ``weights`` does not match it, is
        negative, or sums to zero.
    """
    th = _to_numpy("theta", theta)
    if th.ndim != 1:
        raise ValueError(f"theta: expected a 1-D array of orientations, got shape {th.shape}")
    if th.size == 0:
        raise ValueError("theta: expected at least one orientation, got an empty array")
    _check_finite("theta", th)
    if weights is None:
        w = np.ones_like(th)
    else:
        w = _to_numpy("weights", weights)
        if w.shape != th.shape:
            raise ValueError(f"weights: expected shape {th.shape} (as theta), got {w.shape}")
        _check_finite("weights", w)
        if (w < 0).any():
            raise ValueError("weights: expected non-negative weights")
    if not w.sum() > 0:
        raise ValueError("weights: expected a positive total weight")
    bins = _check_bins("bins", bins, 8)
    x = np.mod(th / math.pi, 1.0)
    hist = _orientation_histogram(x, w, bins, int(th.size))
    uniform, single, double = _fit_orientation_models(hist)
    fits = (uniform, single, double)
    if double.valid:
        dp = double.params
        comps = (VonMisesComponent(*dp[:3]), VonMisesComponent(*dp[3:]))
    else:
        comps = (VonMisesComponent(math.nan, math.nan, math.nan),) * 2
    single_c = VonMisesComponent(*single.params)
    return OrientationStatistics(
        histogram=hist,
        fits=fits,
        components=comps,  # type: ignore[arg-type]
        single=single_c,
        best_model=_best(fits),
        n_coefficients=int(th.size),
        total_weight=float(w.sum()),
    )


def coefficient_orientations(
    codes,
    theta,
    *,
    weighting: Literal["count", "magnitude"] = "count",
) -> tuple[np.ndarray, np.ndarray]:
    """Orientation and weight of every nonzero coefficient of one image.

    Parameters
    ----------
    codes : array-like or torch.Tensor, shape (K, H, W)
        Sparse code of one image.
    theta : array-like or torch.Tensor, shape (K,)
        Orientation theta_0 of each kernel, in radians.
    weighting : {"count", "magnitude"}, optional
        ``"count"`` (default): weight 1 per nonzero coefficient; ``"magnitude"``: weight
        ``|x|``.

    Returns
    -------
    theta_samples : ndarray, shape (N,)
        Kernel orientation of each nonzero coefficient (radians, as given).
    weights : ndarray, shape (N,)
        Its weight.
    """
    arr = _codes_array(codes, 3, "K, H, W")
    th = _theta_array(theta, arr.shape[0])
    if weighting not in ("count", "magnitude"):
        raise ValueError(f"weighting: expected 'count' or 'magnitude', got {weighting!r}")
    nz = arr != 0
    per_kernel = nz.reshape(arr.shape[0], -1)
    samples = np.repeat(th, per_kernel.sum(axis=1))
    if weighting == "count":
        weights = np.ones_like(samples)
    else:
        weights = np.abs(arr.reshape(arr.shape[0], -1)[per_kernel])
    return samples, weights


def _default_orientation_bins(th: np.ndarray) -> int:
    """One bin per orientation when the kernels sit on a regular grid, else 36."""
    x = np.mod(th / math.pi, 1.0)
    u = np.unique(np.round(x, 9) % 1.0)
    n = u.size
    if 8 <= n <= 360 and np.allclose(u * n, np.round(u * n), atol=1e-6):
        return int(n)
    return 36


def orientation_statistics(
    codes,
    theta,
    *,
    weighting: Literal["count", "magnitude"] = "count",
    bins: int | None = None,
) -> OrientationStatistics:
    """Orientation statistics of one image's code.

    Parameters
    ----------
    codes, theta, weighting
        The sparse code (K, H, W) of one image, the orientation (radians) of each of
        its K kernels and the weighting, as in :func:`coefficient_orientations`.
    bins : int, optional
        Histogram bins. Default: the number of distinct orientations when they lie on a
        regular grid ``j * pi / n`` with n >= 8 (one bin per orientation; 72 for the
        homogeneous preset), otherwise 36.

    Returns
    -------
    OrientationStatistics
        Same as ``fit_orientations(*coefficient_orientations(codes, theta), bins=bins)``.
    """
    samples, weights = coefficient_orientations(codes, theta, weighting=weighting)
    if samples.size == 0:
        raise ValueError("codes: expected at least one nonzero coefficient, got none")
    if bins is None:
        bins = _default_orientation_bins(_to_numpy("theta", theta))
    return fit_orientations(samples, weights, bins=bins)


def batch_orientation_statistics(
    codes,
    theta,
    *,
    weighting: Literal["count", "magnitude"] = "count",
    bins: int | None = None,
) -> list[OrientationStatistics]:
    """:func:`orientation_statistics` of each image of a batch: a list in batch order.

    ``codes`` (array-like or torch.Tensor, shape (B, K, H, W)) holds the sparse codes of
    ``B`` images; ``theta``, ``weighting`` and ``bins`` are those of
    :func:`orientation_statistics` and apply to every image.
    """
    arr = _codes_array(codes, 4, "B, K, H, W")
    _theta_array(theta, arr.shape[1])
    return [orientation_statistics(c, theta, weighting=weighting, bins=bins) for c in arr]

"""Fitting machinery: the BIC of a least-squares fit, multi-start bounded least squares, the
best fit by BIC.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np
from scipy.optimize import least_squares

from csc.science.analysis.curves import _CURVES, _TINY
from csc.science.analysis.records import CurveFit


def bic_from_rss(rss: float, n_points: int, n_params: int) -> float:
    """BIC of a least-squares fit under a Gaussian residual likelihood.

    Parameters
    ----------
    rss : float
        Residual sum of squares.
    n_points : int
        Number of fitted points ``n``.
    n_params : int
        Number of free parameters ``k``.

    Returns
    -------
    float
        ``n ln(rss / n) + k ln n`` (``rss / n`` floored at 1e-300 so a perfect fit stays
        finite).
    """
    if n_points < 1:
        raise ValueError(f"n_points: expected >= 1, got {n_points}")
    return float(n_points * math.log(max(rss / n_points, _TINY)) + n_params * math.log(n_points))


def _least_squares(
    family: str,
    x: np.ndarray,
    y: np.ndarray,
    starts: Sequence[Sequence[float]],
    bounds: tuple[Sequence[float], Sequence[float]],
    sigma: np.ndarray | None = None,
    max_nfev: int = 2000,
) -> CurveFit:
    """Fit ``family`` from each start, keep the lowest RSS, and wrap it in a CurveFit.

    Uses :func:`scipy.optimize.least_squares` (the solver behind ``curve_fit`` with
    bounds), which returns its last iterate even when ``max_nfev`` runs out: a model whose
    best fit runs off towards a bound still gets an honest, finite RSS, and ``converged``
    says whether the solver met its tolerances. With ``sigma``, residuals are divided by
    it (the RSS is then a chi-square).
    """
    fn, names = _CURVES[family]
    lo = np.asarray(bounds[0], dtype=float)
    hi = np.asarray(bounds[1], dtype=float)

    def residuals(p):
        with np.errstate(all="ignore"):
            r = fn(x, *p) - y
            if sigma is not None:
                r = r / sigma
        return np.where(np.isfinite(r), r, 1e150)

    best = None
    best_rss = math.inf
    for p0 in starts:
        p0 = np.clip(np.asarray(p0, dtype=float), lo, hi)
        # keep the start strictly inside finite bounds (trf requires it)
        span = np.where(np.isfinite(hi - lo), hi - lo, 1.0)
        p0 = np.where(p0 <= lo, lo + 1e-6 * span, p0)
        p0 = np.where(p0 >= hi, hi - 1e-6 * span, p0)
        if not np.all(np.isfinite(p0)) or not np.all(np.isfinite(residuals(p0))):
            continue
        try:
            res = least_squares(
                residuals, p0, bounds=(lo, hi), method="trf", x_scale="jac", max_nfev=max_nfev
            )
        except (ValueError, FloatingPointError):
            continue
        rss = float(np.dot(res.fun, res.fun))
        if np.isfinite(rss) and rss < best_rss and np.all(np.isfinite(res.x)):
            best_rss, best = rss, res
    n, k = int(x.size), len(names)
    if best is None or best_rss >= 1e290:
        return CurveFit(family, names, (math.nan,) * k, math.inf, math.inf, k, n, False)
    return CurveFit(
        family,
        names,
        tuple(float(v) for v in best.x),
        best_rss,
        bic_from_rss(best_rss, n, k),
        k,
        n,
        bool(best.status > 0),
    )


def _best(fits: Iterable) -> str:
    fits = list(fits)
    best = min(fits, key=lambda f: f.bic)
    return best.family

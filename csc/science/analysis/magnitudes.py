"""Coefficient magnitudes (paper Fig. 4): the histogram, the paper's exponential curve and the
maximum-likelihood fits of each family, ranked by BIC.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats
from scipy.optimize import brentq

from csc.science.analysis.curves import MAGNITUDE_FAMILIES, _logpdf
from csc.science.analysis.fitting import _best, _least_squares
from csc.science.analysis.inputs import _check_bins, _check_finite, _codes_array, _to_numpy
from csc.science.analysis.records import CoefficientStatistics, DistributionFit, ExponentialCurve, Histogram


def _magnitude_histogram(mag: np.ndarray, bins: int, upper_quantile: float) -> Histogram:
    lo = float(mag.min())
    hi = float(np.quantile(mag, upper_quantile)) if upper_quantile < 1.0 else float(mag.max())
    if not hi > lo:
        hi = float(mag.max())
    if not hi > lo:
        raise ValueError(
            "values: all nonzero magnitudes are equal; a distribution cannot be fitted"
        )
    edges = np.linspace(lo, hi, bins + 1)
    counts, _ = np.histogram(mag, bins=edges)
    norm = mag.size * np.diff(edges)
    density = counts / norm
    stderr = np.sqrt(np.maximum(counts, 1)) / norm
    centers = 0.5 * (edges[:-1] + edges[1:])
    return Histogram(
        edges=edges, centers=centers, density=density, stderr=stderr, n_samples=int(mag.size)
    )


def _weibull_ml(mag: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood shape and scale of a Weibull distribution (location 0)."""
    ly = np.log(mag)
    ly = ly - ly.mean()  # scale-free: work with x / geometric mean

    def score(log_beta: float) -> float:
        beta = math.exp(log_beta)
        z = beta * ly
        e = np.exp(z - z.max())
        return float(np.dot(e, ly) / e.sum()) - 1.0 / beta

    lo, hi = math.log(1e-3), math.log(1e3)
    if score(lo) >= 0:
        log_beta = lo
    elif score(hi) <= 0:
        log_beta = hi
    else:
        log_beta = brentq(score, lo, hi, xtol=1e-10)
    beta = math.exp(log_beta)
    z = beta * ly
    zmax = float(z.max())
    scale_rel = math.exp((zmax + math.log(float(np.mean(np.exp(z - zmax))))) / beta)
    return beta, scale_rel * math.exp(float(np.log(mag).mean()))


_ML_PARAM_NAMES = {
    "exponential": ("rate",),
    "power_law": ("exponent", "x_min"),
    "half_normal": ("sigma",),
    "log_normal": ("mu", "sigma"),
    "gamma": ("alpha", "scale"),
    "weibull": ("beta", "scale"),
}


def _ml_fit(family: str, mag: np.ndarray) -> DistributionFit:
    """Maximum-likelihood fit of ``family`` to positive samples, with its BIC."""
    n = mag.size
    if family == "exponential":
        params: tuple[float, ...] = (1.0 / float(mag.mean()),)
    elif family == "power_law":
        x_min = float(mag.min())
        s = float(np.log(mag / x_min).sum())
        params = (1.0 + n / s if s > 0 else math.inf, x_min)
    elif family == "half_normal":
        params = (math.sqrt(float(np.mean(mag * mag))),)
    elif family == "log_normal":
        lm = np.log(mag)
        params = (float(lm.mean()), float(lm.std()))
    elif family == "gamma":
        try:
            with np.errstate(all="ignore"):
                alpha, _, scale = stats.gamma.fit(mag, floc=0.0)
            params = (float(alpha), float(scale))
        except (ValueError, RuntimeError):
            params = (math.nan, math.nan)
    elif family == "weibull":
        params = _weibull_ml(mag)
    else:
        raise ValueError(f"families: expected names from {MAGNITUDE_FAMILIES}, got {family!r}")
    k = len(params)
    names = _ML_PARAM_NAMES[family]
    if not (np.all(np.isfinite(params)) and all(v > 0 for v in params if family != "log_normal")):
        return DistributionFit(family, names, params, -math.inf, math.inf, k, n)
    if family == "log_normal" and not params[1] > 0:
        return DistributionFit(family, names, params, -math.inf, math.inf, k, n)
    with np.errstate(all="ignore"):
        ll = float(np.sum(_logpdf(family, mag, params)))
    bic = k * math.log(n) - 2.0 * ll if math.isfinite(ll) else math.inf
    return DistributionFit(family, names, tuple(float(v) for v in params), ll, bic, k, n)


def _exponential_curve(h: Histogram, mag: np.ndarray) -> ExponentialCurve:
    """Least-squares ``a exp(-b x)`` on the histogram density (paper Fig. 4a)."""
    x, y = h.centers, h.density
    b0 = 1.0 / float(mag.mean())
    starts = [[b0, b0]]
    pos = y > 0
    if pos.sum() >= 2:
        slope, icpt = np.polyfit(x[pos], np.log(y[pos]), 1)
        if slope < 0:
            starts.append([math.exp(icpt), -slope])
    fit = _least_squares("exponential", x, y, starts, ([0.0, 0.0], [np.inf, np.inf]))
    tss = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - fit.rss / tss if tss > 0 else math.nan
    return ExponentialCurve(a=fit.params[0], b=fit.params[1], rss=fit.rss, r_squared=r2)


def fit_coefficient_magnitudes(
    values,
    *,
    bins: int = 50,
    upper_quantile: float = 0.999,
    families: Sequence[str] = MAGNITUDE_FAMILIES,
) -> CoefficientStatistics:
    """Fit the distribution of coefficient magnitudes of one image.

    Parameters
    ----------
    values : array-like or torch.Tensor
        Coefficients of one image, any shape; their absolute values are taken and the
        zeros dropped (only the nonzero "slab" is fitted).
    bins : int, optional
        Number of equal histogram bins over ``[min |x|, quantile(|x|, upper_quantile)]``
        (default 50), used by the paper's ``a exp(-b x)`` curve and by the plots.
    upper_quantile : float, optional
        Upper end of the histogram range as a quantile of the magnitudes, in (0, 1]
        (default 0.999). Samples above it still count in the density normalisation and
        in the maximum-likelihood fits, which use every sample.
    families : sequence of str, optional
        Families to fit by maximum likelihood and rank by BIC, from
        :data:`MAGNITUDE_FAMILIES` (default: all). At least one.

    Returns
    -------
    CoefficientStatistics
        Histogram, the paper's exponential curve, one :class:`DistributionFit` per family,
        and the family of lowest BIC.

    Raises
    ------
    ValueError
        If ``values`` holds NaN/Inf or fewer than 2 nonzero values, all nonzero magnitudes
        are equal, or an option is out of range.
    """
    arr = _to_numpy("values", values)
    _check_finite("values", arr)
    mag = np.abs(arr.ravel())
    mag = mag[mag > 0]
    if mag.size < 2:
        raise ValueError(f"values: expected at least 2 nonzero values, got {mag.size}")
    bins = _check_bins("bins", bins, 4)
    uq = float(upper_quantile)
    if not 0.0 < uq <= 1.0:
        raise ValueError(f"upper_quantile: expected a value in (0, 1], got {upper_quantile!r}")
    families = tuple(families)
    if not families:
        raise ValueError("families: expected at least one family")
    for fam in families:
        if fam not in MAGNITUDE_FAMILIES:
            raise ValueError(f"families: expected names from {MAGNITUDE_FAMILIES}, got {fam!r}")
    hist = _magnitude_histogram(mag, bins, uq)
    curve = _exponential_curve(hist, mag)
    fits = tuple(_ml_fit(fam, mag) for fam in families)
    return CoefficientStatistics(
        histogram=hist, curve=curve, fits=fits, best_family=_best(fits), n_nonzero=int(mag.size)
    )


def coefficient_statistics(codes, *, bins: int = 50, upper_quantile: float = 0.999,
                           families: Sequence[str] = MAGNITUDE_FAMILIES) -> CoefficientStatistics:
    """Coefficient magnitude statistics of one image's code ``codes`` (K, H, W).

    The same as ``fit_coefficient_magnitudes(codes[codes != 0])`` with the options
    ``bins``, ``upper_quantile`` and ``families`` of :func:`fit_coefficient_magnitudes`;
    ``codes`` is an array-like or a torch.Tensor.
    """
    arr = _codes_array(codes, 3, "K, H, W")
    return fit_coefficient_magnitudes(
        arr, bins=bins, upper_quantile=upper_quantile, families=families
    )


def batch_coefficient_statistics(codes, *, bins: int = 50, upper_quantile: float = 0.999,
                                 families: Sequence[str] = MAGNITUDE_FAMILIES) -> list[CoefficientStatistics]:
    """:func:`coefficient_statistics` of every image of a batch, one record per image in batch order.

    ``codes`` (array-like or torch.Tensor, shape (B, K, H, W)) holds the sparse codes of
    ``B`` images; ``bins``, ``upper_quantile`` and ``families`` apply to every image.
    """
    arr = _codes_array(codes, 4, "B, K, H, W")
    return [
        fit_coefficient_magnitudes(c, bins=bins, upper_quantile=upper_quantile, families=families)
        for c in arr
    ]

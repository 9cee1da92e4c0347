"""Model names and bounds, the curve families fitted to histograms (Fig. 4a, eq. 11) and
the log-densities of the magnitude families (see :mod:`csc.science.analysis`).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
from scipy import stats

#: Upper bound on every fitted von Mises concentration.
KAPPA_MAX = 1000.0

#: Candidate families for the coefficient magnitudes, in reporting order.
MAGNITUDE_FAMILIES: tuple[str, ...] = (
    "exponential",
    "power_law",
    "half_normal",
    "log_normal",
    "gamma",
    "weibull",
)

#: Candidate models for the orientation histogram, in reporting order.
ORIENTATION_MODELS: tuple[str, ...] = ("uniform", "von_mises", "double_von_mises")

_TINY = 1e-300


def _exponential(x, a, b):
    return a * np.exp(-b * x)


def _uniform(x, c):
    return np.full_like(np.asarray(x, dtype=float), c)


def _von_mises(x, amplitude, kappa, phi):
    return amplitude * np.exp(kappa * (np.cos(2.0 * np.pi * (x - phi)) - 1.0))


def _double_von_mises(x, a1, k1, p1, a2, k2, p2):
    return _von_mises(x, a1, k1, p1) + _von_mises(x, a2, k2, p2)


_CURVES: dict[str, tuple[Callable[..., np.ndarray], tuple[str, ...]]] = {
    "exponential": (_exponential, ("a", "b")),
    "uniform": (_uniform, ("c",)),
    "von_mises": (_von_mises, ("amplitude", "kappa", "phi")),
    "double_von_mises": (
        _double_von_mises,
        ("amplitude_1", "kappa_1", "phi_1", "amplitude_2", "kappa_2", "phi_2"),
    ),
}



def _logpdf(family: str, x: np.ndarray, p: Sequence[float]) -> np.ndarray:
    """Log-density of ``family`` with parameters ``p`` (support x > 0)."""
    if family == "exponential":
        (rate,) = p
        return math.log(rate) - rate * x
    if family == "power_law":
        exponent, x_min = p
        alpha = exponent - 1.0
        out = math.log(alpha) + alpha * math.log(x_min) - exponent * np.log(x)
        return np.where(x >= x_min, out, -np.inf)
    if family == "half_normal":
        (sigma,) = p
        return stats.halfnorm.logpdf(x, scale=sigma)
    if family == "log_normal":
        mu, sigma = p
        return stats.lognorm.logpdf(x, sigma, scale=math.exp(mu))
    if family == "gamma":
        alpha, scale = p
        return stats.gamma.logpdf(x, alpha, scale=scale)
    if family == "weibull":
        beta, scale = p
        return stats.weibull_min.logpdf(x, beta, scale=scale)
    raise ValueError(f"families: expected names from {MAGNITUDE_FAMILIES}, got {family!r}")


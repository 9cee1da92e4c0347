r"""Statistics of sparse codes: coefficient magnitudes (Fig. 4) and orientations (Fig. 5).

Both analyses fit candidate models and rank them by the Bayesian Information Criterion
(lower is better), with one likelihood per analysis, applied identically to every
candidate of that analysis.

Coefficient magnitudes (paper Fig. 4)
-------------------------------------
The samples are the nonzero :math:`|x|` of one image's code (the "slab" of the
spike-and-slab distribution; the zeros, the "spike", are counted by ``csc.science.metrics``'
sparseness).

*The paper's curve.* The histogram has ``bins`` equal bins over :math:`[\min|x|, q]`,
:math:`q` the ``upper_quantile`` of the magnitudes (0.999 by default, so that a handful of
outliers cannot squeeze the bulk into one bin). Its density is ``count / (N * width)`` with
:math:`N` the number of *all* nonzero samples, so it estimates the probability density even
where the range is cut. :math:`y = a\,e^{-b x}` is fitted to it by unweighted least squares
at the bin centres, as in the paper (Fig. 4a and its inset), and reported with its
:math:`R^2`.

*BIC comparison (Fig. 4b).* Each family is fitted to the samples themselves by maximum
likelihood, and

.. math::

    \mathrm{BIC} = k \ln N - 2 \ln \hat L,

with :math:`k` its number of parameters and :math:`N` the number of nonzero samples. (A
Gaussian-residual BIC on the histogram, :math:`n \ln(\mathrm{RSS}/n) + k \ln n`, was tried
and rejected: its residuals are Poisson, not i.i.d., and with :math:`n` = 50 bins it let a
gamma beat the exponential on about half of exactly exponential samples.) Families, with
support :math:`x > 0`:

- exponential (the paper's model, :math:`k = 1`): :math:`b\,e^{-b x}`;
- power law (Pareto, :math:`k = 2`): :math:`\frac{\gamma - 1}{x_m}(x/x_m)^{-\gamma}` for
  :math:`x \ge x_m`, :math:`x_m = \min|x|` (the usual ML estimate);
- half-normal (:math:`k = 1`): :math:`\frac{\sqrt 2}{\sigma\sqrt\pi} e^{-x^2/(2\sigma^2)}`;
- log-normal (:math:`k = 2`): :math:`\frac{1}{x \sigma \sqrt{2\pi}}
  e^{-(\ln x - \mu)^2 / (2\sigma^2)}`;
- gamma (:math:`k = 2`): :math:`\frac{x^{\alpha - 1} e^{-x/s}}{\Gamma(\alpha) s^\alpha}`;
- Weibull, i.e. the stretched exponential :math:`e^{-(x/s)^\beta}` made a density
  (:math:`k = 2`): :math:`\frac{\beta}{s}(x/s)^{\beta-1} e^{-(x/s)^\beta}`.

Gamma (:math:`\alpha = 1`) and Weibull (:math:`\beta = 1`) contain the exponential; the
extra :math:`\ln N` of their penalty is what lets the exponential win on exponential data.

Orientation of coefficients (paper Fig. 5, eq. 11)
--------------------------------------------------
Every nonzero coefficient of kernel :math:`k` carries that kernel's orientation
:math:`\theta_{0,k}`; orientations are axial, so they are folded into :math:`[0, \pi)` and
mapped to :math:`x = \theta / \pi \in [0, 1)`. By default each nonzero coefficient counts
once (the paper plots "orientations of the sparse coefficients"); ``weighting="magnitude"``
weights each by :math:`|x|` instead. The histogram has ``bins`` circular bins *centred* on
:math:`j / \mathrm{bins}` (so that a dictionary whose orientations are
``linspace(0, pi, n, endpoint=False)`` puts each orientation in the middle of its own bin),
normalised so that :math:`\int_0^1 h\,dx = 1` (a uniform distribution is the constant 1).
Models:

- uniform (:math:`k = 1`): :math:`c`;
- von Mises (:math:`k = 3`): :math:`A\,e^{\kappa(\cos(2\pi(x - \phi)) - 1)}`;
- double von Mises (:math:`k = 6`, paper eq. 11):
  :math:`A_1 e^{\kappa_1(\cos(2\pi(x - \phi_1)) - 1)}
  + A_2 e^{\kappa_2(\cos(2\pi(x - \phi_2)) - 1)}`.

They are fitted to the histogram by least squares weighted by the bins' standard errors
(:math:`\sigma_j = \sqrt{\sum_{i \in j} w_i^2}` in density units, i.e. Poisson
:math:`\sqrt{\mathrm{count}}` for unit weights, floored at one average sample), and

.. math::

    \mathrm{BIC} = n \ln(\chi^2/n) + k \ln n, \qquad
    \chi^2 = \sum_j \big((h_j - f(c_j))/\sigma_j\big)^2,

the Gaussian residual likelihood with variances known up to one common factor, :math:`n`
the number of bins. The histogram, not the samples, is the natural object here: the
orientations take only the dictionary's few discrete values and may carry magnitude
weights. (Unweighted residuals let the double model beat the single one on a quarter of
single von Mises samples; weighting brings that to about one in twenty.)

:math:`A \ge 0` and :math:`0 \le \kappa \le` ``KAPPA_MAX``; :math:`\phi` is reported in
:math:`[0, 1)` (multiply by 180 for degrees of orientation). A sample of axial angles drawn
from a von Mises distribution of concentration :math:`\kappa` and mean :math:`2\pi\phi`
on the doubled angle :math:`2\theta` has exactly this density shape, so :math:`\kappa` and
:math:`\phi` are the usual von Mises parameters of the doubled angle. The two components of
the double model are reported in decreasing order of amplitude :math:`A` (peak height).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Literal, Sequence

import numpy as np
from scipy import stats
from scipy.optimize import brentq, least_squares

__all__ = [
    "KAPPA_MAX",
    "MAGNITUDE_FAMILIES",
    "ORIENTATION_MODELS",
    "CoefficientStatistics",
    "CurveFit",
    "DistributionFit",
    "ExponentialCurve",
    "Histogram",
    "OrientationStatistics",
    "VonMisesComponent",
    "batch_coefficient_statistics",
    "batch_orientation_statistics",
    "bic_from_rss",
    "coefficient_orientations",
    "coefficient_statistics",
    "fit_coefficient_magnitudes",
    "fit_orientations",
    "orientation_statistics",
    "plot_bic",
    "plot_coefficient_statistics",
    "plot_orientation_statistics",
]

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


# --------------------------------------------------------------------------------------
# Curve families
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Histogram:
    """A histogram density.

    Attributes
    ----------
    edges : ndarray, shape (n + 1,)
        Bin edges (for orientations, the first edge is ``-0.5 / n``: bins are centred on
        ``j / n`` and the last one wraps around).
    centers : ndarray, shape (n,)
        Bin centres, where the curves are evaluated and fitted.
    density : ndarray, shape (n,)
        Histogram density at each bin.
    stderr : ndarray, shape (n,)
        Standard error of each density value: ``sqrt(sum of squared sample weights in
        the bin)`` in density units (``sqrt(count)`` for unit weights), floored at one
        average sample so that empty bins keep a finite weight.
    n_samples : int
        Number of samples the histogram was built from.
    """

    edges: np.ndarray
    centers: np.ndarray
    density: np.ndarray
    stderr: np.ndarray
    n_samples: int

    @property
    def widths(self) -> np.ndarray:
        """Bin widths, shape (n,)."""
        return np.diff(self.edges)


@dataclass(frozen=True)
class _NamedParams:
    """What every fit has: its family and named parameters (subclasses add its ``bic``)."""

    family: str
    param_names: tuple[str, ...]
    params: tuple[float, ...]

    @property
    def valid(self) -> bool:
        """Whether the fit produced finite parameters and a finite BIC."""
        return bool(np.all(np.isfinite(self.params))) and math.isfinite(self.bic)

    def param(self, name: str) -> float:
        """Return the fitted parameter called ``name``."""
        try:
            return self.params[self.param_names.index(name)]
        except ValueError:
            raise KeyError(
                f"name: family {self.family!r} has parameters {self.param_names}, not {name!r}"
            ) from None


@dataclass(frozen=True)
class CurveFit(_NamedParams):
    """One least-squares curve fit to a histogram density (orientation models, and the
    paper's exponential curve).

    Attributes
    ----------
    family : str
        Name of the curve (``"exponential"`` or one of :data:`ORIENTATION_MODELS`).
    param_names : tuple of str
        Names of the parameters, in the order of ``params``.
    params : tuple of float
        Fitted parameters (NaN when no start gave a finite fit).
    rss : float
        Residual sum of squares at the bin centres; of the standard-error-weighted
        residuals (chi-square) for the orientation models.
    bic : float
        ``n ln(rss / n) + k ln n`` (``inf`` when the fit failed).
    n_params : int
        ``k``, the number of free parameters.
    n_points : int
        ``n``, the number of histogram bins fitted.
    converged : bool
        Whether the solver met its tolerances. ``False`` with finite ``params`` means the
        evaluation budget ran out (typically a parameter running off to a bound); the
        parameters are then the last iterate and ``rss``/``bic`` describe that curve.
    """

    rss: float
    bic: float
    n_params: int
    n_points: int
    converged: bool

    def evaluate(self, x) -> np.ndarray:
        """Evaluate the fitted curve at ``x``."""
        fn = _CURVES[self.family][0]
        with np.errstate(all="ignore"):
            return fn(np.asarray(x, dtype=float), *self.params)


def _fits_by_name(fits, family: str):
    for f in fits:
        if f.family == family:
            return f
    raise KeyError(f"family: expected one of {[f.family for f in fits]}, got {family!r}")


@dataclass(frozen=True)
class DistributionFit(_NamedParams):
    """Maximum-likelihood fit of one probability distribution to samples.

    Attributes
    ----------
    family : str
        One of :data:`MAGNITUDE_FAMILIES`.
    param_names : tuple of str
        Names of the parameters, in the order of ``params``.
    params : tuple of float
        Maximum-likelihood estimates.
    log_likelihood : float
        Maximised log-likelihood ``ln L``.
    bic : float
        ``k ln N - 2 ln L``.
    n_params : int
        ``k``.
    n_samples : int
        ``N``.
    """

    log_likelihood: float
    bic: float
    n_params: int
    n_samples: int

    def pdf(self, x) -> np.ndarray:
        """Probability density of the fitted distribution at ``x``."""
        x = np.asarray(x, dtype=float)
        with np.errstate(all="ignore"):
            return np.exp(_logpdf(self.family, x, self.params))


@dataclass(frozen=True)
class ExponentialCurve:
    """The paper's curve ``y = a exp(-b x)``, least-squares fitted to the histogram density.

    Attributes
    ----------
    a, b : float
        Amplitude and decay rate.
    rss : float
        Residual sum of squares at the bin centres.
    r_squared : float
        ``1 - rss / sum((y - mean y)^2)``.
    """

    a: float
    b: float
    rss: float
    r_squared: float

    def evaluate(self, x) -> np.ndarray:
        """Evaluate ``a exp(-b x)``."""
        return self.a * np.exp(-self.b * np.asarray(x, dtype=float))


class _FitsRecord:
    """A record holding several fits (``fits``) of one histogram, compared by BIC."""

    fits: tuple

    @property
    def bic(self) -> dict[str, float]:
        """BIC of each fit, keyed by its family (magnitudes) or model (orientations) name."""
        return {f.family: f.bic for f in self.fits}


@dataclass(frozen=True, eq=False)
class CoefficientStatistics(_FitsRecord):
    """Distribution of the nonzero coefficient magnitudes of one image (Fig. 4).

    Attributes
    ----------
    histogram : Histogram
        Histogram density of the nonzero magnitudes.
    curve : ExponentialCurve
        The paper's ``a exp(-b x)`` least-squares fit to ``histogram``.
    fits : tuple of DistributionFit
        Maximum-likelihood fit of each family, in the order requested (default
        :data:`MAGNITUDE_FAMILIES`).
    best_family : str
        Family with the lowest BIC.
    n_nonzero : int
        Number of nonzero coefficients.
    """

    histogram: Histogram
    curve: ExponentialCurve
    fits: tuple[DistributionFit, ...]
    best_family: str
    n_nonzero: int

    def fit(self, family: str) -> DistributionFit:
        """Return the maximum-likelihood fit of ``family``."""
        return _fits_by_name(self.fits, family)

    @property
    def a(self) -> float:
        """Amplitude ``a`` of the paper's curve ``a exp(-b x)``."""
        return self.curve.a

    @property
    def b(self) -> float:
        """Decay rate ``b`` of the paper's curve ``a exp(-b x)``."""
        return self.curve.b


@dataclass(frozen=True)
class VonMisesComponent:
    """One term ``A exp(kappa (cos(2 pi (x - phi)) - 1))`` of an orientation model.

    Attributes
    ----------
    amplitude : float
        ``A``, the peak height of the term (histogram density units).
    kappa : float
        Concentration.
    phi : float
        Mean orientation as a fraction of pi, in [0, 1).
    """

    amplitude: float
    kappa: float
    phi: float

    @property
    def mu_radians(self) -> float:
        """Mean orientation in radians, in [0, pi)."""
        return self.phi * math.pi

    @property
    def mu_degrees(self) -> float:
        """Mean orientation in degrees, in [0, 180)."""
        return self.phi * 180.0


@dataclass(frozen=True, eq=False)
class OrientationStatistics(_FitsRecord):
    """Distribution of the orientations carried by the nonzero coefficients (Fig. 5).

    Attributes
    ----------
    histogram : Histogram
        Normalised circular histogram over x = theta / pi in [0, 1).
    fits : tuple of CurveFit
        Fits of ``"uniform"``, ``"von_mises"`` and ``"double_von_mises"``.
    components : tuple of two VonMisesComponent
        The double von Mises terms, largest amplitude first.
    single : VonMisesComponent
        The single von Mises fit.
    best_model : str
        Model with the lowest BIC.
    n_coefficients : int
        Number of nonzero coefficients (samples).
    total_weight : float
        Sum of the sample weights (``n_coefficients`` with count weighting).
    """

    histogram: Histogram
    fits: tuple[CurveFit, ...]
    components: tuple[VonMisesComponent, VonMisesComponent]
    single: VonMisesComponent
    best_model: str
    n_coefficients: int
    total_weight: float

    def fit(self, model: str) -> CurveFit:
        """Return the fit of ``model``."""
        return _fits_by_name(self.fits, model)

    @property
    def kappas(self) -> tuple[float, float]:
        """Concentrations of the double von Mises terms."""
        return (self.components[0].kappa, self.components[1].kappa)

    @property
    def mus(self) -> tuple[float, float]:
        """Means ``phi`` of the double von Mises terms, as fractions of pi in [0, 1)."""
        return (self.components[0].phi, self.components[1].phi)

    @property
    def amplitudes(self) -> tuple[float, float]:
        """Amplitudes of the double von Mises terms."""
        return (self.components[0].amplitude, self.components[1].amplitude)


# --------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Fitting machinery
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Coefficient magnitudes (Fig. 4)
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Orientations (Fig. 5)
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Plots (functions of a matplotlib Axes)
# --------------------------------------------------------------------------------------


def plot_coefficient_statistics(
    ax,
    stats: CoefficientStatistics,
    *,
    families: Sequence[str] | None = None,
    color: str = "0.6",
    logy: bool = False,
):
    """Draw a magnitude histogram, the paper's exponential curve and fitted densities.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Target axes.
    stats : CoefficientStatistics
        Record from :func:`coefficient_statistics` or :func:`fit_coefficient_magnitudes`.
    families : sequence of str, optional
        Maximum-likelihood densities to draw (dashed) besides the least-squares curve
        ``a exp(-b x)`` (black, as in the paper). Default: the best family.
    color : str, optional
        Histogram colour.
    logy : bool, optional
        Logarithmic density axis.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``.
    """
    h = stats.histogram
    ax.bar(h.centers, h.density, width=h.widths, color=color, align="center", linewidth=0)
    xs = np.linspace(h.edges[0], h.edges[-1], 400)
    xs = xs[xs > 0]
    c = stats.curve
    if math.isfinite(c.a) and math.isfinite(c.b):
        ax.plot(xs, c.evaluate(xs), color="k", label=f"{c.a:.3g} exp(-{c.b:.3g} x)")
    for fam in [stats.best_family] if families is None else families:
        f = stats.fit(fam)
        if f.valid:
            ax.plot(xs, f.pdf(xs), linestyle="--", label=f"{fam} ML (BIC {f.bic:.1f})")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("|coefficient|")
    ax.set_ylabel("density")
    ax.legend(frameon=False, fontsize="small")
    return ax


def plot_orientation_statistics(
    ax,
    stats: OrientationStatistics,
    *,
    models: Sequence[str] = ("double_von_mises",),
    color: str = "0.6",
    degrees: bool = True,
):
    """Draw an orientation histogram and its fitted models onto the Axes ``ax``; returns ``ax``.

    ``stats``, an :class:`OrientationStatistics` from :func:`orientation_statistics` or
    :func:`fit_orientations`, is drawn as bars of the colour ``color`` with the ``models``
    over them (default: the double von Mises, in black as in the paper). ``degrees``
    labels the x axis in degrees (0–180) instead of x = theta / pi in [0, 1).
    """
    h = stats.histogram
    scale = 180.0 if degrees else 1.0
    ax.bar(h.centers * scale, h.density, width=h.widths * scale, color=color, linewidth=0)
    xs = np.linspace(h.edges[0], h.edges[-1], 400)
    for m in models:
        f = stats.fit(m)
        if f.valid:
            style = {"color": "k"} if m == "double_von_mises" else {"linestyle": "--"}
            ax.plot(xs * scale, f.evaluate(xs), label=f"{m} (BIC {f.bic:.1f})", **style)
    ax.set_xlabel("orientation (deg)" if degrees else r"$\theta / \pi$")
    ax.set_ylabel("density")
    ax.legend(frameon=False, fontsize="small")
    return ax


def plot_bic(ax, records: Sequence[CoefficientStatistics] | Sequence[OrientationStatistics]):
    """Box plot onto the Axes ``ax`` of the BIC of each family over a batch of records (Fig. 4b / 5b).

    ``records``: CoefficientStatistics or OrientationStatistics sharing the same families
    (e.g. from a batch helper). Returns ``ax``.
    """
    records = list(records)
    if not records:
        raise ValueError("records: expected at least one record")
    names = [f.family for f in records[0].fits]
    data = []
    for name in names:
        vals = np.array([r.fit(name).bic for r in records], dtype=float)
        data.append(vals[np.isfinite(vals)])
    ax.boxplot(data)
    ax.set_xticks(np.arange(1, len(names) + 1))
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.set_ylabel("BIC")
    return ax

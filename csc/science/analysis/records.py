"""Records of the analysis: histograms, fits and the per-image statistics (frozen dataclasses)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from csc.science.analysis.curves import _CURVES, _logpdf


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

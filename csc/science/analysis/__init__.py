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

from csc.science.analysis.curves import KAPPA_MAX, MAGNITUDE_FAMILIES, ORIENTATION_MODELS
from csc.science.analysis.fitting import bic_from_rss
from csc.science.analysis.magnitudes import (
    batch_coefficient_statistics,
    coefficient_statistics,
    fit_coefficient_magnitudes,
)
from csc.science.analysis.orientations import (
    batch_orientation_statistics,
    coefficient_orientations,
    fit_orientations,
    orientation_statistics,
)
from csc.science.analysis.plots import plot_bic, plot_coefficient_statistics, plot_orientation_statistics
from csc.science.analysis.records import (
    CoefficientStatistics,
    CurveFit,
    DistributionFit,
    ExponentialCurve,
    Histogram,
    OrientationStatistics,
    VonMisesComponent,
)

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

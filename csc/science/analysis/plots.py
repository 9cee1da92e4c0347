"""Plots of the analysis records, each a function of a matplotlib Axes."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from csc.core.checks import check_bool
from csc.science.analysis.records import CoefficientStatistics, OrientationStatistics


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
    logy = check_bool("logy", logy)
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
    degrees = check_bool("degrees", degrees)
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

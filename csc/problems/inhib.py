r"""Convolutional BPDN with lateral and self inhibition (SPORCO ``admm.cbpdnin.ConvBPDNInhib``).

.. math::
    \operatorname*{argmin}_x \; \tfrac12 \Big\| \sum_m d_m * x_m - s \Big\|_2^2
    + \lambda \sum_m \| w_m \odot x_m \|_1 + \mu \sum_m \omega_m^T |x_m|
    + \gamma \sum_m z_m^T |x_m| ,

ω_m = Σ_n c_{m,n} (h * |x_n|) the lateral inhibition of the other members of m's groups
(c_{m,n} from the (G, M) group weights W_g: (W_gᵀW_g)_{m,n} − δ_{mn} Σ_g W_{g,m}), and
z_m = h' * |x_m| the self inhibition, h a window of T samples per axis centred on the origin
and h' the same with 0 there (Cogliati et al. 2017). As SPORCO does, the weights are not
part of the minimisation: each iteration thresholds with the weights of the previous one and
then updates them from its x, smoothed (:class:`csc.core.prox.InhibitionThreshold`). The
x-step, ρ's default and its adaptation are CBPDN's (:mod:`csc.core.admm`); the prox has no
fused kernel, so every back end runs the torch loop (``result.backend`` says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from csc.core import sporco_options
from csc.core.checks import check_int, check_nonnegative, check_number
from csc.core.options import CBPDNOptions
from csc.core.prox import InhibitionThreshold
from csc.problems.cbpdn import SPORCO_STATS_NAMES, ConvBPDN, IterationStats

__all__ = ["ConvBPDNInhib", "InhibOptions", "InhibStats", "inhibition_windows"]


@dataclass(frozen=True)
class InhibOptions(CBPDNOptions):
    """Options of :class:`ConvBPDNInhib` (SPORCO ``admm.cbpdnin.ConvBPDNInhib.Options``): every
    :class:`csc.CBPDNOptions` field with its defaults, and

    Attributes
    ----------
    smooth_weight : float
        s in [0, 1] (``SmoothWeight``, 0.9): the share of the previous inhibition weights
        kept at each update, ω ← sω + (1 − s)ω_new.
    """

    smooth_weight: float = 0.9

    _sporco: ClassVar[sporco_options.SporcoTable] = sporco_options.INHIB

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "smooth_weight", check_number("smooth_weight", self.smooth_weight,
                                                               minimum=0, maximum=1))


@dataclass(frozen=True)
class InhibStats(IterationStats):
    """:class:`csc.IterationStats` of :class:`ConvBPDNInhib`, with ``lateral`` = Σ_m ω_mᵀ|x_m|
    (SPORCO ``RegLat``) and ``self_inhibition`` = Σ_m z_mᵀ|x_m| (``RegSelf``), at the weights
    of the iteration's end; ``objective`` includes μ·lateral + γ·self_inhibition."""

    lateral: np.ndarray
    self_inhibition: np.ndarray


def inhibition_windows(size: int, window, shape) -> tuple[np.ndarray, np.ndarray]:
    """The lateral and self inhibition windows h, h' (H, W), float64, as SPORCO builds them: a
    window of n = ``size`` samples (plus one when even) per axis, ``scipy.signal.get_window(window,
    n)``, made 2-D as (w_i w_j)^(1/2), placed at the top left of an (H, W) array and rolled so
    that its centre is the origin; h' is h with 0 at the origin."""
    from scipy import signal

    n = size + (not size % 2)
    w = np.array(signal.get_window(window, n))
    grids = np.meshgrid(w, w)
    win = np.power(np.prod(np.concatenate([g[None] for g in grids]), axis=0), 1 / 2)
    h = np.zeros(tuple(shape))
    h[tuple(np.meshgrid(np.arange(n), np.arange(n)))] = win  # SPORCO's nDimInd
    for axis in (0, 1):
        h = np.roll(h, -n // 2 + 1, axis=axis)
    hs = h.copy()
    hs[0, 0] = 0.0
    return h, hs


class ConvBPDNInhib(ConvBPDN):
    r"""Convolutional BPDN with lateral and self inhibition by ADMM (SPORCO
    ``admm.cbpdnin.ConvBPDNInhib``; module docstring for the equations).

    Parameters
    ----------
    dictionary : (K, kh, kw) or (K, C, kh, kw)
        Kernels, as :class:`csc.ConvBPDN`'s.
    lmbda : float
        λ ≥ 0, the ℓ1 weight.
    mu : float, optional
        μ ≥ 0, the lateral inhibition's weight (SPORCO's default 10λ).
    gamma : float
        γ ≥ 0, the self inhibition's weight (0: none).
    groups : (G, K) array, optional
        W_g (SPORCO ``Wg``): row g the membership strength of each kernel in group g (0: not a
        member). None: no lateral inhibition.
    window_size : int, optional
        T, the window's samples per axis (SPORCO ``Whn``; an even T is made odd); default the
        kernels' height.
    window : str or tuple
        The window, as :func:`scipy.signal.get_window` takes it (SPORCO ``win_args``, default
        ``("tukey", 0.5)``; the examples use ``"boxcar"``).
    options : InhibOptions, optional

    Everything else is :class:`csc.ConvBPDN`'s: batches of images each solved alone (or one
    problem with ``coupling="sporco"``), any device and dtype, ``y0``/``u0``. The inhibition
    weights are per image and start at 0.
    """

    options_class = InhibOptions
    stats_class = InhibStats
    sporco_stats_names = {**SPORCO_STATS_NAMES, "lateral": "RegLat", "self_inhibition": "RegSelf"}

    def __init__(self, dictionary, lmbda: float, mu: float | None = None, gamma: float = 0.0, groups=None,
                 window_size: int | None = None, window: Any = ("tukey", 0.5),
                 options: InhibOptions | None = None):
        super().__init__(dictionary, lmbda, options)
        self.mu = check_nonnegative("mu", 10.0 * self.lmbda if mu is None else mu)
        self.gamma = check_nonnegative("gamma", gamma)
        self.groups = self._check_groups(groups)
        size = int(self.dictionary.shape[-2]) if window_size is None else window_size
        self.window_size = check_int("window_size", size, 1)
        self.window = window
        try:
            inhibition_windows(self.window_size, window, (self.window_size + 1,) * 2)
        except Exception as exc:  # scipy's ValueError, TypeError, … for a window it does not know
            raise ValueError(f"window: expected a window scipy.signal.get_window takes (e.g. 'boxcar', "
                             f"('tukey', 0.5)), got {window!r} ({exc})") from None

    def _check_groups(self, groups) -> torch.Tensor | None:
        if groups is None:
            return None
        K = int(self.dictionary.shape[0])
        try:
            g = np.asarray(groups.detach().cpu() if isinstance(groups, torch.Tensor) else groups, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"groups: expected a (G, K={K}) array of group weights, got {type(groups).__name__}") \
                from None
        if g.ndim != 2 or g.shape[1] != K or g.shape[0] == 0:
            raise ValueError(f"groups: expected a (G, K={K}) array of group weights (one column per kernel), "
                             f"got shape {g.shape}")
        if not np.all(np.isfinite(g)):
            raise ValueError("groups: expected finite group weights")
        return torch.from_numpy(g)

    def _prox(self, w, kernel_size, S: torch.Tensor) -> InhibitionThreshold:
        """The inhibited soft threshold, its windows' DFTs for images of S's size, dtype and device."""
        o, (H, W) = self.options, S.shape[-2:]
        n = self.window_size + (not self.window_size % 2)
        windows = (None, None)
        if (self.groups is not None and self.mu != 0) or self.gamma != 0:
            if n > H or n > W:
                raise ValueError(f"window_size: the inhibition window ({n} samples per axis) must fit in the "
                                 f"images ({H}×{W})")
            windows = tuple(torch.fft.rfft2(torch.from_numpy(h).to(dtype=S.dtype, device=S.device))
                            for h in inhibition_windows(self.window_size, self.window, (H, W)))
        groups = None if self.groups is None else self.groups.to(dtype=S.dtype, device=S.device)
        return InhibitionThreshold(self.lmbda, self.mu, self.gamma, w, groups, windows[0], windows[1],
                                   float(o.smooth_weight), bool(o.nonneg),
                                   tuple(kernel_size) if o.no_boundary_cross else None)

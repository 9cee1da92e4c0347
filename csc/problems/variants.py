r"""SPORCO's other ConvBPDN problems: a quadratic penalty on the codes, on the same ADMM core.

Each problem adds (μ/2)·x̂ᴴ diag(P) x̂ (P ≥ 0 per kernel and frequency) to CBPDN's
objective; in the split x = y the term stays with x, so the ADMM iteration, the y-step,
ρ's default and its adaptation are CBPDN's (:mod:`csc.core.admm`), and only the x-step's
system gains a diagonal term (:class:`csc.core.xstep.DiagonalXStep`):

.. math:: (\hat D^H \hat D + \operatorname{diag}(\rho + \mu P))\,\hat x = \hat D^H \hat s + \rho\,\hat v .

- :class:`ConvElasticNet` (SPORCO ``admm.cbpdn.ConvElasticNet``): P = 1, the penalty
  (μ/2)‖x‖², statistics field ``l2`` = ½‖x‖² (SPORCO ``RegL2``);
- :class:`ConvBPDNGradReg` (SPORCO ``admm.cbpdn.ConvBPDNGradReg``): P_k = w_k Σ_i |Ĝ_i|²
  for the circular first differences G_i along each spatial axis, the penalty
  (μ/2) Σ_k w_k Σ_i ‖G_i x_k‖², statistics field ``grad`` = ½ Σ_k w_k Σ_i ‖G_i x_k‖²
  (SPORCO ``RegGrad``).

The objective is data fidelity + λ·ℓ1 + μ·(the penalty's field), evaluated on x (on y with
``objective_on_y``), as SPORCO's ``eval_objfn``.

:class:`ConvL1L1Grd` (SPORCO ``admm.cbpdn.ConvL1L1Grd``) has an ℓ1 data term instead, and a
different split, Ax − y = c with A = (D; I), c = (s; 0): the same loop over a two-block
workspace (:mod:`csc.backends.torch_twoblock`, :mod:`csc.backends.numba_twoblock`), block 0's
data term :class:`csc.core.prox.L1Data`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from csc.problems.cbpdn import SPORCO_STATS_NAMES, ConvBPDN, IterationStats
from csc.core.checks import check_nonnegative
from csc.problems.maskdcpl import ConvBPDNMaskDcpl
from csc.core.options import CBPDNOptions, GradRegOptions, L1L1GrdOptions
from csc.core.prox import L1Data
from csc.core.xstep import DiagonalXStep, diagonal_xstep_for, gradient_gram

__all__ = ["ConvElasticNet", "ConvBPDNGradReg", "ConvL1L1Grd", "ElasticNetStats", "GradRegStats", "L1L1GrdStats"]


@dataclass(frozen=True)
class ElasticNetStats(IterationStats):
    """:class:`csc.IterationStats` of :class:`ConvElasticNet`, with ``l2`` = ½‖x‖²
    (SPORCO ``RegL2``); ``objective`` includes μ·l2."""

    l2: np.ndarray


@dataclass(frozen=True)
class GradRegStats(IterationStats):
    """:class:`csc.IterationStats` of :class:`ConvBPDNGradReg`, with ``grad`` =
    ½ Σ_k w_k Σ_i ‖G_i x_k‖² (SPORCO ``RegGrad``); ``objective`` includes μ·grad."""

    grad: np.ndarray


class ConvElasticNet(ConvBPDN):
    r"""Convolutional elastic net by ADMM (SPORCO ``admm.cbpdn.ConvElasticNet``):

    .. math::
        \operatorname*{argmin}_x \; \tfrac12 \Big\| \sum_k d_k * x_k - s \Big\|_2^2
        + \lambda \sum_k \| w_k \odot x_k \|_1 + \frac{\mu}{2} \sum_k \| x_k \|_2^2 .

    The x-step solves (D̂ᴴD̂ + (ρ + μ)I)x̂ = D̂ᴴŝ + ρv̂; everything else is
    :class:`csc.ConvBPDN`'s (same options, batching, back ends). ``mu`` ≥ 0 is the ℓ2
    weight (SPORCO's ``mu`` argument); μ = 0 is CBPDN.
    """

    stats_class = ElasticNetStats
    sporco_stats_names = {**SPORCO_STATS_NAMES, "l2": "RegL2"}

    def __init__(self, dictionary, lmbda: float, mu: float = 0.0, options: CBPDNOptions | None = None):
        super().__init__(dictionary, lmbda, options)
        self.mu = check_nonnegative("mu", mu)

    def _xstep(self, D: torch.Tensor, shape) -> DiagonalXStep:
        P = torch.ones((1, shape[0], shape[1] // 2 + 1), dtype=D.dtype, device=D.device)
        return diagonal_xstep_for(D, shape, P, self.mu)

    def _penalty_weight(self) -> float:
        return self.mu


class ConvBPDNGradReg(ConvBPDN):
    r"""Convolutional BPDN with a gradient penalty on the maps by ADMM (SPORCO
    ``admm.cbpdn.ConvBPDNGradReg``, Wohlberg 2016):

    .. math::
        \operatorname*{argmin}_x \; \tfrac12 \Big\| \sum_k d_k * x_k - s \Big\|_2^2
        + \lambda \sum_k \| w_k \odot x_k \|_1
        + \frac{\mu}{2} \sum_k g_k \sum_i \| G_i x_k \|_2^2 ,

    G_i the circular first difference along spatial axis i, g_k the per-kernel weights
    :attr:`GradRegOptions.grad_weight` (SPORCO ``GradWeight``; they multiply the squared
    norms, as in SPORCO). The x-step is the diagonal-plus-rank-one system
    (D̂ᴴD̂ + diag(ρ + μ g_k Σ_i |Ĝ_i|²))x̂ = D̂ᴴŝ + ρv̂ (SPORCO ``linalg.solvedbd_sm``).

    Its common use: an impulse kernel appended to the dictionary with ``grad_weight`` 1
    for it and 0 for the others, so that the impulse's maps take the image's smooth part
    (no Tikhonov prefilter needed).
    """

    options_class = GradRegOptions
    stats_class = GradRegStats
    sporco_stats_names = {**SPORCO_STATS_NAMES, "grad": "RegGrad"}

    def __init__(self, dictionary, lmbda: float, mu: float = 0.0, options: GradRegOptions | None = None):
        super().__init__(dictionary, lmbda, options)
        self.mu = check_nonnegative("mu", mu)
        w = self.options.grad_weight
        K = self.dictionary.shape[0]
        if isinstance(w, np.ndarray) and w.shape[0] not in (1, K):
            raise ValueError(f"grad_weight: expected a scalar or one weight per kernel (K={K},), "
                             f"got {w.shape[0]} weights")

    def _xstep(self, D: torch.Tensor, shape) -> DiagonalXStep:
        return diagonal_xstep_for(D, shape, self._gradient_weights(shape, D.device), self.mu)

    def _gradient_weights(self, shape, device) -> torch.Tensor:
        """P_k = g_k Σ_i |Ĝ_i|², (1 or K, H, Wr) float64."""
        w = torch.as_tensor(np.asarray(self.options.grad_weight, dtype=np.float64)).reshape(-1, 1, 1)
        return (w * gradient_gram(shape).unsqueeze(0)).to(device=device)  # SPORCO: GHGf = Wgrd * GHGf

    def _penalty_weight(self) -> float:
        return self.mu


@dataclass(frozen=True)
class L1L1GrdStats(GradRegStats):
    """Statistics of :class:`ConvL1L1Grd`: as :class:`GradRegStats`, with ``data_fidelity``
    the ℓ1 term Σ|W·(Σ_k d_k * x_k − s)| (SPORCO ``DFid``)."""


class ConvL1L1Grd(ConvBPDNMaskDcpl, ConvBPDNGradReg):
    r"""Convolutional sparse coding with an ℓ1 data term and a gradient penalty by ADMM
    (SPORCO ``admm.cbpdn.ConvL1L1Grd``, Wohlberg 2016):

    .. math::
        \operatorname*{argmin}_x \; \Big\| W \odot \Big(\sum_k d_k * x_k - s\Big) \Big\|_1
        + \lambda \sum_k \| w_k \odot x_k \|_1
        + \frac{\mu}{2} \sum_k g_k \sum_i \| G_i x_k \|_2^2 ,

    W a mask (``solve(images, mask=...)``, default 1; ``boundary="mask"`` as
    :class:`csc.ConvBPDNMaskDcpl`), on the split Ax − y = c, A = (D; I), c = (s; 0)
    (SPORCO ``ConvTwoBlockCnstrnt``, whose ConvBPDNMaskDcpl it extends, as in SPORCO: the
    residuals are ‖Ax − y − c‖ and ρ‖Aᵀ(y_prev − y)‖, normalised by max(‖Ax‖, ‖y‖, ‖c‖) and
    ρ‖Aᵀu‖). The x-step solves
    (D̂ᴴD̂ + diag(1 + (μ/ρ)g_kΣ_i|Ĝ_i|²))x̂ = D̂ᴴ·DFT(y₀ − u₀ + s) + DFT(y₁ − u₁).
    Options: :class:`csc.L1L1GrdOptions` (SPORCO's defaults for this problem: ρ₀ = 1, no
    adaptive ρ); both back ends (:class:`~csc.backends.torch_twoblock.TorchTwoBlock`,
    :class:`~csc.backends.numba_twoblock.FusedTwoBlock`, chosen by the registry). ``codes`` are y₁ (SPORCO's
    ``ReturnVar`` 'Y1'), ``u`` its dual u₁.
    """

    options_class = L1L1GrdOptions
    stats_class = L1L1GrdStats
    sporco_stats_names = ConvBPDNGradReg.sporco_stats_names
    #: SPORCO ``ConvL1L1Grd.rsdl_s``/``rsdl_sn``: ρ‖Aᵀ(y_prev − y)‖ over ρ‖Aᵀu‖
    _dual = "adjoint"

    def _data_term(self, mask) -> L1Data:
        """Block 0's g₀ = ‖W·y₀‖₁ (:class:`csc.core.prox.L1Data`)."""
        return L1Data(mask)

    def _two_block_xstep(self, D: torch.Tensor, shape, device) -> DiagonalXStep:
        """(D̂ᴴD̂ + diag(1 + (μ/ρ)P))x̂ = D̂ᴴŝ₀ + v̂, P the gradient weights."""
        return diagonal_xstep_for(D, shape, self._gradient_weights(shape, device), self.mu, over_rho=True)

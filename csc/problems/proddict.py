r"""Convolutional sparse coding with a product of a convolutional and a standard dictionary
(SPORCO ``admm.pdcsc.ConvProdDictBPDN``, Garcia-Cardona & Wohlberg 2018).

For images of C channels S = (s_0 s_1 …), single-channel kernels d_k and a (C, J) standard
dictionary B (e.g. a few colours),

.. math::
    \operatorname*{argmin}_X \; \tfrac12 \big\| D X B^T - S \big\|_2^2 + \lambda \| w \odot X \|_1 ,
    \qquad (D X B^T)_c = \sum_j B_{cj} \sum_k d_k * x_{jk} ,

X the J·K maps of J pseudo-channels. ADMM on x = y as :class:`csc.ConvBPDN` (its options,
defaults, ρ adaptation and stopping); only the x-step differs
(:class:`csc.core.xstep.ProductXStep`: BᵀB diagonalised once, then Sherman–Morrison in each of
its eigen-channels). It has no fused kernel: the numba back end runs the torch loop and says
so in ``result.backend``.

:class:`ConvProdDictL1L1Grd` (SPORCO ``admm.pdcsc.ConvProdDictL1L1Grd``) has an ℓ1 data term and
a gradient penalty instead, on the two-block split of :class:`csc.ConvL1L1Grd` with A = (DBᵀ; I):

.. math::
    \operatorname*{argmin}_X \; \big\| W \odot (D X B^T - S) \big\|_1 + \lambda \| w \odot X \|_1
    + \frac{\mu}{2} \sum_{j,k} g_k \sum_i \| G_i x_{jk} \|_2^2 ,

and :class:`ConvProdDictL1L1GrdJoint` (SPORCO ``admm.pdcsc.ConvProdDictL1L1GrdJoint``) the ℓ2,1 norm
over the pseudo-channels, λ Σ_{k,p} w₂₁ ‖(x_{jk}(p))_j‖₂, in place of the ℓ1 term.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from csc.core import ops, sporco_options
from csc.core.checks import as_float_tensor, check_finite, shape_weights
from csc.core.options import CBPDNOptions
from csc.core.prox import SparseGroupThreshold
from csc.backends.registry import two_block_workspace
from csc.core.options import L1L1GrdOptions
from csc.core.xstep import ProductXStep
from csc.problems.cbpdn import CBPDNResult, ConvBPDN
from csc.problems.joint import check_l21_weight
from csc.problems.variants import ConvL1L1Grd, L1L1GrdStats

__all__ = ["ConvProdDictBPDN", "ConvProdDictL1L1Grd", "ConvProdDictL1L1GrdJoint", "L1L1GrdJointOptions",
           "L1L1GrdJointStats", "ProdDictResult"]


@dataclass
class ProdDictResult(CBPDNResult):
    """:class:`csc.CBPDNResult` of :class:`ConvProdDictBPDN`: codes (B, J, K, H, W) and the
    standard dictionary ``standard`` (C, J) the solve used."""

    standard: torch.Tensor | None = None

    def reconstruct(self, codes: torch.Tensor | None = None) -> torch.Tensor:
        """D X Bᵀ: Σ_j B_cj Σ_k d_k * codes_jk, (B, C, H, W); ``codes`` defaults to :attr:`codes`
        (y, as SPORCO's ``reconstruct``)."""
        c = self.codes if codes is None else codes
        J, K, H, W = c.shape[-4:]
        DX = ops.synthesis(self.dictionary.to(c.device), c.reshape(-1, K, H, W)).reshape(-1, J, H, W)
        out = torch.einsum("cj,njhw->nchw", self.standard.to(device=c.device, dtype=c.dtype), DX)
        return out.reshape(c.shape[:-4] + out.shape[1:])


def _checked_standard(dictionary: torch.Tensor, standard) -> torch.Tensor:
    """The standard dictionary B (C, J) as a float64 CPU tensor, and the kernels checked single-channel."""
    if dictionary.ndim != 3:
        raise ValueError(f"dictionary: a product dictionary takes single-channel (K, kh, kw) kernels, got shape "
                         f"{tuple(dictionary.shape)}")
    B = as_float_tensor("standard", standard, torch.float64, torch.device("cpu")).detach()
    if B.ndim != 2 or 0 in B.shape:
        raise ValueError(f"standard: expected a (C, J) standard dictionary (channels × pseudo-channels), got "
                         f"shape {tuple(B.shape)}")
    check_finite("standard", B)
    return B


class _ProductMaps:
    """What the product-dictionary problems share: images (C, H, W) or (B, C, H, W) with C the rows
    of :attr:`standard`, maps (n, J·K, H, W) pseudo-channel-major, codes (B, J, K, H, W), ℓ1 weights
    the same for every pseudo-channel, ``y0``/``u0`` of the codes' shape, a :class:`ProdDictResult`."""

    standard: torch.Tensor

    def _prepare_images(self, images):
        S, lead = super()._prepare_images(images)  # (n, H, W) with lead (B, C) or (C,)
        if len(lead) == 1:  # one (C, H, W) image
            lead = (1,) + lead
        C = int(np.prod(lead[1:]))
        if C != self.standard.shape[0]:
            raise ValueError(f"images: expected {self.standard.shape[0]} channels (the standard dictionary's rows), "
                             f"got {C}: images (C, H, W) or (B, C, H, W)")
        return S.reshape(lead[0], C, *S.shape[-2:]), (lead[0],)

    @property
    def _pseudo(self) -> int:
        return int(self.standard.shape[1])

    def _num_maps(self, K):
        return self._pseudo * K

    def _code_shape(self, M, H, W):
        return (self._pseudo, M // self._pseudo, H, W)

    def _prepare_weight(self, n, shape, S, lead):
        w = super()._prepare_weight(n, shape, S, lead)
        if isinstance(w, float):
            return w
        J = self._pseudo
        return w.unsqueeze(1).expand(w.shape[0], J, *w.shape[1:]).reshape(w.shape[0], J * w.shape[1], *w.shape[2:])

    def _prepare_init(self, name, value, n, lead, shape):
        if value is None:
            return None
        D = self._dictionary_on(getattr(self, "_device", self.dictionary.device))
        t = as_float_tensor(name, value, D.dtype, D.device).detach()
        expect = tuple(lead) + (self._pseudo, D.shape[0]) + tuple(shape)
        if tuple(t.shape) != expect:
            raise ValueError(f"{name}: expected shape {expect}, got {tuple(t.shape)}")
        check_finite(name, t)
        return t.reshape(n, self._pseudo * D.shape[0], *shape).clone()

    def _result(self, res: CBPDNResult) -> "ProdDictResult":
        fields = {k: getattr(res, k) for k in ("codes", "x", "u", "rho", "iterations", "stats", "dictionary",
                                                "backend")}
        return ProdDictResult(**fields, standard=self.standard.to(device=res.codes.device, dtype=res.codes.dtype))


class ConvProdDictBPDN(_ProductMaps, ConvBPDN):
    r"""Convolutional BPDN with a product dictionary D·Bᵀ by ADMM (SPORCO
    ``admm.pdcsc.ConvProdDictBPDN``; module docstring for the equations).

    Parameters
    ----------
    dictionary : (K, kh, kw)
        Single-channel convolutional kernels (SPORCO refuses multi-channel ones too).
    standard : (C, J) array or tensor
        The standard dictionary B (SPORCO's ``B``): C the images' channels, J the codes'
        pseudo-channels.
    lmbda : float
        λ ≥ 0.
    options : CBPDNOptions, optional
        SPORCO ``ConvProdDictBPDN.Options`` are ``ConvBPDN``'s: :meth:`csc.CBPDNOptions.from_sporco`.
        ``l1_weight``: a scalar, (K,), (K, H, W) or (B, K, H, W), the same for every pseudo-channel.

    ``solve(images)`` takes (C, H, W) or (B, C, H, W) and returns a :class:`ProdDictResult`, codes
    (B, J, K, H, W); ``y0``, ``u0`` of that shape. Every image its own problem, or the batch one
    (``coupling="sporco"``, SPORCO's multi-image array).
    """

    def __init__(self, dictionary, standard, lmbda: float, options: CBPDNOptions | None = None):
        super().__init__(dictionary, lmbda, options)
        self.standard = _checked_standard(self.dictionary, standard)

    def _xstep(self, D, shape):
        return ProductXStep.from_kernels(D, shape, self.standard)

    def solve(self, images, y0=None, u0=None) -> ProdDictResult:
        """Solve for every image of ``images`` ((C, H, W) or (B, C, H, W)); codes (B, J, K, H, W)."""
        return self._result(super().solve(images, y0, u0))


class ConvProdDictL1L1Grd(_ProductMaps, ConvL1L1Grd):
    r"""ℓ1 data fidelity, ℓ1 codes and a gradient penalty with a product dictionary D·Bᵀ, by ADMM
    (SPORCO ``admm.pdcsc.ConvProdDictL1L1Grd``; module docstring for the equations).

    The split Ax − y = c, A = (DBᵀ; I), c = (S; 0) of :class:`csc.ConvL1L1Grd` with the x-step
    (BᵀB ⊗ D̂ᴴD̂ + diag(1 + (μ/ρ)P))x̂ = (DBᵀ)ᴴ·DFT(y₀ − u₀ + S) + DFT(y₁ − u₁)
    (:class:`csc.core.xstep.ProductXStep` with ``over_rho``), y₀ = S_{W/ρ}(a₀ + u₀ − S) and
    y₁ = S_{λw/ρ}(a₁ + u₁), and SPORCO's dual residual of this class, ρ‖Aᵀu‖ over ρ‖u‖.

    Parameters
    ----------
    dictionary : (K, kh, kw); standard : (C, J)
        As :class:`ConvProdDictBPDN`'s.
    lmbda, mu : float
        λ (ℓ1) and μ (gradient) ≥ 0.
    options : L1L1GrdOptions, optional
        SPORCO's ``ConvL1L1Grd.Options`` (ρ₀ = 1, no adaptive ρ by default); ``grad_weight``
        g_k per kernel (``GradWeight``), ``l1_weight`` as :class:`ConvProdDictBPDN`'s.

    ``solve(images, mask=None, boundary="periodic")``: images (C, H, W) or (B, C, H, W); W a mask as
    :meth:`csc.ConvBPDNMaskDcpl.solve`'s, per pixel or per channel and pixel. Codes y₁
    (B, J, K, H, W); every image its own problem; the torch loop on every back end.
    ``result.reconstruct()`` synthesises from the codes y₁; SPORCO's ``reconstruct()`` of this
    class uses x: ``result.reconstruct(result.x)``.
    """

    options_class = L1L1GrdOptions
    _dual = "plain"  # SPORCO ConvProdDictL1L1Grd.rsdl_s/rsdl_sn: ρ‖Aᵀu‖ over ρ‖u‖

    def __init__(self, dictionary, standard, lmbda: float, mu: float = 0.0, options: L1L1GrdOptions | None = None):
        super().__init__(dictionary, lmbda, mu, options)
        self.standard = _checked_standard(self.dictionary, standard)

    def _mask_channels(self, S: torch.Tensor) -> int:
        return int(S.shape[1])

    def _two_block_xstep(self, D: torch.Tensor, shape, device) -> ProductXStep:
        return ProductXStep.from_kernels(D, shape, self.standard, self._gradient_weights(shape, device), self.mu,
                                         True)

    def solve(self, images, mask=None, boundary: str = "periodic") -> ProdDictResult:
        """Solve for every image of ``images`` independently (class docstring)."""
        S, lead, m, D = self._prepare_masked(images, mask, boundary)
        n, (H, W) = S.shape[0], S.shape[-2:]
        prox = self._prox(self._prepare_weight(n, (H, W), S, lead), D.shape[-2:], S)
        ws = two_block_workspace(S, self._two_block_xstep(D, (H, W), S.device), self._num_maps(D.shape[0]), prox,
                                 self._data_term(m), self.options, dual=self._dual)
        return self._result(self._run(ws, S, lead, D, prox, prox.rho0(self.options)))


@dataclass(frozen=True)
class L1L1GrdJointOptions(L1L1GrdOptions):
    """Options of :class:`ConvProdDictL1L1GrdJoint` (SPORCO ``ConvProdDictL1L1GrdJoint.Options``):
    :class:`csc.L1L1GrdOptions`' fields and defaults, and

    Attributes
    ----------
    l21_weight : float, array or tensor
        w₂₁ of the ℓ2,1 term (``L21Weight``, 1): a scalar, one per kernel (K,), or a map (K, H, W) /
        (B, K, H, W), the same for every group of pseudo-channels. (``l1_weight`` has no term here.)
    """

    l21_weight: Any = 1.0

    _sporco: ClassVar[sporco_options.SporcoTable] = sporco_options.L1L1GRD_JOINT

    def __post_init__(self) -> None:
        super().__post_init__()
        check_l21_weight(self.l21_weight)


@dataclass(frozen=True)
class L1L1GrdJointStats(L1L1GrdStats):
    """Statistics of :class:`ConvProdDictL1L1GrdJoint`: :class:`csc.ConvL1L1Grd`'s (``l1`` is
    Σ|w·x| with weight 0: no ℓ1 term) and ``l21`` = Σ_{k,p} w₂₁‖(x_jk(p))_j‖₂ (SPORCO ``RegL21``);
    ``objective`` = data_fidelity + λ·l21 + μ·grad."""

    l21: np.ndarray


class ConvProdDictL1L1GrdJoint(ConvProdDictL1L1Grd):
    r""":class:`ConvProdDictL1L1Grd` with joint sparsity over the pseudo-channels (SPORCO
    ``admm.pdcsc.ConvProdDictL1L1GrdJoint``):

    .. math::
        \operatorname*{argmin}_X \; \big\| W \odot (D X B^T - S) \big\|_1
        + \lambda \sum_{k,p} w_{21} \big\| (x_{jk}(p))_j \big\|_2
        + \frac{\mu}{2} \sum_{j,k} g_k \sum_i \| G_i x_{jk} \|_2^2 .

    y₁'s step is SPORCO's ``prox_sl1l2(v, 0, λw₂₁/ρ)`` over the pseudo-channel axis
    (:class:`csc.core.prox.SparseGroupThreshold` with no ℓ1 part); everything else is
    :class:`ConvProdDictL1L1Grd`'s. Options :class:`L1L1GrdJointOptions`, statistics
    :class:`L1L1GrdJointStats`.
    """

    options_class = L1L1GrdJointOptions
    stats_class = L1L1GrdJointStats
    sporco_stats_names = {k: v for k, v in ConvL1L1Grd.sporco_stats_names.items() if k != "l1"} | {"l21": "RegL21"}

    def _prox(self, w, kernel_size, S: torch.Tensor) -> SparseGroupThreshold:
        """The group shrink by λw₂₁/ρ of each kernel's J pseudo-channel coefficients at a pixel."""
        o, n, (H, W) = self.options, S.shape[0], S.shape[-2:]
        K = self.dictionary.shape[0]
        w21 = shape_weights("l21_weight", self._checked_weight("l21_weight", o.l21_weight, S), K, (n, K, H, W))
        return SparseGroupThreshold(0.0, w, bool(o.nonneg), tuple(kernel_size) if o.no_boundary_cross else None,
                                    mu=self.lmbda, l21_weight=w21, channels=self._pseudo)

    def _prepare_weight(self, n, shape, S, lead):
        return 1.0  # no ℓ1 term (SPORCO's prox_sl1l2 with 0): its weight does not matter

r"""Convolutional BPDN with a spatial mask by mask decoupling (SPORCO ``admm.cbpdn.ConvBPDNMaskDcpl``,
Heide et al. 2015), and boundary handling by a masked padding, on the same ADMM core.

The problem, for images s, kernels d_k and a mask W ≥ 0 per image and pixel,

.. math::
    \operatorname*{argmin}_x \; \tfrac12 \Big\| W \odot \Big(\sum_k d_k * x_k - s\Big) \Big\|_2^2
    + \lambda \sum_k \| w_k \odot x_k \|_1 ,

is split as Ax − y = c with A = (D; I), y = (y₀, y₁), c = (s; 0) (SPORCO's
``ConvTwoBlockCnstrnt``), g₀(y₀) = ½‖W·y₀‖², g₁(y₁) = λ‖w·y₁‖₁. One iteration, run by
:class:`csc.core.admm.ADMMLoop` over a two-block workspace
(:class:`~csc.backends.torch_twoblock.TorchMaskDcpl`,
:class:`~csc.backends.numba_twoblock.FusedMaskDcpl`):

1. x-step (D̂ᴴD̂ + I)x̂ = D̂ᴴ·DFT(y₀ − u₀ + s) + DFT(y₁ − u₁) — ρ cancels (SPORCO
   ``ConvTwoBlockCnstrnt.xstep``, ``solvedbi_sm(Df, 1.0, b)``;
   :class:`csc.core.xstep.DiagonalXStep` with ``over_rho`` and μ = 0);
2. relaxation a = α·Ax + (1 − α)(y + c);
3. y₀ = ρ(a₀ + u₀ − s)/(W² + ρ) (the masked quadratic's proximal step), y₁ = S_{λw/ρ}(a₁ + u₁)
   with non-negativity and boundary zeroing;
4. u ← u + a − (y + c);
5. primal residual ‖Ax − y − c‖ / max(‖Ax‖, ‖y‖, ‖c‖) and, as SPORCO's
   ``ConvTwoBlockCnstrnt.rsdl_s``/``rsdl_sn`` (not overridden by ConvBPDNMaskDcpl), dual
   residual ρ‖Aᵀu‖ / (ρ‖u‖).

Boundary handling (``solve(images, boundary="mask")``, SPORCO's recipe in its example
``cbpdn_md_gry``): each image is padded by kh − 1 rows and kw − 1 columns of zeros at the
bottom and right, and the padding is masked (W = 0 there). A kernel placed near one edge
then no longer reaches the opposite edge through the circular convolution: the codes near
the border are free of wrap-around artefacts, and the maps in the padding carry the kernels
that stick out over the top and left edges.
"""

from __future__ import annotations

import dataclasses

import torch

from csc.backends.registry import two_block_workspace
from csc.core.prox import DataTerm, QuadraticData
from csc.problems.cbpdn import CBPDNResult, ConvBPDN
from csc.core.checks import as_float_tensor, check_finite
from csc.core.options import MaskDcplOptions
from csc.core.xstep import DiagonalXStep, diagonal_xstep_for

__all__ = ["ConvBPDNMaskDcpl", "MaskDcplResult", "BOUNDARIES", "pad_for_mask"]

#: the values of ``solve(..., boundary=)``: circular convolution as is, or a masked padding
BOUNDARIES = ("periodic", "mask")


def pad_for_mask(S: torch.Tensor, mask, kernel_size) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (n, H, W) (or (n, C, H, W)) padded with kh − 1 zero rows and kw − 1 zero columns at the bottom and
    right, and the mask on the padded grid (n or 1, 1, H + kh − 1, W + kw − 1): ``mask``
    (a float or a (1 or n, 1, H, W) tensor) inside, 0 in the padding."""
    kh, kw = kernel_size
    H, W = S.shape[-2:]
    Sp = torch.nn.functional.pad(S, (0, kw - 1, 0, kh - 1))
    m = mask if isinstance(mask, torch.Tensor) else torch.full((1, 1, H, W), float(mask), dtype=S.dtype,
                                                                   device=S.device)
    return Sp, torch.nn.functional.pad(m, (0, kw - 1, 0, kh - 1))


@dataclasses.dataclass
class MaskDcplResult(CBPDNResult):
    """:class:`csc.CBPDNResult` of the two-block problems (:class:`ConvBPDNMaskDcpl`,
    :class:`csc.ConvL1L1Grd`, :class:`csc.ConvMinL1InL2Ball`), whose :meth:`reconstruct` is
    SPORCO's ``ConvTwoBlockCnstrnt.reconstruct()`` by default: from the split's x."""

    def reconstruct(self, codes: torch.Tensor | None = None, source: str = "x") -> torch.Tensor:
        r"""Σ_k d_k * x_k, shape lead + (H, W) (lead + (C, H, W) for colour images).

        Parameters
        ----------
        codes : tensor, optional
            Synthesise from these coefficient maps (``source`` is then ignored).
        source : {"x", "codes"}
            Without ``codes``: ``"x"`` (default) synthesises from the split's x of the last
            iteration, as SPORCO's ``ConvBPDNMaskDcpl.reconstruct()``; ``"codes"`` from the exactly
            sparse codes y₁, as :class:`csc.ConvBPDN`'s result does. The two differ before
            convergence (PSNR 24.07 against 29.09 dB on SPORCO's ``cbpdn_md_gry`` example at a
            48² crop after 20 iterations).
        """
        if codes is None:
            if source not in ("x", "codes"):
                raise ValueError(f"source: expected 'x' or 'codes', got {source!r}")
            codes = self.x if source == "x" else self.codes
        return super().reconstruct(codes)


class ConvBPDNMaskDcpl(ConvBPDN):
    r"""Convolutional BPDN with a spatial mask by ADMM with mask decoupling (SPORCO
    ``admm.cbpdn.ConvBPDNMaskDcpl``; module docstring for the iteration):

    .. math::
        \operatorname*{argmin}_x \; \tfrac12 \Big\| W \odot \Big(\sum_k d_k * x_k - s\Big) \Big\|_2^2
        + \lambda \sum_k \| w_k \odot x_k \|_1 .

    W (``solve(images, mask=W)``) is 0/1 for missing data, or weights ≥ 0, per image and
    pixel; ``boundary="mask"`` pads and masks the images' borders (module docstring).
    Options: :class:`csc.MaskDcplOptions` (SPORCO's defaults for this class: ρ₀ = 1, no
    adaptive ρ, relaxation 1.8); both back ends (``backend=``), float32 and float64, every
    image its own ρ and stopping. ``codes`` are y₁ (SPORCO's ``ReturnVar`` 'Y1'), ``u`` its
    dual u₁; the result is a :class:`MaskDcplResult`, whose ``reconstruct()`` synthesises from x,
    as SPORCO's ``ConvTwoBlockCnstrnt.reconstruct()`` (``reconstruct(source="codes")``: from the
    exactly sparse codes y₁, as :class:`csc.ConvBPDN`'s; the two differ before convergence); the statistics are :class:`csc.IterationStats` with ``data_fidelity`` =
    ½‖W·(Dx − s)‖² (SPORCO ``DFid``) and ``objective`` = DFid + λ·RegL1.

    Devices as :class:`csc.ConvBPDN`'s: without ``options.device`` the solve works on the
    images' device, the dictionary copied there once, and a mask given on another device (a
    CPU tensor or an array with CUDA images) is moved there with them.
    """

    options_class = MaskDcplOptions
    #: SPORCO's dual residual of the problem (:func:`csc.backends.registry.two_block_workspace`):
    #: ``ConvTwoBlockCnstrnt``'s ρ‖Aᵀu‖ over ρ‖u‖
    _dual = "plain"

    def _prepare_masked(self, images, mask, boundary: str):
        """The images (padded for ``boundary="mask"``), their lead shape, the mask (padded with
        them) and the dictionary in their dtype on their device."""
        if boundary not in BOUNDARIES:
            raise ValueError(f"boundary: expected one of {BOUNDARIES}, got {boundary!r}")
        S, lead = self._prepare_images(images)
        m = self._prepare_mask(mask, S.shape[0], lead, tuple(S.shape[-2:]), S, self._mask_channels(S))
        if boundary == "mask":
            S, m = pad_for_mask(S, m, self.dictionary.shape[-2:])
        return S, lead, m, self._dictionary_on(S.device).to(dtype=S.dtype)

    def solve(self, images, mask=None, boundary: str = "periodic") -> MaskDcplResult:
        """Solve for every image of ``images`` ((H, W), (B, H, W) or (B, C, H, W)) independently.

        ``mask``: the data term's weights W ≥ 0 — a scalar, (H, W) for every image, or one
        map per image (lead + (H, W)); a boolean mask means 1/0. ``boundary``: ``"periodic"``
        (circular convolution, SPORCO's default) or ``"mask"``: the images (and ``mask``)
        are padded by kh − 1 rows and kw − 1 columns at the bottom and right, masked there,
        and the codes have the padded shape lead + (K, H + kh − 1, W + kw − 1)
        (``result.reconstruct()[..., :H, :W]`` is the images' reconstruction; spatial
        ``l1_weight`` maps must have the padded shape). The mask goes to the images' device.
        """
        S, lead, m, D = self._prepare_masked(images, mask, boundary)
        n, (H, W) = S.shape[0], S.shape[-2:]
        w = self._prepare_weight(n, (H, W), S, lead)
        xs = self._two_block_xstep(D, (H, W), S.device)
        prox = self._prox(w, D.shape[-2:], S)
        ws = two_block_workspace(S, xs, D.shape[0], prox, self._data_term(m), self.options, dual=self._dual)
        res = self._run(ws, S, lead, D, prox, prox.rho0(self.options))
        return MaskDcplResult(**{f.name: getattr(res, f.name) for f in dataclasses.fields(res)})

    def _data_term(self, mask) -> DataTerm:
        """Block 0's g₀ with the mask W: ½‖W·y₀‖² (:class:`csc.core.prox.QuadraticData`)."""
        return QuadraticData(mask)

    def _two_block_xstep(self, D: torch.Tensor, shape, device) -> DiagonalXStep:
        """The x-step (D̂ᴴD̂ + I)x̂ = D̂ᴴŝ₀ + v̂: a diagonal x-step with ``over_rho`` and μ = 0."""
        P = torch.zeros((1, shape[0], shape[1] // 2 + 1), dtype=D.dtype, device=device)
        return diagonal_xstep_for(D, shape, P, 0.0, over_rho=True)

    def _mask_channels(self, S: torch.Tensor) -> int:
        """The channels a mask may have: C for a multi-channel dictionary (SPORCO's W with a
        channel axis), else 1."""
        return int(S.shape[1]) if self.dictionary.ndim == 4 else 1

    @staticmethod
    def _prepare_mask(mask, n: int, lead, shape, S: torch.Tensor, C: int = 1):
        """W as a float, or a tensor (1 or n, 1 or C, H, W); errors name ``mask`` and what was
        expected. A multi-channel dictionary's images (C channels) take a mask per image and
        pixel, or per image, channel and pixel ((C, H, W) or (B, C, H, W))."""
        if mask is None:
            return 1.0
        if isinstance(mask, (str, bytes)):
            raise TypeError(f"mask: expected a number or an array of weights, got {mask!r}")
        m = as_float_tensor("mask", mask, S.dtype, S.device, integers=True)  # booleans and integers: 1/0
        check_finite("mask", m)
        if bool((m < 0).any()):
            raise ValueError("mask: expected weights >= 0, found negative entries")
        if m.ndim == 0:
            if float(m) == 0.0:
                raise ValueError("mask: expected a mask with nonzero weights, got 0 (no data term)")
            return float(m)
        shapes = {tuple(shape): (1, 1), tuple(lead) + tuple(shape): (n, 1), (n,) + tuple(shape): (n, 1)}
        if C > 1:
            shapes.update({(C,) + tuple(shape): (1, C), (n, C) + tuple(shape): (n, C)})
        if tuple(m.shape) not in shapes:
            per_channel = f", {(C,) + tuple(shape)} or {(n, C) + tuple(shape)}" if C > 1 else ""
            raise ValueError(f"mask: expected a scalar, {tuple(shape)} or {tuple(lead) + tuple(shape)}{per_channel}, "
                             f"got shape {tuple(m.shape)}")
        m = m.reshape(*shapes[tuple(m.shape)], *shape)
        empty = (m == 0).flatten(1).all(1)
        if bool(empty.any()):
            which = "every image" if m.shape[0] == 1 else f"image(s) {empty.nonzero().flatten().tolist()}"
            raise ValueError(f"mask: expected nonzero weights for every image, all zero for {which}")
        return m

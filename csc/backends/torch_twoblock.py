r"""The torch back end of the two-block split Ax − y = c, A = (D; I), c = (s; 0) (SPORCO
``admm.cbpdn.ConvTwoBlockCnstrnt``): ℓ1 data fidelity (:class:`TorchTwoBlock`,
:class:`csc.ConvL1L1Grd`) and the masked quadratic of mask decoupling
(:class:`TorchMaskDcpl`, :class:`csc.ConvBPDNMaskDcpl`).

y = (y₀, y₁): y₀ (n, C, H, W) stands for Dx − s (C = 1, or the channels of a multi-channel
dictionary (K, C, kh, kw), :class:`csc.core.xstep.MultiChannelDiagonalXStep`), y₁ (n, K, H, W) for x; u = (u₀, u₁) the
scaled dual. One iteration, as SPORCO's (its ``xstep``, ``relax_AX``, ``ystep``, ``ustep``,
``rsdl_*``):

1. x-step: (D̂ᴴD̂ + diag(1 + (μ/ρ)P))x̂ = D̂ᴴ·DFT(y₀ − u₀ + s) + DFT(y₁ − u₁)
   (:class:`csc.core.xstep.DiagonalXStep` with ``over_rho``; μ = 0 for mask decoupling),
   and Dx;
2. relaxation a = α·Ax + (1 − α)(y + c);
3. y₀ = prox of the data term at a₀ + u₀ − s (:meth:`csc.core.prox.DataTerm.step`: S_{W/ρ} for the
   ℓ1 term, ρ·v/(W² + ρ) for ½‖W·‖²), y₁ = S_{λw/ρ}(a₁ + u₁) with y₁'s constraints;
4. u ← u + a − (y + c);
5. the residual sums: ‖Ax‖², ‖y‖², the dual's normaliser², ‖Ax − y − c‖², the dual
   residual², ℓ1, ‖c‖², with Aᵀv = Dᵀv₀ + v₁ (Dᵀ by the DFT, as SPORCO's ``cnst_A0T``).
   The dual residual and its normaliser are ρ‖Aᵀ(y_prev − y)‖ and ρ‖Aᵀu‖ for ConvL1L1Grd
   (SPORCO's ``ConvL1L1Grd.rsdl_s``, ``rsdl_sn``), ρ‖Aᵀu‖ and ρ‖u‖ for ConvBPDNMaskDcpl
   (``ConvTwoBlockCnstrnt.rsdl_s``, ``rsdl_sn``, which ConvBPDNMaskDcpl inherits):
   :meth:`TorchTwoBlock._dual_sums`.

Implements :class:`csc.core.admm.Workspace` (``fidelity`` is the data term, ``penalty``
the x-step's ½x̂ᴴdiag(P)x̂), with converged images retired at once (no freezing).
:mod:`csc.backends.numba_twoblock` is the same iteration as fused CPU kernels.
"""

from __future__ import annotations

import torch

from csc.core import ops
from csc.core.admm import select_images
from csc.core.options import CBPDNOptions

__all__ = ["TorchTwoBlock", "TorchMaskDcpl", "TwoBlockViews"]

_STATE = ("x", "y0", "y1", "u0", "u1", "S", "Dx", "xf")


def _sq(*ts: torch.Tensor) -> torch.Tensor:
    """Σ‖t‖² over the maps ``ts``, per image."""
    return sum(t.square().sum((1, 2, 3)) for t in ts)


class TwoBlockViews:
    """What the two-block workspaces of every back end share: the working set's size, the
    retiring images' (y₁, x, u₁), and no notice before an iteration (converged images retire
    at once)."""

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    def take(self, mask: torch.Tensor):
        return select_images(mask, self.y1, self.x, self.u1)

    def hold(self, frozen: torch.Tensor | None) -> None:
        """Nothing to do before an iteration: :meth:`finish` restores frozen images."""

    @property
    def fidelity_weight(self) -> float:
        """The data term's weight in the objective (:attr:`csc.core.prox.DataTerm.weight`)."""
        return self.data.weight


class TorchTwoBlock(TwoBlockViews):
    """Working set of a two-block solve (module docstring).

    Parameters
    ----------
    S : tensor
        (n, H, W) images, or (n, C, H, W) for a multi-channel dictionary.
    xstep : DiagonalXStep
        A :class:`~csc.core.xstep.DiagonalXStep` (or
        :class:`~csc.core.xstep.MultiChannelDiagonalXStep`) with ``over_rho``.
    K : int
        Number of kernels.
    prox : SoftThreshold
        Block 1's operator (:class:`csc.core.prox.SoftThreshold`: the ℓ1 weight,
        non-negativity, boundary zeroing).
    data : DataTerm
        Block 0's (:class:`csc.core.prox.DataTerm`: :class:`~csc.core.prox.L1Data` here,
        :class:`~csc.core.prox.QuadraticData` for mask decoupling, with the mask W).
    opts : CBPDNOptions
        The solver's options.
    """

    #: the back end's name, as :attr:`csc.CBPDNResult.backend` reports it
    backend = "torch"

    def __init__(self, S: torch.Tensor, xstep, K: int, prox, data, opts: CBPDNOptions):
        n, (H, W) = S.shape[0], S.shape[-2:]
        self.opts, self.xs, self.prox, self.data, self.shape = opts, xstep, prox, data, (H, W)
        self.dtype, self.device = S.dtype, S.device
        self.S = S.reshape(n, -1, H, W)  # (n, C, H, W): C = 1 for a single-channel dictionary
        C = self.S.shape[1]
        self.variables_per_image = K * H * W
        self.constraints_per_image = (K + C) * H * W
        self.x, self.y1, self.u1 = (S.new_zeros((n, K, H, W)) for _ in range(3))
        self.y0, self.u0, self.Dx = (S.new_zeros((n, C, H, W)) for _ in range(3))
        self.xf: torch.Tensor | None = None
        self._new: tuple | None = None

    def xstep(self, rho: torch.Tensor, want_fidelity: bool) -> None:
        H, W = self.shape
        self._rho = rho.view(-1, 1, 1, 1)
        s0 = torch.fft.rfft2((self.y0 - self.u0) + self.S)
        self.xf = self.xs.solve_(torch.fft.rfft2(self.y1 - self.u1), s0, self._rho)
        self.x = torch.fft.irfft2(self.xf, s=(H, W))
        self.Dx = torch.fft.irfft2(self.xs.synthesis(self.xf), s=(H, W)).reshape(self.S.shape)

    def _AT(self, v0: torch.Tensor, v1: torch.Tensor) -> torch.Tensor:
        """Aᵀv = Dᵀv₀ + v₁ (n, K, H, W); Dᵀv₀ = Σ_c d_ck ⋆ v₀_c for a multi-channel dictionary."""
        H, W = self.shape
        # the x-step's D̂ᴴ (csc.core.xstep.XStep.adjoint; ProductXStep's is (DBᵀ)ᴴ)
        return torch.fft.irfft2(self.xs.adjoint(torch.fft.rfft2(v0)), s=(H, W)) + v1

    def ystep(self, thr: torch.Tensor, want_l1: bool, may_rescale: bool) -> torch.Tensor:
        o, (H, W), rho = self.opts, self.shape, self._rho
        a0, a1 = self.Dx, self.x
        if o.relax != 1.0:
            a0 = o.relax * a0 + (1 - o.relax) * (self.y0 + self.S)
            a1 = o.relax * a1 + (1 - o.relax) * (self.y1 + 0.0)
        y0 = self.data.step((a0 + self.u0) - self.S, rho)
        v1 = a1 + self.u1
        y1 = torch.empty_like(v1)
        self.prox.apply_(v1, thr, y1, torch.empty_like(v1))
        u0 = self.u0 + (a0 - (y0 + self.S))
        u1 = self.u1 + (a1 - (y1 + 0.0))
        sn, dual = self._dual_sums(u0, u1, y0, y1)
        cols = [_sq(self.Dx, self.x), _sq(y0, y1), sn, _sq(self.Dx - (y0 + self.S), self.x - y1), dual]
        z = y1 if o.objective_on_y else self.x
        vals = self.prox.values(z) if want_l1 else [torch.zeros_like(cols[0]) for _ in self.prox.terms]
        cols += vals[:1] + [_sq(self.S)] + vals[1:]
        self._new = (y0, y1, u0, u1)
        return torch.stack(cols, 1)

    def _dual_sums(self, u0, u1, y0, y1) -> tuple[torch.Tensor, torch.Tensor]:
        """(‖Aᵀu‖², ‖Aᵀ(y_prev − y)‖²) per image: the dual's normaliser and residual (÷ρ²)."""
        return _sq(self._AT(u0, u1)), _sq(self._AT(self.y0 - y0, self.y1 - y1))

    def fidelity(self) -> torch.Tensor:
        """The data term g₀ per image at Dx − s (at y₀ with ``objective_on_y``), SPORCO's
        ``obfn_g0``: Σ|W·(Dx − s)| here, ½‖W·(Dx − s)‖² for mask decoupling."""
        e = self._new[0] if self.opts.objective_on_y else self.Dx - self.S
        return self.data.value(e)

    def penalty(self) -> torch.Tensor:
        """½x̂ᴴdiag(P)x̂ per image, always on x (as SPORCO's ``ConvL1L1Grd.eval_objfn``)."""
        return self.xs.penalty(self.xf, self.shape[1])

    def rescale(self, factor: torch.Tensor | None) -> None:
        if factor is not None:
            f = factor.view(-1, 1, 1, 1)
            y0, y1, u0, u1 = self._new
            self._new = (y0, y1, u0 / f, u1 / f)

    def finish(self, frozen: torch.Tensor | None) -> None:
        if frozen is not None:
            raise ValueError("the two-block back end retires converged images at once (sync_every = 1)")
        self.y0, self.y1, self.u0, self.u1 = self._new
        self._new = None

    def keep(self, mask: torch.Tensor) -> None:
        if bool(mask.all()):
            return
        for name in _STATE:
            setattr(self, name, getattr(self, name)[mask])
        self.prox, self.data = self.prox.keep(mask), self.data.keep(mask)


class TorchMaskDcpl(TorchTwoBlock):
    r"""Working set of a two-block solve with SPORCO's ``ConvTwoBlockCnstrnt`` dual residual,
    ρ‖Aᵀu‖ normalised by ρ‖u‖ (:class:`csc.ConvBPDNMaskDcpl`, whose data term
    :class:`csc.core.prox.QuadraticData` ½‖W·y₀‖² has the step y₀ = ρ·v/(W² + ρ): SPORCO's
    ``(rho*(AXU0 - S)) / (W**2 + rho)``). Parameters as :class:`TorchTwoBlock`."""

    def _dual_sums(self, u0, u1, y0, y1) -> tuple[torch.Tensor, torch.Tensor]:
        """(‖u‖², ‖Aᵀu‖²) per image."""
        return _sq(u0, u1), _sq(self._AT(u0, u1))

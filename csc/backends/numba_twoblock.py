r"""The fused CPU back end of the two-block split Ax − y = c, A = (D; I), c = (s; 0)
(:class:`csc.ConvL1L1Grd`: :class:`FusedTwoBlock`; :class:`csc.ConvBPDNMaskDcpl`:
:class:`FusedMaskDcpl`): the iteration of :mod:`csc.backends.torch_twoblock` as numba
kernels (:mod:`csc.backends.kernels`) over FFTW plans (:class:`csc.backends.fused.FFTPair`).

Per iteration: forward FFTs of t = y₁ − u₁ (K maps) and of y₀ − u₀ + s (one map); the x-step
in place in the DFT domain (:func:`~csc.backends.kernels.xstep_diagonal`), which also gives
DFT(Dx); inverse FFTs into x and Dx; the two blocks' y-step, dual step and sums
(:func:`~csc.backends.kernels.two_block_y1`, :func:`~csc.backends.kernels.two_block_y0`);
and ‖Aᵀu‖ (and, for ConvL1L1Grd's dual residual, ‖Aᵀ(y_prev − y)‖) with Aᵀv = Dᵀv₀ + v₁
(one forward image FFT and one inverse K-map FFT each, as SPORCO's ``cnst_A0T``). Results
do not depend on the number of threads.
"""

from __future__ import annotations

import numpy as np
import torch

from csc.backends import fused, numba_xstep
from csc.backends.numba_cpu import fused_weights
from csc.backends.torch_twoblock import TwoBlockViews
from csc.core.options import CBPDNOptions

__all__ = ["FusedTwoBlock", "FusedMaskDcpl"]

_MAPS = ("x", "y1", "u1", "t", "dy1", "g", "y0", "u0", "S", "Dx", "t0", "dy0", "xf", "gf", "s0f", "dxf")


class FusedTwoBlock(TwoBlockViews):
    """Working set of a two-block solve on the fused CPU back end (module docstring).

    Parameters as :class:`csc.backends.torch_twoblock.TorchTwoBlock`, and ``threads``.
    """

    #: the data term's proximal step is the masked quadratic's (mask decoupling), not S_{W/ρ}
    quadratic = False
    #: SPORCO's dual residual of the problem (:func:`csc.backends.registry.two_block_workspace`)
    dual = "adjoint"
    #: the x-step has a penalty to record (ConvL1L1Grd's gradient term)
    with_penalty = True

    #: the back end's name, as :attr:`csc.CBPDNResult.backend` reports it
    backend = "numba"

    def __init__(self, S: torch.Tensor, xstep, K: int, prox, data, opts: CBPDNOptions, threads: int):
        n, H, W = S.shape
        self.opts, self.xs, self.threads, self.shape = opts, xstep, threads, (H, W)
        self.dtype, self.device = S.dtype, torch.device("cpu")
        self.npdt = np.dtype(np.float32 if S.dtype == torch.float32 else np.float64).type
        self.variables_per_image = K * H * W
        self.constraints_per_image = (K + 1) * H * W
        cdt = torch.complex64 if S.dtype == torch.float32 else torch.complex128
        kmap, imap = (n, K, H, W), (n, 1, H, W)
        self.x, self.y1, self.u1, self.t, self.dy1, self.g = (torch.zeros(kmap, dtype=S.dtype) for _ in range(6))
        self.y0, self.u0, self.Dx, self.t0, self.dy0 = (torch.zeros(imap, dtype=S.dtype) for _ in range(5))
        self.xf, self.gf = (torch.empty((n, K, H, W // 2 + 1), dtype=cdt) for _ in range(2))
        self.s0f, self.dxf = (torch.empty((n, 1, H, W // 2 + 1), dtype=cdt) for _ in range(2))
        self.kfft = fused.FFTPair(self.t.numpy(), self.xf.numpy(), self.x.numpy(), threads)
        self.ifft = fused.FFTPair(self.t0.numpy(), self.s0f.numpy(), self.Dx.numpy(), threads)
        self.t.zero_()
        self.S = S.unsqueeze(1).contiguous()
        self.prox, self.data, self.nonneg = prox, data, bool(prox.nonneg)
        self._weights(prox.weight, data.mask, K)
        r = opts.relax
        self.alpha, self.beta = (self.npdt(r), self.npdt(1.0 - r)) if r != 1.0 else (self.npdt(1), self.npdt(0))
        kh, kw = prox.kernel_size or (1, 1)
        self.bh = H - kh + 1 if kh > 1 else H
        self.bw = W - kw + 1 if kw > 1 else W

    def _weights(self, w, mask, K: int) -> None:
        """ℓ1 weights (per-kernel ``wk`` or a 4-D map ``wmap``) and the data mask (4-D)."""
        self.wk, wmap = fused_weights(w, self.npdt)
        self.spatial = wmap is not None
        self.wmap = wmap if self.spatial else torch.ones((1, 1, 1, 1), dtype=self.dtype)
        m = mask if isinstance(mask, torch.Tensor) else torch.full((1, 1, 1, 1), float(mask), dtype=self.dtype)
        self.mask = m.contiguous()

    def _v(self, t: torch.Tensor) -> np.ndarray:
        """A complex tensor's real view."""
        return t.numpy().view(self.npdt)

    # ------------------------------------------------------------- the iteration
    def xstep(self, rho: torch.Tensor, want_fidelity: bool) -> None:
        n, H = self.n, self.shape[0]
        self._rho = rho.contiguous()
        torch.add(torch.sub(self.y0, self.u0, out=self.t0), self.S, out=self.t0)
        self.kfft.forward(self.t.numpy(), self.xf.numpy())
        self.ifft.forward(self.t0.numpy(), self.s0f.numpy())
        pen = self.opts.record_stats and self.with_penalty
        self._pen_rows = np.zeros(n * H if pen else 0)  # the penalty is always on x
        numba_xstep.solve_two_block(self.xs, self, self._v(self.xf), self._v(self.s0f)[:, 0], self._rho.numpy(),
                                      self.npdt(self.kfft.scale), self._pen_rows, self._v(self.dxf)[:, 0])
        self.kfft.inverse(self.xf.numpy(), self.x.numpy())
        self.ifft.inverse(self.dxf.numpy(), self.Dx.numpy())

    def ystep(self, thr: torch.Tensor, want_l1: bool, may_rescale: bool) -> torch.Tensor:
        o, n, K = self.opts, self.n, self.x.shape[1]
        kn = fused.kernels()
        p1 = np.empty((n * K, 5))
        fused.run_split(kn.two_block_y1, n * K, self.threads, self.x.numpy(), self.y1.numpy(), self.u1.numpy(),
                        self.t.numpy(), self.dy1.numpy(), self.alpha, self.beta, thr.contiguous().numpy(), self.wk,
                        self.wmap.numpy(), self.spatial, self.nonneg, self.bh, self.bw, o.objective_on_y, want_l1, p1)
        p0 = np.empty((n, 6))
        # 1/ρ as the torch loop's (1.0 / rho) * W; the quadratic's step takes ρ itself
        rpar = self._rho if self.quadratic else (1.0 / self._rho).contiguous()
        fused.run_split(kn.two_block_y0, n, self.threads, self.Dx.numpy(), self.y0.numpy(), self.u0.numpy(),
                        self.S.numpy(), self.dy0.numpy(), self.alpha, self.beta, rpar.numpy(), self.mask.numpy(),
                        self.quadratic, o.objective_on_y, p0)
        b1 = torch.from_numpy(p1.reshape(n, K, 5).sum(1))
        b0 = torch.from_numpy(p0)
        self._fid = b0[:, 4]
        sn, dual = self._dual_sums(b0, b1)
        return torch.stack([b0[:, 0] + b1[:, 0], b0[:, 1] + b1[:, 1], sn, b0[:, 2] + b1[:, 2], dual,
                            b1[:, 3], b0[:, 3]], 1)

    def _dual_sums(self, b0: torch.Tensor, b1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(‖Aᵀu‖², ‖Aᵀ(y_prev − y)‖²) per image (SPORCO ``ConvL1L1Grd.rsdl_sn``, ``rsdl_s``)."""
        return self._adjoint_sqnorm(self.u0, self.u1), self._adjoint_sqnorm(self.dy0, self.dy1)

    def _adjoint_sqnorm(self, v0: torch.Tensor, v1: torch.Tensor) -> torch.Tensor:
        """‖Dᵀv₀ + v₁‖² per image (Dᵀ by the DFT; v₀ is left intact)."""
        n, K, (H, W) = self.n, self.x.shape[1], self.shape
        kn = fused.kernels()
        self.t0.copy_(v0)  # the forward FFT may destroy its input
        self.ifft.forward(self.t0.numpy(), self.s0f.numpy())
        dre, dim, _ = numba_xstep.dft_arrays(self.xs, self.threads)
        fused.run_split(kn.adjoint_spectrum, n * H, self.threads, self._v(self.s0f)[:, 0], dre, dim,
                        self.npdt(self.kfft.scale), self._v(self.gf))
        self.kfft.inverse(self.gf.numpy(), self.g.numpy())
        out = np.empty(n * K)
        fused.run_split(kn.add_sumsq, n * K, self.threads, self.g.numpy(), v1.numpy(), out)
        return torch.from_numpy(out.reshape(n, K).sum(1))

    def fidelity(self) -> torch.Tensor:
        """Σ|W·(Dx − s)| per image (Σ|W·y₀| with ``objective_on_y``)."""
        return self._fid.to(self.dtype)

    def penalty(self) -> torch.Tensor:
        """½x̂ᴴdiag(P)x̂ per image, on x."""
        n, (H, W) = self.n, self.shape
        return (torch.from_numpy(self._pen_rows.reshape(n, H).sum(1)) / (H * W) / 2.0).to(self.dtype)

    def rescale(self, factor: torch.Tensor | None) -> None:
        if factor is not None and bool((factor != 1).any()):
            f = factor.view(-1, 1, 1, 1)
            self.u0.div_(f)
            self.u1.div_(f)
            torch.sub(self.y1, self.u1, out=self.t)

    def finish(self, frozen) -> None:
        if frozen is not None:
            raise ValueError("the fused two-block back end retires converged images at once (sync_every = 1)")

    def keep(self, mask: torch.Tensor) -> None:
        if bool(mask.all()):
            return
        for name in _MAPS:
            setattr(self, name, getattr(self, name)[mask].contiguous())
        if self.spatial and self.wmap.shape[0] > 1:
            self.wmap = self.wmap[mask].contiguous()
        if self.mask.shape[0] > 1:
            self.mask = self.mask[mask].contiguous()


class FusedMaskDcpl(FusedTwoBlock):
    r"""Working set of a mask-decoupled solve (:class:`csc.ConvBPDNMaskDcpl`) on the fused CPU
    back end: block 0's step y₀ = ρ·v/(W² + ρ) (:func:`~csc.backends.kernels.two_block_y0`
    with ``quadratic``), the data term ½‖W·(Dx − s)‖², and SPORCO's ``ConvTwoBlockCnstrnt``
    dual residual ρ‖Aᵀu‖ normalised by ρ‖u‖ (one adjoint per iteration)."""

    quadratic = True
    dual = "plain"
    with_penalty = False

    def _dual_sums(self, b0: torch.Tensor, b1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(‖u‖², ‖Aᵀu‖²) per image."""
        return b0[:, 5] + b1[:, 4], self._adjoint_sqnorm(self.u0, self.u1)

    def fidelity(self) -> torch.Tensor:
        """½‖W·(Dx − s)‖² per image (½‖W·y₀‖² with ``objective_on_y``)."""
        return (self._fid / 2.0).to(self.dtype)

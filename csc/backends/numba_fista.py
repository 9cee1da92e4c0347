"""The fused CPU back end of FISTA (:mod:`csc.problems.fista`): numba kernels over FFTW plans.

Per iteration without backtracking, two passes over the DFT-domain maps and two FFTs:

1. :func:`csc.backends.fista_kernels.grad_point`: R̂_y and the gradient point
   v̂ = ŷ − conj(D̂)R̂_y/L in one pass (the inverse FFT's 1/(H·W) folded in);
2. inverse real FFT v̂ → v; :func:`~csc.backends.fista_kernels.prox_l1`: soft threshold,
   constraints and the ℓ1 sums; forward real FFT x → x̂ (input preserved);
3. :func:`~csc.backends.fista_kernels.momentum`: the residual ‖x̂ − ŷ_prev‖², the
   extrapolation ŷ in place and, when statistics are recorded, the data fidelity.

The rarer steps (line-search trials on part of the batch, monotone FISTA's check, robust
backtracking's point) are the torch back end's, on the same CPU tensors.
"""

from __future__ import annotations

import numpy as np
import torch

from csc.backends import fused
from csc.backends.numba_cpu import fused_weights
from csc.backends.torch_fista import TorchFISTA

__all__ = ["FusedFISTA"]


def fista_kernels():
    """The compiled kernels :mod:`csc.backends.fista_kernels` (numba; raises like :func:`fused.kernels`)."""
    fused.kernels()
    from csc.backends import fista_kernels as fk

    return fk


def _real(t: torch.Tensor) -> np.ndarray:
    """A contiguous complex tensor as its (…, 2·Wr) real numpy view."""
    return torch.view_as_real(t).flatten(-2).numpy()


class FusedFISTA(TorchFISTA):
    """Working set of a FISTA solve on the fused CPU back end (same methods as :class:`TorchFISTA`)."""

    def __init__(self, S, Df, x0, w, lmbda, opts, kernel_size, threads: int | None = None):
        super().__init__(S, Df, x0.contiguous(), w, lmbda, opts, kernel_size)
        self.fk = fista_kernels()
        self.threads = max(1, threads or torch.get_num_threads())
        self.npdt = np.float32 if x0.dtype == torch.float32 else np.float64
        self.Dre = Df.real.contiguous().numpy()
        self.Dim = Df.imag.contiguous().numpy()
        self.wk, wmap = fused_weights(w, self.npdt)
        self.w4 = wmap.numpy() if wmap is not None else np.ones((1, 1, 1, 1), dtype=self.npdt)
        self.spatial = wmap is not None
        kh, kw = self.kernel_size
        H, W = self.shape
        nbc = opts.no_boundary_cross
        self.bh, self.bw = (H - kh + 1 if nbc and kh > 1 else H), (W - kw + 1 if nbc and kw > 1 else W)
        self._allocate()
        self._cache = self._l1 = None

    def _allocate(self) -> None:
        """Buffers and FFT plans for the current working set (plans are per image)."""
        n, K, H, W = self.X.shape
        X0, Xf0 = self.X.clone(), self.Xf.clone()
        self.X = torch.empty_like(X0)
        self._V = torch.empty_like(X0)
        self._Vf = torch.empty_like(Xf0)
        self._xfbuf = [torch.empty_like(Xf0), torch.empty_like(Xf0)]
        self.fft = fused.FFTPair(self.X.numpy(), self._Vf.numpy(), self._V.numpy(), self.threads,
                                 planner=self.opts.fftw_planner, preserve_input=True)
        self.X.copy_(X0)
        self._xfbuf[0].copy_(Xf0)
        self.Xf = self._xfbuf[0]
        self.Yf = self.Yf.contiguous()
        self.Sf = self.Sf.contiguous()
        self._Ry = torch.empty((n, H, W // 2 + 1), dtype=Xf0.dtype)

    def _spare(self) -> torch.Tensor:
        a, b = self._xfbuf
        return b if self.Xfprv is not None and a.data_ptr() == self.Xfprv.data_ptr() else a

    # ------------------------------------------------------------- fused steps
    def gradient(self, sel=None) -> None:
        if sel is not None:
            super().gradient(sel)  # the full-batch gradient is computed by prox_step

    def prox_step(self, L, sel=None) -> None:
        if sel is not None:
            self._l1 = None  # the ℓ1 sums of the selected images are no longer the kernel's
            return super().prox_step(L, sel)
        fk, n, (H, W) = self.fk, self.n, self.shape
        K = self.Dre.shape[0]
        L = np.asarray(L, dtype=np.float64)
        self.Yf = self.Yf.contiguous()
        self.Ry = self._Ry
        fused.run_split(fk.grad_point, n * H, self.threads, _real(self.Yf), self.Dre, self.Dim, _real(self.Sf),
                        (1.0 / L).astype(self.npdt), self.npdt(self.fft.scale), _real(self.Ry), _real(self._Vf))
        self.fft.inverse(self._Vf.numpy(), self._V.numpy())
        self._l1 = np.zeros(n * K)
        fused.run_split(fk.prox_l1, n * K, self.threads, self._V.numpy(), self.X.numpy(),
                        (self.lmbda / L).astype(self.npdt), self.wk, self.w4, self.spatial,
                        self.opts.nonneg, self.bh, self.bw, self._l1)
        xf = self._spare()
        self.fft.forward(self.X.numpy(), xf.numpy())
        self.Xf = xf
        self._cache = None

    def momentum(self, c, a=None) -> None:
        if a is not None or self.Xfprv is None or not self.Yf.is_contiguous():
            self._cache = None
            return super().momentum(c, a)
        fk, n, (H, W) = self.fk, self.n, self.shape
        want = self.opts.record_stats
        res, fid = np.zeros(n * H), np.zeros(n * H if want else 0)
        fused.run_split(fk.momentum, n * H, self.threads, _real(self.Xf), _real(self.Xfprv.contiguous()),
                        _real(self.Yf), np.asarray(c, dtype=self.npdt), self.Dre, self.Dim, _real(self.Sf),
                        W % 2 == 0, want, res, fid)
        HW = H * W
        res = res.reshape(n, H).sum(1) / HW
        dfd = 0.5 * fid.reshape(n, H).sum(1) / HW if want else None
        self._cache = (self.Xf, res, dfd)

    def residual(self) -> np.ndarray:
        if self._cache is not None and self._cache[0] is self.Xf:
            return self._cache[1]
        return super().residual()

    def objective(self, sel=None):
        c = self._cache
        if sel is None and c is not None and c[0] is self.Xf and c[2] is not None and self._l1 is not None:
            return c[2], self._l1.reshape(self.n, -1).sum(1)
        return super().objective(sel)

    def keep(self, mask) -> None:
        super().keep(mask)
        if self._l1 is not None:
            self._l1 = self._l1.reshape(mask.shape[0], -1)[mask].reshape(-1)
        self._cache = None
        if self.n:
            self._allocate()

"""The fused CPU back end of the dictionary steps (:mod:`csc.learn.dictstep`).

FFTs of the K kernel planes only, planned with ``FFTW_ESTIMATE`` (unless
``CSC_FFTW_PLANNER`` says otherwise: estimated plans depend on the problem alone, so a run
resumed in another process repeats the uninterrupted one bit for bit), and numba kernels
(:mod:`csc.backends.dl_kernels`) for the passes over the codes:

- FISTA: the gradient and the step Ŷ − ∇/L in one pass over the codes' DFT
  (:func:`~csc.backends.dl_kernels.pgm_grad`), or — when the codes are sparse enough — the
  residual and gradient from the nonzero codes on the kernel support
  (:func:`~csc.backends.dl_kernels.sparse_residual`, :func:`~csc.backends.dl_kernels.sparse_grad`);
  the momentum and the residual in one pass (:func:`~csc.backends.dl_kernels.pgm_momentum`).
- Consensus: x and u per image kept as DFTs (the transform is linear and the constraint acts
  on g alone); one pass solves the per-image systems and averages the relaxed iterates
  (:func:`~csc.backends.dl_kernels.cns_xstep`), another updates û and returns the residual
  sums by Parseval (:func:`~csc.backends.dl_kernels.cns_ustep`). Checkpoints hold Û (``Uf``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from csc.backends import fused

__all__ = ["PerChannelOps", "FusedPGMOps", "FusedConsensusOps"]


def _real(t: torch.Tensor, npdt) -> np.ndarray:
    """Real numpy view of a contiguous (complex) tensor: interleaved (re, im) pairs."""
    return t.numpy().view(npdt)


class _KernelFFT:
    """Planned FFTs of K kernel planes (1, K, H, W) ↔ (1, K, H, Wr), and projection."""

    def __init__(self, D0: torch.Tensor, Sf: torch.Tensor, shape, cons, threads: int):
        self.cons, self.shape, self.Sf, self.threads = cons, tuple(shape), Sf, threads
        (H, W), K, dtype = self.shape, D0.shape[0], D0.dtype
        self.npdt = np.dtype(np.float32 if dtype == torch.float32 else np.float64).type
        self.cdtype = torch.complex64 if dtype == torch.float32 else torch.complex128
        self.K, self.Wr, self.even = K, W // 2 + 1, W % 2 == 0
        self._real = torch.empty((1, K, H, W), dtype=dtype)
        self._spec = torch.empty((1, K, H, self.Wr), dtype=self.cdtype)
        self._padded = torch.empty((1, K, H, W), dtype=dtype)
        planner = fused._planner(0)
        self.fft = fused.FFTPair(self._real.numpy(), self._spec.numpy(), self._real.numpy(), threads,
                                 planner=planner)  # plans before any data
        # the kernels' DFTs: an input-preserving plan, so that only the support is rewritten
        self.fft_pad = fused.FFTPair(self._padded.numpy(), self._spec.numpy(), self._padded.numpy(), threads,
                                     planner=planner, preserve_input=True)
        self._padded.zero_()

    def spec(self) -> torch.Tensor:
        return torch.empty((1, self.K, self.shape[0], self.Wr), dtype=self.cdtype)

    def dft_into(self, D: torch.Tensor, out: torch.Tensor) -> None:
        """out (1, K, H, Wr) ← rfft2 of the kernels D (K, kh, kw) zero-padded to H×W."""
        kh, kw = D.shape[-2:]
        if not self.fft_pad.preserves_input:
            self._padded.zero_()
        self._padded[0, :, :kh, :kw] = D
        self.fft_pad.forward(self._padded.numpy(), out.numpy())

    def inverse(self, spec: torch.Tensor) -> torch.Tensor:
        """irfft2 of a (1, K, H, Wr) spectrum already scaled for it (destroys ``spec``)."""
        self.fft.inverse(spec.numpy(), self._real.numpy())
        return self._real[0]


class FusedPGMOps(_KernelFFT):
    """FISTA's arithmetic on the fused kernels (module docstring)."""

    def start(self, D0: torch.Tensor) -> None:
        self.Y = D0  # the extrapolated point in the spatial domain, cropped (for sparse steps)
        self._Xf, self._Xp, self._V = self.spec(), self.spec(), self.spec()
        self.dft_into(D0, self._Xf)
        self._Yf = self._Xf.clone()
        self._r = np.empty(tuple(self.Sf.shape[:1]) + self.shape, dtype=self.npdt)
        self._g = np.empty(tuple(D0.shape), dtype=self.npdt)

    def set_codes(self, cb) -> None:
        """The codes of the coding step ``cb``; chooses the sparse or the DFT path."""
        self.cb = cb
        self.sparse = cb.sparse_ok(self.Y.shape[-2:])
        if not self.sparse:
            self._zfv = _real(cb.codes_dft(), self.npdt)

    def gradient_step(self, inv_l: float) -> torch.Tensor:
        dk = fused.dl_kernels()
        if self.sparse:  # residual and gradient from the nonzero codes, on the kernel support
            self.cb.residual(self.Y, self._r)
            idx, cnt, _ = self.cb.nonzeros()
            fused.run_split(dk.sparse_grad, self.K, self.threads, self.cb.y.numpy(), idx, cnt, self._r, self._g)
            return self.Y - inv_l * torch.from_numpy(self._g)
        fused.run_split(dk.pgm_grad, self.shape[0], self.threads, self._zfv, _real(self._Yf[0], self.npdt),
                        _real(self.Sf, self.npdt), self.npdt(inv_l), self.npdt(self.fft.scale),
                        _real(self._V[0], self.npdt))
        return self.inverse(self._V)

    def extrapolate(self, D: torch.Tensor, Dprev: torch.Tensor, coef: float) -> float:
        H, W = self.shape
        self._Xf, self._Xp = self._Xp, self._Xf
        self.dft_into(D, self._Xf)
        part = np.empty(self.K * H)
        fused.run_split(fused.dl_kernels().pgm_momentum, self.K * H, self.threads, _real(self._Xf[0], self.npdt),
                        _real(self._Xp[0], self.npdt), _real(self._Yf[0], self.npdt), self.npdt(coef),
                        self.even, part)
        self.Y = D + coef * (D - Dprev)
        return float(part.sum()) / (H * W)

    def dft(self) -> torch.Tensor:
        return self._Xf[0]

    def padded(self) -> torch.Tensor:
        return torch.fft.irfft2(self._Xf[0], s=self.shape)

    def state(self) -> dict[str, Any]:
        return {"Yf": self._Yf[0], "Y": self.Y}

    def load(self, D: torch.Tensor, st) -> None:
        self.dft_into(D, self._Xf)
        self._Yf[0].copy_(st["Yf"])
        if "Y" in st:
            self.Y = st["Y"].to(D)
        else:  # a checkpoint of the torch loop
            kh, kw = D.shape[-2:]
            self.Y = torch.fft.irfft2(self._Yf[0], s=self.shape)[:, :kh, :kw].contiguous()


class FusedConsensusOps(_KernelFFT):
    """ADMM consensus arithmetic on the fused kernels, in the DFT domain (module docstring)."""

    def __init__(self, D0, Sf, shape, cons, threads: int, relax: float):
        super().__init__(D0, Sf, shape, cons, threads)
        self.relax = relax != 1.0
        npdt = self.npdt
        self.alpha, self.beta = (npdt(relax), npdt(1.0 - relax)) if self.relax else (npdt(1), npdt(0))

    def start(self, D0: torch.Tensor, rho: float) -> None:
        self._Gf, self._Gp, self._M = self.spec(), self.spec(), self.spec()
        self.dft_into(D0, self._Gf)
        self.Uf = (self._Gf / rho).expand(self.Sf.shape[0], -1, -1, -1).contiguous()
        self.Xf = torch.empty_like(self.Uf)

    def set_codes(self, cb) -> None:
        self.Zf = cb.codes_dft()

    def consensus_mean(self, rho: float) -> torch.Tensor:
        npdt = self.npdt
        self._Gf, self._Gp = self._Gp, self._Gf  # _Gp: the current g's DFT
        fused.run_split(fused.dl_kernels().cns_xstep, self.shape[0], self.threads, _real(self.Zf, npdt),
                        _real(self.Uf, npdt), _real(self._Gp[0], npdt), _real(self.Sf, npdt), npdt(rho),
                        self.alpha, self.beta, self.relax, npdt(self.fft.scale), _real(self.Xf, npdt),
                        _real(self._M[0], npdt))
        return self.inverse(self._M)

    def dual_update(self, D: torch.Tensor) -> tuple[float, float, float]:
        npdt, (H, W), B = self.npdt, self.shape, self.Sf.shape[0]
        self.dft_into(D, self._Gf)
        part = np.empty((B * H, 3))
        fused.run_split(fused.dl_kernels().cns_ustep, B * H, self.threads, _real(self.Xf, npdt),
                        _real(self.Uf, npdt), _real(self._Gp[0], npdt), _real(self._Gf[0], npdt), self.alpha,
                        self.beta, self.relax, self.even, part)
        nxg, nu, nx = (float(npdt(math.sqrt(v))) for v in part.sum(0) / (H * W))
        return nxg, nu, nx

    def divide_dual(self, f: float) -> None:
        self.Uf.div_(f)

    def zero_dual(self) -> None:
        """u ← 0 (a learner's ``zero_dual`` start)."""
        self.Uf.zero_()

    def dft(self) -> torch.Tensor:
        return self._Gf[0]

    def padded(self) -> torch.Tensor:
        return torch.fft.irfft2(self._Gf[0], s=self.shape)

    def state(self) -> dict[str, Any]:
        return {"Uf": self.Uf}

    def load(self, D: torch.Tensor, st) -> None:
        self.dft_into(D, self._Gf)
        if "Uf" in st:
            self.Uf.copy_(st["Uf"])
        else:  # a checkpoint of the torch loop, which keeps U
            self.Uf.copy_(torch.fft.rfft2(st["U"].to(D)))


class PerChannelOps:
    """The dictionary-step arithmetic of multi-channel kernels (K, C, kh, kw) from one
    single-channel back-end object per channel (every channel's kernels share the codes, so
    each step separates over the channels); results are stacked on axis 1, norms combined
    as √Σ_c n_c², residuals summed. The projection (joint over the channels) stays with the
    caller (:mod:`csc.learn.dictstep`)."""

    def __init__(self, make, D0: torch.Tensor, Sf: torch.Tensor):
        self.ops = [make(D0[:, c].contiguous(), Sf[:, c].contiguous()) for c in range(D0.shape[1])]

    def start(self, D0: torch.Tensor, *args) -> None:
        for c, op in enumerate(self.ops):
            op.start(D0[:, c].contiguous(), *args)

    def set_codes(self, cb) -> None:
        for op in self.ops:
            op.set_codes(cb)

    def _stack(self, name: str, *args) -> torch.Tensor:
        return torch.stack([getattr(op, name)(*args) for op in self.ops], 1)

    def gradient_step(self, inv_l: float) -> torch.Tensor:
        return self._stack("gradient_step", inv_l)

    def extrapolate(self, D: torch.Tensor, Dprev: torch.Tensor, coef: float) -> float:
        return sum(op.extrapolate(D[:, c].contiguous(), Dprev[:, c].contiguous(), coef)
                   for c, op in enumerate(self.ops))

    def consensus_mean(self, rho: float) -> torch.Tensor:
        return self._stack("consensus_mean", rho)

    def dual_update(self, D: torch.Tensor) -> tuple[float, float, float]:
        parts = np.array([op.dual_update(D[:, c].contiguous()) for c, op in enumerate(self.ops)])
        return tuple(float(v) for v in np.sqrt(np.square(parts).sum(0)))

    def divide_dual(self, f: float) -> None:
        for op in self.ops:
            op.divide_dual(f)

    def zero_dual(self) -> None:
        for op in self.ops:
            op.zero_dual()

    def dft(self) -> torch.Tensor:
        return self._stack("dft")

    def padded(self) -> torch.Tensor:
        return self._stack("padded")

    def state(self) -> dict[str, Any]:
        return {f"c{c}.{k}": v for c, op in enumerate(self.ops) for k, v in op.state().items()}

    def load(self, D: torch.Tensor, st) -> None:
        for c, op in enumerate(self.ops):
            sub = {k.split(".", 1)[1]: v for k, v in st.items() if k.startswith(f"c{c}.")}
            if not sub:
                raise ValueError("checkpoint: the dictionary step's state is not the fused back end's "
                                 "per-channel state; resume on the back end that wrote it")
            op.load(D[:, c].contiguous(), sub)

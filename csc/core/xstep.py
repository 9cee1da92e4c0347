r"""x-step solvers of the ADMM core: the linear solve, one object per problem structure.

For CBPDN with a single-channel dictionary the x-step solves, at every frequency,

.. math::  (\hat D^H \hat D + \rho I)\,\hat x = \hat D^H \hat s + \rho\,\hat v ,

with :math:`\hat D` a 1×K row. By the Sherman–Morrison formula the solution is
:math:`\hat x = \hat v + \hat D^H (\hat s - \hat D \hat v) / (\rho + \hat D \hat D^H)`
(SPORCO ``linalg.solvedbi_sm``; this rearrangement never forms :math:`\hat D^H \hat s`).

An x-step object owns the dictionary's DFT in the forms the back ends need and offers:

- :meth:`SingleChannelXStep.solve_` — the torch solve, in place (any device);
- :meth:`SingleChannelXStep.numba_arrays` — the real/imaginary planes and Σ|D̂|² that the
  fused CPU kernel :func:`csc.backends.kernels.xstep` reads;
- :meth:`SingleChannelXStep.accuracy` — the relative residual of the linear system for a
  computed solution (the accuracy probe, as SCICO's sub-problem solvers carry).

A new problem (a multi-channel dictionary, a mask-decoupled term) is a new x-step class
with the same methods, run by the same :class:`csc.core.admm.ADMMLoop`.
"""

from __future__ import annotations

import numpy as np
import torch

from csc.core import ops

__all__ = ["SingleChannelXStep"]


class SingleChannelXStep:
    """Sherman–Morrison x-step for a single-channel dictionary (module docstring).

    Parameters
    ----------
    Df : (K, H, W//2 + 1) complex
        DFT of the kernels zero-padded to H×W (:func:`csc.core.ops.kernel_dft`).
    """

    def __init__(self, Df: torch.Tensor):
        self.set_dft(Df)

    @classmethod
    def from_kernels(cls, D: torch.Tensor, shape) -> "SingleChannelXStep":
        """From kernels (K, kh, kw) for images of ``shape`` (H, W)."""
        return cls(ops.kernel_dft(D, tuple(shape)))

    def set_dft(self, Df: torch.Tensor) -> None:
        """Replace the dictionary (the learners call this after each dictionary step)."""
        self.Df = Df
        self._Dfc: torch.Tensor | None = None
        self._gram: torch.Tensor | None = None
        self._numba_valid = False

    @property
    def Dfc(self) -> torch.Tensor:
        """conj(D̂), materialised (the torch solve's multiplier); made on first use only, so
        the fused back end, which never needs it, does not copy D̂ at each dictionary update."""
        if self._Dfc is None:
            self._Dfc = self.Df.conj().resolve_conj()
        return self._Dfc

    @property
    def gram(self) -> torch.Tensor:
        """Σ_k |D̂_k|² per frequency, (H, Wr)."""
        if self._gram is None:
            self._gram = ops.gram_diagonal(self.Df)
        return self._gram

    def solve_(self, vf: torch.Tensor, Sf: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        """vf (n, K, H, Wr) ← x̂ for v̂ = vf, image DFTs ``Sf`` (n, 1, H, Wr) and ρ (n, 1, 1, 1)."""
        c = (Sf - torch.einsum("khw,nkhw->nhw", self.Df, vf).unsqueeze(1)).div_(rho + self.gram)
        return vf.addcmul_(self.Dfc, c)

    def synthesis(self, xf: torch.Tensor) -> torch.Tensor:
        """Σ_k D̂_k x̂_k, (n, H, Wr)."""
        return ops.synthesis_dft(self.Df, xf)

    def numba_arrays(self, threads: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(Re D̂, Im D̂, Σ_k|D̂_k|²) as contiguous CPU arrays, for the fused kernels."""
        if not self._numba_valid:
            from csc.backends import fused

            Df = self.Df.contiguous()
            K, H, Wr = Df.shape
            npdt = Df.real.numpy().dtype
            buf = getattr(self, "_numba", None)
            if buf is None or buf[0].shape != (K, H, Wr) or buf[0].dtype != npdt:  # reused across updates
                buf = tuple(np.empty(s, dtype=npdt) for s in ((K, H, Wr), (K, H, Wr), (H, Wr)))
            fused.run_split(fused.dl_kernels().split_dft, H, threads, Df.numpy().view(npdt), *buf)
            self._numba, self._numba_valid = buf, True
        return self._numba

    def accuracy(self, xf: torch.Tensor, vf: torch.Tensor, Sf: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        """Relative residual ‖(D̂ᴴD̂ + ρI)x̂ − (D̂ᴴŜ + ρv̂)‖ / ‖D̂ᴴŜ + ρv̂‖ per image (n,)."""
        b = ops.adjoint_dft(self.Df, Sf.reshape(Sf.shape[0], *Sf.shape[-2:])) + rho * vf
        Ax = self.Dfc * self.synthesis(xf).unsqueeze(1) + rho * xf
        err = (Ax - b).abs().square().sum((1, 2, 3)).sqrt()
        return err / b.abs().square().sum((1, 2, 3)).sqrt().clamp_min(torch.finfo(err.dtype).tiny)

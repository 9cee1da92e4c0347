r"""The learners' FISTA coding step: CBPDN by FISTA over a batch solved as one problem, state
kept between calls (SPORCO ``dictlrn.cbpdndl.ConvBPDNDictLearn`` with ``xmethod='pgm'``).

SPORCO's ``pgm.cbpdn.ConvBPDN`` given a multi-image array solves one problem: one inverse step
size L, one momentum t, the line search and the stopping test on sums over the whole batch.
For the batch (B images, codes x, dictionary D̂) one iteration is

.. math::
    \hat R = \sum_k \hat D_k \hat y_k - \hat s,\quad
    x = \mathcal{S}_{\lambda w / L}\big(\mathrm{IDFT}(\hat y - \overline{\hat D}\hat R / L)\big),\quad
    t' = \tfrac12\big(1 + \sqrt{1 + 4t^2}\big)\ (\text{or the linear momenta}),\quad
    \hat y \leftarrow \hat x + \tfrac{t - 1}{t'}(\hat x - \hat x_{prev}),

(then non-negativity and boundary zeroing when asked), with the standard backtracking of Beck &
Teboulle when asked: L ← γ_u L until F(x) ≤ Q_L(x, y), F and Q summed over the batch
(SPORCO's ``BacktrackStandard`` on the batch array). The fixed-point residual is
‖x̂ − ŷ_prev‖² over the batch; statistics are SPORCO's (ObjFun, DFid, RegL1 on x with the
dictionary of this outer iteration, X_L, X_Rsdl, X_F_Btrack, X_Q_Btrack, X_ItBt).

The per-image operations are :class:`csc.backends.torch_fista.TorchFISTA`'s (the working set
of :class:`csc.ConvBPDNFISTA`, made by :func:`csc.backends.registry.fista_workspace` on its
torch back end, any device), given one L and one momentum coefficient for every image; the
joint decisions are here. SPORCO's robust backtracking and monotone FISTA are not offered in
the learner.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import torch

from csc.backends.registry import fista_workspace
from csc.core import ops
from csc.core.options import FISTAOptions
from csc.learn.coding import learner_weight

__all__ = ["JointFISTA"]


class JointFISTA:
    """FISTA CBPDN for a batch S (B, H, W) as one problem (module docstring); with a
    multi-channel dictionary S is (B, C, H, W). The learner's coding step: ``iterate``,
    ``set_dictionary``, ``y`` (the codes x), ``objective``, ``state``/``load_state``."""

    def __init__(self, S: torch.Tensor, lmbda: float, opts: FISTAOptions, K: int, kernel_size):
        B, (H, W) = S.shape[0], S.shape[-2:]
        self.opts, self.lmbda, self.shape = opts, float(lmbda), (H, W)
        self.S = S.contiguous()
        w = learner_weight(opts.l1_weight, K, S)
        cdt = torch.complex64 if S.dtype == torch.float32 else torch.complex128
        Df = S.new_zeros((K,) + tuple(S.shape[1:-2]) + (H, W // 2 + 1), dtype=cdt)
        self.ws = fista_workspace(self.S, Df, S.new_zeros((B, K, H, W)), w, lmbda, opts.replace(backend="torch"),
                                  kernel_size)
        self.Sf = self.ws.Sf
        self.L, self.t, self.k = float(opts.L), 1.0, 0
        self.F = self.Q = self.nbt = math.nan

    # ------------------------------------------------------------ the dictionary
    def set_dictionary(self, D: torch.Tensor | None = None, Df: torch.Tensor | None = None) -> None:
        """The dictionary, by its kernels D (K, [C,] kh, kw) or its DFT Df (K, [C,] H, Wr)."""
        self.ws.Df = Df if Df is not None else ops.kernel_dft(D, self.shape)

    # ------------------------------------------------------------ the iteration
    def iterate(self, n: int, host: bool = True) -> dict[str, Any]:
        """Up to n iterations (fewer when the residual falls below the tolerance); the last
        one's statistics as floats (the backtracking and the residual read the host)."""
        ws, o = self.ws, self.opts
        r = math.nan
        for i in range(n):
            ws.start_iteration()
            ws.gradient()
            if o.backtrack == "standard":
                self._line_search()
            else:
                ws.prox_step(self._each(self.L))
            self._ystep()
            r = float(ws.residual().sum())
            tol = o.tau0 / (1.0 + self.k) if o.auto_stop else o.rel_stop_tol
            self.k += 1
            if i + 1 < n and r < tol:
                break
        dfd, l1 = (float(v.sum()) for v in ws.objective())
        return dict(objective=dfd + self.lmbda * l1, data_fidelity=dfd, l1=l1, x_L=self.L, x_residual=r,
                    x_F_backtrack=self.F, x_Q_backtrack=self.Q, x_backtrack_iterations=self.nbt)

    def _each(self, v: float) -> np.ndarray:
        return np.full(self.ws.n, v)

    def _line_search(self) -> None:
        """Standard backtracking on the batch (SPORCO ``BacktrackStandard.update`` without its
        y-step): F and Q are sums over the images."""
        o, ws = self.opts, self.ws
        for nbt in range(1, o.backtrack_max_iter + 1):
            ws.prox_step(self._each(self.L))
            f, fy, lin, dxy2 = ws.backtrack_terms()
            F, Q = float(f.sum()), float(fy.sum() + lin.sum()) + self.L / 2.0 * float(dxy2.sum())
            if F <= Q:
                break
            self.L *= o.increase
        self.F, self.Q, self.nbt = F, Q, float(nbt)

    def _ystep(self) -> None:
        """Momentum (SPORCO ``pgm.momentum``; the linear ones from the iteration count)."""
        o, tprv = self.opts, self.t
        if o.momentum == "nesterov":
            self.t = 0.5 * float(1.0 + math.sqrt(1.0 + 4.0 * tprv ** 2))
        else:
            self.t = (self.k + (o.momentum_b if o.momentum == "linear" else o.momentum_a)) / o.momentum_b
        self.ws.momentum(self._each((tprv - 1.0) / self.t))

    @property
    def y(self) -> torch.Tensor:
        """The codes x (B, K, H, W) handed to the dictionary step (SPORCO's ``getcoef``)."""
        return self.ws.X

    def objective(self, D: torch.Tensor, Df: torch.Tensor) -> dict[str, float]:
        """DFid + λ‖x‖₁ of the codes with the dictionary's DFT Df (SPORCO's ``AccurateDFid``;
        unweighted ℓ1, as SPORCO's)."""
        fid = float(ops.rfft2_sqnorm(ops.synthesis_any(Df, torch.fft.rfft2(self.y)) - self.Sf, self.shape[1]).sum()) / 2
        l1 = float(self.y.abs().sum())
        return dict(objective=fid + self.lmbda * l1, data_fidelity=fid, l1=l1)

    # state for checkpoints
    def state(self) -> dict[str, Any]:
        return {"X": self.ws.X, "Yf": self.ws.Yf, "L": self.L, "t": self.t, "k": self.k}

    def load_state(self, st: Mapping[str, Any]) -> None:
        self.ws.X = st["X"].to(self.ws.X)
        self.ws.Xf = torch.fft.rfft2(self.ws.X)
        self.ws.Yf = st["Yf"].to(self.ws.Yf)
        self.L, self.t, self.k = float(st["L"]), float(st["t"]), int(st["k"])

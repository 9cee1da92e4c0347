"""The torch back end of FISTA for CBPDN (:mod:`csc.problems.fista`): its DFT-domain steps on any device.

The working set holds, for n images, the spatial codes x (n, K, H, W), their DFT x̂, the
previous x̂, the extrapolated point ŷ and the previous ŷ (n, K, H, W//2 + 1), and the
residual R̂_y = Σ_k D̂_k ŷ_k − ŝ (n, H, W//2 + 1) of the last gradient. Operations take an
optional selection ``sel`` (a boolean numpy mask over the working set: the images still
searching for their step size); None means every image. Tensors are replaced rather than
written in place wherever the previous iterate may still refer to them.
"""

from __future__ import annotations

import numpy as np
import torch

from csc.core import ops

__all__ = ["TorchFISTA"]


class TorchFISTA:
    """Working set of a FISTA solve on the torch back end.

    Parameters
    ----------
    S : tensor
        (n, H, W) images, or (n, C, H, W) with Df (K, C, H, Wr) for a multi-channel
        dictionary (SPORCO's ``Cd = C``: the gradient sums over the channels).
    Df : tensor
        (K, H, Wr) kernel DFTs.
    x0 : tensor
        (n, K, H, W) initial codes (taken over).
    w : float or tensor
        ℓ1 weight (broadcasting to (n, K, H, W)).
    lmbda : float
        λ.
    opts : FISTAOptions
        :class:`csc.core.options.FISTAOptions`.
    kernel_size : tuple of int
        (kh, kw).
    """

    def __init__(self, S: torch.Tensor, Df: torch.Tensor, x0: torch.Tensor, w, lmbda: float, opts, kernel_size):
        self.shape = tuple(S.shape[-2:])
        self.Df, self.w, self.lmbda, self.opts = Df, w, float(lmbda), opts
        self.kernel_size = tuple(kernel_size)
        self.Sf = torch.fft.rfft2(S)
        self.X = x0
        self.Xf = torch.fft.rfft2(x0)
        self.Yf = self.Xf.clone()
        self.Xfprv = self.Yfprv = self.Ry = self.ZZf = self.Zrb = None

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    # ------------------------------------------------------------------ helpers
    def _rows(self, sel):
        """Torch index of the selection (None for all)."""
        return None if sel is None else torch.from_numpy(np.asarray(sel)).to(self.X.device)

    @staticmethod
    def _get(t: torch.Tensor, rows):
        return t if rows is None else t[rows]

    def _col(self, v) -> torch.Tensor:
        """Per-image host values (m,) as an (m, 1, 1, 1) tensor of the working dtype."""
        return torch.as_tensor(np.asarray(v, dtype=np.float64), device=self.X.device).to(self.X.dtype).view(-1, 1, 1, 1)

    def _set(self, name: str, rows, value: torch.Tensor, alias=None) -> None:
        """self.name ← value (all), or its rows ``rows`` (copying first if it aliases ``alias``)."""
        if rows is None:
            setattr(self, name, value)
            return
        cur = getattr(self, name)
        if cur is alias or cur is None:
            cur = cur.clone() if cur is not None else value.new_zeros((self.n,) + tuple(value.shape[1:]))
            setattr(self, name, cur)
        cur[rows] = value

    def _weight(self, rows):
        w = self.w
        if isinstance(w, torch.Tensor) and w.shape[0] > 1 and rows is not None:
            return w[rows]
        return w

    def _adjoint(self, Rf: torch.Tensor) -> torch.Tensor:
        """conj(D̂)ᵀR̂: (n, H, Wr) → (n, K, H, Wr), or Σ_c conj(D̂_kc) R̂_c for (n, C, H, Wr)."""
        if self.Df.ndim == 4:
            return torch.einsum("kchw,nchw->nkhw", self.Df.conj(), Rf)
        return self.Df.conj().unsqueeze(0) * Rf.unsqueeze(1)

    # ------------------------------------------------------------------ steps
    def start_iteration(self) -> None:
        """Keep x̂ and ŷ of the previous iteration."""
        self.Xfprv, self.Yfprv = self.Xf, self.Yf

    def gradient(self, sel=None) -> None:
        """R̂_y = Σ_k D̂_k ŷ_k − ŝ at the current ŷ (the gradient is conj(D̂) R̂_y)."""
        rows = self._rows(sel)
        Ry = ops.synthesis_any(self.Df, self._get(self.Yf, rows)) - self._get(self.Sf, rows)
        self._set("Ry", rows, Ry)

    def prox_step(self, L: np.ndarray, sel=None) -> None:
        """x = prox_{λ‖w·‖₁/L}(y − ∇f(y)/L), and x̂, for the selected images with their L."""
        rows = self._rows(sel)
        H, W = self.shape
        invL = self._col(1.0 / np.asarray(L, dtype=np.float64))
        grad = self._adjoint(self._get(self.Ry, rows))
        V = torch.fft.irfft2(self._get(self.Yf, rows) - invL * grad, s=(H, W))
        thr = self._col(self.lmbda / np.asarray(L, dtype=np.float64)) * self._weight(rows)
        X = ops.soft_threshold(V, thr)
        self._constrain(X)
        self._set("X", rows, X)
        self._set("Xf", rows, torch.fft.rfft2(X), alias=self.Xfprv)

    def _constrain(self, X: torch.Tensor) -> None:
        if self.opts.nonneg:
            X.clamp_(min=0)
        if self.opts.no_boundary_cross:
            kh, kw = self.kernel_size
            if kh > 1:
                X[..., 1 - kh:, :] = 0
            if kw > 1:
                X[..., :, 1 - kw:] = 0

    def backtrack_terms(self, sel=None) -> tuple[np.ndarray, ...]:
        """f(x), f(y), ⟨∇f(y), x − y⟩ and ‖x̂ − ŷ‖² per selected image, in SPORCO's DFT scaling
        (sums over the half spectrum)."""
        rows = self._rows(sel)
        Xf, Yf, Ry = (self._get(t, rows) for t in (self.Xf, self.Yf, self.Ry))
        Dxy = Xf - Yf
        Rx = ops.synthesis_any(self.Df, Xf) - self._get(self.Sf, rows)
        lin = (ops.synthesis_any(self.Df, Dxy).conj() * Ry).real.flatten(1).sum(1)
        sq = lambda a: (a.real.square() + a.imag.square()).flatten(1).sum(1)  # noqa: E731
        out = (0.5 * sq(Rx), 0.5 * sq(Ry), lin, sq(Dxy))
        return tuple(t.double().cpu().numpy() for t in out)

    def momentum(self, c: np.ndarray, a: np.ndarray | None = None) -> None:
        """ŷ = x̂ + c(x̂ − x̂_prev), or with ``a`` (monotone FISTA) ŷ = x̂ + a(ẑ − x̂) + c(x̂ − x̂_prev)."""
        if a is None:
            self.Yf = self.Xf + self._col(c) * (self.Xf - self.Xfprv)
        else:
            self.Yf = self.Xf + self._col(a) * (self.ZZf - self.Xf) + self._col(c) * (self.Xf - self.Xfprv)

    def residual(self) -> np.ndarray:
        """‖x − y_prev‖² per image (SPORCO's fixed-point residual, squared)."""
        d = self.Xf - self.Yfprv
        return ops.parseval_sum(d.real.square() + d.imag.square(), self.shape[1]).sum(1).double().cpu().numpy()

    def objective(self, sel=None) -> tuple[np.ndarray, np.ndarray]:
        """Data fidelity ½‖Σ d_k * x_k − s‖² (from x̂) and Σ|w·x| (from x) per selected image."""
        rows = self._rows(sel)
        Rx = ops.synthesis_any(self.Df, self._get(self.Xf, rows)) - self._get(self.Sf, rows)
        dfd = 0.5 * ops.parseval_sum(Rx.real.square() + Rx.imag.square(), self.shape[1]).reshape(Rx.shape[0], -1).sum(1)
        l1 = (self._weight(rows) * self._get(self.X, rows)).abs().sum((1, 2, 3))
        return dfd.double().cpu().numpy(), l1.double().cpu().numpy()

    # ------------------------------------------------------ monotone and robust
    def keep_candidate(self, sel=None) -> None:
        """ẑ ← x̂ (monotone FISTA's candidate) for the selected images."""
        rows = self._rows(sel)
        self._set("ZZf", rows, self._get(self.Xf, rows).clone())

    def revert(self, sel, worse: np.ndarray) -> None:
        """x̂ ← x̂_prev for the selected images whose objective rose (the spatial x is kept, as SPORCO)."""
        idx = np.flatnonzero(worse) if sel is None else np.flatnonzero(sel)[worse]
        if idx.size:
            rows = torch.from_numpy(idx).to(self.X.device)
            self._set("Xf", rows, self.Xfprv[rows], alias=self.Xfprv)

    def init_robust(self) -> None:
        """Robust backtracking's accumulated point z ← x̂."""
        self.Zrb = self.Xf.clone()

    def robust_point(self, sel, Tk: np.ndarray, t: np.ndarray, T: np.ndarray) -> None:
        """ŷ = (T_k x̂_prev + t ẑ)/T for the selected images."""
        rows = self._rows(sel)
        y = (self._col(Tk) * self._get(self.Xfprv, rows) + self._col(t) * self._get(self.Zrb, rows)) / self._col(T)
        self._set("Yf", rows, y, alias=self.Yfprv)

    def robust_update(self, tL: np.ndarray) -> None:
        """ẑ ← ẑ + tL(x̂ − ŷ)."""
        self.Zrb = self.Zrb + self._col(tL) * (self.Xf - self.Yf)

    # ------------------------------------------------------------ working set
    def codes(self, mask: np.ndarray) -> torch.Tensor:
        return self.X[self._rows(mask)]

    def keep(self, mask: np.ndarray) -> None:
        """Keep only the images of ``mask``."""
        rows = self._rows(mask)
        for name in ("X", "Xf", "Yf", "Xfprv", "Yfprv", "Ry", "ZZf", "Zrb", "Sf"):
            t = getattr(self, name)
            if t is not None:
                setattr(self, name, t[rows])
        if isinstance(self.w, torch.Tensor) and self.w.shape[0] > 1:
            self.w = self.w[rows]

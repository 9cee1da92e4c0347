"""The torch back end of the dictionary steps (:mod:`csc.learn.dictstep`), any device.

Codes enter by their DFT Ẑ (B, K, H, Wr); kernels are zero-padded to H×W at the origin.
Multi-channel kernels (K, C, kh, kw) with images (B, C, H, W): every channel's kernels share
the codes, so each step is the single-channel one per channel.
"""

from __future__ import annotations

from typing import Any

import torch

from csc.core import ops

__all__ = ["TorchPGMOps", "TorchConsensusOps", "TorchISMOps", "TorchMaskedPGMOps", "TorchMaskedConsensusOps", "pad"]


def pad(D: torch.Tensor, shape) -> torch.Tensor:
    """Kernels (…, kh, kw) zero-padded to (…, H, W) at the origin."""
    out = D.new_zeros(D.shape[:-2] + tuple(shape))
    out[..., : D.shape[-2], : D.shape[-1]] = D
    return out


class TorchPGMOps:
    """FISTA's arithmetic: the gradient Σ_j conj(Ẑ_j)(Ẑ_j Ŷ − Ŝ_j) in the DFT domain."""

    def __init__(self, Sf: torch.Tensor, shape):
        self.Sf, self.shape = Sf, tuple(shape)

    def start(self, D0: torch.Tensor) -> None:
        self.Xf = ops.kernel_dft(D0, self.shape)
        self.Yf = self.Xf.clone()

    def set_codes(self, cb) -> None:
        self.Zf = torch.fft.rfft2(cb.y)

    def gradient_step(self, inv_l: float) -> torch.Tensor:
        self.gradient()
        return self.descend(inv_l)

    def gradient(self) -> None:
        """∇ = Σ_j conj(Ẑ_j)(Ẑ_j Ŷ − Ŝ_j) at the extrapolated point, kept for :meth:`descend`
        (the line search takes several steps from one gradient), and its residual R̂_y."""
        if self.Yf.ndim == 4:  # multi-channel kernels (K, C, H, Wr), images (B, C, H, Wr)
            self.Ryf = ops.synthesis_any(self.Yf, self.Zf) - self.Sf
            self.grad = ops.dictionary_gradient(self.Zf, self.Ryf)
        else:
            self.Ryf = torch.einsum("bkhw,khw->bhw", self.Zf, self.Yf) - self.Sf
            self.grad = torch.einsum("bkhw,bhw->khw", self.Zf.conj(), self.Ryf)

    def descend(self, inv_l: float) -> torch.Tensor:
        """IDFT(Ŷ − ∇/L), the point the constraint projects."""
        return torch.fft.irfft2(self.Yf - inv_l * self.grad, s=self.shape)

    def backtrack_terms(self, D: torch.Tensor) -> torch.Tensor:
        """f(x), f(y), ⟨∇f(y), x − y⟩ and ‖x̂ − ŷ‖² for the candidate kernels D, in SPORCO's
        DFT scaling (plain sums over the half spectrum, ``obfn_f``), as one float64 (4,) tensor."""
        Xf = ops.kernel_dft(D, self.shape)
        Dxy = Xf - self.Yf
        Rx = ops.synthesis_any(Xf, self.Zf) - self.Sf
        sq = lambda a: a.real.square().sum() + a.imag.square().sum()  # noqa: E731
        lin = (Dxy.conj() * self.grad).real.sum()
        return torch.stack([0.5 * sq(Rx), 0.5 * sq(self.Ryf), lin, sq(Dxy)]).to(torch.float64)

    def extrapolate(self, D: torch.Tensor, Dprev: torch.Tensor, coef: float) -> float:
        Xfprv, Yfprv = self.Xf, self.Yf
        self.Xf = ops.kernel_dft(D, self.shape)
        self.Yf = self.Xf + coef * (self.Xf - Xfprv)
        return ops.rfft2_sqnorm(self.Xf - Yfprv, self.shape[1]).sum().to(torch.float64)  # read with the row

    def dft(self) -> torch.Tensor:
        return self.Xf

    def fidelity(self) -> torch.Tensor:
        """½Σ_j‖Σ_k d_k * z_jk − s_j‖² at the iterate x (SPORCO ``obfn_dfd``), a float64 0-d tensor."""
        return _fidelity(self.Zf, self.Xf, self.Sf, self.shape)

    def padded(self) -> torch.Tensor:
        return torch.fft.irfft2(self.Xf, s=self.shape)

    def state(self) -> dict[str, Any]:
        return {"Yf": self.Yf}

    def load(self, D: torch.Tensor, st) -> None:
        self.Xf = ops.kernel_dft(D, self.shape)
        self.Yf = st["Yf"].to(self.Yf)


class _ADMMDictState:
    """What the ADMM dictionary steps ('cns', 'ism') share: the scaled dual U and the
    dictionary G, zero-padded to the images' size."""

    def divide_dual(self, f: float) -> None:
        self.U = self.U / f

    def zero_dual(self) -> None:
        """u ← 0 (a learner's ``zero_dual`` start)."""
        self.U = torch.zeros_like(self.U)

    def dft(self) -> torch.Tensor:
        return torch.fft.rfft2(self.G)

    def padded(self) -> torch.Tensor:
        return self.G

    def state(self) -> dict[str, Any]:
        return {"U": self.U}


class TorchConsensusOps(_ADMMDictState):
    """ADMM consensus arithmetic with x and u per image in the spatial domain."""

    def __init__(self, Sf: torch.Tensor, shape, relax: float):
        self.Sf, self.shape, self.relax = Sf, tuple(shape), relax

    def start(self, D0: torch.Tensor, rho: float, U0: torch.Tensor | None = None) -> None:
        """g = D0 padded; u_j = g/ρ for every image (SPORCO's choice given a starting
        dictionary), or ``U0`` (B, K, [C,] H, W) when given."""
        self.G = pad(D0, self.shape)  # consensus variable (SPORCO's Y), padded
        if U0 is not None:
            self.U = U0.to(self.G).clone()
        else:
            self.U = (self.G / rho).unsqueeze(0).expand(self.Sf.shape[0], *self.G.shape).clone()

    def set_codes(self, cb) -> None:
        self.Zf = torch.fft.rfft2(cb.y)
        self.mc = self.Sf.ndim == 4  # multi-channel: x_j (K, C) per frequency, one system per channel
        Zc = self.Zf.unsqueeze(2) if self.mc else self.Zf  # (B, K, 1, H, Wr) against (B, 1, C, H, Wr)
        self.ZSf = Zc.conj() * self.Sf.unsqueeze(1)
        self.zgram = (self.Zf.real.square() + self.Zf.imag.square()).sum(1, keepdim=True)
        if self.mc:
            self.zgram = self.zgram.unsqueeze(2)

    def consensus_mean(self, rho: float) -> torch.Tensor:
        b = self.ZSf + rho * torch.fft.rfft2(self.G.unsqueeze(0) - self.U)
        if self.mc:
            Zc = self.Zf.unsqueeze(2)
            c = (Zc * b).sum(1, keepdim=True) / (rho + self.zgram)
            self.X = torch.fft.irfft2((b - Zc.conj() * c) / rho, s=self.shape)
        else:
            c = torch.einsum("bkhw,bkhw->bhw", self.Zf, b).unsqueeze(1) / (rho + self.zgram)
            self.X = torch.fft.irfft2((b - self.Zf.conj() * c) / rho, s=self.shape)
        self.AX = self.X if self.relax == 1.0 else self.relax * self.X + (1 - self.relax) * self.G.unsqueeze(0)
        return (self.AX + self.U).mean(0)

    def dual_update(self, D: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        self.G = pad(D, self.shape)
        self.U = self.U + (self.AX - self.G.unsqueeze(0))
        return _l2(self.X - self.G.unsqueeze(0)), _l2(self.U), _l2(self.X)

    def fidelity(self) -> torch.Tensor:
        """½Σ_j‖Σ_k g_k * z_jk − s_j‖² at the consensus variable g (SPORCO's, with ``fEvalX``
        False), a float64 0-d tensor."""
        return _fidelity(self.Zf, self.dft(), self.Sf, self.shape)

    def load(self, D: torch.Tensor, st) -> None:
        self.G = pad(D, self.shape)
        if "U" in st:
            self.U = st["U"].to(self.U)
        else:  # a checkpoint of the fused back end, which keeps U's DFT
            self.U = torch.fft.irfft2(st["Uf"].to(self.U.device), s=self.shape).to(self.U)


class TorchISMOps(_ADMMDictState):
    r"""ADMM arithmetic of the dictionary update with one x for all images (SPORCO
    ``admm.ccmod.ConvCnstrMOD_IterSM``): the x-step solves, per frequency,

    .. math::
        \Big(\sum_j \overline{\hat z_j}\hat z_j^T + \rho I\Big)\hat x
        = \sum_j \overline{\hat z_j}\hat s_j + \rho\,\mathrm{DFT}(y - u),

    exactly, by Woodbury's identity with the B×B Gram matrix Ẑ Ẑᴴ of the images' codes
    (SPORCO solves the same system by iterated Sherman–Morrison); a multi-channel dictionary
    solves each channel with the same matrix. Then a = αx + (1 − α)y (relaxation), the
    caller's y = P_C(a + u), u ← u + a − y; the interface of :class:`TorchConsensusOps` with
    one block."""

    def __init__(self, Sf: torch.Tensor, shape, relax: float):
        self.Sf, self.shape, self.relax = Sf, tuple(shape), relax

    def start(self, D0: torch.Tensor, rho: float, U0: torch.Tensor | None = None) -> None:
        """y = D0 padded; u = ``U0``, or y (SPORCO's ``uinit`` given a starting dictionary; zero
        for a zero one)."""
        self.G = pad(D0, self.shape)
        self.U = self.G.clone() if U0 is None else U0.to(self.G).clone()

    def set_codes(self, cb) -> None:
        self.Zf = torch.fft.rfft2(cb.y)  # (B, K, H, Wr)
        A = self.Zf.permute(2, 3, 0, 1)  # (H, Wr, B, K): the rows ẑ_jᵀ of each frequency
        self.A = A
        self.gram = A @ A.conj().transpose(-2, -1)  # Ẑ Ẑᴴ, (H, Wr, B, B)
        self.mc = self.Sf.ndim == 4
        Sf = self.Sf.permute(2, 3, 0, 1) if self.mc else self.Sf.permute(1, 2, 0).unsqueeze(-1)  # (H, Wr, B, C)
        self.ZSf = A.conj().transpose(-2, -1) @ Sf  # Σ_j conj(ẑ_j) ŝ_j, (H, Wr, K, C)
        self._chol = None

    def _factor(self, rho: float) -> torch.Tensor:
        if self._chol is None or self._chol[0] != rho:
            eye = torch.eye(self.gram.shape[-1], dtype=self.gram.dtype, device=self.gram.device)
            self._chol = (rho, torch.linalg.cholesky(self.gram + rho * eye))
        return self._chol[1]

    def consensus_mean(self, rho: float) -> torch.Tensor:
        """The x-step and relaxation; a + u, the point the constraint projects."""
        YUf = torch.fft.rfft2(self.G - self.U)  # (K, [C,] H, Wr)
        YUf = YUf.permute(2, 3, 0, 1) if self.mc else YUf.permute(1, 2, 0).unsqueeze(-1)
        b = self.ZSf + rho * YUf
        c = torch.cholesky_solve(self.A @ b, self._factor(rho))  # (ρI + ẐẐᴴ)⁻¹ Ẑ b
        Xf = (b - self.A.conj().transpose(-2, -1) @ c) / rho  # (H, Wr, K, C)
        Xf = Xf.permute(2, 3, 0, 1) if self.mc else Xf[..., 0].permute(2, 0, 1)
        self.X = torch.fft.irfft2(Xf, s=self.shape)
        self.AX = self.X if self.relax == 1.0 else self.relax * self.X + (1 - self.relax) * self.G
        return self.AX + self.U

    def dual_update(self, D: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """y = D padded, u ← u + a − y; ‖x − y‖, ‖u‖, ‖x‖."""
        self.G = pad(D, self.shape)
        self.U = self.U + (self.AX - self.G)
        return _l2(self.X - self.G), _l2(self.U), _l2(self.X)

    def fidelity(self) -> torch.Tensor:
        """½Σ_j‖Σ_k x_k * z_jk − s_j‖² at x (SPORCO's ``fEvalX`` True for this class)."""
        return _fidelity(self.Zf, torch.fft.rfft2(self.X), self.Sf, self.shape)

    def load(self, D: torch.Tensor, st) -> None:
        self.G = pad(D, self.shape)
        self.U = st["U"].to(self.U)


class TorchMaskedPGMOps(TorchPGMOps):
    r"""FISTA's arithmetic with a mask W (SPORCO ``pgm.ccmod.ConvCnstrMODMask.grad_f``): the
    gradient of ½Σ_j‖W_j ⊙ (Σ_k d_k * z_jk − s_j)‖² in the DFT domain,

    .. math::
        \nabla = \sum_j \overline{\hat Z_j}\; \mathrm{DFT}\big(W_j^2 \odot
        \mathrm{IDFT}(\hat Z_j \hat Y - \hat S_j)\big).

    ``mask2`` is W² as a float or (1 or B, H, W)."""

    def __init__(self, Sf: torch.Tensor, shape, mask2):
        super().__init__(Sf, shape)
        self.mask2 = mask2

    def gradient_step(self, inv_l: float) -> torch.Tensor:
        Ryf = torch.einsum("bkhw,khw->bhw", self.Zf, self.Yf) - self.Sf
        WRyf = torch.fft.rfft2(self.mask2 * torch.fft.irfft2(Ryf, s=self.shape))
        grad = torch.einsum("bkhw,bhw->khw", self.Zf.conj(), WRyf)
        return torch.fft.irfft2(self.Yf - inv_l * grad, s=self.shape)


class TorchMaskedConsensusOps(TorchConsensusOps):
    r"""ADMM consensus with mask decoupling (SPORCO ``admm.ccmodmd.ConvCnstrMODMaskDcpl_Consensus``):
    besides x_j, u_j and g, a block y₁ⱼ standing for Σ_k d_k * z_jk − s_j with its dual u₁ⱼ.
    One iteration (ρ is 1 in the x-step, as SPORCO's):

    - x-step :math:`(\hat Z_j^H\hat Z_j + I)\hat x_j = \hat Z_j^H(\hat s_j + \mathrm{DFT}(y_{1j} - u_{1j}))
      + \mathrm{DFT}(g - u_j)`;
    - relaxation :math:`a_j = \alpha x_j + (1-\alpha) g`, :math:`a_{1j} = \alpha\,(z_j * x_j)
      + (1-\alpha)(y_{1j} + s_j)`; g = P_C(mean_j(a_j + u_j)) (by the caller);
    - :math:`y_{1j} = \rho(a_{1j} + u_{1j} - s_j)/(W_j^2 + \rho)`;
      :math:`u_j \mathrel{+}= a_j - g`, :math:`u_{1j} \mathrel{+}= a_{1j} - y_{1j} - s_j`;
    - residual norms (SPORCO's ``compute_residuals``): r² = Σ‖x_j − g‖² + ‖z * x − y₁ − s‖²,
      the dual ‖Aᵀu‖ = ‖u + Zᴴu₁‖, ‖Ax‖² = ‖x‖² + ‖z * x‖², ‖y‖² = ‖g‖² + ‖y₁‖²,
      ‖u‖² = ‖u‖² + ‖u₁‖², and ‖s‖.

    An adaptive-ρ change divides u only, not u₁ (SPORCO's ``ADMM.update_rho``)."""

    def __init__(self, Sf: torch.Tensor, shape, relax: float, S: torch.Tensor, mask2):
        super().__init__(Sf, shape, relax)
        self.S, self.mask2 = S, mask2

    def start(self, D0: torch.Tensor, rho: float) -> None:
        super().start(D0, rho)
        self.Y1, self.U1 = torch.zeros_like(self.S), torch.zeros_like(self.S)

    def set_codes(self, cb) -> None:
        self.Zf = torch.fft.rfft2(cb.y)
        self.zgram = (self.Zf.real.square() + self.Zf.imag.square()).sum(1, keepdim=True)

    def consensus_mean(self, rho: float) -> torch.Tensor:
        a = self.relax
        ZSf = self.Zf.conj() * (self.Sf + torch.fft.rfft2(self.Y1 - self.U1)).unsqueeze(1)
        b = ZSf + torch.fft.rfft2(self.G.unsqueeze(0) - self.U)
        c = torch.einsum("bkhw,bkhw->bhw", self.Zf, b).unsqueeze(1) / (1.0 + self.zgram)
        Xf = b - self.Zf.conj() * c
        self.X = torch.fft.irfft2(Xf, s=self.shape)
        self.AX1nr = torch.fft.irfft2(torch.einsum("bkhw,bkhw->bhw", self.Zf, Xf), s=self.shape)
        if a == 1.0:
            self.AX, self.AX1 = self.X, self.AX1nr
        else:
            self.AX = a * self.X + (1 - a) * self.G.unsqueeze(0)
            self.AX1 = a * self.AX1nr + (1 - a) * (self.Y1 + self.S)
        self._rho = rho
        return (self.AX + self.U).mean(0)

    def dual_update(self, D: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """y₁, u and u₁ steps; the norms (‖Ax‖, ‖y‖, ‖u‖, r, ‖Aᵀu‖, ‖s‖) of the residuals."""
        rho = self._rho
        self.G = pad(D, self.shape)
        self.Y1 = rho * (self.AX1 + self.U1 - self.S) / (self.mask2 + rho)
        self.U = self.U + (self.AX - self.G.unsqueeze(0))
        self.U1 = self.U1 + (self.AX1 - self.Y1 - self.S)
        r = _hypot(self.X - self.G.unsqueeze(0), self.AX1nr - self.Y1 - self.S)
        ATU = self.U + torch.fft.irfft2(self.Zf.conj() * torch.fft.rfft2(self.U1).unsqueeze(1), s=self.shape)
        return (_hypot(self.X, self.AX1nr), _hypot(self.G, self.Y1), _hypot(self.U, self.U1), r, _l2(ATU),
                _l2(self.S))

    def state(self) -> dict[str, Any]:
        return {"U": self.U, "Y1": self.Y1, "U1": self.U1}

    def load(self, D: torch.Tensor, st) -> None:
        self.G = pad(D, self.shape)
        self.U, self.Y1, self.U1 = (st[k].to(self.S) for k in ("U", "Y1", "U1"))


def _fidelity(Zf: torch.Tensor, Df: torch.Tensor, Sf: torch.Tensor, shape) -> torch.Tensor:
    """½‖Σ_k D̂_k Ẑ_jk − Ŝ_j‖² summed over the images (and channels), by Parseval."""
    R = ops.synthesis_any(Df, Zf) - Sf
    return 0.5 * ops.rfft2_sqnorm(R, shape[1]).sum().to(torch.float64)


def _hypot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """√(‖a‖² + ‖b‖²) as a float64 0-d tensor (no host read)."""
    return (a.square().sum() + b.square().sum()).sqrt().to(torch.float64)


def _l2(t: torch.Tensor) -> torch.Tensor:
    """‖t‖₂ as a float64 0-d tensor on t's device (no host read)."""
    return t.square().sum().sqrt().to(torch.float64)

"""The torch back end of the dictionary steps (:mod:`csc.learn.dictstep`), any device.

Codes enter by their DFT Ẑ (B, K, H, Wr); kernels are zero-padded to H×W at the origin.
Multi-channel kernels (K, C, kh, kw) with images (B, C, H, W): every channel's kernels share
the codes, so each step is the single-channel one per channel.
"""

from __future__ import annotations

from typing import Any

import torch

from csc.core import ops

__all__ = ["TorchPGMOps", "TorchConsensusOps", "pad"]


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
        if self.Yf.ndim == 4:  # multi-channel kernels (K, C, H, Wr), images (B, C, H, Wr)
            grad = ops.dictionary_gradient(self.Zf, ops.synthesis_any(self.Yf, self.Zf) - self.Sf)
        else:
            Ryf = torch.einsum("bkhw,khw->bhw", self.Zf, self.Yf) - self.Sf
            grad = torch.einsum("bkhw,bhw->khw", self.Zf.conj(), Ryf)
        return torch.fft.irfft2(self.Yf - inv_l * grad, s=self.shape)

    def extrapolate(self, D: torch.Tensor, Dprev: torch.Tensor, coef: float) -> float:
        Xfprv, Yfprv = self.Xf, self.Yf
        self.Xf = ops.kernel_dft(D, self.shape)
        self.Yf = self.Xf + coef * (self.Xf - Xfprv)
        return ops.rfft2_sqnorm(self.Xf - Yfprv, self.shape[1]).sum().to(torch.float64)  # read with the row

    def dft(self) -> torch.Tensor:
        return self.Xf

    def padded(self) -> torch.Tensor:
        return torch.fft.irfft2(self.Xf, s=self.shape)

    def state(self) -> dict[str, Any]:
        return {"Yf": self.Yf}

    def load(self, D: torch.Tensor, st) -> None:
        self.Xf = ops.kernel_dft(D, self.shape)
        self.Yf = st["Yf"].to(self.Yf)


class TorchConsensusOps:
    """ADMM consensus arithmetic with x and u per image in the spatial domain."""

    def __init__(self, Sf: torch.Tensor, shape, relax: float):
        self.Sf, self.shape, self.relax = Sf, tuple(shape), relax

    def start(self, D0: torch.Tensor, rho: float) -> None:
        self.G = pad(D0, self.shape)  # consensus variable (SPORCO's Y), padded
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

    def divide_dual(self, f: float) -> None:
        self.U = self.U / f

    def dft(self) -> torch.Tensor:
        return torch.fft.rfft2(self.G)

    def padded(self) -> torch.Tensor:
        return self.G

    def state(self) -> dict[str, Any]:
        return {"U": self.U}

    def load(self, D: torch.Tensor, st) -> None:
        self.G = pad(D, self.shape)
        if "U" in st:
            self.U = st["U"].to(self.U)
        else:  # a checkpoint of the fused back end, which keeps U's DFT
            self.U = torch.fft.irfft2(st["Uf"].to(self.U.device), s=self.shape).to(self.U)


def _l2(t: torch.Tensor) -> torch.Tensor:
    """‖t‖₂ as a float64 0-d tensor on t's device (no host read)."""
    return t.square().sum().sqrt().to(torch.float64)

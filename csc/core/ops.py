r"""Stateless tensor operations of convolutional sparse coding, in the DFT domain.

Layout: images (N, H, W), kernels (K, kh, kw), coefficient maps (N, K, H, W); DFTs are
real-to-complex over the last two axes (``torch.fft.rfft2``), so a map's DFT is
(N, K, H, W//2 + 1). Every function is batch-first and works on any device and in
float32 or float64 (complex64 / complex128 in the DFT domain).

Convolution is circular, and each kernel is zero-padded to H×W at the top-left origin
(not centred), exactly as SPORCO does:

.. math::  \widehat{d_k * x_k} = \hat D_k \hat X_k,\qquad
           \hat D_k = \mathrm{DFT}(\mathrm{pad}_{H\times W}(d_k)).

The x-step of ADMM for convolutional BPDN solves, at every frequency independently,
:math:`(\hat D^H \hat D + \rho I)\hat x = \hat b` with :math:`\hat D` a 1×K row; by the
Sherman–Morrison formula

.. math::  \hat x = \frac{1}{\rho}\Big(\hat b - \overline{\hat D}\,
           \frac{\sum_k \hat D_k \hat b_k}{\rho + \sum_k |\hat D_k|^2}\Big).
"""

from __future__ import annotations

import torch

__all__ = [
    "kernel_dft",
    "synthesis_dft",
    "synthesis",
    "synthesis_any",
    "dictionary_gradient",
    "adjoint_dft",
    "gram_diagonal",
    "sherman_morrison_solve",
    "soft_threshold",
    "rfft2_sqnorm",
    "parseval_sum",
]


def kernel_dft(kernels: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """DFT of kernels (K, kh, kw) zero-padded at the top-left origin to ``shape`` (H, W).

    Returns a complex tensor (K, H, W//2 + 1).
    """
    return torch.fft.rfft2(kernels, s=tuple(shape))


def synthesis_dft(Df: torch.Tensor, Xf: torch.Tensor) -> torch.Tensor:
    r"""Σ_k D̂_k X̂_k: DFT of the reconstruction from maps' DFTs (N, K, H, Wr) → (N, H, Wr)."""
    return torch.einsum("khw,nkhw->nhw", Df, Xf)


def synthesis(kernels: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """Σ_k d_k * x_k, circular, for maps (N, K, H, W) → images (N, H, W); kernels
    (K, C, kh, kw) of a multi-channel dictionary give images (N, C, H, W)."""
    H, W = maps.shape[-2:]
    Df = kernel_dft(kernels.to(maps.dtype), (H, W))
    Xf = torch.fft.rfft2(maps)
    Sf = torch.einsum("kchw,nkhw->nchw", Df, Xf) if Df.ndim == 4 else synthesis_dft(Df, Xf)
    return torch.fft.irfft2(Sf, s=(H, W))


def synthesis_any(Df: torch.Tensor, Xf: torch.Tensor) -> torch.Tensor:
    """Σ_k D̂_k X̂_k for single-channel kernel DFTs (K, H, Wr) → (N, H, Wr), or per channel for
    multi-channel ones (K, C, H, Wr) → (N, C, H, Wr)."""
    return torch.einsum("kchw,nkhw->nchw", Df, Xf) if Df.ndim == 4 else synthesis_dft(Df, Xf)


def dictionary_gradient(Zf: torch.Tensor, Rf: torch.Tensor) -> torch.Tensor:
    """Σ_n conj(Ẑ_n) R̂_n, the DFT of the data term's gradient in the kernels, for codes' DFTs
    Zf (N, K, H, Wr) and residual DFTs (N, H, Wr) → (K, H, Wr), or (N, C, H, Wr) → (K, C, H, Wr)."""
    if Rf.ndim == 4:
        return torch.einsum("nkhw,nchw->kchw", Zf.conj(), Rf)
    return torch.einsum("bkhw,bhw->khw", Zf.conj(), Rf)


def adjoint_dft(Df: torch.Tensor, Sf: torch.Tensor) -> torch.Tensor:
    """conj(D̂_k) Ŝ for image DFTs (N, H, Wr) → (N, K, H, Wr): the DFT of Dᵀs."""
    return Df.conj().unsqueeze(0) * Sf.unsqueeze(1)


def gram_diagonal(Df: torch.Tensor) -> torch.Tensor:
    """Σ_k |D̂_k|² per frequency (K, H, Wr) → real (H, Wr)."""
    return (Df.real.square() + Df.imag.square()).sum(0)


def sherman_morrison_solve(
    Df: torch.Tensor, b: torch.Tensor, rho: torch.Tensor, gram: torch.Tensor
) -> torch.Tensor:
    r"""Solve (D̂ᴴD̂ + ρI) x̂ = b̂ at every frequency (module docstring).

    Parameters
    ----------
    Df : (K, H, Wr) complex
        Kernel DFTs.
    b : (N, K, H, Wr) complex
        Right-hand side.
    rho : (N, 1, 1, 1) real
        Penalty per image.
    gram : (H, Wr) real
        Σ_k |D̂_k|², from :func:`gram_diagonal`.
    """
    cb = torch.einsum("khw,nkhw->nhw", Df, b).unsqueeze(1) / (rho + gram)
    return (b - Df.conj() * cb) / rho


def soft_threshold(v: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """sign(v) · max(|v| − t, 0), the proximal operator of t‖·‖₁."""
    return torch.sign(v) * torch.clamp(v.abs() - t, min=0)


def rfft2_sqnorm(Xf: torch.Tensor, width: int) -> torch.Tensor:
    """‖x‖² of real signals from their ``rfft2`` over the last two axes (Parseval).

    ``width`` is the spatial size W of the last axis before the transform. Sums over the
    last two axes only, so an (N, H, Wr) input gives (N,).
    """
    return parseval_sum(Xf.real.square() + Xf.imag.square(), width)


def parseval_sum(sq: torch.Tensor, width: int) -> torch.Tensor:
    """Σ over the last two axes of a real signal's half spectrum of values ``sq`` (|x̂|², or
    weighted |x̂|²), each column counted as often as it occurs in the full spectrum, over
    H·W: ‖x‖² for ``sq`` = |rfft2(x)|² (Parseval). ``width`` is the spatial size W."""
    H = sq.shape[-2]
    total = sq[..., 0].sum(-1)
    last = (width + 1) // 2
    total = total + 2.0 * sq[..., 1:last].sum((-2, -1))
    if width % 2 == 0:
        total = total + sq[..., -1].sum(-1)
    return total / (H * width)

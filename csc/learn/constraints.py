r"""Kernel constraint sets of convolutional dictionary learning, and their projections.

The dictionary update of convolutional dictionary learning (SPORCO ``dictlrn.cbpdndl.ConvBPDNDictLearn``; the paper's eqs. 4–5) constrains each
kernel :math:`d_k` to the set

.. math::  C = \{ d : \operatorname{supp}(d) \subseteq [0, k_h) \times [0, k_w),\;
           \|d\|_2 = 1 \}

(optionally also :math:`\sum d = 0`, or :math:`d \ge 0`). The projection used by SPORCO
(``cnvrep.Pcn``) and by csc is, for a kernel stored zero-padded to the image size H×W:

1. crop to the kernel support (the top-left kh×kw block);
2. optionally subtract the kernel's mean over its support (zero-mean kernels), or
   optionally clip negative entries to zero (non-negative kernels, a csc extension:
   the exact projection onto the non-negative part of the sphere when some entry is
   positive);
3. normalise to unit ℓ2 norm; a kernel that is exactly zero stays zero (SPORCO sets a
   zero norm to 1);
4. zero-pad back to H×W when the caller needs the padded form.

All functions are batch-first — kernels (K, kh, kw) or padded (K, H, W), or multi-channel
(K, C, kh, kw): the mean is taken per channel (SPORCO's ``zeromean`` over the spatial axes)
and the norm over the channels and the support together — and work on any device in
float32 or float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from csc.core.checks import check_bool

__all__ = ["KernelConstraint", "project_kernels", "normalise_kernels", "zero_pad_kernels"]


@dataclass(frozen=True)
class KernelConstraint:
    """The constraint set C of the dictionary update.

    Attributes
    ----------
    kernel_size : (kh, kw)
        Kernel support (top-left block of the padded kernel).
    zero_mean : bool
        Subtract each kernel's mean over its support before normalising (SPORCO
        ``CCMOD.ZeroMean``).
    nonneg : bool
        Clip negative entries to zero before normalising (csc extension; not in SPORCO).
    """

    kernel_size: tuple[int, int]
    zero_mean: bool = False
    nonneg: bool = False

    def __post_init__(self) -> None:
        kh, kw = (int(v) for v in self.kernel_size)
        if kh < 1 or kw < 1:
            raise ValueError(f"kernel_size: expected positive sizes, got {self.kernel_size!r}")
        object.__setattr__(self, "kernel_size", (kh, kw))
        for name in ("zero_mean", "nonneg"):
            object.__setattr__(self, name, check_bool(name, getattr(self, name)))
        if self.zero_mean and self.nonneg:
            raise ValueError(
                "zero_mean, nonneg: a kernel cannot be both zero-mean and non-negative "
                "(only the zero kernel is); choose one"
            )
        if self.zero_mean and kh * kw == 1:
            raise ValueError("zero_mean: a 1×1 kernel of zero mean is zero (the dictionary would be all zero); "
                             "use kernels of at least 2 pixels, or leave zero_mean off")

    def project(self, kernels: torch.Tensor) -> torch.Tensor:
        """Projection of (K, H, W) kernels (padded or cropped) onto C, cropped to (K, kh, kw)."""
        return project_kernels(kernels, self.kernel_size, zero_mean=self.zero_mean, nonneg=self.nonneg)


def normalise_kernels(kernels: torch.Tensor) -> torch.Tensor:
    """Each kernel (leading axis) divided by its ℓ2 norm over the other axes — (kh, kw), or
    (C, kh, kw) for multi-channel kernels; zero kernels stay zero (SPORCO's
    ``cnvrep.normalise`` over the spatial and channel axes)."""
    nrm = kernels.square().sum(tuple(range(1, kernels.ndim)), keepdim=True).sqrt()
    nrm = torch.where(nrm == 0, torch.ones_like(nrm), nrm)
    return kernels / nrm


def project_kernels(
    kernels: torch.Tensor, kernel_size: tuple[int, int], *, zero_mean: bool = False, nonneg: bool = False
) -> torch.Tensor:
    """Project kernels (K, H, W) onto the constraint set (module docstring); returns the
    cropped (K, kh, kw) kernels.

    ``H`` and ``W`` must be at least ``kernel_size``; the entries outside the support
    are discarded.
    """
    zero_mean = check_bool("zero_mean", zero_mean)
    nonneg = check_bool("nonneg", nonneg)
    kh, kw = kernel_size
    if kernels.shape[-2] < kh or kernels.shape[-1] < kw:
        raise ValueError(
            f"kernels: spatial shape {tuple(kernels.shape[-2:])} is smaller than kernel_size {(kh, kw)}"
        )
    d = kernels[..., :kh, :kw]
    if zero_mean:
        d = d - d.mean((-2, -1), keepdim=True)
    if nonneg:
        d = d.clamp(min=0)
    return normalise_kernels(d)


def zero_pad_kernels(kernels: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Kernels (K, kh, kw) zero-padded at the top-left origin to (K, H, W)."""
    H, W = shape
    kh, kw = kernels.shape[-2:]
    if kh > H or kw > W:
        raise ValueError(f"kernels: {kh}×{kw} kernels do not fit in {H}×{W}")
    out = kernels.new_zeros(kernels.shape[:-2] + (H, W))
    out[..., :kh, :kw] = kernels
    return out

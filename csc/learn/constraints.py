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

Multi-scale dictionaries (SPORCO's ``DictSize`` of several sizes, ``cnvrep.bcrop``): the
kernels come in groups ((kh₁, kw₁, n₁), (kh₂, kw₂, n₂), …) in order, stored at the largest
size; step 1 then also zeroes each kernel outside its own kh_i×kw_i support and step 2's mean
is taken over that support (SPORCO's ``zeromean`` with ``dsz``), so every kernel is projected
onto its own constraint set (:func:`kernel_constraint`).

All functions are batch-first — kernels (K, kh, kw) or padded (K, H, W), or multi-channel
(K, C, kh, kw): the mean is taken per channel (SPORCO's ``zeromean`` over the spatial axes)
and the norm over the channels and the support together — and work on any device in
float32 or float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from csc.core.checks import check_bool

__all__ = ["KernelConstraint", "kernel_constraint", "dictionary_constraint", "project_kernels", "normalise_kernels",
           "zero_pad_kernels"]


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
    sizes : ((kh, kw, n), ...) or None
        Multi-scale dictionaries: the groups of kernels of each size, in order (n kernels of
        kh×kw each); ``kernel_size`` is then the largest (module docstring). None (the
        default): every kernel of ``kernel_size``.
    """

    kernel_size: tuple[int, int]
    zero_mean: bool = False
    nonneg: bool = False
    sizes: tuple[tuple[int, int, int], ...] | None = None
    _masks: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        kh, kw = (int(v) for v in self.kernel_size)
        if kh < 1 or kw < 1:
            raise ValueError(f"kernel_size: expected positive sizes, got {self.kernel_size!r}")
        object.__setattr__(self, "kernel_size", (kh, kw))
        if self.sizes is not None:
            object.__setattr__(self, "sizes", _check_sizes(self.sizes))
            big = (max(g[0] for g in self.sizes), max(g[1] for g in self.sizes))
            if big != (kh, kw):
                raise ValueError(f"kernel_size: {(kh, kw)} is not the largest size of the groups {self.sizes}")
        for name in ("zero_mean", "nonneg"):
            object.__setattr__(self, name, check_bool(name, getattr(self, name)))
        if self.zero_mean and self.nonneg:
            raise ValueError(
                "zero_mean, nonneg: a kernel cannot be both zero-mean and non-negative "
                "(only the zero kernel is); choose one"
            )
        small = min(g[0] * g[1] for g in self.sizes) if self.sizes is not None else kh * kw
        if self.zero_mean and small == 1:
            raise ValueError("zero_mean: a 1×1 kernel of zero mean is zero (the dictionary would be all zero); "
                             "use kernels of at least 2 pixels, or leave zero_mean off")

    @property
    def count(self) -> int | None:
        """The number of kernels the groups hold (None without groups)."""
        return None if self.sizes is None else sum(g[2] for g in self.sizes)

    def check_count(self, K: int, name: str) -> None:
        """ValueError naming ``name`` when its K kernels are not the groups' number."""
        if self.sizes is not None and K != self.count:
            raise ValueError(f"{name}: {K} kernels, but the kernel-size groups {self.sizes} hold {self.count}")

    def project(self, kernels: torch.Tensor) -> torch.Tensor:
        """Projection of (K, [C,] H, W) kernels (padded or cropped) onto C, cropped to
        (K, [C,] kh, kw) (multi-scale: each kernel onto its own support; module docstring)."""
        if self.sizes is None:
            return project_kernels(kernels, self.kernel_size, zero_mean=self.zero_mean, nonneg=self.nonneg)
        kh, kw = self.kernel_size
        if kernels.shape[-2] < kh or kernels.shape[-1] < kw:
            raise ValueError(f"kernels: spatial shape {tuple(kernels.shape[-2:])} is smaller than kernel_size "
                             f"{(kh, kw)}")
        self.check_count(kernels.shape[0], "kernels")
        mask = self.support(kernels)
        d = kernels[..., :kh, :kw] * mask
        if self.zero_mean:
            d = d - d.sum((-2, -1), keepdim=True) / mask.sum((-2, -1), keepdim=True) * mask
        if self.nonneg:
            d = d.clamp(min=0)
        return normalise_kernels(d)

    def support(self, like: torch.Tensor) -> torch.Tensor:
        """The kernels' supports as a 0/1 mask (K, 1…, kh, kw) in ``like``'s dtype and device
        (made once per device and dtype)."""
        key = (like.device, like.dtype, like.ndim)
        if key not in self._masks:
            kh, kw = self.kernel_size
            m = torch.zeros((self.count, kh, kw), dtype=torch.float64)
            k0 = 0
            for h, w, n in self.sizes:
                m[k0:k0 + n, :h, :w] = 1
                k0 += n
            self._masks[key] = m.reshape((self.count,) + (1,) * (like.ndim - 3) + (kh, kw)).to(like.device, like.dtype)
        return self._masks[key]


def kernel_constraint(kernel_size, *, zero_mean: bool = False, nonneg: bool = False) -> KernelConstraint:
    """The constraint set of kernels of ``kernel_size``: (kh, kw), or groups of several
    sizes ((kh₁, kw₁, n₁), (kh₂, kw₂, n₂), …) — SPORCO's ``dsz``/``DictSize`` of a
    multi-scale dictionary, whose (kh, kw, C, n) form is taken too (the channel count is then
    checked by the caller against the dictionary) — stored at the largest size."""
    ks = tuple(kernel_size) if isinstance(kernel_size, (tuple, list)) else kernel_size
    if isinstance(ks, tuple) and ks and all(isinstance(g, (tuple, list)) for g in ks):
        sizes = _check_sizes(ks)
        big = (max(g[0] for g in sizes), max(g[1] for g in sizes))
        return KernelConstraint(big, zero_mean=zero_mean, nonneg=nonneg, sizes=sizes)
    if not (isinstance(ks, tuple) and len(ks) == 2):
        raise ValueError(f"kernel_size: expected (kh, kw) or groups ((kh, kw, count), ...), got {kernel_size!r}")
    return KernelConstraint(ks, zero_mean=zero_mean, nonneg=nonneg)


def dictionary_constraint(D: torch.Tensor, dict_size=None, *, zero_mean: bool = False,
                          nonneg: bool = False) -> KernelConstraint:
    """The learners' constraint set for the initial dictionary D (K, [C,] kh, kw): kernels of
    D's size, or the groups ``dict_size`` (SPORCO's ``DictSize``; :func:`kernel_constraint`),
    checked against D: as many kernels, the channels of (kh, kw, C, n) groups D's, and D at
    least as large as the largest group (D is cropped to it by the projection, as SPORCO's)."""
    if dict_size is None:
        return KernelConstraint(tuple(D.shape[-2:]), zero_mean=zero_mean, nonneg=nonneg)
    cons = kernel_constraint(dict_size, zero_mean=zero_mean, nonneg=nonneg)
    cons.check_count(D.shape[0], "dictionary")
    C = D.shape[1] if D.ndim == 4 else 1
    for g in dict_size:
        if len(g) == 4 and g[2] != C:
            raise ValueError(f"dict_size: the group {tuple(g)} has {g[2]} channels, the dictionary {C}")
    kh, kw = cons.kernel_size
    if D.shape[-2] < kh or D.shape[-1] < kw:
        raise ValueError(f"dictionary: {D.shape[-2]}×{D.shape[-1]} kernels are smaller than the largest size "
                         f"{kh}×{kw} of dict_size; give the initial dictionary at that size")
    return cons


def _check_sizes(sizes) -> tuple[tuple[int, int, int], ...]:
    """Groups ((kh, kw, n), ...) or SPORCO's ((kh, kw, C, n), ...) as ((kh, kw, n), ...) of
    positive integers; ValueError naming ``sizes`` otherwise."""
    out = []
    for g in sizes:
        g = tuple(g) if isinstance(g, (tuple, list)) else (g,)
        if len(g) not in (3, 4) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in g):
            raise ValueError(f"sizes: expected groups (kh, kw, count) (or SPORCO's (kh, kw, channels, count)) of "
                             f"positive integers, got {g!r}")
        out.append((g[0], g[1], g[-1]))
    if not out:
        raise ValueError("sizes: expected at least one group (kh, kw, count)")
    return tuple(out)


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

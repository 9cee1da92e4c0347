"""Batches sized to the device's memory, and splitting a batch that runs out of it.

A CBPDN solve holds about :data:`MAPS_PER_IMAGE` coefficient maps (K, H, W) per image at
once (y, u and x double-buffered, the FFT input and spectrum, the FFT's and the y-step's
temporaries): the estimate before anything ran. On CUDA, :func:`measured_image_bytes` measures
it instead (the allocator's peak of two short solves, per image of their difference).
:func:`batch_size` divides the memory a :class:`MemoryBudget` allows by the bytes per image,
and :func:`solve_split` runs a solve over batches of that size, halving a batch that raises
a CUDA out-of-memory error and retrying its halves, so that nothing is lost (every image is
its own problem: the codes do not depend on the batch).

The budget is an object, not an environment variable: ``MemoryBudget(limit_bytes=…)`` caps
the bytes, and a subclass may override :meth:`MemoryBudget.free_bytes` (the tests force the
split path on the CPU that way).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

import torch

__all__ = ["MAPS_PER_IMAGE", "MemoryBudget", "batch_size", "image_bytes", "is_out_of_memory",
           "measured_image_bytes", "solve_split"]

#: coefficient maps (K, H, W) of the working dtype a solve holds per image at its peak
MAPS_PER_IMAGE = 14

T = TypeVar("T")


@dataclass(frozen=True)
class MemoryBudget:
    """The memory a batch may use on a device.

    ``limit_bytes``: a fixed cap (None: what :meth:`free_bytes` reports); ``fraction``: the
    share of the free memory a batch may take (the rest is left for the FFT plans, the
    allocator's fragmentation and other work)."""

    limit_bytes: int | None = None
    fraction: float = 0.7

    def __post_init__(self):
        if self.limit_bytes is not None and (isinstance(self.limit_bytes, bool) or int(self.limit_bytes) <= 0):
            raise ValueError(f"limit_bytes: expected a positive number of bytes, got {self.limit_bytes!r}")
        if not 0 < float(self.fraction) <= 1:
            raise ValueError(f"fraction: expected 0 < fraction ≤ 1, got {self.fraction!r}")

    def free_bytes(self, device: torch.device) -> int | None:
        """Free memory on ``device`` (CUDA: free device memory plus what the caching allocator
        holds unused; CPU: available physical memory), None when unknown."""
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
        try:
            return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return None

    def allowed_bytes(self, device: torch.device) -> int | None:
        """Bytes a batch may use: ``limit_bytes``, else ``fraction`` of the free memory."""
        if self.limit_bytes is not None:
            return int(self.limit_bytes)
        free = self.free_bytes(device)
        return None if free is None else int(free * float(self.fraction))


def image_bytes(maps_shape: Sequence[int], dtype: torch.dtype) -> int:
    """Peak bytes of one image's solve with coefficient maps of ``maps_shape`` (K, H, W)."""
    n = 1
    for s in maps_shape:
        n *= int(s)
    return MAPS_PER_IMAGE * n * torch.empty((), dtype=dtype).element_size()


def _cuda_peak(device: torch.device, run: Callable[[], object]) -> int:
    """Bytes allocated at the peak of ``run()`` on CUDA ``device`` above what was allocated before."""
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    run()
    torch.cuda.synchronize(device)
    return int(torch.cuda.max_memory_allocated(device) - base)


def measured_image_bytes(solve: Callable[[int], object], device: torch.device, small: int = 1, large: int = 3,
                         peak: Callable[[torch.device, Callable[[], object]], int] | None = None) -> int | None:
    """Peak bytes per image of ``solve(k)`` (a short solve of k images) on ``device``, measured:
    (peak(large) − peak(small)) / (large − small), so that what does not grow with the batch
    (the dictionary's DFT, FFT plans, compiled kernels) is left out. ``peak(device, run)``
    measures one run (default: the CUDA allocator's peak); None off CUDA without ``peak``, or
    when the measurement is not positive."""
    if peak is None:
        if device.type != "cuda":
            return None
        peak = _cuda_peak
    lo = peak(device, lambda: solve(small))
    hi = peak(device, lambda: solve(large))
    per = (hi - lo) // max(1, large - small)
    return int(per) if per > 0 else None


def batch_size(n: int, per_image: int, budget: MemoryBudget | None, device: torch.device) -> int:
    """Images per batch (1 … n) for ``n`` images of ``per_image`` bytes each under ``budget``
    (None: the default :class:`MemoryBudget`)."""
    allowed = (budget or MemoryBudget()).allowed_bytes(device)
    if allowed is None:
        return max(1, n)
    return max(1, min(n, allowed // max(1, per_image)))


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a device out-of-memory error (``torch.OutOfMemoryError``, of which
    ``torch.cuda.OutOfMemoryError`` is an alias)."""
    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    return oom is not None and isinstance(exc, oom)


def solve_split(solve: Callable[[int, int], T], n: int, batch: int,
                on_split: Callable[[int, int], None] | None = None) -> list[tuple[int, int, T]]:
    """Run ``solve(lo, hi)`` over [0, n) in batches of ``batch`` images; a batch that runs out
    of device memory is halved and its halves retried (a single image that does not fit
    re-raises). Returns (lo, hi, result) in order. ``on_split(lo, hi)`` is told of each split."""
    out: list[tuple[int, int, T]] = []
    todo = [(lo, min(n, lo + batch)) for lo in range(0, n, max(1, batch))][::-1]
    while todo:
        lo, hi = todo.pop()
        try:
            out.append((lo, hi, solve(lo, hi)))
        except Exception as exc:
            if not is_out_of_memory(exc) or hi - lo == 1:
                raise
            del exc
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if on_split is not None:
                on_split(lo, hi)
            mid = (lo + hi) // 2
            todo += [(mid, hi), (lo, mid)]
    return out

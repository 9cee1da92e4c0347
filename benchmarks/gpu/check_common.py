"""What the GPU check's section modules share: :class:`Skip`, the timer, peak memory."""

from __future__ import annotations

import time

import torch


class Skip(Exception):
    """A section that cannot or should not run here: ``raise Skip("why")``."""


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, fn) -> float:
    """Seconds ``fn()`` takes: CUDA events on CUDA, ``time.perf_counter`` elsewhere."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize(device)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak(device: torch.device) -> int | None:
    """torch.cuda.max_memory_allocated since the last :func:`reset_peak` (None off CUDA)."""
    return int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None

"""The memory-bandwidth floor of an ADMM iteration: bytes it must move, the device's copy
bandwidth, and a measured time against the floor (benchmarks/README.md: "Bandwidth floor").

:func:`admm_bytes_per_iteration` counts the array passes of one iteration (csc's fused CPU
formulation, or the torch loop's), :func:`memory_bandwidth` measures the copy bandwidth,
:func:`floor_report` combines them with measured milliseconds per iteration.
"""

from __future__ import annotations

import time

import numpy as np

from .runners import sync

__all__ = ["admm_bytes_per_iteration", "floor_report", "memory_bandwidth"]

def admm_bytes_per_iteration(images: int, height: int, width: int, kernels: int, dtype: str = "float32",
                             formulation: str = "fused") -> dict:
    r"""Bytes one ADMM iteration of CBPDN must move to and from memory, per array pass.

    Counts every read and write of an array of the iteration's size, assuming nothing
    stays in cache from one pass to the next (true for the benchmark sizes: a 256² map
    of 144 kernels is 38 MB in float32). With n = ``images``, K = ``kernels``,
    Wr = W//2 + 1, in real numbers of ``dtype``:

    * N = n·K·H·W: one spatial map (x, y, u or t);
    * F = 2·n·K·H·Wr ≈ N: one half spectrum (x̂);
    * Dk = 2·K·H·Wr ≈ N/n: the kernel DFTs D̂ (separate real and imaginary parts);
    * small = n·H·Wr·3: Ŝ and Σ_k|D̂_k|² (per image; negligible).

    ``formulation="fused"`` (csc's fused CPU back end, :mod:`csc.backends.fused`): forward FFT
    t → x̂ (read N, write F); x-step in place (read F and D̂ once per image, write F);
    inverse FFT x̂ → x (read F, write N); y-step with relaxation, shrinkage, dual
    update, next FFT input and residual sums (read x, y, u; write y, u, t: 6N). Total
    8N + 4F + n·Dk + small ≈ 13 passes over a map. The occasional t = y − u/f pass after
    an adaptive-ρ change (:func:`csc.backends.kernels.rescale_t`) is left out. The FFTs are
    counted as one read and one write each (the ideal: FFTW's large transforms make
    more passes), so this is a floor, not a model.

    ``formulation="torch"`` (the torch loop of :meth:`csc.ConvBPDN.solve`, one pass
    per elementwise operation, read and written as torch executes it): t = y − u (3N);
    rfft2 (N + F); the ``einsum`` Σ_k D̂_k x̂_k with its K×H×Wr complex temporary
    (read F + n·Dk, write F, read F); ``addcmul_`` x̂ += conj(D̂)·c (read F + n·Dk, write
    F); irfft2 (F + N); relaxation ``lerp`` (3N); v = a + u (3N); u = clamp(v) (2N);
    y = v − u (3N); five norms, each squared into scratch and summed (3N each), and
    the two differences x − y and y_prev − y (3N each): 21N; u /= ρ-factor (2N, every
    iteration with the default ``rho_period`` 1). About 48 passes.

    Returns ``{"bytes", "elements", "passes", "map_elements", "steps": [{"step", "read",
    "write"} in elements], ...}``; ``passes`` = elements / N.
    """
    if formulation not in ("fused", "torch"):
        raise ValueError(f"formulation: expected 'fused' or 'torch', got {formulation!r}")
    item = np.dtype(dtype).itemsize
    n, H, W, K = int(images), int(height), int(width), int(kernels)
    Wr = W // 2 + 1
    N = n * K * H * W
    F = 2 * n * K * H * Wr
    Dk = 2 * K * H * Wr
    small = 3 * n * H * Wr
    if formulation == "fused":
        steps = [
            ("rfft2 t → x̂", N, F),
            ("x-step in place (x̂, D̂ per image, Ŝ, Σ|D̂|²)", F + n * Dk + small, F),
            ("irfft2 x̂ → x", F, N),
            ("y-step: relaxation, shrinkage, dual, t = y − u, residual sums (x, y, u → y, u, t)", 3 * N, 3 * N),
        ]
    else:
        steps = [
            ("t = y − u", 2 * N, N),
            ("rfft2 t → x̂", N, F),
            ("einsum Σ_k D̂_k x̂_k (K×H×Wr temporary)", 2 * F + n * Dk, F),
            ("c = (Ŝ − Σ)/(ρ + Σ|D̂|²)", small, n * H * Wr * 2),
            ("x̂ += conj(D̂)·c (addcmul_)", F + n * Dk, F),
            ("irfft2 x̂ → x", F, N),
            ("relaxation a = lerp(y, x, α)", 2 * N, N),
            ("v = a + u", 2 * N, N),
            ("u = clamp(v, −τ, τ)", N, N),
            ("y = v − u", 2 * N, N),
            ("norms ‖x‖, ‖y‖, ‖u‖, ‖x − y‖, ‖y_prev − y‖ (square to scratch, sum; two differences)",
             14 * N, 7 * N),
            ("u /= ρ factor (adaptive ρ)", N, N),
        ]
    elements = sum(r + w for _, r, w in steps)
    return {
        "formulation": formulation, "images": n, "height": H, "width": W, "kernels": K, "dtype": str(dtype),
        "itemsize": item, "map_elements": N, "elements": elements, "bytes": elements * item,
        "passes": elements / N,
        "steps": [{"step": name, "read": r, "write": w} for name, r, w in steps],
    }


def memory_bandwidth(device: str = "cpu", mbytes: float = 256.0, repeats: int = 5,
                     threads: int | None = None) -> dict:
    """Copy bandwidth of ``device``: ``dst.copy_(src)`` of a ``mbytes`` MiB float32 tensor
    (torch's own threads on the CPU), best of ``repeats`` after one untimed copy, counted
    as one read plus one write (STREAM's convention: write-allocate traffic not
    counted). Returns ``{"gb_per_s", "bytes", "best_s", "all_s", "method", ...}``
    (GB = 10⁹ bytes)."""
    import torch

    saved = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        n = max(1, int(mbytes * 2 ** 20) // 4)
        src = torch.ones(n, dtype=torch.float32, device=device)
        dst = torch.empty_like(src)
        dst.copy_(src)
        sync(device)
        times = []
        for _ in range(max(1, int(repeats))):
            t0 = time.perf_counter()
            dst.copy_(src)
            sync(device)
            times.append(time.perf_counter() - t0)
        nbytes = 2 * n * 4
        best = min(times)
        return {"gb_per_s": nbytes / best / 1e9, "bytes": nbytes, "best_s": best, "all_s": times,
                "device": str(device), "threads": torch.get_num_threads() if not str(device).startswith("cuda") else None,
                "method": f"torch copy_ of a {n * 4 / 2 ** 20:.0f} MiB float32 tensor, read + write counted, "
                          f"best of {len(times)}"}
    finally:
        torch.set_num_threads(saved)


def floor_report(images: int, height: int, width: int, kernels: int, dtype: str, gb_per_s: float,
                 ms_per_iter: dict[str, float] | None = None) -> dict:
    """The bandwidth floor of one iteration (:func:`admm_bytes_per_iteration`, fused
    formulation) at ``gb_per_s``, with measured/floor for each entry of ``ms_per_iter``
    (e.g. ``{"csc": 52.9, "sporco": 352.7}``) and the bandwidth each would imply."""
    fused = admm_bytes_per_iteration(images, height, width, kernels, dtype, "fused")
    loop = admm_bytes_per_iteration(images, height, width, kernels, dtype, "torch")
    floor_ms = 1e3 * fused["bytes"] / (gb_per_s * 1e9)
    out = {"bytes_per_iter": fused["bytes"], "passes": fused["passes"],
           "torch_loop_bytes_per_iter": loop["bytes"], "torch_loop_passes": loop["passes"],
           "bandwidth_gb_per_s": gb_per_s, "floor_ms_per_iter": floor_ms}
    for name, ms in (ms_per_iter or {}).items():
        out[f"{name}_over_floor"] = ms / floor_ms
        out[f"{name}_effective_gb_per_s"] = fused["bytes"] / (ms * 1e-3) / 1e9
    return out

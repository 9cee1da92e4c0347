"""One timed solve of each library on the benchmark problem, and what is compared afterwards.

:func:`sporco_construct` and :func:`csc_construct` build the two solvers of a ``--problem``
from the same SPORCO option dict (csc's through ``from_sporco``); :func:`time_sporco` and
:func:`time_csc` time construction and solve separately (csc's solve including its per-solve
precomputation), :func:`code_difference` compares the codes, :func:`summarise` turns solve
times into milliseconds per iteration. :func:`configure_threads` gives torch and SPORCO's
pyFFTW the same thread count, :func:`csc_backend` says what csc runs on a device.
"""

from __future__ import annotations

import gc
import statistics
import time

import numpy as np

from .problem import PLANNER_EFFORT, PROBLEMS, bench_mask, is_colour

__all__ = [
    "code_difference", "configure_threads", "csc_backend", "csc_construct", "csc_images", "fftw_flags",
    "sporco_construct", "summarise", "sync", "time_csc", "time_sporco",
]

def configure_threads(threads: int, planner: str = PLANNER_EFFORT) -> None:
    """Give torch and SPORCO's pyFFTW the same number of threads; set FFTW's planner."""
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover
        pass
    try:
        from sporco import fft as sp_fft

        sp_fft.pyfftw_threads = threads
        sp_fft.pyfftw_planner_effort = planner
    except ImportError:  # pragma: no cover
        pass


def sync(device: str) -> None:
    """Wait for the device's queued work (CUDA); nothing on the CPU."""
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def fftw_flags(pair) -> tuple[str, ...] | None:
    """The FFTW planner flags of a :class:`csc.backends.fused.FFTPair`'s forward plan
    (``FFTW_MEASURE``, ``FFTW_DESTROY_INPUT`` …); None when the pair uses scipy.fft."""
    if getattr(pair, "backend", None) != "fftw":
        return None
    return tuple(pair._fwd.flags)


class _MaskedSolve:
    """A csc ConvBPDNMaskDcpl whose ``solve(S)`` applies :func:`bench_mask` to every image."""

    def __init__(self, solver):
        self.solver = solver

    def solve(self, S):
        return self.solver.solve(S, mask=bench_mask(tuple(S.shape[-2:])))


def sporco_construct(D: np.ndarray, s: np.ndarray, lmbda: float, opt: dict, problem: dict | None = None):
    """SPORCO solver object (ConvBPDN, or ``problem``'s class) for the SPORCO-layout
    dictionary D and image(s) s."""
    from sporco.admm import cbpdn as sp_cbpdn

    if problem is None:
        return sp_cbpdn.ConvBPDN(D, s, lmbda, sp_cbpdn.ConvBPDN.Options(opt))
    cls = getattr(sp_cbpdn, PROBLEMS[problem["name"]][0])
    if problem["name"] == "colour":
        return cls(D, s, lmbda, cls.Options(opt), dimK=0)
    if problem["name"] == "joint":
        return cls(D, s, lmbda, problem["mu"], opt=cls.Options(opt), dimK=0)
    if problem["name"] == "mask-dcpl":
        return cls(D, s, lmbda, W=bench_mask(s.shape[:2]).astype(s.dtype), opt=cls.Options(opt))
    return cls(D, s, lmbda, problem["mu"], opt=cls.Options(opt))


def csc_construct(D: np.ndarray, lmbda: float, opt: dict, device: str, backend: str = "auto",
                  record_stats: bool = False, problem: dict | None = None):
    """csc ConvBPDN (or ``problem``'s solver) with the same options (converted by
    ``from_sporco``) on ``backend`` (``auto``, ``numba`` or ``torch``: :class:`csc.CBPDNOptions`)."""
    import csc

    _, solver, options = PROBLEMS["cbpdn" if problem is None else problem["name"]]
    opts = getattr(csc, options).from_sporco(opt, device=device, record_stats=record_stats, backend=backend)
    D = csc.from_sporco_layout(D, "dictionary")
    if problem is None or problem["name"] == "colour":
        return csc.ConvBPDN(D, lmbda, opts)
    if problem["name"] == "mask-dcpl":
        return _MaskedSolve(csc.ConvBPDNMaskDcpl(D, lmbda, opts))
    return getattr(csc, solver)(D, lmbda, problem["mu"], opts)


def csc_backend(device: str = "cpu", backend: str = "auto") -> dict:
    """What csc's solve runs on ``device`` with ``backend``: ``{"backend": "numba" | "compiled" | "torch",
    "fft": "fftw" | "scipy" | "torch"}`` (the fused back end's FFTs: :mod:`csc.backends.fused`), and
    off the CPU (or for ``backend="compiled"``) ``"compile"``: whether ``torch.compile`` builds
    csc's kernels there, or why not (:func:`csc.backends.compiled.compile_unavailable_reason`)."""
    import torch

    import csc
    from csc.backends import fused as _fused
    from csc.backends.registry import select_backend

    dev = torch.device(device)
    out = {}
    if dev.type != "cpu" or backend == "compiled":  # the CPU's auto choice is numba: no compile probe there
        from csc.backends.compiled import compile_unavailable_reason

        reason = compile_unavailable_reason(dev)
        out["compile"] = "available" if reason is None else f"unavailable: {reason}"
    name = select_backend(backend, dev)
    return {"backend": name, "fft": _fused._fft_backend() if name == "numba" else "torch", **out}


def csc_images(s: np.ndarray, dtype: str, device: str, problem: dict | None = None):
    """The image(s) as a tensor of the working dtype, already on the device; a colour
    image in SPORCO's (H, W, C) layout becomes csc's (C, H, W)."""
    import torch

    if is_colour(problem):
        s = np.moveaxis(s, -1, -3)
    return torch.from_numpy(np.ascontiguousarray(s, dtype=dtype)).to(device)


def time_sporco(D, s, lmbda, opt, problem: dict | None = None) -> dict:
    """One SPORCO solve: construction and solve timed separately."""
    gc.collect()
    t0 = time.perf_counter()
    solver = sporco_construct(D, s, lmbda, opt, problem)
    t1, c1 = time.perf_counter(), time.process_time()
    y = solver.solve()
    t2, c2 = time.perf_counter(), time.process_time()
    return {"setup_s": t1 - t0, "solve_s": t2 - t1, "solve_cpu_s": c2 - c1, "iterations": int(solver.k),
            "codes": y}


def time_csc(D, S, lmbda, opt, device, backend: str = "auto", problem: dict | None = None) -> dict:
    """One csc solve: construction and solve timed separately (the solve includes csc's
    per-solve precomputation: kernel DFTs, conj(D̂)Ŝ, Σ|D̂|²)."""
    gc.collect()
    sync(device)
    t0 = time.perf_counter()
    solver = csc_construct(D, lmbda, opt, device, backend, problem=problem)
    sync(device)
    t1, c1 = time.perf_counter(), time.process_time()
    res = solver.solve(S)
    sync(device)
    t2, c2 = time.perf_counter(), time.process_time()
    return {"setup_s": t1 - t0, "solve_s": t2 - t1, "solve_cpu_s": c2 - c1,
            "iterations": res.iterations.reshape(-1).tolist(), "codes": res.codes}


def code_difference(codes_csc, y_sp: np.ndarray) -> dict:
    """Difference of csc's codes (B, K, H, W) from SPORCO's y (H, W, 1, B, K)."""
    import csc

    y = csc.to_sporco_layout(codes_csc.detach().cpu().numpy(), "codes").reshape(y_sp.shape)
    y = y.astype(np.float64)
    ref = y_sp.astype(np.float64)
    d = np.abs(y - ref)
    ref_max = float(np.abs(ref).max())
    ref_l2 = float(np.linalg.norm(ref))
    return {
        "max_abs_diff_over_max_abs": float(d.max()) / ref_max if ref_max else float(d.max()),
        "rel_l2_diff": float(np.linalg.norm(y - ref)) / ref_l2 if ref_l2 else float(np.linalg.norm(y)),
        "support_mismatch_fraction": float(np.mean((y != 0) != (ref != 0))),
        "nonzeros_sporco": int(np.count_nonzero(ref)),
        "nonzeros_csc": int(np.count_nonzero(y)),
    }


def summarise(times: list[float], iters: int) -> dict:
    ms = [1e3 * t / iters for t in times]
    return {"ms_per_iter_best": min(ms), "ms_per_iter_median": statistics.median(ms), "ms_per_iter_all": ms}

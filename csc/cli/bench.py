"""Speed and memory of csc.ConvBPDN against SPORCO's admm.cbpdn.ConvBPDN, same problem.

The comparison behind ``csc bench`` and ``benchmarks/compare_sporco.py`` (a thin wrapper
of :func:`main`), and the helpers the other benchmark scripts share: the problem
(:func:`single_image`, :func:`batch_images`, :func:`random_dictionary`,
:func:`sporco_options`), the machine record (:func:`machine_info`) and the
memory-bandwidth floor of an ADMM iteration (:func:`admm_bytes_per_iteration`,
:func:`memory_bandwidth`, :func:`floor_report`). Needs SPORCO (the ``dev`` extra:
``pip install sporco``) for everything but the machine record and the floor.

Single-image mode (default): one natural image (SPORCO's bundled barbara, central
``--size`` crop, highpass part of ``sporco.signal.tikhonov_filter(img, 5.0, 16)``) and a
seeded random unit-norm dictionary of ``--kernels`` kernels of ``--ksize``², solved by
both libraries with identical options (SPORCO's defaults, AutoRho on, ``RelStopTol`` 0 so
that both run exactly ``--iters`` iterations, statistics off: SPORCO ``FastSolve``, csc
``record_stats=False``). Reports milliseconds per ADMM iteration (total solve time /
iterations, best and median of ``--repeats`` timed runs after one warm-up run each),
peak memory of each (measured in fresh child processes, see :func:`_mem_child`), the
difference between the two codes and csc's time against the memory-bandwidth floor.

``--problem mask-dcpl`` compares csc.ConvBPDNMaskDcpl with SPORCO's on a random 0/1 mask
(:func:`bench_mask`, 30% missing). ``--problem elastic-net``, ``grad-reg`` or ``l1l1-grd`` (with ``--mu``) compares
csc.ConvElasticNet, csc.ConvBPDNGradReg or csc.ConvL1L1Grd with SPORCO's class of the same
name, on the same problem and option dict (whose unstated options take each class's own
defaults: for ``l1l1-grd`` ρ₀ = 1 and AutoRho's period 10, multiplier 2, ratio 10).

Batch mode (``--batch B``): B different ``--crop``² crops of barbara; csc solves them as
one batch, SPORCO one by one. Reports image-iterations per second of each.

Run ``csc bench --help``, ``python -m csc.cli.bench --help`` or ``python
benchmarks/compare_sporco.py --help`` for the options (declared in
:mod:`csc.cli.bench_args`, so that building the ``csc`` parser does not import this module).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from csc.cli.bench_args import add_arguments

__all__ = [
    "BARBARA", "PLANNER_EFFORT", "SPORCO_MISSING",
    "load_barbara", "highpass", "central_crop", "single_image", "crop_offsets", "batch_images",
    "random_dictionary", "sporco_options", "have_sporco", "require_sporco",
    "PROBLEMS", "problem_of", "configure_threads", "sync", "fftw_flags", "sporco_construct", "csc_construct", "csc_images", "csc_backend",
    "time_sporco", "time_csc", "code_difference", "summarise", "measure_memory", "export_wisdom",
    "machine_info", "warn_if_busy", "write_json", "admm_bytes_per_iteration", "memory_bandwidth", "floor_report",
    "run_single", "run_batch", "print_table", "add_arguments", "check_arguments", "parse_args", "run", "main",
]

BARBARA = "barbara.png"
TIKHONOV_LMBDA = 5.0
TIKHONOV_NPD = 16
PLANNER_EFFORT = "FFTW_MEASURE"  # SPORCO's default (sporco.fft.pyfftw_planner_effort)


# --------------------------------------------------------------------------- problem
def load_barbara() -> np.ndarray:
    """SPORCO's bundled barbara, grayscale, scaled to [0, 1], float64."""
    from sporco import util as sp_util

    return sp_util.ExampleImages(scaled=True, gray=True).image(BARBARA).astype(np.float64)


def highpass(img: np.ndarray) -> np.ndarray:
    """Highpass part of SPORCO's Tikhonov filter (λ = 5, 16 pixels of padding)."""
    from sporco import signal as sp_signal

    return sp_signal.tikhonov_filter(img, TIKHONOV_LMBDA, TIKHONOV_NPD)[1]


def central_crop(img: np.ndarray, size: int) -> np.ndarray:
    H, W = img.shape
    if size > min(H, W):
        raise ValueError(f"--size {size}: barbara is only {H}×{W}")
    r0, c0 = (H - size) // 2, (W - size) // 2
    return img[r0:r0 + size, c0:c0 + size]


def single_image(size: int) -> np.ndarray:
    """The single-image problem: central size² crop of barbara, then its highpass part."""
    return highpass(central_crop(load_barbara(), size))


COLOUR_IMAGE = "kodim23.png"


def colour_image(size: int) -> np.ndarray:
    """The colour problem, SPORCO layout (size, size, 3): central size² crop of SPORCO's
    kodim23 (colour, [0, 1]), each channel highpass-filtered on its own."""
    from sporco import util as sp_util

    img = sp_util.ExampleImages(scaled=True, gray=False).image(COLOUR_IMAGE).astype(np.float64)
    H, W = img.shape[:2]
    if size > min(H, W):
        raise ValueError(f"--size {size}: {COLOUR_IMAGE} is only {H}×{W}")
    r0, c0 = (H - size) // 2, (W - size) // 2
    crop = img[r0:r0 + size, c0:c0 + size]
    return np.stack([highpass(np.ascontiguousarray(crop[..., c])) for c in range(3)], -1)


def random_colour_dictionary(ksize: int, K: int, seed: int, channels: int = 3) -> np.ndarray:
    """SPORCO-layout (ksize, ksize, C, K) Gaussian multi-channel dictionary, unit ℓ2 norm per
    kernel over its channels."""
    D = np.random.RandomState(seed).randn(ksize, ksize, channels, K)
    return D / np.sqrt(np.sum(D ** 2, axis=(0, 1, 2), keepdims=True))


def crop_offsets(shape: tuple[int, int], crop: int, n: int, seed: int) -> list[tuple[int, int]]:
    """n distinct top-left corners of crop² windows, drawn with a seeded generator."""
    H, W = shape
    if crop > min(H, W):
        raise ValueError(f"--crop {crop}: barbara is only {H}×{W}")
    avail = (H - crop + 1) * (W - crop + 1)
    if n > avail:
        raise ValueError(f"--batch {n}: only {avail} distinct {crop}² crops exist")
    rng = np.random.default_rng(seed)
    seen: set[tuple[int, int]] = set()
    out = []
    while len(out) < n:
        rc = (int(rng.integers(0, H - crop + 1)), int(rng.integers(0, W - crop + 1)))
        if rc not in seen:
            seen.add(rc)
            out.append(rc)
    return out


def batch_images(crop: int, n: int, seed: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """(n, crop, crop): n different crops of barbara, each highpass-filtered on its own."""
    img = load_barbara()
    offs = crop_offsets(img.shape, crop, n, seed)
    return np.stack([highpass(img[r:r + crop, c:c + crop]) for r, c in offs]), offs


def random_dictionary(ksize: int, K: int, seed: int) -> np.ndarray:
    """SPORCO-layout (ksize, ksize, K) Gaussian dictionary, unit ℓ2 norm per kernel.

    ``RandomState(seed).randn`` draws the same numbers as ``np.random.seed(12345);
    randn(12, 12, 144)``, the dictionary of the reference SPORCO 0.2.2 run (barbara,
    central 128² highpass crop, λ = 0.05, 50 iterations of ``admm.cbpdn.ConvBPDN``).
    """
    D = np.random.RandomState(seed).randn(ksize, ksize, K)
    return D / np.sqrt(np.sum(D ** 2, axis=(0, 1), keepdims=True))


def sporco_options(iters: int, dtype: str) -> dict:
    """One SPORCO option dict, given to SPORCO as is and to csc through from_sporco."""
    return {
        "MaxMainIter": int(iters),
        "RelStopTol": 0.0,  # with AbsStopTol 0: never converged, exactly MaxMainIter iterations
        "AbsStopTol": 0.0,
        "FastSolve": True,  # no iteration statistics (csc: record_stats=False)
        "Verbose": False,
        "DataType": np.dtype(dtype).type,
        "AutoRho": {"Enabled": True},  # SPORCO's default, stated
    }


SPORCO_MISSING = ("the comparison needs SPORCO (the reference implementation), which is not installed: "
                  "pip install sporco==0.2.2.post1 (or pip install -e '.[dev]')")


def have_sporco() -> bool:
    """True when SPORCO can be imported (without importing it)."""
    return importlib.util.find_spec("sporco") is not None


def require_sporco() -> None:
    """Raise RuntimeError with the install command when SPORCO is absent."""
    if not have_sporco():
        raise RuntimeError(SPORCO_MISSING)


# --------------------------------------------------------------------------- runners
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


#: ``--problem`` → (SPORCO class, csc class, csc options class) names: the coding problems
#: compared (``problem`` arguments below: None or ``{"name": …, "mu": μ}``; ``mu`` is
#: SPORCO's argument of the same name, GradWeight its default 1)
PROBLEMS = {
    "cbpdn": ("ConvBPDN", "ConvBPDN", "CBPDNOptions"),
    "elastic-net": ("ConvElasticNet", "ConvElasticNet", "CBPDNOptions"),
    "grad-reg": ("ConvBPDNGradReg", "ConvBPDNGradReg", "GradRegOptions"),
    "l1l1-grd": ("ConvL1L1Grd", "ConvL1L1Grd", "L1L1GrdOptions"),
    "mask-dcpl": ("ConvBPDNMaskDcpl", "ConvBPDNMaskDcpl", "MaskDcplOptions"),  # with bench_mask's W
    "colour": ("ConvBPDN", "ConvBPDN", "CBPDNOptions"),  # multi-channel dictionary, colour image
    "joint": ("ConvBPDNJoint", "ConvBPDNJoint", "CBPDNJointOptions"),  # ℓ1 + μℓ2,1, colour image
}
#: problems on a colour image (SPORCO: ``dimK=0``, channels on axis 2)
COLOUR_PROBLEMS = ("colour", "joint")


def is_colour(problem: dict | None) -> bool:
    return problem is not None and problem["name"] in COLOUR_PROBLEMS


def problem_data(args) -> tuple[np.ndarray, np.ndarray]:
    """(SPORCO-layout dictionary, single image) of the parsed problem: barbara and
    (ksize, ksize, K) kernels; for ``colour`` kodim23 (H, W, 3) and (ksize, ksize, 3, K)
    kernels, for ``joint`` kodim23 and single-channel kernels."""
    name = getattr(args, "problem", "cbpdn")
    if name == "colour":
        return random_colour_dictionary(args.ksize, args.kernels, args.seed), colour_image(args.size)
    s = colour_image(args.size) if name == "joint" else single_image(args.size)
    return random_dictionary(args.ksize, args.kernels, args.seed), s


def problem_of(args) -> dict | None:
    """The ``problem`` argument for the parsed ``--problem`` and ``--mu`` (None: CBPDN)."""
    name = getattr(args, "problem", "cbpdn")
    return None if name == "cbpdn" else {"name": name, "mu": float(args.mu)}


def bench_mask(shape) -> np.ndarray:
    """The mask W of ``--problem mask-dcpl``: 0/1 per pixel of an (H, W) image, 30% missing
    (fixed seed), the same for SPORCO and csc."""
    return (np.random.RandomState(0).rand(*shape) >= 0.3).astype(np.float64)


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


# --------------------------------------------------------------------------- memory
def _proc_status() -> dict[str, int]:
    """VmRSS and VmHWM of this process, in kB."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


def _reset_hwm() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux ≥ 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _mem_child(spec: dict) -> dict:
    """Peak memory of one solve, measured in this (fresh) process (Linux).

    1. Import, load the problem, and run a tiny solve (16² image, 2 kernels of 4², one
       iteration) so that lazily loaded code (FFT libraries, thread pools) is resident.
       ``base`` = VmRSS now.
    2. Reset the kernel's peak-RSS counter (``/proc/self/clear_refs`` ← 5, which sets VmHWM
       to the current RSS) and run a warm-up solve of ``warmup_iters`` iterations (FFTW
       planning with its temporary copies, plan caches). ``warm`` = VmRSS after it, with
       the solver and its result freed.
    3. Reset again and run the measured solve (construction + ``iters`` iterations).

    Reported (MB): ``peak_mb`` = VmHWM after step 3 − ``base``: the resident memory the
    solver needs on top of the loaded process, caches it keeps between solves included
    (the headline figure); ``solve_peak_mb`` = VmHWM − ``warm``: what one more solve adds
    to a warmed-up process; ``retained_mb`` = ``warm`` − ``base``: what stays resident
    between solves (pyFFTW's plan cache with its internal arrays, allocator pools);
    ``first_solve_peak_mb``: step 2's peak − ``base``, FFTW planning included.
    Without a writable clear_refs only ``peak_mb`` is given (the peak since ``base``,
    warm-up included) and ``hwm_reset`` is False.
    """
    impl, dtype, device = spec["impl"], spec["dtype"], spec["device"]
    data = np.load(spec["problem"])
    D, S = data["D"].astype(dtype), data["S"].astype(dtype)  # S: (B, H, W), or (B, H, W, C) colour
    tiny_D = np.random.RandomState(0).randn(*((4, 4) + D.shape[2:-1] + (2,))).astype(dtype)
    tiny_S = np.random.RandomState(1).randn(*((1, 16, 16) + S.shape[3:])).astype(dtype)
    cuda = impl == "csc" and device.startswith("cuda")
    run = _mem_solver(spec, D, S)
    if cuda:
        import torch

    def settle():
        gc.collect()
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()

    out = run(1, tiny_D, tiny_S)
    del out
    settle()
    base = _proc_status()["VmRSS"]
    reset = _reset_hwm()
    out = run(spec["warmup_iters"])
    del out
    settle()
    st = _proc_status()
    first_peak, warm = st["VmHWM"], st["VmRSS"]
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        dev_before = torch.cuda.memory_allocated()
    if reset:
        _reset_hwm()
    out = run(spec["iters"])
    after = _proc_status()
    res = _mem_figures(spec, D, S, base, reset, first_peak, warm, after)
    if cuda:
        res["device_peak_mb"] = (torch.cuda.max_memory_allocated() - dev_before) / 2 ** 20
        res["device_reserved_peak_mb"] = torch.cuda.max_memory_reserved() / 2 ** 20
    del out
    return res


def _mem_solver(spec: dict, D: np.ndarray, S: np.ndarray) -> Callable:
    """``run(iters, D=D, S=S)``: one solve of ``spec["impl"]`` (SPORCO one image, csc the batch).

    Sets the implementation's threads (and SPORCO's FFTW planner effort and wisdom) first.
    """
    impl, dtype, device = spec["impl"], spec["dtype"], spec["device"]
    lmbda, threads, problem = spec["lmbda"], spec["threads"], spec.get("coding_problem")
    if impl == "sporco":
        from sporco import fft as sp_fft
        import pyfftw

        sp_fft.pyfftw_threads = threads
        sp_fft.pyfftw_planner_effort = spec["planner"]
        if spec.get("wisdom") and os.path.exists(spec["wisdom"]):
            with open(spec["wisdom"]) as f:
                pyfftw.import_wisdom(tuple(w.encode("latin-1") for w in json.load(f)["wisdom"]))

        def run(iters, D=D, S=S):
            solver = sporco_construct(D, S[0], lmbda, sporco_options(iters, dtype), problem)  # one image at a time
            solver.solve()
            return solver
        return run
    import torch

    torch.set_num_threads(threads)

    def run(iters, D=D, S=S):
        X = csc_images(S if S.shape[0] > 1 else S[0], dtype, device, problem)
        res = csc_construct(D, lmbda, sporco_options(iters, dtype), device, spec.get("backend", "auto"),
                            problem=problem).solve(X)
        sync(device)
        return res
    return run


def _mem_figures(spec: dict, D: np.ndarray, S: np.ndarray, base: int, reset: bool, first_peak: int, warm: int,
                 after: dict) -> dict:
    """The host-memory figures (MB) of :func:`_mem_child` from its VmRSS/VmHWM readings (kB)."""
    impl, dtype, device = spec["impl"], spec["dtype"], spec["device"]
    n_img = 1 if impl == "sporco" else int(S.shape[0])
    res = {
        "impl": impl, "dtype": dtype, "device": device, "iters": spec["iters"], "images": n_img,
        "code_array_mb": n_img * D.shape[-1] * S[0].size * D.itemsize / 2 ** 20,
        "hwm_reset": reset,
        "malloc_mmap_threshold": os.environ.get("MALLOC_MMAP_THRESHOLD_"),
        "base_rss_mb": base / 1024,
        "peak_mb": (after["VmHWM"] - base) / 1024,
    }
    if reset:
        res.update({
            "solve_peak_mb": (after["VmHWM"] - warm) / 1024,
            "retained_mb": (warm - base) / 1024,
            "first_solve_peak_mb": (first_peak - base) / 1024,
        })
    return res


MMAP_THRESHOLD = 128 * 1024  # glibc's initial M_MMAP_THRESHOLD, made fixed


def measure_memory(impl, dtype, device, D, S, lmbda, iters, warmup_iters, threads, tmpdir, wisdom,
                   allocator: str = "mmap", backend: str = "auto", coding_problem: dict | None = None) -> dict:
    """Run :func:`_mem_child` in a fresh Python process and return its figures.

    ``allocator="mmap"`` (default) starts the child with ``MALLOC_MMAP_THRESHOLD_`` fixed at
    128 KiB: glibc then serves every large block (arrays, tensors, FFTW buffers) by mmap
    and unmaps it when freed, so RSS follows the live data and the peak does not depend on
    glibc's dynamic threshold and heap fragmentation (with the default allocator, freed
    blocks up to 32 MiB stay in the heap and the peak of a later solve varies by ±20%
    with the history of the process). ``"glibc"`` leaves the allocator as it is.
    """
    problem = os.path.join(tmpdir, "problem.npz")
    np.savez(problem, D=D, S=S)
    spec = {"impl": impl, "dtype": dtype, "device": device, "problem": problem, "lmbda": lmbda,
            "iters": iters, "warmup_iters": warmup_iters, "threads": threads, "planner": PLANNER_EFFORT,
            "wisdom": wisdom, "backend": backend, "coding_problem": coding_problem}
    env = dict(os.environ)
    if allocator == "mmap":
        env["MALLOC_MMAP_THRESHOLD_"] = str(MMAP_THRESHOLD)
    proc = subprocess.run([sys.executable, "-m", "csc.cli.bench", "--_mem-child", json.dumps(spec)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        err = proc.stderr.strip()[-2000:]
        print(f"memory measurement of {impl} {dtype} failed:\n{err}", file=sys.stderr, flush=True)
        return {"error": err}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _memory(args, impl, dtype, device, D, S, tmpdir, wisdom) -> dict:
    return measure_memory(impl, dtype, device, D, S, args.lmbda, args.mem_iters, args.mem_warmup_iters,
                          args.threads, tmpdir, wisdom, args.mem_allocator, args.backend, problem_of(args))


def export_wisdom(tmpdir: str) -> str | None:
    """Save this process's FFTW wisdom so the memory children skip FFTW_MEASURE planning."""
    try:
        import pyfftw
    except ImportError:  # pragma: no cover
        return None
    path = os.path.join(tmpdir, "wisdom.json")
    with open(path, "w") as f:
        json.dump({"wisdom": [w.decode("latin-1") for w in pyfftw.export_wisdom()]}, f)
    return path


# --------------------------------------------------------------------------- machine
def _cpu_info() -> dict:
    info: dict = {}
    model, phys = None, set()
    try:
        with open("/proc/cpuinfo") as f:
            cur = {}
            for line in f:
                if ":" in line:
                    k, v = (x.strip() for x in line.split(":", 1))
                    cur[k] = v
                    if k == "model name" and model is None:
                        model = v
                elif cur:
                    phys.add((cur.get("physical id"), cur.get("core id")))
                    cur = {}
            if cur:
                phys.add((cur.get("physical id"), cur.get("core id")))
    except OSError:
        pass
    info["cpu_model"] = model or platform.processor()
    info["logical_cpus"] = os.cpu_count()
    info["cpus_available"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if phys and (None, None) not in phys:
        info["physical_cores"] = len(phys)
    try:
        with open("/proc/meminfo") as f:
            info["mem_total_gb"] = round(int(f.readline().split()[1]) / 2 ** 20, 1)
    except OSError:
        pass
    return info


def machine_info(device: str = "cpu", threads: int | None = None, planner: str | None = PLANNER_EFFORT,
                 backend: str = "auto") -> dict:
    """The machine record of every benchmark JSON: platform, CPU model and counts, memory,
    versions (torch, numpy, scipy, sporco, pyfftw, numba, csc), torch threads, pyFFTW
    threads and planner, whether torch has MKL, csc's back end on ``device`` with
    ``backend`` (:func:`csc_backend`), the device name, the git commit (and whether the
    tracked tree differs from it) and the load averages now."""
    import torch

    info: dict = {"platform": platform.platform(), "python": platform.python_version()}
    info.update(_cpu_info())
    versions = {"torch": torch.__version__, "numpy": np.__version__}
    for mod in ("sporco", "pyfftw", "scipy", "numba", "csc"):
        try:
            versions[mod] = getattr(__import__(mod), "__version__", "?")
        except ImportError:
            versions[mod] = None
    info["versions"] = versions
    info["torch_threads"] = torch.get_num_threads()
    info["pyfftw_threads"] = threads
    info["fftw_planner_effort"] = planner
    info["torch_mkl"] = torch.backends.mkl.is_available()
    try:
        info["csc_backend"] = csc_backend(device, backend)
    except (ValueError, RuntimeError) as exc:
        info["csc_backend"] = {"error": str(exc)}
    if str(device).startswith("cuda"):
        info["device_name"] = torch.cuda.get_device_name(torch.device(device))
        info["cuda"] = torch.version.cuda
    else:
        info["device_name"] = f"cpu: {info['cpu_model']}"
    try:
        root = Path(__file__).resolve().parent.parent
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True)
        if head.returncode == 0:
            info["git_commit"] = head.stdout.strip()
            info["git_dirty"] = bool(dirty.stdout.strip())
    except OSError:
        pass
    info["loadavg"] = list(os.getloadavg())
    info["date"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return info


def warn_if_busy(threshold: float = 0.5) -> float:
    """Print a warning when the 1-minute load average is ≥ threshold; return it."""
    busy = os.getloadavg()[0]
    if busy >= threshold:
        print(f"WARNING: load average {busy:.2f} before the run: other processes are using the CPU, so the "
              "timings are not representative (threaded torch/FFTW suffer most; see benchmarks/README.md)",
              flush=True)
    return busy


def write_json(path: str | os.PathLike, report: dict) -> Path:
    """Write ``report`` as indented JSON (numpy scalars and arrays converted), folders made."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=_json_default))
    return path


# ------------------------------------------------------------------- bandwidth floor
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


# --------------------------------------------------------------------------- modes
def run_single(args, tmpdir: str) -> dict:
    D, s = problem_data(args)
    pr = problem_of(args)
    rows = []
    for dtype in args.dtypes:
        opt = sporco_options(args.iters, dtype)
        warm = sporco_options(args.warmup_iters, dtype)
        Dd, sd = D.astype(dtype), s.astype(dtype)
        S = csc_images(sd, dtype, args.device, pr)
        print(f"[{dtype}] warm-up ({args.warmup_iters} iterations each) ...", flush=True)
        w_sp = time_sporco(Dd, sd, args.lmbda, warm, pr)
        w_cs = time_csc(Dd, S, args.lmbda, warm, args.device, args.backend, pr)
        sp_runs, cs_runs = [], []
        for r in range(args.repeats):  # interleaved, so that a change of machine load hits both
            for prev in sp_runs + cs_runs:  # keep only the latest codes (memory)
                prev.pop("codes", None)
            sp_runs.append(time_sporco(Dd, sd, args.lmbda, opt, pr))
            cs_runs.append(time_csc(Dd, S, args.lmbda, opt, args.device, args.backend, pr))
            print(f"[{dtype}] repeat {r + 1}/{args.repeats}: SPORCO {1e3 * sp_runs[-1]['solve_s'] / args.iters:.1f}"
                  f" ms/iter, csc {1e3 * cs_runs[-1]['solve_s'] / args.iters:.1f} ms/iter", flush=True)
        for run in sp_runs:
            if run["iterations"] != args.iters:
                raise RuntimeError(f"SPORCO ran {run['iterations']} iterations, expected {args.iters}")
        for run in cs_runs:
            if any(i != args.iters for i in run["iterations"]):
                raise RuntimeError(f"csc ran {run['iterations']} iterations, expected {args.iters}")
        diff = code_difference(cs_runs[-1]["codes"], sp_runs[-1]["codes"])
        sp = summarise([x["solve_s"] for x in sp_runs], args.iters)
        sp["setup_s"] = [x["setup_s"] for x in sp_runs]
        sp["solve_s"] = [x["solve_s"] for x in sp_runs]
        sp["solve_cpu_s"] = [x["solve_cpu_s"] for x in sp_runs]
        sp["warmup_total_s"] = w_sp["setup_s"] + w_sp["solve_s"]
        cs = summarise([x["solve_s"] for x in cs_runs], args.iters)
        cs["setup_s"] = [x["setup_s"] for x in cs_runs]
        cs["solve_s"] = [x["solve_s"] for x in cs_runs]
        cs["solve_cpu_s"] = [x["solve_cpu_s"] for x in cs_runs]
        cs["warmup_total_s"] = w_cs["setup_s"] + w_cs["solve_s"]
        e2e_sp = [1e3 * (x["setup_s"] + x["solve_s"]) / args.iters for x in sp_runs]
        e2e_cs = [1e3 * (x["setup_s"] + x["solve_s"]) / args.iters for x in cs_runs]
        row = {
            "dtype": dtype,
            "sporco": sp,
            "csc": cs,
            "ratio_best": sp["ms_per_iter_best"] / cs["ms_per_iter_best"],
            "ratio_median": sp["ms_per_iter_median"] / cs["ms_per_iter_median"],
            "ratio_end_to_end_median": statistics.median(e2e_sp) / statistics.median(e2e_cs),
            "codes_difference": diff,
        }
        if args.bandwidth is not None and not is_colour(pr):  # the floor model is single-channel CBPDN's
            row["floor"] = floor_report(1, args.size, args.size, args.kernels, dtype, args.bandwidth["gb_per_s"],
                                        {"csc": cs["ms_per_iter_best"], "sporco": sp["ms_per_iter_best"]})
        rows.append(row)
        del sp_runs, cs_runs, S
        gc.collect()
    if not args.no_memory:
        _add_memory(args, rows, D, s[None], tmpdir, ("sporco", "csc"))
    K, H, W = args.kernels, args.size, args.size
    for row in rows:
        row["code_array_mb"] = K * H * W * np.dtype(row["dtype"]).itemsize / 2 ** 20
    return {"mode": "single", "results": rows}


def _add_memory(args, rows: list[dict], D: np.ndarray, images: np.ndarray, tmpdir: str,
                keys: tuple[str, str]) -> None:
    """Add each row's ``memory``: SPORCO (CPU) and csc (``args.device``) peaks under ``keys``.

    Each figure comes from a fresh child process (:func:`_memory`), with the FFTW wisdom
    the timed runs gathered.
    """
    wisdom = export_wisdom(tmpdir)
    for row in rows:
        dtype = row["dtype"]
        print(f"[{dtype}] peak memory (fresh child process per measurement) ...", flush=True)
        row["memory"] = {keys[0]: _memory(args, "sporco", dtype, "cpu", D, images, tmpdir, wisdom),
                         keys[1]: _memory(args, "csc", dtype, args.device, D, images, tmpdir, wisdom)}


def run_batch(args, tmpdir: str) -> dict:
    D = random_dictionary(args.ksize, args.kernels, args.seed)
    imgs, offsets = batch_images(args.crop, args.batch, args.seed)
    B, it = args.batch, args.iters
    pr = problem_of(args)
    rows = []
    for dtype in args.dtypes:
        opt = sporco_options(it, dtype)
        warm = sporco_options(args.warmup_iters, dtype)
        Dd, Sd = D.astype(dtype), imgs.astype(dtype)
        S = csc_images(Sd, dtype, args.device)
        print(f"[{dtype}] warm-up ({args.warmup_iters} iterations each) ...", flush=True)
        time_sporco(Dd, Sd[0], args.lmbda, warm, pr)
        time_csc(Dd, S, args.lmbda, warm, args.device, args.backend, pr)
        sp_setup, sp_solve, cs_solve, cs_setup = [], [], [], []
        diffs = []
        for r in range(args.repeats):
            setups, solves, ys = [], [], []
            for b in range(B):
                run = time_sporco(Dd, Sd[b], args.lmbda, opt, pr)
                if run["iterations"] != it:
                    raise RuntimeError(f"SPORCO ran {run['iterations']} iterations, expected {it}")
                setups.append(run["setup_s"])
                solves.append(run["solve_s"])
                if r == args.repeats - 1:
                    ys.append(run["codes"])
                del run
            sp_setup.append(sum(setups))
            sp_solve.append(sum(solves))
            run = time_csc(Dd, S, args.lmbda, opt, args.device, args.backend, pr)
            if any(i != it for i in run["iterations"]):
                raise RuntimeError(f"csc ran {run['iterations']} iterations, expected {it}")
            cs_setup.append(run["setup_s"])
            cs_solve.append(run["solve_s"])
            print(f"[{dtype}] repeat {r + 1}/{args.repeats}: SPORCO one by one {B * it / sp_solve[-1]:.1f} "
                  f"image-it/s, csc batch {B * it / cs_solve[-1]:.1f} image-it/s", flush=True)
            if r == args.repeats - 1:
                diffs = [code_difference(run["codes"][b:b + 1], ys[b]) for b in range(B)]
            del run, ys
        rate = lambda ts: {"best": B * it / min(ts), "median": B * it / statistics.median(ts), "all": [B * it / t for t in ts]}
        sp_e2e = [a + b for a, b in zip(sp_setup, sp_solve)]
        cs_e2e = [a + b for a, b in zip(cs_setup, cs_solve)]
        row = {
            "dtype": dtype,
            "sporco_one_by_one": {"image_iters_per_s": rate(sp_solve), "image_iters_per_s_end_to_end": rate(sp_e2e),
                                  "setup_s": sp_setup, "solve_s": sp_solve},
            "csc_batch": {"image_iters_per_s": rate(cs_solve), "image_iters_per_s_end_to_end": rate(cs_e2e),
                          "setup_s": cs_setup, "solve_s": cs_solve},
            "ratio_best": min(sp_solve) / min(cs_solve),
            "ratio_median": statistics.median(sp_solve) / statistics.median(cs_solve),
            "ratio_end_to_end_median": statistics.median(sp_e2e) / statistics.median(cs_e2e),
            "codes_difference_worst": {k: max(d[k] for d in diffs) for k in
                                       ("max_abs_diff_over_max_abs", "rel_l2_diff", "support_mismatch_fraction")},
        }
        if args.bandwidth is not None:
            # per iteration of the whole batch (csc) and of B one-image iterations (SPORCO)
            row["floor"] = floor_report(B, args.crop, args.crop, args.kernels, dtype, args.bandwidth["gb_per_s"],
                                        {"csc": 1e3 * min(cs_solve) / it, "sporco": 1e3 * min(sp_solve) / it})
        rows.append(row)
        del S
        gc.collect()
    if not args.no_memory:
        _add_memory(args, rows, D, imgs, tmpdir, ("sporco_one_image", "csc_batch"))
    return {"mode": "batch", "crop_offsets": offsets, "results": rows}


# --------------------------------------------------------------------------- output
def _fmt_mem(m: dict | None, key: str = "peak_mb") -> str:
    if not m:
        return "-"
    if "error" in m:
        return "error"
    s = f"{m[key]:.0f}"
    if "device_peak_mb" in m:
        s += f" (+{m['device_peak_mb']:.0f} dev)"
    return s


def _fmt_floor(row: dict) -> str:
    f = row.get("floor")
    return "-" if not f else f"{f['csc_over_floor']:.2f} ({f['floor_ms_per_iter']:.2f} ms)"


def print_table(report: dict) -> None:
    rows = report["results"]
    if report["mode"] == "single":
        hdr = ["dtype", "SPORCO ms/it", "csc ms/it", "ratio", "SPORCO setup ms",
               "SPORCO peak MB", "csc peak MB", "max|Δ|/max|y|", "support Δ", "csc/floor"]
        lines = []
        for r in rows:
            mem = r.get("memory", {})
            lines.append([
                r["dtype"],
                f"{r['sporco']['ms_per_iter_best']:.2f} / {r['sporco']['ms_per_iter_median']:.2f}",
                f"{r['csc']['ms_per_iter_best']:.2f} / {r['csc']['ms_per_iter_median']:.2f}",
                f"{r['ratio_best']:.2f} / {r['ratio_median']:.2f}",
                f"{1e3 * statistics.median(r['sporco']['setup_s']):.1f}",
                _fmt_mem(mem.get("sporco")), _fmt_mem(mem.get("csc")),
                f"{r['codes_difference']['max_abs_diff_over_max_abs']:.1e}",
                f"{r['codes_difference']['support_mismatch_fraction']:.1e}",
                _fmt_floor(r),
            ])
        note = ("ms/it and ratio: best / median of the repeats; ratio = SPORCO / csc (> 1: csc faster); "
                "peak MB: peak resident memory of a solve above the loaded process (README: Memory); "
                "csc/floor: csc's best time over the memory-bandwidth floor (README: bandwidth floor)")
    else:
        hdr = ["dtype", "SPORCO img-it/s", "csc batch img-it/s", "ratio", "ratio end-to-end",
               "SPORCO peak MB (1 img)", "csc peak MB (batch)", "max|Δ|/max|y|", "csc/floor"]
        lines = []
        for r in rows:
            mem = r.get("memory", {})
            sp, cs = r["sporco_one_by_one"]["image_iters_per_s"], r["csc_batch"]["image_iters_per_s"]
            lines.append([
                r["dtype"], f"{sp['best']:.1f} / {sp['median']:.1f}", f"{cs['best']:.1f} / {cs['median']:.1f}",
                f"{r['ratio_best']:.2f} / {r['ratio_median']:.2f}", f"{r['ratio_end_to_end_median']:.2f}",
                _fmt_mem(mem.get("sporco_one_image")), _fmt_mem(mem.get("csc_batch")),
                f"{r['codes_difference_worst']['max_abs_diff_over_max_abs']:.1e}",
                _fmt_floor(r),
            ])
        note = ("image-iterations per second, best / median of the repeats; ratio = csc / SPORCO (> 1: csc faster); "
                "end-to-end includes SPORCO's per-image object construction")
    widths = [max(len(h), *(len(l[i]) for l in lines)) for i, h in enumerate(hdr)]
    fmt = " | ".join(f"{{:<{w}}}" for w in widths)
    print()
    print(fmt.format(*hdr))
    print("-+-".join("-" * w for w in widths))
    for l in lines:
        print(fmt.format(*l))
    print(note)


def check_arguments(args: argparse.Namespace) -> None:
    """Validate the parsed options (ValueError) and fill in the default thread count."""
    if min(args.iters, args.repeats, args.warmup_iters, args.mem_iters, args.mem_warmup_iters) < 1:
        raise ValueError("--iters, --repeats, --warmup-iters, --mem-iters and --mem-warmup-iters must be >= 1")
    if args.batch is not None and args.batch < 1:
        raise ValueError("--batch must be >= 1")
    if args.batch is not None and getattr(args, "problem", "cbpdn") in COLOUR_PROBLEMS:
        raise ValueError(f"--problem {args.problem}: single-image mode only (no --batch)")
    if min(args.size, args.kernels, args.ksize, args.crop) < 1 or args.ksize > (args.size if args.batch is None
                                                                                 else args.crop):
        raise ValueError("--size, --kernels, --ksize and --crop must be >= 1, and --ksize at most the image side")
    if args.lmbda < 0:
        raise ValueError("--lmbda must be >= 0")
    if getattr(args, "mu", 0.0) < 0:
        raise ValueError("--mu must be >= 0")
    if args.threads is None:
        args.threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if args.threads < 1:
        raise ValueError("--threads must be >= 1")
    from csc.runtime.device import resolve_device

    resolve_device(args.device, arg="--device")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arguments(p)
    p.add_argument("--_mem-child", dest="mem_child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.mem_child is None:
        try:
            check_arguments(args)
        except ValueError as exc:
            p.error(str(exc))
    return args


def run(args: argparse.Namespace) -> dict:
    """Run the comparison described by ``args`` (:func:`add_arguments`, checked by
    :func:`check_arguments`): print the table, write ``args.json`` when set, return the
    report. Restores torch's thread count and SPORCO's FFTW settings afterwards."""
    require_sporco()
    import torch
    from sporco import fft as sp_fft

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no CUDA device")
    saved = (torch.get_num_threads(), sp_fft.pyfftw_threads, sp_fft.pyfftw_planner_effort)
    configure_threads(args.threads)
    try:
        if getattr(args, "peers", None):
            return _run_peers(args)
        return _run(args)
    finally:
        torch.set_num_threads(saved[0])
        sp_fft.pyfftw_threads, sp_fft.pyfftw_planner_effort = saved[1:]


def _run(args: argparse.Namespace) -> dict:
    import torch

    settings = {k: v for k, v in vars(args).items() if k not in ("mem_child", "json", "func", "command")}
    settings["sporco_options"] = dict(sporco_options(args.iters, "float64"), DataType="each of dtypes")
    settings["image"] = (f"{BARBARA}, central {args.size}² crop" if args.batch is None else
                         f"{BARBARA}, {args.batch} seeded {args.crop}² crops") + \
        f", highpass of tikhonov_filter(img, {TIKHONOV_LMBDA}, {TIKHONOV_NPD}), grayscale scaled to [0, 1]"
    settings["dictionary"] = f"RandomState({args.seed}).randn({args.ksize}, {args.ksize}, {args.kernels}), unit ℓ2 norm"
    if getattr(args, "problem", "cbpdn") in COLOUR_PROBLEMS:
        settings["image"] = (f"{COLOUR_IMAGE}, central {args.size}² crop, colour, each channel the highpass of "
                             f"tikhonov_filter(channel, {TIKHONOV_LMBDA}, {TIKHONOV_NPD})")
        if args.problem == "colour":
            settings["dictionary"] = (f"RandomState({args.seed}).randn({args.ksize}, {args.ksize}, 3, {args.kernels}), "
                                      "unit ℓ2 norm per kernel over its channels")
    report = {"machine": machine_info(args.device, args.threads, PLANNER_EFFORT, args.backend), "settings": settings,
              "loadavg_start": os.getloadavg(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    warn_if_busy()
    be = report["machine"]["csc_backend"]
    print(f"{report['machine']['device_name']}; torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"pyFFTW threads {args.threads}, planner {PLANNER_EFFORT}; csc back end {be.get('backend')} "
          f"(FFT: {be.get('fft')})" + (f"; torch.compile {be['compile']}" if "compile" in be else ""), flush=True)
    args.bandwidth = None
    if args.bandwidth_mb > 0:
        args.bandwidth = memory_bandwidth(args.device, args.bandwidth_mb, threads=args.threads)
        report["bandwidth"] = args.bandwidth
        print(f"memory bandwidth ({args.bandwidth['method']}): {args.bandwidth['gb_per_s']:.1f} GB/s", flush=True)
    try:
        with tempfile.TemporaryDirectory(prefix="csc-bench-") as tmpdir:
            body = run_batch(args, tmpdir) if args.batch is not None else run_single(args, tmpdir)
    finally:
        del args.bandwidth
    report.update(body)
    report["loadavg_end"] = os.getloadavg()
    print_table(report)
    if args.json:
        print(f"wrote {write_json(args.json, report)}")
    return report


def _run_peers(args: argparse.Namespace) -> dict:
    """``--peers``: time to 1e-2, 1e-3, 1e-4 of F* (a csc ADMM solve of 4 × --iters iterations) per engine."""
    from csc.cli import bench_peers as bp

    bp.single_thread()
    img = sporco_image_crop(args.size)
    D = np.random.RandomState(args.seed).randn(args.kernels, args.ksize, args.ksize)
    D /= np.sqrt((D ** 2).sum(axis=(1, 2), keepdims=True))
    settings = {k: v for k, v in vars(args).items() if k not in ("mem_child", "json", "func", "command")}
    settings["image"] = f"{BARBARA}, central {args.size}² crop, highpass of tikhonov_filter(img, {TIKHONOV_LMBDA}, {TIKHONOV_NPD})"
    settings["dictionary"] = f"RandomState({args.seed}).randn({args.kernels}, {args.ksize}, {args.ksize}), unit ℓ2 norm"
    report = {"machine": machine_info("cpu", 1, PLANNER_EFFORT, "numba"), "settings": settings,
              "loadavg_start": os.getloadavg(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    L = bp.lipschitz(D, img.shape)
    fstar = bp.reference_objective(img, D, args.lmbda, 4 * args.iters)
    fnn = (bp.reference_objective(img, D, args.lmbda, 4 * args.iters, nonneg=True)
           if {"dicodile", "csc-admm-nn"} & set(args.peers) else None)
    peers = {"fstar": fstar, "fstar_nonneg": fnn, "engines": {}}
    for name in args.peers:
        try:
            tm, obj = bp.run_engine(name, img, D, args.lmbda, args.iters, L, on=args.peers_on)
        except ImportError as exc:
            print(f"{name}: skipped ({exc})", flush=True)
            peers["engines"][name] = {"skipped": str(exc)}
            continue
        reached = bp.time_to(tm, obj, fnn if name in ("dicodile", "csc-admm-nn") else fstar)
        peers["engines"][name] = {"time": tm.tolist(), "objective": obj.tolist(), "reached": reached}
        print(f"{name}: {len(tm)} iterations in {tm[-1]:.2f} s; to 1e-2/1e-3/1e-4: "
              + ", ".join("—" if v is None else f"{v['time']:.2f} s" for v in reached.values()), flush=True)
    report["peers"] = peers
    report["loadavg_end"] = os.getloadavg()
    if args.json:
        print(f"wrote {write_json(args.json, report)}")
    return report


def sporco_image_crop(size: int) -> np.ndarray:
    """The highpass of barbara's central size² crop, float64 (the single-image mode's image)."""
    from sporco import signal, util

    img = util.ExampleImages().image(BARBARA, scaled=True, gray=True)
    h0, w0 = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
    _, sh = signal.tikhonov_filter(img[h0:h0 + size, w0:w0 + size], TIKHONOV_LMBDA, TIKHONOV_NPD)
    return np.ascontiguousarray(sh, dtype=np.float64)


def main(argv=None) -> dict | None:
    """``python -m csc.cli.bench`` / benchmarks/compare_sporco.py: parse, run, return the report."""
    args = parse_args(argv)
    if args.mem_child is not None:
        print(json.dumps(_mem_child(json.loads(args.mem_child))))
        return None
    if not have_sporco():
        raise SystemExit(f"error: {SPORCO_MISSING}")
    try:
        return run(args)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


if __name__ == "__main__":
    main()

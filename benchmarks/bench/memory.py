"""Peak memory of one solve of each library, each measured in a fresh child process (Linux).

:func:`measure_memory` starts ``python -m benchmarks.bench --_mem-child SPEC`` (the checkout's
root on its ``PYTHONPATH``, glibc's mmap threshold fixed unless ``allocator="glibc"``); the
child runs :func:`_mem_child`, which reads its own VmRSS/VmHWM around a warm-up and a measured
solve (see its docstring for the figures). :func:`export_wisdom` hands the timed runs' FFTW
plans to the children so that they skip FFTW_MEASURE planning.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from .problem import PLANNER_EFFORT, problem_of, sporco_options
from .runners import csc_construct, csc_images, sporco_construct, sync

__all__ = ["MMAP_THRESHOLD", "export_wisdom", "measure_memory"]

#: the checkout's root: the memory children import ``benchmarks.bench`` from it
ROOT = Path(__file__).resolve().parents[2]

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
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    if allocator == "mmap":
        env["MALLOC_MMAP_THRESHOLD_"] = str(MMAP_THRESHOLD)
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench", "--_mem-child", json.dumps(spec)],
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

#!/usr/bin/env python
"""Speed and memory of csc.ConvBPDN against SPORCO's admm.cbpdn.ConvBPDN, same problem.

Single-image mode (default): one natural image (SPORCO's bundled barbara, central
``--size`` crop, highpass part of ``sporco.signal.tikhonov_filter(img, 5.0, 16)``) and a
seeded random unit-norm dictionary of ``--kernels`` kernels of ``--ksize``², solved by
both libraries with identical options (SPORCO's defaults, AutoRho on, ``RelStopTol`` 0 so
that both run exactly ``--iters`` iterations, statistics off: SPORCO ``FastSolve``, csc
``record_stats=False``). Reports milliseconds per ADMM iteration (total solve time /
iterations, best and median of ``--repeats`` timed runs after one warm-up run each),
peak memory of each (measured in fresh child processes, see :func:`_mem_child`) and the
difference between the two codes.

Batch mode (``--batch B``): B different ``--crop``² crops of barbara; csc solves them as
one batch, SPORCO one by one. Reports image-iterations per second of each.

Run ``python benchmarks/compare_sporco.py --help``; benchmarks/README.md describes the
method.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

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

    ``RandomState(seed).randn`` draws the same numbers as SPEC §1's
    ``np.random.seed(12345); randn(12, 12, 144)``.
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


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def sporco_construct(D: np.ndarray, s: np.ndarray, lmbda: float, opt: dict):
    """SPORCO ConvBPDN object for the SPORCO-layout dictionary D and image(s) s."""
    from sporco.admm import cbpdn as sp_cbpdn

    return sp_cbpdn.ConvBPDN(D, s, lmbda, sp_cbpdn.ConvBPDN.Options(opt))


def csc_construct(D: np.ndarray, lmbda: float, opt: dict, device: str):
    """csc ConvBPDN with the same options (converted by CBPDNOptions.from_sporco)."""
    import csc

    opts = csc.CBPDNOptions.from_sporco(opt, device=device, record_stats=False)
    return csc.ConvBPDN(csc.from_sporco_layout(D, "dictionary"), lmbda, opts)


def csc_images(s: np.ndarray, dtype: str, device: str):
    """The image(s) as a tensor of the working dtype, already on the device."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(s, dtype=dtype)).to(device)


def time_sporco(D, s, lmbda, opt) -> dict:
    """One SPORCO solve: construction and solve timed separately."""
    gc.collect()
    t0 = time.perf_counter()
    solver = sporco_construct(D, s, lmbda, opt)
    t1, c1 = time.perf_counter(), time.process_time()
    y = solver.solve()
    t2, c2 = time.perf_counter(), time.process_time()
    return {"setup_s": t1 - t0, "solve_s": t2 - t1, "solve_cpu_s": c2 - c1, "iterations": int(solver.k),
            "codes": y}


def time_csc(D, S, lmbda, opt, device) -> dict:
    """One csc solve: construction and solve timed separately (the solve includes csc's
    per-solve precomputation: kernel DFTs, conj(D̂)Ŝ, Σ|D̂|²)."""
    gc.collect()
    _sync(device)
    t0 = time.perf_counter()
    solver = csc_construct(D, lmbda, opt, device)
    _sync(device)
    t1, c1 = time.perf_counter(), time.process_time()
    res = solver.solve(S)
    _sync(device)
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
    D, S = data["D"].astype(dtype), data["S"].astype(dtype)  # S: (B, H, W)
    lmbda = spec["lmbda"]
    threads = spec["threads"]
    tiny_D = np.random.RandomState(0).randn(4, 4, 2).astype(dtype)
    tiny_S = np.random.RandomState(1).randn(1, 16, 16).astype(dtype)
    cuda = impl == "csc" and device.startswith("cuda")
    if impl == "sporco":
        from sporco import fft as sp_fft
        import pyfftw

        sp_fft.pyfftw_threads = threads
        sp_fft.pyfftw_planner_effort = spec["planner"]
        if spec.get("wisdom") and os.path.exists(spec["wisdom"]):
            with open(spec["wisdom"]) as f:
                pyfftw.import_wisdom(tuple(w.encode("latin-1") for w in json.load(f)["wisdom"]))

        def run(iters, D=D, S=S):
            solver = sporco_construct(D, S[0], lmbda, sporco_options(iters, dtype))  # one image at a time
            solver.solve()
            return solver
    else:
        import torch

        torch.set_num_threads(threads)

        def run(iters, D=D, S=S):
            X = csc_images(S if S.shape[0] > 1 else S[0], dtype, device)
            res = csc_construct(D, lmbda, sporco_options(iters, dtype), device).solve(X)
            _sync(device)
            return res

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
    if cuda:
        res["device_peak_mb"] = (torch.cuda.max_memory_allocated() - dev_before) / 2 ** 20
        res["device_reserved_peak_mb"] = torch.cuda.max_memory_reserved() / 2 ** 20
    del out
    return res


MMAP_THRESHOLD = 128 * 1024  # glibc's initial M_MMAP_THRESHOLD, made fixed


def measure_memory(impl, dtype, device, D, S, lmbda, iters, warmup_iters, threads, tmpdir, wisdom,
                   allocator: str = "mmap") -> dict:
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
            "wisdom": wisdom}
    env = dict(os.environ)
    if allocator == "mmap":
        env["MALLOC_MMAP_THRESHOLD_"] = str(MMAP_THRESHOLD)
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--_mem-child", json.dumps(spec)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        err = proc.stderr.strip()[-2000:]
        print(f"memory measurement of {impl} {dtype} failed:\n{err}", file=sys.stderr, flush=True)
        return {"error": err}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _memory(args, impl, dtype, device, D, S, tmpdir, wisdom) -> dict:
    return measure_memory(impl, dtype, device, D, S, args.lmbda, args.mem_iters, args.mem_warmup_iters,
                          args.threads, tmpdir, wisdom, args.mem_allocator)


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
def machine_info(device: str, threads: int) -> dict:
    import torch

    info: dict = {"platform": platform.platform(), "python": platform.python_version()}
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
    versions = {"torch": torch.__version__, "numpy": np.__version__}
    for mod in ("sporco", "pyfftw", "scipy", "csc"):
        try:
            versions[mod] = getattr(__import__(mod), "__version__", "?")
        except ImportError:
            versions[mod] = None
    info["versions"] = versions
    info["torch_threads"] = torch.get_num_threads()
    info["pyfftw_threads"] = threads
    info["fftw_planner_effort"] = PLANNER_EFFORT
    info["torch_mkl"] = torch.backends.mkl.is_available()
    if device.startswith("cuda"):
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
    return info


# --------------------------------------------------------------------------- modes
def run_single(args, tmpdir: str) -> dict:
    D = random_dictionary(args.ksize, args.kernels, args.seed)
    s = single_image(args.size)
    rows = []
    for dtype in args.dtypes:
        opt = sporco_options(args.iters, dtype)
        warm = sporco_options(args.warmup_iters, dtype)
        Dd, sd = D.astype(dtype), s.astype(dtype)
        S = csc_images(sd, dtype, args.device)
        print(f"[{dtype}] warm-up ({args.warmup_iters} iterations each) ...", flush=True)
        w_sp = time_sporco(Dd, sd, args.lmbda, warm)
        w_cs = time_csc(Dd, S, args.lmbda, warm, args.device)
        sp_runs, cs_runs = [], []
        for r in range(args.repeats):  # interleaved, so that a change of machine load hits both
            for prev in sp_runs + cs_runs:  # keep only the latest codes (memory)
                prev.pop("codes", None)
            sp_runs.append(time_sporco(Dd, sd, args.lmbda, opt))
            cs_runs.append(time_csc(Dd, S, args.lmbda, opt, args.device))
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
        rows.append(row)
        del sp_runs, cs_runs, S
        gc.collect()
    if not args.no_memory:
        wisdom = export_wisdom(tmpdir)
        for row in rows:
            dtype = row["dtype"]
            print(f"[{dtype}] peak memory (fresh child process per measurement) ...", flush=True)
            row["memory"] = {"sporco": _memory(args, "sporco", dtype, "cpu", D, s[None], tmpdir, wisdom),
                             "csc": _memory(args, "csc", dtype, args.device, D, s[None], tmpdir, wisdom)}
    K, H, W = args.kernels, args.size, args.size
    for row in rows:
        row["code_array_mb"] = K * H * W * np.dtype(row["dtype"]).itemsize / 2 ** 20
    return {"mode": "single", "results": rows}


def run_batch(args, tmpdir: str) -> dict:
    D = random_dictionary(args.ksize, args.kernels, args.seed)
    imgs, offsets = batch_images(args.crop, args.batch, args.seed)
    B, it = args.batch, args.iters
    rows = []
    for dtype in args.dtypes:
        opt = sporco_options(it, dtype)
        warm = sporco_options(args.warmup_iters, dtype)
        Dd, Sd = D.astype(dtype), imgs.astype(dtype)
        S = csc_images(Sd, dtype, args.device)
        print(f"[{dtype}] warm-up ({args.warmup_iters} iterations each) ...", flush=True)
        time_sporco(Dd, Sd[0], args.lmbda, warm)
        time_csc(Dd, S, args.lmbda, warm, args.device)
        sp_setup, sp_solve, cs_solve, cs_setup = [], [], [], []
        diffs = []
        for r in range(args.repeats):
            setups, solves, ys = [], [], []
            for b in range(B):
                run = time_sporco(Dd, Sd[b], args.lmbda, opt)
                if run["iterations"] != it:
                    raise RuntimeError(f"SPORCO ran {run['iterations']} iterations, expected {it}")
                setups.append(run["setup_s"])
                solves.append(run["solve_s"])
                if r == args.repeats - 1:
                    ys.append(run["codes"])
                del run
            sp_setup.append(sum(setups))
            sp_solve.append(sum(solves))
            run = time_csc(Dd, S, args.lmbda, opt, args.device)
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
        rows.append(row)
        del S
        gc.collect()
    if not args.no_memory:
        wisdom = export_wisdom(tmpdir)
        for row in rows:
            dtype = row["dtype"]
            print(f"[{dtype}] peak memory (fresh child process per measurement) ...", flush=True)
            row["memory"] = {
                "sporco_one_image": _memory(args, "sporco", dtype, "cpu", D, imgs, tmpdir, wisdom),
                "csc_batch": _memory(args, "csc", dtype, args.device, D, imgs, tmpdir, wisdom),
            }
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


def print_table(report: dict) -> None:
    rows = report["results"]
    if report["mode"] == "single":
        hdr = ["dtype", "SPORCO ms/it", "csc ms/it", "ratio", "SPORCO setup ms",
               "SPORCO peak MB", "csc peak MB", "max|Δ|/max|y|", "support Δ"]
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
            ])
        note = ("ms/it and ratio: best / median of the repeats; ratio = SPORCO / csc (> 1: csc faster); "
                "peak MB: peak resident memory of a solve above the loaded process (README: Memory)")
    else:
        hdr = ["dtype", "SPORCO img-it/s", "csc batch img-it/s", "ratio", "ratio end-to-end",
               "SPORCO peak MB (1 img)", "csc peak MB (batch)", "max|Δ|/max|y|"]
        lines = []
        for r in rows:
            mem = r.get("memory", {})
            sp, cs = r["sporco_one_by_one"]["image_iters_per_s"], r["csc_batch"]["image_iters_per_s"]
            lines.append([
                r["dtype"], f"{sp['best']:.1f} / {sp['median']:.1f}", f"{cs['best']:.1f} / {cs['median']:.1f}",
                f"{r['ratio_best']:.2f} / {r['ratio_median']:.2f}", f"{r['ratio_end_to_end_median']:.2f}",
                _fmt_mem(mem.get("sporco_one_image")), _fmt_mem(mem.get("csc_batch")),
                f"{r['codes_difference_worst']['max_abs_diff_over_max_abs']:.1e}",
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


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--size", type=int, default=256, help="side of the central crop of barbara (single-image mode)")
    p.add_argument("--kernels", type=int, default=144, help="number of kernels K")
    p.add_argument("--ksize", type=int, default=12, help="kernel side")
    p.add_argument("--lmbda", type=float, default=0.05, help="regularisation weight λ")
    p.add_argument("--iters", type=int, default=50, help="ADMM iterations of each timed solve (fixed: RelStopTol 0)")
    p.add_argument("--repeats", type=int, default=3, help="timed solves per implementation and dtype")
    p.add_argument("--warmup-iters", type=int, default=5,
                   help="iterations of the untimed warm-up solve (FFTW planning, plan caches)")
    p.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    p.add_argument("--device", default="cpu", help="csc's device: cpu or cuda[:n] (SPORCO is CPU only)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for torch and pyFFTW (default: every CPU this process may run on)")
    p.add_argument("--seed", type=int, default=12345, help="seed of the dictionary (and of the batch crops)")
    p.add_argument("--batch", type=int, default=None, metavar="B",
                   help="batch mode: B different crops, csc as one batch vs SPORCO one by one")
    p.add_argument("--crop", type=int, default=128, help="crop side in batch mode")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurements")
    p.add_argument("--mem-iters", type=int, default=3,
                   help="iterations of the memory-measured solve (the peak is reached in the first)")
    p.add_argument("--mem-warmup-iters", type=int, default=1, help="iterations of the memory child's warm-up solve")
    p.add_argument("--mem-allocator", choices=["mmap", "glibc"], default="mmap",
                   help="memory children: 'mmap' fixes glibc's mmap threshold at 128 KiB so that RSS "
                        "follows the live data; 'glibc' keeps the default allocator")
    p.add_argument("--json", type=str, default=None, metavar="PATH", help="write the full report here")
    p.add_argument("--_mem-child", dest="mem_child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.mem_child is None:
        if min(args.iters, args.repeats, args.warmup_iters, args.mem_iters, args.mem_warmup_iters) < 1:
            p.error("--iters, --repeats, --warmup-iters, --mem-iters and --mem-warmup-iters must be >= 1")
        if args.batch is not None and args.batch < 1:
            p.error("--batch must be >= 1")
        if args.threads is None:
            args.threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return args


def main(argv=None) -> dict | None:
    args = parse_args(argv)
    if args.mem_child is not None:
        print(json.dumps(_mem_child(json.loads(args.mem_child))))
        return None
    configure_threads(args.threads)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device")
    settings = {k: v for k, v in vars(args).items() if k not in ("mem_child", "json")}
    settings["sporco_options"] = dict(sporco_options(args.iters, "float64"), DataType="each of dtypes")
    settings["image"] = (f"{BARBARA}, central {args.size}² crop" if args.batch is None else
                         f"{BARBARA}, {args.batch} seeded {args.crop}² crops") + \
        f", highpass of tikhonov_filter(img, {TIKHONOV_LMBDA}, {TIKHONOV_NPD}), grayscale scaled to [0, 1]"
    settings["dictionary"] = f"RandomState({args.seed}).randn({args.ksize}, {args.ksize}, {args.kernels}), unit ℓ2 norm"
    report = {"machine": machine_info(args.device, args.threads), "settings": settings,
              "loadavg_start": os.getloadavg(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    busy = os.getloadavg()[0]
    if busy >= 0.5:
        print(f"WARNING: load average {busy:.2f} before the run: other processes are using the CPU, so the "
              "timings are not representative (threaded torch/FFTW suffer most; see benchmarks/README.md)",
              flush=True)
    print(f"{report['machine']['device_name']}; torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"pyFFTW threads {args.threads}, planner {PLANNER_EFFORT}", flush=True)
    with tempfile.TemporaryDirectory(prefix="csc-bench-") as tmpdir:
        body = run_batch(args, tmpdir) if args.batch is not None else run_single(args, tmpdir)
    report.update(body)
    report["loadavg_end"] = os.getloadavg()
    print_table(report)
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, default=_json_default))
        print(f"wrote {path}")
    return report


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

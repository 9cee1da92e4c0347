#!/usr/bin/env python
"""Memory-bandwidth floor of a CBPDN ADMM iteration, and what each optimisation bought.

For one problem (``--batch`` × ``--size``² barbara highpass crops, ``--kernels`` random
``--ksize``² kernels, λ = 0.05, the options of ``csc bench``) and each dtype:

1. **Bandwidth.** The device's copy bandwidth (:func:`benchmarks.bench.memory_bandwidth`: a
   large torch ``copy_``, read + write counted).
2. **Floor.** The bytes one iteration must move (:func:`benchmarks.bench.admm_bytes_per_iteration`)
   for the fused formulation (≈ 13 passes over a coefficient map) and for the torch loop
   (≈ 48 passes), and the time they take at that bandwidth.
3. **FFTs alone** (CPU): one iteration's forward and inverse real 2-D FFTs of the K maps
   of each image, with torch (``torch.fft.rfft2``/``irfft2``, MKL or pocketfft: the torch
   loop's), with FFTW through pyFFTW (:class:`csc.backends.fused.FFTPair`, the fused back end's)
   and with ``scipy.fft`` (its fallback).
4. **Solver variants**, ms per iteration: the torch loop (``backend="torch"``), the fused
   kernels with scipy's FFT (``CSC_FFT=scipy``) and the fused kernels with FFTW (the
   default on the CPU). On CUDA only the torch loop runs.

The differences separate the two optimisations: torch loop → fused + scipy FFT is
mostly the fused kernels (fewer passes over memory; the FFT changes from torch's to
scipy's too, see 3), fused + scipy → fused + FFTW is the FFT library alone. Each
variant's "rest" (its time minus its FFTs' time from 3) is compared with its
non-FFT bytes: the effective bandwidth of the elementwise part.

    python benchmarks/roofline.py --json benchmarks/results/roofline_256.json
    python benchmarks/roofline.py --device cuda --json benchmarks/results/roofline_256_cuda.json
    python benchmarks/roofline.py --size 32 --kernels 8 --ksize 5 --iters 3 --repeats 1   # seconds
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import bench  # noqa: E402


@contextlib.contextmanager
def _env(name: str, value: str | None):
    old = os.environ.get(name)
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _best(fn, repeats: int, inner: int) -> tuple[float, list[float]]:
    """Best and all per-call times of ``fn`` (``inner`` calls per sample)."""
    fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        out.append((time.perf_counter() - t0) / inner)
    return min(out), out


def fft_times(B, K, H, W, dtype, threads, repeats, device) -> dict:
    """ms for one iteration's rfft2 + irfft2 of (B, K, H, W) maps, per FFT library."""
    import torch

    from csc.backends import fused as _fused

    tdt = getattr(torch, dtype)
    cdt = torch.complex64 if dtype == "float32" else torch.complex128
    Wr = W // 2 + 1
    inner = max(1, int(2e7 // (B * K * H * W)))
    out = {}
    t = torch.randn(B, K, H, W, dtype=tdt, device=device)
    x = torch.empty_like(t)

    def torch_pair():
        xf = torch.fft.rfft2(t)
        torch.fft.irfft2(xf, s=(H, W), out=x)
        bench.sync(device)

    best, allt = _best(torch_pair, repeats, inner)
    out["torch"] = {"ms": 1e3 * best, "all_ms": [1e3 * v for v in allt]}
    if device != "cpu":
        return out
    for lib in ("fftw", "scipy"):
        try:
            with _env("CSC_FFT", lib):
                tt = torch.empty(B, K, H, W, dtype=tdt)
                xf = torch.empty(B, K, H, Wr, dtype=cdt)
                xx = torch.empty(B, K, H, W, dtype=tdt)
                pair = _fused.FFTPair(tt.numpy(), xf.numpy(), xx.numpy(), threads)
        except (RuntimeError, ImportError) as exc:
            out[lib] = {"error": str(exc)}
            continue
        src = t.numpy()
        tn, xfn, xn = tt.numpy(), xf.numpy(), xx.numpy()

        def fused_pair():
            np.copyto(tn, src)  # the forward transform may destroy its input
            pair.forward(tn, xfn)
            pair.inverse(xfn, xn)

        def copy_only():
            np.copyto(tn, src)

        best, allt = _best(fused_pair, repeats, inner)
        copy, _ = _best(copy_only, repeats, inner)
        out[lib] = {"ms": 1e3 * max(best - copy, 0.0), "all_ms": [1e3 * v for v in allt],
                    "input_copy_ms_subtracted": 1e3 * copy, "planner": bench.fftw_flags(pair)}
    return out


def solver_times(D, S, args, dtype) -> dict:
    """ms per iteration of each csc variant (best and median of the repeats)."""
    variants = [("torch loop", "torch", None)]
    if args.device == "cpu":
        variants += [("fused + scipy FFT", "numba", "scipy"), ("fused + FFTW", "numba", "fftw")]
    X = bench.csc_images(S if S.shape[0] > 1 else S[0], dtype, args.device)
    opt = bench.sporco_options(args.iters, dtype)
    out = {}
    for name, backend, fft in variants:
        try:
            with _env("CSC_FFT", fft):
                bench.time_csc(D, X, args.lmbda, bench.sporco_options(2, dtype), args.device, backend)  # warm-up
                ts = [bench.time_csc(D, X, args.lmbda, opt, args.device, backend)["solve_s"]
                      for _ in range(args.repeats)]
        except (RuntimeError, ValueError) as exc:
            out[name] = {"error": str(exc)}
            continue
        out[name] = {"backend": backend, "fft": fft or "torch", **bench.summarise(ts, args.iters)}
    return out


def analyse(B, H, W, K, dtype, bw: float, ffts: dict, solvers: dict) -> dict:
    fused = bench.admm_bytes_per_iteration(B, H, W, K, dtype, "fused")
    loop = bench.admm_bytes_per_iteration(B, H, W, K, dtype, "torch")

    def fft_bytes(b):
        return sum((s["read"] + s["write"]) for s in b["steps"] if "fft" in s["step"]) * b["itemsize"]

    out = {"bandwidth_gb_per_s": bw,
           "fused": {"bytes": fused["bytes"], "passes": fused["passes"], "floor_ms": 1e3 * fused["bytes"] / (bw * 1e9),
                     "non_fft_bytes": fused["bytes"] - fft_bytes(fused)},
           "torch_loop": {"bytes": loop["bytes"], "passes": loop["passes"], "floor_ms": 1e3 * loop["bytes"] / (bw * 1e9),
                          "non_fft_bytes": loop["bytes"] - fft_bytes(loop)},
           "predicted": {"passes_ratio": loop["passes"] / fused["passes"],
                         "non_fft_passes_ratio": (loop["bytes"] - fft_bytes(loop)) / (fused["bytes"] - fft_bytes(fused))},
           "variants": {}}
    if "fftw" in ffts and "ms" in ffts["fftw"] and ffts["fftw"]["ms"] > 0:
        out["predicted"]["fft_torch_over_fftw"] = ffts["torch"]["ms"] / ffts["fftw"]["ms"]
    if "scipy" in ffts and "ms" in ffts["scipy"] and ffts["scipy"]["ms"] > 0:
        out["predicted"]["fft_torch_over_scipy"] = ffts["torch"]["ms"] / ffts["scipy"]["ms"]
    for name, v in solvers.items():
        if "error" in v:
            continue
        formulation = out["torch_loop"] if v["backend"] == "torch" else out["fused"]
        fft_ms = ffts.get(v["fft"], {}).get("ms")
        ms = v["ms_per_iter_best"]
        row = {"ms_per_iter": ms, "over_floor": ms / out["fused"]["floor_ms"],
               "over_own_floor": ms / formulation["floor_ms"],
               "effective_gb_per_s": formulation["bytes"] / (ms * 1e-3) / 1e9}
        if fft_ms is not None:
            rest = max(ms - fft_ms, 1e-9)
            row.update(fft_ms=fft_ms, rest_ms=rest, rest_effective_gb_per_s=formulation["non_fft_bytes"] / (rest * 1e-3) / 1e9)
        out["variants"][name] = row
    v = out["variants"]
    if "torch loop" in v and "fused + FFTW" in v:
        out["measured"] = {"torch_loop_over_fused_fftw": v["torch loop"]["ms_per_iter"] / v["fused + FFTW"]["ms_per_iter"]}
        if "fused + scipy FFT" in v:
            out["measured"]["torch_loop_over_fused_scipy"] = (v["torch loop"]["ms_per_iter"]
                                                              / v["fused + scipy FFT"]["ms_per_iter"])
            out["measured"]["fused_scipy_over_fused_fftw"] = (v["fused + scipy FFT"]["ms_per_iter"]
                                                              / v["fused + FFTW"]["ms_per_iter"])
        if "rest_ms" in v["torch loop"] and "rest_ms" in v["fused + FFTW"]:
            out["measured"]["non_fft_torch_loop_over_fused"] = v["torch loop"]["rest_ms"] / v["fused + FFTW"]["rest_ms"]
    return out


def print_report(rows: list[dict]) -> None:
    for r in rows:
        a = r["analysis"]
        print(f"\n[{r['dtype']}] bandwidth {a['bandwidth_gb_per_s']:.1f} GB/s; fused floor "
              f"{a['fused']['bytes'] / 1e6:.0f} MB = {a['fused']['floor_ms']:.2f} ms/it ({a['fused']['passes']:.1f} passes); "
              f"torch loop {a['torch_loop']['bytes'] / 1e6:.0f} MB = {a['torch_loop']['floor_ms']:.2f} ms/it "
              f"({a['torch_loop']['passes']:.1f} passes)")
        print("  FFTs of one iteration: " + ", ".join(
            f"{k} {v['ms']:.2f} ms" if "ms" in v else f"{k} n/a" for k, v in r["fft"].items()))
        print(f"  {'variant':<18} {'ms/it':>8} {'FFT ms':>8} {'rest ms':>8} {'GB/s (all)':>10} {'GB/s (rest)':>11} "
              f"{'/fused floor':>12}")
        for name, v in a["variants"].items():
            print(f"  {name:<18} {v['ms_per_iter']:8.2f} {v.get('fft_ms', float('nan')):8.2f} "
                  f"{v.get('rest_ms', float('nan')):8.2f} {v['effective_gb_per_s']:10.1f} "
                  f"{v.get('rest_effective_gb_per_s', float('nan')):11.1f} {v['over_floor']:12.2f}")
        print("  predicted: " + ", ".join(f"{k} {v:.2f}" for k, v in a["predicted"].items()))
        if "measured" in a:
            print("  measured:  " + ", ".join(f"{k} {v:.2f}" for k, v in a["measured"].items()))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--kernels", type=int, default=144)
    p.add_argument("--ksize", type=int, default=12)
    p.add_argument("--batch", type=int, default=1, help="images (different crops of --size² when > 1)")
    p.add_argument("--lmbda", type=float, default=0.05)
    p.add_argument("--iters", type=int, default=20, help="iterations of each timed solve")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch and FFT threads (default: all CPUs)")
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--bandwidth-mb", type=float, default=512.0)
    p.add_argument("--json", default=None, metavar="PATH")
    args = p.parse_args(argv)
    bench.require_sporco()  # the problem's image and filter come from SPORCO
    from csc.runtime.device import resolve_device

    try:
        resolve_device(args.device, arg="--device")
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    threads = args.threads or len(os.sched_getaffinity(0))
    bench.configure_threads(threads)
    bench.warn_if_busy()
    bw = bench.memory_bandwidth(args.device, args.bandwidth_mb, threads=threads)
    print(f"copy bandwidth ({bw['method']}): {bw['gb_per_s']:.1f} GB/s", flush=True)
    D = bench.random_dictionary(args.ksize, args.kernels, args.seed)
    S = (bench.single_image(args.size)[None] if args.batch == 1
         else bench.batch_images(args.size, args.batch, args.seed)[0])
    B, H, W = S.shape
    report = {"machine": bench.machine_info(args.device, threads, bench.PLANNER_EFFORT), "settings": dict(vars(args), threads=threads),
              "bandwidth": bw, "results": []}
    for dtype in args.dtypes:
        print(f"[{dtype}] FFTs ...", flush=True)
        ffts = fft_times(B, args.kernels, H, W, dtype, threads, max(3, args.repeats), args.device)
        print(f"[{dtype}] solver variants ...", flush=True)
        solvers = solver_times(D.astype(dtype), S.astype(dtype), args, dtype)
        report["results"].append({"dtype": dtype, "fft": ffts, "solvers": solvers,
                                  "analysis": analyse(B, H, W, args.kernels, dtype, bw["gb_per_s"], ffts, solvers)})
    print_report(report["results"])
    if args.json:
        print(f"wrote {bench.write_json(args.json, report)}")
    return report


if __name__ == "__main__":
    main()

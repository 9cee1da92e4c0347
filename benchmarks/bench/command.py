"""Running the comparison: options checked, the report assembled, printed and written.

:func:`run` is what ``csc bench`` calls (:mod:`csc.cli.bench`) with its parsed options;
:func:`main` is ``python benchmarks/compare_sporco.py`` / ``python -m benchmarks.bench``
(parse with :func:`parse_args`, run, return the report), and the memory children's entry
(``--_mem-child``). ``--peers`` runs :mod:`benchmarks.bench.peers` instead of the
per-iteration comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

from csc.cli.bench_args import SPORCO_MISSING, add_arguments, have_sporco

from .floor import memory_bandwidth
from .machine import machine_info, warn_if_busy, write_json
from .memory import _mem_child
from .modes import run_batch, run_single
from .problem import (BARBARA, COLOUR_IMAGE, COLOUR_PROBLEMS, PLANNER_EFFORT, TIKHONOV_LMBDA, TIKHONOV_NPD,
                      require_sporco, sporco_image_crop, sporco_options)
from .report import print_table
from .runners import configure_threads

__all__ = ["check_arguments", "main", "parse_args", "run"]

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
    """The harness's own command line (:func:`add_arguments`, and the memory children's
    ``--_mem-child``), checked by :func:`check_arguments` unless it starts a memory child."""
    prog = "python -m benchmarks.bench" if sys.argv[0].endswith("__main__.py") else None
    p = argparse.ArgumentParser(prog=prog, description="Speed and memory of csc.ConvBPDN against SPORCO's "
                                                       "admm.cbpdn.ConvBPDN, same problem (benchmarks/README.md).",
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
    from . import peers as bp

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


def main(argv=None) -> dict | None:
    """``python -m benchmarks.bench`` / benchmarks/compare_sporco.py: parse, run, return the report
    (None for a memory child, which prints its figures as one JSON line)."""
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

"""The two modes of the comparison: one image (:func:`run_single`) and a batch (:func:`run_batch`).

Each runs, per dtype, one untimed warm-up solve of each library, then ``--repeats`` timed
solves interleaved (so that a change of machine load hits both), checks the iteration
counts, compares the codes, adds the bandwidth floor when it was measured and, unless
``--no-memory``, each library's peak memory from fresh child processes. Returns the
report's ``mode`` and ``results``.
"""

from __future__ import annotations

import gc
import statistics

import numpy as np

from .floor import floor_report
from .memory import _memory, export_wisdom
from .problem import batch_images, is_colour, problem_data, problem_of, random_dictionary, sporco_options
from .runners import code_difference, csc_images, summarise, time_csc, time_sporco

__all__ = ["run_batch", "run_single"]

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

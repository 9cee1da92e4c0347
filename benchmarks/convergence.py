#!/usr/bin/env python
"""Convergence per unit time: CBPDN objective against wall time, csc and SPORCO.

Same problem and options as ``csc bench`` (barbara highpass crop, seeded random unit-norm
dictionary, λ = 0.05, SPORCO's defaults with AutoRho, ``RelStopTol`` 0 so that both run
exactly ``--iters`` iterations), but with statistics on: SPORCO records its ``itstat``
(``FastSolve`` False: ``Time``, ``ObjFun`` per iteration) and csc its
``CBPDNResult.stats`` (``time``, ``objective``). Both evaluate the objective
½‖Σ d_k * x_k − s‖² + λ‖x‖₁ on x, so the two curves are the same numbers per iteration
(up to rounding) and differ only in how long each iteration takes.

Times: both libraries time iterations from the start of their iteration loop; the
per-solve setup before it (SPORCO: its object construction, DFTs of the image and the
dictionary; csc: kernel DFTs, FFT plans, Ŝ, inside ``solve``) is measured too and added,
so the curves are end-to-end from "given the image". Each implementation and dtype gets
one untimed warm-up solve first (FFTW planning, numba loading).

Outputs ``OUT.json`` (every curve, setup times, the time from which the relative gap
(F − F*)/F* stays below 1e-1 … 1e-4, F* being the lowest objective of a float64 csc
solve of 4 × ``--iters`` iterations or of any timed run, the
per-iteration agreement of the objectives, the machine record) and ``OUT.png``
(objective and relative gap against time, objective against iteration).

    python benchmarks/convergence.py --out benchmarks/results/convergence_256
    python benchmarks/convergence.py --size 32 --kernels 8 --ksize 5 --iters 10 --out /tmp/conv  # seconds
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import bench  # noqa: E402

GAPS = (1e-1, 1e-2, 1e-3, 1e-4)


def run_sporco(D, s, lmbda, iters, dtype) -> dict:
    opt = dict(bench.sporco_options(iters, dtype), FastSolve=False)
    t0 = time.perf_counter()
    solver = bench.sporco_construct(D, s, lmbda, opt)
    t1 = time.perf_counter()
    solver.solve()
    t2 = time.perf_counter()
    its = solver.getitstat()
    return {"label": "SPORCO", "setup_s": t1 - t0, "solve_s": t2 - t1, "iterations": int(solver.k),
            "loop_time": np.asarray(its.Time, dtype=float).tolist(),
            "objective": np.asarray(its.ObjFun, dtype=float).tolist()}


def run_csc(D, s, lmbda, iters, dtype, device, backend) -> dict:
    opt = bench.sporco_options(iters, dtype)
    S = bench.csc_images(s, dtype, device)
    solver = bench.csc_construct(D, lmbda, opt, device, backend, record_stats=True)
    bench.sync(device)
    t0 = time.perf_counter()
    res = solver.solve(S)
    bench.sync(device)
    t1 = time.perf_counter()
    st = res.stats[0]
    loop = np.asarray(st.time, dtype=float)
    be = bench.csc_backend(device, backend)["backend"]
    # csc's stats time runs from the start of the iteration loop: the rest of solve() is setup
    return {"label": f"csc ({be})", "backend": be, "setup_s": (t1 - t0) - float(loop[-1]), "solve_s": t1 - t0,
            "iterations": int(res.iterations.reshape(-1)[0]), "loop_time": loop.tolist(),
            "objective": np.asarray(st.objective, dtype=float).tolist()}


def reference_objective(D, s, lmbda, iters, device) -> float:
    """The lowest objective of a long float64 csc solve: the F* of the relative gaps."""
    res = bench.csc_construct(D, lmbda, bench.sporco_options(iters, "float64"), device,
                              record_stats=True).solve(bench.csc_images(s, "float64", device))
    return float(np.min(res.stats[0].objective))


def summarise(runs: list[dict], f_ref: float | None = None) -> dict:
    """End-to-end times, F*, relative gaps, time to each gap, objective agreement."""
    fstar = min(min(r["objective"]) for r in runs)
    if f_ref is not None:
        fstar = min(fstar, f_ref)
    for r in runs:
        r["time"] = (r["setup_s"] + np.asarray(r["loop_time"])).tolist()
        gap = (np.asarray(r["objective"]) - fstar) / abs(fstar)
        r["relative_gap"] = gap.tolist()
        r["time_to_gap_s"] = {}
        for g in GAPS:  # the first iteration from which the gap stays ≤ g
            above = np.nonzero(gap > g)[0]
            first = 0 if above.size == 0 else int(above[-1]) + 1
            r["time_to_gap_s"][f"{g:g}"] = float(r["time"][first]) if first < len(gap) else None
        r["ms_per_iter"] = 1e3 * r["loop_time"][-1] / len(r["loop_time"])
    ref = np.asarray(runs[0]["objective"])
    out = {"f_star": fstar, "f_reference_solve": f_ref, "reference": runs[0]["label"]}
    for r in runs[1:]:
        o = np.asarray(r["objective"])
        m = min(len(o), len(ref))
        out[f"objective_max_rel_diff_{r['label']}"] = float(np.max(np.abs(o[:m] - ref[:m]) / np.abs(ref[:m])))
        out[f"speedup_to_gap_{r['label']}"] = {
            g: (runs[0]["time_to_gap_s"][g] / r["time_to_gap_s"][g]
                if runs[0]["time_to_gap_s"][g] and r["time_to_gap_s"][g] else None) for g in r["time_to_gap_s"]}
        out[f"speedup_per_iter_{r['label']}"] = runs[0]["ms_per_iter"] / r["ms_per_iter"]
    return out


def plot(report: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["results"]
    fig, axes = plt.subplots(len(rows), 3, figsize=(15, 4.2 * len(rows)), squeeze=False)
    colours = {"SPORCO": "black"}
    palette = ["tab:red", "tab:blue", "tab:green"]
    st = report["settings"]
    for ax_row, row in zip(axes, rows):
        for r in row["runs"]:
            c = colours.setdefault(r["label"], palette[(len(colours) - 1) % len(palette)])
            t, f, g = np.asarray(r["time"]), np.asarray(r["objective"]), np.asarray(r["relative_gap"])
            ax_row[0].plot(t, f, color=c, label=f"{r['label']} ({r['ms_per_iter']:.1f} ms/it)")
            pos = g > 0
            ax_row[1].loglog(t[pos], g[pos], color=c, label=r["label"])
            ax_row[2].plot(np.arange(1, len(f) + 1), f, color=c, label=r["label"],
                           linestyle="-" if r["label"] == "SPORCO" else "--")
        ax_row[0].set(xscale="log", xlabel="wall time from start of solve, setup included (s)", ylabel="objective",
                      title=f"{row['dtype']}: objective vs time")
        ax_row[1].set(xlabel="wall time (s)", ylabel="(F − F*) / F*", title=f"{row['dtype']}: relative gap vs time")
        ax_row[2].set(xscale="log", xlabel="iteration", ylabel="objective",
                      title=f"{row['dtype']}: objective vs iteration (same iterates)")
        for ax in ax_row:
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle(f"CBPDN {st['size']}² barbara highpass, K = {st['kernels']} {st['ksize']}×{st['ksize']}, "
                 f"λ = {st['lmbda']}, {st['threads']} thread(s), {report['machine']['device_name']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--kernels", type=int, default=144)
    p.add_argument("--ksize", type=int, default=12)
    p.add_argument("--lmbda", type=float, default=0.05)
    p.add_argument("--iters", type=int, default=100, help="iterations of each solve (RelStopTol 0)")
    p.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    p.add_argument("--backends", nargs="+", default=["auto"], choices=["auto", "numba", "torch"],
                   help="csc back ends to run (one curve each)")
    p.add_argument("--device", default="cpu", help="csc's device (SPORCO is CPU only)")
    p.add_argument("--threads", type=int, default=None, help="torch and pyFFTW threads (default: all CPUs)")
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--warmup-iters", type=int, default=3)
    p.add_argument("--ref-iters", type=int, default=None,
                   help="iterations of the float64 csc solve that gives F* (default 4 × --iters; 0: F* is the "
                        "lowest objective of the timed runs)")
    p.add_argument("--out", default="benchmarks/results/convergence", help="writes OUT.json and OUT.png")
    args = p.parse_args(argv)
    bench.require_sporco()
    threads = args.threads or len(os.sched_getaffinity(0))
    bench.configure_threads(threads)
    bench.warn_if_busy()
    D = bench.random_dictionary(args.ksize, args.kernels, args.seed)
    s = bench.single_image(args.size)
    settings = dict(vars(args), threads=threads)
    report = {"machine": bench.machine_info(args.device, threads, bench.PLANNER_EFFORT), "settings": settings,
              "results": []}
    backends = list(dict.fromkeys(args.backends))
    ref_iters = 4 * args.iters if args.ref_iters is None else args.ref_iters
    f_ref = None
    if ref_iters > 0:
        print(f"reference solve (float64, {ref_iters} iterations) for F* ...", flush=True)
        f_ref = reference_objective(D, s, args.lmbda, ref_iters, args.device)
        report["f_reference_solve"] = {"iterations": ref_iters, "objective": f_ref}
    for dtype in args.dtypes:
        Dd, sd = D.astype(dtype), s.astype(dtype)
        print(f"[{dtype}] warm-up ...", flush=True)
        run_sporco(Dd, sd, args.lmbda, args.warmup_iters, dtype)
        for be in backends:
            run_csc(Dd, sd, args.lmbda, args.warmup_iters, dtype, args.device, be)
        runs = [run_sporco(Dd, sd, args.lmbda, args.iters, dtype)]
        print(f"[{dtype}] SPORCO: {runs[0]['solve_s']:.2f} s for {runs[0]['iterations']} iterations", flush=True)
        for be in backends:
            runs.append(run_csc(Dd, sd, args.lmbda, args.iters, dtype, args.device, be))
            print(f"[{dtype}] {runs[-1]['label']}: {runs[-1]['solve_s']:.2f} s", flush=True)
        summary = summarise(runs, f_ref)
        report["results"].append({"dtype": dtype, "runs": runs, "summary": summary})
        print(f"[{dtype}] F* = {summary['f_star']:.6g}")
        for r in runs:
            ttg = ", ".join(f"{g}: {'-' if v is None else f'{v:.3f} s'}" for g, v in r["time_to_gap_s"].items())
            print(f"    {r['label']:<14} {r['ms_per_iter']:8.2f} ms/it, setup {1e3 * r['setup_s']:7.1f} ms; "
                  f"time to relative gap {ttg}")
    out = args.out[:-5] if args.out.endswith(".json") else args.out
    print(f"wrote {bench.write_json(out + '.json', report)}")
    plot(report, out + ".png")
    print(f"wrote {out}.png")
    return report


if __name__ == "__main__":
    main()

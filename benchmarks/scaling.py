#!/usr/bin/env python
"""Scaling sweep: how csc's time per ADMM iteration grows with the work.

Three sweeps around a base problem (``--base-size``² barbara highpass crop,
``--base-kernels`` random unit-norm ``--ksize``² kernels, one image, λ = 0.05, the
options of ``csc bench``):

* image size: ``--sizes`` (side of the central crop; K and B at the base);
* number of kernels: ``--kernels`` (size and B at the base);
* batch: ``--batches`` different ``--base-size``² crops solved as one batch.

The work of an iteration is W = B·K·H·W coefficients. For every point the script
reports csc's milliseconds per iteration (best and median of ``--repeats`` solves, each
long enough to take about ``--target-s`` seconds, after an untimed warm-up: FFTW
planning), nanoseconds per coefficient-iteration, the memory-bandwidth floor
(:func:`benchmarks.bench.floor_report`, fused formulation, at the copy bandwidth measured at
the start) and csc's time over it; and, at the points with W ≤ ``--sporco-max-work``,
SPORCO's time (one image at a time for B > 1, its construction excluded) and the ratio.

Writes ``OUT.json`` (every point, the machine record, the bandwidth), ``OUT.md`` (a
table) and ``OUT.png`` (ms per iteration and ns per coefficient-iteration against W,
log-log, with the floor).

    python benchmarks/scaling.py --out benchmarks/results/scaling
    python benchmarks/scaling.py --sizes 32 48 --kernels 4 8 --batches 1 2 --base-size 32 \\
        --base-kernels 8 --ksize 5 --target-s 0.05 --repeats 1 --out /tmp/scaling      # seconds
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import bench  # noqa: E402


def _problem(size: int, K: int, B: int, args) -> tuple[np.ndarray, np.ndarray]:
    D = bench.random_dictionary(args.ksize, K, args.seed)
    S = bench.single_image(size)[None] if B == 1 else bench.batch_images(size, B, args.seed)[0]
    return D.astype(args.dtype), S.astype(args.dtype)


def _iters_for(t_iter: float, target: float) -> int:
    return int(min(200, max(3, math.ceil(target / max(t_iter, 1e-6)))))


def time_csc_point(D, S, args) -> dict:
    X = bench.csc_images(S if S.shape[0] > 1 else S[0], args.dtype, args.device)
    bench.time_csc(D, X, args.lmbda, bench.sporco_options(2, args.dtype), args.device, args.backend)  # warm-up
    probe = bench.time_csc(D, X, args.lmbda, bench.sporco_options(3, args.dtype), args.device, args.backend)
    iters = _iters_for(probe["solve_s"] / 3, args.target_s)
    opt = bench.sporco_options(iters, args.dtype)
    runs = [bench.time_csc(D, X, args.lmbda, opt, args.device, args.backend)["solve_s"] for _ in range(args.repeats)]
    return {"iters": iters, **bench.summarise(runs, iters)}


def time_sporco_point(D, S, args) -> dict:
    bench.time_sporco(D, S[0], args.lmbda, bench.sporco_options(2, args.dtype))  # warm-up (FFTW planning)
    probe = bench.time_sporco(D, S[0], args.lmbda, bench.sporco_options(3, args.dtype))
    iters = _iters_for(probe["solve_s"] / 3 * S.shape[0], args.target_s)
    opt = bench.sporco_options(iters, args.dtype)
    runs = []
    for _ in range(args.repeats):  # one image at a time, construction excluded
        runs.append(sum(bench.time_sporco(D, s, args.lmbda, opt)["solve_s"] for s in S))
    return {"iters": iters, **bench.summarise(runs, iters)}


def points(args) -> list[dict]:
    """The sweep points (sweep, size, K, B); the base point is shared by the sweeps."""
    out = []
    for s in args.sizes:
        out.append({"sweep": "size", "size": s, "kernels": args.base_kernels, "batch": 1})
    for k in args.kernels:
        out.append({"sweep": "kernels", "size": args.base_size, "kernels": k, "batch": 1})
    for b in args.batches:
        out.append({"sweep": "batch", "size": args.base_size, "kernels": args.base_kernels, "batch": b})
    return out


def markdown(report: dict) -> str:
    st = report["settings"]
    lines = [
        f"Scaling of csc ({report['machine']['csc_backend'].get('backend')} back end, "
        f"FFT {report['machine']['csc_backend'].get('fft')}) per ADMM iteration, {st['dtype']}, "
        f"{st['threads']} thread(s), {report['machine']['device_name']}; kernels {st['ksize']}×{st['ksize']}, "
        f"λ = {st['lmbda']}; copy bandwidth {report['bandwidth']['gb_per_s']:.1f} GB/s.",
        "",
        "| sweep | B | H×W | K | work (M coef) | csc ms/it | ns/coef-it | floor ms | csc/floor | SPORCO ms/it | SPORCO/csc |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in report["points"]:
        sp = p.get("sporco")
        c = p["csc"]["ms_per_iter_best"]
        sp_ms = "-" if not sp else f"{sp['ms_per_iter_best']:.2f}"
        sp_ratio = "-" if not sp else f"{sp['ms_per_iter_best'] / c:.2f}"
        lines.append(
            f"| {p['sweep']} | {p['batch']} | {p['size']}×{p['size']} | {p['kernels']} | {p['work'] / 1e6:.2f} | "
            f"{c:.2f} | {p['ns_per_coef_iter']:.2f} | {p['floor']['floor_ms_per_iter']:.2f} | "
            f"{p['floor']['csc_over_floor']:.2f} | {sp_ms} | {sp_ratio} |")
    fit = report.get("fit")
    if fit:
        lines += ["", "Least-squares slope of log(csc ms/it) against log(work), per sweep: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in fit.items()) + " (1 = linear in the work)."]
    lines += ["", "ms/it: best of the repeats; floor: bytes one fused iteration must move "
              "(benchmarks/README.md, bandwidth floor) over the measured copy bandwidth; SPORCO one image "
              "at a time for B > 1."]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 5))
    style = {"size": ("o", "tab:blue"), "kernels": ("s", "tab:orange"), "batch": ("^", "tab:green")}
    for sweep, (marker, colour) in style.items():
        pts = sorted((p for p in report["points"] if p["sweep"] == sweep), key=lambda p: p["work"])
        if not pts:
            continue
        w = np.array([p["work"] for p in pts])
        c = np.array([p["csc"]["ms_per_iter_best"] for p in pts])
        f = np.array([p["floor"]["floor_ms_per_iter"] for p in pts])
        a1.loglog(w, c, marker=marker, color=colour, label=f"csc, {sweep} sweep")
        a1.loglog(w, f, marker=marker, color=colour, linestyle=":", alpha=0.5, markerfacecolor="none",
                  label=f"bandwidth floor, {sweep}")
        a2.loglog(w, 1e6 * c / w, marker=marker, color=colour, label=f"csc, {sweep}")
        sp = [(p["work"], p["sporco"]["ms_per_iter_best"]) for p in pts if p.get("sporco")]
        if sp:
            ws, ss = np.array(sp).T
            a1.loglog(ws, ss, marker=marker, color="black", linestyle="--", markerfacecolor="none",
                      label=f"SPORCO, {sweep}")
            a2.loglog(ws, 1e6 * ss / ws, marker=marker, color="black", linestyle="--", markerfacecolor="none",
                        label=f"SPORCO, {sweep}")
    allw = np.array([p["work"] for p in report["points"]])
    base = min(report["points"], key=lambda p: abs(math.log(p["work"] / np.median(allw))))
    ref = np.array([allw.min(), allw.max()])
    a1.loglog(ref, base["csc"]["ms_per_iter_best"] * ref / base["work"], color="grey", linewidth=0.8,
              label="slope 1 (linear)")
    st = report["settings"]
    a1.set(xlabel="work per iteration B·K·H·W (coefficients)", ylabel="ms per iteration",
           title=f"time per ADMM iteration, {st['dtype']}, {st['threads']} thread(s)")
    a2.set(xlabel="work per iteration B·K·H·W (coefficients)", ylabel="ns per coefficient-iteration",
           title="cost per unit of work")
    for ax in (a1, a2):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"csc scaling ({report['machine']['device_name']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512], help="image sides (size sweep)")
    p.add_argument("--kernels", type=int, nargs="+", default=[16, 36, 64, 144, 256], help="K values (kernel sweep)")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8, 16], help="batch sizes (batch sweep)")
    p.add_argument("--base-size", type=int, default=128)
    p.add_argument("--base-kernels", type=int, default=144)
    p.add_argument("--ksize", type=int, default=12)
    p.add_argument("--lmbda", type=float, default=0.05)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--device", default="cpu", help="csc's device (SPORCO is CPU only)")
    p.add_argument("--backend", default="auto", choices=["auto", "numba", "torch"])
    p.add_argument("--threads", type=int, default=None, help="torch and pyFFTW threads (default: all CPUs)")
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--target-s", type=float, default=1.0, help="approximate duration of each timed solve")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--sporco-max-work", type=float, default=128 * 128 * 144,
                   help="also time SPORCO at points with B·K·H·W at most this (0: never)")
    p.add_argument("--bandwidth-mb", type=float, default=256.0, help="tensor size of the bandwidth measurement")
    p.add_argument("--out", default="benchmarks/results/scaling", help="writes OUT.json, OUT.md and OUT.png")
    args = p.parse_args(argv)
    if args.sporco_max_work > 0:
        bench.require_sporco()
    threads = args.threads or len(os.sched_getaffinity(0))
    bench.configure_threads(threads)
    bench.warn_if_busy()
    bw = bench.memory_bandwidth(args.device, args.bandwidth_mb, threads=threads)
    print(f"copy bandwidth {bw['gb_per_s']:.1f} GB/s", flush=True)
    report = {"machine": bench.machine_info(args.device, threads, bench.PLANNER_EFFORT, args.backend),
              "settings": dict(vars(args), threads=threads), "bandwidth": bw, "points": []}
    done: dict[tuple, dict] = {}
    t_start = time.perf_counter()
    for pt in points(args):
        key = (pt["size"], pt["kernels"], pt["batch"])
        work = pt["batch"] * pt["kernels"] * pt["size"] ** 2
        if key not in done:
            D, S = _problem(pt["size"], pt["kernels"], pt["batch"], args)
            res = {"work": work, "csc": time_csc_point(D, S, args)}
            if args.sporco_max_work > 0 and work <= args.sporco_max_work:
                res["sporco"] = time_sporco_point(D, S, args)
            res["floor"] = bench.floor_report(pt["batch"], pt["size"], pt["size"], pt["kernels"], args.dtype,
                                              bw["gb_per_s"], {"csc": res["csc"]["ms_per_iter_best"]})
            res["ns_per_coef_iter"] = 1e6 * res["csc"]["ms_per_iter_best"] / work
            done[key] = res
        row = dict(pt, **done[key])
        report["points"].append(row)
        sp = row.get("sporco")
        print(f"{pt['sweep']:>7}: B={pt['batch']:<3} {pt['size']}² K={pt['kernels']:<4} work {work / 1e6:7.2f} M: "
              f"csc {row['csc']['ms_per_iter_best']:8.2f} ms/it ({row['ns_per_coef_iter']:.2f} ns/coef-it, "
              f"{row['floor']['csc_over_floor']:.2f}× floor)"
              + (f", SPORCO {sp['ms_per_iter_best']:8.2f} ms/it" if sp else ""), flush=True)
    fit = {}
    for sweep in ("size", "kernels", "batch"):
        pts = [q for q in report["points"] if q["sweep"] == sweep]
        if len({q["work"] for q in pts}) >= 2:
            x = np.log([q["work"] for q in pts])
            y = np.log([q["csc"]["ms_per_iter_best"] for q in pts])
            fit[sweep] = float(np.polyfit(x, y, 1)[0])
    report["fit"] = fit
    report["elapsed_s"] = time.perf_counter() - t_start
    out = args.out[:-5] if args.out.endswith(".json") else args.out
    print(f"wrote {bench.write_json(out + '.json', report)}")
    md = markdown(report)
    with open(out + ".md", "w") as f:
        f.write(md)
    print(f"wrote {out}.md")
    plot(report, out + ".png")
    print(f"wrote {out}.png")
    print(md)
    return report


if __name__ == "__main__":
    main()

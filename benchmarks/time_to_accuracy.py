"""Time to accuracy: csc (ADMM, FISTA) against SPORCO (ADMM, PGM, ParConvBPDN), SCICO and DiCoDiLe.

    python benchmarks/time_to_accuracy.py --out benchmarks/results/peers [--cases gry 256k144 512k36]

Every engine single-threaded, engines interleaved within each case, the same image,
dictionary, λ and weights; F* from a long float64 csc ADMM solve. Writes ``peers.json``
after every engine (rerun with ``--report`` to redraw the table and PNG from it),
``time_to_accuracy.md`` and ``time_to_accuracy.png``. ``--path`` also times a warm-started
λ path against cold solves (csc ADMM, the gry case).

``--dataset`` runs the dataset case instead (``benchmarks/warm_start.py``): the warm-started
engine ``csc-admm-warm`` (a predictor of codes trained on other photographs,
:mod:`csc.nn.warmstart`) against cold csc ADMM on ``--dataset-images`` held-out 128² crops,
the training's cost amortised over them, and SPORCO's ADMM and PGM on the first
``--dataset-peers`` crops; written to ``--dataset-out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bench import peers as bp  # noqa: E402

bp.single_thread()  # before anything imports JAX

import numpy as np  # noqa: E402

ORDER = ("csc-admm", "sporco-admm", "csc-fista", "sporco-pgm", "sporco-par", "scico")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/results/peers")
    p.add_argument("--cases", nargs="+", default=["gry", "256k144", "512k36"])
    p.add_argument("--engines", nargs="+", default=list(ORDER) + ["dicodile"])
    p.add_argument("--iters", type=int, default=200, help="iterations per engine, gry case")
    p.add_argument("--big-iters", type=int, default=40, help="iterations per engine, 256k144 and 512k36")
    p.add_argument("--ref-iters", type=int, default=600, help="iterations of the reference solve (gry; big: half)")
    p.add_argument("--dicodile-seconds", type=float, default=60.0)
    p.add_argument("--on", choices=bp.ON, default="y",
                   help="evaluate the ADMM engines' objective on y (the sparse code they return) or on x")
    p.add_argument("--scico-rho-factors", type=float, nargs="+", default=[0.1, 0.3, 1.0, 3.0, 10.0],
                   help="SCICO's fixed ρ: the best of these multiples of 50λ+1 after --scico-pilot iterations")
    p.add_argument("--scico-pilot", type=int, default=25)
    p.add_argument("--path", action="store_true", help="time a warm λ path against cold solves")
    p.add_argument("--merge", action="store_true", help="add --engines to the cases of an existing peers.json")
    p.add_argument("--report", action="store_true", help="only redraw the table and figure from peers.json")
    p.add_argument("--dataset", action="store_true", help="the dataset case: warm-started against cold csc ADMM "
                                                           "on held-out crops (benchmarks/warm_start.py)")
    p.add_argument("--dataset-out", default="benchmarks/results/warmstart")
    p.add_argument("--dataset-images", type=int, default=200)
    p.add_argument("--dataset-peers", type=int, default=10)
    a = p.parse_args(argv)
    if a.dataset:
        from benchmarks import warm_start

        warm_start.main(["--out", a.dataset_out, "--test", str(a.dataset_images)])
        if a.dataset_peers:
            warm_start.main(["--out", a.dataset_out, "--peers", str(a.dataset_peers)])
        return
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "peers.json"
    if not a.report:
        run(a, path)
    report(json.loads(path.read_text()), out)


def _save(path: Path, rec: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rec, indent=1, default=float))
    os.replace(tmp, path)


def run(a, path: Path) -> None:
    rec = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "loadavg_start": os.getloadavg(),
           "cpu_count": os.cpu_count(), "threads": 1, "objective_on": a.on, "cases": {}}
    if a.merge and path.exists():  # add engines to an earlier run's cases (same F*)
        rec = json.loads(path.read_text())
        if rec.get("objective_on", "x") != a.on:
            raise SystemExit(f"--merge: {path} measured the ADMM engines on {rec.get('objective_on', 'x')}, not {a.on}")
        rec.setdefault("merged", []).append({"engines": a.engines, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                             "loadavg_start": os.getloadavg()})
    for case in a.cases:
        s, D, lmbda, desc = bp.problem_case(case)
        iters = a.iters if case == "gry" else a.big_iters
        ref_iters = a.ref_iters if case == "gry" else a.ref_iters // 2
        L = bp.lipschitz(D, s.shape)
        if case not in rec["cases"]:
            rec["cases"][case] = {"description": desc, "shape": list(s.shape), "K": int(D.shape[0]), "lmbda": lmbda,
                                  "iters": iters, "L": L, "engines": {}}
        c = rec["cases"][case]
        if "fstar" not in c:
            t = time.perf_counter()
            c["fstar"] = bp.reference_objective(s, D, lmbda, ref_iters)
            c["fstar_solve_s"] = time.perf_counter() - t
            _save(path, rec)
        for name in a.engines:
            if name == "dicodile" and case != "gry":
                continue
            _one(c, name, s, D, lmbda, iters, L, a)
            rec["loadavg_end"] = os.getloadavg()
            _save(path, rec)
        if case == "gry" and a.path:
            c["path"] = _path(s, D)
            _save(path, rec)


def _one(c: dict, name: str, s, D, lmbda, iters, L, a) -> None:
    eng = "dicodile" if name == "dicodile" else name
    try:
        if name == "dicodile":  # the non-negative, boundary-respecting problem, csc on it too
            if "fstar_nn" not in c:
                c["fstar_nn"] = bp.reference_objective(s, D, lmbda, a.ref_iters, nonneg=True)
            for e, n_it in (("csc-admm-nn", iters), ("dicodile", a.dicodile_seconds)):
                tm, obj = bp.run_engine(e, s, D, lmbda, n_it, L, on=a.on)
                c["engines"][e] = {"time": tm.tolist(), "objective": obj.tolist(), "nonneg": True,
                                   "reached": bp.time_to(tm, obj, c["fstar_nn"])}
                print(f"{e}: {c['engines'][e]['reached']}", flush=True)
            return
        rho = _scico_rho(c, s, D, lmbda, L, a) if name == "scico" else None
        tm, obj = bp.run_engine(eng, s, D, lmbda, iters, L, on=a.on, rho=rho)
    except ImportError as exc:
        print(f"{name}: skipped ({exc})", flush=True)
        c["engines"][name] = {"skipped": str(exc)}
        return
    c["engines"][name] = {"time": tm.tolist(), "objective": obj.tolist(), "reached": bp.time_to(tm, obj, c["fstar"])}
    print(f"{name}: {len(tm)} iterations, {tm[-1]:.1f} s, {c['engines'][name]['reached']}", flush=True)


def _scico_rho(c: dict, s, D, lmbda, L, a) -> float:
    """SCICO's best fixed ρ among the factors: lowest objective after the pilot iterations (recorded in ``c``)."""
    pilot = {}
    for f in a.scico_rho_factors:
        rho = f * bp.scico_rho0(lmbda)
        pilot[f"{rho:g}"] = float(bp.run_engine("scico", s, D, lmbda, a.scico_pilot, L, on=a.on, rho=rho)[1][-1])
    best = min(pilot, key=pilot.get)
    c["scico_rho"] = {"pilot_iterations": a.scico_pilot, "objective_after_pilot": pilot, "chosen": float(best)}
    print(f"scico ρ pilot: {pilot}; chosen {best}", flush=True)
    return float(best)


def _path(s, D) -> dict:
    import torch

    import csc
    from csc.problems.path import lambda_path

    lams = [0.2, 0.1, 0.05, 0.025, 0.0125]
    opts = csc.CBPDNOptions(rel_stop_tol=5e-3, max_iter=500, backend="numba", record_stats=False)
    out = {"lmbdas": lams, "rel_stop_tol": 5e-3}
    for label, warm in (("warm", True), ("cold", False)):
        t = time.perf_counter()
        res = lambda_path(torch.from_numpy(D), torch.from_numpy(s), lams, opts, warm_start=warm)
        out[label] = {"seconds": time.perf_counter() - t, "iterations": [int(r.iterations.sum()) for r in res.results]}
    print(f"path: {out}", flush=True)
    return out


def report(rec: dict, out: Path) -> None:
    lines = [f"Started {rec['started']}; load average {rec.get('loadavg_start')} → {rec.get('loadavg_end')} "
             f"on {rec['cpu_count']} CPUs; every engine one thread; ADMM engines' objective on "
             f"{rec.get('objective_on', 'x')}.", ""]
    lines.append("| case | engine | iterations | s/iteration | to 1e-2 | to 1e-3 | to 1e-4 | csc ratio at 1e-3 | csc ratio at 1e-4 |")
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for case, c in rec["cases"].items():
        best = _best_csc(c)
        for name, e in c["engines"].items():
            if "skipped" in e:
                lines.append(f"| {case} | {name} | skipped: {e['skipped']} | | | | | | |")
                continue
            if name == "scico" and "scico_rho" in c:
                name = f"scico (ρ {c['scico_rho']['chosen']:g})"
            r, n, T = e["reached"], len(e["time"]), e["time"][-1]
            cells = [_fmt(r[k]) for k in ("0.01", "0.001", "0.0001")]
            ratios = [_ratio(best.get(("nn" if e.get("nonneg") else "") + k), r[k]) for k in ("0.001", "0.0001")]
            lines.append(f"| {case} | {name} | {n} | {T / max(n, 1):.3f} | {' | '.join(cells)} | {' | '.join(ratios)} |")
    (out / "time_to_accuracy.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    _plot(rec, out / "time_to_accuracy.png")


def _best_csc(c: dict) -> dict:
    """csc's fastest time per level (csc-admm or csc-fista; csc-admm-nn for the non-negative problem)."""
    best = {}
    for name, e in c["engines"].items():
        if not name.startswith("csc") or "reached" not in e:
            continue
        for k, v in e["reached"].items():
            key = ("nn" if e.get("nonneg") else "") + k
            if v is not None and (key not in best or v["time"] < best[key]):
                best[key] = v["time"]
    return best


def _fmt(v) -> str:
    return "not reached" if v is None else f"{v['time']:.2f} s ({v['iteration']} it)"


def _ratio(ours, theirs) -> str:
    if ours is None or theirs is None:
        return "—"
    return f"{theirs['time'] / ours:.1f}×"


def _plot(rec: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(rec["cases"])
    fig, axes = plt.subplots(2, len(cases), figsize=(5 * len(cases), 8), squeeze=False)
    for j, case in enumerate(cases):
        c = rec["cases"][case]
        for name, e in c["engines"].items():
            if "skipped" in e:
                continue
            fs = c["fstar_nn"] if e.get("nonneg") else c["fstar"]
            rel = np.maximum((np.asarray(e["objective"]) - fs) / abs(fs), 1e-12)
            axes[0, j].loglog(np.maximum(e["time"], 1e-3), rel, label=name)
            axes[1, j].loglog(np.arange(1, len(rel) + 1), rel, label=name)
        axes[0, j].set(title=f"{case}: (F − F*)/F* vs time", xlabel="seconds")
        axes[1, j].set(xlabel="iterations (DiCoDiLe: logged coordinate updates)")
        for ax in axes[:, j]:
            for lv in bp.LEVELS:
                ax.axhline(lv, color="0.8", lw=0.5)
        axes[0, j].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=90)


if __name__ == "__main__":
    main()

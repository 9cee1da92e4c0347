"""Iterations to accuracy of the ρ policies: SPORCO's residual balancing against spectral ρ.

    python benchmarks/rho_policy.py --out benchmarks/results/rho_policy [--size 128] [--iters 400]

For each case (image batch, dictionary) and λ ∈ {0.01, 0.05, 0.1}, float64 and float32:
iterations until the objective (on y, the code returned) is within 1e-3 and 1e-4 of F*
(relative), and where the default stopping rule (rel_stop_tol 1e-3) stops and how far from
F* it is then (read off the fixed-length run's residuals), for three policies: ``residual`` (SPORCO's defaults), ``residual-p10``
(rsdl_target=1, rho_period=10: the non-default settings csc's tests use) and ``spectral``
(:mod:`csc.core.rho_policy`). F*: the lowest objective of a long float64 default solve
(rel_stop_tol 1e-7) or of any run. Counts iterations, not time (the machine is shared).
Images of a case are solved as one batch; each image is its own problem (own ρ, stopping).
Writes ``rho_policy.json``, ``rho_policy.md`` and ``rho_policy.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import csc  # noqa: E402
from csc.pipeline.preprocess import tikhonov_filter  # noqa: E402

POLICIES = {"residual": {}, "residual-p10": {"rsdl_target": 1.0, "rho_period": 10},
            "spectral": {"rho_policy": "spectral"}}
LEVELS = (1e-3, 1e-4)
LMBDAS = (0.01, 0.05, 0.1)


def _crop(img: np.ndarray, size: int) -> np.ndarray:
    h0, w0 = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
    return img[h0:h0 + size, w0:w0 + size]


def cases(size: int) -> dict:
    """name → (images (B, size, size) highpassed, dictionary (K, 12, 12), description)."""
    import skimage.color
    import skimage.data
    from sporco import util

    def hp(imgs, lm):
        return tikhonov_filter(torch.as_tensor(np.stack(imgs)), lm, 16).highpass.to(torch.float64)

    kod = util.ExampleImages().image("kodim23.png", scaled=True, gray=True)[160:416, 60:316]
    bar = util.ExampleImages().image("barbara.png", scaled=True, gray=True)
    cam = skimage.data.camera() / 255.0
    ast = skimage.color.rgb2gray(skimage.data.astronaut())
    G = torch.as_tensor(np.moveaxis(util.convdicts()["G:12x12x36"], -1, 0), dtype=torch.float64)
    out = {"gry+photos": (torch.cat([hp([_crop(kod, size)], 10.0), hp([_crop(cam, size), _crop(ast, size)], 5.0)]),
                          G, f"kodim23 (peers' gry), camera, astronaut; central {size}², highpass; G:12x12x36")}
    for K in (36, 144):
        D = np.random.RandomState(12345).randn(12, 12, K)
        D /= np.sqrt(np.sum(D ** 2, axis=(0, 1), keepdims=True))
        out[f"barbara-k{K}"] = (hp([_crop(bar, size)], 5.0), torch.as_tensor(np.moveaxis(D, -1, 0)),
                                f"barbara central {size}², highpass; randn(12,12,{K}) unit norm (peers')")
    return out


def solve(S, D, lmbda, dtype, iters, tol, **extra) -> list[dict]:
    """Per image: objectives per iteration (on y) and the iteration count."""
    opts = csc.CBPDNOptions(max_iter=iters, rel_stop_tol=tol, objective_on_y=True, backend="numba",
                            dtype=dtype, **extra)
    res = csc.ConvBPDN(D.to(dtype), lmbda, options=opts).solve(S.to(dtype))
    return [{"objective": [float(v) for v in st.objective], "iterations": int(it),
             "stop": default_stop(st.primal_residual, st.dual_residual)}
            for st, it in zip(res.stats, res.iterations)]


def default_stop(r, s, tol: float = 1e-3):
    """The iteration at which the default stopping rule (rel_stop_tol 1e-3, abs_stop_tol 0:
    ε_pri = ε_dua = 1e-3 for the normalised residuals) stops, from a run's residuals (the
    stopping test does not change the iterates); None if not within the run."""
    hit = np.flatnonzero((np.asarray(r) < tol) & (np.asarray(s) < tol))
    return None if hit.size == 0 else int(hit[0] + 1)


def first_below(obj, fstar: float, level: float):
    rel = (np.asarray(obj) - fstar) / abs(fstar)
    hit = np.flatnonzero(rel <= level)
    return None if hit.size == 0 else int(hit[0] + 1)


def run(a) -> dict:
    rec = {"size": a.size, "iters": a.iters, "ref_iters": a.ref_iters, "cases": {}}
    for name, (S, D, desc) in cases(a.size).items():
        if a.cases and name not in a.cases:
            continue
        for lmbda in LMBDAS:
            ref = solve(S, D, lmbda, torch.float64, a.ref_iters, 1e-7)
            runs = {}
            for dt in ("float64", "float32"):
                for pol, extra in POLICIES.items():
                    runs[f"{pol}/{dt}"] = {"fixed": solve(S, D, lmbda, getattr(torch, dt), a.iters, 0.0, **extra)}
            for i in range(S.shape[0]):
                fstar = min([min(ref[i]["objective"])] + [min(r["fixed"][i]["objective"]) for r in runs.values()])
                key = f"{name}[{i}] λ={lmbda:g}"
                row = {"description": desc, "fstar": fstar, "ref_iterations": ref[i]["iterations"], "runs": {}}
                for rk, r in runs.items():
                    fx = r["fixed"][i]
                    row["runs"][rk] = {f"{lv:g}": first_below(fx["objective"], fstar, lv) for lv in LEVELS}
                    stop = fx["stop"]
                    row["runs"][rk]["default_stop_iterations"] = stop
                    row["runs"][rk]["default_stop_rel_error"] = None if stop is None else \
                        (fx["objective"][stop - 1] - fstar) / abs(fstar)
                    row["runs"][rk]["curve"] = [(v - fstar) / abs(fstar) for v in fx["objective"]]
                rec["cases"][key] = row
                print(key, {rk: {k: v for k, v in rr.items() if k != "curve"} for rk, rr in row["runs"].items()},
                      flush=True)
            Path(a.out).mkdir(parents=True, exist_ok=True)
            (Path(a.out) / "rho_policy.json").write_text(json.dumps(rec))
    return rec


def _cell(v, cap) -> str:
    return f"> {cap}" if v is None else str(v)


def report(rec: dict, out: Path) -> None:
    pols = list(POLICIES)
    lines = ["# ρ policies: iterations to 1e-3 / 1e-4 of F*, and the default stop", "",
             f"Generated by `python benchmarks/rho_policy.py --out {out} --size {rec['size']} --iters {rec['iters']}`. "
             "Objective on y. Cells: iterations to 1e-3 / 1e-4 relative error; `stop` = iterations at which "
             "rel_stop_tol=1e-3 stops (its relative error then).", ""]
    for dt in ("float64", "float32"):
        lines += [f"## {dt}", "", "| case | " + " | ".join(f"{p} 1e-3/1e-4 | {p} stop" for p in pols) + " |",
                  "|---|" + "---|---|" * len(pols)]
        for key, row in rec["cases"].items():
            cells = []
            for p in pols:
                r = row["runs"][f"{p}/{dt}"]
                cells += [f"{_cell(r['0.001'], rec['iters'])} / {_cell(r['0.0001'], rec['iters'])}",
                          _stop(r, rec["iters"])]
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
        lines += ["", _summary(rec, dt), ""]
    (out / "rho_policy.md").write_text("\n".join(lines) + "\n")
    _plot(rec, out / "rho_policy.png")


def _stop(r: dict, cap: int) -> str:
    if r["default_stop_iterations"] is None:
        return f"> {cap}"
    return f"{r['default_stop_iterations']} ({r['default_stop_rel_error']:.1e})"


def _summary(rec: dict, dt: str) -> str:
    """How often spectral needs fewer iterations than residual balancing (default), per level."""
    parts = []
    for lv in ("0.001", "0.0001"):
        wins = ties = n = 0
        ratios = []
        for row in rec["cases"].values():
            s, r = row["runs"][f"spectral/{dt}"][lv], row["runs"][f"residual/{dt}"][lv]
            s_, r_ = s or rec["iters"] + 1, r or rec["iters"] + 1
            n += 1
            wins += s_ < r_
            ties += s_ == r_
            ratios.append(s_ / r_)
        parts.append(f"to {float(lv):g}: spectral fewer iterations than residual in {wins}/{n} "
                     f"(ties {ties}), median ratio spectral/residual {np.median(ratios):.2f} "
                     "(a run that does not reach the level counts as iters + 1)")
    return f"**{dt}**: " + "; ".join(parts) + "."


def _plot(rec: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(rec["cases"])
    cols = 3
    rows = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for rk, r in rec["cases"][key]["runs"].items():
            if rk.endswith("float64"):
                ax.semilogy(np.maximum(np.asarray(r["curve"]), 1e-12), label=rk.split("/")[0])
        ax.axhline(1e-3, color="grey", lw=0.5)
        ax.axhline(1e-4, color="grey", lw=0.5)
        ax.set_title(key, fontsize=8)
        ax.set_ylim(1e-7, 1)
    axes.flat[0].legend(fontsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.supxlabel("iteration")
    fig.supylabel("(F − F*)/F*, float64")
    fig.tight_layout()
    fig.savefig(png, dpi=80)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/results/rho_policy")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--iters", type=int, default=400)
    p.add_argument("--ref-iters", type=int, default=2000)
    p.add_argument("--cases", nargs="*", default=None, help="gry+photos barbara-k36 barbara-k144 (default all)")
    p.add_argument("--report", action="store_true", help="redraw the table and figure from the JSON")
    a = p.parse_args(argv)
    out = Path(a.out)
    rec = json.loads((out / "rho_policy.json").read_text()) if a.report else run(a)
    report(rec, out)


if __name__ == "__main__":
    main()

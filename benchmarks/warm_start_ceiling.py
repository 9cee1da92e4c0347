"""How good must a warm start be? ADMM from the solution perturbed, against cold.

    python benchmarks/warm_start_ceiling.py --out benchmarks/results/warmstart [--images 8 --size 64]

For held-out crops (``benchmarks/warm_start.py``'s photographs, dictionary and λ) the solution
y* of a tight solve is perturbed multiplicatively, y0 = y*·(1 + σ·n) with n standard normal
(the support kept, so this is kinder than any predictor), and ADMM is started from it with
the consistent dual ρu0 = Dᵀ(s − Dy0) (``ConvBPDN.solve(warm_start=)``) or with SPORCO's
u0 = (λ/ρ)·sign(y0), at ρ0 ``--rho``. Reported: iterations to the stopping test at 1e-3 and
to F ≤ (1 + 1e-3)F*, median over the images, per σ; cold for comparison. Writes
``ceiling.json`` and ``ceiling.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import warm_start as ws  # noqa: E402  (one thread, the case's data)

import numpy as np  # noqa: E402
import torch  # noqa: E402


def iterations(res, fstar: torch.Tensor) -> tuple[list[int], list[int | None]]:
    """Per image: iterations run (to the stopping test) and the first iteration with F ≤ (1 + 1e-3)F*."""
    to_level = []
    for st, fs in zip(res.stats, fstar.tolist()):
        hit = np.flatnonzero((np.asarray(st.objective) - fs) / fs <= 1e-3)
        to_level.append(None if hit.size == 0 else int(hit[0] + 1))
    return res.iterations.tolist(), to_level


def main(argv=None) -> None:
    import csc
    from csc.core import ops
    from csc.problems.cbpdn import consistent_dual

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/results/warmstart")
    p.add_argument("--images", type=int, default=8)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--lmbda", type=float, default=0.05)
    p.add_argument("--rho", type=float, default=2.8, help="ρ0 of the warm starts (the warm_start run's median: 2.83)")
    p.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 0.03, 0.1, 0.3])
    a = p.parse_args(argv)
    D = ws.dictionary()
    S = ws.highpass(ws.crops(ws.TEST_IMAGES, a.images, a.size, seed=3))
    tight = csc.CBPDNOptions(rel_stop_tol=1e-8, max_iter=3000, rsdl_target=1.0, rho_period=10, relax=1.0,
                             record_stats=False)
    ystar = csc.ConvBPDN(D, a.lmbda, tight).solve(S).codes
    fstar = 0.5 * (ops.synthesis(D, ystar) - S).square().sum((1, 2)) + a.lmbda * ystar.abs().sum((1, 2, 3))
    solver = csc.ConvBPDN(D, a.lmbda, csc.CBPDNOptions(rel_stop_tol=1e-3, max_iter=1000, objective_on_y=True))
    rec = {"args": vars(a), "cold": iterations(solver.solve(S), fstar), "warm": {}}
    g = torch.Generator().manual_seed(0)
    for sigma in a.sigmas:
        y0 = ystar * (1 + sigma * torch.randn(ystar.shape, generator=g, dtype=ystar.dtype))
        given = ws.Given(y0, a.rho)
        sign = solver.solve(S, y0=y0, u0=(a.lmbda / a.rho) * torch.sign(y0))
        rec["warm"][f"{sigma:g}"] = {"consistent": iterations(solver.solve(S, warm_start=given), fstar),
                                     "sign": iterations(sign, fstar),
                                     "consistent_dual_norm": float(consistent_dual(D, S, y0, a.rho).norm())}
        print(sigma, rec["warm"][f"{sigma:g}"]["consistent"], flush=True)
    med = lambda v: float(np.median([x if x is not None else np.nan for x in v]))  # noqa: E731
    lines = ["# Warm-start ceiling: ADMM from the perturbed solution", "",
             f"{a.images} held-out {a.size}² crops, G:12x12x36, λ {a.lmbda}; y0 = y*·(1 + σn), support kept; ρ0 "
             f"{a.rho}. Median iterations to the stopping test at 1e-3 / to F ≤ (1 + 1e-3)F*.", "",
             "| start | stopping test | 1e-3 of F* |", "|---|---|---|",
             f"| cold | {med(rec['cold'][0])} | {med(rec['cold'][1])} |"]
    for sigma, r in rec["warm"].items():
        for dual in ("consistent", "sign"):
            lines.append(f"| σ {sigma}, {dual} dual | {med(r[dual][0])} | {med(r[dual][1])} |")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ceiling.json").write_text(json.dumps(rec, indent=1))
    (out / "ceiling.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

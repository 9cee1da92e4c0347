"""Speed of two source trees side by side, in one run: a solve on each back end and a few
dictionary-learning iterations, alternated between the trees (ABAB…) so that drift of the
machine affects both alike; medians, best times and the new/old ratios per case.

    python benchmarks/tree_speed.py OLD_TREE NEW_TREE [--repeats 5] [--out benchmarks/results/tree_speed]

Each measurement runs in its own process with ``PYTHONPATH`` set to the tree (the trees share
the environment's packages). Writes ``tree_speed.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

#: case name → the code a child process times (prints the seconds of the timed part)
CASES = {
    "cbpdn numba 8×128² K36": ("cbpdn", "numba"),
    "cbpdn torch 2×128² K36": ("cbpdn", "torch"),
    "dictlearn numba 8×64² K16 ×15": ("dictlearn", "numba"),
}

CHILD = r"""
import sys, time, torch
torch.set_num_threads(1)
import csc
kind, backend = sys.argv[1], sys.argv[2]
g = torch.Generator().manual_seed(0)
if kind == "cbpdn":
    D = torch.randn(36, 8, 8, generator=g, dtype=torch.float64)
    S = torch.randn(8, 128, 128, generator=g, dtype=torch.float64)
    solver = csc.ConvBPDN(D, 0.05, csc.CBPDNOptions(max_iter=40, rel_stop_tol=0.0, backend=backend))
    solver.solve(S[:1])  # warm-up: kernels, plans
    S = S if backend == "numba" else S[:2]
    t = time.perf_counter(); solver.solve(S); print(time.perf_counter() - t)
else:
    import dataclasses
    D = torch.randn(16, 8, 8, generator=g, dtype=torch.float64)
    S = torch.randn(8, 64, 64, generator=g, dtype=torch.float64)
    def opts(n):
        o = csc.DictLearnOptions(max_iter=n)
        return dataclasses.replace(o, cbpdn=o.cbpdn.replace(backend=backend))
    csc.DictLearn(D, 0.1, opts(2)).solve(S)  # warm-up
    t = time.perf_counter(); csc.DictLearn(D, 0.1, opts(15)).solve(S); print(time.perf_counter() - t)
"""


def _time(tree: Path, case: tuple[str, str]) -> float:
    env = {"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD, *case], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/tree_speed"))
    a = ap.parse_args(argv)
    rows = {}
    for name, case in CASES.items():
        t = {"old": [], "new": []}
        for _ in range(a.repeats):
            for which, tree in (("old", a.old), ("new", a.new)):
                t[which].append(_time(tree, case))
        med = {k: statistics.median(v) for k, v in t.items()}
        best = {k: min(v) for k, v in t.items()}
        rows[name] = {"old_s": t["old"], "new_s": t["new"], "median_old_s": med["old"],
                      "median_new_s": med["new"], "new_over_old": med["new"] / med["old"],
                      "best_new_over_old": best["new"] / best["old"]}
        print(f"{name:30s} median old {med['old']:.3f} s new {med['new']:.3f} s (new/old {med['new'] / med['old']:.3f}); "
              f"best new/old {best['new'] / best['old']:.3f}", flush=True)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "tree_speed.json").write_text(json.dumps({"old": str(a.old), "new": str(a.new), "cases": rows},
                                                       indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

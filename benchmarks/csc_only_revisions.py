"""csc's own ms/iteration of two source trees, alternated, for a low-noise before/after check.

    python benchmarks/csc_only_revisions.py OLD_TREE NEW_TREE [--reps 4] [--json F]

Each measurement runs in a fresh subprocess importing csc from the given tree: one
256×256 image (barbara's central crop, highpass), K = 144 kernels 12×12, λ = 0.05, 20
iterations, statistics off, best of 3 solves after a warm-up, on 2 threads.
"""

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import sys, time, json, torch
sys.path.insert(0, sys.argv[1])
import csc
torch.set_num_threads(2)
g = torch.Generator().manual_seed(0)
out = {}
for dt in (torch.float32, torch.float64):
    D = torch.randn(144, 12, 12, generator=g, dtype=torch.float64).to(dt)
    D = D / D.square().sum((1, 2), keepdim=True).sqrt()
    S = torch.randn(256, 256, generator=g, dtype=torch.float64).to(dt)
    o = csc.CBPDNOptions(max_iter=20, rel_stop_tol=0.0, record_stats=False)
    csc.ConvBPDN(D, 0.05, o.replace(max_iter=3)).solve(S)
    best = 1e9
    for _ in range(3):
        t0 = time.perf_counter(); csc.ConvBPDN(D, 0.05, o).solve(S); best = min(best, time.perf_counter() - t0)
    out[str(dt).split('.')[-1]] = 1e3 * best / 20
print(json.dumps(out))
"""


def measure(tree: str) -> dict:
    env = dict(os.environ, PYTHONPATH=tree)
    res = subprocess.run([sys.executable, "-c", CHILD, tree], capture_output=True, text=True, env=env, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--reps", type=int, default=4)
    ap.add_argument("--json")
    a = ap.parse_args()
    rows = {"old": [], "new": []}
    for _ in range(a.reps):
        for side in ("old", "new"):
            rows[side].append(measure(getattr(a, side)))
            print(side, rows[side][-1], flush=True)
    summary = {}
    for dt in ("float32", "float64"):
        o, n = min(r[dt] for r in rows["old"]), min(r[dt] for r in rows["new"])
        summary[dt] = {"old_ms_per_iter": o, "new_ms_per_iter": n, "new_over_old_time": n / o}
        print(f"{dt}: old {o:.1f} ms/it, new {n:.1f} ms/it, new/old time {n / o:.3f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"runs": rows, "summary": summary}, f, indent=1)


if __name__ == "__main__":
    main()

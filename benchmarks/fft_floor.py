"""The FFT floor of one CBPDN ADMM iteration, against the iteration itself (csc and SPORCO).

    python benchmarks/fft_floor.py --out benchmarks/results/peers/fft_floor.json [--cases gry 256k144 512k36]

Every ADMM iteration for CBPDN transforms K coefficient maps forward (y − u) and K back
(x̂): 2K real 2-D FFTs of H × W. Neither engine can go below that time; this script times
those transforms alone (csc's planned FFTW pair and SPORCO's pyFFTW calls) and one
iteration of each engine (objective recorded, as in time_to_accuracy.py), one thread,
float64, and reports the FFT share of each iteration and the largest per-iteration ratio
csc could reach against SPORCO if everything but the FFTs cost nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bench import peers as bp  # noqa: E402

bp.single_thread()

import numpy as np  # noqa: E402


def _best(fn, reps: int) -> float:
    fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def fft_pair_seconds(K: int, H: int, W: int, reps: int) -> dict:
    """Seconds of K forward + K inverse real 2-D FFTs: csc's planned FFTW pair (its fused CPU
    back end's) and pyFFTW through sporco.fft (SPORCO's)."""
    from sporco import fft as sp_fft

    from csc.backends import fused

    t = np.empty((1, K, H, W))
    xf = np.empty((1, K, H, W // 2 + 1), dtype=np.complex128)
    x = np.empty((1, K, H, W))
    pair = fused.FFTPair(t, xf, x, 1)  # plans before the data is written
    src = np.random.RandomState(0).randn(1, K, H, W)

    def csc_pair():
        t[:] = src  # the forward transform may destroy its input
        pair.forward(t, xf)
        pair.inverse(xf, x)

    a = np.random.RandomState(0).randn(H, W, 1, 1, K)  # SPORCO's layout (spatial axes first)
    af = sp_fft.rfftn(a, None, (0, 1))
    copy = _best(lambda: t.__setitem__(slice(None), src), reps)
    return {"csc": _best(csc_pair, reps) - copy, "sporco": _best(
        lambda: (sp_fft.rfftn(a, None, (0, 1)), sp_fft.irfftn(af.copy(), (H, W), (0, 1))), reps),
        "fft_backend": pair.backend}


def iteration_seconds(s, D, lmbda, iters: int) -> dict:
    """Seconds per iteration (median over the run) of csc's and SPORCO's ADMM, objective on y."""
    L = bp.lipschitz(D, s.shape)
    out = {}
    for name in ("csc-admm", "sporco-admm"):
        t, _ = bp.run_engine(name, s, D, lmbda, iters, L)
        out[name] = float(np.median(np.diff(t)))
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/results/peers/fft_floor.json")
    p.add_argument("--cases", nargs="+", default=["gry", "256k144", "512k36"])
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--reps", type=int, default=5)
    a = p.parse_args(argv)
    rec = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "threads": 1, "dtype": "float64", "cases": {}}
    for case in a.cases:
        s, D, lmbda, desc = bp.problem_case(case)
        K, (H, W) = D.shape[0], s.shape
        fft = fft_pair_seconds(K, H, W, a.reps)
        it = iteration_seconds(s, D, lmbda, a.iters)
        rec["cases"][case] = c = {"description": desc, "K": K, "shape": [H, W], "fft_pair_s": fft, "iteration_s": it,
                                  "csc_fft_share": fft["csc"] / it["csc-admm"],
                                  "sporco_fft_share": fft["sporco"] / it["sporco-admm"],
                                  "iteration_ratio": it["sporco-admm"] / it["csc-admm"],
                                  "ratio_bound": it["sporco-admm"] / min(fft["csc"], fft["sporco"])}
        print(f"{case}: 2K FFTs csc {fft['csc'] * 1e3:.1f} ms, SPORCO {fft['sporco'] * 1e3:.1f} ms; iteration csc "
              f"{it['csc-admm'] * 1e3:.1f} ms ({c['csc_fft_share']:.0%} FFT), SPORCO {it['sporco-admm'] * 1e3:.1f} ms "
              f"({c['sporco_fft_share']:.0%} FFT); ratio {c['iteration_ratio']:.2f}×, bound {c['ratio_bound']:.2f}×",
              flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(rec, indent=1))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()

"""Dictionary-learning time, csc against SPORCO, at SPORCO's example size.

Default problem (SPORCO's ``cbpdndl`` example, gray): 5 images 128×128 (central crops of
SPORCO's bundled barbara, kodim23, monarch, sail, tulips, scaled to [0, 1], highpass
part of a Tikhonov filter λ = 5), K = 64 random kernels 8×8 (seed 12345), λ = 0.2,
200 outer iterations of the batch learner, every option given to both explicitly.
Both run in one process on ``--threads`` threads (torch and pyFFTW), each after an
untimed 2-iteration warm-up; the script prints both times (and seconds per outer
iteration), the ratio and the agreement of the two dictionaries, and writes a JSON record
with the machine (``benchmarks.bench.machine_info``) when asked.

    python benchmarks/bench_dictlearn.py --json benchmarks/results/dictlearn.json   # full size (minutes)
    python benchmarks/bench_dictlearn.py --size 32 --kernels 8 --iters 5            # quick check
    python benchmarks/bench_dictlearn.py --device cuda --dtype float32
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bench import highpass, machine_info, warn_if_busy, write_json  # noqa: E402
from csc.learn.dictlearn import DictLearn, DictLearnOptions  # noqa: E402
from csc.runtime.device import resolve_device  # noqa: E402

NAMES = ["barbara.png", "kodim23.png", "monarch.png", "sail.png", "tulips.png"]


def training_images(size: int, n: int = 5) -> np.ndarray:
    """(size, size, n): central crops of SPORCO's example images, each its SPORCO
    Tikhonov highpass (:func:`benchmarks.bench.highpass`, the reference problem's filter)."""
    from sporco import util

    ex = util.ExampleImages(scaled=True, gray=True)
    out = []
    for name in (NAMES * (n // len(NAMES) + 1))[:n]:
        img = ex.image(name).astype(np.float64)
        r0, c0 = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
        out.append(highpass(img[r0:r0 + size, c0:c0 + size]))
    return np.stack(out, -1)  # SPORCO layout (H, W, B)


def sporco_options(lmbda: float, iters: int, dmethod: str) -> dict:
    cbpdn = {"rho": 50.0 * lmbda + 0.5, "MaxMainIter": 1, "RelaxParam": 1.8, "AbsStopTol": 0.0,
             "RelStopTol": 1e-3, "L1Weight": 1.0, "NonNegCoef": False, "NoBndryCross": False,
             "AuxVarObj": False, "HighMemSolve": False,
             "AutoRho": {"Enabled": True, "Period": 10, "Scaling": 2.0, "RsdlRatio": 10.0, "RsdlTarget": 1.0,
                         "AutoScaling": False, "StdResiduals": False}}
    if dmethod == "pgm":
        ccmod = {"L": 50.0, "MaxMainIter": 1, "ZeroMean": True, "RelStopTol": 1e-3}
    else:
        ccmod = {"rho": 10.0, "MaxMainIter": 1, "RelaxParam": 1.8, "ZeroMean": True, "AbsStopTol": 0.0,
                 "RelStopTol": 1e-3, "AutoRho": {"Enabled": False, "Period": 10, "Scaling": 2.0,
                                                 "RsdlRatio": 10.0, "RsdlTarget": 1.0, "AutoScaling": False,
                                                 "StdResiduals": False}}
    return {"MaxMainIter": iters, "AccurateDFid": False, "Verbose": False, "CBPDN": cbpdn, "CCMOD": ccmod}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--images", type=int, default=5)
    p.add_argument("--kernels", type=int, default=64)
    p.add_argument("--kernel-size", type=int, default=8)
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--lmbda", type=float, default=0.2)
    p.add_argument("--dmethod", choices=["pgm", "cns"], default="pgm")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for torch and pyFFTW (default: every CPU this process may run on)")
    p.add_argument("--skip-sporco", action="store_true", help="time csc only")
    p.add_argument("--json", default=None, help="write the results to this JSON file")
    args = p.parse_args(argv)

    from sporco import fft as sp_fft
    from sporco.dictlrn import cbpdndl

    threads = args.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    sp_fft.pyfftw_threads = threads
    sp_fft.pyfftw_planner_effort = "FFTW_ESTIMATE"  # planning cost is not part of learning
    warn_if_busy()
    S = training_images(args.size, args.images)
    D0 = np.random.RandomState(12345).randn(args.kernel_size, args.kernel_size, args.kernels)
    sopt = sporco_options(args.lmbda, args.iters, args.dmethod)
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    device = resolve_device(args.device, arg="--device")

    opts = DictLearnOptions.from_sporco(sopt, dmethod=args.dmethod, dtype=dtype, device=device)
    images = torch.from_numpy(S.transpose(2, 0, 1).copy()).to(device=device, dtype=dtype)
    D0t = torch.from_numpy(D0.transpose(2, 0, 1).copy()).to(device=device, dtype=dtype)
    DictLearn(D0t, args.lmbda, opts.replace(max_iter=2)).solve(images)  # warm-up (kernels, plans)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    res = DictLearn(D0t, args.lmbda, opts).solve(images)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t_csc = time.perf_counter() - t0
    record = {"images": args.images, "size": args.size, "kernels": args.kernels, "kernel_size": args.kernel_size,
              "iters": args.iters, "lmbda": args.lmbda, "dmethod": args.dmethod, "device": str(device),
              "dtype": args.dtype, "threads": threads, "csc_seconds": t_csc, "csc_s_per_iter": t_csc / args.iters,
              "csc_final_objective": float(res.stats.objective[-1])}
    print(f"csc    ({device}, {args.dtype}): {t_csc:8.2f} s  final objective {res.stats.objective[-1]:.6g}")
    if not args.skip_sporco:
        def sporco_learner(opt):
            return cbpdndl.ConvBPDNDictLearn(D0, S, args.lmbda, cbpdndl.ConvBPDNDictLearn.Options(opt, dmethod=args.dmethod),
                                             dmethod=args.dmethod)

        sporco_learner(dict(sopt, MaxMainIter=2)).solve()  # warm-up (pyFFTW interfaces)
        t0 = time.perf_counter()
        sp = sporco_learner(sopt)
        Ds = sp.solve().squeeze()
        t_sp = time.perf_counter() - t0
        Dc = res.dictionary.detach().cpu().double().numpy().transpose(1, 2, 0)
        rel = float(np.linalg.norm(Dc - Ds) / np.linalg.norm(Ds))
        record.update(sporco_seconds=t_sp, sporco_s_per_iter=t_sp / args.iters, ratio=t_sp / t_csc,
                      dictionary_rel_diff=rel,
                      sporco_final_objective=float(sp.getitstat().ObjFun[-1]))
        print(f"SPORCO (cpu, float64):   {t_sp:8.2f} s  final objective {record['sporco_final_objective']:.6g}")
        print(f"ratio SPORCO / csc: {t_sp / t_csc:.2f}x   dictionary relative difference {rel:.2e}")
    if args.json:
        report = {"machine": machine_info(str(device), threads, "FFTW_ESTIMATE"), "results": record}
        print(f"wrote {write_json(args.json, report)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

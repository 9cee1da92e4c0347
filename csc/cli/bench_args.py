"""The options of ``csc bench`` (and ``benchmarks/compare_sporco.py``), apart from the harness.

Building the ``csc`` parser needs these options but not the harness itself (the SPORCO
comparison, ``benchmarks/bench/`` in the repository checkout), which is imported only when
the command runs (:mod:`csc.cli.bench`); the harness builds its own parser from
:func:`add_arguments` too, so the two agree. :func:`have_sporco` and
:data:`SPORCO_MISSING` are the command's and the harness's check for SPORCO. This module
imports nothing but :mod:`argparse`, :mod:`importlib.util` (and the argument types of
:mod:`csc.cli.argtypes`).
"""

from __future__ import annotations

import argparse
import importlib.util

from csc.cli.argtypes import nonneg_float, nonneg_int, positive_int

__all__ = ["add_arguments", "have_sporco", "PEER_ENGINES", "SPORCO_MISSING"]

SPORCO_MISSING = ("the comparison needs SPORCO (the reference implementation), which is not installed: "
                  "pip install sporco==0.2.2.post1 (or pip install -e '.[dev]')")


def have_sporco() -> bool:
    """True when SPORCO can be imported (without importing it)."""
    return importlib.util.find_spec("sporco") is not None


#: engines of ``csc bench --peers`` (benchmarks.bench.peers.ENGINES, and csc's ADMM on DiCoDiLe's problem)
PEER_ENGINES = ("csc-admm", "csc-fista", "sporco-admm", "sporco-pgm", "sporco-par", "scico", "dicodile",
                "csc-admm-f32", "sporco-admm-f32", "csc-admm-nn")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The comparison's options (shared by ``csc bench``, ``python -m benchmarks.bench`` and benchmarks/compare_sporco.py)."""
    p.add_argument("--size", type=positive_int, default=256, help="side of the central crop of barbara (single-image mode)")
    p.add_argument("--kernels", type=positive_int, default=144, help="number of kernels K")
    p.add_argument("--ksize", type=positive_int, default=12, help="kernel side")
    p.add_argument("--lmbda", type=nonneg_float, default=0.05, help="regularisation weight λ")
    p.add_argument("--problem", default="cbpdn",
                   choices=["cbpdn", "elastic-net", "grad-reg", "l1l1-grd", "mask-dcpl", "colour", "joint"],
                   help="coding problem: ConvBPDN, ConvElasticNet, ConvBPDNGradReg, ConvL1L1Grd or "
                        "ConvBPDNMaskDcpl (SPORCO's class of the same name on its side; GradWeight 1; "
                        "mask-dcpl: a random 0/1 mask, 30%% missing); colour: ConvBPDN with a "
                        "multi-channel (K, 3, kh, kw) dictionary on a colour image (kodim23); joint: "
                        "ConvBPDNJoint on that colour image")
    p.add_argument("--mu", type=nonneg_float, default=0.1,
                   help="elastic-net, grad-reg, l1l1-grd, joint: weight μ of the ℓ2, gradient or ℓ2,1 term "
                        "(SPORCO's mu)")
    p.add_argument("--iters", type=positive_int, default=50, help="ADMM iterations of each timed solve (fixed: RelStopTol 0)")
    p.add_argument("--repeats", type=positive_int, default=3, help="timed solves per implementation and dtype")
    p.add_argument("--warmup-iters", type=nonneg_int, default=5,
                   help="iterations of the untimed warm-up solve (FFTW planning, plan caches)")
    p.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    p.add_argument("--device", default="cpu", help="csc's device: cpu or cuda[:n] (SPORCO is CPU only)")
    p.add_argument("--backend", default="auto", choices=["auto", "numba", "compiled", "torch"],
                   help="csc's back end (CBPDNOptions.backend): auto = fused numba kernels on the CPU, "
                        "the torch.compile back end on CUDA")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="threads for torch and pyFFTW (default: every CPU this process may run on)")
    p.add_argument("--seed", type=nonneg_int, default=12345, help="seed of the dictionary (and of the batch crops)")
    p.add_argument("--batch", type=positive_int, default=None, metavar="B",
                   help="batch mode: B different crops, csc as one batch vs SPORCO one by one")
    p.add_argument("--crop", type=positive_int, default=128, help="crop side in batch mode")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurements")
    p.add_argument("--mem-iters", type=positive_int, default=3,
                   help="iterations of the memory-measured solve (the peak is reached in the first)")
    p.add_argument("--mem-warmup-iters", type=nonneg_int, default=1, help="iterations of the memory child's warm-up solve")
    p.add_argument("--mem-allocator", choices=["mmap", "glibc"], default="mmap",
                   help="memory children: 'mmap' fixes glibc's mmap threshold at 128 KiB so that RSS "
                        "follows the live data; 'glibc' keeps the default allocator")
    p.add_argument("--bandwidth-mb", type=nonneg_float, default=256.0,
                   help="size of the tensor copied to measure the device's memory bandwidth (0: no floor)")
    p.add_argument("--json", type=str, default=None, metavar="PATH", help="write the full report here")
    p.add_argument("--peers", nargs="+", default=None, metavar="ENGINE", choices=PEER_ENGINES,
                   help="time to accuracy of these engines instead of the per-iteration comparison: "
                        f"{', '.join(PEER_ENGINES)} (single-threaded, float64, --iters iterations each, the "
                        "--size/--kernels/--ksize/--lmbda/--seed problem; peers not installed are skipped)")
    p.add_argument("--peers-on", choices=["y", "x"], default="y",
                   help="--peers: evaluate the ADMM engines' objective on their sparse split variable y "
                        "(the code they return; default) or on the dense x")

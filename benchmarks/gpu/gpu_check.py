"""Throughput of csc's solve on one device, and a synthetic dataset encoding; one JSON report.

Run by ``benchmarks/gpu/check.sh`` (after the CUDA tests). Two parts:

1. the iteration: images of ``--size``² with K = ``--kernels`` random 12×12 kernels, float32
   and float64, batches of ``--batches`` images, a fixed number of iterations (RelStopTol
   0, no statistics): image-iterations per second, and the ratio of the measured time to
   the copy-bandwidth floor of the iteration (the bytes the fused iteration must move at
   least, :data:`MAP_PASSES` passes over a coefficient map, at the device's measured copy
   bandwidth: 1 would be a memory-bound iteration running at copy speed);
2. a dataset: ``--dataset-count`` random images of ``--dataset-size``² encoded into a code
   store with the shipped heterogeneous dictionary (K = 144), ``--dataset-iters`` iterations
   each: images per second.

``--cpu-smoke`` runs both on the CPU at tiny sizes (the test suite runs it, so the script
keeps working where no GPU is).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import csc
from csc.backends import fused as _fused

#: passes over one (K, H, W) map of the working dtype per iteration of the compiled back end:
#: y − u (3), rfft2 (2), the x-step's reduction and update (3), irfft2 (2), the y-step (5),
#: the ρ rescale of u (2)
MAP_PASSES = 17


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def copy_bandwidth(device: torch.device, mbytes: float) -> float:
    """Bytes per second (read + write) of a large tensor copy on ``device``."""
    n = int(mbytes * 2 ** 20) // 4
    a, b = torch.ones(n, device=device), torch.empty(n, device=device)
    b.copy_(a)
    _sync(device)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        b.copy_(a)
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n * 4 / best


def _dictionary(K: int, ksize: int, dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(12345)  # generated on the CPU, moved by the solver
    D = torch.randn(K, ksize, ksize, generator=g, dtype=torch.float64)
    return (D / D.flatten(1).norm(dim=1).view(-1, 1, 1)).to(dtype)


def time_iteration(device, size, K, batch, dtype, iters, backend) -> dict:
    """Seconds per iteration of a batch (the difference of two solve lengths: set-up cancels)."""
    D = _dictionary(K, 12, dtype)
    g = torch.Generator().manual_seed(0)
    S = torch.randn(batch, size, size, generator=g, dtype=torch.float64).to(dtype).to(device)
    opts = csc.CBPDNOptions(max_iter=2, rel_stop_tol=0, record_stats=False, device=device, backend=backend)
    solver = csc.ConvBPDN(D, 0.05, opts)
    solver.solve(S)  # warm-up: compilation, FFT plans, allocator
    times = {}
    for n in (2, 2 + iters):
        solver.options = opts.replace(max_iter=n)
        _sync(device)
        t = time.perf_counter()
        solver.solve(S)
        _sync(device)
        times[n] = time.perf_counter() - t
    return {"seconds_per_iteration": max(times[2 + iters] - times[2], 1e-12) / iters}


def bench_iterations(args, device, backend, bandwidth) -> list[dict]:
    rows = []
    for dt in args.dtypes:
        dtype = getattr(torch, dt)
        for batch in args.batches:
            r = time_iteration(device, args.size, args.kernels, batch, dtype, args.iters, backend)
            spi = r["seconds_per_iteration"]
            itemsize = torch.empty((), dtype=dtype).element_size()
            floor = MAP_PASSES * batch * args.kernels * args.size ** 2 * itemsize / bandwidth
            rows.append({"dtype": dt, "batch": batch, "size": args.size, "kernels": args.kernels,
                         "ms_per_iteration": 1e3 * spi, "image_iterations_per_s": batch / spi,
                         "floor_ms": 1e3 * floor, "ratio_to_floor": spi / floor})
            print(f"  {dt} batch {batch:3d}: {1e3 * spi:9.2f} ms/iter, {batch / spi:10.1f} image-iter/s, "
                  f"{spi / floor:5.2f}× the copy floor", flush=True)
    return rows


def bench_dataset(args, device) -> dict:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.dataset_count, args.dataset_size, args.dataset_size), dtype=np.uint8)
    labels = rng.integers(0, 10, args.dataset_count).astype(np.int64)
    settings = csc.EncodeSettings(dictionary=args.dictionary, lmbda=0.1, max_iter=args.dataset_iters,
                                  rel_stop_tol=0.0, preprocess="highpass", shard_size=args.shard_size)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        store = csc.encode_dataset(images, labels, Path(tmp) / "store", settings, device=device)
        seconds = time.perf_counter() - t
        nbytes = store.nbytes()
    out = {"images": args.dataset_count, "size": args.dataset_size, "iterations": args.dataset_iters,
           "dictionary": args.dictionary, "shard_size": args.shard_size, "seconds": seconds,
           "images_per_s": args.dataset_count / seconds, "store_bytes": nbytes}
    print(f"  dataset: {args.dataset_count} images {args.dataset_size}² in {seconds:.1f} s "
          f"({out['images_per_s']:.1f} images/s)", flush=True)
    return out


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--backend", default="auto", choices=["auto", "numba", "compiled", "torch"])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--kernels", type=int, default=144)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--dataset-count", type=int, default=10000)
    p.add_argument("--dataset-size", type=int, default=64)
    p.add_argument("--dataset-iters", type=int, default=200)
    p.add_argument("--shard-size", type=int, default=1000)
    p.add_argument("--dictionary", default="heterogeneous")
    p.add_argument("--bandwidth-mb", type=float, default=1024.0)
    p.add_argument("--out", default=None, help="JSON report (default benchmarks/results/gpu_check_<device>.json)")
    p.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on the CPU (the test suite's run)")
    args = p.parse_args(argv)
    if args.cpu_smoke:
        args.device, args.size, args.kernels, args.batches, args.iters = "cpu", 24, 8, [1, 2], 2
        args.dataset_count, args.dataset_size, args.dataset_iters, args.shard_size = 6, 16, 3, 4
        args.bandwidth_mb = 16.0
    return args


def main(argv=None) -> int:
    args = parse(argv)
    device = torch.device(args.device)
    backend = _fused.select_backend(args.backend, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"device {device} ({name}), back end {backend}, torch {torch.__version__}", flush=True)
    bandwidth = copy_bandwidth(device, args.bandwidth_mb)
    print(f"  copy bandwidth {bandwidth / 1e9:.1f} GB/s", flush=True)
    report = {"device": str(device), "device_name": name, "backend": backend, "torch": torch.__version__,
              "cuda": torch.version.cuda, "csc": getattr(csc, "__version__", None), "python": sys.version.split()[0],
              "copy_bandwidth_gb_s": bandwidth / 1e9, "map_passes": MAP_PASSES, "cpu_smoke": args.cpu_smoke,
              "iterations": bench_iterations(args, device, backend, bandwidth), "dataset": bench_dataset(args, device)}
    out = Path(args.out or Path(__file__).resolve().parents[1] / "results" / f"gpu_check_{device.type}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

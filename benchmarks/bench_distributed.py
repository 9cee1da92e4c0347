"""Speed-up of data-parallel dataset encoding (``torchrun ... -m csc encode-dataset``) on CPU.

Encodes the same images into a code store with 1, 2, … processes (torchrun, gloo on
loopback, a fixed number of intra-op threads per process) and reports, per process
count, the encoding wall time (from a barrier after loading to a barrier after the
manifest is written: no interpreter start-up or data loading), the whole launch's wall
time, the speed-up over one process, and whether the store equals the one-process store
byte for byte. Writes JSON (machine, torch version, threads per process, load average).

    python benchmarks/bench_distributed.py                       # 256 Fashion-MNIST images, 1 and 2 processes
    python benchmarks/bench_distributed.py --nprocs 1 2 4 --threads 1 --repeats 3
    python benchmarks/bench_distributed.py --source synthetic --images 64 --max-iter 10   # quick

The script runs itself under torchrun (``--worker``) for each measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _images(args):
    import numpy as np

    if args.source == "fashion-mnist":
        from csc.pipeline.sources import load_fashion_mnist

        ds = load_fashion_mnist("train", args.root)
        return ds.images[: args.images], ds.labels[: args.images]
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.images, args.size, args.size), dtype=np.uint8)
    return x, rng.integers(0, 10, args.images)


def _settings(args):
    from csc.pipeline.store import EncodeSettings

    return EncodeSettings(dictionary=args.dictionary, lmbda=args.lmbda, max_iter=args.max_iter,
                          rel_stop_tol=args.rel_stop_tol, shard_size=args.shard_size, value_dtype="float16")


def worker(args) -> int:
    import torch

    from csc.runtime import distributed as cdist
    from csc.pipeline.store import encode_dataset

    torch.set_num_threads(args.threads)
    cdist.init_distributed("cpu")
    try:
        images, labels = _images(args)
        settings = _settings(args)
        cdist.barrier()
        t0 = time.perf_counter()
        store = encode_dataset(images, labels, args.out, settings, device="cpu")
        cdist.barrier()
        seconds = time.perf_counter() - t0
        if cdist.is_main_process():
            Path(args.timing).write_text(json.dumps({
                "encode_wall_seconds": seconds, "world_size": cdist.get_world_size(),
                "threads": torch.get_num_threads(), "shards": len(store.shards),
                "sum_shard_seconds": store.manifest["encode_seconds"],
            }))
    finally:
        cdist.cleanup()
    return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _machine() -> dict:
    """The shared machine record (benchmarks.bench.machine_info) plus torch's inter-op threads."""
    import torch

    if str(Path(__file__).resolve().parents[1]) not in sys.path:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.bench import machine_info

    info = machine_info("cpu", None, None)
    info["torch_num_interop_threads"] = torch.get_num_interop_threads()
    return info


def _same_store(a: Path, b: Path) -> bool:
    fa = sorted(p.name for p in a.glob("shard-*.npz"))
    if fa != sorted(p.name for p in b.glob("shard-*.npz")):
        return False
    return all((a / f).read_bytes() == (b / f).read_bytes() for f in fa)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", choices=["fashion-mnist", "synthetic"], default="fashion-mnist")
    p.add_argument("--root", default=None, help="Fashion-MNIST folder (default: the Debian package's)")
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--size", type=int, default=28, help="synthetic image side")
    p.add_argument("--dictionary", default="heterogeneous")
    p.add_argument("--lmbda", type=float, default=0.1)
    p.add_argument("--max-iter", type=int, default=30)
    p.add_argument("--rel-stop-tol", type=float, default=1e-2)
    p.add_argument("--shard-size", type=int, default=32)
    p.add_argument("--nprocs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--threads", type=int, default=1, help="intra-op threads per process")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--note", default="", help="free text stored in the JSON (e.g. what else ran)")
    p.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "distributed_encode_cpu.json"))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--timing", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)

    work = Path(tempfile.mkdtemp(prefix="csc-bench-dist-"))
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads), MASTER_ADDR="127.0.0.1")
    if Path("/sys/class/net/lo").exists():
        env["GLOO_SOCKET_IFNAME"] = "lo"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    passthrough = ["--source", args.source, "--images", str(args.images), "--size", str(args.size),
                   "--dictionary", args.dictionary, "--lmbda", str(args.lmbda), "--max-iter", str(args.max_iter),
                   "--rel-stop-tol", str(args.rel_stop_tol), "--shard-size", str(args.shard_size),
                   "--threads", str(args.threads)] + (["--root", args.root] if args.root else [])
    load_before = os.getloadavg()
    runs = []
    reference = None
    try:
        for n in args.nprocs:
            for r in range(args.repeats):
                out, timing = work / f"store-{n}-{r}", work / f"timing-{n}-{r}.json"
                cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(n), "--nnodes", "1",
                       "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), str(Path(__file__).resolve()),
                       "--worker", "--out", str(out), "--timing", str(timing), *passthrough]
                t0 = time.perf_counter()
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
                launch = time.perf_counter() - t0
                if proc.returncode:
                    print(proc.stdout + proc.stderr, file=sys.stderr)
                    return proc.returncode
                t = json.loads(timing.read_text())
                if reference is None:
                    reference = out
                t.update(nprocs=n, repeat=r, launch_wall_seconds=launch,
                         identical_to_first_store=_same_store(reference, out), load_average=os.getloadavg())
                runs.append(t)
                print(f"{n} process(es), repeat {r}: encode {t['encode_wall_seconds']:.2f} s "
                      f"(launch {launch:.2f} s), identical store: {t['identical_to_first_store']}", flush=True)
                if out != reference:
                    shutil.rmtree(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    best = {n: min(r["encode_wall_seconds"] for r in runs if r["nprocs"] == n) for n in args.nprocs}
    base = best.get(1, best[min(best)])
    summary = [{"nprocs": n, "best_encode_wall_seconds": s, "images_per_second": args.images / s,
                "speedup_vs_1": base / s} for n, s in best.items()]
    report = {
        "benchmark": "distributed dataset encoding (torchrun, gloo, CPU)",
        "machine": _machine(), "threads_per_process": args.threads,
        "load_average_before": load_before, "load_average_after": os.getloadavg(), "note": args.note,
        "problem": {"source": args.source, "images": args.images,
                    "image_size": 28 if args.source == "fashion-mnist" else args.size,
                    "settings": {k: v for k, v in vars(_settings(args)).items()}},
        "summary": summary, "runs": runs,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=1))
    for s in summary:
        print(f"{s['nprocs']} process(es): {s['best_encode_wall_seconds']:.2f} s, "
              f"{s['images_per_second']:.1f} images/s, speed-up {s['speedup_vs_1']:.2f}x")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

r"""Cost of :mod:`csc.nn`'s implicit backward against its forward (issue 31's benchmark).

Cases (``--cases``): ``256x1`` — one 256² photograph, K = 144 (the shipped heterogeneous
log-Gabor dictionary, 12×12), float32, the paper's size; ``128x8`` — a batch of 8 crops of
128², same dictionary. The images are gray photographs (scikit-image), Tikhonov high-passed
(λ = 5, as SPORCO's examples). The forward is ``conv_sparse_code`` at λ (default 0.05) with
``CBPDNOptions(rel_stop_tol=1e-3)``; the backward is ``(codes * G).sum().backward()`` with G
a fixed random tensor (a dense incoming gradient), CG at its float32 default tolerance.

For each case: whether CG reached its tolerance (and its largest relative residual), forward and backward seconds (best of ``--repeats``, after one warm-up run),
their ratio (goal: backward ≤ forward), CG iterations (mean and max over images), the
support fraction |S|/(K·H·W), ADMM iterations, and the peak memory above the inputs of each
phase — ``torch.cuda.max_memory_allocated`` on CUDA; on the CPU the resident-set peak sampled
every millisecond by a thread (``/proc/self/statm``), so allocator effects are included.

    python benchmarks/nn_backward.py --out benchmarks/results/nn [--device cuda] [--quick]

Writes ``nn_backward_<device>.json`` and prints a table. ``--quick`` is a tiny run (tests).
The GPU check (``benchmarks/gpu/gpu_check.py``) calls :func:`measure` in its ``nn`` section.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

import torch

import csc
from csc.nn import BackwardRecord, CGOptions
from csc.nn.functional import conv_sparse_code
from csc.pipeline.preprocess import center_crop, resize, tikhonov_filter
from csc.pipeline.sources.folders import builtin_photographs

CASES = {"256x1": (256, 1), "128x8": (128, 8)}


def images(size: int, batch: int, dtype, device) -> torch.Tensor:
    """``batch`` high-passed gray photographs of size², on ``device``."""
    names = ("camera", "astronaut", "coffee", "chelsea", "rocket", "clock", "coins", "moon")
    out = []
    for img in builtin_photographs(names[:batch] if batch <= len(names) else names).images:
        t = torch.as_tensor(img, dtype=torch.float64)
        t = resize(t, (max(size, round(t.shape[0] * size / min(t.shape))),) * 2) if min(t.shape) > 2 * size else t
        out.append(center_crop(t, size))
    S = torch.stack([out[i % len(out)] for i in range(batch)])
    return tikhonov_filter(S, 5.0).highpass.to(dtype=dtype, device=device)


class _PeakRSS:
    """Resident-set peak (bytes) sampled by a thread while the context is open (CPU)."""

    def __init__(self):
        self.page = os.sysconf("SC_PAGE_SIZE")

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.001)

    def __enter__(self):
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._rss())


def _phase(device: torch.device, fn):
    """(seconds, peak bytes above the phase's start, fn's value)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        t = time.perf_counter()
        value = fn()
        torch.cuda.synchronize(device)
        return time.perf_counter() - t, torch.cuda.max_memory_allocated(device) - base, value
    with _PeakRSS() as m:
        t = time.perf_counter()
        value = fn()
        dt = time.perf_counter() - t
    return dt, m.peak - m.base, value


def measure(size: int, batch: int, *, device="cpu", dtype=torch.float32, K: int | None = None, lmbda: float = 0.05,
            repeats: int = 2, backend: str = "auto", cg_max_iter: int = 1000, preconditioner: str = "block") -> dict:
    """One case's figures (module docstring)."""
    device = torch.device(device)
    D = csc.load_dictionary("heterogeneous", dtype=dtype, device=device)
    D = D[:K] if K else D
    S = images(size, batch, dtype, device)
    G = torch.randn((batch, D.shape[0], size, size), generator=torch.Generator().manual_seed(0)).to(dtype=dtype,
                                                                                                 device=device)
    opts = csc.CBPDNOptions(rel_stop_tol=1e-3, max_iter=2000, backend=backend, record_stats=False)
    rows = []
    for rep in range(repeats + 1):  # the first run warms up (kernels, plans, caches)
        Dp = D.clone().requires_grad_(True)
        record = BackwardRecord()
        cg = CGOptions(max_iter=cg_max_iter, on_not_converged="ignore",  # reported below instead
                       preconditioner=preconditioner)
        t_f, m_f, codes = _phase(device, lambda: conv_sparse_code(S, Dp, lmbda, opts, cg=cg, record=record))
        t_b, m_b, _ = _phase(device, lambda: (codes * G).sum().backward())
        rows.append(dict(forward_s=t_f, backward_s=t_b, forward_peak_bytes=m_f, backward_peak_bytes=m_b,
                         cg_iterations_mean=float(record.iterations.double().mean()),
                         cg_iterations_max=int(record.iterations.max()), cg_converged=bool(record.converged),
                         cg_relative_residual_max=float(record.relative_residual.max()),
                         support_fraction=float(record.support.double().mean()) / (D.shape[0] * size * size)))
        del codes, Dp
    best = min(rows[1:] or rows, key=lambda r: r["forward_s"] + r["backward_s"])
    return dict(case=f"{size}x{batch}", size=size, batch=batch, K=int(D.shape[0]), lmbda=lmbda, dtype=str(dtype),
                device=str(device), backend=backend, preconditioner=preconditioner, **best, backward_over_forward=best["backward_s"] / best["forward_s"],
                memory_backward_over_forward=best["backward_peak_bytes"] / max(best["forward_peak_bytes"], 1),
                runs=rows)


def _machine() -> dict:
    return dict(python=platform.python_version(), torch=torch.__version__, threads=torch.get_num_threads(),
                cpu=platform.processor() or platform.machine(),
                cuda=torch.cuda.get_device_name() if torch.cuda.is_available() else None)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/nn"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="a tiny run: 32² images, K = 8")
    p.add_argument("--cg-max-iter", type=int, default=1000)
    p.add_argument("--preconditioner", choices=("block", "none"), default="block",
                   help="the backward CG's preconditioner (CGOptions.preconditioner)")
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    tag = "" if a.preconditioner == "block" else f"_{a.preconditioner}"
    path = a.out / f"nn_backward_{torch.device(a.device).type}{tag}{'_quick' if a.quick else ''}.json"
    report = dict(command=" ".join(["python", "benchmarks/nn_backward.py"] + (argv or sys.argv[1:])),
                  machine=_machine(), quick=a.quick, results=[])
    results = report["results"]
    for name in a.cases:
        size, batch = (32, min(CASES[name][1], 2)) if a.quick else CASES[name]
        r = measure(size, batch, device=a.device, K=8 if a.quick else None, repeats=1 if a.quick else a.repeats,
                    cg_max_iter=a.cg_max_iter, preconditioner=a.preconditioner)
        results.append(r)
        path.write_text(json.dumps(report, indent=1) + "\n")  # after every case: a killed run keeps the others
        print(f"{r['case']} ({a.preconditioner}): forward {r['forward_s']:.2f} s, backward {r['backward_s']:.2f} s "
              f"(×{r['backward_over_forward']:.2f}), CG {r['cg_iterations_mean']:.0f} it (max {r['cg_iterations_max']}), "
              f"|S| {100 * r['support_fraction']:.2f}%, peak MB fwd {r['forward_peak_bytes'] / 2**20:.0f} "
              f"bwd {r['backward_peak_bytes'] / 2**20:.0f}; CG converged {r['cg_converged']} (relative residual "
              f"≤ {r['cg_relative_residual_max']:.2g})", flush=True)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The GPU check's ``nn_layer`` section: :mod:`csc.nn`'s implicit backward against its forward
(time, CG iterations, peak memory) at the paper's size (256², K = 144, float32) and a batch of
8 at 128², by :func:`benchmarks.nn_backward.measure` (CPU mode: 24², K = 4, float64)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


def _measure():
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from benchmarks.nn_backward import measure

    return measure


def nn_layer(ctx, fig: dict) -> None:
    measure = _measure()
    cases = [(24, 1, 4, torch.float64)] if ctx.cpu_mode else [(256, 1, None, torch.float32),
                                                               (128, 8, None, torch.float32)]
    for size, batch, K, dtype in cases:
        name = f"{size}x{batch}"
        if ctx.over_budget():
            ctx.left_out(name, "the section's budget is spent")
            continue
        r = measure(size, batch, device=ctx.device, K=K, dtype=dtype, repeats=1)
        fig[name] = {k: v for k, v in r.items() if k != "runs"}
        ctx.save()
        print(f"   {name}: forward {r['forward_s']:.3f} s, backward {r['backward_s']:.3f} s, "
              f"CG {r['cg_iterations_mean']:.0f} it", flush=True)

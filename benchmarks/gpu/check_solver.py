"""The GPU check's solver sections: environment, parity, throughput, retiring
(``benchmarks/gpu/gpu_check.py`` runs them; each fills its ``figures`` dict as it goes)."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

import csc
from csc.backends import fused as _fused
from csc.backends.registry import select_backend
from check_common import Skip, peak, reset_peak, sync, timed

#: model passes over one (K, H, W) map of the working dtype per iteration of the compiled
#: back end, used when no counted figure is to be had: y − u (3), rfft2 (2), the x-step's
#: reduction and update (3), irfft2 (2), the y-step (5), the ρ rescale of u (2)
MAP_PASSES = 17
BACKENDS = ("compiled", "torch")


def dictionary(K: int, ksize: int, dtype, seed: int = 12345) -> torch.Tensor:
    """K random kernels of unit norm (made on the CPU: the same on every device)."""
    g = torch.Generator().manual_seed(seed)
    D = torch.randn(K, ksize, ksize, generator=g, dtype=torch.float64)
    return (D / D.flatten(1).norm(dim=1).view(-1, 1, 1)).to(dtype)


def images(n: int, size: int, dtype, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, size, size, generator=g, dtype=torch.float64).to(dtype)


def dynamo_counters() -> dict[str, int]:
    """torch._dynamo's running counts: graphs compiled, frames seen and compiled."""
    from torch._dynamo.utils import counters

    return {"unique_graphs": int(counters["stats"]["unique_graphs"]), "frames_total": int(counters["frames"]["total"]),
            "frames_ok": int(counters["frames"]["ok"])}


def environment(ctx, fig: dict) -> None:
    dev = ctx.device
    fig.update(device=str(dev), torch=torch.__version__, cuda=torch.version.cuda, python=sys.version.split()[0],
               csc=getattr(csc, "__version__", None), numpy=np.__version__, platform=platform.platform(),
               cpu=platform.processor() or platform.machine(), torch_threads=torch.get_num_threads(),
               cuda_available=torch.cuda.is_available())
    fig["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    if dev.type == "cuda" and torch.cuda.is_available():
        p = torch.cuda.get_device_properties(dev)
        fig.update(device_name=p.name, capability=f"{p.major}.{p.minor}", memory_bytes=int(p.total_memory))
    else:
        fig["device_name"] = fig["cpu"] or "cpu"
    try:
        import triton

        fig.update(triton_imports=True, triton=getattr(triton, "__version__", None))
    except Exception as exc:
        fig.update(triton_imports=False, triton=None, triton_error=f"{type(exc).__name__}: {exc}")
    fig["numba_available"] = _fused.available()
    ctx.save()
    from csc.backends.compiled import compile_available, compile_unavailable_reason

    t = time.perf_counter()
    fig["compile_available"] = compile_available(dev)
    fig["compile_unavailable_reason"] = compile_unavailable_reason(dev)
    fig["compile_probe_s"] = time.perf_counter() - t
    fig["CSC_CBPDN_BACKEND"] = os.environ.get("CSC_CBPDN_BACKEND")
    fig["auto_backend"] = select_backend("auto", dev)
    print(f"   {fig['device_name']}: torch {fig['torch']}, CUDA {fig['cuda']}, triton {fig['triton']}, "
          f"compile {'yes' if fig['compile_available'] else 'no'}, auto back end {fig['auto_backend']}", flush=True)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a − b| / max |b| (on the CPU, float64)."""
    a, b = a.detach().cpu().double(), b.detach().cpu().double()
    scale = float(b.abs().max())
    return float((a - b).abs().max()) / (scale if scale > 0 else 1.0)


def parity(ctx, fig: dict, tolerance: float = 1e-10) -> None:
    n, size, K, ksize, max_iter, tol = ctx.cfg.parity
    D, S = dictionary(K, ksize, torch.float64), images(n, size, torch.float64, seed=1)
    opts = csc.CBPDNOptions(max_iter=max_iter, rel_stop_tol=tol, record_stats=False, dtype=torch.float64)
    ref_backend = "numba" if _fused.available() else "torch"
    cpu = torch.device("cpu")
    ref = csc.ConvBPDN(D, ctx.cfg.lmbda, opts.replace(device=cpu, backend=ref_backend)).solve(S)
    fig.update(problem={"images": n, "size": size, "kernels": K, "ksize": ksize, "max_iter": max_iter,
                        "rel_stop_tol": tol, "dtype": "float64"},
               reference=f"cpu/{ref_backend}", reference_iterations=ref.iterations.tolist(), tolerance=tolerance)
    bad = []
    for backend in BACKENDS:
        if ctx.over_budget():
            ctx.left_out(backend, "the section's budget is spent")
            continue
        t = time.perf_counter()
        r = csc.ConvBPDN(D, ctx.cfg.lmbda, opts.replace(device=ctx.device, backend=backend)).solve(S.to(ctx.device))
        row = {"seconds": time.perf_counter() - t, "codes": _rel(r.codes, ref.codes), "u": _rel(r.u, ref.u),
               "x": _rel(r.x, ref.x), "rho": _rel(r.rho, ref.rho), "iterations": r.iterations.tolist()}
        row["iterations_equal"] = row["iterations"] == fig["reference_iterations"]
        fig[backend] = row
        ctx.save()
        print(f"   {backend}: codes {row['codes']:.2e}, u {row['u']:.2e}, rho {row['rho']:.2e}, "
              f"iterations {row['iterations']} (reference {fig['reference_iterations']})", flush=True)
        if max(row[k] for k in ("codes", "u", "rho")) > tolerance or not row["iterations_equal"]:
            bad.append(backend)
    if bad:
        raise AssertionError(f"{', '.join(bad)}: differ from the CPU reference by more than {tolerance:g} "
                             "or in their iteration counts")


def copy_bandwidth(device: torch.device, mbytes: float) -> float:
    """Bytes per second (read + write) of a large tensor copy on ``device``, best of five."""
    n = int(mbytes * 2 ** 20) // 4
    a, b = torch.ones(n, device=device), torch.empty(n, device=device)
    b.copy_(a)
    sync(device)
    best = min(timed(device, lambda: b.copy_(a)) for _ in range(5))
    return 2 * n * 4 / best


def counted_passes(ctx, fig: dict) -> dict[str, float]:
    """Map passes per iteration of each back end: ``count_iteration``'s counted figure,
    else the model :data:`MAP_PASSES` for both (``fig["passes_source"]`` says which)."""
    try:
        from csc.backends.counting import count_iteration
    except Exception as exc:
        fig.update(passes_source="model", passes_note=f"csc.backends.counting: {type(exc).__name__}: {exc}")
        return {b: float(MAP_PASSES) for b in BACKENDS}
    passes, launches = {}, {}
    try:
        for b in BACKENDS:  # on the device (Triton's kernels on CUDA), float32, D's reads amortised over 8 images
            c = count_iteration(b, n=8, K=8, H=32, W=32, dtype=torch.float32, device=ctx.device)
            passes[b], launches[b] = float(c.map_passes), int(c.launches)
    except Exception as exc:
        fig.update(passes_source="model", passes_note=f"count_iteration: {type(exc).__name__}: {exc}")
        return {b: float(MAP_PASSES) for b in BACKENDS}
    fig.update(passes_source="counted", launches=launches)
    return passes


def time_iterations(ctx, backend: str, dtype, batch: int) -> dict:
    """One throughput row: the first solve apart, then seconds per iteration from the
    difference of a short and a long solve (best of ``repeats`` each), not clamped."""
    cfg, dev = ctx.cfg, ctx.device
    D, S = dictionary(cfg.kernels, cfg.ksize, dtype), images(batch, cfg.size, dtype).to(dev)
    short, long_ = 2, 2 + cfg.iters
    opts = csc.CBPDNOptions(max_iter=short, rel_stop_tol=0, record_stats=False, device=dev, backend=backend)
    solver = csc.ConvBPDN(D, cfg.lmbda, opts)
    row = {"first_solve_s": timed(dev, lambda: solver.solve(S)), "short_iterations": short, "long_iterations": long_}
    reset_peak(dev)
    best = {short: float("inf"), long_: float("inf")}
    for rep in range(cfg.repeats):
        for n in (short, long_):
            solver.options = opts.replace(max_iter=n)
            best[n] = min(best[n], timed(dev, lambda: solver.solve(S)))
        row["repeats"] = rep + 1
        if ctx.over_budget():
            break
    row.update(short_s=best[short], long_s=best[long_], peak_memory_bytes=peak(dev))
    row["seconds_per_iteration"] = (best[long_] - best[short]) / cfg.iters
    return row


def throughput(ctx, fig: dict) -> None:
    cfg, dev = ctx.cfg, ctx.device
    fig.update(size=cfg.size, kernels=cfg.kernels, ksize=cfg.ksize, iters=cfg.iters, repeats=cfg.repeats,
               timer="cuda events" if dev.type == "cuda" else "perf_counter")
    t = time.perf_counter()
    passes = counted_passes(ctx, fig)
    fig.update(passes=passes, passes_seconds=time.perf_counter() - t)
    bandwidth = copy_bandwidth(dev, cfg.bandwidth_mb)
    fig["copy_bandwidth_gb_s"] = bandwidth / 1e9
    print(f"   copy bandwidth {bandwidth / 1e9:.1f} GB/s; passes per iteration {passes} ({fig['passes_source']})",
          flush=True)
    rows = fig["rows"] = []
    for dt, batch in cfg.throughput:
        for backend in BACKENDS:
            if ctx.over_budget():
                ctx.left_out(f"{backend} {dt} batch {batch}", "the section's budget is spent")
                continue
            dtype = getattr(torch, dt)
            r = {"backend": backend, "dtype": dt, "batch": batch, **time_iterations(ctx, backend, dtype, batch)}
            spi, itemsize = r["seconds_per_iteration"], torch.empty((), dtype=dtype).element_size()
            maps = batch * cfg.kernels * cfg.size ** 2 * itemsize / bandwidth  # seconds to copy one map pass
            floor, fused_floor = passes[backend] * maps, passes["compiled"] * maps
            r.update(floor_s=floor, nonpositive_difference=spi <= 0)
            r.update(ms_per_iteration=1e3 * spi, image_iterations_per_s=batch / spi if spi > 0 else None,
                     ratio_to_floor=spi / floor, ratio_to_fused_floor=spi / fused_floor)
            rows.append(r)
            ctx.save()
            rate = f"{batch / spi:10.1f} image-iter/s" if spi > 0 else "difference <= 0 (flagged)"
            print(f"   {backend:8s} {dt} batch {batch:3d}: {1e3 * spi:9.3f} ms/iter, {rate}, "
                  f"{spi / floor:6.2f}x the floor, first solve {r['first_solve_s']:.1f} s", flush=True)


def _smooth_images(n: int, size: int, dtype) -> torch.Tensor:
    """Noise low-passed more for each image: problems that converge at different speeds."""
    x = images(n, size, torch.float64, seed=2)
    f = torch.fft.fftfreq(size, dtype=torch.float64)
    r2 = f.view(-1, 1) ** 2 + f.view(1, -1) ** 2
    sigma = torch.linspace(0.05, 0.5, n, dtype=torch.float64).view(-1, 1, 1)
    return torch.fft.ifft2(torch.fft.fft2(x) * torch.exp(-r2 / (2 * sigma ** 2))).real.to(dtype)


def retiring(ctx, fig: dict) -> None:
    cfg, dev = ctx.cfg, ctx.device
    if not _compiled_ok(dev):
        raise Skip(f"the compiled back end cannot run on {dev}")
    n, size = cfg.retire_batch, cfg.retire_size
    dtype = getattr(torch, cfg.retire_dtype)
    D, S = dictionary(cfg.kernels, cfg.ksize, dtype), _smooth_images(n, size, dtype).to(dev)
    opts = csc.CBPDNOptions(max_iter=cfg.retire_max_iter, rel_stop_tol=1e-2, record_stats=False, device=dev,
                            backend="compiled")
    fig.update(batch=n, size=size, kernels=cfg.kernels, rel_stop_tol=1e-2, max_iter=cfg.retire_max_iter,
               dtype=cfg.retire_dtype)
    solver = csc.ConvBPDN(D, cfg.lmbda, opts)
    for run in ("first", "second")[:cfg.retire_runs]:
        if run == "second" and ctx.over_budget():
            ctx.left_out("second run", "the section's budget is spent")
            break
        before = dynamo_counters()
        reset_peak(dev)
        t = time.perf_counter()
        r = solver.solve(S)
        sync(dev)
        seconds = time.perf_counter() - t
        after = dynamo_counters()
        its = r.iterations.tolist()
        fig[run] = {"seconds": seconds, "iterations_min": min(its), "iterations_median": statistics.median(its),
                    "iterations_max": max(its), "iterations": its, "peak_memory_bytes": peak(dev),
                    "recompiles": after["unique_graphs"] - before["unique_graphs"],
                    "dynamo_counters_delta": {k: after[k] - before[k] for k in after}}
        ctx.save()
        print(f"   {run} run: {seconds:.2f} s, iterations {min(its)}/{statistics.median(its)}/{max(its)}, "
              f"{fig[run]['recompiles']} graphs compiled", flush=True)


def _compiled_ok(dev) -> bool:
    from csc.backends.compiled import compile_available

    return compile_available(dev)


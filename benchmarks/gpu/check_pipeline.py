"""The GPU check's pipeline sections: dictlearn, dataset, classifier, cuda_tests
(``benchmarks/gpu/gpu_check.py`` runs them; each fills its ``figures`` dict as it goes)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

import csc
from csc.learn.options import ONLINE_CBPDN_DEFAULTS
from check_common import Skip, peak, reset_peak, sync
from check_solver import dictionary, images

ROOT = Path(__file__).resolve().parents[2]


def _learners(ctx):
    """name → function() running one outer iteration (one step) of that learner."""
    n, size, K, ksize = ctx.cfg.learn
    dev, dt = ctx.device, torch.float32
    D0, S = dictionary(K, ksize, dt), images(n, size, dt, seed=3).to(dev)
    g = torch.Generator().manual_seed(4)
    mask = (torch.rand(n, size, size, generator=g) > 0.2).to(dt).to(dev)
    lmbda, inner = 0.1, ctx.cfg.learn_inner

    def batch(dmethod: str, masked: bool):
        opts = csc.DictLearnOptions(max_iter=1, dmethod=dmethod, device=dev, dtype=dt)
        res = csc.DictLearn(D0, lmbda, opts).solve(S, mask=mask if masked else None)
        return {"objective": float(res.stats.objective[-1]), "outer_iterations": int(res.iterations)}

    def online(masked: bool):
        opts = csc.OnlineDictLearnOptions(device=dev, dtype=dt, cbpdn=ONLINE_CBPDN_DEFAULTS.replace(max_iter=inner),
                                          cbpdn_mask=csc.MaskDcplOptions(max_iter=inner))
        row = csc.OnlineDictLearn(D0, lmbda, opts).step(S, mask=mask if masked else None)
        return {"objective": float(row["objective"]), "cbpdn_iterations": int(row["cbpdn_iterations"])}

    return {"batch_pgm": lambda: batch("pgm", False), "batch_cns": lambda: batch("cns", False),
            "masked_pgm": lambda: batch("pgm", True), "masked_cns": lambda: batch("cns", True),
            "online": lambda: online(False), "online_masked": lambda: online(True)}


def dictlearn(ctx, fig: dict) -> None:
    n, size, K, ksize = ctx.cfg.learn
    fig.update(images=n, size=size, kernels=K, ksize=ksize, dtype="float32",
               note="one outer iteration (one step) each, compilation and warm-up included")
    failed = []
    for name, run in _learners(ctx).items():
        if ctx.over_budget():
            ctx.left_out(name, "the section's budget is spent")
            continue
        t = time.perf_counter()
        try:
            row = run()
            sync(ctx.device)
            fig[name] = {"status": "ok", "seconds": time.perf_counter() - t, **row}
        except Exception as exc:  # the other learners still run
            fig[name] = {"status": "error", "seconds": time.perf_counter() - t, "error": f"{type(exc).__name__}: {exc}"}
            failed.append(name)
        ctx.save()
        print(f"   {name}: {fig[name]['status']} in {fig[name]['seconds']:.2f} s", flush=True)
    if failed:
        raise RuntimeError(f"learners failed: {', '.join(failed)} (their errors are in the figures)")


def _encode(ctx, count: int, size: int, iters: int, shard: int, out: Path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (count, size, size), dtype=np.uint8)
    labels = rng.integers(0, 10, count).astype(np.int64)
    settings = csc.EncodeSettings(dictionary=ctx.cfg.dictionary, lmbda=0.1, max_iter=iters, rel_stop_tol=0.0,
                                  preprocess="highpass", shard_size=shard)
    return csc.encode_dataset(imgs, labels, out, settings, device=ctx.device)


def dataset(ctx, fig: dict) -> None:
    cfg, dev = ctx.cfg, ctx.device
    fig.update(images=cfg.dataset_count, size=cfg.dataset_size, iterations=cfg.dataset_iters,
               dictionary=cfg.dictionary, shard_size=cfg.shard_size)
    reset_peak(dev)
    t = time.perf_counter()
    store = _encode(ctx, cfg.dataset_count, cfg.dataset_size, cfg.dataset_iters, cfg.shard_size,
                    ctx.workdir / "store")
    seconds = time.perf_counter() - t
    ctx.state["store"] = store.root
    fig.update(seconds=seconds, images_per_s=cfg.dataset_count / seconds, store_bytes=store.nbytes(),
               code_shape=list(store.code_shape), peak_memory_bytes=peak(dev))
    print(f"   {cfg.dataset_count} images {cfg.dataset_size}² in {seconds:.1f} s ({fig['images_per_s']:.1f} images/s)",
          flush=True)


def classifier(ctx, fig: dict) -> None:
    """``csc train``'s set-up and training loop (csc.classify.train) on SparseCodeDataset."""
    from torch.utils.data import DataLoader, RandomSampler

    from csc.classify.train import TrainOptions, _setup_run, _train_steps
    from csc.pipeline.datasets import SparseCodeDataset

    cfg, dev = ctx.cfg, ctx.device
    root = ctx.state.get("store")
    if root is None:  # the dataset section failed or was skipped: a small store of our own
        n = max(2 * cfg.train_batch, 8)
        root = _encode(ctx, n, cfg.dataset_size, 5, n, ctx.workdir / "store_classifier").root
        fig["store"] = f"its own ({n} images, 5 iterations): the dataset section left no store"
    else:
        fig["store"] = "the dataset section's"
    data = SparseCodeDataset(root, size=cfg.train_size)
    o = TrainOptions(epochs=1, batch_size=cfg.train_batch, device=str(dev))
    run = _setup_run(data, data, o, None, None, False, 0, 1)
    steps, batch = cfg.train_steps, cfg.train_batch

    def loader(n_batches: int, seed: int):
        sampler = RandomSampler(data, replacement=True, num_samples=n_batches * batch,
                                generator=torch.Generator().manual_seed(seed))
        return DataLoader(data, batch_size=batch, sampler=sampler, pin_memory=dev.type == "cuda")

    fig.update(steps=steps, batch=batch, input_shape=list(data[0][0].shape), amp=run.amp, images_in_store=len(data))
    t = time.perf_counter()
    _train_steps(run.model, loader(1, 1), run.opt, run.scaler, run.device, run.amp, None)  # warm-up step
    sync(dev)
    fig["first_step_s"] = time.perf_counter() - t
    reset_peak(dev)
    t = time.perf_counter()
    loss, correct, seen = _train_steps(run.model, loader(steps, 2), run.opt, run.scaler, run.device, run.amp, None)
    sync(dev)
    seconds = time.perf_counter() - t
    done = -(-seen // batch)
    fig.update(steps_done=done, seconds=seconds, steps_per_s=done / seconds, images_per_s=seen / seconds,
               mean_loss=loss / max(seen, 1), peak_memory_bytes=peak(dev))
    print(f"   {done} steps of {batch} in {seconds:.2f} s ({fig['steps_per_s']:.2f} steps/s)", flush=True)


def cuda_tests(ctx, fig: dict) -> None:
    if ctx.cpu_mode:
        raise Skip("CPU mode: the test suite is the one running this")
    spent = time.perf_counter() - ctx.t_start
    timeout = min(ctx.budget, ctx.cfg.total_budget - spent)
    if timeout < 30:
        raise Skip(f"{timeout:.0f} s left of the total budget: too little for the tests")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *ctx.cfg.tests]
    fig.update(command=" ".join(cmd[2:]), timeout_s=timeout)
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        output, rc = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:  # its output so far (bytes, whatever text= says)
        output = "".join(o.decode(errors="replace") if isinstance(o, bytes) else o
                         for o in (exc.stdout or "", exc.stderr or ""))
        rc = None
    lines = output.rstrip().splitlines()
    counts = {}
    for line in reversed(lines):  # pytest's summary line: "3 failed, 40 passed, 2 skipped in 12.3s"
        found = re.findall(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected)", line)
        if found and " in " in line:
            counts = {k if k != "error" else "errors": int(v) for v, k in found}
            break
    fig.update(returncode=rc, counts=counts, tail="\n".join(lines[-40:]))
    print(f"   pytest: {counts or 'no summary'} (exit {rc})", flush=True)
    if rc is None:
        raise TimeoutError(f"pytest ran past its {timeout:.0f} s timeout")
    if rc != 0:
        raise RuntimeError(f"pytest exited {rc}: {counts}")

"""The GPU check: csc on one device, in sections that cannot lose each other's figures.

Run by ``benchmarks/gpu/check.sh`` (a thin wrapper). The sections run in this order, each
in its own try/except with its own time budget (``--budget NAME=SECONDS``); the whole JSON
report is written atomically (a temporary file, then ``os.replace``) before the first
section and after every section (and after each row of the long ones), so a crash, a
failed section or a killed run keeps every figure measured until then:

1. ``environment``: device name, torch / CUDA / cuDNN / python / csc versions, whether
   triton imports, the compile probe (``csc.backends.compiled.compile_available`` and
   ``compile_unavailable_reason``) and the back end ``select_backend("auto", device)`` picks;
2. ``parity``: the torch and compiled back ends on the device against the CPU in float64
   (2 images 32², K = 8, 5×5, up to 60 iterations): the largest relative differences of
   the codes, u and ρ, and whether the iteration counts are equal. The reference is the
   numba back end on the CPU (so the CPU mode compares two implementations, not one with itself);
3. ``throughput``: 256², K = 144 random normalised 12×12 kernels, float32 at batches 1, 8
   and 32 and float64 at batch 8, both back ends; the first solve (compilation, warm-up)
   apart, then seconds per iteration from the difference of two solve lengths (CUDA events
   on CUDA), best of three, the peak memory, image-iterations per second and the ratio to
   the copy-bandwidth floor (passes per iteration counted by
   ``csc.backends.counting.count_iteration``, else the model :data:`check_solver.MAP_PASSES`);
4. ``retiring``: a batch of 32 images with RelStopTol 1e-2 on the compiled back end:
   iterations per image, seconds, dynamo recompiles caused;
5. ``dictlearn``: one outer iteration of each learner (batch pgm / cns, masked, online,
   masked online) on a small problem, seconds each;
6. ``dataset``: ``csc.encode_dataset`` of 2,000 images of 64² with the shipped
   heterogeneous dictionary: images per second, peak memory;
7. ``classifier``: 50 ResNet-18 training steps (``csc train``'s loop) on codes read from
   the dataset section's store through ``SparseCodeDataset``: steps per second;
8. ``nn_layer``: :mod:`csc.nn`'s implicit backward against its forward, 256² × K144 and
   8 × 128², float32 (``check_nn.py``, ``benchmarks/nn_backward.py``): seconds, CG
   iterations, peak memory of each phase;
9. ``cuda_tests``: pytest in a subprocess, with its own timeout, over the CUDA tests:
   pass / fail counts and the output's tail.

Each section's entry records ``status`` ("ok", "error" with the last lines of the
traceback, "skipped" with why), its wall ``seconds``, its ``budget_s`` and its ``figures``;
``skipped`` lists every section or part left out and why (a budget spent, no CUDA …).
A section past its budget stops at the next check (between batches, learners …),
listing the parts it left out in ``left_out``, and records ``over_budget``; a hard limit (twice the budget, at least one minute more)
interrupts one that does not return.

``--cpu`` (alias ``--cpu-smoke``) runs every section on the CPU at tiny sizes (the test
suite runs it, so the check keeps working where there is no GPU); ``cuda_tests`` is then
skipped, the test suite being the one running it. The report goes to ``--out``, by
default ``benchmarks/results/gpu/gpu_check_<device type>.json``. Exit status: 1 when a
section failed, 2 when CUDA was asked for and there is none, else 0.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the section modules lie next to this file
    sys.path.insert(0, str(HERE))

import torch  # noqa: E402

import check_nn  # noqa: E402
import check_pipeline  # noqa: E402
import check_solver  # noqa: E402
from check_common import Skip  # noqa: E402

ROOT = HERE.parents[1]
FORMAT = "csc-gpu-check/2"


@dataclass(frozen=True)
class Config:
    """Sizes of every section (the CUDA defaults; :meth:`cpu` the CPU mode's)."""

    size: int = 256
    kernels: int = 144
    ksize: int = 12
    lmbda: float = 0.05
    # batch 8 first: a first compilation at batch 1 would specialise on it and compile again at 8
    throughput: tuple = (("float32", 8), ("float32", 32), ("float32", 1), ("float64", 8))
    iters: int = 20  # the longer solve runs this many iterations more than the shorter (2)
    repeats: int = 3
    bandwidth_mb: float = 1024.0
    parity: tuple = (2, 32, 8, 5, 60, 3e-2)  # images, size, K, kernel size, max_iter, RelStopTol
    retire_batch: int = 32
    retire_size: int = 256
    retire_max_iter: int = 200
    retire_dtype: str = "float32"
    retire_runs: int = 2  # the second run: warm, with no recompiles
    learn: tuple = (8, 64, 16, 8)  # images, size, K, kernel size
    learn_inner: int = 100  # coding iterations of an online step (the batch learner's is 1)
    dataset_count: int = 2000
    dataset_size: int = 64
    dataset_iters: int = 100
    shard_size: int = 500
    dictionary: str = "heterogeneous"
    train_steps: int = 50
    train_batch: int = 128
    train_size: int | None = 32  # codes resized to this side at load (the authors' loader)
    tests: tuple = ("tests/backends/test_cuda.py", "tests/backends/test_compiled.py",
                    "tests/core/test_host_syncs.py", "tests/problems/test_batching.py", "tests/nn/test_autograd.py")
    total_budget: float = 420.0
    budgets: dict = field(default_factory=lambda: dict(
        environment=45, parity=45, throughput=100, retiring=40, dictlearn=45, dataset=45, classifier=30,
        nn_layer=60, cuda_tests=240))  # cuda_tests: at most what is left of total_budget

    @classmethod
    def cpu(cls) -> "Config":
        # float64 throughout the compiled solves: the parity section's compiled variant serves
        # them all (each more costs seconds of compilation on 2 cores). The budgets are
        # generous: the CPU mode checks that everything runs, on machines of any load.
        return cls(size=24, kernels=8, ksize=5, throughput=(("float64", 2),), iters=10, repeats=3, bandwidth_mb=16.0,
                   retire_batch=3, retire_size=24, retire_max_iter=80, retire_dtype="float64", retire_runs=1,
                   learn=(2, 24, 4, 5), learn_inner=20, dataset_count=8, dataset_size=16, dataset_iters=3,
                   shard_size=4, train_steps=2, train_batch=4, train_size=None, total_budget=900.0,
                   budgets={name: 120.0 for name in cls().budgets})


class SectionTimeout(BaseException):
    """Raised in a section that ran past its hard limit (a BaseException, so that no
    ``except Exception`` on the way swallows it)."""


class Context:
    """What a section sees: the device, the mode, the sizes, its budget, the state the
    sections share (the dataset's store …), and :meth:`save` to write the report now."""

    def __init__(self, args, cfg: Config, device: torch.device, report: dict, out: Path, workdir: Path):
        self.args, self.cfg, self.device, self.report, self.out, self.workdir = args, cfg, device, report, out, workdir
        self.cpu_mode = bool(args.cpu)
        self.state: dict = {}
        self.t_start = time.perf_counter()
        self.section, self.t_section, self.budget = "", 0.0, 0.0

    def elapsed(self) -> float:
        """Seconds since the current section started."""
        return time.perf_counter() - self.t_section

    def over_budget(self) -> bool:
        return self.elapsed() > self.budget

    def left_out(self, what: str, why: str) -> None:
        """Record a part of the section left out (in its entry's ``left_out`` and the report's ``skipped``)."""
        self.report["sections"][self.section].setdefault("left_out", []).append(what)
        self.report["skipped"].append({"section": self.section, "what": what, "why": why})

    def save(self) -> None:
        write_report(self.report, self.out)


def write_report(report: dict, out: Path) -> None:
    """The whole report, atomically: a temporary file in ``out``'s folder, then os.replace."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(report, f, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o))
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class _HardLimit:
    """SIGALRM after ``seconds``: raises :class:`SectionTimeout` in the main thread (not
    installed off the main thread, or where an interval timer is already running)."""

    def __init__(self, seconds: float):
        self.seconds, self.active = seconds, False

    def __enter__(self):
        if (threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
                and signal.getitimer(signal.ITIMER_REAL)[0] == 0):
            self.previous = signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
            self.active = True
        return self

    def _fire(self, signum, frame):
        raise SectionTimeout(f"interrupted at the hard limit of {self.seconds:g} s")

    def __exit__(self, *exc):
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)
        return False


#: name → function(ctx, figures); the functions fill ``figures`` as they go
SECTIONS = {
    "environment": check_solver.environment,
    "parity": check_solver.parity,
    "throughput": check_solver.throughput,
    "retiring": check_solver.retiring,
    "dictlearn": check_pipeline.dictlearn,
    "dataset": check_pipeline.dataset,
    "classifier": check_pipeline.classifier,
    "nn_layer": check_nn.nn_layer,
    "cuda_tests": check_pipeline.cuda_tests,
}


def run_section(ctx: Context, name: str) -> dict:
    entry = ctx.report["sections"][name]
    ctx.section, ctx.budget = name, float(ctx.cfg.budgets[name])
    entry.update(status="running", budget_s=ctx.budget)
    figures = entry["figures"]
    print(f"== {name} (budget {ctx.budget:.0f} s)", flush=True)
    ctx.save()
    ctx.t_section = time.perf_counter()
    try:
        spent = time.perf_counter() - ctx.t_start
        if name != "environment" and spent > ctx.cfg.total_budget:
            raise Skip(f"the total budget of {ctx.cfg.total_budget:.0f} s is spent ({spent:.0f} s)")
        if name in ctx.args.skip:
            raise Skip("--skip")
        if name != "environment" and ctx.device.type == "cuda" and not torch.cuda.is_available():
            raise Skip("CUDA is not available here (--cpu runs the CPU mode)")
        with _HardLimit(max(2 * ctx.budget, ctx.budget + 60)):
            SECTIONS[name](ctx, figures)
        entry["status"] = "ok"
    except Skip as s:
        entry.update(status="skipped", reason=str(s))
        ctx.report["skipped"].append({"section": name, "what": "the section", "why": str(s)})
    except (Exception, SectionTimeout) as exc:
        lines = traceback.format_exc().rstrip().splitlines()
        entry.update(status="error", error=f"{type(exc).__name__}: {exc}", traceback="\n".join(lines[-12:]))
    finally:
        if ctx.device.type == "cuda" and torch.cuda.is_available():  # the next section (the tests' process,
            gc.collect()  # encode_dataset's memory budget) gets the memory back
            torch.cuda.empty_cache()
        entry["seconds"] = time.perf_counter() - ctx.t_section
        entry["over_budget"] = entry["seconds"] > ctx.budget
        ctx.report["total_seconds"] = time.perf_counter() - ctx.t_start
        ctx.save()
    extra = entry.get("reason") or entry.get("error") or ""
    print(f"   {entry['status']} in {entry['seconds']:.1f} s {extra}", flush=True)
    return entry


def _cpu_compile_settings(cpu_mode: bool):
    """In the CPU mode inductor compiles in this process (``compile_threads=1``): starting
    its pool of compile workers costs more than it saves on a few small kernels."""
    if not cpu_mode:
        return contextlib.nullcontext()
    import torch._inductor.config as inductor_config

    return inductor_config.patch(compile_threads=1)


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda", help="the device checked (default cuda; --cpu sets cpu)")
    p.add_argument("--cpu", "--cpu-smoke", dest="cpu", action="store_true",
                   help="every section on the CPU at tiny sizes (the test suite's run)")
    p.add_argument("--out", default=None, help="JSON report (default benchmarks/results/gpu/gpu_check_<device>.json)")
    p.add_argument("--budget", action="append", default=[], metavar="NAME=SECONDS",
                   help="a section's time budget (NAME=total: the whole check's)")
    p.add_argument("--skip", nargs="+", default=[], choices=list(SECTIONS), help="sections to leave out")
    for name in ("size", "kernels", "iters", "dataset_count", "dataset_size", "dataset_iters", "shard_size",
                 "train_steps", "train_batch", "retire_batch"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=None)
    p.add_argument("--dictionary", default=None, help="the dataset's dictionary (default heterogeneous)")
    return p.parse_args(argv)


def config(args) -> Config:
    cfg = Config.cpu() if args.cpu else Config()
    names = {f.name for f in fields(Config)}
    cfg = replace(cfg, **{k: v for k, v in vars(args).items() if k in names and v is not None})
    budgets, total = dict(cfg.budgets), cfg.total_budget
    for item in args.budget:
        name, _, value = item.partition("=")
        if name not in budgets and name != "total":
            raise SystemExit(f"--budget {item}: expected NAME=SECONDS, NAME one of total, {', '.join(SECTIONS)}")
        if name == "total":
            total = float(value)
        else:
            budgets[name] = float(value)
    return replace(cfg, budgets=budgets, total_budget=total)


def main(argv=None) -> int:
    args = parse(argv)
    if args.cpu:
        args.device = "cpu"
    cfg, device = config(args), torch.device(args.device)
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / "gpu" / f"gpu_check_{device.type}.json"
    report = {"format": FORMAT, "mode": "cpu" if args.cpu else device.type, "device": str(device),
              "argv": list(sys.argv[1:] if argv is None else argv), "config": asdict(cfg),
              "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "total_seconds": 0.0, "skipped": [],
              "sections": {n: {"status": "pending", "seconds": None, "figures": {}} for n in SECTIONS}}
    workdir = Path(tempfile.mkdtemp(prefix="csc-gpu-check-"))
    ctx = Context(args, cfg, device, report, out, workdir)
    print(f"GPU check on {device} ({report['mode']} mode), report {out}", flush=True)
    try:
        with _cpu_compile_settings(args.cpu):
            for name in SECTIONS:
                run_section(ctx, name)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        report["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        report["total_seconds"] = time.perf_counter() - ctx.t_start
        ctx.save()
    failed = [n for n, e in report["sections"].items() if e["status"] == "error"]
    print(f"wrote {out} in {report['total_seconds']:.0f} s; "
          f"{'failed: ' + ', '.join(failed) if failed else 'no section failed'}", flush=True)
    if failed:
        return 1
    return 2 if device.type == "cuda" and not torch.cuda.is_available() else 0


if __name__ == "__main__":
    sys.exit(main())

"""Training a ResNet-18 on sparse codes or pixels.

The classifier of §2.5, Table 1 and Fig. 7 of the paper (Ladret, Casanova & Perrinet,
"Kernel heterogeneity improves sparseness of natural images representations").

:func:`train` runs Adam (the paper's lr 2e-4, β (0.9, 0.99), ε 1e-8 by default) with
cross-entropy, evaluates on the test set after every epoch, and after every epoch writes
into its output folder:

``metrics.csv`` / ``metrics.json``
    One row per epoch: train loss and accuracy, test loss and accuracy, seconds.
    The JSON also holds the run's description (``run``) and options.
``curves.png``
    Loss and accuracy against epoch.
``checkpoint.npz``
    Pickle-free checkpoint (model and optimizer tensors as arrays; scalars, the AMP
    scaler and the history as JSON), written atomically. Calling :func:`train` again
    on the same folder resumes after the last finished epoch; the result is the same as
    an uninterrupted run (same weights), because every random choice is a function of
    (seed, epoch): the initialisation, the shuffling (an explicit ``torch.Generator``),
    dropout and the datasets' flips. On CUDA that holds with deterministic kernels only:
    :func:`train` sets ``torch.backends.cudnn.deterministic = True`` and
    ``cudnn.benchmark = False`` (cuDNN's autotuner and its non-deterministic convolution
    algorithms would otherwise make a resumed run differ from an uninterrupted one by
    rounding, growing over the epochs); mixed precision and DDP's gradient all-reduce are
    deterministic for a fixed number of processes.

Several processes (``torchrun ... -m csc train``, :mod:`csc.runtime.distributed`): the model is
wrapped in ``DistributedDataParallel`` (NCCL on GPUs, one per process; gloo on CPUs),
each epoch's order comes from a ``DistributedSampler`` (seeded with ``seed``,
``set_epoch(epoch)``), ``batch_size`` stays the *global* batch (each of N processes
takes ``batch_size / N``), training metrics are summed over processes and the test set
is split between them. Rank 0 alone writes the checkpoint (atomically), the metrics and
the curves; on resume rank 0 reads the checkpoint and sends it to every process.

:func:`aggregate_runs` / :func:`table_markdown` / :func:`plot_runs` turn several run
folders (seeds × settings) into Table 1 (mean ± std over seeds) and Fig. 7-style curves.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from csc.dictionary.io import atomic_write, json_metadata, read_json, read_npz, unreadable_reason
from csc.classify.models import resnet18
from csc.runtime.device import resolve_device
from csc.runtime.outputs import prepare_dir
from csc.runtime.sync import to_host
from csc.core.checks import check_bool, check_int

__all__ = [
    "TrainOptions",
    "train",
    "load_checkpoint",
    "save_checkpoint",
    "evaluate",
    "aggregate_runs",
    "last_evaluated",
    "table_markdown",
    "plot_runs",
    "plot_history",
    "resolve_num_workers",
]

CHECKPOINT = "checkpoint.npz"
CHECKPOINT_FORMAT = "csc-train-checkpoint"
SCHEDULES = ("constant", "onecycle")


@dataclass(frozen=True)
class TrainOptions:
    """Options of :func:`train` (defaults: the paper's Adam settings).

    ``amp=None`` turns mixed precision (float16 autocast + gradient scaling) on when
    training on CUDA. ``max_steps`` caps the batches per epoch (smoke tests).
    ``schedule``: ``"constant"`` (lr throughout) or ``"onecycle"`` (torch's ``OneCycleLR``
    with ``max_lr=lr`` over every step of the ``epochs`` epochs, stepped after each batch:
    the authors' classifier). ``epochs`` may be raised when resuming a constant-lr run;
    every other option (and, for ``"onecycle"``, ``epochs`` too) must match the checkpoint.
    ``eval_every``: evaluate on the test set every that many epochs and after the last one
    (on the CPU, evaluating a 10,000-image test set costs more than an epoch on a few
    thousand training images); the other epochs' rows hold ``None`` as test loss and accuracy.
    It may differ on resume.

    ``num_workers``: DataLoader worker processes that read and collate the batches while the
    model trains (training and test sets). None (the default) is "auto"
    (:func:`resolve_num_workers`): min(4, the CPUs available to the process, divided among
    the training processes) on CUDA, 0 (batches read in the training process) on the CPU,
    where workers would compete with the training for the same cores. 0 or more sets it.
    On CUDA the batches are collated into pinned memory and copied to the GPU without
    blocking, and the step loop makes no host read of its own (the running loss and
    accuracy are summed on the device and read once per epoch). It may differ on resume
    (the datasets' random flips do not depend on the worker processes).
    """

    epochs: int = 100
    batch_size: int = 128
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.99)
    eps: float = 1e-8
    weight_decay: float = 0.0
    seed: int = 0
    stem: str = "imagenet"
    dropout: float = 0.0
    amp: bool | None = None
    device: str | None = None
    eval_batch_size: int = 256
    max_steps: int | None = None
    num_workers: int | None = None
    schedule: str = "constant"
    eval_every: int = 1

    def __post_init__(self):
        if self.epochs < 0 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError("epochs must be >= 0 and batch sizes >= 1")
        check_int("eval_every", self.eval_every, 1)
        object.__setattr__(self, "amp", check_bool("amp", self.amp, none=True))
        check_int("num_workers", self.num_workers, 0, none=True)
        if self.lr <= 0 or self.eps <= 0:
            raise ValueError("lr and eps must be > 0")
        if self.stem not in ("imagenet", "cifar"):
            raise ValueError(f"stem: expected 'imagenet' or 'cifar', got {self.stem!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule: expected one of {SCHEDULES}, got {self.schedule!r}")

    def identity(self) -> dict[str, Any]:
        """The options a resumed run must share with its checkpoint."""
        d = asdict(self)
        for k in ("device", "num_workers", "eval_batch_size", "eval_every") + (("epochs",) if self.schedule == "constant" else ()):
            d.pop(k)
        if self.schedule == "constant":
            d.pop("schedule")  # checkpoints written before schedules existed stay resumable
        d["betas"] = list(d["betas"])
        return d


def resolve_num_workers(num_workers: int | None, device: torch.device | str, world: int = 1) -> int:
    """DataLoader workers for :attr:`TrainOptions.num_workers` on ``device``: the number when
    given, else ("auto", None) min(4, CPUs // ``world``) (at least 1) on CUDA and 0 on the CPU,
    ``world`` being the training processes sharing the machine's CPUs."""
    n = check_int("num_workers", num_workers, 0, none=True)
    if n is not None:
        return n
    if torch.device(device).type != "cuda":
        return 0
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(4, max(1, cpus // max(1, int(world))))


def _epoch_seed(seed: int, epoch: int, salt: int | str) -> int:
    h = hashlib.sha256(f"{seed}/{epoch}/{salt}".encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


# --------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scaler: Any | None, meta: dict[str, Any]) -> Path:
    """Write model + optimizer state pickle-free (npz of arrays + JSON), atomically."""
    arrays: dict[str, np.ndarray] = {}
    for k, v in model.state_dict().items():
        arrays[f"model/{k}"] = v.detach().cpu().numpy()
    osd = optimizer.state_dict()
    for pid, st in osd["state"].items():
        for name, v in st.items():
            if isinstance(v, torch.Tensor):
                arrays[f"optim/{pid}/{name}"] = v.detach().cpu().numpy()
            else:
                arrays[f"optim/{pid}/{name}"] = np.asarray(v)
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in osd["param_groups"]]
    m = dict(meta)
    m.update(format=CHECKPOINT_FORMAT, version=1, param_groups=groups,
             scaler=scaler.state_dict() if scaler is not None and scaler.is_enabled() else None)
    arrays["meta"] = np.array(json.dumps(m, sort_keys=True))
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def _name(path) -> str:
    return repr(str(path)) if isinstance(path, (str, Path)) else "the checkpoint's bytes"


def _read_checkpoint(path) -> dict[str, np.ndarray]:
    """The arrays of a checkpoint file (or file object); ValueError naming it when unreadable."""
    if isinstance(path, (str, Path)):
        return read_npz(path, "checkpoint")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as exc:
        raise ValueError(f"checkpoint: {_name(path)} is not readable: {unreadable_reason(exc)}; delete it "
                         "to start afresh") from None


def load_checkpoint(path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    scaler: Any | None = None) -> dict[str, Any]:
    """Restore a checkpoint written by :func:`save_checkpoint` in place; returns its metadata.

    ``path``: a file path or a binary file object (e.g. ``io.BytesIO`` of the file's bytes)."""
    arrays = _read_checkpoint(path)
    meta = json_metadata(arrays.pop("meta"), path, "checkpoint") if "meta" in arrays else {}
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint: {_name(path)} is not a csc training checkpoint; delete it to start afresh")
    device = next(model.parameters()).device
    ref = model.state_dict()
    _check_training_state(path, arrays, meta, ref)
    sd = {k[len("model/"):]: torch.from_numpy(v).to(device=device, dtype=ref[k[len("model/"):]].dtype)
          for k, v in arrays.items() if k.startswith("model/")}
    model.load_state_dict(sd, strict=True)
    try:
        _load_optimizer(arrays, meta, optimizer, scaler, device)
    except (KeyError, ValueError, TypeError, IndexError, RuntimeError) as exc:
        raise ValueError(f"checkpoint: {_name(path)}: its optimizer state does not fit this run "
                         f"({type(exc).__name__}: {exc}); delete it to start afresh") from None
    return meta


def _check_training_state(path, arrays: dict[str, np.ndarray], meta: dict[str, Any], ref: dict[str, Any]) -> None:
    """A training checkpoint's model arrays exactly the model's (names, shapes), every array
    finite, and (when it has one, as a run's checkpoint has) its epoch checked
    (:func:`_check_epoch`); ValueError naming the file."""
    where = f"checkpoint: {_name(path)}"
    if "epoch" in meta or "history" in meta:
        _check_epoch(path, meta)
    _check_model_arrays(where, arrays, ref)


def _check_epoch(path, meta: dict[str, Any]) -> None:
    """A run's checkpoint's epoch an integer ≥ 0 with one history row per epoch done."""
    where = f"checkpoint: {_name(path)}"
    epoch, history = meta.get("epoch"), meta.get("history")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise ValueError(f"{where} has epoch {epoch!r}, not an integer >= 0: the file was edited or damaged; "
                         "delete it to start afresh")
    if not isinstance(history, list) or len(history) != epoch + 1:
        raise ValueError(f"{where}: epoch {epoch} does not match its history of "
                         f"{len(history) if isinstance(history, list) else 'no'} rows: the file was edited or "
                         "damaged; delete it to start afresh")


def _check_model_arrays(where: str, arrays: dict[str, np.ndarray], ref: dict[str, Any]) -> None:
    saved = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    if set(saved) != set(ref):
        missing, extra = sorted(set(ref) - set(saved)), sorted(set(saved) - set(ref))
        raise ValueError(f"{where} does not hold this model (missing {missing[:3]}, unexpected {extra[:3]}); "
                         "delete it to start afresh")
    for k, v in saved.items():
        if tuple(v.shape) != tuple(ref[k].shape):
            raise ValueError(f"{where}: model weight {k!r} has shape {tuple(v.shape)}, expected "
                             f"{tuple(ref[k].shape)}; delete it to start afresh")
    for k, v in arrays.items():
        if v.dtype.kind in "fc" and not np.isfinite(v).all():
            raise ValueError(f"{where}: {k!r} holds NaN or Inf: the file is damaged; delete it to start afresh")


def _check_optimizer_state(state: dict[int, dict[str, torch.Tensor]], params: list[torch.Tensor]) -> None:
    """Each saved parameter state for a parameter of this optimizer, its buffers of that
    parameter's shape and its ``step`` a single number (ValueError otherwise)."""
    for pid, st in state.items():
        if not 0 <= pid < len(params):
            raise ValueError(f"state of parameter {pid}, but the optimizer has {len(params)}")
        for name, t in st.items():
            want = (1,) if name == "step" else tuple(params[pid].shape)
            if ((t.numel(),) if name == "step" else tuple(t.shape)) != want:
                raise ValueError(f"'optim/{pid}/{name}' has shape {tuple(t.shape)}, expected {want}")


def _load_optimizer(arrays: dict[str, np.ndarray], meta: dict[str, Any], optimizer, scaler, device) -> None:
    """The optimizer's and the gradient scaler's state from a checkpoint's arrays and metadata."""
    if optimizer is not None:
        state: dict[int, dict[str, Any]] = {}
        for k, v in arrays.items():
            if k.startswith("optim/"):
                _, pid, name = k.split("/", 2)
                t = torch.from_numpy(v.copy())
                if name != "step":
                    t = t.to(device)
                state.setdefault(int(pid), {})[name] = t
        _check_optimizer_state(state, [p for g in optimizer.param_groups for p in g["params"]])
        groups = optimizer.state_dict()["param_groups"]
        if not isinstance(meta.get("param_groups"), list) or len(meta["param_groups"]) != len(groups):
            raise ValueError(f"param_groups: expected {len(groups)} group(s), got {meta.get('param_groups')!r:.60}")
        for g, saved in zip(groups, meta["param_groups"]):
            for k, v in saved.items():
                if k != "params":
                    g[k] = tuple(v) if isinstance(v, list) else v
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    if scaler is not None and meta.get("scaler"):
        scaler.load_state_dict(meta["scaler"])


# --------------------------------------------------------------------------- loop
def _loader(dataset: Dataset, batch_size: int, device: torch.device, num_workers: int, sampler=None) -> DataLoader:
    """Batches of ``dataset`` (in order, or ``sampler``'s), read by ``num_workers`` worker
    processes, collated into pinned memory for a CUDA ``device``."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, sampler=sampler, num_workers=num_workers,
                      drop_last=False, pin_memory=device.type == "cuda")


def _evaluate_device_sums(model: nn.Module, dataset: Dataset, batch_size: int, device, amp: bool,
                          num_workers: int = 0) -> torch.Tensor:
    """(summed loss, correct predictions, samples) of ``model`` on ``dataset``, a float64 tensor
    on ``device`` (summed there: no host read)."""
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=device)
    with torch.no_grad():
        for x, y in _loader(dataset, batch_size, device, num_workers):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
                logits = model(x)
            sums[0] += F.cross_entropy(logits.float(), y, reduction="sum").double()
            sums[1] += (logits.argmax(1) == y).sum()
            sums[2] += y.numel()
    return sums


def _evaluate_sums(model: nn.Module, dataset: Dataset, batch_size: int, device, amp: bool,
                   num_workers: int = 0) -> tuple[float, int, int]:
    """:func:`_evaluate_device_sums` read on the host (once)."""
    loss_sum, correct, n = to_host(_evaluate_device_sums(model, dataset, batch_size, device, amp, num_workers),
                                   "train.evaluate").tolist()
    return loss_sum, int(correct), int(n)


def evaluate(model: nn.Module, dataset: Dataset, batch_size: int = 256, device=None,
             amp: bool = False, num_workers: int = 0) -> tuple[float, float]:
    """Mean cross-entropy and top-1 accuracy (%) of ``model`` on ``dataset`` (batches read by
    ``num_workers`` worker processes; one host read in all)."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    loss_sum, correct, n = _evaluate_sums(model, dataset, batch_size, device, amp, num_workers)
    return loss_sum / max(n, 1), 100.0 * correct / max(n, 1)


def _write_metrics(out: Path, history: list[dict[str, Any]], info: dict[str, Any]) -> None:
    buf = io.StringIO()
    if history:
        w = csv.DictWriter(buf, fieldnames=list(history[0]))
        w.writeheader()
        w.writerows(history)
    atomic_write(out / "metrics.csv", lambda f: f.write(buf.getvalue().encode()))
    text = json.dumps({**info, "epochs": history}, indent=1)
    atomic_write(out / "metrics.json", lambda f: f.write(text.encode()))


def plot_history(history: list[dict[str, Any]], path: str | Path, title: str = "") -> None:
    """Loss and accuracy curves of one run (train and test) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    tested = [h for h in history if h["test_acc"] is not None]  # eval_every > 1 skips epochs
    t_ep = [h["epoch"] for h in tested]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
    a1.plot(ep, [h["train_loss"] for h in history], label="train")
    a1.plot(t_ep, [h["test_loss"] for h in tested], ".-", label="test")
    a1.set_xlabel("epoch"), a1.set_ylabel("cross-entropy"), a1.legend()
    a2.plot(ep, [h["train_acc"] for h in history], label="train")
    a2.plot(t_ep, [h["test_acc"] for h in tested], ".-", label="test")
    a2.set_xlabel("epoch"), a2.set_ylabel("top-1 accuracy (%)"), a2.legend()
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write(path, lambda f: f.write(buf.getvalue()))


def _data_identity(dataset: Dataset) -> Any:
    """The dataset's ``identity()`` (csc's datasets have one), else its class and length."""
    ident = getattr(dataset, "identity", None)
    return ident() if callable(ident) else {"class": type(dataset).__name__, "length": len(dataset)}


def _restore_checkpoint(ckpt: Path, model: nn.Module, opt, scaler, o: TrainOptions, info: dict[str, Any],
                        distributed: bool, main_process: bool) -> tuple[list[dict[str, Any]], int]:
    """(history, first epoch to run) after restoring ``ckpt`` when there is one ([], 0 otherwise).

    Distributed: rank 0 reads the checkpoint and every rank restores the same bytes.
    """
    from csc.runtime import distributed as _dist

    source: Any = ckpt if ckpt.is_file() else None
    if distributed:
        blob = ckpt.read_bytes() if main_process and ckpt.is_file() else None
        blob = _dist.broadcast_object(blob)
        source = None if blob is None else io.BytesIO(blob)
    if source is None:
        return [], 0
    meta = load_checkpoint(source, model, opt, scaler)
    _check_epoch(ckpt, meta)
    if meta.get("options") != o.identity() or meta.get("run") != info["run"]:
        raise ValueError(f"out: the checkpoint in {str(ckpt.parent)!r} was made with other options or for "
                         "another run; use another folder")
    if meta.get("data") != json.loads(json.dumps(info["data"])):
        raise ValueError(f"out: the checkpoint in {str(ckpt.parent)!r} was trained on other data (another "
                         "store, other images, pruning or transforms); use another folder")
    if int(meta["epoch"]) + 1 > o.epochs:
        raise ValueError(f"epochs: {o.epochs} is below the {int(meta['epoch']) + 1} epochs of the checkpoint in "
                         f"{str(ckpt.parent)!r}; ask for at least that many to continue the run, or use another folder")
    return meta["history"], int(meta["epoch"]) + 1


def _epoch_order(train_set: Dataset, o: TrainOptions, epoch: int, rank: int, world: int, distributed: bool):
    """The sampler (or index list) of ``epoch``'s training batches; also seeds dropout etc. for the epoch."""
    if distributed:
        from torch.utils.data.distributed import DistributedSampler

        order: Any = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=o.seed,
                                        drop_last=False)
        order.set_epoch(epoch)
        torch.manual_seed(_epoch_seed(o.seed, epoch, 1 if rank == 0 else f"1/{rank}"))  # dropout etc.
        return order
    g = torch.Generator().manual_seed(_epoch_seed(o.seed, epoch, 0))
    order = torch.randperm(len(train_set), generator=g).tolist()
    torch.manual_seed(_epoch_seed(o.seed, epoch, 1))  # dropout etc.
    return order


def _train_steps(net: nn.Module, loader: DataLoader, opt, scaler, device: torch.device, amp: bool,
                 max_steps: int | None, sched=None) -> torch.Tensor:
    """One pass of Adam steps over ``loader`` (``sched.step()`` after each, when given):
    (summed loss, correct predictions, samples seen), a float64 tensor on ``device``.

    A step copies its batch to the device once (non-blocking: from pinned memory on CUDA)
    and reads nothing back: the running sums stay on the device for the caller to read once
    (with AMP, ``GradScaler.step`` reads its inf check, torch's one read per step)."""
    net.train()
    sums = torch.zeros(3, dtype=torch.float64, device=device)
    for step, (x, y) in enumerate(loader):
        if max_steps is not None and step >= max_steps:
            break
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
            logits = net(x)
            loss = F.cross_entropy(logits.float(), y)
        if scaler is not None and amp:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        if sched is not None:
            sched.step()
        sums[0] += loss.detach().double() * y.numel()  # the float64 sums of the host's former reads
        sums[1] += (logits.detach().argmax(1) == y).sum()
        sums[2] += y.numel()
    return sums


@dataclass
class _TrainRun:
    """What one :func:`train` call sets up: the model, optimiser, device, processes and data."""

    model: nn.Module
    opt: torch.optim.Optimizer
    scaler: Any
    device: torch.device
    amp: bool
    in_channels: int
    num_classes: int
    rank: int
    world: int
    distributed: bool
    train_set: Dataset
    test_set: Dataset
    net: nn.Module | None = None  # the model, wrapped in DistributedDataParallel when distributed
    test_part: Dataset | None = None  # this process's part of the test set
    sched: Any = None  # the learning-rate schedule (None: constant)
    workers: int = 0  # DataLoader worker processes (TrainOptions.num_workers resolved)

    def steps_per_epoch(self, o: TrainOptions) -> int:
        """Optimiser steps in one epoch on each process (the length of its loader)."""
        n = len(self.train_set)
        per_rank = -(-n // self.world) if self.distributed else n
        steps = -(-per_rank // (o.batch_size // self.world))
        return steps if o.max_steps is None else min(steps, o.max_steps)

    def schedule(self, o: TrainOptions, epochs_done: int) -> None:
        """Set ``sched`` for ``o.schedule``, advanced past the ``epochs_done`` finished epochs
        (the schedule is a function of the step count alone, so a resumed run continues it)."""
        if o.schedule != "onecycle":
            return
        per_epoch = self.steps_per_epoch(o)
        self.sched = torch.optim.lr_scheduler.OneCycleLR(self.opt, max_lr=o.lr, epochs=max(o.epochs, 1),
                                                         steps_per_epoch=max(per_epoch, 1))
        with warnings.catch_warnings():  # advancing a resumed schedule steps it before the optimiser
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(epochs_done * per_epoch):
                self.sched.step()

    def parallelise(self) -> None:
        """Set ``net`` and ``test_part``: DDP and a strided part of the test set when distributed."""
        self.net, self.test_part = self.model, self.test_set
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel
            from torch.utils.data import Subset

            self.net = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            self.test_part = Subset(self.test_set, list(range(self.rank, len(self.test_set), self.world)))

    def epoch(self, o: TrainOptions, epoch: int, evaluate: bool = True) -> dict[str, Any]:
        """Train one epoch and, if ``evaluate``, evaluate on (this process's part of) the test set:
        the epoch's row (test loss and accuracy ``None`` when not evaluated)."""
        t0 = time.perf_counter()
        train_set, test_part = self.train_set, self.test_part
        for ds in (train_set, self.test_set):
            if hasattr(ds, "set_epoch"):
                ds.set_epoch(epoch)
        order = _epoch_order(train_set, o, epoch, self.rank, self.world, self.distributed)
        loader = _loader(train_set, o.batch_size // self.world, self.device, self.workers, sampler=order)
        sums = _train_steps(self.net, loader, self.opt, self.scaler, self.device, self.amp, o.max_steps, self.sched)
        if self.distributed:
            for b in self.model.buffers():  # BatchNorm statistics: rank 0's (those the checkpoint holds)
                torch.distributed.broadcast(b, src=0)
        if evaluate:
            sums = torch.cat([sums, _evaluate_device_sums(self.model, test_part, o.eval_batch_size, self.device,
                                                          self.amp, self.workers)])
        if self.distributed:
            from csc.runtime import distributed as _dist

            sums = _dist.all_reduce_sum(sums)
        values = to_host(sums, "train.epoch").tolist()  # the epoch's one read of its metrics
        loss_sum, correct, seen = values[:3]
        test_loss = test_acc = None
        if evaluate:
            t_loss, t_correct, t_n = values[3:]
            test_loss, test_acc = t_loss / max(t_n, 1), 100.0 * t_correct / max(t_n, 1)
        return {"epoch": epoch + 1, "train_loss": loss_sum / max(seen, 1),
                "train_acc": 100.0 * correct / max(seen, 1), "test_loss": test_loss, "test_acc": test_acc,
                "lr": float(self.opt.param_groups[0]["lr"]), "seconds": time.perf_counter() - t0}


def _setup_run(train_set: Dataset, test_set: Dataset, o: TrainOptions, in_channels: int | None,
               num_classes: int | None, distributed: bool, rank: int, world: int) -> _TrainRun:
    """Model (seeded), Adam, AMP scaler and device for :func:`train` (not yet parallelised)."""
    from csc.runtime import distributed as _dist

    device = _dist.device_for_rank(o.device) if distributed else resolve_device(o.device)
    if o.amp and device.type != "cuda":
        raise ValueError(f"amp (csc train --amp on): mixed precision runs on CUDA only, and this run is on {device}; "
                         "use amp=None / --amp auto (on where CUDA is) or False / --amp off")
    amp = (device.type == "cuda") if o.amp is None else bool(o.amp)
    C = int(in_channels if in_channels is not None else getattr(train_set, "in_channels"))
    nc = int(num_classes if num_classes is not None else max(getattr(train_set, "num_classes"),
                                                               getattr(test_set, "num_classes", 0)))
    if device.type == "cuda":  # the resume guarantee needs deterministic cuDNN kernels (module docstring)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    torch.manual_seed(o.seed)
    model = resnet18(in_channels=C, num_classes=nc, stem=o.stem, dropout=o.dropout).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=amp) if device.type == "cuda" else None
    return _TrainRun(model, opt, scaler, device, amp, C, nc, rank, world, distributed, train_set, test_set,
                     workers=resolve_num_workers(o.num_workers, device, world))


def train(train_set: Dataset, test_set: Dataset, out: str | Path, options: TrainOptions = TrainOptions(),
          run: dict[str, Any] | None = None, in_channels: int | None = None, num_classes: int | None = None,
          progress: bool = False, stop_after_epoch: int | None = None,
          distributed: bool | None = None) -> dict[str, Any]:
    """Train a ResNet-18 on ``train_set``, evaluating on ``test_set`` every epoch.

    Datasets yield (x (C, H, W), label); ``in_channels`` / ``num_classes`` default to the
    datasets' attributes of those names. ``run`` describes the run (e.g. ``{"encoding":
    "heterogeneous", "pruning": 0.25}``) for :func:`aggregate_runs`. Resumes from
    ``out/checkpoint.npz`` when present. ``stop_after_epoch`` returns early after that
    epoch (simulates an interruption). Returns the contents of ``metrics.json``.

    ``distributed`` (default: whenever a process group with several processes is
    initialised, :func:`csc.runtime.distributed.init_distributed`) trains data-parallel with
    ``DistributedDataParallel`` (module docstring); every process calls ``train`` with
    the same arguments and ``options.batch_size`` must be a multiple of the number of
    processes. ``out`` is written by rank 0 only.
    """
    progress = check_bool("progress", progress)
    from csc.runtime import distributed as _dist

    distributed, rank, world = _dist.resolve_distributed(distributed)
    main_process = rank == 0
    out = Path(out)
    o = options
    if o.batch_size % world:
        raise ValueError(f"batch_size: the global batch {o.batch_size} is not a multiple of the "
                         f"{world} processes")
    if main_process:
        prepare_dir(out, "out")
    r = _setup_run(train_set, test_set, o, in_channels, num_classes, distributed, rank, world)
    info = {"run": dict(run or {}), "options": o.identity(), "in_channels": r.in_channels,
            "num_classes": r.num_classes,
            "train_size": len(train_set), "test_size": len(test_set), "device": str(r.device), "amp": r.amp,
            "num_workers": r.workers,
            "world_size": world, "data": {"train": _data_identity(train_set), "test": _data_identity(test_set)}}
    ckpt = out / CHECKPOINT
    history, start = _restore_checkpoint(ckpt, r.model, r.opt, r.scaler, o, info, distributed, main_process)
    r.schedule(o, start)
    r.parallelise()
    for epoch in range(start, o.epochs):
        row = r.epoch(o, epoch, evaluate=(epoch + 1) % o.eval_every == 0 or epoch + 1 == o.epochs)
        history.append(row)
        if progress and main_process:
            test = ("not evaluated" if row["test_acc"] is None
                    else f"test loss {row['test_loss']:.4f} acc {row['test_acc']:.2f}")
            print(f"epoch {epoch + 1}/{o.epochs}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.2f} | "
                  f"{test} | {row['seconds']:.1f}s", flush=True)
        if main_process:
            save_checkpoint(ckpt, r.model, r.opt, r.scaler, {"epoch": epoch, "options": o.identity(),
                                                              "run": info["run"], "data": info["data"], "history": history})
            _write_metrics(out, history, info)
            plot_history(history, out / "curves.png", title=_run_label(info["run"]))
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
            break
    if main_process and (not history or not (out / "metrics.json").is_file()):
        _write_metrics(out, history, info)
    if distributed:
        _dist.barrier()  # rank 0's files are written when every rank returns
    return {**info, "epochs": history, "model": r.model}


# --------------------------------------------------------------------------- tables
def last_evaluated(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The last row of ``history`` with a test evaluation (``TrainOptions.eval_every``), or None."""
    return next((row for row in reversed(history) if row["test_acc"] is not None), None)


def _run_label(run: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in run.items() if k != "seed")


def _pruning_name(p: Any) -> str:
    return "none" if p in (None, 0, 0.0, "none") else f"c = {p:g}" if isinstance(p, (int, float)) else str(p)


def aggregate_runs(run_dirs: Sequence[str | Path], metric: str = "test_acc", which: str = "last") -> dict[str, Any]:
    """Group run folders by (encoding, pruning) and summarise over seeds.

    ``which``: ``"last"`` (final epoch, the paper's convention) or ``"best"`` (best epoch),
    over the epochs that were evaluated (``TrainOptions.eval_every``). Returns {"rows":
    [{encoding, pruning, n, mean, std, values, seeds, curves}], "metric", "which"}; ``std``
    is the sample standard deviation (ddof 1; 0 for one run); ``curves`` hold the metric
    per epoch, ``None`` where an epoch was not evaluated.
    """
    groups: dict[tuple[str, str], list[tuple[int, float, list]]] = {}
    for d in run_dirs:
        m = read_json(Path(d) / "metrics.json", "metrics")
        vals = [e[metric] for e in m["epochs"]]
        measured = [v for v in vals if v is not None]
        if not measured:
            continue
        v = measured[-1] if which == "last" else max(measured)
        run = m.get("run", {})
        key = (str(run.get("encoding", Path(d).parent.name)), _pruning_name(run.get("pruning")))
        groups.setdefault(key, []).append((run.get("seed", m["options"]["seed"]), float(v), vals))
    rows = []
    for (enc, pr), items in groups.items():
        a = np.array([v for _, v, _ in items])
        rows.append({"encoding": enc, "pruning": pr, "n": int(a.size), "mean": float(a.mean()),
                     "std": float(a.std(ddof=1)) if a.size > 1 else 0.0, "values": a.tolist(),
                     "seeds": [s for s, _, _ in items], "curves": [c for _, _, c in items]})
    return {"metric": metric, "which": which, "rows": rows}


def table_markdown(agg: dict[str, Any]) -> str:
    """Table 1 layout: one row per encoding, one column per pruning, "mean ± std (n)"."""
    encs = list(dict.fromkeys(r["encoding"] for r in agg["rows"]))
    prs = sorted(dict.fromkeys(r["pruning"] for r in agg["rows"]), key=lambda p: (p != "none", p))
    cell = {(r["encoding"], r["pruning"]): r for r in agg["rows"]}
    lines = ["| encoding | " + " | ".join("no pruning" if p == "none" else p for p in prs) + " |",
             "|---|" + "---|" * len(prs)]
    for e in encs:
        cs = []
        for p in prs:
            r = cell.get((e, p))
            cs.append("—" if r is None else f"{r['mean']:.2f} ± {r['std']:.2f} (n={r['n']})")
        lines.append(f"| {e} | " + " | ".join(cs) + " |")
    return "\n".join(lines) + "\n"


def plot_runs(agg: dict[str, Any], path: str | Path, ylabel: str = "test top-1 accuracy (%)") -> None:
    """Fig. 7-style curves: the metric per epoch, mean over seeds with a ±std band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prs = sorted(dict.fromkeys(r["pruning"] for r in agg["rows"]), key=lambda p: (p != "none", p))
    fig, axes = plt.subplots(1, len(prs), figsize=(4.2 * len(prs), 3.6), sharey=True, squeeze=False)
    for ax, p in zip(axes[0], prs):
        for r in agg["rows"]:
            if r["pruning"] != p and not (r["encoding"] == "pixels" and p != "none"):
                continue
            n = min(len(c) for c in r["curves"])
            c = np.array([c[:n] for c in r["curves"]], dtype=float)  # None (not evaluated): NaN
            keep = ~np.isnan(c).any(0)
            ep, c = np.arange(1, n + 1)[keep], c[:, keep]
            mu, sd = c.mean(0), c.std(0, ddof=1) if len(c) > 1 else np.zeros(c.shape[1])
            style = "--" if r["encoding"] == "pixels" else "-"
            ax.plot(ep, mu, style, marker=None if keep.all() else ".", label=r["encoding"])
            ax.fill_between(ep, mu - sd, mu + sd, alpha=0.2)
        ax.set_title("no pruning" if p == "none" else f"pruning {p}")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, lambda f: f.write(buf.getvalue()))

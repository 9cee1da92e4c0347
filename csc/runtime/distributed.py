"""Multi-process helpers on ``torch.distributed`` (torchrun, NCCL on GPUs, gloo on CPUs).

csc scales out with PyTorch's own engine: start the ``csc`` command (or your script)
under ``torchrun``, which sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``
and ``MASTER_PORT`` for every process, and call :func:`init_distributed` first::

    torchrun --nproc_per_node 4 -m csc encode-dataset --dataset fashion-mnist ... --out store

:func:`init_distributed` joins the default process group when ``WORLD_SIZE`` > 1 (backend
``nccl`` when the process works on a CUDA device, ``gloo`` otherwise) and returns the
device this process should use: with several processes, ``cuda`` / ``auto`` means
``cuda:LOCAL_RANK`` (one GPU per process). Without torchrun (``WORLD_SIZE`` unset or 1)
nothing is initialised and every accessor answers as for a single process (rank 0,
world size 1), so the same code runs in both cases.

The data-parallel pieces built on these helpers:

- :func:`csc.pipeline.store.encode_dataset`: shards are split by index over the processes
  (shard ``i`` on rank ``i mod N``); rank 0 writes the manifest. The store equals the
  one a single process writes, byte for byte.
- :class:`csc.OnlineDictLearn`: each rank codes its slice of the global minibatch; the
  coding step's norms and the dictionary gradient are summed over ranks, so every rank
  applies the same update as a single process would.
- :func:`csc.classify.train.train`: ``DistributedDataParallel`` with a ``DistributedSampler``.

All helpers are device- and dtype-agnostic.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

import torch
import torch.distributed as dist

from csc.runtime.device import resolve_device

__all__ = [
    "collective_device",
    "init_distributed",
    "is_distributed",
    "resolve_distributed",
    "get_rank",
    "get_world_size",
    "get_local_rank",
    "device_for_rank",
    "is_main_process",
    "barrier",
    "cleanup",
    "all_reduce_sum",
    "all_gather_object",
    "broadcast_object",
    "rank_slice",
]


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def device_for_rank(device: torch.device | str | None = None, *, arg: str = "device") -> torch.device:
    """The device this process should use for ``device`` ("auto"/None, "cpu", "cuda", "cuda:N").

    ``auto`` means CUDA when available, else CPU. Under torchrun (``LOCAL_RANK`` set) or
    in a group of several processes, ``cuda`` without an index becomes
    ``cuda:LOCAL_RANK`` (modulo the number of visible GPUs): one GPU per process on each
    machine. An explicit index is kept. Names are checked by
    :func:`csc.runtime.device.resolve_device` (``ValueError`` for a bogus one or for CUDA
    without a GPU).
    """
    dev = resolve_device(device, arg=arg)
    if dev.type == "cuda" and dev.index is None and (
            "LOCAL_RANK" in os.environ or _env_int("WORLD_SIZE", 1) > 1 or is_distributed()):
        dev = torch.device("cuda", get_local_rank() % torch.cuda.device_count())
    return dev


def init_distributed(device: torch.device | str | None = None, *, backend: str | None = None,
                     timeout: datetime.timedelta | float | None = None, arg: str = "device") -> torch.device:
    """Join the default process group from torchrun's environment; return this process's device.

    Parameters
    ----------
    device : "auto", "cpu", "cuda", "cuda:N", torch.device or None (= "auto")
        The device asked for, resolved by :func:`device_for_rank` (under torchrun,
        ``cuda`` means ``cuda:LOCAL_RANK``); a CUDA device is made the current one.
    backend : optional
        Default: ``nccl`` when the device is CUDA and NCCL is available, else ``gloo``.
    timeout : optional
        Collective timeout (seconds or a ``timedelta``); default PyTorch's.
    arg : str
        The name of the device argument in error messages (the CLI's ``--device``).

    Notes
    -----
    With ``WORLD_SIZE`` unset or 1, or when the default group is already initialised,
    nothing is initialised; the (resolved) device is returned either way.
    """
    dev = device_for_rank(device, arg=arg)
    world = _env_int("WORLD_SIZE", 1)
    if dev.type == "cuda" and dev.index is not None:
        torch.cuda.set_device(dev)
    if world > 1 and dist.is_available() and not dist.is_initialized():
        if backend is None:
            backend = "nccl" if dev.type == "cuda" and dist.is_nccl_available() else "gloo"
        kwargs: dict[str, Any] = {}
        if timeout is not None:
            kwargs["timeout"] = timeout if isinstance(timeout, datetime.timedelta) else \
                datetime.timedelta(seconds=float(timeout))
        if backend == "nccl" and dev.type == "cuda":
            kwargs["device_id"] = dev
        dist.init_process_group(backend=backend, init_method="env://", **kwargs)
    return dev


def is_distributed() -> bool:
    """True when the default process group is initialised with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def resolve_distributed(distributed: bool | None) -> tuple[bool, int, int]:
    """(distributed, rank, world size) for a function's ``distributed`` argument.

    ``None`` means: distributed whenever a process group with several processes is
    initialised. ``True`` without such a group raises ``ValueError``. When not
    distributed the rank is 0 and the world size 1.
    """
    from csc.runtime.flags import check_bool

    distributed = check_bool("distributed", distributed, none=True)
    if distributed is None:
        distributed = is_distributed()
    elif distributed and not is_distributed():
        raise ValueError("distributed: no process group with several processes is initialised "
                         "(run under torchrun and call csc.runtime.distributed.init_distributed())")
    if not distributed:
        return False, 0, 1
    return True, get_rank(), get_world_size()


def get_rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    """Number of processes (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def get_local_rank() -> int:
    """Rank of this process on its machine (torchrun's ``LOCAL_RANK``; 0 when unset)."""
    return _env_int("LOCAL_RANK", 0)


def is_main_process() -> bool:
    """True on rank 0 (and when not distributed): the process that writes shared files."""
    return get_rank() == 0


def barrier() -> None:
    """Wait for every process (no-op when not distributed)."""
    if not is_distributed():
        return
    if dist.get_backend() == "nccl" and torch.cuda.is_available():
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


def cleanup() -> None:
    """Leave the default process group if one is initialised (safe to call always)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def collective_device(device: torch.device | str | None = None) -> torch.device | None:
    """Where a tensor must live for this process group's collectives: ``device`` when given;
    else this process's CUDA device under NCCL (which cannot reduce or broadcast CPU
    tensors), else None (anywhere: gloo)."""
    if device is not None:
        return torch.device(device)
    if is_distributed() and dist.get_backend() == "nccl" and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return None


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over all processes (real or complex, any float dtype); returns the sum
    (``t`` itself when not distributed). The tensor must live where the backend works
    (CUDA for NCCL)."""
    if not is_distributed():
        return t
    t = t.contiguous()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_gather_object(obj: Any) -> list[Any]:
    """Every process's ``obj`` (picklable), in rank order (``[obj]`` when not distributed)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every process (``obj`` when not distributed)."""
    if not is_distributed():
        return obj
    box = [obj if dist.get_rank() == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def rank_slice(n: int, rank: int | None = None, world_size: int | None = None) -> slice:
    """Contiguous part of ``range(n)`` for ``rank``: ``[r·n // N, (r + 1)·n // N)``."""
    r = get_rank() if rank is None else int(rank)
    w = get_world_size() if world_size is None else int(world_size)
    return slice(r * n // w, (r + 1) * n // w)

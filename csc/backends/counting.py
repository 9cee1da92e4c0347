"""Passes over the coefficient maps and kernel launches of one ADMM iteration, counted.

The bandwidth floor of an iteration (what a memory-bound GPU iteration cannot beat) is the
bytes it must move over the device's copy bandwidth. :func:`count_iteration` counts them on
the back end's real code rather than a model: it runs one CBPDN iteration of the ``"torch"``
or ``"compiled"`` back end on a small problem (after warm-up) under a
``TorchDispatchMode`` that sees every aten call, and

- for each aten call outside the compiled kernels: one launch, and the bytes of its tensor
  inputs (read) and outputs (written), views excepted;
- for each call of a compiled kernel (:mod:`csc.backends.compiled`): the kernels inductor
  generates for it and the bytes they access (inductor's own count), compiled afresh with
  the caches off so that the count is of this torch's code generation.

``map_passes`` is the bytes over those of one (n, K, H, W) map of the working dtype. On
CUDA, ``irfft2`` also copies its input (cuFFT's c2r transform overwrites it): one complex
half-spectrum more, not seen on the CPU, added as ``cuda_c2r_copy``.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

import torch
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes

__all__ = ["IterationCount", "count_iteration"]


@dataclass
class IterationCount:
    """One iteration's traffic: ``map_passes`` (bytes moved / bytes of one coefficient map),
    ``launches`` (kernels), per aten op and per compiled kernel."""

    backend: str
    map_passes: float
    launches: int
    ops: dict[str, int] = field(default_factory=dict)
    map_ops: dict[str, int] = field(default_factory=dict)
    compiled: dict[str, dict] = field(default_factory=dict)
    cuda_c2r_copy: float = 0.0

    def as_dict(self) -> dict:
        return {"backend": self.backend, "map_passes": self.map_passes, "launches": self.launches,
                "ops": dict(self.ops), "map_ops": dict(self.map_ops), "compiled": dict(self.compiled),
                "cuda_c2r_copy": self.cuda_c2r_copy}


def _nbytes(t) -> int:
    return t.numel() * t.element_size() if isinstance(t, torch.Tensor) else 0


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            yield from _tensors(o)


class _AtenCounter(TorchDispatchMode):
    """Launches and bytes of the aten calls made while active (views are free); ``map_ops``:
    the calls that touch a tensor of at least ``map_numel`` elements (a coefficient map, or
    its half spectrum, of the whole batch)."""

    def __init__(self, map_numel: int = 0):
        super().__init__()
        self.launches, self.bytes, self.ops, self.map_ops = 0, 0, {}, {}
        self.c2r_bytes, self.map_numel = 0, map_numel

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if getattr(func, "is_view", False) or func.overloadpacket in _FREE:
            return out
        name = func.overloadpacket.__name__
        self.ops[name] = self.ops.get(name, 0) + 1
        self.launches += 1
        outs = list(_tensors(out))
        written = {id(t) for t in outs}
        reads = [t for t in _tensors(list(args) + [v for k, v in kwargs.items() if k != "out"])
                 if id(t) not in written or name.endswith("_")]
        self.bytes += sum(_nbytes(t) for t in reads) + sum(_nbytes(t) for t in outs)
        if self.map_numel and any(t.numel() >= self.map_numel for t in reads + outs):
            self.map_ops[name] = self.map_ops.get(name, 0) + 1
        if name == "_fft_c2r":
            self.c2r_bytes += sum(_nbytes(t) for t in _tensors(args[:1]))
        return out


_FREE = {torch.ops.aten.view_as_real, torch.ops.aten.view_as_complex, torch.ops.aten.detach,
         torch.ops.aten.alias, torch.ops.aten.lift_fresh, torch.ops.aten.empty, torch.ops.aten.empty_like,
         torch.ops.aten.empty_strided, torch.ops.aten.resolve_conj, torch.ops.aten.resolve_neg}


@contextlib.contextmanager
def _inductor_counts():
    """Inductor with its caches off and its byte count on (its metrics log at INFO, silenced)."""
    from torch._functorch import config as functorch_config
    from torch._inductor import config as inductor_config

    log = logging.getLogger("torch._inductor.compile_fx.__inductor_metrics")
    level, propagate, handlers = log.level, log.propagate, list(log.handlers)
    log.setLevel(logging.INFO)
    log.propagate, log.handlers = False, [logging.NullHandler()]
    try:
        with inductor_config.patch(fx_graph_cache=False, fx_graph_remote_cache=False), \
                functorch_config.patch(enable_autograd_cache=False):
            yield
    finally:
        log.setLevel(level)
        log.propagate, log.handlers = propagate, handlers


def _kernel_traffic(fn, args) -> dict:
    """Kernels and bytes inductor generates for compiled ``fn`` on ``args`` (a fresh compile)."""
    from torch._inductor import metrics

    from csc.backends.compiling import _no_duck_shapes, recompile_options

    copies = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
    with _inductor_counts(), _no_duck_shapes():
        metrics.reset()
        torch.compile(fn.fn, dynamic=True, fullgraph=True, **recompile_options())(*copies)
        return {"kernels": int(metrics.generated_kernel_count), "bytes": int(metrics.num_bytes_accessed)}


def _problem(n, K, H, W, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    D = torch.randn(K, 5, 5, generator=g, dtype=torch.float64)
    D /= D.flatten(1).norm(dim=1).view(-1, 1, 1)
    return D.to(dtype), torch.randn(n, H, W, generator=g, dtype=torch.float64).to(dtype)


def count_iteration(backend: str, *, n: int = 2, K: int = 4, H: int = 16, W: int = 16,
                    dtype: torch.dtype = torch.float64, record_stats: bool = False,
                    sync_interval: int = 1, relax: float = 1.8, device="cpu") -> IterationCount:
    """Count one iteration of CBPDN on ``backend`` (``"torch"`` or ``"compiled"``) for n
    images H×W and K kernels 5×5 on ``device``, after three warm-up iterations (module
    docstring). ``record_stats``: the iteration computes its statistics row too. On CUDA,
    ``map_passes`` includes the copy cuFFT's c2r transform makes of its input."""
    from csc.backends import compiling
    from csc.backends.registry import admm_workspace
    from csc.core.admm import ADMMLoop
    from csc.core.options import CBPDNOptions
    from csc.core.prox import SoftThreshold
    from csc.core.xstep import xstep_for

    if backend not in ("torch", "compiled"):
        raise ValueError(f"backend: expected 'torch' or 'compiled' (numba runs outside torch), got {backend!r}")
    device = torch.device(device)
    D, S = (t.to(device) for t in _problem(n, K, H, W, dtype))
    opts = CBPDNOptions(backend=backend, record_stats=record_stats, sync_interval=sync_interval,
                            rel_stop_tol=0.0, relax=relax)
    ws = admm_workspace(S, xstep_for(D, (H, W)), S.new_zeros((n, K, H, W)), S.new_zeros((n, K, H, W)),
                        SoftThreshold(0.05), opts)
    loop = ADMMLoop(ws, ws.prox, opts, sync_every=ws.sync_every)
    record = (lambda k, idx, row: None) if record_stats else None
    for _ in range(3):
        loop.step(record)
    calls: list[tuple] = []
    original = compiling.CompiledFunction.__call__

    def counted(self, *args):
        calls.append((self, args))
        with _disable_current_modes():
            return original(self, *args)

    counter = _AtenCounter(map_numel=n * K * H * (W // 2 + 1))
    compiling.CompiledFunction.__call__ = counted
    try:
        with counter:
            loop.step(record)
    finally:
        compiling.CompiledFunction.__call__ = original
    compiled = {}
    total_bytes, launches = counter.bytes, counter.launches
    for fn, args in calls:
        traffic = _kernel_traffic(fn, args)
        compiled[fn.name] = traffic
        total_bytes += traffic["bytes"]
        launches += traffic["kernels"]
    map_bytes = n * K * H * W * torch.empty((), dtype=dtype).element_size()
    if device.type == "cuda":
        total_bytes += 2 * counter.c2r_bytes
    return IterationCount(backend=backend, map_passes=total_bytes / map_bytes, launches=launches,
                          ops=counter.ops, map_ops=counter.map_ops, compiled=compiled, cuda_c2r_copy=counter.c2r_bytes / map_bytes)

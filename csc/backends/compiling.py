"""``torch.compile`` for csc's own kernels: one compiled region per device and dtype, never a hard failure.

A function compiled with ``fullgraph=True`` gets a fixed number of variants (dynamo's
recompile limit, 8 by default, shared by every ``torch.compile`` of the same code); the next
variant raises ``FailOnRecompileLimitHit``. A long session (a notebook coding images of
several sizes, in two dtypes, with several option sets, then learning a dictionary) can
reach it. :class:`CompiledFunction` therefore

- compiles one region per (device type, dtype), each with its own recompile limit
  (:data:`RECOMPILE_LIMIT`, where the installed torch has ``recompile_limit`` and
  ``isolate_recompiles``), so that the variants of one do not count against another's;
- compiles shapes dynamically without duck sizing (two equal sizes, a batch of n images of
  n rows, are not tied together by a guard);
- runs the same function in eager mode, with one warning that says why, when compiling a
  variant fails for any reason (the limit, a missing compiler, an inductor error): the
  arithmetic is the same, only slower. Out-of-memory errors are not compile failures and
  propagate (the batch splitter handles them).

:func:`fallbacks` lists what fell back, and :func:`reset` starts every region anew (tests).
"""

from __future__ import annotations

import contextlib
import inspect
import threading
import warnings
from typing import Callable

import torch

__all__ = ["RECOMPILE_LIMIT", "CompiledFunction", "fallbacks", "reset", "recompile_options"]

#: variants (shape patterns, argument kinds) one region may compile before it falls back
RECOMPILE_LIMIT = 64

_EAGER = object()
_registry: list["CompiledFunction"] = []
_lock = threading.Lock()


def recompile_options(limit: int | None = None) -> dict:
    """``torch.compile`` keyword arguments that give a region its own recompile limit, where
    the installed torch has them (2.13 does; older ones share dynamo's global limit)."""
    params = inspect.signature(torch.compile).parameters
    out = {}
    if "recompile_limit" in params:
        out["recompile_limit"] = int(RECOMPILE_LIMIT if limit is None else limit)
    if "isolate_recompiles" in params:
        out["isolate_recompiles"] = True
    return out


@contextlib.contextmanager
def _no_duck_shapes():
    """Compile (and recompile) without duck sizing: equal sizes get separate symbols."""
    try:
        from torch.fx.experimental import _config as fx_config
    except ImportError:  # pragma: no cover - very old torch
        yield
        return
    if not getattr(fx_config, "use_duck_shape", False):
        yield
        return
    with fx_config.patch(use_duck_shape=False):
        yield


def _is_out_of_memory(exc: BaseException) -> bool:
    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    return oom is not None and isinstance(exc, oom)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first[:300]}"


class CompiledFunction:
    """``fn`` compiled by ``torch.compile`` per (device type, dtype) of its first argument,
    falling back to ``fn`` itself (eager) for that key after a compile failure (module
    docstring). Call it as ``fn``."""

    def __init__(self, fn: Callable, name: str | None = None):
        self.fn = fn
        self.name = name or fn.__name__
        self._regions: dict[tuple, object] = {}
        self.failures: dict[tuple, str] = {}
        with _lock:
            _registry.append(self)

    def region(self, key: tuple):
        """The compiled callable of ``key`` (made on first use), or the eager marker."""
        fn = self._regions.get(key)
        if fn is None:
            with _lock:
                fn = self._regions.get(key)
                if fn is None:
                    fn = torch.compile(self.fn, dynamic=True, fullgraph=True, **recompile_options())
                    self._regions[key] = fn
        return fn

    def __call__(self, *args):
        first = args[0]
        key = (first.device.type, first.dtype)
        fn = self.region(key)
        if fn is _EAGER:
            return self.fn(*args)
        try:
            with _no_duck_shapes():
                return fn(*args)
        except Exception as exc:  # compile failures of any kind; not OOM
            if _is_out_of_memory(exc):
                raise
            self._fall_back(key, exc)
            return self.fn(*args)

    def _fall_back(self, key: tuple, exc: BaseException) -> None:
        reason = _reason(exc)
        with _lock:
            self._regions[key] = _EAGER
            self.failures[key] = reason
        warnings.warn(f"csc: torch.compile failed for {self.name} on {key[0]} {str(key[1]).replace('torch.', '')} "
                      f"({reason}); running it in eager mode from now on (same arithmetic, slower)",
                      RuntimeWarning, stacklevel=3)

    def fell_back(self, device_type: str, dtype: torch.dtype) -> str | None:
        """Why this function runs eagerly for (``device_type``, ``dtype``), or None."""
        return self.failures.get((device_type, dtype))

    def reset(self) -> None:
        with _lock:
            self._regions.clear()
            self.failures.clear()


def fallbacks() -> dict[str, dict[tuple, str]]:
    """{function name: {(device type, dtype): reason}} of every csc function running eagerly."""
    return {f.name: dict(f.failures) for f in _registry if f.failures}


def reset() -> None:
    """Forget every compiled region and fallback (the next call compiles anew)."""
    for f in list(_registry):
        f.reset()

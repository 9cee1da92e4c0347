"""Parametrisations over csc's back ends and devices in which what cannot run here shows.

A back end (or device) that is missing stays in the parametrisation as a case skipped
with the reason, instead of vanishing from it: a run without numba reports its numba
cases as skipped, not as fewer passed tests.

``"numba"``: the fused CPU back end (skipped when numba cannot be imported);
``"compiled"``: the ``torch.compile`` back end (skipped when inductor cannot build
kernels on the device; checked when such a case runs, since the probe compiles a kernel
and costs seconds: see ``pytest_runtest_setup`` in ``tests/conftest.py``);
``"cuda"``: a CUDA device.
"""

from __future__ import annotations

import pytest
import torch

from csc.backends import fused as _fused

NUMBA_AVAILABLE = _fused.available()
NUMBA_MISSING = None if NUMBA_AVAILABLE else f"the numba back end cannot run: {_fused.unavailable_reason()}"

#: skip mark of the tests (or cases) that run the numba back end
needs_numba = pytest.mark.skipif(not NUMBA_AVAILABLE, reason=NUMBA_MISSING or "")

CUDA_AVAILABLE = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA_AVAILABLE, reason="no CUDA device")


def numba_param(*values, id: str | None = None):
    """``pytest.param(*values)`` (``"numba"`` by default) skipped where numba cannot run."""
    return pytest.param(*(values or ("numba",)), marks=needs_numba, id=id)


def compiled_param(device: str = "cpu", *values, id: str | None = None):
    """``pytest.param(*values)`` (``"compiled"`` by default) skipped where ``torch.compile``
    cannot build kernels on ``device`` (the reason is inductor's, found when the case runs)."""
    marks = [pytest.mark.needs_compiled(device)]
    if device == "cuda":
        marks = [pytest.mark.cuda, needs_cuda] + marks
    return pytest.param(*(values or ("compiled",)), marks=marks, id=id)


def skip_unless_numba() -> None:
    """Skip the running test, with the reason, where the numba back end cannot run."""
    if not NUMBA_AVAILABLE:
        pytest.skip(NUMBA_MISSING)


def compiled_unavailable(device: str) -> str | None:
    """Why the compiled back end cannot run on ``device`` (None when it can)."""
    from csc.backends.compiled import compile_unavailable_reason

    why = compile_unavailable_reason(torch.device(device))
    return None if why is None else f"the compiled back end cannot run on {device}: {why}"


#: the back ends of a CPU solve, each test run on every one: the torch loop and the fused numba kernels
CPU_BACKENDS = ["torch", numba_param()]

#: the back ends whose loop freezes converged images on the device between host reads
#: (``sync_interval`` > 1; the numba back end checks every iteration)
FREEZING_BACKENDS = ["torch", compiled_param("cpu")]

#: (device, back end) pairs of a solve off the numba back end: on the CPU the torch loop and
#: the compiled back end, on CUDA the same two
DEVICE_BACKENDS = [
    pytest.param("cpu", "torch", id="cpu-torch"),
    compiled_param("cpu", "cpu", "compiled", id="cpu-compiled"),
    pytest.param("cuda", "torch", marks=[pytest.mark.cuda, needs_cuda], id="cuda-torch"),
    compiled_param("cuda", "cuda", "compiled", id="cuda-compiled"),
]

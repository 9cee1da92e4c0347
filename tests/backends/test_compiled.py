"""The compiled (torch.compile) back end against the torch loop, on the CPU (inductor's C++
code): codes, dual, iteration counts and every statistic to rounding in float64, for a
single image and for a batch whose images retire at different iterations, with weights,
non-negativity, boundary zeroing and the objective on y. Few, small shapes: each option set
is one compiled variant (cached by inductor between runs)."""

import numpy as np
import pytest
import torch

import csc
from csc.backends.compiled import CompiledCBPDN, compile_available
from csc.backends.registry import admm_workspace
from csc.core.prox import SoftThreshold

pytestmark = pytest.mark.skipif(not compile_available(torch.device("cpu")),
                                reason="torch.compile cannot build CPU kernels here (no C++ compiler)")

FIELDS = ("objective", "data_fidelity", "l1", "primal_residual", "dual_residual", "eps_primal", "eps_dual", "rho")


def _problem(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    D = torch.randn(6, 5, 5, generator=g, dtype=torch.float64)
    D /= D.flatten(1).norm(dim=1).view(-1, 1, 1)
    scale = torch.tensor([1.0, 0.1, 3.0, 0.5][:n], dtype=torch.float64).view(-1, 1, 1)
    return D, torch.randn(n, 20, 20, generator=g, dtype=torch.float64) * scale


def _solve(backend, D, S, **kw):
    opts = csc.CBPDNOptions(max_iter=120, rel_stop_tol=2e-2, backend=backend, **kw)
    return csc.ConvBPDN(D, 0.05, opts).solve(S)


def _close(a, b, tol=1e-12):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.abs(a).max(), 1e-300)
    assert np.abs(a - b).max() <= tol * scale


def _same(a, b):
    assert a.iterations.tolist() == b.iterations.tolist()
    for name in ("codes", "x", "u", "rho"):
        _close(getattr(a, name), getattr(b, name))
    assert a.codes.count_nonzero() == b.codes.count_nonzero()
    if a.stats is not None:
        for sa, sb in zip(a.stats, b.stats):
            for f in FIELDS:
                _close(getattr(sa, f), getattr(sb, f))


CASES = {
    "single": dict(n=1, opts=dict()),
    "batch-retiring-constrained": dict(n=3, opts=dict(
        sync_interval=4, nonneg=True, no_boundary_cross=True, objective_on_y=True,
        l1_weight=torch.tensor([1.0, 0.5, 2.0, 1.0, 0.0, 1.5], dtype=torch.float64))),
}


@pytest.mark.parametrize("case", list(CASES))
def test_compiled_equals_torch_loop(case):
    D, S = _problem(CASES[case]["n"])
    kw = CASES[case]["opts"]
    ref, got = _solve("torch", D, S, **kw), _solve("compiled", D, S, **kw)
    _same(ref, got)
    if CASES[case]["n"] > 1:
        assert len(set(ref.iterations.tolist())) > 1  # the images retired at different iterations


def test_compiled_without_statistics_and_per_pixel_weights():
    D, S = _problem(3, seed=1)
    w = torch.rand(3, 6, 20, 20, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    kw = dict(record_stats=False, sync_interval=3, l1_weight=w)
    _same(_solve("torch", D, S, **kw), _solve("compiled", D, S, **kw))


def test_compiled_is_chosen_for_the_workspace():
    D, S = _problem(1)
    solver = csc.ConvBPDN(D, 0.05, csc.CBPDNOptions(backend="compiled", max_iter=1))
    ws = admm_workspace(S, solver._xstep(D, (20, 20)), torch.zeros(1, 6, 20, 20, dtype=torch.float64),
                        torch.zeros(1, 6, 20, 20, dtype=torch.float64), SoftThreshold(0.05), solver.options)
    assert isinstance(ws, CompiledCBPDN)


def test_batch_learner_coding_step_on_the_compiled_back_end():
    """The learners' joint coding step (one ρ for the batch, state carried between outer
    iterations, a new dictionary each time) on the compiled kernels equals the torch loop."""
    from csc.learn.options import DICTLEARN_CBPDN_DEFAULTS, DictLearnOptions

    D0, S = _problem(2)
    out = {}
    for backend in ("torch", "compiled"):
        opts = DictLearnOptions(max_iter=8, cbpdn=DICTLEARN_CBPDN_DEFAULTS.replace(backend=backend))
        out[backend] = csc.DictLearn(D0, 0.05, opts).solve(S)
    _close(out["torch"].dictionary, out["compiled"].dictionary)
    _close(out["torch"].stats.objective, out["compiled"].stats.objective)


def test_environment_backend_falls_back_where_it_cannot_run(monkeypatch):
    """CSC_CBPDN_BACKEND=numba no longer makes solves on other devices raise: 'auto' then
    picks what runs there; an explicit backend='numba' off the CPU still raises."""
    from csc.backends.registry import select_backend

    monkeypatch.setenv("CSC_CBPDN_BACKEND", "numba")
    assert select_backend("auto", torch.device("meta")) == "torch"
    assert select_backend("auto", torch.device("cpu")) == "numba"
    with pytest.raises(ValueError, match="CPU only"):
        select_backend("numba", torch.device("meta"))
    monkeypatch.setenv("CSC_CBPDN_BACKEND", "compiled")
    assert select_backend("auto", torch.device("cpu")) == "compiled"


def test_quadratic_penalty_variant_keeps_its_solve_inside_the_compiled_workspace():
    """ConvElasticNet's diagonal x-step runs its torch solve, the y-step the compiled kernel."""
    D, S = _problem(2)
    solve = lambda b: csc.ConvElasticNet(D, 0.05, 0.1, csc.CBPDNOptions(max_iter=60, backend=b)).solve(S)  # noqa: E731
    a, b = solve("torch"), solve("compiled")
    assert a.iterations.tolist() == b.iterations.tolist()
    _close(a.codes, b.codes)
    for sa, sb in zip(a.stats, b.stats):
        _close(sa.objective, sb.objective)
        _close(sa.l2, sb.l2)

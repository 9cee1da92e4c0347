"""A user's session on the compiled back end, in one process: many solves with other dtypes,
batch sizes (1 to 32, a batch of n images of n rows), image sizes and options, the learners'
coding steps, each equal to the torch loop; and the same with dynamo's recompile limit
forced to one variant, where csc falls back to eager mode with a warning instead of failing.
On the CPU through inductor (the CUDA back end's code)."""

import warnings

import numpy as np
import pytest
import torch

import csc
from csc.backends import compiling
from csc.backends.compiled import compile_available

pytestmark = pytest.mark.skipif(not compile_available(torch.device("cpu")),
                                reason="torch.compile cannot build CPU kernels here (no C++ compiler)")


def _problem(n, size, K=4, k=3, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    D = torch.randn(K, k, k, generator=g, dtype=torch.float64)
    D /= D.flatten(1).norm(dim=1).view(-1, 1, 1)
    scale = torch.linspace(0.2, 2.0, n, dtype=torch.float64).view(-1, 1, 1)
    S = torch.randn(n, *size, generator=g, dtype=torch.float64) * scale
    return D.to(dtype), S.to(dtype)


def _weights(n, K, size):
    g = torch.Generator().manual_seed(7)
    return {"kernel": torch.rand(K, generator=g, dtype=torch.float64) + 0.5,
            "pixel": torch.rand(n, K, *size, generator=g, dtype=torch.float64) + 0.5}


#: (batch, (H, W), dtype, options): the session's solves, in order
SESSION = [
    (1, (12, 12), torch.float64, dict()),
    (3, (12, 12), torch.float64, dict(sync_interval=10, record_stats=False)),
    (12, (12, 12), torch.float64, dict(sync_interval=10)),  # n = H
    (2, (12, 14), torch.float64, dict(nonneg=True)),
    (2, (14, 12), torch.float64, dict(no_boundary_cross=True, sync_interval=1)),
    (4, (12, 12), torch.float64, dict(relax=1.0, record_stats=False)),
    (5, (10, 10), torch.float64, dict(objective_on_y=True, sync_interval=3)),
    (2, (12, 12), torch.float64, dict(l1_weight="kernel", nonneg=True, no_boundary_cross=True)),
    (3, (12, 12), torch.float64, dict(l1_weight="pixel", sync_interval=10, record_stats=False)),
    (32, (8, 8), torch.float64, dict(sync_interval=10, record_stats=False, rel_stop_tol=5e-2)),
    (1, (16, 16), torch.float64, dict(auto_rho=False, rho=2.0)),
    (7, (9, 11), torch.float64, dict(sync_interval=10, rel_stop_tol=2e-2)),
    (6, (12, 12), torch.float64, dict(relax=0.4, record_stats=False, sync_interval=1)),
    (2, (12, 12), torch.float32, dict(rel_stop_tol=0.0, max_iter=25)),
    (1, (12, 12), torch.float32, dict(rel_stop_tol=0.0, max_iter=25, record_stats=False, sync_interval=10)),
    (8, (10, 12), torch.float32, dict(rel_stop_tol=0.0, max_iter=25, nonneg=True, record_stats=False)),
    (16, (8, 8), torch.float64, dict(sync_interval=10, record_stats=False)),
    (3, (13, 13), torch.float64, dict(std_residuals=True)),
    (2, (12, 12), torch.float64, dict(max_iter=0)),
    (1, (12, 12), torch.float64, dict(max_iter=1, sync_interval=10)),
    (4, (12, 12), torch.float64, dict(rsdl_ratio=2.0, rho_period=2)),
    (3, (12, 16), torch.float64, dict(l1_weight="kernel", objective_on_y=True, record_stats=False, sync_interval=10)),
    (10, (10, 10), torch.float64, dict(sync_interval=10)),  # n = H = W
    (2, (12, 12), torch.float64, dict(auto_scaling=False, rho_scaling=2.0)),
    (24, (8, 8), torch.float64, dict(record_stats=False, sync_interval=1, rel_stop_tol=5e-2)),
]


def _solve(backend, n, size, dtype, kw, seed):
    D, S = _problem(n, size, dtype=dtype, seed=seed)
    kw = dict(kw)
    if isinstance(kw.get("l1_weight"), str):
        kw["l1_weight"] = _weights(n, D.shape[0], size)[kw["l1_weight"]].to(dtype)
    kw.setdefault("max_iter", 150)
    kw.setdefault("rel_stop_tol", 1e-2)
    return csc.ConvBPDN(D, 0.05, csc.CBPDNOptions(backend=backend, **kw)).solve(S)


def _rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    if a.size == 0:
        return 0.0
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)


def _check_equal(ref, got, dtype, what):
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    assert got.iterations.tolist() == ref.iterations.tolist(), what
    for name in ("codes", "x", "u", "rho"):
        assert _rel(getattr(got, name), getattr(ref, name)) <= tol, f"{what}: {name}"
    if ref.stats is not None:
        for a, b in zip(ref.stats, got.stats):
            for f in ("objective", "primal_residual", "dual_residual", "rho"):
                assert _rel(getattr(b, f), getattr(a, f)) <= tol, f"{what}: {f}"


def _learner(backend):
    from csc.learn.options import DICTLEARN_CBPDN_DEFAULTS, DictLearnOptions

    D0, S = _problem(3, (12, 12))
    opts = DictLearnOptions(max_iter=4, cbpdn=DICTLEARN_CBPDN_DEFAULTS.replace(backend=backend))
    return csc.DictLearn(D0, 0.05, opts).solve(S)


def test_a_session_of_solves_never_fails_and_equals_the_torch_loop():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # an eager fallback would warn
        for i, (n, size, dtype, kw) in enumerate(SESSION):
            what = f"solve {i}: n={n} {size} {dtype} {kw}"
            got = _solve("compiled", n, size, dtype, kw, seed=i)
            assert got.backend == "compiled", what
            _check_equal(_solve("torch", n, size, dtype, kw, seed=i), got, dtype, what)
        a, b = _learner("torch"), _learner("compiled")
    assert _rel(b.dictionary, a.dictionary) <= 1e-10
    assert _rel(b.stats.objective, a.stats.objective) <= 1e-10
    assert compiling.fallbacks() == {}


def test_recompile_limit_hit_falls_back_to_eager_with_a_warning(monkeypatch):
    """One variant per region: the second shape pattern cannot be compiled; csc warns once,
    names the reason, and the solve runs eagerly with the same arithmetic."""
    monkeypatch.setattr(compiling, "RECOMPILE_LIMIT", 1)
    compiling.reset()
    try:
        steady = dict(rel_stop_tol=0.0, max_iter=30, auto_rho=False)  # no image retires, ρ fixed: one variant
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            first = _solve("compiled", 2, (12, 12), torch.float64, steady, seed=0)
        assert first.backend == "compiled"
        _check_equal(_solve("torch", 2, (12, 12), torch.float64, steady, seed=0), first, torch.float64, "first")
        with pytest.warns(RuntimeWarning, match="eager mode") as caught:
            got = _solve("compiled", 1, (12, 12), torch.float64, dict(nonneg=True), seed=1)
        assert any("ecompile" in str(w.message) for w in caught), [str(w.message) for w in caught]
        _check_equal(_solve("torch", 1, (12, 12), torch.float64, dict(nonneg=True), seed=1), got, torch.float64,
                     "after the fallback")
        assert "eager" in got.backend
        assert compiling.fallbacks()
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # warned once, not at every call
            _solve("compiled", 1, (12, 12), torch.float64, dict(nonneg=True), seed=2)
    finally:
        monkeypatch.undo()
        compiling.reset()

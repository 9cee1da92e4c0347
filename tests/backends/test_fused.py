"""The fused CPU back end of csc.ConvBPDN (numba kernels, planned FFTs).

SPORCO parity of both back ends is in test_cbpdn_parity.py (every test runs on each).
Here: the two back ends against each other on batches whose images converge at
different iterations, SPORCO's final ρ and dual ρu for the images of such a batch whose last
iteration changed ρ (u is divided lazily on this back end), results independent of the
thread count and of the FFT library, and the errors of the ``backend`` option.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import csc

from ..backends_params import needs_numba
from ..conftest import needs_sporco, random_dictionary, sporco_cbpdn

pytestmark = needs_numba


def _problem(n=3, H=36, W=44, K=12, k=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    D = torch.from_numpy(random_dictionary(k, k, K, seed=seed + 1)).permute(2, 0, 1).contiguous()
    # smooth random images of different contrast: the images converge at different iterations
    S = torch.randn((n, H, W), generator=g, dtype=torch.float64)
    S = torch.nn.functional.avg_pool2d(S.unsqueeze(1), 3, 1, 1).squeeze(1)
    S = S * torch.linspace(0.5, 2.0, n, dtype=torch.float64).view(-1, 1, 1)
    return D, S


def _solve(D, S, backend, **opts):
    o = csc.CBPDNOptions(backend=backend, **opts)
    return csc.ConvBPDN(D, 0.08, o).solve(S)


CASES = {
    "defaults": dict(max_iter=300, rel_stop_tol=1e-3),
    "no-relax": dict(max_iter=120, relax=1.0, rel_stop_tol=1e-3),
    "constraints": dict(max_iter=120, nonneg=True, no_boundary_cross=True, rel_stop_tol=1e-3),
    "per-kernel-weight": dict(max_iter=120, l1_weight=np.linspace(0.5, 2.0, 12), rel_stop_tol=1e-3),
    "aux-var-obj": dict(max_iter=80, objective_on_y=True, rel_stop_tol=1e-3),
}


@pytest.mark.parametrize("name", list(CASES))
def test_numba_equals_torch_on_a_batch(name):
    D, S = _problem()
    a = _solve(D, S, "torch", **CASES[name])
    b = _solve(D, S, "numba", **CASES[name])
    assert torch.equal(a.iterations, b.iterations)
    assert len(set(a.iterations.tolist())) > 1, "the batch should retire images at different iterations"
    assert torch.equal(a.codes != 0, b.codes != 0)
    for f in ("codes", "x", "u"):
        ra, rb = getattr(a, f), getattr(b, f)
        assert float((ra - rb).norm() / ra.norm()) < 1e-11, f
    torch.testing.assert_close(a.rho, b.rho, rtol=1e-12, atol=0)
    for sa, sb in zip(a.stats, b.stats):
        np.testing.assert_allclose(sb.objective, sa.objective, rtol=1e-11)
        np.testing.assert_allclose(sb.primal_residual, sa.primal_residual, rtol=1e-9)


@needs_sporco
def test_batch_dual_matches_sporco_when_rho_changes_at_retirement():
    """A batch whose images retire at different iterations, two of them with a ρ change at
    their last iteration (one converging, one at max_iter): the back end divides u by the
    ρ factor lazily (at the next y-step), so a retiring image must get its pending division
    when it leaves the batch. Each image against SPORCO solving it alone: iteration count,
    statistics, ρ, codes and the final dual ρu."""
    from ..problems.test_cbpdn_parity import (assert_codes_match, assert_dual_match, assert_stats_match,
                                          rho_changed_at_last_iteration)

    D, S = _problem(n=4, H=20, W=24, K=6, k=5)
    max_iter, tol, ratio = 35, 2e-3, 1.1
    res = _solve(D, S, "numba", max_iter=max_iter, rel_stop_tol=tol, rsdl_ratio=ratio)
    its = res.iterations.tolist()
    changed = [rho_changed_at_last_iteration(st.rho, r) for st, r in zip(res.stats, res.rho)]
    assert any(c and it < max_iter for c, it in zip(changed, its)), (its, changed)  # retired on convergence
    assert any(c and it == max_iter for c, it in zip(changed, its)), (its, changed)  # retired at max_iter
    Dsp = csc.to_sporco_layout(D, "dictionary").numpy()
    for b in range(S.shape[0]):
        y_sp, st_sp, sp = sporco_cbpdn(Dsp, S[b].numpy(), 0.08,
                                       {"MaxMainIter": max_iter, "RelStopTol": tol, "AutoRho": {"RsdlRatio": ratio}})
        assert its[b] == len(st_sp.Iter)
        assert_stats_match(res.stats[b], st_sp, S[b].numpy())
        assert float(res.rho[b]) == pytest.approx(float(sp.rho), rel=1e-12)
        assert_codes_match(res.codes[b:b + 1], y_sp)
        assert_dual_match(res.rho[b:b + 1], res.u[b:b + 1], sp)


def test_spatial_weight_and_float32():
    D, S = _problem(n=2)
    w = torch.rand((2, 12, 36, 44), generator=torch.Generator().manual_seed(5), dtype=torch.float64) + 0.5
    a = _solve(D, S, "torch", max_iter=60, l1_weight=w)
    b = _solve(D, S, "numba", max_iter=60, l1_weight=w)
    assert float((a.codes - b.codes).norm() / a.codes.norm()) < 1e-11
    c = _solve(D.float(), S.float(), "numba", max_iter=60, l1_weight=w.float())
    assert c.codes.dtype == torch.float32
    assert float((c.codes.double() - a.codes).norm() / a.codes.norm()) < 1e-4


def test_independent_of_thread_count():
    D, S = _problem()
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = _solve(D, S, "numba", max_iter=60)
        torch.set_num_threads(2)
        b = _solve(D, S, "numba", max_iter=60)
    finally:
        torch.set_num_threads(old)
    assert torch.equal(a.codes, b.codes) and torch.equal(a.u, b.u)


def test_batch_member_equals_single_image():
    D, S = _problem()
    batch = _solve(D, S, "numba", max_iter=200, rel_stop_tol=1e-3)
    one = _solve(D, S[1], "numba", max_iter=200, rel_stop_tol=1e-3)
    assert int(one.iterations) == int(batch.iterations[1])
    assert float((one.codes - batch.codes[1]).norm() / one.codes.norm()) < 1e-12


def test_scipy_fft_matches_fftw(monkeypatch):
    pytest.importorskip("pyfftw")
    D, S = _problem(n=2)
    a = _solve(D, S, "numba", max_iter=60)
    monkeypatch.setenv("CSC_FFT", "scipy")
    b = _solve(D, S, "numba", max_iter=60)
    assert float((a.codes - b.codes).norm() / a.codes.norm()) < 1e-11


def test_backend_errors(monkeypatch):
    with pytest.raises(ValueError, match="backend"):
        csc.CBPDNOptions(backend="fast")
    D, S = _problem(n=1)
    monkeypatch.setenv("CSC_CBPDN_BACKEND", "gpu")
    with pytest.raises(ValueError, match="CSC_CBPDN_BACKEND"):
        _solve(D, S, "auto", max_iter=2)
    monkeypatch.setenv("CSC_FFT", "mkl")
    with pytest.raises(ValueError, match="CSC_FFT"):
        _solve(D, S, "numba", max_iter=2)

"""The spectral ρ policy (csc.core.rho_policy): its factor against the closed form on
quadratics, and solves with it against a tight default (residual balancing) solve."""

import math

import pytest
import torch

import csc
from csc.core.rho_policy import spectral_factor
from tests.backends_params import needs_numba

BACKENDS = ["torch", pytest.param("numba", marks=needs_numba)]


def test_bad_policy_is_refused_by_name():
    with pytest.raises(ValueError, match="rho_policy"):
        csc.CBPDNOptions(rho_policy="spectal")
    assert csc.CBPDNOptions().rho_policy == "residual"


def _changes(n=2, m=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, m, generator=g, dtype=torch.float64), torch.randn(n, m, generator=g, dtype=torch.float64)


def test_factor_on_quadratics_is_sqrt_ab():
    """H = (a/2)‖x‖², G = (b/2)‖y‖²: Δλ̂ = aΔx, Δλ = bΔy, so α̂ = a, β̂ = b and ρ = √(ab)."""
    dx, dy = _changes()
    a, b, rho = torch.tensor([4.0, 0.5], dtype=torch.float64), 9.0, torch.tensor([2.0, 3.0], dtype=torch.float64)
    f = spectral_factor(dx, a[:, None] * dx, dy, b * dy, rho, tau=1000.0)
    assert f.tolist() == pytest.approx([math.sqrt(4 * 9) / 2, math.sqrt(0.5 * 9) / 3], rel=1e-12)


def test_factor_falls_back_when_a_correlation_fails():
    """Δλ ⟂ Δy (β's correlation 0): ρ = α̂; both fail: ρ unchanged; the change capped at τ."""
    dx, dy = _changes(n=1)
    ortho = torch.stack([dy[0, 1], -dy[0, 0]]).view(1, 2)
    dy2 = dy[:, :2]
    rho = torch.tensor([2.0], dtype=torch.float64)
    assert spectral_factor(dx, 5 * dx, dy2, ortho, rho, 1000.0).item() == pytest.approx(2.5, rel=1e-12)
    assert spectral_factor(dx, -dx, dy2, ortho, rho, 1000.0).item() == 1.0
    assert spectral_factor(dx, 1e6 * dx, dy2, ortho, rho, 10.0).item() == pytest.approx(10.0)


def _problem(dtype):
    g = torch.Generator().manual_seed(3)
    D = torch.randn(6, 5, 5, generator=g, dtype=torch.float64)
    D = D / D.flatten(1).norm(dim=1)[:, None, None]
    S = torch.randn(3, 20, 20, generator=g, dtype=torch.float64)
    return D.to(dtype), S.to(dtype)


def _kkt_violation(D, S, codes, lmbda):
    """max over coefficients of the ℓ1 optimality violation of codes y, relative to λ: with
    g = Dᵀ(Dy − s) (circular, kernels at the origin, via the DFT), |g| ≤ λ where y = 0 and
    g = −λ sign(y) elsewhere. An independent check of the minimiser."""
    H, W = S.shape[-2:]
    Df = torch.fft.rfft2(D.double(), s=(H, W))
    y = codes.double()
    r = torch.fft.irfft2((Df * torch.fft.rfft2(y)).sum(1), s=(H, W)) - S.double()
    g = torch.fft.irfft2(Df.conj() * torch.fft.rfft2(r)[:, None], s=(H, W))
    viol = torch.where(y == 0, (g.abs() - lmbda).clamp(min=0), (g + lmbda * y.sign()).abs())
    return viol.flatten(1).max(1).values / lmbda


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_spectral_reaches_the_minimiser(backend, dtype):
    """The codes of a spectral solve satisfy the ℓ1 optimality conditions (as tightly as
    a tight default solve's do where that one converges: image 0 here; residual balancing
    stalls on the other two of these white-noise images) and agree with its codes there."""
    D, S = _problem(dtype)
    o = csc.CBPDNOptions(max_iter=1500, rel_stop_tol=1e-6, rho_policy="spectral", backend=backend)
    got = csc.ConvBPDN(D, 0.3, options=o).solve(S)
    assert got.codes.dtype == dtype
    kkt = _kkt_violation(D, S, got.codes, 0.3)
    assert float(kkt.max()) < (1e-3 if dtype == torch.float64 else 1e-2)
    assert len({float(s.rho[-1]) for s in got.stats}) == 3  # each image its own ρ
    ref = csc.ConvBPDN(D.double(), 0.3, options=csc.CBPDNOptions(max_iter=1500, rel_stop_tol=1e-6,
                                                                   backend="torch")).solve(S[:1].double())
    assert int(ref.iterations[0]) < 1500 and float(_kkt_violation(D, S[:1], ref.codes, 0.3)[0]) < 1e-4
    err = (got.codes[0].double() - ref.codes[0]).norm() / ref.codes[0].norm()
    assert float(err) < (1e-3 if dtype == torch.float64 else 1e-2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_spectral_batch_is_each_image_alone(backend):
    D, S = _problem(torch.float64)
    o = csc.CBPDNOptions(max_iter=300, rel_stop_tol=1e-5, rho_policy="spectral", backend=backend)
    batch = csc.ConvBPDN(D, 0.1, options=o).solve(S)
    for i in range(S.shape[0]):
        alone = csc.ConvBPDN(D, 0.1, options=o).solve(S[i:i + 1])
        assert int(alone.iterations[0]) == int(batch.iterations[i])
        assert torch.allclose(alone.codes[0], batch.codes[i], rtol=1e-9, atol=1e-12)
        assert alone.stats[0].rho == pytest.approx(batch.stats[i].rho, rel=1e-9)


@needs_numba
def test_spectral_back_ends_agree():
    D, S = _problem(torch.float64)
    runs = [csc.ConvBPDN(D, 0.1, options=csc.CBPDNOptions(max_iter=60, rel_stop_tol=0, rho_policy="spectral",
                                                          backend=b)).solve(S) for b in ("torch", "numba")]
    for a, b in zip(runs[0].stats, runs[1].stats):
        assert a.rho == pytest.approx(b.rho, rel=1e-8)
    assert len(set(runs[0].stats[0].rho)) > 1  # ρ did change

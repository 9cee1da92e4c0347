"""The y-step's prox objects (csc.core.prox) against SPORCO's operators and closed forms."""

import numpy as np
import pytest
import torch

from csc.core.prox import (ImpulseMask, L1BallProjection, L2BallData, QuadraticData, SoftThreshold,
                           SparseGroupThreshold, project_l1_ball)

sporco_prox = pytest.importorskip("sporco.prox")


def _maps(n=3, K=4, H=6, W=5, seed=0, dtype=torch.float64):
    return torch.randn(n, K, H, W, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _apply(prox, v, thr):
    y, u = torch.empty_like(v), torch.empty_like(v)
    if prox.apply_(v, thr, y, u):
        u = v - y
    return y, u


def test_soft_threshold_is_sporcos_prox_l1_with_its_constraints():
    v, w = _maps(), torch.rand(1, 4, 1, 1, dtype=torch.float64)
    thr = torch.tensor([0.1, 0.5, 2.0], dtype=torch.float64)
    y, u = _apply(SoftThreshold(0.3, w, nonneg=True, kernel_size=(3, 2)), v, thr)
    ref = np.stack([sporco_prox.prox_l1(v[i].numpy(), float(thr[i]) * w[0].numpy()) for i in range(3)])
    ref = np.maximum(ref, 0)
    ref[..., 6 - 3 + 1:, :] = 0
    ref[..., :, 5 - 2 + 1:] = 0
    np.testing.assert_allclose(y.numpy(), ref, rtol=0, atol=1e-15)
    np.testing.assert_allclose((y + u).numpy(), v.numpy(), rtol=0, atol=1e-15)


def test_sparse_group_threshold_is_sporcos_prox_sl1l2():
    """Joint sparsity over C = 2 channel groups: SPORCO's prox_sl1l2 (ℓ1 then group ℓ2)."""
    v = _maps(n=2, K=6)  # C·K = 2·3 maps, channel-major
    prox = SparseGroupThreshold(0.2, 1.0, mu=0.3, l21_weight=1.0, channels=2)
    thr = prox.thresholds(torch.tensor([1.5, 4.0], dtype=torch.float64))
    y, _ = _apply(prox, v, thr)
    for i in range(2):
        g = v[i].reshape(2, 3, 6, 5).numpy()
        ref = sporco_prox.prox_sl1l2(g, float(thr[i, 0]), float(thr[i, 1]), axis=0)
        np.testing.assert_allclose(y[i].reshape(2, 3, 6, 5).numpy(), ref, rtol=0, atol=1e-15)


@pytest.mark.parametrize("gamma", [0.5, 3.0, 1e3])
def test_l1_ball_projection_is_sporcos_proj_l1(gamma):
    """Per image over all its maps (SPORCO's axes N, C, M), inside and outside the ball."""
    v = _maps(n=4)
    y = project_l1_ball(v, torch.full((4,), gamma, dtype=torch.float64))
    for i in range(4):
        ref = sporco_prox.proj_l1(v[i].numpy()[..., None], gamma, axis=(0, 1, 2))[..., 0]
        np.testing.assert_allclose(y[i].numpy(), ref, rtol=0, atol=1e-13)
        assert y[i].abs().sum() <= gamma * (1 + 1e-12)


def test_l1_ball_projection_is_the_closest_point_of_the_ball():
    """Against a brute-force check: the projection's ℓ1 norm is γ and any other point of the
    ball on random directions is no closer (the variational inequality ⟨v − p, z − p⟩ ≤ 0)."""
    v = _maps(n=1, K=2, H=3, W=3, seed=3)
    p = project_l1_ball(v, torch.tensor([1.0], dtype=torch.float64))
    assert float(p.abs().sum()) == pytest.approx(1.0, abs=1e-12)
    g = torch.Generator().manual_seed(4)
    for _ in range(200):
        z = torch.randn(v.shape, generator=g, dtype=torch.float64)
        z = z / z.abs().sum() * torch.rand((), generator=g, dtype=torch.float64)
        assert float(((v - p) * (z - p)).sum()) <= 1e-12


def test_l1_ball_prox_is_independent_of_rho_and_reports_the_constraint():
    prox = L1BallProjection(2.0)
    thr = prox.thresholds(torch.tensor([1.0, 100.0], dtype=torch.float64))
    assert thr.tolist() == [2.0, 2.0]
    z = _maps(n=2)
    (cns,) = prox.values(z)
    inside = project_l1_ball(z, thr)
    np.testing.assert_allclose(cns.numpy(), (inside - z).flatten(1).norm(dim=1).numpy(), rtol=1e-15)
    assert prox.terms == (("constraint", 0.0),)


def test_impulse_mask_frees_the_last_map_where_the_mask_is_zero():
    v = _maps(n=2, K=3)
    free = torch.zeros(1, 1, 6, 5, dtype=torch.bool)
    free[..., :3, :] = True
    w = torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64).reshape(1, 3, 1, 1)
    prox = ImpulseMask(SoftThreshold(0.5, w, nonneg=True), free)
    y, _ = _apply(prox, v, torch.tensor([0.2, 0.4], dtype=torch.float64))
    torch.testing.assert_close(y[:, -1], torch.where(free[:, 0], v[:, -1], torch.zeros_like(v[:, -1])), rtol=0, atol=0)
    ref = torch.clamp(torch.sign(v[:, :2]) * torch.clamp(v[:, :2].abs() - torch.tensor([0.2, 0.4], dtype=torch.float64).reshape(2, 1, 1, 1), min=0), min=0)
    torch.testing.assert_close(y[:, :2], ref, rtol=0, atol=1e-15)


def test_data_terms_closed_forms():
    v = _maps(n=2, K=1)
    rho = torch.tensor([0.5, 2.0], dtype=torch.float64).reshape(-1, 1, 1, 1)
    W = torch.rand(1, 1, 6, 5, dtype=torch.float64)
    torch.testing.assert_close(QuadraticData(W).step(v, rho), rho * v / (W * W + rho), rtol=0, atol=0)
    ball = L2BallData(epsilon=1.0)
    y0 = ball.step(v, rho)
    norms = y0.flatten(1).norm(dim=1)
    assert torch.allclose(norms, torch.minimum(v.flatten(1).norm(dim=1), torch.ones(2, dtype=torch.float64)))


def test_keep_trims_per_image_weights():
    w = torch.rand(3, 4, 1, 1, dtype=torch.float64)
    prox = SoftThreshold(0.1, w).keep(torch.tensor([True, False, True]))
    assert prox.weight.shape == (2, 4, 1, 1)
    shared = SoftThreshold(0.1, w[:1]).keep(torch.tensor([True, False, True]))
    assert shared.weight.shape == (1, 4, 1, 1)

"""The x-step object: its solve satisfies the linear system (checked by a dense float64
solve), and its accuracy probe tells a solution from a wrong one."""

import numpy as np
import torch

from csc.core import ops
from csc.core.xstep import SingleChannelXStep


def _problem(seed=0, n=2, K=3, H=8, W=6):
    g = torch.Generator().manual_seed(seed)
    D = torch.randn(K, 3, 3, generator=g, dtype=torch.float64)
    S = torch.randn(n, H, W, generator=g, dtype=torch.float64)
    V = torch.randn(n, K, H, W, generator=g, dtype=torch.float64)
    rho = torch.tensor([0.7, 3.0], dtype=torch.float64)[:n].view(-1, 1, 1, 1)
    return D, S, V, rho


def test_solve_matches_a_dense_solve_per_frequency():
    D, S, V, rho = _problem()
    H, W = S.shape[-2:]
    xs = SingleChannelXStep.from_kernels(D, (H, W))
    Sf, vf = torch.fft.rfft2(S).unsqueeze(1), torch.fft.rfft2(V)
    xf = xs.solve_(vf.clone(), Sf, rho)
    Df = ops.kernel_dft(D, (H, W)).numpy()
    for i in range(S.shape[0]):
        for h, w in [(0, 0), (3, 2), (7, 3)]:
            d = Df[:, h, w][None, :]                      # 1×K row
            A = d.conj().T @ d + float(rho[i]) * np.eye(d.shape[1])
            b = d.conj().T[:, 0] * Sf[i, 0, h, w].item() + float(rho[i]) * vf[i, :, h, w].numpy()
            np.testing.assert_allclose(xf[i, :, h, w].numpy(), np.linalg.solve(A, b), rtol=1e-12, atol=1e-12)


def test_accuracy_probe():
    D, S, V, rho = _problem(1)
    H, W = S.shape[-2:]
    xs = SingleChannelXStep.from_kernels(D, (H, W))
    Sf, vf = torch.fft.rfft2(S).unsqueeze(1), torch.fft.rfft2(V)
    xf = xs.solve_(vf.clone(), Sf, rho)
    good = xs.accuracy(xf, vf, Sf, rho)
    bad = xs.accuracy(vf, vf, Sf, rho)                    # v itself is not the solution
    assert good.shape == (S.shape[0],)
    assert float(good.max()) < 1e-13
    assert float(bad.min()) > 1e-3


def test_float32_solve_close_to_float64():
    D, S, V, rho = _problem(2)
    H, W = S.shape[-2:]
    xs64 = SingleChannelXStep.from_kernels(D, (H, W))
    xs32 = SingleChannelXStep.from_kernels(D.float(), (H, W))
    Sf, vf = torch.fft.rfft2(S).unsqueeze(1), torch.fft.rfft2(V)
    a = xs64.solve_(vf.clone(), Sf, rho)
    b = xs32.solve_(vf.to(torch.complex64), Sf.to(torch.complex64), rho.float())
    assert float((a - b.to(a.dtype)).abs().max() / a.abs().max()) < 1e-5
    assert float(xs32.accuracy(b, vf.to(torch.complex64), Sf.to(torch.complex64), rho.float()).max()) < 1e-5


def _dense_check(xs, Df, P, mu, xf, vf, Sf, rho):
    """xf solves (D̂ᴴD̂ + diag(ρ + μP))x̂ = D̂ᴴŜ + ρv̂ at a few frequencies (dense solve)."""
    K = Df.shape[0]
    for i in range(Sf.shape[0]):
        for h, w in [(0, 0), (3, 2), (7, 3)]:
            d = Df[:, h, w][None, :]
            pk = np.broadcast_to(P[:, h, w], (K,))
            A = d.conj().T @ d + np.diag(float(rho[i]) + mu * pk)
            b = d.conj().T[:, 0] * Sf[i, 0, h, w].item() + float(rho[i]) * vf[i, :, h, w].numpy()
            np.testing.assert_allclose(xf[i, :, h, w].numpy(), np.linalg.solve(A, b), rtol=1e-12, atol=1e-12)


def test_diagonal_solve_matches_a_dense_solve():
    from csc.core.xstep import DiagonalXStep, gradient_gram

    D, S, V, rho = _problem(3)
    H, W = S.shape[-2:]
    Df = ops.kernel_dft(D, (H, W))
    Sf, vf = torch.fft.rfft2(S).unsqueeze(1), torch.fft.rfft2(V)
    per_kernel = torch.tensor([0.0, 1.0, 2.5], dtype=torch.float64).view(-1, 1, 1) * gradient_gram((H, W))
    for P, mu in [(torch.ones(1, H, W // 2 + 1, dtype=torch.float64), 0.7), (per_kernel, 1.3)]:
        xs = DiagonalXStep(Df, P, mu)
        xf = xs.solve_(vf.clone(), Sf, rho)
        _dense_check(xs, Df.numpy(), P.numpy(), mu, xf, vf, Sf, rho)
        assert float(xs.accuracy(xf, vf, Sf, rho).max()) < 1e-13
        assert float(xs.accuracy(vf, vf, Sf, rho).min()) > 1e-3
    # μ = 0: the plain single-channel system
    xs0 = DiagonalXStep(Df, per_kernel, 0.0)
    plain = SingleChannelXStep(Df).solve_(vf.clone(), Sf, rho)
    assert float((xs0.solve_(vf.clone(), Sf, rho) - plain).abs().max()) < 1e-12


def test_gradient_gram_and_penalty():
    """Σ_i|Ĝ_i|² = 4 − 2cos ω_h − 2cos ω_w, and the penalty is ½Σ_i‖G_i x‖² (circular
    differences computed in the spatial domain)."""
    from csc.core.xstep import DiagonalXStep, gradient_gram

    H, W = 8, 7
    g = gradient_gram((H, W)).numpy()
    wh = 2 * np.pi * np.arange(H)[:, None] / H
    ww = 2 * np.pi * np.arange(W // 2 + 1)[None, :] / W
    np.testing.assert_allclose(g, 4 - 2 * np.cos(wh) - 2 * np.cos(ww), atol=1e-13)
    x = torch.randn(2, 3, H, W, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    w = torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64)
    xs = DiagonalXStep(ops.kernel_dft(torch.ones(3, 1, 1, dtype=torch.float64), (H, W)),
                       w.view(-1, 1, 1) * gradient_gram((H, W)), 0.5)
    grad = (x - x.roll(1, -2)).square().sum((-2, -1)) + (x - x.roll(1, -1)).square().sum((-2, -1))
    expect = 0.5 * (w * grad).sum(1)
    np.testing.assert_allclose(xs.penalty(torch.fft.rfft2(x), W).numpy(), expect.numpy(), rtol=1e-12)


def test_two_block_solve_matches_a_dense_solve():
    """over_rho: (D̂ᴴD̂ + diag(1 + (μ/ρ)P))x̂ = D̂ᴴŝ + v̂, the two-block split's system."""
    from csc.core.xstep import DiagonalXStep, gradient_gram

    D, S, V, rho = _problem(5)
    H, W = S.shape[-2:]
    Df = ops.kernel_dft(D, (H, W))
    Sf, vf = torch.fft.rfft2(S).unsqueeze(1), torch.fft.rfft2(V)
    P = torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64).view(-1, 1, 1) * gradient_gram((H, W))
    mu = 1.7
    xs = DiagonalXStep(Df, P, mu, over_rho=True)
    xf = xs.solve_(vf.clone(), Sf, rho)
    d, p = Df.numpy(), P.numpy()
    for i in range(S.shape[0]):
        for h, w in [(0, 0), (3, 2), (7, 3)]:
            row = d[:, h, w][None, :]
            A = row.conj().T @ row + np.diag(1.0 + (mu / float(rho[i])) * p[:, h, w])
            b = row.conj().T[:, 0] * Sf[i, 0, h, w].item() + vf[i, :, h, w].numpy()
            np.testing.assert_allclose(xf[i, :, h, w].numpy(), np.linalg.solve(A, b), rtol=1e-12, atol=1e-12)
    assert float(xs.accuracy(xf, vf, Sf, rho).max()) < 1e-13

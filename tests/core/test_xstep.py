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

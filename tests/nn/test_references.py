"""Implicit gradients against independent references, on a tiny problem (8×8 images, K = 2
kernels 3×3, float64, solved to 1e-13):

- dense linear algebra: the synthesis A as a (64 × 128) matrix built from the kernels by
  circular shifts (differentiable in them), the solution on its support written in closed
  form x_S = (A_SᵀW²A_S + μQ_SS)⁻¹(A_SᵀW²s − λ w_S ⊙ sign x_S) (Q = I for the elastic net,
  Σ_i G_iᵀG_i per kernel from dense difference matrices for gradient regularisation) with
  torch.linalg.solve, and its
  gradients by autograd through that formula: no FFT, no CG, no adjoint;
- autograd through 6000 unrolled FISTA iterations written with csc.core.ops;
- torch.autograd.gradcheck.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import csc
from csc.core import ops
from csc.nn import conv_sparse_code

from .helpers import images, tight, unit_dictionary

K, k, H = 2, 3, 8
LMBDA = 0.2


def dense_synthesis(D: torch.Tensor, shape) -> torch.Tensor:
    """A (H·W × K·H·W) with A x = Σ_k d_k * x_k (circular, kernels at the top-left origin):
    column (k, p) is d_k placed at p, i.e. Σ_{ij} d_k[i, j] e_{p + (i, j)}."""
    Hh, Ww = shape
    eye = torch.eye(Hh * Ww, dtype=D.dtype).reshape(Hh * Ww, Hh, Ww)
    shifts = torch.stack([torch.roll(eye, (i, j), dims=(1, 2)).reshape(Hh * Ww, Hh * Ww).T
                          for i in range(D.shape[1]) for j in range(D.shape[2])])  # (taps, n, m)
    A = torch.einsum("kt,tnm->nkm", D.reshape(D.shape[0], -1), shifts)
    return A.reshape(Hh * Ww, D.shape[0] * Hh * Ww)


def dense_gradient_penalty(weights, shape) -> torch.Tensor:
    """Q (K·H·W square) with xᵀQx = Σ_k g_k Σ_i ‖G_i x_k‖², G_i = I − (circular shift by one
    along axis i) as dense matrices: ConvBPDNGradReg's penalty without an FFT."""
    Hh, Ww = shape
    eye = torch.eye(Hh * Ww, dtype=torch.float64).reshape(Hh * Ww, Hh, Ww)
    blocks = []
    for axis in (1, 2):
        G = (eye - torch.roll(eye, 1, dims=axis)).reshape(Hh * Ww, Hh * Ww)
        blocks.append(G.T @ G)
    GtG = sum(blocks)
    return torch.block_diag(*[float(g) * GtG for g in weights])


def dense_solution(s, D, lmbda, codes, w, mu=None, mask=None, Q=None) -> torch.Tensor:
    """x_S in closed form on the support and signs of ``codes`` (one image), scattered into
    (K, H, W); differentiable in s, D, λ, μ and the mask. ``Q``: the quadratic penalty's matrix
    (the identity when None: the elastic net)."""
    A = dense_synthesis(D, s.shape)
    x = codes.reshape(-1)
    S = (x != 0).nonzero().flatten()
    AS = A[:, S]
    W2 = torch.ones_like(s.reshape(-1)) if mask is None else mask.reshape(-1) ** 2
    M = AS.T @ (W2[:, None] * AS)
    if mu is not None:
        M = M + mu * (torch.eye(len(S), dtype=s.dtype) if Q is None else Q[S][:, S])
    rhs = AS.T @ (W2 * s.reshape(-1)) - lmbda * w.reshape(-1)[S] * torch.sign(x[S])
    xs = torch.linalg.solve(M, rhs)
    return torch.zeros_like(x).index_put((S,), xs).reshape(codes.shape)


def _problem(seed: int = 0):
    s = images(1, H, seed=seed + 1)[0]
    D = unit_dictionary(K, k, seed=seed)
    return s, D


CASES = {
    "plain": dict(),
    "nonneg": dict(options=dict(nonneg=True)),
    "per-kernel-weights": dict(options=dict(l1_weight=np.array([0.6, 1.4]))),
    "per-pixel-weights": dict(options=dict(l1_weight=0.5 + torch.rand(
        K, H, H, generator=torch.Generator().manual_seed(4), dtype=torch.float64))),
    "elastic-net": dict(mu=0.3),
    "gradient-regularisation": dict(mu=0.3, grad_weight=np.array([1.0, 0.25])),
    "mask": dict(mask=True),
}


def _mask():
    g = torch.Generator().manual_seed(6)
    m = 0.5 + torch.rand(H, H, generator=g, dtype=torch.float64)
    m[torch.rand(H, H, generator=g) < 0.2] = 0.0
    return m


@pytest.mark.parametrize("case", sorted(CASES))
def test_dense_reference(case):
    spec = CASES[case]
    s, D = _problem()
    masked = spec.get("mask", False)
    gw = spec.get("grad_weight")
    cls = csc.MaskDcplOptions if masked else csc.CBPDNOptions if gw is None else csc.GradRegOptions
    opts = tight(cls, **spec.get("options", {}), **({} if gw is None else dict(grad_weight=gw)))
    leaves = dict(s=s.clone().requires_grad_(), D=D.clone().requires_grad_(),
                  lam=torch.tensor(LMBDA, dtype=torch.float64, requires_grad=True))
    extra = {}
    if "mu" in spec:
        leaves["mu"] = extra["mu"] = torch.tensor(spec["mu"], dtype=torch.float64, requires_grad=True)
    if masked:
        leaves["mask"] = extra["mask"] = _mask().requires_grad_()
    codes = conv_sparse_code(leaves["s"], leaves["D"], leaves["lam"], opts, **extra)[0]
    assert 0 < int((codes != 0).sum()) < K * H * H, "the support must be a proper, non-empty subset"
    G = torch.randn(codes.shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    ours = torch.autograd.grad((codes * G).sum(), list(leaves.values()))

    ref_leaves = {n: t.detach().clone().requires_grad_() for n, t in leaves.items()}
    w = torch.as_tensor(opts.l1_weight, dtype=torch.float64)
    w = (w.reshape(-1, 1, 1) if w.ndim == 1 else w).expand(K, H, H)
    x = dense_solution(ref_leaves["s"], ref_leaves["D"], ref_leaves["lam"], codes.detach(), w,
                       mu=ref_leaves.get("mu"), mask=ref_leaves.get("mask"),
                       Q=None if gw is None else dense_gradient_penalty(gw, (H, H)))
    x_ = x.detach()
    assert torch.allclose(x_, codes.detach(), rtol=0, atol=1e-10 * float(x_.abs().max()))  # the same solution
    ref = torch.autograd.grad((x * G).sum(), list(ref_leaves.values()))
    for name, a, b in zip(leaves, ours, ref):
        err = float((a - b).norm() / b.norm())
        assert err < 1e-8, f"{case}, {name}: relative error {err:.2e} against dense linear algebra"


def unrolled_fista(s, D, lmbda, iters: int, nonneg: bool = False) -> torch.Tensor:
    """FISTA for CBPDN with step 1/L (L = max over frequencies of Σ_k|D̂_k|²), written with
    csc.core.ops and differentiated by autograd through every iteration."""
    shape = s.shape[-2:]
    Df = ops.kernel_dft(D, shape)
    L = float(ops.gram_diagonal(Df.detach()).max()) * 1.01
    Sf = torch.fft.rfft2(s)
    x = y = torch.zeros((s.shape[0], D.shape[0]) + tuple(shape), dtype=s.dtype)
    t = 1.0
    for _ in range(iters):
        Rf = ops.synthesis_dft(Df, torch.fft.rfft2(y)) - Sf
        grad = torch.fft.irfft2(ops.adjoint_dft(Df, Rf), s=shape)
        v = y - grad / L
        x_new = torch.relu(v - lmbda / L) if nonneg else ops.soft_threshold(v, lmbda / L)
        t_new = (1 + (1 + 4 * t * t) ** 0.5) / 2
        y = x_new + ((t - 1) / t_new) * (x_new - x)
        x, t = x_new, t_new
    return x


@pytest.mark.parametrize("nonneg", [False, True])
def test_unrolled_fista(nonneg):
    """The implicit gradient equals autograd through a long unrolled FISTA (6000 iterations:
    the unrolled codes equal csc's to 1e-12, and their derivative converges with them)."""
    s, D = _problem()
    s = s[None]
    leaves = [s.clone().requires_grad_(), D.clone().requires_grad_(),
              torch.tensor(LMBDA, dtype=torch.float64, requires_grad=True)]
    codes = conv_sparse_code(*leaves, tight(nonneg=nonneg))
    G = torch.randn(codes.shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    ours = torch.autograd.grad((codes * G).sum(), leaves)
    ref_leaves = [t.detach().clone().requires_grad_() for t in leaves]
    x = unrolled_fista(*ref_leaves, iters=6000, nonneg=nonneg)
    x_, c_ = x.detach(), codes.detach()
    assert torch.equal(x_ != 0, c_ != 0)
    assert float((x_ - c_).abs().max()) < 1e-12 * float(c_.abs().max())
    ref = torch.autograd.grad((x * G).sum(), ref_leaves)
    for name, a, b in zip(("images", "dictionary", "lmbda"), ours, ref):
        err = float((a - b).norm() / b.norm())
        assert err < 1e-6, f"{name}: relative error {err:.2e} against unrolled FISTA"


def test_gradcheck():
    """torch.autograd.gradcheck (float64, eps 1e-6, its default tolerances; fast mode: one
    random projection of the Jacobian per input, two solves each)."""
    s, D = _problem()
    inputs = (s[None].clone().requires_grad_(), D.clone().requires_grad_(),
              torch.tensor(LMBDA, dtype=torch.float64, requires_grad=True))
    opts = tight()
    assert torch.autograd.gradcheck(lambda *a: conv_sparse_code(*a, opts), inputs, fast_mode=True)

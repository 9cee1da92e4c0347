"""Implicit gradients against central finite differences of the tightly solved solution map.

Each case: images 16×16, K = 4 kernels 5×5 (unit norm), float64, solved to a relative
tolerance of 1e-13; the directional derivative of ⟨G, x*⟩ along a random direction in the
images, the dictionary, λ (and μ, the mask where the problem has them) by autograd through
:func:`csc.nn.functional.conv_sparse_code` against (f(θ + hd) − f(θ − hd))/2h, h = 1e-5, at a
point where the support does not change within ±h (asserted). On a stable support the
solution map is smooth, so the central difference's truncation error is O(h²) ≈ 1e-10 and
its rounding error ≈ (solve tolerance)/h ≈ 1e-8: both well below the 1e-6 required.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import csc

from .helpers import code, directional_check, images, tight, unit_dictionary

RTOL = 1e-6
K, H = 4, 16


def _inputs(lmbda: float = 0.3, B: int = 2, **more):
    return dict(images=images(B, H), dictionary=unit_dictionary(K), lmbda=torch.tensor(lmbda, dtype=torch.float64),
                **more)


def _assert_close(res: dict):
    for name, (an, fd, err) in res.items():
        assert err < RTOL, f"{name}: autograd {an!r} vs finite difference {fd!r} (relative error {err:.2e})"


CASES = {  # the fused CPU back end where it is not the point (it is the fastest at this size)
    "plain-torch": lambda: tight(backend="torch"),
    "plain-numba": lambda: tight(backend="numba"),
    "per-kernel-weights": lambda: tight(l1_weight=np.array([0.5, 1.0, 1.5, 2.0])),
    "per-pixel-weights": lambda: tight(
        l1_weight=0.5 + torch.rand(K, H, H, generator=torch.Generator().manual_seed(3), dtype=torch.float64)),
    "nonneg": lambda: tight(nonneg=True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_cbpdn_options(case):
    _assert_close(directional_check(_inputs(), code(CASES[case]())))


def test_elastic_net_with_mu_gradient():
    inputs = _inputs(mu=torch.tensor(0.2, dtype=torch.float64))
    _assert_close(directional_check(inputs, code(tight())))


def test_mask_decoupled_with_mask_gradient():
    g = torch.Generator().manual_seed(5)
    mask = 0.5 + torch.rand(2, H, H, generator=g, dtype=torch.float64)
    mask[torch.rand(2, H, H, generator=g) < 0.2] = 0.0  # 20% missing pixels
    res = directional_check(_inputs(mask=mask), code(tight(csc.MaskDcplOptions)), keep_zeros=("mask",))
    _assert_close(res)


def test_fista_solves_the_same_problem():
    """FISTAOptions run csc's FISTA forward (the same problem): its gradients are ADMM's, which
    the cases above check against finite differences."""
    opts = csc.FISTAOptions(max_iter=20000, rel_stop_tol=1e-26, L=8.0, record_stats=False)
    inputs = _inputs()
    grads = []
    for o in (opts, tight()):
        leaves = [t.clone().requires_grad_() for t in inputs.values()]
        codes = code(o)(*leaves)
        G = torch.randn(codes.shape, generator=torch.Generator().manual_seed(2), dtype=codes.dtype)
        grads.append(torch.autograd.grad((codes * G).sum(), leaves))
    for name, a, b in zip(inputs, *grads):
        assert float((a - b).norm() / b.norm()) < RTOL, name


def test_batch_with_different_supports():
    """Three images with their own supports: a full one, a sparse one (scaled down) and an
    empty one (all zero below λ): every image its own CG."""
    S = images(3, H)
    S[1] *= 0.25
    S[2] *= 0.01
    inputs = dict(images=S, dictionary=unit_dictionary(K), lmbda=torch.tensor(0.3, dtype=torch.float64))
    opts = tight()
    codes = csc.ConvBPDN(inputs["dictionary"], 0.3, opts).solve(S).codes
    nnz = (codes != 0).flatten(1).sum(1).tolist()
    assert nnz[0] > nnz[1] > nnz[2] == 0, nnz
    _assert_close(directional_check(inputs, code(opts)))


def test_multichannel_dictionary():
    """A (K, C, kh, kw) dictionary codes (B, C, H, W) images into one set of K maps each: A sums
    over the channels, Aᵀ spreads back (csc.nn.implicit, module docstring)."""
    g = torch.Generator().manual_seed(11)
    D = torch.randn(K, 3, 5, 5, generator=g, dtype=torch.float64)
    D = D / D.flatten(1).norm(dim=1).reshape(-1, 1, 1, 1)
    inputs = dict(images=torch.randn(2, 3, H, H, generator=g, dtype=torch.float64), dictionary=D,
                  lmbda=torch.tensor(0.3, dtype=torch.float64))
    _assert_close(directional_check(inputs, code(tight())))


def test_gradient_regularisation_with_mu_gradient():
    """ConvBPDNGradReg: (μ/2) Σ_k g_k Σ_i ‖G_i x_k‖², per-kernel weights g_k (one of them 0)."""
    opts = tight(csc.GradRegOptions, grad_weight=np.array([0.0, 1.0, 0.5, 2.0]))
    _assert_close(directional_check(_inputs(mu=torch.tensor(0.2, dtype=torch.float64)), code(opts)))


def test_joint_sparsity_with_mu_gradient():
    """ConvBPDNJoint: μ Σ w₂₁‖x_{·,k,i}‖₂ over the C = 3 channels of each image couples the
    channels' adjoints (one CG per image, on its C·K maps); per-kernel w₂₁."""
    g = torch.Generator().manual_seed(0)
    inputs = dict(images=torch.randn(2, 3, H, H, generator=g, dtype=torch.float64), dictionary=unit_dictionary(K),
                  lmbda=torch.tensor(0.3, dtype=torch.float64), mu=torch.tensor(0.2, dtype=torch.float64))
    opts = tight(csc.CBPDNJointOptions, l21_weight=np.array([1.0, 0.5, 2.0, 1.0]))
    _assert_close(directional_check(inputs, code(opts)))


@pytest.mark.parametrize("shape", ["per-kernel", "per-pixel"])
def test_l1_weight_gradient(shape):
    """∂L/∂w = −λ v ⊙ sign x, summed to the weights' shape, for weights given as a tensor."""
    g = torch.Generator().manual_seed(3)
    w = (torch.tensor([0.5, 1.0, 1.5, 2.0], dtype=torch.float64) if shape == "per-kernel"
         else 0.5 + torch.rand(K, H, H, generator=g, dtype=torch.float64))
    _assert_close(directional_check(_inputs(l1_weight=w), code(tight())))

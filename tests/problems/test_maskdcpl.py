"""csc.ConvBPDNMaskDcpl: parity with SPORCO 0.2.2's admm.cbpdn.ConvBPDNMaskDcpl (float64, each
CPU back end), batches of different masks, the boundary option, float32, bad input.

As test_variants_parity: every csc image is compared with a single-image SPORCO solve given
the same options and mask: statistics at every iteration to 1e-8 relative, y to 1e-10
relative with the same support. 32×32 images, 6 kernels of 5×5.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import csc

from ..backends_params import CPU_BACKENDS, skip_unless_numba
from ..conftest import central_crop, highpass, needs_sporco, random_dictionary, sporco_image
from .test_variants_parity import (  # noqa: F401  (backend, image: the fixtures)
    K, L1L1_VARIANTS, assert_codes_match, assert_stats_match, backend, image)


def random_mask(shape, seed=1, frac=0.3) -> np.ndarray:
    return (np.random.RandomState(seed).rand(*shape) > frac).astype(np.float64)


def sporco_solve(D, s, lmbda, opt, W):
    from sporco.admm import cbpdn as sp

    solver = sp.ConvBPDNMaskDcpl(D, s, lmbda, W=W, opt=sp.ConvBPDNMaskDcpl.Options({"Verbose": False, **opt}))
    return solver.solve(), solver.getitstat(), solver


def csc_solver(D, lmbda, opt, backend):
    Dc = torch.from_numpy(csc.from_sporco_layout(D, "dictionary").copy())
    return csc.ConvBPDNMaskDcpl(Dc, lmbda, csc.MaskDcplOptions.from_sporco(opt, backend=backend))


def check(D, s, lmbda, opt, backend, W, csc_mask="same", boundary="periodic"):
    """SPORCO on (s, W) against csc on (s, ``csc_mask``, by default W) with ``boundary``
    (for "mask", csc gets s without its padding)."""
    y_sp, its, sp = sporco_solve(D, s, lmbda, opt, W)
    solver = csc_solver(D, lmbda, opt, backend)
    img = s if boundary == "periodic" else s[:s.shape[0] - D.shape[0] + 1, :s.shape[1] - D.shape[1] + 1]
    res = solver.solve(torch.from_numpy(img), mask=W if isinstance(csc_mask, str) else csc_mask, boundary=boundary)
    assert_stats_match(solver, res.stats[0], its, s)
    assert_codes_match(res.codes, y_sp)
    assert float(res.rho) == pytest.approx(float(sp.rho), rel=1e-10)
    return res, its


BASE = {"MaxMainIter": 40, "RelStopTol": 0.0}

#: ConvL1L1Grd's option sets (both are SPORCO ConvTwoBlockCnstrnt problems), less GradWeight
VARIANTS = {name: opt for name, opt in L1L1_VARIANTS.items() if "GradWeight" not in opt}


@needs_sporco
@pytest.mark.parametrize("name", list(VARIANTS))
def test_random_mask_parity(image, backend, name):
    """A random 0/1 mask (30% missing), SPORCO's options one by one."""
    D, s = image
    res, _ = check(D, s, 0.05, {**BASE, **VARIANTS[name]}, backend, random_mask(s.shape))
    if name.startswith("auto-rho"):
        assert len(set(res.stats[0].rho.tolist())) > 1, "ρ should change"


@needs_sporco
def test_reconstruct_is_sporcos(image, backend):
    """``result.reconstruct()`` is SPORCO's ``ConvBPDNMaskDcpl.reconstruct()`` (from x) to 1e-10
    before convergence; ``source="codes"`` is the synthesis of y₁ (which differs there)."""
    D, s = image
    res, _ = check(D, s, 0.05, {**BASE, "MaxMainIter": 10}, backend, random_mask(s.shape))
    _, _, sp = sporco_solve(D, s, 0.05, {**BASE, "MaxMainIter": 10}, random_mask(s.shape))
    ref = sp.reconstruct().squeeze()
    got, from_y = res.reconstruct()[0].numpy(), res.reconstruct(source="codes")[0].numpy()
    assert np.abs(got - ref).max() <= 1e-10 * np.abs(ref).max()
    assert np.abs(from_y - ref).max() > 1e-6 * np.abs(ref).max()
    np.testing.assert_array_equal(from_y, res.reconstruct(res.codes)[0].numpy())
    with pytest.raises(ValueError, match="source"):
        res.reconstruct(source="y")


@needs_sporco
def test_weighted_mask_and_early_stop(image, backend):
    """Weights in [0, 2] (W² enters the y₀ step), stopping at SPORCO's iteration."""
    D, s = image
    W = np.random.RandomState(5).uniform(0.0, 2.0, s.shape)
    res, its = check(D, s, 0.05, {"MaxMainIter": 300, "RelStopTol": 5e-3}, backend, W)
    assert len(its.Iter) < 300, "the test problem must stop early"


@needs_sporco
@pytest.mark.parametrize("shape", [(31, 27), (30, 33)], ids=["odd-odd", "even-odd"])
def test_odd_sizes(backend, shape):
    s = highpass(central_crop(sporco_image("monarch.png"), *shape))
    D = random_dictionary(5, 5, K, seed=2)
    check(D, s, 0.05, {**BASE, "AutoRho": {"Enabled": True, "Period": 1}}, backend, random_mask(shape, 3))


@needs_sporco
def test_padding_mask_parity(image, backend):
    """boundary="mask" is SPORCO's recipe: the image zero-padded by kernel size − 1 at the
    bottom and right, and the (random) mask zero there."""
    D, s = image
    kh, kw = D.shape[:2]
    m = random_mask(s.shape, 7)
    sp_img = np.pad(s, ((0, kh - 1), (0, kw - 1)))
    sp_mask = np.pad(m, ((0, kh - 1), (0, kw - 1)))
    res, _ = check(D, sp_img, 0.05, BASE, backend, sp_mask, csc_mask=m, boundary="mask")
    assert tuple(res.codes.shape) == (1, K, 32 + kh - 1, 32 + kw - 1)
    # without a mask, the padding alone
    check(D, sp_img, 0.05, BASE, backend, np.pad(np.ones_like(s), ((0, kh - 1), (0, kw - 1))),
          csc_mask=None, boundary="mask")


@needs_sporco
def test_batch_of_masks_equals_each_alone(backend):
    """Different images and masks in one batch: each its single-image answer (own ρ and stopping)."""
    offsets = [(0, 0), (-60, 40), (50, -70)]
    S = np.stack([highpass(central_crop(sporco_image("monarch.png"), 32, 32, dy, dx)) for dy, dx in offsets])
    M = np.stack([random_mask((32, 32), seed) for seed in (1, 2, 3)])
    D = random_dictionary(5, 5, K, seed=1)
    opt = {"MaxMainIter": 300, "RelStopTol": 5e-3, "AutoRho": {"Enabled": True, "Period": 1}}
    solver = csc_solver(D, 0.05, opt, backend)
    batch = solver.solve(torch.from_numpy(S), mask=M)
    assert len(set(batch.iterations.tolist())) > 1, "images should stop at different iterations"
    for i in range(len(offsets)):
        single = solver.solve(torch.from_numpy(S[i]), mask=M[i])
        assert int(batch.iterations[i]) == int(single.iterations[0])
        for field in ("codes", "x", "u"):
            a, b = getattr(batch, field)[i], getattr(single, field)[0]
            assert float((a - b).norm() / b.norm()) <= 1e-12, field
        y_sp, its, _ = sporco_solve(D, S[i], 0.05, opt, M[i])
        assert len(its.Iter) == int(batch.iterations[i]) < 300
        assert_stats_match(solver, batch.stats[i], its, S[i])
        assert_codes_match(batch.codes[i:i + 1], y_sp)


# ------------------------------------------------------------- without SPORCO
@pytest.fixture(scope="module")
def small():
    rng = np.random.RandomState(0)
    D = torch.from_numpy(rng.randn(4, 5, 5))
    D = D / D.flatten(1).norm(dim=1).view(-1, 1, 1)
    return D, torch.from_numpy(rng.randn(2, 20, 18))


def test_options_defaults_and_types(small):
    D, S = small
    o = csc.MaskDcplOptions()
    assert (o.rho, o.auto_rho, o.rho_period, o.rho_scaling, o.rsdl_ratio, o.rsdl_target, o.auto_scaling,
            o.relax) == (1.0, False, 10, 2.0, 10.0, 1.0, False, 1.8)  # SPORCO ConvTwoBlockCnstrnt.Options
    assert csc.MaskDcplOptions(rho=None, rsdl_target=None).rho == 1.0  # SPORCO's ADMM: None is 1
    with pytest.raises(TypeError, match="options: ConvBPDNMaskDcpl takes MaskDcplOptions, got CBPDNOptions"):
        csc.ConvBPDNMaskDcpl(D, 0.1, csc.CBPDNOptions())
    with pytest.raises(ValueError, match="GradWeight: .* not of ConvBPDNMaskDcpl"):
        csc.MaskDcplOptions.from_sporco({"GradWeight": 1.0})


def test_bad_masks(small):
    D, S = small
    solver = csc.ConvBPDNMaskDcpl(D, 0.1, csc.MaskDcplOptions(max_iter=2))
    H, W = S.shape[-2:]
    with pytest.raises(ValueError, match=r"mask: expected a scalar, \(20, 18\) or \(2, 20, 18\), got shape \(3, 20, 18\)"):
        solver.solve(S, mask=np.ones((3, H, W)))
    with pytest.raises(ValueError, match="mask: expected finite values"):
        solver.solve(S, mask=np.full((H, W), np.nan))
    with pytest.raises(ValueError, match="mask: expected weights >= 0"):
        solver.solve(S, mask=-np.ones((H, W)))
    with pytest.raises(ValueError, match=r"mask: expected nonzero weights for every image, all zero for image\(s\) \[1\]"):
        solver.solve(S, mask=np.stack([np.ones((H, W)), np.zeros((H, W))]))
    with pytest.raises(ValueError, match="mask: expected nonzero weights for every image, all zero for every image"):
        solver.solve(S, mask=np.zeros((H, W)))
    with pytest.raises(ValueError, match="mask: expected a mask with nonzero weights, got 0"):
        solver.solve(S, mask=0.0)
    with pytest.raises(TypeError, match="mask: expected a number or an array"):
        solver.solve(S, mask="all")
    with pytest.raises(ValueError, match=r"boundary: expected one of \('periodic', 'mask'\), got 'zero'"):
        solver.solve(S, boundary="zero")
    # a boolean mask means 1/0
    a = solver.solve(S, mask=np.ones((H, W), dtype=bool))
    b = solver.solve(S)
    assert torch.equal(a.codes, b.codes)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_statistics_are_its_objective(small, backend):
    D, S = small
    lmbda = 0.1
    mask = torch.from_numpy(np.random.RandomState(9).uniform(0, 1.5, (2, *S.shape[-2:])))
    res = csc.ConvBPDNMaskDcpl(D, lmbda, csc.MaskDcplOptions(max_iter=25, backend=backend)).solve(S, mask=mask)
    x = res.x
    fid = 0.5 * (mask * (csc.core.ops.synthesis(D, x) - S)).square().sum((-2, -1))
    l1 = x.abs().sum((1, 2, 3))
    for i, st in enumerate(res.stats):
        assert st.data_fidelity[-1] == pytest.approx(float(fid[i]), rel=1e-10)
        assert st.objective[-1] == pytest.approx(float(fid[i] + lmbda * l1[i]), rel=1e-12)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_float32_close_to_float64(small, backend):
    D, S = small
    mask = torch.from_numpy(random_mask(S.shape, 4))
    opts = csc.MaskDcplOptions(max_iter=30, auto_rho=True, rho_period=1, backend=backend)
    r64 = csc.ConvBPDNMaskDcpl(D, 0.1, opts).solve(S, mask=mask)
    r32 = csc.ConvBPDNMaskDcpl(D.float(), 0.1, opts).solve(S.float(), mask=mask.float())
    assert r32.codes.dtype == torch.float32
    assert float((r32.codes.double() - r64.codes).norm() / r64.codes.norm()) <= 1e-4
    np.testing.assert_allclose(r32.stats[0].objective, r64.stats[0].objective, rtol=1e-4)


def test_back_ends_agree(small):
    skip_unless_numba()
    D, S = small
    mask = torch.from_numpy(random_mask(S.shape, 6))
    r = [csc.ConvBPDNMaskDcpl(D, 0.1, csc.MaskDcplOptions(max_iter=30, backend=b)).solve(S, mask=mask)
         for b in ("torch", "numba")]
    assert float((r[0].codes - r[1].codes).norm() / r[1].codes.norm()) <= 1e-12


def test_mask_boundary_removes_wrap_around():
    """An image synthesised by linear (not circular) convolution of sparse codes: structures
    are cut by the borders and its left and right edges differ. With boundary="mask" the
    error in the border band (width kh) is clearly below the periodic solve's there, and
    its excess over the interior's error is smaller. (It stays above the interior's: a
    code whose kernel lies partly in the masked padding pays its full ℓ1 cost for a partial
    fit, so the ℓ1 optimum shrinks the border more; measured 2.5× here against 3.1× for
    periodic boundaries.)"""
    from ..conftest import random_dictionary as rd

    D = torch.from_numpy(csc.from_sporco_layout(rd(5, 5, K, seed=4), "dictionary").copy())
    H = W = 32
    kh = kw = 5
    rng = np.random.RandomState(0)
    x0 = rng.randn(1, K, H + kh - 1, W + kw - 1) * (rng.rand(1, K, H + kh - 1, W + kw - 1) < 0.02)
    s = csc.core.ops.synthesis(D, torch.from_numpy(x0))[0, :H, :W].clone()
    assert float((s[:, 0] - s[:, -1]).abs().mean()) > 0.3 * float(s.abs().mean())
    band = torch.zeros(H, W, dtype=torch.bool)
    band[:kh], band[-kh:], band[:, :kw], band[:, -kw:] = True, True, True, True
    err = {}
    for boundary in ("periodic", "mask"):
        r = csc.ConvBPDNMaskDcpl(D, 0.05, csc.MaskDcplOptions(max_iter=100)).solve(s, boundary=boundary)
        e = (r.reconstruct()[0, :H, :W] - s).square()
        err[boundary] = (float(e[band].mean()), float(e[~band].mean()))
    assert tuple(r.codes.shape) == (1, K, H + kh - 1, W + kw - 1)
    (pb, pi), (mb, mi) = err["periodic"], err["mask"]
    assert mb <= 0.85 * pb, err
    assert mb / mi < pb / pi, err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("boundary", ["periodic", "mask"])
def test_cuda_matches_cpu(small, boundary):
    """The torch loop on CUDA gives the CPU's answer (float64), mask and padding on the device."""
    D, S = small
    mask = random_mask(S.shape, 8)
    out = [csc.ConvBPDNMaskDcpl(D, 0.1, csc.MaskDcplOptions(max_iter=30, auto_rho=True, backend="torch",
                                                            device=device)).solve(S, mask=mask, boundary=boundary)
           for device in ("cpu", "cuda")]
    a, b = out
    assert b.codes.device.type == "cuda"
    assert float((a.codes - b.codes.cpu()).norm() / a.codes.norm()) <= 1e-12
    np.testing.assert_allclose(a.stats[0].objective, b.stats[0].objective, rtol=1e-12)

"""csc.ConvProdDictBPDN against SPORCO's admm.pdcsc.ConvProdDictBPDN (float64, CPU).

As test_variants_parity: every csc image is compared with a single-image SPORCO solve given the
same options: statistics at every iteration to 1e-8 relative, y to 1e-10 relative with the same
support, the reconstruction D X Bᵀ; ``coupling="sporco"`` against SPORCO's multi-image solve.
Colour crops of 16×16, 6 kernels of 5×5, standard dictionaries B of 3×4 (J > C: BᵀB singular,
as the example's 3×6), 3×2 and 3×3, 20 iterations.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import csc

from ..conftest import needs_sporco, random_dictionary
from .test_cbpdn_parity import assert_batch_image_alone
from .test_variants_parity import assert_stats_match

K = 6
BASE = {"MaxMainIter": 20, "RelStopTol": 0.0}


def colour(size: int = 16, dy: int = 0, dx: int = 0) -> np.ndarray:
    from .test_colour import colour_crop

    return colour_crop(size, dy, dx)


def standard(C: int, J: int, seed: int = 1) -> np.ndarray:
    return np.random.RandomState(seed).randn(C, J)


def csc_dictionary(D: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(csc.from_sporco_layout(D, "dictionary").copy())


def sporco_solve(D, B, S, lmbda, opt, dimK=0):
    """SPORCO on S in its layout ((H, W, C) or (H, W, C, B) with dimK=1)."""
    from sporco.admm import pdcsc

    b = pdcsc.ConvProdDictBPDN(D, B, S, lmbda, pdcsc.ConvProdDictBPDN.Options({"Verbose": False, **opt}), dimK=dimK)
    b.solve()
    return b


def sporco_codes(b) -> np.ndarray:
    """SPORCO's Y (H, W, J, B, K) as csc's codes (B, J, K, H, W)."""
    return np.transpose(b.Y, (3, 2, 4, 0, 1))


def assert_codes(codes: torch.Tensor, ref: np.ndarray) -> None:
    c = codes.numpy()
    assert c.shape == ref.shape
    assert np.array_equal(c != 0, ref != 0), "supports differ"
    err = np.linalg.norm(c - ref) / np.linalg.norm(ref)
    assert err <= 1e-10, f"relative error of y: {err:.3e}"


def check(D, B, s, lmbda, opt, **over):
    """One (C, H, W) image against SPORCO: statistics, codes, ρ, the reconstruction."""
    sp = sporco_solve(D, B, np.ascontiguousarray(np.moveaxis(s, 0, -1)), lmbda, opt)
    solver = csc.ConvProdDictBPDN(csc_dictionary(D), B, lmbda, csc.CBPDNOptions.from_sporco(opt, **over))
    res = solver.solve(torch.from_numpy(s))
    assert_stats_match(solver, res.stats[0], sp.getitstat(), s)
    assert_codes(res.codes, sporco_codes(sp))
    assert float(res.rho) == pytest.approx(float(sp.rho), rel=1e-10)
    rec = np.moveaxis(res.reconstruct().numpy()[0], 0, -1)
    np.testing.assert_allclose(rec, sp.reconstruct().squeeze(), rtol=0, atol=1e-12 * np.abs(s).max())
    return res, sp


#: (C, J) of B, λ, options
CASES = {
    "defaults-3x4": ((3, 4), 0.05, {}),
    "rank-deficient-3x6": ((3, 6), 0.05, {}),
    "fewer-pseudo-3x2": ((3, 2), 0.05, {}),
    "square-relax-1": ((3, 3), 0.05, {"RelaxParam": 1.0}),
    "aux-var-obj": ((3, 4), 0.05, {"AuxVarObj": True}),
    # SPORCO's cached HighMemSolve factor is right when ρ is given (see test_sporco_high_mem_solve_default_rho)
    "high-mem-rho-given": ((3, 4), 0.05, {"HighMemSolve": True, "rho": 3.5}),
    "nonneg-boundary": ((3, 4), 0.05, {"NonNegCoef": True, "NoBndryCross": True}),
    "l1-weight-fixed-rho": ((3, 4), 0.05, {"L1Weight": np.linspace(0.5, 2.0, K).reshape(1, 1, 1, 1, K),
                                           "rho": 2.0, "AutoRho": {"Enabled": False}}),
}


@needs_sporco
@pytest.mark.parametrize("name", list(CASES))
def test_matches_sporco(name):
    (C, J), lmbda, opt = CASES[name]
    res, _ = check(random_dictionary(5, 5, K, seed=4), standard(C, J), colour(), lmbda, {**BASE, **opt},
                   backend="torch")
    assert res.codes.shape == (1, J, K, 16, 16)


@needs_sporco
def test_sporco_high_mem_solve_default_rho():
    """SPORCO 0.2.2's ``HighMemSolve`` with the default ρ: ``GenericConvBPDN.__init__`` caches the
    x-step's factor (``setdict``) before ``ConvBPDN.__init__`` sets ρ = 50λ + 1, so until ρ first
    changes SPORCO's x-step does not solve its system (its own ``LinSolveCheck`` residual is far
    from 0). csc solves it (``HighMemSolve`` is ignored) and gives SPORCO's answer without it."""
    D, B, s = random_dictionary(5, 5, K, seed=4), standard(3, 4), colour(16)
    opt = {**BASE, "HighMemSolve": True, "LinSolveCheck": True, "AutoRho": {"Enabled": False}}
    sp = sporco_solve(D, B, np.ascontiguousarray(np.moveaxis(s, 0, -1)), 0.05, opt)
    assert np.max(sp.getitstat().XSlvRelRes) > 1e-2
    opt = {**BASE, "AutoRho": {"Enabled": False}}
    res, _ = check(D, B, s, 0.05, {**opt, "HighMemSolve": False}, backend="torch")
    solver = csc.ConvProdDictBPDN(csc_dictionary(D), B, 0.05,
                                  csc.CBPDNOptions.from_sporco({**opt, "HighMemSolve": True}, backend="torch"))
    assert torch.equal(solver.solve(torch.from_numpy(s)).codes, res.codes)


@needs_sporco
def test_early_stop_and_batch_each_alone():
    """Own ρ and stopping per image: a batch equals each image alone and SPORCO's single-image
    solve, stopping at its iteration; the numba back end runs the torch loop and says so."""
    S = np.stack([colour(16, 20 * i, -20 * i) for i in range(3)])
    D, B = random_dictionary(5, 5, K, seed=1), standard(3, 4)
    opt = {"MaxMainIter": 100, "RelStopTol": 1e-2}
    solver = csc.ConvProdDictBPDN(csc_dictionary(D), B, 0.05, csc.CBPDNOptions.from_sporco(opt, backend="numba"))
    batch = solver.solve(torch.from_numpy(S))
    assert batch.backend.startswith("torch (numba has no kernel for ProductXStep")
    assert len(set(batch.iterations.tolist())) > 1, "images should stop at different iterations"
    for i in range(len(S)):
        assert_batch_image_alone(solver, batch, S[i], i)
        sp = sporco_solve(D, B, np.ascontiguousarray(np.moveaxis(S[i], 0, -1)), 0.05, opt)
        assert len(sp.getitstat().Iter) == int(batch.iterations[i]) < 100
        assert_codes(batch.codes[i:i + 1], sporco_codes(sp))


@needs_sporco
def test_coupled_matches_sporco_multi_image():
    S = np.stack([colour(24, 20 * i, -20 * i) for i in range(2)])
    D, B = random_dictionary(5, 5, K, seed=1), standard(3, 4)
    opt = {"MaxMainIter": 20, "RelStopTol": 0.0}
    sp = sporco_solve(D, B, np.ascontiguousarray(np.moveaxis(S, (0, 1), (-1, -2))), 0.05, opt, dimK=1)
    solver = csc.ConvProdDictBPDN(csc_dictionary(D), B, 0.05, csc.CBPDNOptions.from_sporco(opt, coupling="sporco"))
    res = solver.solve(torch.from_numpy(S))
    assert len(res.stats) == 1
    assert_stats_match(solver, res.stats[0], sp.getitstat(), S)
    assert_codes(res.codes, sporco_codes(sp))


def test_y0_u0_and_float32():
    D = csc_dictionary(random_dictionary(5, 5, K, seed=3))
    B = standard(2, 3)
    S = torch.from_numpy(np.random.RandomState(0).randn(2, 2, 20, 20))
    o = csc.CBPDNOptions(max_iter=20, rel_stop_tol=0.0, rho=2.0, auto_rho=False)
    r64 = csc.ConvProdDictBPDN(D, B, 0.1, o).solve(S)
    assert r64.codes.shape == (2, 3, K, 20, 20) and r64.reconstruct().shape == (2, 2, 20, 20)
    half = csc.ConvProdDictBPDN(D, B, 0.1, o.replace(max_iter=10))
    first = half.solve(S)
    resumed = half.solve(S, y0=first.codes, u0=first.u)  # fixed ρ: (y, u) is the whole state
    assert float((resumed.codes - r64.codes).norm() / r64.codes.norm()) <= 1e-12
    r32 = csc.ConvProdDictBPDN(D.float(), B, 0.1, o).solve(S.float())
    assert r32.codes.dtype == torch.float32
    assert float((r32.codes.double() - r64.codes).norm() / r64.codes.norm()) <= 1e-4


def test_bad_arguments():
    D = np.random.RandomState(0).randn(4, 5, 5)
    with pytest.raises(ValueError, match=r"standard: expected a \(C, J\)"):
        csc.ConvProdDictBPDN(D, np.ones(3), 0.1)
    with pytest.raises(ValueError, match="standard: expected finite|standard"):
        csc.ConvProdDictBPDN(D, np.full((3, 2), np.nan), 0.1)
    with pytest.raises(ValueError, match="dictionary: a product dictionary takes single-channel"):
        csc.ConvProdDictBPDN(np.random.RandomState(0).randn(4, 3, 5, 5), np.ones((3, 2)), 0.1)
    solver = csc.ConvProdDictBPDN(D, np.ones((3, 2)), 0.1, csc.CBPDNOptions(max_iter=2))
    with pytest.raises(ValueError, match="images: expected 3 channels"):
        solver.solve(np.ones((2, 4, 16, 16)))
    with pytest.raises(ValueError, match=r"y0: expected shape \(1, 2, 4, 16, 16\)"):
        solver.solve(np.ones((3, 16, 16)), y0=np.zeros((1, 4, 16, 16)))


# ------------------------------------------------------------------ ConvProdDictL1L1Grd
def noisy(size: int = 24, dy: int = 0, dx: int = 0) -> np.ndarray:
    """A colour crop with 5% salt noise in all channels at the same pixels."""
    s = colour(size, dy, dx).copy()
    s[:, np.random.RandomState(dy + 7 * dx % 97).rand(size, size) < 0.05] += 1.0
    return s


def l1l1_check(D, B, s, lmbda, mu, opt, mask=None, **over):
    from sporco.admm import pdcsc

    sp = pdcsc.ConvProdDictL1L1Grd(D, B, np.ascontiguousarray(np.moveaxis(s, 0, -1)), lmbda, mu, W=mask,
                                   opt=pdcsc.ConvProdDictL1L1Grd.Options({"Verbose": False, **opt}), dimK=0)
    sp.solve()
    solver = csc.ConvProdDictL1L1Grd(csc_dictionary(D), B, lmbda, mu, csc.L1L1GrdOptions.from_sporco(opt, **over))
    res = solver.solve(torch.from_numpy(s), mask=mask)
    assert_stats_match(solver, res.stats[0], sp.getitstat(), s)
    J = B.shape[1]
    ref = np.transpose(sp.getcoef().reshape(s.shape[1], s.shape[2], J, -1), (2, 3, 0, 1))[None]
    assert_codes(res.codes, ref)
    assert float(res.rho) == pytest.approx(float(sp.rho), rel=1e-10)
    rec = np.moveaxis(res.reconstruct(res.x).numpy()[0], 0, -1)  # SPORCO's reconstruct() of this class uses X
    np.testing.assert_allclose(rec, sp.reconstruct().squeeze(), rtol=0, atol=1e-10 * np.abs(s).max())
    return res, sp


def impulse_dictionary() -> tuple[np.ndarray, dict]:
    """SPORCO's implsden_grd_pd_* recipe: an impulse kernel first, gradient-penalised alone and not
    ℓ1-penalised."""
    D = random_dictionary(5, 5, K - 1, seed=8)
    imp = np.zeros((5, 5, 1))
    imp[0, 0, 0] = 1.0
    wl1 = np.ones((1, 1, 1, 1, K))
    wl1[..., 0] = 0.0
    gw = np.zeros(K)
    gw[0] = 1.0
    return np.concatenate([imp, D], axis=2), {"L1Weight": wl1, "GradWeight": gw}


L1L1_CASES = {
    "defaults": {},
    "grad-weight-per-kernel": {"GradWeight": np.array([0.0, 1.0, 2.0, 0.5, 0.0, 3.0])},
    "auto-rho": {"AutoRho": {"Enabled": True, "Period": 1, "RsdlRatio": 1.2, "AutoScaling": True}},
    "aux-var-obj": {"AuxVarObj": True},
    "relax-1-nonneg-boundary": {"RelaxParam": 1.0, "NonNegCoef": True, "NoBndryCross": True},
}


@needs_sporco
@pytest.mark.parametrize("name", list(L1L1_CASES))
def test_l1l1_grd_matches_sporco(name):
    l1l1_check(random_dictionary(5, 5, K, seed=4), standard(3, 4), noisy(16), 0.05, 0.5,
               {**BASE, **L1L1_CASES[name]}, backend="torch")


@needs_sporco
def test_l1l1_grd_impulse_kernel_and_mask():
    """The examples' use (an impulse kernel carrying the smooth part, B with J > C) and a mask."""
    D, opt = impulse_dictionary()
    s = noisy(16)
    res, _ = l1l1_check(D, standard(3, 5, seed=2), s, 0.05, 5.0, {**BASE, **opt}, backend="numba")
    assert res.backend.startswith("torch (numba has no kernel")
    assert float(res.codes[0, :, 0].abs().sum()) > 0, "the impulse kernel should carry the smooth part"
    mask = (np.random.RandomState(1).rand(16, 16) > 0.2).astype(np.float64)
    l1l1_check(D, standard(3, 5, seed=2), s, 0.05, 5.0, {**BASE, **opt}, mask=mask, backend="torch")


@needs_sporco
def test_l1l1_grd_batch_each_alone():
    """Own ρ per image: a batch equals each image alone. (SPORCO's dual residual of this class,
    ρ‖Aᵀu‖ over ρ‖u‖, does not vanish at the solution, so the relative stopping test seldom
    passes: the images run their iterations, each on its own ρ path.)"""
    S = np.stack([noisy(16, 20 * i, -20 * i) for i in range(3)])
    D, B = random_dictionary(5, 5, K, seed=1), standard(3, 4)
    opt = {"MaxMainIter": 30, "RelStopTol": 1e-2, "AutoRho": {"Enabled": True, "Period": 1}}
    solver = csc.ConvProdDictL1L1Grd(csc_dictionary(D), B, 0.05, 0.5, csc.L1L1GrdOptions.from_sporco(opt))
    batch = solver.solve(torch.from_numpy(S))
    assert len(set(batch.rho.tolist())) > 1, "each image should have its own ρ"
    for i in range(len(S)):
        assert_batch_image_alone(solver, batch, S[i], i)


def test_l1l1_grd_bad_arguments():
    D = np.random.RandomState(0).randn(4, 5, 5)
    with pytest.raises(ValueError, match="mu"):
        csc.ConvProdDictL1L1Grd(D, np.ones((3, 2)), 0.1, -1.0)
    with pytest.raises(ValueError, match=r"standard: expected a \(C, J\)"):
        csc.ConvProdDictL1L1Grd(D, np.ones((2, 3, 1)), 0.1, 1.0)
    with pytest.raises(TypeError, match="L1L1GrdOptions"):
        csc.ConvProdDictL1L1Grd(D, np.ones((3, 2)), 0.1, 1.0, csc.CBPDNOptions())
    solver = csc.ConvProdDictL1L1Grd(D, np.ones((3, 2)), 0.1, 1.0, csc.L1L1GrdOptions(max_iter=2))
    with pytest.raises(ValueError, match="images: expected 3 channels"):
        solver.solve(np.ones((1, 16, 16)))
    with pytest.raises(ValueError, match="mask: expected"):
        solver.solve(np.ones((3, 16, 16)), mask=np.ones((5, 5)))
    with pytest.raises(ValueError, match="boundary"):
        solver.solve(np.ones((3, 16, 16)), boundary="reflect")
    assert solver.solve(np.ones((3, 16, 16)), boundary="mask").codes.shape == (1, 2, 4, 20, 20)


# ------------------------------------------------------------------ ConvProdDictL1L1GrdJoint
JOINT_CASES = {
    "defaults": {},
    "l21-weight-grad-weight-aux-var": {"L21Weight": 0.5, "GradWeight": np.array([0.0, 1.0, 2.0, 0.5, 0.0, 3.0]),
                                       "AuxVarObj": True},
    "auto-rho": {"AutoRho": {"Enabled": True, "Period": 1}},
}


@needs_sporco
@pytest.mark.parametrize("name", list(JOINT_CASES))
def test_l1l1_grd_joint_matches_sporco(name):
    from sporco.admm import pdcsc

    D, B, s = random_dictionary(5, 5, K, seed=4), standard(3, 4), noisy(16)
    opt = {**BASE, **JOINT_CASES[name]}
    sp = pdcsc.ConvProdDictL1L1GrdJoint(D, B, np.ascontiguousarray(np.moveaxis(s, 0, -1)), 0.05, 0.5,
                                        opt=pdcsc.ConvProdDictL1L1GrdJoint.Options({"Verbose": False, **opt}), dimK=0)
    sp.solve()
    solver = csc.ConvProdDictL1L1GrdJoint(csc_dictionary(D), B, 0.05, 0.5, csc.L1L1GrdJointOptions.from_sporco(opt))
    res = solver.solve(torch.from_numpy(s))
    assert "l21" in solver.sporco_stats_names and "l1" not in solver.sporco_stats_names
    assert_stats_match(solver, res.stats[0], sp.getitstat(), s)
    assert_codes(res.codes, np.transpose(sp.getcoef().reshape(16, 16, 4, K), (2, 3, 0, 1))[None])
    # joint sparsity: a kernel's coefficients at a pixel are zero in all pseudo-channels or in none
    nz = res.codes[0] != 0
    assert torch.equal(nz.any(0), nz.all(0))


def test_l1l1_grd_joint_options():
    assert csc.L1L1GrdJointOptions.from_sporco({"L21Weight": 0.5}).l21_weight == 0.5
    assert csc.L1L1GrdJointOptions().rho == 1.0  # ConvL1L1Grd's defaults
    with pytest.raises(ValueError, match="l21_weight"):
        csc.L1L1GrdJointOptions(l21_weight=-1.0)
    with pytest.raises(TypeError, match="l21_weight"):
        csc.L1L1GrdJointOptions(l21_weight="one")
    with pytest.raises(ValueError, match="L21Weight: unknown"):
        csc.L1L1GrdOptions.from_sporco({"L21Weight": 0.5})

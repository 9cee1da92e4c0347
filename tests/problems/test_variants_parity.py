"""Parity of csc.ConvElasticNet, csc.ConvBPDNGradReg and csc.ConvL1L1Grd with SPORCO's
admm.cbpdn classes of the same names (float64, CPU, each back end).

As test_cbpdn_parity: every csc image is compared with a single-image SPORCO solve given the
same options: statistics (with the problem's own term, RegL2 or RegGrad) at every iteration
to 1e-8 relative, y to 1e-10 relative with the same support. Small problems (32×32 and
odd sizes, 6 kernels of 5×5) keep the file fast.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import csc

from ..backends_params import CPU_BACKENDS
from ..conftest import central_crop, highpass, needs_sporco, random_dictionary, sporco_image
from .test_cbpdn_parity import assert_batch_image_alone

pytestmark = needs_sporco

STATS_RTOL = 1e-8
Y_RTOL = 1e-10
K = 6


@pytest.fixture(params=CPU_BACKENDS)
def backend(request):
    return request.param


def sporco_solve(kind: str, D, s, lmbda, mu, opt, mask=None):
    """SPORCO's ConvElasticNet ('enet'), ConvBPDNGradReg ('grad') or ConvL1L1Grd ('l1l1') on
    one image."""
    from sporco.admm import cbpdn as sp

    full = {"Verbose": False, **opt}
    if kind == "enet":
        solver = sp.ConvElasticNet(D, s, lmbda, mu, sp.ConvElasticNet.Options(full))
    elif kind == "grad":
        solver = sp.ConvBPDNGradReg(D, s, lmbda, mu, sp.ConvBPDNGradReg.Options(full))
    else:
        solver = sp.ConvL1L1Grd(D, s, lmbda, mu, W=mask, opt=sp.ConvL1L1Grd.Options(full))
    y = solver.solve()
    return y, solver.getitstat(), solver


def csc_solver(kind: str, D, lmbda, mu, opt, backend):
    Dc = torch.from_numpy(csc.from_sporco_layout(D, "dictionary").copy())
    if kind == "enet":
        return csc.ConvElasticNet(Dc, lmbda, mu, csc.CBPDNOptions.from_sporco(opt, backend=backend))
    if kind == "grad":
        return csc.ConvBPDNGradReg(Dc, lmbda, mu, csc.GradRegOptions.from_sporco(opt, backend=backend))
    return csc.ConvL1L1Grd(Dc, lmbda, mu, csc.L1L1GrdOptions.from_sporco(opt, backend=backend))


def assert_stats_match(solver, stats, its, s: np.ndarray) -> None:
    """Every statistic of the solver's SPORCO table, at every iteration, to STATS_RTOL (the
    fidelity's float64 cancellation floor as in test_cbpdn_parity)."""
    assert len(stats) == len(its.Iter), f"iteration count {len(stats)} vs SPORCO {len(its.Iter)}"
    floor = 1e-15 * 0.5 * float(np.sum(s ** 2))
    for ours, theirs in solver.sporco_stats_names.items():
        if ours == "time":
            continue
        atol = floor if ours in ("objective", "data_fidelity") else 0.0
        np.testing.assert_allclose(
            getattr(stats, ours), np.asarray(getattr(its, theirs), dtype=np.float64),
            rtol=STATS_RTOL, atol=atol, err_msg=f"statistic {ours} ({theirs})",
        )


def assert_codes_match(codes: torch.Tensor, y_sp: np.ndarray) -> None:
    y = csc.to_sporco_layout(codes.numpy(), "codes").reshape(y_sp.shape)
    assert np.array_equal(y != 0, y_sp != 0), "supports differ"
    err = np.linalg.norm(y - y_sp) / max(np.linalg.norm(y_sp), 1e-300)
    assert err <= Y_RTOL, f"relative error of y: {err:.3e}"


def check(kind, D, s, lmbda, mu, opt, backend, mask=None):
    y_sp, its, sp = sporco_solve(kind, D, s, lmbda, mu, opt, mask)
    solver = csc_solver(kind, D, lmbda, mu, opt, backend)
    res = solver.solve(torch.from_numpy(s)) if mask is None else solver.solve(torch.from_numpy(s), mask=mask)
    assert_stats_match(solver, res.stats[0], its, s)
    assert_codes_match(res.codes, y_sp)
    assert float(res.rho) == pytest.approx(float(sp.rho), rel=1e-10)
    return res, its


@pytest.fixture(scope="module")
def image():
    """32×32 crop of a natural image, high-passed, and 6 random 5×5 kernels."""
    return random_dictionary(5, 5, K, seed=4), highpass(central_crop(sporco_image("monarch.png"), 32, 32))


BASE = {"MaxMainIter": 30, "RelStopTol": 0.0}

ENET_VARIANTS = {
    "defaults": ({}, 0.1, 0.5),
    "relax-1.0": ({"RelaxParam": 1.0}, 0.1, 0.5),
    # strongly convex: r falls ~10× per iteration, to rounding level (‖x − y‖ ~ 1e-12‖x‖,
    # where the difference of two rounded maps has no correct digits) after ~20 iterations
    "large-mu": ({"MaxMainIter": 14}, 0.05, 20.0),
    "mu-0": ({}, 0.1, 0.0),
    "fixed-rho": ({"rho": 2.0, "AutoRho": {"Enabled": False}}, 0.1, 0.5),
    "aux-var-obj": ({"AuxVarObj": True}, 0.1, 0.5),
    "nonneg-and-boundary": ({"NonNegCoef": True, "NoBndryCross": True}, 0.1, 0.5),
    "l1-weight-per-kernel": ({"L1Weight": np.linspace(0.5, 2.0, K).reshape(1, 1, 1, 1, K)}, 0.1, 0.5),
}


@pytest.mark.parametrize("name", list(ENET_VARIANTS))
def test_elastic_net(image, backend, name):
    D, s = image
    opt, lmbda, mu = ENET_VARIANTS[name]
    check("enet", D, s, lmbda, mu, {**BASE, **opt}, backend)


def test_elastic_net_mu_0_is_cbpdn(image, backend):
    D, s = image
    Dc = torch.from_numpy(csc.from_sporco_layout(D, "dictionary").copy())
    opts = csc.CBPDNOptions(max_iter=30, rel_stop_tol=0.0, backend=backend)
    a = csc.ConvElasticNet(Dc, 0.1, 0.0, opts).solve(torch.from_numpy(s))
    b = csc.ConvBPDN(Dc, 0.1, opts).solve(torch.from_numpy(s))
    assert float((a.codes - b.codes).norm() / b.codes.norm()) <= 1e-12
    np.testing.assert_allclose(a.stats[0].objective, b.stats[0].objective, rtol=1e-12)


GRAD_WEIGHTS = {
    "scalar": 1.0,
    "per-kernel": np.array([0.0, 1.0, 2.0, 0.5, 0.0, 3.0]),
}


@pytest.mark.parametrize("weights", list(GRAD_WEIGHTS))
@pytest.mark.parametrize("extra", [{}, {"AuxVarObj": True}, {"RelaxParam": 1.0, "NonNegCoef": True}],
                         ids=["defaults", "aux-var-obj", "relax-1-nonneg"])
def test_grad_reg(image, backend, weights, extra):
    D, s = image
    check("grad", D, s, 0.1, 0.8, {**BASE, "GradWeight": GRAD_WEIGHTS[weights], **extra}, backend)


def test_grad_reg_impulse_kernel_no_prefilter(backend):
    """SPORCO's usual use (its cbpdn_grd example): an impulse kernel appended to the
    dictionary, gradient-penalised alone (GradWeight 0 for the others) and not ℓ1-penalised
    (L1Weight 0 for it), on an image that was not high-passed."""
    s = central_crop(sporco_image("barbara.png"), 32, 32)
    D = random_dictionary(5, 5, K, seed=8)
    imp = np.zeros((5, 5, 1))
    imp[0, 0, 0] = 1.0
    D = np.concatenate([D, imp], axis=2)
    gw = np.zeros(K + 1)
    gw[-1] = 1.0
    wl1 = np.ones((1, 1, 1, 1, K + 1))
    wl1[..., -1] = 0.0
    opt = {**BASE, "MaxMainIter": 40, "GradWeight": gw, "L1Weight": wl1}
    res, its = check("grad", D, s, 0.05, 10.0, opt, backend)
    assert float(res.codes[0, -1].abs().sum()) > 0, "the impulse kernel should carry the smooth part"


@pytest.mark.parametrize("shape", [(31, 27), (30, 33)], ids=["odd-odd", "even-odd"])
def test_odd_sizes(backend, shape):
    s = highpass(central_crop(sporco_image("monarch.png"), *shape))
    D = random_dictionary(5, 5, K, seed=2)
    check("grad", D, s, 0.1, 0.8, {**BASE, "GradWeight": GRAD_WEIGHTS["per-kernel"]}, backend)
    check("enet", D, s, 0.1, 0.5, BASE, backend)


@pytest.mark.parametrize("kind", ["enet", "grad"])
def test_early_stop_same_iteration_count(image, backend, kind):
    D, s = image
    opt = {"MaxMainIter": 500, "RelStopTol": 2e-3}
    res, its = check(kind, D, s, 0.1, 0.5, opt, backend)
    assert len(its.Iter) < 500, "the test problem must stop early"
    assert int(res.iterations) == len(its.Iter)


@pytest.mark.parametrize("kind", ["enet", "grad"])
def test_batch_equals_single_images(backend, kind):
    """Different images in one batch: each gets its single-image answer (own ρ and stopping)."""
    offsets = [(0, 0), (-60, 40), (50, -70)]
    S = np.stack([highpass(central_crop(sporco_image("monarch.png"), 32, 32, dy, dx)) for dy, dx in offsets])
    D = random_dictionary(5, 5, K, seed=1)
    opt = {"MaxMainIter": 300, "RelStopTol": 2e-3, "GradWeight": GRAD_WEIGHTS["per-kernel"]} if kind == "grad" \
        else {"MaxMainIter": 300, "RelStopTol": 2e-3}
    solver = csc_solver(kind, D, 0.05, 0.5, opt, backend)
    batch = solver.solve(torch.from_numpy(S))
    assert len(set(batch.iterations.tolist())) > 1, "images should stop at different iterations"
    for i in range(len(offsets)):
        assert_batch_image_alone(solver, batch, S[i], i)
        y_sp, its, _ = sporco_solve(kind, D, S[i], 0.05, 0.5, opt)
        assert len(its.Iter) == int(batch.iterations[i])
        assert_codes_match(batch.codes[i:i + 1], y_sp)


@pytest.mark.parametrize("kind", ["enet", "grad"])
def test_float32_close_to_float64(image, backend, kind):
    D, s = image
    opt = {"MaxMainIter": 40, "GradWeight": GRAD_WEIGHTS["per-kernel"]} if kind == "grad" else {"MaxMainIter": 40}
    solver = csc_solver(kind, D, 0.1, 0.5, opt, backend)
    r64 = solver.solve(torch.from_numpy(s))
    r32 = type(solver)(solver.dictionary.float(), 0.1, 0.5, solver.options).solve(torch.from_numpy(s).float())
    assert r32.codes.dtype == torch.float32
    err = float((r32.codes.double() - r64.codes).norm() / r64.codes.norm())
    assert err <= 1e-4, f"float32 vs float64 relative error {err:.2e}"
    extra = "grad" if kind == "grad" else "l2"
    for field in ("objective", "data_fidelity", "l1", extra, "rho"):
        np.testing.assert_allclose(getattr(r32.stats[0], field)[1:], getattr(r64.stats[0], field)[1:],
                                   rtol=1e-4, err_msg=field)


# ------------------------------------------------------------------ ConvL1L1Grd
L1L1_VARIANTS = {
    "defaults": {},
    "auto-rho": {"AutoRho": {"Enabled": True, "Period": 1, "AutoScaling": True, "RsdlRatio": 1.2}},
    "auto-rho-period-3": {"AutoRho": {"Enabled": True, "Period": 3, "RsdlRatio": 1.5}},
    "rho-given": {"rho": 4.0},
    "relax-1.0": {"RelaxParam": 1.0},
    "aux-var-obj": {"AuxVarObj": True},
    "grad-weight-per-kernel": {"GradWeight": GRAD_WEIGHTS["per-kernel"]},
    "nonneg-and-boundary": {"NonNegCoef": True, "NoBndryCross": True},
    "l1-weight-per-kernel": {"L1Weight": np.linspace(0.5, 2.0, K).reshape(1, 1, 1, 1, K)},
    "l1-weight-per-coefficient": {"L1Weight": np.random.RandomState(3).uniform(0.0, 2.0, (32, 32, 1, 1, K))},
    "std-residuals-abs-tol": {"AutoRho": {"Enabled": True, "StdResiduals": True}, "AbsStopTol": 1e-4},
    "abs-stop-tol": {"AbsStopTol": 1e-3, "RelStopTol": 1e-4, "MaxMainIter": 400},
}


@pytest.mark.parametrize("name", list(L1L1_VARIANTS))
def test_l1l1_grd(image, backend, name):
    """ℓ1 data fidelity (SPORCO ConvL1L1Grd), on an image with impulsive noise."""
    D, s = image
    noisy = s.copy()
    noisy[np.random.RandomState(0).rand(*s.shape) < 0.05] += 1.0
    res, its = check("l1l1", D, noisy, 0.05, 0.5, {**BASE, "MaxMainIter": 40, **L1L1_VARIANTS[name]}, backend)
    if name.startswith("auto-rho"):
        assert len(set(res.stats[0].rho.tolist())) > 1, "ρ should change"


def test_l1l1_grd_mask(image, backend):
    D, s = image
    mask = (np.random.RandomState(1).rand(*s.shape) > 0.2).astype(np.float64)
    check("l1l1", D, s, 0.05, 0.5, {**BASE, "MaxMainIter": 40}, backend, mask=mask)


@pytest.mark.parametrize("shape", [(31, 27), (30, 33)], ids=["odd-odd", "even-odd"])
def test_l1l1_grd_odd_sizes(backend, shape):
    s = highpass(central_crop(sporco_image("monarch.png"), *shape))
    D = random_dictionary(5, 5, K, seed=2)
    check("l1l1", D, s, 0.05, 0.5, {**BASE, "GradWeight": GRAD_WEIGHTS["per-kernel"],
                                     "AutoRho": {"Enabled": True, "Period": 1, "RsdlRatio": 1.2}}, backend)


def test_l1l1_grd_early_stop_and_batch(backend):
    """Stopping at SPORCO's iteration, and a batch (own ρ and stopping per image) equal to
    each image alone."""
    offsets = [(0, 0), (-60, 40), (50, -70)]
    S = np.stack([highpass(central_crop(sporco_image("monarch.png"), 32, 32, dy, dx)) for dy, dx in offsets])
    D = random_dictionary(5, 5, K, seed=1)
    opt = {"MaxMainIter": 300, "RelStopTol": 5e-3, "AutoRho": {"Enabled": True, "Period": 1}}
    solver = csc_solver("l1l1", D, 0.05, 0.5, opt, backend)
    batch = solver.solve(torch.from_numpy(S))
    assert len(set(batch.iterations.tolist())) > 1, "images should stop at different iterations"
    for i in range(len(offsets)):
        assert_batch_image_alone(solver, batch, S[i], i)
        y_sp, its, _ = sporco_solve("l1l1", D, S[i], 0.05, 0.5, opt)
        assert len(its.Iter) == int(batch.iterations[i]) < 300
        assert_stats_match(solver, batch.stats[i], its, S[i])
        assert_codes_match(batch.codes[i:i + 1], y_sp)

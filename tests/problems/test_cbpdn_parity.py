"""Parity of csc.ConvBPDN with SPORCO's admm.cbpdn.ConvBPDN (float64, CPU).

Every csc image is compared with a single-image SPORCO solve given the same options:
statistics at every iteration to 1e-8 relative, y to 1e-10 relative with the same support,
and (where the test has SPORCO's solver object) the final dual ρu to 1e-10 relative.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import csc
from csc.problems.cbpdn import SPORCO_STATS_NAMES

from ..backends_params import CPU_BACKENDS, compiled_param
from ..conftest import central_crop, highpass, needs_sporco, random_dictionary, sporco_cbpdn, sporco_image

pytestmark = needs_sporco

@pytest.fixture(autouse=True, params=CPU_BACKENDS + [compiled_param("cpu")])
def backend(request, monkeypatch):
    """Every parity test runs on each CPU back end: the torch loop, the fused numba
    kernels and the compiled (CUDA) back end through inductor's C++ code
    (``backend="auto"`` follows ``CSC_CBPDN_BACKEND``); a test may name others
    (``parametrize("backend", …, indirect=True)``)."""
    monkeypatch.setenv("CSC_CBPDN_BACKEND", request.param)
    return request.param

STATS_RTOL = 1e-8
Y_RTOL = 1e-10


def solve_both(D, s, lmbda, sporco_opt, **csc_overrides):
    """Solve with SPORCO and csc (options converted by CBPDNOptions.from_sporco)."""
    y_sp, its, sp = sporco_cbpdn(D, s, lmbda, sporco_opt)
    opts = csc.CBPDNOptions.from_sporco(sporco_opt, **csc_overrides)
    res = csc.ConvBPDN(csc.from_sporco_layout(D, "dictionary"), lmbda, opts).solve(torch.from_numpy(s))
    assert res.backend.split()[0] == os.environ["CSC_CBPDN_BACKEND"], "the solve ran another back end"
    return y_sp, its, sp, res


def assert_stats_match(stats: csc.IterationStats, its, s: np.ndarray) -> None:
    """Every statistic at every iteration to STATS_RTOL.

    The data fidelity ½‖Dx − s‖² is a cancellation: evaluated in float64 it carries an
    absolute rounding error of order ε·½‖s‖², so when it falls towards zero (λ → 0) it is
    compared to that floor (1e-15·½‖s‖², far below any modelling difference) as well.
    """
    assert len(stats) == len(its.Iter), f"iteration count {len(stats)} vs SPORCO {len(its.Iter)}"
    floor = 1e-15 * 0.5 * float(np.sum(s ** 2))
    for ours, theirs in SPORCO_STATS_NAMES.items():
        if ours == "time":
            continue
        atol = floor if ours in ("objective", "data_fidelity") else 0.0
        np.testing.assert_allclose(
            getattr(stats, ours), np.asarray(getattr(its, theirs), dtype=np.float64),
            rtol=STATS_RTOL, atol=atol, err_msg=f"statistic {ours} ({theirs})",
        )


def assert_batch_image_alone(solver, batch, image: np.ndarray, i: int):
    """Image ``i`` of a batch's result equals its single-image solve: the same iteration count,
    codes, x and u to 1e-12 and the objective at every iteration to 1e-12; returns the single
    result."""
    single = solver.solve(torch.from_numpy(image))
    assert int(batch.iterations[i]) == int(single.iterations[0])
    for field in ("codes", "x", "u"):
        a, b = getattr(batch, field)[i], getattr(single, field)[0]
        assert float((a - b).norm() / b.norm()) <= 1e-12, field
    np.testing.assert_allclose(batch.stats[i].objective, single.stats[0].objective, rtol=1e-12)
    return single


def assert_codes_match(codes: torch.Tensor, y_sp: np.ndarray) -> None:
    y = csc.to_sporco_layout(codes.numpy(), "codes").reshape(y_sp.shape)
    assert np.array_equal(y != 0, y_sp != 0), "supports differ"
    err = np.linalg.norm(y - y_sp) / max(np.linalg.norm(y_sp), 1e-300)
    assert err <= Y_RTOL, f"relative error of y: {err:.3e}"


def assert_dual_match(rho: torch.Tensor, u: torch.Tensor, sp) -> None:
    """The final unscaled dual ρu of one image (``rho`` (1,), ``u`` (1, K, H, W)) against
    SPORCO's solver ``sp`` (its ``U`` is the scaled dual u, ``rho`` its final ρ), to Y_RTOL.

    ρu does not depend on how u is scaled, so this checks that u was rescaled with every ρ
    change, the last one included."""
    ours = csc.to_sporco_layout((rho.reshape(-1, 1, 1, 1) * u).numpy(), "codes").reshape(sp.U.shape)
    ref = float(sp.rho) * sp.U
    err = np.linalg.norm(ours - ref) / max(np.linalg.norm(ref), 1e-300)
    assert err <= Y_RTOL, f"relative error of the dual ρu: {err:.3e}"


def rho_changed_at_last_iteration(stats_rho, final_rho) -> bool:
    """Whether the last iteration changed ρ: the statistics' ρ column holds the ρ each
    iteration used, so the final ρ differs from its last entry exactly then."""
    return float(final_rho) != float(np.asarray(stats_rho)[-1])


def test_reference_run(reference_problem):
    """SPEC §1 reference run, including the published iteration-49 numbers."""
    D, s = reference_problem
    opt = {"MaxMainIter": 50, "RelStopTol": 1e-3, "RelaxParam": 1.8, "AutoRho": {"RsdlRatio": 1.05}}
    y_sp, its, sp, res = solve_both(D, s, 0.05, opt)
    stats = res.stats[0]
    assert_stats_match(stats, its, s)
    assert_codes_match(res.codes, y_sp)
    # The published figures of SPEC §1 (SPORCO 0.2.2, float64).
    assert stats.objective[49] == pytest.approx(7.1114702090, rel=1e-7)
    assert stats.data_fidelity[49] == pytest.approx(1.4554537581, rel=1e-6)
    assert stats.l1[49] == pytest.approx(113.12032902, rel=1e-7)
    assert stats.rho[49] == pytest.approx(4.54983757, rel=1e-6)
    assert int((res.codes != 0).sum()) == 4995
    assert res.codes.numel() == 2_359_296
    assert float(res.rho) == pytest.approx(float(sp.rho), rel=1e-12)
    assert_dual_match(res.rho, res.u, sp)


@pytest.fixture(scope="module")
def small():
    """A 40×48 natural image (about 2% nonzero codes at λ = 0.1) and 16 random 8×8 kernels."""
    s = highpass(central_crop(sporco_image("monarch.png"), 40, 48))
    return random_dictionary(8, 8, 16, seed=3), s


BASE = {"MaxMainIter": 60, "RelStopTol": 0.0}

VARIANTS = {
    "defaults": {},
    "relax-1.0": {"RelaxParam": 1.0},
    "auto-rho-off": {"AutoRho": {"Enabled": False}},
    "fixed-rho": {"rho": 3.7, "AutoRho": {"Enabled": False}},
    "rho-given-auto": {"rho": 0.8},
    "period-3-no-autoscaling": {"AutoRho": {"Period": 3, "AutoScaling": False, "Scaling": 2.0, "RsdlRatio": 10.0}},
    "rsdl-target": {"AutoRho": {"RsdlTarget": 2.5}},
    "std-residuals": {"AutoRho": {"StdResiduals": True}},
    "nonneg": {"NonNegCoef": True},
    "no-boundary-cross": {"NoBndryCross": True},
    "nonneg-and-boundary": {"NonNegCoef": True, "NoBndryCross": True},
    "abs-stop-tol": {"AbsStopTol": 1e-3, "RelStopTol": 1e-4, "MaxMainIter": 400},
    "aux-var-obj": {"AuxVarObj": True},
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variants(small, name):
    D, s = small
    opt = {**BASE, **VARIANTS[name]}
    y_sp, its, sp, res = solve_both(D, s, 0.1, opt)
    assert_stats_match(res.stats[0], its, s)
    assert_codes_match(res.codes, y_sp)
    assert_dual_match(res.rho, res.u, sp)


@pytest.mark.parametrize("backend", CPU_BACKENDS + [compiled_param("cpu")], indirect=True)
def test_dual_when_rho_changes_at_the_last_iteration(small, backend):
    """The last iteration (32 of the defaults) changes ρ: u must then leave the solve divided
    by that iteration's factor (the numba and compiled back ends divide u lazily, at the next
    y-step or when the image retires), so that ρu is SPORCO's."""
    D, s = small
    y_sp, its, sp, res = solve_both(D, s, 0.1, {"MaxMainIter": 32, "RelStopTol": 0.0})
    assert res.backend.split()[0] == backend
    assert rho_changed_at_last_iteration(its.Rho, sp.rho), "SPORCO's last iteration must change ρ"
    assert rho_changed_at_last_iteration(res.stats[0].rho, res.rho[0]), "the last iteration must change ρ"
    assert float(res.rho) == pytest.approx(float(sp.rho), rel=1e-12)
    assert_stats_match(res.stats[0], its, s)
    assert_codes_match(res.codes, y_sp)
    assert_dual_match(res.rho, res.u, sp)


def test_l1_weight_per_kernel_and_per_coefficient(small):
    D, s = small
    rng = np.random.RandomState(7)
    per_kernel = rng.uniform(0.2, 2.0, size=(1, 1, 1, 1, 16))  # SPORCO layout
    y_sp, its, sp, res = solve_both(D, s, 0.1, {**BASE, "L1Weight": per_kernel})
    assert_stats_match(res.stats[0], its, s)
    assert_codes_match(res.codes, y_sp)
    assert_dual_match(res.rho, res.u, sp)
    per_coef = rng.uniform(0.0, 2.0, size=(40, 48, 1, 1, 16))  # SPORCO layout
    y_sp, its, sp, res = solve_both(D, s, 0.1, {**BASE, "L1Weight": per_coef})
    assert_stats_match(res.stats[0], its, s)
    assert_codes_match(res.codes, y_sp)
    assert_dual_match(res.rho, res.u, sp)


def test_early_stop_same_iteration_count(small):
    D, s = small
    opt = {"MaxMainIter": 1000, "RelStopTol": 1e-3}
    y_sp, its, sp, res = solve_both(D, s, 0.1, opt)
    assert len(its.Iter) < 1000, "the test problem must stop early"
    assert int(res.iterations) == len(its.Iter)
    assert_stats_match(res.stats[0], its, s)
    assert_codes_match(res.codes, y_sp)
    assert_dual_match(res.rho, res.u, sp)


@pytest.mark.parametrize(
    "shape,ksize",
    [((37, 53), (8, 8)), ((45, 31), (7, 7)), ((33, 33), (5, 9)), ((64, 24), (6, 3))],
    ids=["odd-even", "odd-kernel", "mixed-kernel", "tall"],
)
def test_sizes(shape, ksize):
    s = highpass(central_crop(sporco_image("monarch.png"), *shape))
    D = random_dictionary(*ksize, 12, seed=11)
    y_sp, its, sp, res = solve_both(D, s, 0.08, {"MaxMainIter": 40, "RelStopTol": 0.0, "NoBndryCross": True})
    assert_stats_match(res.stats[0], its, s)
    assert_codes_match(res.codes, y_sp)
    assert_dual_match(res.rho, res.u, sp)


@pytest.mark.parametrize("lmbda", [0.0, 0.01, 0.3, 1.5])
def test_several_lambdas(small, lmbda):
    D, s = small
    y_sp, its, sp, res = solve_both(D, s, lmbda, {"MaxMainIter": 40, "RelStopTol": 0.0})
    assert_stats_match(res.stats[0], its, s)
    assert_codes_match(res.codes, y_sp)
    assert_dual_match(res.rho, res.u, sp)


def test_initial_y_and_u(small):
    D, s = small
    rng = np.random.RandomState(5)
    Y0 = rng.randn(40, 48, 1, 1, 16) * (rng.rand(40, 48, 1, 1, 16) < 0.05)
    U0 = 0.01 * rng.randn(40, 48, 1, 1, 16)
    y_sp, its, sp = sporco_cbpdn(D, s, 0.1, {**BASE, "Y0": Y0, "U0": U0})
    res = csc.ConvBPDN(csc.from_sporco_layout(D, "dictionary"), 0.1, csc.CBPDNOptions.from_sporco(BASE)).solve(
        torch.from_numpy(s),
        y0=torch.from_numpy(csc.from_sporco_layout(Y0, "codes")),
        u0=torch.from_numpy(csc.from_sporco_layout(U0, "codes")),
    )
    assert_stats_match(res.stats[0], its, s)
    assert_codes_match(res.codes, y_sp)
    assert_dual_match(res.rho, res.u, sp)


def test_batch_equals_single_images():
    """Different images in one batch: each gets its single-image answer (own ρ, stopping)."""
    offsets = [(0, 0), (-60, 40), (50, -70), (90, 100)]
    S = np.stack([highpass(central_crop(sporco_image("monarch.png"), 48, 56, dy, dx)) for dy, dx in offsets])
    D = csc.from_sporco_layout(random_dictionary(8, 8, 16, seed=1), "dictionary")
    opts = csc.CBPDNOptions(max_iter=300, rel_stop_tol=2e-3)
    solver = csc.ConvBPDN(torch.from_numpy(D), 0.05, opts)
    batch = solver.solve(torch.from_numpy(S))
    assert len(set(batch.iterations.tolist())) > 1, "images should stop at different iterations"
    for i in range(len(offsets)):
        single = assert_batch_image_alone(solver, batch, S[i], i)
        assert float(batch.rho[i]) == pytest.approx(float(single.rho[0]), rel=1e-12)
        # and the batch agrees with SPORCO solving that image alone
        y_sp, its, sp = sporco_cbpdn(csc.to_sporco_layout(D, "dictionary"), S[i], 0.05,
                                    {"MaxMainIter": 300, "RelStopTol": 2e-3})
        assert len(its.Iter) == int(batch.iterations[i])
        assert_codes_match(batch.codes[i:i + 1], y_sp)
        assert_dual_match(batch.rho[i:i + 1], batch.u[i:i + 1], sp)


def test_float32_close_to_float64(reference_problem):
    D, s = reference_problem
    Dc = torch.from_numpy(csc.from_sporco_layout(D, "dictionary").copy())
    opts = csc.CBPDNOptions(max_iter=50, rsdl_ratio=1.05)
    r64 = csc.ConvBPDN(Dc, 0.05, opts).solve(torch.from_numpy(s))
    r32 = csc.ConvBPDN(Dc.float(), 0.05, opts).solve(torch.from_numpy(s).float())
    assert r32.codes.dtype == torch.float32
    err = float((r32.codes.double() - r64.codes).norm() / r64.codes.norm())
    assert err <= 1e-4, f"float32 vs float64 relative error {err:.2e}"
    for field in ("objective", "data_fidelity", "l1", "rho", "primal_residual", "dual_residual"):
        a, b = getattr(r32.stats[0], field)[1:], getattr(r64.stats[0], field)[1:]
        np.testing.assert_allclose(a, b, rtol=1e-4, err_msg=field)

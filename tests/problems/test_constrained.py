"""csc.ConvBPDNProjL1 and csc.ConvMinL1InL2Ball: parity with SPORCO 0.2.2's admm.cbpdn classes of
the same names (float64, each CPU back end: numba has no kernel for their prox objects and runs
the torch loop, saying so), batches equal to each image alone, float32, bad input; and their
prox objects (csc.core.prox.project_l1_ball, L2BallData) against sporco.prox.

As test_variants_parity: every csc image is compared with a single-image SPORCO solve given the
same options: every statistic of SPORCO's table at every iteration to 1e-8 relative, y to 1e-10
relative with the same support, the final unscaled dual ρu to 1e-10. Two statistics that
vanish in exact arithmetic get an absolute floor of rounding size besides: the data fidelity
½‖Dx − s‖² (1e-15·½‖s‖², as test_cbpdn_parity: x fits s closely when ρ falls), and the
constraint measure Cnstr, the distance to the ball of radius γ or ε (1e-15 times the radius):
with AuxVarObj it is evaluated on y, which lies in the ball by construction, and is 0 or a
rounding residue such as 8e-18; on x near convergence ConvMinL1InL2Ball's is ‖Dx − s‖ − ε,
a difference of nearly equal numbers (1e-9 at ε = 0.05: the 1e-17 by which two FFTs' ‖Dx − s‖
differ is 1e-8 of it). 20×20 images, 5 kernels of 5×5.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import csc
from csc.core.prox import L2BallData, project_l1_ball

from ..backends_params import CPU_BACKENDS
from ..conftest import central_crop, highpass, needs_sporco, random_dictionary, sporco_image
from .test_cbpdn_parity import assert_batch_image_alone
from .test_variants_parity import assert_codes_match

STATS_RTOL = 1e-8
Y_RTOL = 1e-10
K = 5
NOTE = {"projl1": "torch (numba has no kernel for L1BallProjection)",
        "minl1": "torch (numba has no kernel for L2BallData)"}


@pytest.fixture(params=CPU_BACKENDS)
def backend(request):
    return request.param


@pytest.fixture(scope="module")
def image():
    """20×20 crop of a natural image, high-passed, and 5 random 5×5 kernels."""
    return random_dictionary(5, 5, K, seed=4), highpass(central_crop(sporco_image("monarch.png"), 20, 20))


def sporco_solve(kind: str, D, s, param, opt):
    """SPORCO's ConvBPDNProjL1 (γ = ``param``) or ConvMinL1InL2Ball (ε = ``param``) on one image."""
    from sporco.admm import cbpdn as sp

    cls = sp.ConvBPDNProjL1 if kind == "projl1" else sp.ConvMinL1InL2Ball
    solver = cls(D, s, param, opt=cls.Options({"Verbose": False, **opt}))
    return solver.solve(), solver.getitstat(), solver


def csc_solver(kind: str, D, param, opt, backend, dtype=torch.float64):
    Dc = torch.from_numpy(csc.from_sporco_layout(D, "dictionary").copy()).to(dtype)
    if kind == "projl1":
        return csc.ConvBPDNProjL1(Dc, param, csc.ProjL1Options.from_sporco(opt, backend=backend))
    return csc.ConvMinL1InL2Ball(Dc, param, csc.MinL1InL2BallOptions.from_sporco(opt, backend=backend))


def assert_stats_match(solver, stats, its, s: np.ndarray, param: float) -> float:
    """Every statistic of SPORCO's table at every iteration to STATS_RTOL (the floors of the
    module docstring); returns the largest relative difference seen (for the report)."""
    assert len(stats) == len(its.Iter), f"iteration count {len(stats)} vs SPORCO {len(its.Iter)}"
    floors = {"data_fidelity": 1e-15 * 0.5 * float(np.sum(s ** 2)), "constraint": 1e-15 * param}
    if isinstance(solver, csc.ConvBPDNProjL1):
        floors["objective"] = floors["data_fidelity"]
    worst = 0.0
    for ours, theirs in solver.sporco_stats_names.items():
        if ours == "time":
            continue
        a, b = np.asarray(getattr(stats, ours), dtype=np.float64), np.asarray(getattr(its, theirs), dtype=np.float64)
        np.testing.assert_allclose(a, b, rtol=STATS_RTOL, atol=floors.get(ours, 0.0),
                                   err_msg=f"statistic {ours} ({theirs})")
        big = np.abs(b) > floors.get(ours, 0.0)
        if big.any():
            worst = max(worst, float(np.max(np.abs(a - b)[big] / np.abs(b)[big])))
    return worst


def assert_dual_match(kind: str, res, sp) -> None:
    """The final unscaled dual ρu (of block 1 for the two-block problem) against SPORCO's."""
    U = sp.U if kind == "projl1" else sp.block_sep1(sp.U)
    ref = float(sp.rho) * U
    ours = csc.to_sporco_layout((res.rho.reshape(-1, 1, 1, 1) * res.u).numpy(), "codes").reshape(ref.shape)
    err = np.linalg.norm(ours - ref) / max(np.linalg.norm(ref), 1e-300)
    assert err <= Y_RTOL, f"relative error of the dual ρu: {err:.3e}"


def check(kind, D, s, param, opt, backend, **solve):
    y_sp, its, sp = sporco_solve(kind, D, s, param, opt)
    solver = csc_solver(kind, D, param, opt, backend)
    res = solver.solve(torch.from_numpy(s), **solve)
    assert res.backend == ("torch" if backend == "torch" else NOTE[kind])
    assert_stats_match(solver, res.stats[0], its, s, param)
    assert_codes_match(res.codes, y_sp)
    assert_dual_match(kind, res, sp)
    assert float(res.rho) == pytest.approx(float(sp.rho), rel=1e-10)
    return res, its


BASE = {"MaxMainIter": 40, "RelStopTol": 0.0}


# ------------------------------------------------------------------------- ConvBPDNProjL1
#: option sets, and γ as a fraction of the unconstrained ℓ1 norm's scale (the constraint is active)
PROJL1_VARIANTS = {
    "defaults": ({}, 1.0),
    "small-gamma": ({}, 0.3),
    "nonneg-and-boundary": ({"NonNegCoef": True, "NoBndryCross": True}, 1.0),
    "rho-given-period-3": ({"rho": 5.0, "AutoRho": {"Period": 3}}, 1.0),
    "fixed-rho": ({"rho": 0.5, "AutoRho": {"Enabled": False}}, 1.0),
    "relax-1.0": ({"RelaxParam": 1.0}, 1.0),
    "aux-var-obj": ({"AuxVarObj": True}, 1.0),
    "rsdl-target-and-no-autoscaling": ({"AutoRho": {"RsdlTarget": 2.0, "AutoScaling": False, "Scaling": 2.0}}, 1.0),
    "std-residuals-abs-tol": ({"AutoRho": {"StdResiduals": True}, "AbsStopTol": 1e-5}, 1.0),
}


@needs_sporco
@pytest.mark.parametrize("name", list(PROJL1_VARIANTS))
def test_projl1_parity(image, backend, name):
    D, s = image
    opt, gamma = PROJL1_VARIANTS[name]
    res, its = check("projl1", D, s, gamma, {**BASE, **opt}, backend)
    assert float(res.codes.abs().sum()) <= gamma * (1 + 1e-12), "y lies in the ℓ1 ball"
    if name != "fixed-rho":
        assert len(set(res.stats[0].rho.tolist())) > 1, "ρ should change"


@needs_sporco
def test_projl1_initial_y_keeps_u_zero(image, backend):
    """With Y0 given SPORCO's ConvBPDNProjL1.uinit leaves U at 0 (ConvBPDN's is λ/ρ·sign(Y0))."""
    D, s = image
    rng = np.random.RandomState(5)
    Y0 = rng.randn(20, 20, 1, 1, K) * (rng.rand(20, 20, 1, 1, K) < 0.05)
    y_sp, its, sp = sporco_solve("projl1", D, s, 1.0, {**BASE, "Y0": Y0})
    solver = csc_solver("projl1", D, 1.0, BASE, backend)
    res = solver.solve(torch.from_numpy(s), y0=torch.from_numpy(csc.from_sporco_layout(Y0, "codes")))
    assert_stats_match(solver, res.stats[0], its, s, 1.0)
    assert_codes_match(res.codes, y_sp)
    assert_dual_match("projl1", res, sp)


@needs_sporco
def test_projl1_multichannel_dictionary(backend):
    """A colour dictionary (K, C, kh, kw): one ball over the maps the channels share (SPORCO's
    axes N, C, M with C = 1 for X when Cd = C)."""
    from sporco.admm import cbpdn as sp

    from .test_colour import colour_crop, colour_dictionary

    s, D = colour_crop(20), colour_dictionary(K=K, k=5)
    opt = {**BASE, "NonNegCoef": True}
    ref = sp.ConvBPDNProjL1(csc.to_sporco_layout(D, "dictionary"), np.ascontiguousarray(np.moveaxis(s, 0, -1)), 0.5,
                            sp.ConvBPDNProjL1.Options({"Verbose": False, **opt}), dimK=0)
    ref.solve()
    solver = csc.ConvBPDNProjL1(torch.from_numpy(D), 0.5, csc.ProjL1Options.from_sporco(opt, backend=backend))
    res = solver.solve(torch.from_numpy(s))
    assert_stats_match(solver, res.stats[0], ref.getitstat(), s, 0.5)
    assert_codes_match(res.codes, ref.Y)


@pytest.mark.parametrize("kind", ["projl1", "minl1"])
def test_frozen_images_between_host_reads(kind):
    """The torch loop reading the host every 4 iterations (images that converge meanwhile are
    frozen on the device; the two-block back end retires at once whatever the option) gives the
    answers of reading it every iteration."""
    offsets = [(0, 0), (-60, 40), (50, -70)]
    S = torch.from_numpy(np.stack([highpass(central_crop(sporco_image("monarch.png"), 20, 20, dy, dx))
                                   for dy, dx in offsets]))
    D = random_dictionary(5, 5, K, seed=1)
    param, opt = (1.0, {"MaxMainIter": 300, "RelStopTol": 1e-2}) if kind == "projl1" else \
        (0.05, {"MaxMainIter": 300, "RelStopTol": 5e-3})
    every = csc_solver(kind, D, param, opt, "torch").solve(S)
    solver = csc_solver(kind, D, param, opt, "torch")
    solver.options = solver.options.replace(sync_interval=4)
    sparse = solver.solve(S)
    assert len(set(every.iterations.tolist())) > 1
    assert torch.equal(every.iterations, sparse.iterations)
    for field in ("codes", "x", "u", "rho"):
        assert torch.equal(getattr(every, field), getattr(sparse, field)), field
    for a, b in zip(every.stats, sparse.stats):
        np.testing.assert_array_equal(a.objective, b.objective)


# ---------------------------------------------------------------------- ConvMinL1InL2Ball
#: option sets, and ε as a fraction of ‖s‖ (ε ≥ ‖s‖ would make x = 0 the answer); 80 iterations:
#: the ℓ1 threshold 1/ρ starts at 1, far above this image's coefficients, and codes appear as
#: the adaptive ρ grows (every 10 iterations by default)
MINL1_BASE = {"MaxMainIter": 80, "RelStopTol": 0.0}
MINL1_VARIANTS = {
    "defaults": ({}, 0.3),
    "large-epsilon": ({}, 0.7),
    "nonneg-and-boundary": ({"NonNegCoef": True, "NoBndryCross": True}, 0.3),
    "rho-given": ({"rho": 5.0}, 0.3),
    "auto-rho-period-1": ({"AutoRho": {"Period": 1}}, 0.3),
    "fixed-rho": ({"rho": 50.0, "AutoRho": {"Enabled": False}}, 0.3),
    "relax-1.0": ({"RelaxParam": 1.0}, 0.3),
    "aux-var-obj": ({"AuxVarObj": True}, 0.3),
    "l1-weight-per-kernel": ({"L1Weight": np.linspace(0.5, 2.0, K).reshape(1, 1, 1, 1, K)}, 0.3),
    "l1-weight-per-coefficient": ({"L1Weight": np.random.RandomState(3).uniform(0.0, 2.0, (20, 20, 1, 1, K))}, 0.3),
    "std-residuals-abs-tol": ({"AutoRho": {"StdResiduals": True}, "AbsStopTol": 1e-5}, 0.3),
}


@needs_sporco
@pytest.mark.parametrize("name", list(MINL1_VARIANTS))
def test_minl1_parity(image, backend, name):
    D, s = image
    opt, frac = MINL1_VARIANTS[name]
    res, _ = check("minl1", D, s, frac * float(np.linalg.norm(s)), {**MINL1_BASE, **opt}, backend)
    assert int((res.codes != 0).sum()) > 50, "a non-trivial solution"


# --------------------------------------------------------------------------------- both
@needs_sporco
@pytest.mark.parametrize("kind", ["projl1", "minl1"])
def test_early_stop_same_iteration_count(image, backend, kind):
    D, s = image
    param = 1.0 if kind == "projl1" else 0.3 * float(np.linalg.norm(s))
    opt = {"MaxMainIter": 500, "RelStopTol": 1e-2 if kind == "projl1" else 5e-3}
    res, its = check(kind, D, s, param, opt, backend)
    assert len(its.Iter) < 500, "the test problem must stop early"
    assert int(res.iterations) == len(its.Iter)


@needs_sporco
@pytest.mark.parametrize("kind", ["projl1", "minl1"])
def test_batch_equals_each_image_alone(backend, kind):
    """Different images in one batch: each its single-image answer (own ρ, own ball, own stopping)
    to 1e-12, and SPORCO's."""
    offsets = [(0, 0), (-60, 40), (50, -70)]
    S = np.stack([highpass(central_crop(sporco_image("monarch.png"), 20, 20, dy, dx)) for dy, dx in offsets])
    D = random_dictionary(5, 5, K, seed=1)
    param = 1.0 if kind == "projl1" else 0.05
    opt = {"MaxMainIter": 300, "RelStopTol": 1e-2 if kind == "projl1" else 5e-3}
    solver = csc_solver(kind, D, param, opt, backend)
    batch = solver.solve(torch.from_numpy(S))
    assert len(set(batch.iterations.tolist())) > 1, "images should stop at different iterations"
    for i in range(len(offsets)):
        assert_batch_image_alone(solver, batch, S[i], i)
        y_sp, its, _ = sporco_solve(kind, D, S[i], param, opt)
        assert len(its.Iter) == int(batch.iterations[i]) < 300
        assert_stats_match(solver, batch.stats[i], its, S[i], param)
        assert_codes_match(batch.codes[i:i + 1], y_sp)


@pytest.mark.parametrize("kind", ["projl1", "minl1"])
def test_float32_close_to_float64(image, backend, kind):
    D, s = image
    param = 1.0 if kind == "projl1" else 0.3 * float(np.linalg.norm(s))
    opt = {"MaxMainIter": 40}
    r64 = csc_solver(kind, D, param, opt, backend).solve(torch.from_numpy(s))
    r32 = csc_solver(kind, D, param, opt, backend, torch.float32).solve(torch.from_numpy(s).float())
    assert r32.codes.dtype == torch.float32 and r32.backend == r64.backend
    err = float((r32.codes.double() - r64.codes).norm() / r64.codes.norm())
    assert err <= 1e-4, f"float32 vs float64 relative error {err:.2e}"
    field = "data_fidelity" if kind == "projl1" else "l1"
    for name in ("objective", field, "rho"):
        np.testing.assert_allclose(getattr(r32.stats[0], name)[1:], getattr(r64.stats[0], name)[1:],
                                   rtol=1e-4, err_msg=name)


@pytest.mark.parametrize("kind, arg", [("projl1", "gamma"), ("minl1", "epsilon")])
@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf"), -float("inf")])
def test_bad_radius(kind, arg, value):
    D = random_dictionary(5, 5, K)
    with pytest.raises(ValueError, match=f"^{arg}: expected a finite value >= 0"):
        csc_solver(kind, D, value, {}, "torch")


def test_bad_options():
    D = torch.from_numpy(csc.from_sporco_layout(random_dictionary(5, 5, K), "dictionary").copy())
    with pytest.raises(TypeError, match="ProjL1Options"):
        csc.ConvBPDNProjL1(D, 1.0, csc.CBPDNOptions())
    with pytest.raises(TypeError, match="MinL1InL2BallOptions"):
        csc.ConvMinL1InL2Ball(D, 1.0, csc.MaskDcplOptions())
    with pytest.raises(ValueError, match="^l1_weight: ConvBPDNProjL1 has no ℓ1 term"):
        csc.ProjL1Options(l1_weight=2.0)
    with pytest.raises(ValueError, match="^L1Weight"):
        csc.ProjL1Options.from_sporco({"L1Weight": np.ones(K)})
    with pytest.raises(ValueError, match="GradWeight"):
        csc.MinL1InL2BallOptions.from_sporco({"GradWeight": 1.0})


def test_defaults_are_sporcos():
    """ρ₀, ξ and the adaptive-ρ settings of SPORCO's two Options classes."""
    p, m = csc.ProjL1Options(), csc.MinL1InL2BallOptions()
    assert (p.rho, p.rsdl_target, p.relax, p.auto_rho, p.rho_period, p.rho_scaling, p.rsdl_ratio, p.auto_scaling) \
        == (1.0, 1.0, 1.8, True, 1, 1000.0, 1.2, True)
    assert (m.rho, m.rsdl_target, m.relax, m.auto_rho, m.rho_period, m.rho_scaling, m.rsdl_ratio, m.auto_scaling) \
        == (1.0, 1.0, 1.8, True, 10, 1000.0, 1.2, True)
    assert csc.ProjL1Options(rho=None, rsdl_target=None).rho == 1.0


@needs_sporco
def test_sporco_option_defaults_match():
    from sporco.admm import cbpdn as sp

    for cls, ours in ((sp.ConvBPDNProjL1, csc.ProjL1Options()), (sp.ConvMinL1InL2Ball, csc.MinL1InL2BallOptions())):
        o = cls.Options()
        ar = o["AutoRho"]
        assert (o["rho"] or 1.0, ar["RsdlTarget"] or 1.0, o["RelaxParam"], ar["Enabled"], ar["Period"],
                ar["Scaling"], ar["RsdlRatio"], ar["AutoScaling"], o["MaxMainIter"], o["RelStopTol"]) == \
            (ours.rho, ours.rsdl_target, ours.relax, ours.auto_rho, ours.rho_period, ours.rho_scaling,
             ours.rsdl_ratio, ours.auto_scaling, ours.max_iter, ours.rel_stop_tol), cls.__name__


# ------------------------------------------------------------------------ the prox objects
@needs_sporco
@pytest.mark.parametrize("case", ["inside", "ties", "zero-radius"])
def test_project_l1_ball_is_sporcos(case):
    """The cases tests/core/test_prox.py leaves out: inside the ball (v itself, bit for bit),
    tied magnitudes, radius 0."""
    from sporco.prox import proj_l1

    rng = np.random.RandomState(0)
    v = rng.randn(3, 4, 6, 7)
    gamma = 5.0
    if case == "inside":
        gamma = float(np.abs(v).sum((1, 2, 3)).max()) + 1.0
    elif case == "ties":
        v = np.round(v * 2) / 2
    elif case == "zero-radius":
        gamma = 0.0
    ours = project_l1_ball(torch.from_numpy(v), torch.full((3,), gamma, dtype=torch.float64)).numpy()
    for i in range(3):
        ref = proj_l1(v[i][..., None], gamma, axis=(0, 1, 2))[..., 0]
        np.testing.assert_allclose(ours[i], ref, rtol=1e-14, atol=1e-15)
        assert np.abs(ours[i]).sum() <= gamma * (1 + 1e-14) + 1e-300
    if case == "inside":
        assert np.array_equal(ours, v)


@needs_sporco
def test_l2_ball_data_is_sporcos():
    from sporco.prox import proj_l2

    rng = np.random.RandomState(1)
    v = rng.randn(3, 1, 8, 9)
    v[1] *= 1e-3  # inside the ball
    term = L2BallData(1.5)
    ours = term.step(torch.from_numpy(v), torch.ones(3, 1, 1, 1, dtype=torch.float64)).numpy()
    for i in range(3):
        ref = proj_l2(v[i, 0], 1.5, axis=(0, 1))
        np.testing.assert_array_equal(ours[i, 0], ref)
        np.testing.assert_allclose(float(term.value(torch.from_numpy(v[i:i + 1]))), np.linalg.norm(ref - v[i, 0]),
                                   rtol=1e-14)
    assert term.weight == 0.0 and float(term.value(torch.from_numpy(v[1:2]))) == 0.0


def test_exports():
    from csc.problems import constrained

    assert csc.ConvBPDNProjL1 is constrained.ConvBPDNProjL1
    assert csc.ConvMinL1InL2Ball is constrained.ConvMinL1InL2Ball
    assert csc.ProjL1Options is constrained.ProjL1Options
    assert csc.MinL1InL2BallOptions is constrained.MinL1InL2BallOptions

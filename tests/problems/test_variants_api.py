"""API and argument checks of csc.ConvElasticNet and csc.ConvBPDNGradReg (their SPORCO parity is
in test_variants_parity.py), and mathematical properties checked independently of csc and
SPORCO: the returned objective is the problem's, recomputed from the codes in the spatial
domain, and the two back ends agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import csc

from ..backends_params import CPU_BACKENDS, skip_unless_numba

K, H, W = 4, 20, 18


@pytest.fixture(scope="module")
def D():
    rng = np.random.RandomState(3)
    d = rng.randn(K, 5, 5)
    return torch.from_numpy(d / np.sqrt((d ** 2).sum((1, 2), keepdims=True)))


@pytest.fixture(scope="module")
def S():
    return torch.from_numpy(np.random.RandomState(4).randn(2, H, W) * 0.3)


# ------------------------------------------------------------------------ errors
@pytest.mark.parametrize("cls", [csc.ConvElasticNet, csc.ConvBPDNGradReg])
def test_mu_must_be_a_nonnegative_number(D, cls):
    with pytest.raises(ValueError, match="mu: expected a finite value >= 0"):
        cls(D, 0.1, -0.5)
    with pytest.raises(ValueError, match="mu"):
        cls(D, 0.1, float("nan"))
    with pytest.raises(TypeError, match="mu: expected a number"):
        cls(D, 0.1, "large")


def test_grad_weight_shape_and_values(D):
    with pytest.raises(ValueError, match=r"grad_weight: expected a scalar or one weight per kernel \(K=4,\)"):
        csc.ConvBPDNGradReg(D, 0.1, 1.0, csc.GradRegOptions(grad_weight=np.ones(K + 1)))
    with pytest.raises(ValueError, match="grad_weight: expected a scalar or one weight per kernel"):
        csc.GradRegOptions(grad_weight=np.ones((1, K)))
    with pytest.raises(ValueError, match="grad_weight: expected finite weights >= 0"):
        csc.GradRegOptions(grad_weight=[1.0, -1.0, 0.0, 1.0])
    with pytest.raises(TypeError, match="grad_weight: expected a number or a"):
        csc.GradRegOptions(grad_weight="ones")
    # accepted: scalar, (K,), (1,), tensors
    for w in (2.0, np.arange(K, dtype=float), [0.5], torch.ones(K)):
        csc.ConvBPDNGradReg(D, 0.1, 1.0, csc.GradRegOptions(grad_weight=w))


def test_variants_refuse_options_they_do_not_take(D):
    with pytest.raises(TypeError, match="options: ConvElasticNet takes CBPDNOptions, got GradRegOptions"):
        csc.ConvElasticNet(D, 0.1, 1.0, csc.GradRegOptions())
    with pytest.raises(TypeError, match="options: ConvBPDN takes CBPDNOptions, got GradRegOptions"):
        csc.ConvBPDN(D, 0.1, csc.GradRegOptions())
    with pytest.raises(TypeError, match="options: ConvBPDNGradReg takes GradRegOptions, got CBPDNOptions"):
        csc.ConvBPDNGradReg(D, 0.1, 1.0, csc.CBPDNOptions())
    with pytest.raises(ValueError, match="GradWeight: an option of SPORCO's ConvBPDNGradReg"):
        csc.CBPDNOptions.from_sporco({"GradWeight": 1.0})
    with pytest.raises(ValueError, match="mu: SPORCO option not taken here: SPORCO's mu is an argument"):
        csc.GradRegOptions.from_sporco({"mu": 0.5})
    with pytest.raises(ValueError, match="Foo: unknown SPORCO ConvBPDNGradReg option"):
        csc.GradRegOptions.from_sporco({"Foo": 1})


def test_learners_refuse_a_variants_options():
    with pytest.raises(TypeError, match="cbpdn: expected CBPDNOptions or MaskDcplOptions, got GradRegOptions"):
        csc.DictLearnOptions(cbpdn=csc.GradRegOptions(max_iter=1))
    with pytest.raises(TypeError, match="cbpdn: expected CBPDNOptions, got GradRegOptions"):
        csc.OnlineDictLearnOptions(cbpdn=csc.GradRegOptions())


def test_from_sporco_names():
    o = csc.GradRegOptions.from_sporco({"GradWeight": np.array([0.0, 1.0]), "MaxMainIter": 7,
                                        "AutoRho": {"Enabled": False}})
    assert isinstance(o, csc.GradRegOptions) and o.max_iter == 7 and not o.auto_rho
    np.testing.assert_array_equal(o.grad_weight, [0.0, 1.0])
    assert csc.GradRegOptions().grad_weight == 1.0
    assert type(csc.CBPDNOptions.from_sporco({"MaxMainIter": 3})) is csc.CBPDNOptions
    assert o.replace(grad_weight=2.0).grad_weight == 2.0


# ------------------------------------------------------------ results and statistics
def _objective_terms(res, D, S, lmbda):
    """Data fidelity, ℓ1, ½‖x‖² and ½Σ‖∇x‖² of each image's x, in the spatial domain."""
    x = res.x
    rec = csc.core.ops.synthesis(D, x)
    fid = 0.5 * (rec - S).square().sum((-2, -1))
    l1 = x.abs().sum((1, 2, 3))
    l2 = 0.5 * x.square().sum((1, 2, 3))
    grad = (x - x.roll(1, -2)).square().sum((-2, -1)) + (x - x.roll(1, -1)).square().sum((-2, -1))
    return fid, l1, l2, 0.5 * grad


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_elastic_net_statistics_are_its_objective(D, S, backend):
    mu, lmbda = 0.7, 0.1
    res = csc.ConvElasticNet(D, lmbda, mu, csc.CBPDNOptions(max_iter=25, backend=backend)).solve(S)
    assert isinstance(res.stats[0], csc.ElasticNetStats)
    fid, l1, l2, _ = _objective_terms(res, D, S, lmbda)
    for i, st in enumerate(res.stats):
        assert st.l2[-1] == pytest.approx(float(l2[i]), rel=1e-12)
        assert st.data_fidelity[-1] == pytest.approx(float(fid[i]), rel=1e-10)
        assert st.objective[-1] == pytest.approx(float(fid[i] + lmbda * l1[i] + mu * l2[i]), rel=1e-12)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_grad_reg_statistics_are_its_objective(D, S, backend):
    mu, lmbda = 0.7, 0.1
    w = np.array([0.0, 1.0, 2.0, 0.5])
    opts = csc.GradRegOptions(max_iter=25, grad_weight=w, backend=backend)
    res = csc.ConvBPDNGradReg(D, lmbda, mu, opts).solve(S)
    assert isinstance(res.stats[0], csc.GradRegStats)
    fid, l1, _, _ = _objective_terms(res, D, S, lmbda)
    x = res.x
    g = (x - x.roll(1, -2)).square().sum((-2, -1)) + (x - x.roll(1, -1)).square().sum((-2, -1))
    grad = 0.5 * (torch.from_numpy(w) * g).sum(1)
    for i, st in enumerate(res.stats):
        assert st.grad[-1] == pytest.approx(float(grad[i]), rel=1e-12)
        assert st.objective[-1] == pytest.approx(float(fid[i] + lmbda * l1[i] + mu * grad[i]), rel=1e-12)


@pytest.mark.parametrize("cls", ["enet", "grad", "l1l1"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_back_ends_agree(D, S, cls, dtype):
    skip_unless_numba()
    out = []
    for be in ("torch", "numba"):
        if cls == "enet":
            solver = csc.ConvElasticNet(D.to(dtype), 0.1, 0.5, csc.CBPDNOptions(max_iter=30, backend=be))
        elif cls == "l1l1":
            solver = csc.ConvL1L1Grd(D.to(dtype), 0.1, 0.5, csc.L1L1GrdOptions(
                max_iter=30, auto_rho=True, rho_period=1, rsdl_ratio=1.2, backend=be, nonneg=True))
        else:
            solver = csc.ConvBPDNGradReg(D.to(dtype), 0.1, 0.5, csc.GradRegOptions(
                max_iter=30, grad_weight=np.array([1.0, 0.0, 2.0, 1.0]), backend=be))
        out.append(solver.solve(S.to(dtype)))
    a, b = out
    tol = 1e-12 if dtype == torch.float64 else 1e-4
    assert a.codes.dtype == dtype
    assert float((a.codes - b.codes).norm() / b.codes.norm()) <= tol
    np.testing.assert_allclose(a.stats[0].objective, b.stats[0].objective, rtol=tol)


def test_exports_and_sporco_names():
    for name in ("ConvElasticNet", "ConvBPDNGradReg", "GradRegOptions"):
        assert name in csc.__all__
    for name in ("ConvL1L1Grd", "L1L1GrdOptions", "ElasticNetStats", "GradRegStats", "L1L1GrdStats"):
        assert getattr(csc, name).__name__ == name  # importable from csc; __all__ keeps its cap of 40
    assert csc.ConvElasticNet.sporco_stats_names["l2"] == "RegL2"
    assert csc.ConvBPDNGradReg.sporco_stats_names["grad"] == "RegGrad"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("cls", ["enet", "grad", "l1l1"])
def test_cuda_matches_cpu(D, S, cls):
    """The torch loop on CUDA gives the CPU's answer (float64)."""
    out = []
    for device in ("cpu", "cuda"):
        if cls == "enet":
            solver = csc.ConvElasticNet(D, 0.1, 0.5, csc.CBPDNOptions(max_iter=30, backend="torch", device=device))
        elif cls == "l1l1":
            solver = csc.ConvL1L1Grd(D, 0.1, 0.5, csc.L1L1GrdOptions(max_iter=30, auto_rho=True, device=device))
        else:
            solver = csc.ConvBPDNGradReg(D, 0.1, 0.5, csc.GradRegOptions(
                max_iter=30, grad_weight=np.array([1.0, 0.0, 2.0, 1.0]), backend="torch", device=device))
        out.append(solver.solve(S))
    a, b = out
    assert b.codes.device.type == "cuda"
    assert float((a.codes - b.codes.cpu()).norm() / a.codes.norm()) <= 1e-12
    np.testing.assert_allclose(a.stats[0].objective, b.stats[0].objective, rtol=1e-12)


# ------------------------------------------------------------------ ConvL1L1Grd
def test_l1l1_options_and_errors(D, S):
    o = csc.L1L1GrdOptions()
    assert (o.rho, o.auto_rho, o.rho_period, o.rho_scaling, o.rsdl_ratio, o.rsdl_target, o.auto_scaling) == \
        (1.0, False, 10, 2.0, 10.0, 1.0, False)  # SPORCO ConvL1L1Grd.Options' defaults
    with pytest.raises(TypeError, match="options: ConvL1L1Grd takes L1L1GrdOptions, got GradRegOptions"):
        csc.ConvL1L1Grd(D, 0.1, 1.0, csc.GradRegOptions())
    with pytest.raises(ValueError, match="mu: expected a finite value >= 0"):
        csc.ConvL1L1Grd(D, 0.1, -1.0)
    with pytest.raises(ValueError, match=r"grad_weight: expected a scalar or one weight per kernel \(K=4,\)"):
        csc.ConvL1L1Grd(D, 0.1, 1.0, csc.L1L1GrdOptions(grad_weight=[1.0, 2.0]))
    solver = csc.ConvL1L1Grd(D, 0.1, 1.0, csc.L1L1GrdOptions(max_iter=2))
    with pytest.raises(ValueError, match=r"mask: expected a scalar, \(20, 18\) or \(2, 20, 18\)"):
        solver.solve(S, mask=np.ones((3, H, W)))
    with pytest.raises(ValueError, match="mask: expected weights >= 0"):
        solver.solve(S, mask=-np.ones((H, W)))
    with pytest.raises(ValueError, match="ReturnVar: csc's ConvL1L1Grd returns Y1"):
        csc.L1L1GrdOptions.from_sporco({"ReturnVar": "X"})


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_l1l1_statistics_are_its_objective(D, S, backend):
    mu, lmbda = 0.7, 0.1
    w = np.array([0.0, 1.0, 2.0, 0.5])
    mask = torch.from_numpy(np.random.RandomState(9).rand(2, H, W))
    opts = csc.L1L1GrdOptions(max_iter=25, grad_weight=w, backend=backend)
    res = csc.ConvL1L1Grd(D, lmbda, mu, opts).solve(S, mask=mask)
    assert isinstance(res.stats[0], csc.L1L1GrdStats)
    x = res.x
    fid = (mask * (csc.core.ops.synthesis(D, x) - S)).abs().sum((-2, -1))
    l1 = x.abs().sum((1, 2, 3))
    g = (x - x.roll(1, -2)).square().sum((-2, -1)) + (x - x.roll(1, -1)).square().sum((-2, -1))
    grad = 0.5 * (torch.from_numpy(w) * g).sum(1)
    for i, st in enumerate(res.stats):
        assert st.data_fidelity[-1] == pytest.approx(float(fid[i]), rel=1e-10)
        assert st.grad[-1] == pytest.approx(float(grad[i]), rel=1e-12)
        assert st.objective[-1] == pytest.approx(float(fid[i] + lmbda * l1[i] + mu * grad[i]), rel=1e-12)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_l1l1_float32_close_to_float64(D, S, backend):
    opts = csc.L1L1GrdOptions(max_iter=30, auto_rho=True, rho_period=1, backend=backend)
    r64 = csc.ConvL1L1Grd(D, 0.1, 0.5, opts).solve(S)
    r32 = csc.ConvL1L1Grd(D.float(), 0.1, 0.5, opts).solve(S.float())
    assert r32.codes.dtype == torch.float32
    assert float((r32.codes.double() - r64.codes).norm() / r64.codes.norm()) <= 1e-4
    np.testing.assert_allclose(r32.stats[0].objective, r64.stats[0].objective, rtol=1e-4)

"""csc.problems.ams.AddMaskSim around ConvBPDN (and ConvElasticNet, ConvBPDNGradReg): parity with
SPORCO 0.2.2's admm.cbpdn.AddMaskSim (float64, on the torch loop and the fused numba back end:
statistics at every iteration to 1e-8, codes to 1e-10, same support), a batch of masks
against each image alone, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import csc
from csc.problems.ams import AddMaskSim

from ..backends_params import CPU_BACKENDS
from ..conftest import central_crop, highpass, needs_sporco, random_dictionary, sporco_image
from .test_maskdcpl import random_mask
from .test_variants_parity import K, assert_codes_match, assert_stats_match, image  # noqa: F401  (image: fixture)


def sporco_ams(D, s, lmbda, opt, W, mu=None, cls="ConvElasticNet"):
    from sporco.admm import cbpdn as sp

    full = {"Verbose": False, **opt}
    if mu is None:
        b = sp.AddMaskSim(sp.ConvBPDN, D, s, W, lmbda, opt=sp.ConvBPDN.Options(full))
    else:
        inner = getattr(sp, cls)
        b = sp.AddMaskSim(inner, D, s, W, lmbda, mu, opt=inner.Options(full))
    y = b.solve()
    return y, b.getitstat(), b


def csc_ams(D, lmbda, opt, mu=None, cls="ConvElasticNet", backend="torch"):
    Dc = torch.from_numpy(csc.from_sporco_layout(D, "dictionary").copy())
    if "L1Weight" in opt:  # SPORCO's has the impulse's weight last (unused): csc takes the K kernels'
        opt = {**opt, "L1Weight": opt["L1Weight"][..., :-1]}
    if mu is None:
        return AddMaskSim(csc.ConvBPDN(Dc, lmbda, csc.CBPDNOptions.from_sporco(opt, backend=backend)))
    options = csc.GradRegOptions if cls == "ConvBPDNGradReg" else csc.CBPDNOptions
    return AddMaskSim(getattr(csc, cls)(Dc, lmbda, mu, options.from_sporco(opt, backend=backend)))


VARIANTS = {
    "defaults": {},
    "fixed-rho-relax-1": {"rho": 2.0, "AutoRho": {"Enabled": False}, "RelaxParam": 1.0},
    "aux-var-obj": {"AuxVarObj": True},
    "nonneg-and-boundary": {"NonNegCoef": True, "NoBndryCross": True},
    "l1-weight-per-kernel": {"L1Weight": np.linspace(0.5, 2.0, K + 1).reshape(1, 1, 1, 1, K + 1)},
}


@needs_sporco
@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("name", list(VARIANTS))
def test_addmasksim_parity(image, name, backend):
    D, s = image
    W = random_mask(s.shape, 2)
    opt = {"MaxMainIter": 40, "RelStopTol": 0.0, **VARIANTS[name]}
    y_sp, its, sp = sporco_ams(D, s, 0.05, opt, W)
    solver = csc_ams(D, 0.05, opt, backend=backend)
    res = solver.solve(torch.from_numpy(s), W)
    assert_stats_match(solver.solver, res.stats[0], its, s)
    assert_codes_match(res.codes, y_sp)
    assert float(res.rho) == pytest.approx(float(sp.cbpdn.rho), rel=1e-10)
    assert tuple(res.codes.shape) == (1, K, 32, 32)


@needs_sporco
@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("cls", ["ConvElasticNet", "ConvBPDNGradReg"])
def test_addmasksim_variants_and_padding(image, cls, backend):
    """Around ConvElasticNet (RegL2 leaves the impulse's map out, as SPORCO's) and
    ConvBPDNGradReg (RegGrad keeps it), with boundary="mask" against SPORCO on the padded
    image and mask."""
    D, s = image
    kh, kw = D.shape[:2]
    W = random_mask(s.shape, 3)
    opt = {"MaxMainIter": 30, "RelStopTol": 0.0}
    sp_s, sp_W = np.pad(s, ((0, kh - 1), (0, kw - 1))), np.pad(W, ((0, kh - 1), (0, kw - 1)))
    y_sp, its, _ = sporco_ams(D, sp_s, 0.05, opt, sp_W, mu=0.3, cls=cls)
    solver = csc_ams(D, 0.05, opt, mu=0.3, cls=cls, backend=backend)
    res = solver.solve(torch.from_numpy(s), W, boundary="mask")
    assert_stats_match(solver.solver, res.stats[0], its, sp_s)
    assert_codes_match(res.codes, y_sp)


@needs_sporco
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_addmasksim_batch_equals_each_alone(backend):
    offsets = [(0, 0), (-60, 40), (50, -70)]
    S = np.stack([highpass(central_crop(sporco_image("monarch.png"), 32, 32, dy, dx)) for dy, dx in offsets])
    M = np.stack([random_mask((32, 32), seed) for seed in (4, 5, 6)])
    D = random_dictionary(5, 5, K, seed=1)
    opt = {"MaxMainIter": 200, "RelStopTol": 5e-3}
    solver = csc_ams(D, 0.05, opt, backend=backend)
    batch = solver.solve(torch.from_numpy(S), M)
    for i in range(len(offsets)):
        single = solver.solve(torch.from_numpy(S[i]), M[i])
        assert int(batch.iterations[i]) == int(single.iterations[0])
        for field in ("codes", "x", "u"):
            a, b = getattr(batch, field)[i], getattr(single, field)[0]
            assert float((a - b).norm() / b.norm()) <= 1e-12, field
        y_sp, its, _ = sporco_ams(D, S[i], 0.05, opt, M[i])
        assert len(its.Iter) == int(batch.iterations[i])
        assert_codes_match(batch.codes[i:i + 1], y_sp)


def test_addmasksim_bad_input():
    D = torch.from_numpy(np.random.RandomState(0).randn(4, 5, 5))
    S = torch.from_numpy(np.random.RandomState(1).randn(20, 18))
    with pytest.raises(TypeError, match="solver: expected a ConvBPDN, ConvElasticNet or ConvBPDNGradReg, got "
                                        "ConvBPDNMaskDcpl"):
        AddMaskSim(csc.ConvBPDNMaskDcpl(D, 0.1))
    ams = AddMaskSim(csc.ConvBPDN(D, 0.1, csc.CBPDNOptions(max_iter=2)))
    with pytest.raises(ValueError, match=r"mask: expected a scalar, \(20, 18\)"):
        ams.solve(S, np.ones((3, 3)))
    with pytest.raises(ValueError, match="mask: expected nonzero weights"):
        ams.solve(S, np.zeros((20, 18)))
    with pytest.raises(ValueError, match=r"l1_weight: AddMaskSim takes a scalar or one weight per kernel \(K=4,\)"):
        AddMaskSim(csc.ConvBPDN(D, 0.1, csc.CBPDNOptions(l1_weight=np.ones((4, 20, 18))))).solve(S, 1.0)

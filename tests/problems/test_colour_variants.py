"""Multi-channel dictionaries (K, C, kh, kw) in every coding problem against SPORCO 0.2.2
(its ``Cd = C`` case: one map per kernel shared by the C channels), float64.

ConvElasticNet, ConvBPDNGradReg, ConvBPDNMaskDcpl, ConvL1L1Grd, AddMaskSim (around ConvBPDN,
ConvElasticNet and ConvBPDNGradReg) and ConvBPDNFISTA on a 24×24 colour crop, K = 4, C = 3,
20 iterations: statistics at every iteration to 1e-8 relative, codes to 1e-10 with the same
support; a batch equals each image alone. The numba back end has no kernel for these
compositions: the registry runs them on the torch loop and ``result.backend`` says so.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import csc
from csc.core.options import FISTAOptions
from csc.problems.fista import ConvBPDNFISTA

from ..backends_params import CPU_BACKENDS
from ..conftest import needs_sporco
from .test_colour import assert_codes_match, colour_crop, colour_dictionary
from .test_variants_parity import assert_stats_match

pytestmark = needs_sporco

LMBDA, MU = 0.01, 0.1
OPT = {"MaxMainIter": 20, "RelStopTol": 0.0}


@pytest.fixture(params=CPU_BACKENDS)
def backend(request):
    return request.param


def masks(size: int = 24):
    rng = np.random.RandomState(0)
    return {"none": None, "grey": (rng.rand(size, size) > 0.3).astype(float),
            "per-channel": (rng.rand(3, size, size) > 0.3).astype(float)}


def sporco_mask(W):
    """csc's (H, W) or (C, H, W) mask in SPORCO's layout (N, N, C or 1, 1, 1)."""
    if W is None:
        return None
    return (W if W.ndim == 2 else np.moveaxis(W, 0, -1)).reshape(W.shape[-2:] + (-1, 1, 1))


def sporco_run(kind: str, D, s, W):
    """SPORCO's solver ``kind`` on one (C, H, W) image with D (K, C, kh, kw): (codes (K, H, W), itstat)."""
    from sporco.admm import cbpdn as sp

    Dsp, ssp = csc.to_sporco_layout(D, "dictionary"), np.ascontiguousarray(np.moveaxis(s, 0, -1))
    cls, args = {"enet": (sp.ConvElasticNet, (LMBDA, MU)), "grad": (sp.ConvBPDNGradReg, (LMBDA, MU)),
                 "cbpdn": (sp.ConvBPDN, (LMBDA,)), "md": (sp.ConvBPDNMaskDcpl, (LMBDA,)),
                 "l1l1": (sp.ConvL1L1Grd, (LMBDA, MU))}[kind.replace("ams-", "")]
    opt = cls.Options(dict(OPT, Verbose=False))
    if kind.startswith("ams-"):
        solver = sp.AddMaskSim(cls, Dsp, ssp, sporco_mask(W), *args, opt=opt, dimK=0)
    elif kind in ("md", "l1l1"):
        solver = cls(Dsp, ssp, *args, W=sporco_mask(W), opt=opt, dimK=0)
    else:
        solver = cls(Dsp, ssp, *args, opt=opt, dimK=0)
    y = solver.solve()
    assert y.shape == s.shape[1:] + (1, 1, D.shape[0])
    return np.moveaxis(y[:, :, 0, 0, :], -1, 0), solver.getitstat()


def csc_solver(kind: str, D, backend: str, **opt):
    o = dict(OPT, **opt)
    base = kind.replace("ams-", "")
    if base == "enet":
        return csc.ConvElasticNet(D, LMBDA, MU, csc.CBPDNOptions.from_sporco(o, backend=backend))
    if base == "grad":
        return csc.ConvBPDNGradReg(D, LMBDA, MU, csc.GradRegOptions.from_sporco(o, backend=backend))
    if base == "cbpdn":
        return csc.ConvBPDN(D, LMBDA, csc.CBPDNOptions.from_sporco(o, backend=backend))
    if base == "md":
        return csc.ConvBPDNMaskDcpl(D, LMBDA, csc.MaskDcplOptions.from_sporco(o, backend=backend))
    return csc.ConvL1L1Grd(D, LMBDA, MU, csc.L1L1GrdOptions.from_sporco(o, backend=backend))


def csc_run(kind: str, D, S, W, backend: str, **opt):
    solver = csc_solver(kind, D, backend, **opt)
    mask = None if W is None else torch.from_numpy(W)
    if kind.startswith("ams-"):
        return solver, csc.AddMaskSim(solver).solve(torch.from_numpy(S), mask)
    if kind in ("md", "l1l1"):
        return solver, solver.solve(torch.from_numpy(S), mask=mask)
    return solver, solver.solve(torch.from_numpy(S))


CASES = [("enet", "none"), ("grad", "none"), ("md", "none"), ("md", "grey"), ("md", "per-channel"),
         ("l1l1", "grey"), ("l1l1", "per-channel"), ("ams-cbpdn", "per-channel"), ("ams-enet", "per-channel"),
         ("ams-grad", "per-channel")]


@pytest.mark.parametrize("kind, mask", CASES)
def test_multichannel_matches_sporco(backend, kind, mask):
    D, s, W = colour_dictionary(4, 3, 5), colour_crop(24), masks()[mask]
    y_sp, its = sporco_run(kind, D, s, W)
    solver, res = csc_run(kind, D, s, W, backend)
    assert res.codes.shape == (1, 4, 24, 24)
    assert res.backend.startswith("torch")
    if backend == "numba":
        assert "numba has no kernel" in res.backend
    assert_stats_match(solver, res.stats[0], its, s)
    assert_codes_match(res.codes[0].numpy(), y_sp)


def test_ams_grey_mask_masks_every_channel(backend):
    """A (H, W) mask with a multi-channel dictionary masks every channel's impulse (it is the
    (C, H, W) mask repeated); SPORCO 0.2.2 given the (N, N, 1) mask masks channel 0's impulse
    only (its ``Yi[np.where(W)] = 0`` indexes the first impulse map): csc with the mask on
    channel 0 and zeros elsewhere gives that answer."""
    D, s, W = colour_dictionary(4, 3, 5), colour_crop(24), masks()["grey"]
    _, grey = csc_run("ams-cbpdn", D, s, W, backend)
    _, repeated = csc_run("ams-cbpdn", D, s, np.stack([W] * 3), backend)
    assert torch.equal(grey.codes, repeated.codes)
    y_sp, its = sporco_run("ams-cbpdn", D, s, W)
    solver, first = csc_run("ams-cbpdn", D, s, np.stack([W, 0 * W, 0 * W]), backend)
    assert_stats_match(solver, first.stats[0], its, s)
    assert_codes_match(first.codes[0].numpy(), y_sp)


@pytest.mark.parametrize("kind", ["enet", "grad", "md", "l1l1", "ams-grad"])
def test_multichannel_batch_equals_each_alone(backend, kind):
    D = colour_dictionary(4, 3, 5)
    S = np.stack([colour_crop(24, dy=20 * i, dx=-20 * i) for i in range(2)])
    W = None if kind in ("enet", "grad") else np.stack([masks()["per-channel"], masks()["grey"][None].repeat(3, 0)])
    opt = {"MaxMainIter": 40, "RelStopTol": 1e-3}
    _, batch = csc_run(kind, D, S, W, backend, **opt)
    for i in range(2):
        _, alone = csc_run(kind, D, S[i], None if W is None else W[i], backend, **opt)
        assert int(alone.iterations[0]) == int(batch.iterations[i])
        for field in ("codes", "x", "u"):
            a, b = getattr(batch, field)[i], getattr(alone, field)[0]
            assert float((a - b).norm() / b.norm()) <= 1e-12, field
        np.testing.assert_allclose(batch.stats[i].objective, alone.stats[0].objective, rtol=1e-12)


FISTA_CASES = {"default": {"L": 50.0}, "standard": {"Backtrack": "standard", "L": 0.5},
               "robust": {"Backtrack": "robust", "L": 0.5},
               "monotone": {"Monotone": True, "Backtrack": "standard-1.5", "L": 0.5}}


def _fista_opt(case: str) -> dict:
    from sporco.pgm.backtrack import BacktrackRobust, BacktrackStandard

    opt = dict(FISTA_CASES[case], MaxMainIter=20, RelStopTol=0.0)
    bt = opt.get("Backtrack")
    if bt is not None:
        opt["Backtrack"] = BacktrackRobust() if bt == "robust" else \
            BacktrackStandard(gamma_u=1.5) if bt == "standard-1.5" else BacktrackStandard()
    return opt


@pytest.mark.parametrize("case", list(FISTA_CASES))
def test_fista_multichannel_matches_sporco(backend, case):
    from sporco.pgm import cbpdn as pcb

    D = colour_dictionary(4, 3, 5)
    S = np.stack([colour_crop(24, dy=20 * i, dx=-20 * i) for i in range(2)])
    res = ConvBPDNFISTA(D, LMBDA, FISTAOptions.from_sporco(_fista_opt(case), backend=backend)).solve(
        torch.from_numpy(S))
    assert res.codes.shape == (2, 4, 24, 24) and res.backend.startswith("torch")
    for i, s in enumerate(S):  # batch = each image alone, each against SPORCO
        sp = pcb.ConvBPDN(csc.to_sporco_layout(D, "dictionary"), np.ascontiguousarray(np.moveaxis(s, 0, -1)),
                          LMBDA, pcb.ConvBPDN.Options(dict(_fista_opt(case), Verbose=False)), dimK=0)
        X = np.moveaxis(sp.solve()[:, :, 0, 0, :], -1, 0)
        its = sp.getitstat()
        np.testing.assert_allclose(res.codes[i].numpy(), X, rtol=0, atol=1e-10 * np.abs(X).max())
        st = res.stats[i]
        for ours, theirs in [("L", "L"), ("objective", "ObjFun"), ("data_fidelity", "DFid"), ("l1", "RegL1"),
                             ("residual", "Rsdl")]:
            np.testing.assert_allclose(getattr(st, ours), np.asarray(getattr(its, theirs), float), rtol=1e-8,
                                       err_msg=ours)


@pytest.mark.parametrize("colour", [False, True])
def test_ams_per_kernel_grad_weight(backend, colour):
    """SPORCO's AddMaskSim(ConvBPDNGradReg) with GradWeight of K + C entries (the impulses' last)
    is csc's per-kernel grad_weight (K,) and impulse_grad_weight."""
    from sporco.admm import cbpdn as sp

    from ..conftest import central_crop, highpass, random_dictionary, sporco_image

    if colour:
        D, s, C = colour_dictionary(4, 3, 5), colour_crop(24), 3
        W = masks()["per-channel"]
    else:
        D = csc.from_sporco_layout(random_dictionary(5, 5, 4), "dictionary").copy()
        s, C, W = highpass(central_crop(sporco_image(), 24, 24))[None], 1, masks()["grey"]
    gw, gi = np.array([0.0, 0.5, 1.0, 2.0]), 1.5
    opt = dict(OPT, GradWeight=np.append(gw, np.full(C, gi)))
    Ssp = np.ascontiguousarray(np.moveaxis(s, 0, -1)) if colour else s[0]
    so = sp.AddMaskSim(sp.ConvBPDNGradReg, csc.to_sporco_layout(D, "dictionary"), Ssp, sporco_mask(W), LMBDA, MU,
                       opt=sp.ConvBPDNGradReg.Options(dict(opt, Verbose=False)), **({"dimK": 0} if colour else {}))
    y = so.solve()
    y_sp = np.moveaxis(y.reshape(24, 24, 4), -1, 0)
    solver = csc.ConvBPDNGradReg(D, LMBDA, MU, csc.GradRegOptions.from_sporco(dict(OPT, GradWeight=gw), backend=backend))
    with pytest.raises(ValueError, match="impulse_grad_weight"):
        csc.AddMaskSim(solver)
    res = csc.AddMaskSim(solver, impulse_grad_weight=gi).solve(torch.from_numpy(s if colour else s[0]),
                                                               torch.from_numpy(W))
    assert_stats_match(solver, res.stats[0], so.getitstat(), s)
    assert_codes_match(res.codes[0].numpy(), y_sp)


@pytest.mark.parametrize("over_rho", [False, True])
def test_multichannel_diagonal_xstep_solves_its_system(over_rho):
    """(D̂ᴴD̂ + diag(δ))x̂ = D̂ᴴŝ + r v̂ per frequency, δ per kernel and image (two ρ)."""
    from csc.core.xstep import MultiChannelDiagonalXStep, gradient_gram

    g = torch.Generator().manual_seed(0)
    D = torch.randn(4, 3, 5, 5, generator=g, dtype=torch.float64)
    P = torch.rand(4, 1, 1, dtype=torch.float64) * gradient_gram((12, 12)).unsqueeze(0)
    xs = MultiChannelDiagonalXStep(torch.fft.rfft2(D, s=(12, 12)), P, 0.3, over_rho=over_rho)
    vf = torch.fft.rfft2(torch.randn(2, 4, 12, 12, generator=g, dtype=torch.float64))
    Sf = torch.fft.rfft2(torch.randn(2, 3, 12, 12, generator=g, dtype=torch.float64))
    rho = torch.tensor([0.5, 7.0], dtype=torch.float64).view(-1, 1, 1, 1)
    xf = xs.solve_(vf.clone(), Sf, rho)
    assert float(xs.accuracy(xf, vf, Sf, rho).max()) < 1e-13


@pytest.mark.parametrize("kind", ["projl1", "minl1"])
def test_constrained_multichannel_matches_sporco(backend, kind):
    """ConvBPDNProjL1 and ConvMinL1InL2Ball with a multi-channel dictionary (ConvMinL1InL2Ball's
    ε-ball per channel, as SPORCO's proj_l2 over the spatial axes)."""
    from sporco.admm import cbpdn as sp

    D, s = colour_dictionary(4, 3, 5), colour_crop(24)
    Dsp, ssp = csc.to_sporco_layout(D, "dictionary"), np.ascontiguousarray(np.moveaxis(s, 0, -1))
    opt = {"MaxMainIter": 20 if kind == "projl1" else 40, "RelStopTol": 0.0}
    if kind == "projl1":
        so = sp.ConvBPDNProjL1(Dsp, ssp, 5.0, opt=sp.ConvBPDNProjL1.Options(dict(opt, Verbose=False)), dimK=0)
        solver = csc.ConvBPDNProjL1(D, 5.0, csc.ProjL1Options.from_sporco(opt, backend=backend))
    else:
        so = sp.ConvMinL1InL2Ball(Dsp, ssp, 0.03, opt=sp.ConvMinL1InL2Ball.Options(dict(opt, Verbose=False)), dimK=0)
        solver = csc.ConvMinL1InL2Ball(D, 0.03, csc.MinL1InL2BallOptions.from_sporco(opt, backend=backend))
    y_sp = np.moveaxis(so.solve().reshape(24, 24, 4), -1, 0)
    res = solver.solve(torch.from_numpy(s))
    assert_stats_match(solver, res.stats[0], so.getitstat(), s)
    assert_codes_match(res.codes[0].numpy(), y_sp)

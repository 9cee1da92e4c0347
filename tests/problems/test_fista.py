"""FISTA for CBPDN (csc.ConvBPDNFISTA) against SPORCO 0.2.2's pgm.cbpdn.ConvBPDN (float64, CPU).

Each image alone, 50 iterations, on each CPU back end: codes to 1e-10 relative, the
objective, residual and L sequence (backtracking included) to 1e-10 at every iteration.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import csc
from csc.problems.fista import ConvBPDNFISTA
from csc.core.options import FISTAOptions

from ..backends_params import CPU_BACKENDS
from ..conftest import central_crop, highpass, needs_sporco, random_dictionary, sporco_image

RTOL = 1e-10
LMBDA = 0.005


def problem(n: int = 1):
    D = random_dictionary(6, 6, 8)
    imgs = [highpass(central_crop(sporco_image(), 24, 24, dy=8 * i, dx=4 * i)) for i in range(n)]
    return D, imgs


def sporco_opts(case: str) -> dict:
    from sporco.pgm.backtrack import BacktrackRobust, BacktrackStandard
    from sporco.pgm.momentum import MomentumLinear

    base = {"MaxMainIter": 50, "RelStopTol": 0.0, "L": 50.0}
    extra = {
        "default": {},
        "standard": {"Backtrack": BacktrackStandard(), "L": 0.5},
        "robust": {"Backtrack": BacktrackRobust(), "L": 0.5},
        "monotone": {"Monotone": True, "Backtrack": BacktrackStandard(gamma_u=1.5), "L": 0.5},
        "constraints": {"NonNegCoef": True, "NoBndryCross": True, "L": 20.0, "L1Weight": 0.5},
        "linear": {"Momentum": MomentumLinear(b=3.0), "L": 40.0},
    }[case]
    return {**base, **extra}


def sporco_solve(D, s, opt):
    from sporco.pgm import cbpdn as pcb

    sp = pcb.ConvBPDN(D, s, LMBDA, pcb.ConvBPDN.Options(opt))
    return np.moveaxis(sp.solve().squeeze(), -1, 0), sp.getitstat()


@needs_sporco
@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("case", ["default", "standard", "robust", "monotone", "constraints", "linear"])
def test_fista_parity(backend, case):
    D, imgs = problem(2)
    opt = sporco_opts(case)
    res = ConvBPDNFISTA(csc.from_sporco_layout(D, "dictionary"), LMBDA,
                        FISTAOptions.from_sporco(opt, backend=backend)).solve(torch.from_numpy(np.stack(imgs)))
    for i, s in enumerate(imgs):  # batch = each image alone
        X, its = sporco_solve(D, s, sporco_opts(case))  # fresh objects: SPORCO's keep state between solves
        assert np.abs(X).max() > 0
        np.testing.assert_allclose(res.codes[i].numpy(), X, rtol=0, atol=RTOL * np.abs(X).max())
        st = res.stats[i]
        assert len(st) == len(its.Iter) == 50
        np.testing.assert_allclose(st.L, its.L, rtol=RTOL)
        np.testing.assert_allclose(st.objective, its.ObjFun, rtol=RTOL)
        np.testing.assert_allclose(st.residual, its.Rsdl, rtol=1e-8)
        if opt.get("Backtrack") is not None:
            np.testing.assert_array_equal(st.iter_btrack, np.asarray(its.IterBTrack, dtype=float))


@needs_sporco
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_fista_stops_like_sporco(backend):
    D, (s,) = problem(1)
    opt = {"MaxMainIter": 200, "RelStopTol": 1e-6, "L": 50.0}
    X, its = sporco_solve(D, s, opt)
    res = ConvBPDNFISTA(csc.from_sporco_layout(D, "dictionary"), LMBDA,
                        FISTAOptions.from_sporco(opt, backend=backend)).solve(torch.from_numpy(s))
    assert int(res.iterations[0]) == len(its.Iter) < 200
    np.testing.assert_allclose(res.codes[0].numpy(), X, rtol=0, atol=RTOL * np.abs(X).max())


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_fista_batch_is_each_image_alone(backend):
    """Own L, line search and stopping per image: a batch gives each image's solo answer."""
    torch.manual_seed(0)
    D = torch.randn(8, 6, 6, dtype=torch.float64)
    S = torch.randn(3, 20, 20, dtype=torch.float64)
    S[1] *= 4.0
    opts = FISTAOptions(max_iter=80, L=0.5, backtrack="standard", rel_stop_tol=1e-4, backend=backend)
    batch = ConvBPDNFISTA(D, 0.1, opts).solve(S)
    for i in range(3):
        one = ConvBPDNFISTA(D, 0.1, opts).solve(S[i])
        assert int(one.iterations[0]) == int(batch.iterations[i])
        assert float(one.L[0]) == float(batch.L[i])
        torch.testing.assert_close(batch.codes[i], one.codes[0], rtol=0, atol=1e-12)
    assert len(set(batch.iterations.tolist())) > 1  # the images stopped at different iterations


def test_fista_options_checked():
    with pytest.raises(ValueError, match="backtrack"):
        FISTAOptions(backtrack="wolfe")
    with pytest.raises(ValueError, match="L"):
        FISTAOptions(L=0.0)
    with pytest.raises(TypeError, match="options"):
        ConvBPDNFISTA(torch.randn(2, 3, 3), 0.1, csc.CBPDNOptions())
    assert FISTAOptions(backtrack="robust").increase == 2.0 and FISTAOptions(backtrack="standard").increase == 1.2
    with pytest.raises(ValueError, match="StepSizePolicy"):
        FISTAOptions.from_sporco({"StepSizePolicy": object()})

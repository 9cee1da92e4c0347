"""csc.ConvBPDNInhib against SPORCO's admm.cbpdnin.ConvBPDNInhib (float64, CPU).

As test_variants_parity: every csc image is compared with a single-image SPORCO solve given the
same options and arguments: statistics (with RegLat and RegSelf) at every iteration to 1e-8
relative, y to 1e-10 relative with the same support; ``coupling="sporco"`` against SPORCO's
multi-image and grey-on-colour solves. 32×32 crops, 6 kernels of 5×5, 30 iterations. The prox
has no fused kernel, so every back end runs the torch loop (checked once).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import csc

from ..conftest import central_crop, highpass, needs_sporco, random_dictionary, sporco_image
from .test_cbpdn_parity import assert_batch_image_alone
from .test_coupling import assert_matches, case
from .test_variants_parity import assert_codes_match, assert_stats_match

K = 6
BASE = {"MaxMainIter": 30, "RelStopTol": 0.0}
PAIRS = np.concatenate((np.eye(3), np.eye(3)), axis=1)  # kernels m and m + 3 in one group (cbpdnin_gry.py)
_I2, _O2 = np.eye(2), np.zeros((2, 2))
#: three copies of two kernels, groups of the first with the second (weight 1) and the third (0.25),
#: as cbpdnin_wgt_gry.py
WEIGHTED = np.concatenate((np.concatenate((_I2, _I2, _O2), axis=1), 0.25 * np.concatenate((_I2, _O2, _I2), axis=1)))


@pytest.fixture(scope="module")
def image():
    return random_dictionary(5, 5, K, seed=4), highpass(central_crop(sporco_image("monarch.png"), 32, 32))


def sporco_solve(D, s, args, opt, dimK=None):
    from sporco.admm import cbpdnin

    b = cbpdnin.ConvBPDNInhib(D, s, *args, opt=cbpdnin.ConvBPDNInhib.Options({"Verbose": False, **opt}), dimK=dimK)
    return b.solve(), b.getitstat(), b


def csc_solver(D, args, opt, **over):
    Wg, Whn, win, lmbda, mu, gamma = args
    Dc = torch.from_numpy(csc.from_sporco_layout(D, "dictionary").copy())
    return csc.ConvBPDNInhib(Dc, lmbda, mu, 0.0 if gamma is None else gamma, Wg, Whn,
                             ("tukey", 0.5) if win is None else win, csc.InhibOptions.from_sporco(opt, **over))


def check(D, s, args, opt, **over):
    y_sp, its, sp = sporco_solve(D, s, args, opt)
    solver = csc_solver(D, args, opt, **over)
    res = solver.solve(torch.from_numpy(s))
    assert_stats_match(solver, res.stats[0], its, s)
    assert_codes_match(res.codes, y_sp)
    assert float(res.rho) == pytest.approx(float(sp.rho), rel=1e-10)
    return res, its


#: (Wg, Whn, win_args, λ, μ, γ) and options: SPORCO's argument order
CASES = {
    "lateral-boxcar": ((PAIRS, 5, "boxcar", 0.1, 0.05, None), {}),  # as cbpdnin_gry.py
    "weighted-groups": ((WEIGHTED, 5, "boxcar", 0.1, 0.05, None), {}),  # as cbpdnin_wgt_gry.py
    "self-only": ((None, 5, None, 0.1, None, 0.02), {}),
    "lateral-and-self-tukey": ((PAIRS, 5, None, 0.1, 0.05, 0.02), {}),
    "default-mu-window": ((PAIRS, None, None, 0.05, None, None), {}),
    "even-window-hann": ((PAIRS, 4, "hann", 0.1, 0.05, 0.01), {}),
    "smooth-0.5-aux-var": ((PAIRS, 5, None, 0.1, 0.05, 0.02), {"SmoothWeight": 0.5, "AuxVarObj": True}),
    "nonneg-boundary-relax-1": ((PAIRS, 5, None, 0.1, 0.05, 0.02),
                                {"NonNegCoef": True, "NoBndryCross": True, "RelaxParam": 1.0}),
    "l1-weight-fixed-rho": ((PAIRS, 5, None, 0.1, 0.05, 0.02),
                            {"L1Weight": np.linspace(0.5, 2.0, K).reshape(1, 1, 1, 1, K), "rho": 3.0,
                             "AutoRho": {"Enabled": False}}),
    "no-inhibition": ((PAIRS, 5, None, 0.1, 0.0, 0.0), {}),  # μ = γ = 0: CBPDN
}


@needs_sporco
@pytest.mark.parametrize("name", list(CASES))
def test_matches_sporco(image, name):
    D, s = image
    args, opt = CASES[name]
    res, its = check(D, s, args, {**BASE, **opt}, backend="torch")
    if name != "no-inhibition":
        assert np.max(np.asarray(its.RegLat) + np.asarray(its.RegSelf)) > 0, "inhibition should act"


@needs_sporco
def test_no_inhibition_is_cbpdn_and_inhibition_changes_the_codes(image):
    D, s = image
    Dc = torch.from_numpy(csc.from_sporco_layout(D, "dictionary").copy())
    o = csc.InhibOptions(max_iter=30, rel_stop_tol=0.0)
    plain = csc.ConvBPDN(Dc, 0.1, csc.CBPDNOptions(max_iter=30, rel_stop_tol=0.0, backend="torch"))
    a = csc.ConvBPDNInhib(Dc, 0.1, 0.0, 0.0, PAIRS, options=o).solve(torch.from_numpy(s))
    b = plain.solve(torch.from_numpy(s))
    assert float((a.codes - b.codes).norm() / b.codes.norm()) <= 1e-12
    c = csc.ConvBPDNInhib(Dc, 0.1, 0.2, 0.05, PAIRS, options=o).solve(torch.from_numpy(s))
    assert float((c.codes - b.codes).norm() / b.codes.norm()) > 1e-2


@needs_sporco
def test_early_stop_and_batch_each_alone():
    """Own ρ, weights and stopping per image: a batch equals each image alone, and each
    image SPORCO's single-image solve, stopping at its iteration."""
    offsets = [(0, 0), (-60, 40), (50, -70)]
    S = np.stack([highpass(central_crop(sporco_image("monarch.png"), 24, 24, dy, dx)) for dy, dx in offsets])
    D = random_dictionary(5, 5, K, seed=1)
    args, opt = (PAIRS, 5, None, 0.05, 0.05, 0.02), {"MaxMainIter": 100, "RelStopTol": 5e-3}
    solver = csc_solver(D, args, opt, backend="numba")
    batch = solver.solve(torch.from_numpy(S))
    assert batch.backend.startswith("torch (numba has no kernel for InhibitionThreshold")
    assert len(set(batch.iterations.tolist())) > 1, "images should stop at different iterations"
    for i in range(len(offsets)):
        assert_batch_image_alone(solver, batch, S[i], i)
        y_sp, its, _ = sporco_solve(D, S[i], args, opt)
        assert len(its.Iter) == int(batch.iterations[i]) < 100
        assert_codes_match(batch.codes[i:i + 1], y_sp)


@needs_sporco
@pytest.mark.parametrize("name", ["multi-image", "grey-on-colour"])
def test_coupled_matches_sporco(name):
    from sporco.admm import cbpdnin

    D, S, Ssp, dimK = case(name)
    opt = {"MaxMainIter": 20, "RelStopTol": 0.0}
    Wg = np.concatenate((np.eye(2), np.eye(2)), axis=1)
    so = cbpdnin.ConvBPDNInhib(csc.to_sporco_layout(D, "dictionary"), Ssp, Wg, 5, "boxcar", 0.01, 0.05, 0.01,
                               opt=cbpdnin.ConvBPDNInhib.Options({"Verbose": False, **opt}), dimK=dimK)
    so.solve()
    solver = csc.ConvBPDNInhib(D, 0.01, 0.05, 0.01, Wg, 5, "boxcar",
                               csc.InhibOptions.from_sporco(opt, coupling="sporco"))
    assert_matches(solver, solver.solve(torch.from_numpy(S)), so, D, S)


def test_float32_close_to_float64():
    D = torch.from_numpy(csc.from_sporco_layout(random_dictionary(5, 5, K, seed=3), "dictionary").copy())
    s = torch.from_numpy(np.random.RandomState(0).randn(2, 24, 24))
    o = csc.InhibOptions(max_iter=25, rel_stop_tol=0.0)
    r64 = csc.ConvBPDNInhib(D, 0.1, 0.05, 0.02, PAIRS, 5, options=o).solve(s)
    r32 = csc.ConvBPDNInhib(D.float(), 0.1, 0.05, 0.02, PAIRS, 5, options=o).solve(s.float())
    assert r32.codes.dtype == torch.float32
    assert float((r32.codes.double() - r64.codes).norm() / r64.codes.norm()) <= 1e-4
    for field in ("objective", "lateral", "self_inhibition"):
        np.testing.assert_allclose(getattr(r32.stats[1], field)[1:],
                                   getattr(r64.stats[1], field)[1:], rtol=1e-4, err_msg=field)


def test_options_from_sporco():
    o = csc.InhibOptions.from_sporco({"SmoothWeight": 0.5, "MaxMainIter": 7})
    assert (o.smooth_weight, o.max_iter) == (0.5, 7)
    assert csc.InhibOptions().smooth_weight == 0.9
    with pytest.raises(ValueError, match="SmoothWeight"):
        csc.InhibOptions.from_sporco({"SmoothWeight": 1.5})
    with pytest.raises(ValueError, match="SmoothWeight: unknown"):
        csc.CBPDNOptions.from_sporco({"SmoothWeight": 0.5})


def test_bad_arguments():
    D = np.random.RandomState(0).randn(4, 5, 5)
    with pytest.raises(ValueError, match=r"groups: expected a \(G, K=4\)"):
        csc.ConvBPDNInhib(D, 0.1, groups=np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"groups: expected a \(G, K=4\)"):
        csc.ConvBPDNInhib(D, 0.1, groups=np.ones(4))
    with pytest.raises(ValueError, match="groups: expected finite"):
        csc.ConvBPDNInhib(D, 0.1, groups=np.full((1, 4), np.nan))
    with pytest.raises(TypeError, match="groups"):
        csc.ConvBPDNInhib(D, 0.1, groups="pairs")
    with pytest.raises(ValueError, match="mu"):
        csc.ConvBPDNInhib(D, 0.1, mu=-1.0)
    with pytest.raises(ValueError, match="gamma"):
        csc.ConvBPDNInhib(D, 0.1, gamma=-1.0)
    with pytest.raises(ValueError, match="window_size"):
        csc.ConvBPDNInhib(D, 0.1, window_size=0)
    with pytest.raises(ValueError, match="window: expected a window scipy"):
        csc.ConvBPDNInhib(D, 0.1, window="no-such-window")
    with pytest.raises(TypeError, match="InhibOptions"):
        csc.ConvBPDNInhib(D, 0.1, options=csc.CBPDNOptions())
    with pytest.raises(ValueError, match="window_size: the inhibition window .9 samples"):
        csc.ConvBPDNInhib(D, 0.1, gamma=0.1, window_size=9).solve(np.zeros((8, 8)) + 1.0)

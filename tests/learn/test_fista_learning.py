"""The batch learner's FISTA coding step (SPORCO ``ConvBPDNDictLearn`` with ``xmethod='pgm'``)
against SPORCO 0.2.2 (float64): 'pgm' and 'cns' dictionary steps, with and without standard
backtracking (one L over the batch), AccurateDFid, a colour dictionary; the dictionary to
1e-12 and every statistic of every outer iteration to 1e-12 (relative)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import csc
from csc.learn.dictlearn import SPORCO_DICTLEARN_STATS_NAMES

from ..conftest import needs_sporco

LMBDA = 0.05


def _data(colour: bool = False):
    rng = np.random.RandomState(0)
    S = rng.randn(20, 20, 3, 3) * 0.1 if colour else rng.randn(20, 20, 3) * 0.1  # (H, W, [C,] B)
    D0 = rng.randn(6, 6, 3, 5) if colour else rng.randn(6, 6, 5)
    return S, D0


def _csc(S, D0):
    Sc = np.moveaxis(S, (2, 3), (1, 0)) if S.ndim == 4 else np.moveaxis(S, 2, 0)
    return (torch.from_numpy(np.ascontiguousarray(csc.from_sporco_layout(D0, "dictionary"))),
            torch.from_numpy(np.ascontiguousarray(Sc)))


def _close(a, b, tol=1e-12):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= tol * np.abs(b).max(), np.abs(a - b).max() / np.abs(b).max()


def _sporco(S, D0, opt, dmethod, xmethod="pgm"):
    from sporco.dictlrn import cbpdndl

    sp = cbpdndl.ConvBPDNDictLearn(D0, S, LMBDA, cbpdndl.ConvBPDNDictLearn.Options(opt, xmethod=xmethod,
                                                                                   dmethod=dmethod),
                                   xmethod=xmethod, dmethod=dmethod)
    sp.solve()
    return sp


@needs_sporco
@pytest.mark.parametrize("dmethod", ["pgm", "cns"])
@pytest.mark.parametrize("backtrack", [False, True])
def test_fista_coding_step_matches_sporco(dmethod, backtrack):
    from sporco.pgm.backtrack import BacktrackStandard

    S, D0 = _data()
    cb = {"L": 1.0, "Backtrack": BacktrackStandard(gamma_u=1.5)} if backtrack else {"L": 50.0}
    opt = {"MaxMainIter": 15, "AccurateDFid": dmethod == "cns", "CBPDN": cb,
           "CCMOD": {"L": 50.0} if dmethod == "pgm" else {"rho": 1.0}}
    sp = _sporco(S, D0, opt, dmethod)
    its = sp.getitstat()
    o = csc.DictLearnOptions.from_sporco(opt, dmethod=dmethod, xmethod="pgm")
    assert o.xmethod == "pgm" and o.fista.max_iter == 1 and o.fista.backtrack == ("standard" if backtrack else None)
    res = csc.DictLearn(*_csc(S, D0)[:1], LMBDA, o).solve(_csc(S, D0)[1])
    _close(csc.to_sporco_layout(res.dictionary.numpy(), "dictionary"), sp.getdict().squeeze())
    names = ["objective", "data_fidelity", "l1", "x_L", "x_residual"]
    if backtrack:
        names += ["x_F_backtrack", "x_Q_backtrack", "x_backtrack_iterations"]
        assert np.asarray(its.X_ItBt).max() > 1  # the line search raised L
    names += ["d_L", "d_residual"] if dmethod == "pgm" else ["d_primal_residual", "d_dual_residual", "d_rho"]
    for name in names:
        _close(getattr(res.stats, name), getattr(its, SPORCO_DICTLEARN_STATS_NAMES[name]))
    assert np.isnan(res.stats.x_rho).all()
    _close(res.codes.numpy(), np.moveaxis(sp.getcoef()[:, :, 0], (2, 3), (0, 1)))


@needs_sporco
def test_fista_coding_step_colour_dictionary_and_coding_problem():
    S, D0 = _data(colour=True)
    opt = {"MaxMainIter": 10, "CBPDN": {"L": 20.0}, "CCMOD": {"L": 50.0}}
    sp = _sporco(S, D0, opt, "pgm")
    Dc, Sc = _csc(S, D0)
    # the coding step given as a coding problem: its options become the learner's fista options
    coding = csc.ConvBPDNFISTA(Dc, LMBDA, csc.FISTAOptions(max_iter=1, L=20.0))
    res = csc.DictLearn(Dc, LMBDA, csc.DictLearnOptions(max_iter=10, ccmod=csc.DictUpdateOptions(L=50.0)),
                        coding=coding).solve(Sc)
    _close(csc.to_sporco_layout(res.dictionary.numpy(), "dictionary"), sp.getdict().squeeze())
    _close(res.stats.objective, sp.getitstat().ObjFun)


def test_fista_learning_checkpoint_resumes_bit_for_bit(tmp_path):
    S, D0 = _data()
    Dc, Sc = _csc(S, D0)
    o = csc.DictLearnOptions(max_iter=6, xmethod="pgm", fista=csc.FISTAOptions(max_iter=1, L=1.0, backtrack="standard"))
    full = csc.DictLearn(Dc, LMBDA, o).solve(Sc)
    ck = tmp_path / "ck.npz"
    csc.DictLearn(Dc, LMBDA, o.replace(max_iter=3)).solve(Sc, checkpoint=ck, checkpoint_every=3)
    resumed = csc.DictLearn(Dc, LMBDA, o).solve(Sc, checkpoint=ck, checkpoint_every=3, resume=True)
    assert torch.equal(resumed.dictionary, full.dictionary)
    np.testing.assert_array_equal(resumed.stats.x_L, full.stats.x_L)


def test_fista_learning_options_are_checked():
    Dc, Sc = _csc(*_data())
    with pytest.raises(ValueError, match="xmethod: expected one of"):
        csc.DictLearnOptions(xmethod="ista")
    with pytest.raises(ValueError, match="fista: the learner's FISTA coding step offers standard backtracking"):
        csc.DictLearnOptions(xmethod="pgm", fista=csc.FISTAOptions(max_iter=1, backtrack="robust"))
    with pytest.raises(ValueError, match="cbpdn: the ADMM coding options are not used"):
        csc.DictLearnOptions(xmethod="pgm", cbpdn=csc.CBPDNOptions(max_iter=3))
    with pytest.raises(ValueError, match="mask: masked learning codes by mask decoupling"):
        csc.DictLearn(Dc, LMBDA, csc.DictLearnOptions(max_iter=1, xmethod="pgm")).solve(Sc, mask=torch.ones_like(Sc))
    with pytest.raises(ValueError, match="coding: with xmethod='pgm' the coding problem is a csc.ConvBPDNFISTA"):
        csc.DictLearn(Dc, LMBDA, csc.DictLearnOptions(xmethod="pgm"), coding=csc.ConvBPDN(Dc, LMBDA))


@needs_sporco
@pytest.mark.parametrize("xmethod", ["pgm", "admm"])
def test_cbpdndl_pgm_clr_settings_match_sporco(xmethod):
    """SPORCO's cbpdndl_pgm_clr.py at a reduced size: colour, multi-scale (DictSize), FISTA
    coding and 'pgm' dictionary step, both with standard backtracking (and the same
    dictionary step after ADMM coding on the fused back end)."""
    from sporco.dictlrn import cbpdndl
    from sporco.pgm.backtrack import BacktrackStandard

    rng = np.random.RandomState(3)
    S, D0 = rng.randn(20, 20, 3, 3) * 0.1, rng.randn(7, 7, 3, 6)
    opt = {"MaxMainIter": 12, "DictSize": ((4, 4, 3, 3), (6, 6, 3, 3)),
           "CBPDN": {"Backtrack": BacktrackStandard(gamma_u=1.1), "L": 1.0} if xmethod == "pgm" else {},
           "CCMOD": {"Backtrack": BacktrackStandard(), "L": 1.0}}
    sp = _sporco(S, D0, opt, "pgm", xmethod)
    its = sp.getitstat()
    o = csc.DictLearnOptions.from_sporco(opt, dmethod="pgm", xmethod=xmethod)
    if xmethod == "admm":
        o = o.replace(cbpdn=o.cbpdn.replace(backend="numba"))
    res = csc.DictLearn(*_csc(S, D0)[:1], LMBDA, o).solve(_csc(S, D0)[1])
    _close(csc.to_sporco_layout(res.dictionary.numpy(), "dictionary"), sp.getdict().squeeze())
    assert max(its.D_ItBt) > 1 and (xmethod == "admm" or max(its.X_ItBt) > 1)
    coding = ("x_L", "x_F_backtrack") if xmethod == "pgm" else ()
    for name in ("objective",) + coding + ("d_L", "d_F_backtrack", "d_Q_backtrack",
                 "d_backtrack_iterations", "d_residual"):
        _close(getattr(res.stats, name), getattr(its, SPORCO_DICTLEARN_STATS_NAMES[name]))


def test_new_steps_in_float32_follow_float64_on_each_device():
    """FISTA coding with backtracking, the 'ism' step and a multi-scale dictionary, in float32 on
    the CPU (and CUDA where present) against the float64 run."""
    S, D0 = _data()
    Dc, Sc = _csc(S, D0)
    o = csc.DictLearnOptions(max_iter=8, dmethod="ism", xmethod="pgm", dict_size=((4, 4, 2), (6, 6, 3)),
                             fista=csc.FISTAOptions(max_iter=1, L=1.0, backtrack="standard"),
                             ccmod=csc.DictUpdateOptions(auto_rho=True, zero_mean=True))
    ref = csc.DictLearn(Dc, LMBDA, o).solve(Sc)
    for dev in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        res = csc.DictLearn(Dc.float(), LMBDA, o).solve(Sc.float().to(dev))
        assert res.dictionary.device.type == dev and res.dictionary.dtype == torch.float32
        assert (res.dictionary.double().cpu() - ref.dictionary).abs().max() < 1e-4
        np.testing.assert_allclose(res.stats.objective, ref.stats.objective, rtol=1e-4)


def test_checkpoint_fingerprint_leaves_new_options_out_at_their_defaults():
    """Checkpoints written before the FISTA coding step, DictSize, momenta, backtracking and
    zero_dual resume: those options are not in the fingerprint at their defaults."""
    from csc.learn.dictlearn import _resume_options

    d = _resume_options(csc.DictLearnOptions(dmethod="cns"))
    assert not {"xmethod", "fista", "dict_size"} & set(d)
    assert not {"momentum", "momentum_a", "momentum_b", "backtrack", "gamma_u", "backtrack_max_iter",
                "zero_dual"} & set(d["ccmod"])
    d = _resume_options(csc.DictLearnOptions(xmethod="pgm", ccmod=csc.DictUpdateOptions(momentum="linear")))
    assert d["xmethod"] == "pgm" and "fista" in d and d["ccmod"]["momentum"] == "linear"

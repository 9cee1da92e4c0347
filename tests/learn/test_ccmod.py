"""The stand-alone dictionary updates against SPORCO 0.2.2 (float64): csc.ConvCnstrMOD (SPORCO
``pgm.ccmod.ConvCnstrMOD``, its three momenta, with and without ``X0``) and
csc.ConvCnstrMODConsensus (``admm.ccmod.ConvCnstrMOD_Consensus``, ``Y0``, ``U0``, adaptive
ρ); single-channel, colour dictionaries and grey dictionaries of colour codes; the same
iterations, the dictionary to 1e-12 and every statistic to 1e-12 (relative)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import csc
from csc.learn.options import CCMOD_DEFAULTS

from ..conftest import needs_sporco

H = W = 16
KH = 5
K, B, C = 4, 3, 3


def _data(colour: bool = False, channel_codes: bool = False, seed: int = 0):
    """SPORCO layouts: codes (H, W, Cx, B, K), images (H, W, [C,] B), kernels (kh, kw, [C,] K)."""
    rng = np.random.RandomState(seed)
    Cx = C if channel_codes else 1
    X = rng.randn(H, W, Cx, B, K) * (rng.rand(H, W, Cx, B, K) < 0.1)
    S = rng.randn(H, W, C, B) if colour else rng.randn(H, W, B)
    D0 = rng.randn(KH, KH, C, K) if colour and not channel_codes else rng.randn(KH, KH, K)
    return X, S, D0


def _csc(X, S, D0):
    """(codes, images, kernels) in csc's layouts."""
    Z = np.moveaxis(X, (2, 3, 4), (1, 0, 2))  # (B, Cx, K, H, W)
    Z = Z[:, 0] if X.shape[2] == 1 else Z
    Sc = np.moveaxis(S, (2, 3), (1, 0)) if S.ndim == 4 else np.moveaxis(S, 2, 0)
    return (torch.from_numpy(np.ascontiguousarray(Z)), torch.from_numpy(np.ascontiguousarray(Sc)),
            torch.from_numpy(np.ascontiguousarray(csc.from_sporco_layout(D0, "dictionary"))))


def _padded(D0):
    """SPORCO's X0/Y0: the kernels zero-padded to H×W in its (H, W, C, 1, K) layout."""
    Dp = np.zeros((H, W) + (D0.shape[2:-1] or (1,)) + (1, D0.shape[-1]))
    Dp[:KH, :KH] = D0.reshape(KH, KH, -1, 1, D0.shape[-1])
    return Dp


def _close(a, b, tol=1e-12):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= tol * max(np.abs(b).max(), 1e-300), np.abs(a - b).max()


def _check(res, sp, fields):
    its = sp.getitstat()
    D = csc.to_sporco_layout(res.dictionary.numpy(), "dictionary")
    _close(D, sp.getdict().reshape(D.shape))
    assert res.iterations == len(its.Iter)
    for name in fields:
        _close(getattr(res.stats, name), getattr(its, csc.learn.ccmod.SPORCO_DICTUPDATE_STATS_NAMES[name]))


@needs_sporco
@pytest.mark.parametrize("momentum", ["MomentumNesterov", "MomentumLinear", "MomentumGenLinear"])
@pytest.mark.parametrize("start", [False, True])
def test_pgm_update_matches_sporco(momentum, start):
    from sporco.pgm import ccmod, momentum as spm

    X, S, D0 = _data()
    opt = {"MaxMainIter": 25, "L": 20.0, "RelStopTol": 1e-14, "Momentum": getattr(spm, momentum)()}
    sp = ccmod.ConvCnstrMOD(X, S, D0.shape, ccmod.ConvCnstrMOD.Options(dict(opt, X0=_padded(D0) if start else None)))
    sp.solve()
    Z, Sc, Dc = _csc(X, S, D0)
    res = csc.ConvCnstrMOD((KH, KH), csc.DictUpdateOptions.from_sporco(opt)).solve(Z, Sc, x0=Dc if start else None)
    _check(res, sp, ("data_fidelity", "residual", "L"))
    assert res.u is None and np.isnan(res.stats.rho).all()


@needs_sporco
def test_pgm_update_stops_as_sporco_and_takes_zero_mean():
    from sporco.pgm import ccmod

    X, S, D0 = _data(seed=1)
    opt = {"L": 200.0, "ZeroMean": True, "RelStopTol": 1e-6}
    sp = ccmod.ConvCnstrMOD(X, S, D0.shape, ccmod.ConvCnstrMOD.Options(opt))
    sp.solve()
    Z, Sc, _ = _csc(X, S, D0)
    res = csc.ConvCnstrMOD((KH, KH), csc.DictUpdateOptions.from_sporco(opt)).solve(Z, Sc)
    assert 5 < res.iterations < CCMOD_DEFAULTS.max_iter  # stopped at the tolerance, as SPORCO
    _check(res, sp, ("data_fidelity", "residual"))
    assert res.dictionary.sum((1, 2)).abs().max() < 1e-14


@needs_sporco
@pytest.mark.parametrize("case", ["plain", "y0", "y0-u0", "auto-rho", "colour", "grey-of-colour"])
def test_consensus_update_matches_sporco(case):
    from sporco.admm import ccmod

    colour, chan = case == "colour" or case == "grey-of-colour", case == "grey-of-colour"
    X, S, D0 = _data(colour, chan)
    opt = {"MaxMainIter": 20 if colour else 30, "rho": 10.0}
    if case == "auto-rho":
        opt.update(rho=1.0, AutoRho={"Enabled": True, "Period": 3}, RelaxParam=1.5)
    Z, Sc, Dc = _csc(X, S, D0)
    kw, spo = {}, dict(opt)
    if case.startswith("y0"):
        kw["y0"], spo["Y0"] = Dc, _padded(D0)
    if case == "y0-u0":
        U0 = np.random.RandomState(9).randn(H, W, 1, 1, K, B) * 0.01  # SPORCO's (H, W, C, 1, K, B)
        kw["u0"], spo["U0"] = torch.from_numpy(np.ascontiguousarray(np.moveaxis(U0[:, :, 0, 0], (2, 3), (1, 0)))), U0
    sp = ccmod.ConvCnstrMOD_Consensus(X, S, D0.shape, ccmod.ConvCnstrMOD_Consensus.Options(spo))
    sp.solve()
    res = csc.ConvCnstrMODConsensus((KH, KH), csc.DictUpdateOptions.from_sporco(opt, dmethod="cns")).solve(Z, Sc, **kw)
    _check(res, sp, ("data_fidelity", "primal_residual", "dual_residual", "eps_primal", "eps_dual", "rho"))
    if case == "colour":
        assert res.dictionary.shape == (K, C, KH, KH)
    if case == "y0-u0":  # SPORCO's U after the iterations, (H, W, 1, 1, K, B)
        _close(np.moveaxis(res.u.numpy(), (0, 1), (3, 2)), sp.U[:, :, 0, 0])


def test_float32_follows_float64_and_runs_on_each_device():
    X, S, D0 = _data()
    Z, Sc, Dc = _csc(X, S, D0)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for cls, kw in ((csc.ConvCnstrMOD, {"x0": Dc}), (csc.ConvCnstrMODConsensus, {"y0": Dc})):
        ref = cls((KH, KH), csc.DictUpdateOptions(max_iter=20, L=20.0, rho=10.0)).solve(Z, Sc, **kw)
        for dev in devices:
            res = cls((KH, KH), csc.DictUpdateOptions(max_iter=20, L=20.0, rho=10.0)).solve(
                Z.float().to(dev), Sc.float().to(dev), **{k: v.float() for k, v in kw.items()})
            assert res.dictionary.device.type == dev and res.dictionary.dtype == torch.float32
            assert (res.dictionary.double().cpu() - ref.dictionary).abs().max() < 1e-4
            np.testing.assert_allclose(res.stats.data_fidelity, ref.stats.data_fidelity, rtol=1e-4)


def test_bad_input_is_named():
    X, S, D0 = _data()
    Z, Sc, Dc = _csc(X, S, D0)
    m = csc.ConvCnstrMOD((KH, KH))
    with pytest.raises(ValueError, match="codes: expected"):
        m.solve(Z[:2], Sc)
    with pytest.raises(ValueError, match="x0: expected kernels"):
        m.solve(Z, Sc, x0=Dc[:2])
    big = torch.zeros(K, H, W, dtype=torch.float64)
    big[:, 7, 7] = 1.0
    with pytest.raises(ValueError, match="x0: nonzero entries outside"):
        m.solve(Z, Sc, x0=big)
    with pytest.raises(ValueError, match="u0: expected the scaled duals"):
        csc.ConvCnstrMODConsensus((KH, KH)).solve(Z, Sc, u0=torch.zeros(B, K, 4, 4))
    with pytest.raises(TypeError, match="options: expected DictUpdateOptions"):
        csc.ConvCnstrMOD((KH, KH), csc.DictLearnOptions())
    with pytest.raises(ValueError, match="momentum: expected one of"):
        csc.DictUpdateOptions(momentum="heavy-ball")
    with pytest.raises(ValueError, match="kernel_size: expected"):
        csc.ConvCnstrMOD(5)


@needs_sporco
def test_pgm_update_with_backtracking_matches_sporco():
    from sporco.pgm import ccmod
    from sporco.pgm.backtrack import BacktrackStandard

    X, S, D0 = _data(seed=3)
    opt = {"MaxMainIter": 25, "L": 0.5, "Backtrack": BacktrackStandard(gamma_u=1.5)}
    sp = ccmod.ConvCnstrMOD(X, S, D0.shape, ccmod.ConvCnstrMOD.Options(opt))
    sp.solve()
    Z, Sc, _ = _csc(X, S, D0)
    o = csc.DictUpdateOptions.from_sporco(opt)
    assert (o.backtrack, o.gamma_u, o.backtrack_max_iter) == ("standard", 1.5, 50)
    res = csc.ConvCnstrMOD((KH, KH), o).solve(Z, Sc)
    assert max(sp.getitstat().IterBTrack) > 1  # the line search raised L
    _check(res, sp, ("data_fidelity", "residual", "L", "F_backtrack", "Q_backtrack", "backtrack_iterations"))
    with pytest.raises(ValueError, match="robust backtracking of the dictionary step is not offered"):
        from sporco.pgm.backtrack import BacktrackRobust
        csc.DictUpdateOptions.from_sporco({"Backtrack": BacktrackRobust()})

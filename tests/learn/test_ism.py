"""The 'ism' dictionary step (SPORCO ``admm.ccmod.ConvCnstrMOD_IterSM``: ADMM with one x for all
images, the x-step solved exactly per frequency) against SPORCO 0.2.2 (float64): stand-alone
(``csc.ConvCnstrMODIterSM`` with ``Y0``, adaptive ρ with auto-scaling, stopping; grey and
colour) and in the batch learner (``dmethod='ism'``, both coding back ends, and with the
joint-sparsity coding step of ``cbpdndl_jnt_clr.py``); dictionaries and statistics to 1e-12."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import csc
from csc.learn.ccmod import SPORCO_DICTUPDATE_STATS_NAMES
from csc.learn.dictlearn import SPORCO_DICTLEARN_STATS_NAMES
from csc.learn.options import DICTLEARN_CBPDN_DEFAULTS

from ..backends_params import CPU_BACKENDS
from ..conftest import needs_sporco

pytestmark = needs_sporco

H = W = 16
KH, K, B = 5, 4, 3


def _t(a) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def _close(a, b, tol=1e-12):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= tol * np.abs(b).max(), np.abs(a - b).max() / np.abs(b).max()


@pytest.mark.parametrize("colour", [False, True])
def test_standalone_ism_matches_sporco(colour):
    from sporco.admm import ccmod

    rng = np.random.RandomState(0)
    X = rng.randn(H, W, 1, B, K) * (rng.rand(H, W, 1, B, K) < 0.1)
    S = rng.randn(H, W, 3, B) if colour else rng.randn(H, W, B)
    D0 = rng.randn(KH, KH, 3, K) if colour else rng.randn(KH, KH, K)
    opt = {"MaxMainIter": 40, "rho": 1.0, "AutoRho": {"RsdlRatio": 1.05}}  # SPORCO's: every iteration, scaled
    Y0 = np.zeros((H, W, 3 if colour else 1, 1, K))
    Y0[:KH, :KH, :, 0] = D0.reshape(KH, KH, -1, K)
    sp = ccmod.ConvCnstrMOD_IterSM(X, S, D0.shape, ccmod.ConvCnstrMOD_IterSM.Options(dict(opt, Y0=Y0)))
    sp.solve()
    its = sp.getitstat()
    Sc = np.moveaxis(S, (2, 3), (1, 0)) if colour else np.moveaxis(S, 2, 0)
    res = csc.ConvCnstrMODIterSM((KH, KH), csc.DictUpdateOptions.from_sporco(opt, "ism")).solve(
        _t(np.moveaxis(X[:, :, 0], (2, 3), (0, 1))), _t(Sc), y0=_t(csc.from_sporco_layout(D0, "dictionary")))
    assert res.iterations == len(its.Iter) < 40 and len(set(its.Rho)) > 2  # stopped; ρ adapted
    _close(csc.to_sporco_layout(res.dictionary.numpy(), "dictionary"), sp.getdict().reshape(
        csc.to_sporco_layout(res.dictionary.numpy(), "dictionary").shape))
    for name in ("data_fidelity", "constraint", "primal_residual", "dual_residual", "eps_primal", "rho"):
        _close(getattr(res.stats, name), getattr(its, SPORCO_DICTUPDATE_STATS_NAMES[name]))
    _close(res.u.numpy(), np.moveaxis(sp.U.reshape(H, W, -1, K), (2, 3), (1, 0)).reshape(res.u.shape))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_learner_ism_matches_sporco(backend):
    from sporco.dictlrn import cbpdndl

    rng = np.random.RandomState(1)
    S, D0 = rng.randn(20, 20, 3) * 0.1, rng.randn(6, 6, 5)
    opt = {"MaxMainIter": 12, "AccurateDFid": True, "CBPDN": {"rho": 1.0},
           "CCMOD": {"rho": 3.0, "ZeroMean": True, "AutoRho": {"Period": 2, "RsdlRatio": 1.05}}}
    sp = cbpdndl.ConvBPDNDictLearn(D0, S, 0.05, cbpdndl.ConvBPDNDictLearn.Options(opt, dmethod="ism"), dmethod="ism")
    sp.solve()
    its = sp.getitstat()
    o = csc.DictLearnOptions.from_sporco(opt, dmethod="ism")
    assert o.ccmod.auto_rho and csc.DictLearnOptions.from_sporco({}, dmethod="ism").ccmod.auto_rho  # SPORCO's 'ism'
    res = csc.DictLearn(_t(np.moveaxis(D0, 2, 0)), 0.05, o.replace(cbpdn=o.cbpdn.replace(backend=backend))).solve(
        _t(np.moveaxis(S, 2, 0)))
    _close(np.moveaxis(res.dictionary.numpy(), 0, 2), sp.getdict().squeeze())
    assert len(set(its.DRho)) > 1
    for name in ("objective", "constraint", "d_primal_residual", "d_dual_residual", "d_rho"):
        _close(getattr(res.stats, name), getattr(its, SPORCO_DICTLEARN_STATS_NAMES[name]))


def test_joint_sparsity_learner_with_ism_matches_sporco():
    """cbpdndl_jnt_clr.py's pieces at a reduced size: a grey dictionary from colour images, the
    ConvBPDNJoint coding step and the 'ism' dictionary step (SPORCO's learner, U0 = Y0)."""
    from sporco.admm import cbpdn
    from sporco.dictlrn import cbpdndl

    rng = np.random.RandomState(2)
    S, D0 = rng.randn(20, 20, 3, 2) * 0.1, rng.randn(6, 6, 5)
    lmbda, mu = 0.02, 0.01
    opt = {"MaxMainIter": 10, "CBPDN": {"rho": 50 * lmbda + 0.5}, "CCMOD": {"rho": 10.0 * 2}}
    dl = cbpdndl.ConvBPDNDictLearn(D0, S, lmbda, cbpdndl.ConvBPDNDictLearn.Options(opt, dmethod="ism"),
                                   dmethod="ism", dimK=1)
    dl.xstep = cbpdn.ConvBPDNJoint(dl.xstep.D, S, lmbda, mu, opt=cbpdn.ConvBPDNJoint.Options(dict(dl.opt["CBPDN"])),
                                   dimK=1)
    dl.solve()
    o = csc.DictLearnOptions.from_sporco(opt, dmethod="ism")
    jopts = csc.CBPDNJointOptions(**{f.name: getattr(o.cbpdn, f.name) for f in dataclasses.fields(o.cbpdn)})
    Dc = _t(np.moveaxis(D0, 2, 0))
    res = csc.DictLearn(Dc, lmbda, o.replace(cbpdn=DICTLEARN_CBPDN_DEFAULTS),
                        coding=csc.ConvBPDNJoint(Dc, lmbda, mu, jopts)).solve(_t(np.moveaxis(S, (2, 3), (1, 0))))
    _close(np.moveaxis(res.dictionary.numpy(), 0, 2), dl.getdict().squeeze())
    _close(res.stats.objective, dl.getitstat().ObjFun)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("method", ["ism", "cns"])
def test_cbpdndl_jnt_clr_assembly_matches_sporco(method, backend):
    """cbpdndl_jnt_clr.py at a reduced size: SPORCO's dictlrn.DictLearn assembled from a
    ConvBPDNJoint x-step and a ConvCnstrMOD d-step with Y0 the normalised D0 and U0 = 0, i.e.
    csc's learner with ``DictUpdateOptions(zero_dual=True)``."""
    from sporco import cnvrep
    from sporco.admm import cbpdn, ccmod
    from sporco.dictlrn import dictlrn

    rng = np.random.RandomState(2)
    sh, D0 = rng.randn(20, 20, 3, 2) * 0.1, rng.randn(6, 6, 5)
    cri = cnvrep.CDU_ConvRepIndexing(D0.shape, sh)
    lmbda, mu = 0.02, 0.01
    autorho = {"Period": 10, "AutoScaling": False, "RsdlRatio": 10.0, "Scaling": 2.0, "RsdlTarget": 1.0}
    optx = cbpdn.ConvBPDNJoint.Options({"MaxMainIter": 1, "rho": 50.0 * lmbda + 0.5, "AutoRho": autorho})
    optd = ccmod.ConvCnstrMODOptions({"MaxMainIter": 1, "rho": 10.0 * cri.K, "AutoRho": autorho}, method=method)
    D0n = cnvrep.Pcn(D0, D0.shape, cri.Nv, dimN=2, dimC=0, crp=True, zm=optd["ZeroMean"])
    optd.update({"Y0": cnvrep.zpad(cnvrep.stdformD(D0n, cri.Cd, cri.M), cri.Nv),
                 "U0": np.zeros(cri.shpD + ((cri.K * cri.C,) if method == "cns" else ()))})
    d = dictlrn.DictLearn(cbpdn.ConvBPDNJoint(D0n, sh, lmbda, mu, optx),
                          ccmod.ConvCnstrMOD(None, sh, D0.shape, optd, method=method),
                          dictlrn.DictLearn.Options({"MaxMainIter": 10}))
    D1 = d.solve().squeeze()
    ccm = {"rho": 10.0 * cri.K, "AutoRho": {"Enabled": method == "ism"}}
    o = csc.DictLearnOptions.from_sporco({"MaxMainIter": 10, "CCMOD": ccm}, dmethod=method)
    o = o.replace(ccmod=o.ccmod.replace(zero_dual=True))
    jopts = csc.CBPDNJointOptions(**{f.name: getattr(o.cbpdn, f.name) for f in dataclasses.fields(o.cbpdn)})
    Dc = _t(np.moveaxis(D0, 2, 0))
    coding = csc.ConvBPDNJoint(Dc, lmbda, mu, jopts.replace(rho=50.0 * lmbda + 0.5, backend=backend))
    res = csc.DictLearn(Dc, lmbda, o, coding=coding).solve(_t(np.moveaxis(sh, (2, 3), (1, 0))))
    assert np.abs(D1 - D0n).max() > 0.01  # it learned something
    _close(np.moveaxis(res.dictionary.numpy(), 0, 2), D1)

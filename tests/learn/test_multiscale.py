"""Multi-scale dictionaries (SPORCO's ``DictSize`` of several kernel sizes) against SPORCO 0.2.2
(float64): the projection (``cnvrep.Pcn`` with ``dsz`` groups, zero mean over each kernel's
own support), the batch learner (ADMM and FISTA coding, 'pgm' and 'cns' steps, both CPU back
ends, grey and colour), the online learner and the stand-alone ConvCnstrMOD; dictionaries to
1e-12, objectives to 1e-12 (relative)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import csc
from csc.learn.constraints import KernelConstraint, kernel_constraint

from ..backends_params import CPU_BACKENDS
from ..conftest import needs_sporco

LMBDA = 0.05
GREY = ((4, 4, 2), (6, 6, 3))
COLOUR = ((4, 4, 3, 2), (6, 6, 3, 3))


def _close(a, b, tol=1e-12):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert np.abs(a - b).max() <= tol * np.abs(b).max(), np.abs(a - b).max() / np.abs(b).max()


def _t(a) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


@needs_sporco
@pytest.mark.parametrize("zero_mean", [False, True])
@pytest.mark.parametrize("dsz", [GREY, COLOUR])
def test_projection_matches_sporco(dsz, zero_mean):
    from sporco import cnvrep

    colour = len(dsz[0]) == 4
    D = np.random.RandomState(1).randn(*((7, 7, 3, 5) if colour else (7, 7, 5)))
    ref = cnvrep.Pcn(D, dsz, (), dimN=2, dimC=int(colour), crp=True, zm=zero_mean)
    cons = kernel_constraint(dsz, zero_mean=zero_mean)
    assert cons.kernel_size == (6, 6) and cons.count == 5
    got = cons.project(_t(csc.from_sporco_layout(D, "dictionary")))
    _close(csc.to_sporco_layout(got.numpy(), "dictionary"), ref)
    assert got[:2, ..., 4:, :].abs().max() == 0 and got[:2, ..., :, 4:].abs().max() == 0  # own support


@needs_sporco
@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("colour, xmethod, dmethod", [(False, "admm", "cns"), (True, "admm", "pgm"),
                                                      (False, "pgm", "pgm"), (True, "pgm", "cns")])
def test_batch_learner_matches_sporco(backend, colour, xmethod, dmethod):
    from sporco.dictlrn import cbpdndl
    from sporco.pgm.backtrack import BacktrackStandard

    if xmethod == "pgm" and backend != CPU_BACKENDS[0]:
        pytest.skip("the FISTA coding step runs the torch back end on every device")
    rng = np.random.RandomState(0)
    S = rng.randn(20, 20, 3, 3) * 0.1 if colour else rng.randn(20, 20, 3) * 0.1
    D0 = rng.randn(7, 7, 3, 5) if colour else rng.randn(7, 7, 5)
    cb = {"L": 1.0, "Backtrack": BacktrackStandard()} if xmethod == "pgm" else {"rho": 1.0}
    opt = {"MaxMainIter": 10, "DictSize": COLOUR if colour else GREY, "CBPDN": cb,
           "CCMOD": {"ZeroMean": True, **({"L": 50.0} if dmethod == "pgm" else {"rho": 1.0})}}
    sp = cbpdndl.ConvBPDNDictLearn(D0, S, LMBDA, cbpdndl.ConvBPDNDictLearn.Options(opt, xmethod=xmethod,
                                                                                   dmethod=dmethod),
                                   xmethod=xmethod, dmethod=dmethod)
    sp.solve()
    o = csc.DictLearnOptions.from_sporco(opt, dmethod=dmethod, xmethod=xmethod)
    if xmethod == "admm":
        o = o.replace(cbpdn=o.cbpdn.replace(backend=backend))
    Sc = np.moveaxis(S, (2, 3), (1, 0)) if colour else np.moveaxis(S, 2, 0)
    res = csc.DictLearn(_t(csc.from_sporco_layout(D0, "dictionary")), LMBDA, o).solve(_t(Sc))
    assert res.dictionary.shape[-2:] == (6, 6)
    _close(csc.to_sporco_layout(res.dictionary.numpy(), "dictionary"), sp.getdict().squeeze())
    _close(res.stats.objective, sp.getitstat().ObjFun)
    assert res.dictionary[:2].sum((-2, -1)).abs().max() < 1e-14  # zero mean over the 4×4 support


@needs_sporco
def test_online_learner_matches_sporco():
    from sporco.dictlrn import onlinecdl

    rng = np.random.RandomState(2)
    D0 = rng.randn(7, 7, 5)
    opt = {"DictSize": GREY, "CBPDN": {"MaxMainIter": 20}}
    sp = onlinecdl.OnlineConvBPDNDictLearn(D0, LMBDA, onlinecdl.OnlineConvBPDNDictLearn.Options(dict(opt)))
    learner = csc.OnlineDictLearn(_t(np.moveaxis(D0, 2, 0)), LMBDA, csc.OnlineDictLearnOptions.from_sporco(opt))
    for _ in range(2):
        s = rng.randn(16, 16) * 0.1
        sp.solve(s)
        learner.step(_t(s))
    _close(np.moveaxis(learner.dictionary.numpy(), 0, 2), sp.getdict().squeeze())


@needs_sporco
def test_standalone_update_matches_sporco():
    from sporco.pgm import ccmod

    rng = np.random.RandomState(3)
    X = rng.randn(16, 16, 1, 3, 5) * (rng.rand(16, 16, 1, 3, 5) < 0.1)
    S = rng.randn(16, 16, 3)
    opt = {"MaxMainIter": 20, "L": 20.0, "ZeroMean": True}
    sp = ccmod.ConvCnstrMOD(X, S, GREY, ccmod.ConvCnstrMOD.Options(opt))
    sp.solve()
    res = csc.ConvCnstrMOD(GREY, csc.DictUpdateOptions.from_sporco(opt)).solve(
        _t(np.moveaxis(X[:, :, 0], (2, 3), (0, 1))), _t(np.moveaxis(S, 2, 0)))
    _close(np.moveaxis(res.dictionary.numpy(), 0, 2), sp.getdict().squeeze())
    _close(res.stats.data_fidelity, sp.getitstat().DFid)


def test_groups_are_checked():
    with pytest.raises(ValueError, match="sizes: expected groups"):
        kernel_constraint(((4, 4), (6, 6, 3)))
    with pytest.raises(ValueError, match="kernel_size: .* is not the largest size"):
        KernelConstraint((5, 5), sizes=((4, 4, 2), (6, 6, 3)))
    with pytest.raises(ValueError, match="zero_mean: a 1×1 kernel"):
        kernel_constraint(((1, 1, 2), (6, 6, 3)), zero_mean=True)
    D0 = torch.randn(5, 7, 7, dtype=torch.float64)
    with pytest.raises(ValueError, match="dictionary: 4 kernels, but the kernel-size groups"):
        csc.DictLearn(D0[:4], LMBDA, csc.DictLearnOptions(dict_size=GREY))
    with pytest.raises(ValueError, match="dictionary: 5×5 kernels are smaller than the largest size 6×6"):
        csc.DictLearn(D0[:, :5, :5], LMBDA, csc.DictLearnOptions(dict_size=GREY))
    with pytest.raises(ValueError, match="dict_size: the group .* has 3 channels, the dictionary 1"):
        csc.DictLearn(D0, LMBDA, csc.DictLearnOptions(dict_size=COLOUR))
    with pytest.raises(ValueError, match="dict_size: expected groups"):
        csc.DictLearnOptions(dict_size="big")
    assert csc.DictLearnOptions(dict_size=(6, 6, 5)).dict_size == ((6, 6, 5),)  # one size: one group

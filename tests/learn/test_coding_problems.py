"""The batch learner with another coding problem (SPORCO's ``DictLearn(xstep, dstep)``):
the gradient-regularised and elastic-net coding steps against SPORCO 0.2.2, whose
``ConvBPDNDictLearn`` is given the same problem as its x-step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import csc
from csc.learn.options import DICTLEARN_CBPDN_DEFAULTS

from ..backends_params import CPU_BACKENDS
from ..conftest import central_crop, highpass, needs_sporco, sporco_image

pytestmark = needs_sporco

LMBDA, MU = 0.05, 0.5


def _data():
    img = sporco_image()
    S = np.stack([highpass(central_crop(img, 32, 32, dy=20 * i, dx=-15 * i)) for i in range(3)], -1)  # (H, W, B)
    D0 = np.random.RandomState(7).randn(6, 6, 6)
    return D0, S


def _sporco(D0, S, dmethod, problem, opt):
    from sporco.admm import cbpdn
    from sporco.dictlrn import cbpdndl

    dl = cbpdndl.ConvBPDNDictLearn(D0, S, LMBDA, cbpdndl.ConvBPDNDictLearn.Options(dict(opt, Verbose=False),
                                                                                  dmethod=dmethod), dmethod=dmethod)
    xopt = dict(dl.opt["CBPDN"])
    if problem == "grad-reg":
        xopt["GradWeight"] = np.linspace(0.5, 1.5, 6)
        dl.xstep = cbpdn.ConvBPDNGradReg(dl.xstep.D, S, LMBDA, MU, opt=cbpdn.ConvBPDNGradReg.Options(xopt), dimK=1)
    else:
        dl.xstep = cbpdn.ConvElasticNet(dl.xstep.D, S, LMBDA, MU, opt=cbpdn.ConvElasticNet.Options(xopt), dimK=1)
    dl.solve()
    return dl.getdict().squeeze()


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dmethod", ["pgm", "cns"])
@pytest.mark.parametrize("problem", ["grad-reg", "elastic-net"])
def test_batch_learner_with_a_penalised_coding_step_matches_sporco(backend, dmethod, problem):
    D0, S = _data()
    opt = {"MaxMainIter": 30, "CCMOD": {"rho": 1.0} if dmethod == "cns" else {"L": 1.0}}
    D_sp = _sporco(D0, S, dmethod, problem, opt)
    base = DICTLEARN_CBPDN_DEFAULTS.replace(backend=backend)
    Dc = csc.from_sporco_layout(D0, "dictionary")
    if problem == "grad-reg":
        import dataclasses

        fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.init}
        coding = csc.ConvBPDNGradReg(Dc, LMBDA, MU, csc.GradRegOptions(**fields, grad_weight=np.linspace(0.5, 1.5, 6)))
    else:
        coding = csc.ConvElasticNet(Dc, LMBDA, MU, base)
    res = csc.DictLearn(Dc, LMBDA, csc.DictLearnOptions.from_sporco(opt, dmethod=dmethod), coding=coding).solve(
        torch.from_numpy(np.ascontiguousarray(np.moveaxis(S, -1, 0))))
    D = csc.to_sporco_layout(res.dictionary.numpy(), "dictionary")
    D_plain = csc.to_sporco_layout(csc.DictLearn(Dc, LMBDA, csc.DictLearnOptions.from_sporco(opt, dmethod=dmethod)).solve(
        torch.from_numpy(np.ascontiguousarray(np.moveaxis(S, -1, 0)))).dictionary.numpy(), "dictionary")
    assert np.abs(D_plain - D_sp).max() > 1e-4  # the penalty changes the answer
    assert np.abs(D - D_sp).max() <= 1e-8 * np.abs(D_sp).max()


def test_coding_problem_errors():
    D = torch.randn(4, 5, 5, dtype=torch.float64)
    with pytest.raises(TypeError, match="coding"):
        csc.DictLearn(D, 0.1, coding="grad-reg")
    with pytest.raises(TypeError, match="coding"):
        csc.DictLearn(D, 0.1, coding=csc.ConvL1L1Grd(D, 0.1, 0.1))
    with pytest.raises(ValueError, match="λ"):
        csc.DictLearn(D, 0.1, coding=csc.ConvElasticNet(D, 0.2, 0.1))
    with pytest.raises(ValueError, match="options.cbpdn"):
        csc.DictLearn(D, 0.1, csc.DictLearnOptions(cbpdn=DICTLEARN_CBPDN_DEFAULTS.replace(max_iter=3)),
                      coding=csc.ConvElasticNet(D, 0.1, 0.1))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dmethod", ["pgm", "cns"])
def test_batch_learner_with_joint_sparsity_matches_sporco(backend, dmethod):
    """A gray dictionary learned from colour images with the joint-sparsity coding step
    (SPORCO's cbpdndl with a ConvBPDNJoint x-step, dimK=1; 'pgm', or 'cns' with the B·C
    image channels as the consensus blocks, SPORCO's Nb = C·K)."""
    from sporco.admm import cbpdn
    from sporco.dictlrn import cbpdndl

    from ..problems.test_colour import colour_crop

    S = np.stack([np.moveaxis(colour_crop(24, dy=10 * i, dx=-10 * i), 0, -1) for i in range(2)], -1)  # (H, W, C, B)
    D0 = np.random.RandomState(7).randn(6, 6, 5)
    lmbda, mu = 0.002, 0.004
    opt = {"MaxMainIter": 30, "CCMOD": {"L": 1.0} if dmethod == "pgm" else {"rho": 1.0}}
    dl = cbpdndl.ConvBPDNDictLearn(D0, S, lmbda, cbpdndl.ConvBPDNDictLearn.Options(dict(opt, Verbose=False),
                                                                                   dmethod=dmethod),
                                   dmethod=dmethod, dimK=1)
    dl.xstep = cbpdn.ConvBPDNJoint(dl.xstep.D, S, lmbda, mu, opt=cbpdn.ConvBPDNJoint.Options(dict(dl.opt["CBPDN"])),
                                   dimK=1)
    dl.solve()
    D_sp = dl.getdict().squeeze()
    base = DICTLEARN_CBPDN_DEFAULTS.replace(backend=backend)
    import dataclasses

    jopts = csc.CBPDNJointOptions(**{f.name: getattr(base, f.name) for f in dataclasses.fields(base)})
    Dc = csc.from_sporco_layout(D0, "dictionary")
    res = csc.DictLearn(Dc, lmbda, csc.DictLearnOptions.from_sporco(opt, dmethod=dmethod),
                        coding=csc.ConvBPDNJoint(Dc, lmbda, mu, jopts)).solve(torch.from_numpy(np.ascontiguousarray(np.moveaxis(S, (2, 3), (1, 0)))))
    assert res.codes.shape == (2, 3, 5, 24, 24) and res.reconstruct().shape == (2, 3, 24, 24)
    D = csc.to_sporco_layout(res.dictionary.numpy(), "dictionary")
    assert np.abs(D_sp - D0 / np.sqrt((D0 ** 2).sum((0, 1), keepdims=True))).max() > 0.01
    assert np.abs(D - D_sp).max() <= 1e-8 * np.abs(D_sp).max()
    np.testing.assert_allclose(res.stats.objective, np.asarray(dl.getitstat().ObjFun), rtol=1e-10)

"""Colour dictionary learning against SPORCO 0.2.2 (float64): multi-channel dictionaries
(K, C, kh, kw) learned from colour images by the batch learner ('pgm' and 'cns', SPORCO's
``ConvBPDNDictLearn`` with ``dimK=1``) and the online learner (``OnlineConvBPDNDictLearn``
with ``dimK=0``), on both coding back ends; constraints per kernel over its channels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import csc

from ..backends_params import CPU_BACKENDS
from ..conftest import needs_sporco
from ..problems.test_colour import colour_crop

pytestmark = needs_sporco

LMBDA = 0.002  # the highpassed colour crops are small (|s| ≲ 0.03): larger λ leaves every code zero


def _data(n: int = 3):
    D0 = np.random.RandomState(3).randn(6, 6, 3, 5)  # SPORCO layout (kh, kw, C, K)
    imgs = [np.moveaxis(colour_crop(24, dy=10 * i, dx=-10 * i), 0, -1) for i in range(n)]  # (H, W, C)
    return D0, imgs


def _unit(D):
    return D / np.sqrt((D ** 2).sum((0, 1, 2), keepdims=True))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dmethod, zero_mean", [("pgm", False), ("pgm", True), ("cns", False), ("cns", True)])
def test_batch_colour_learning_matches_sporco(backend, dmethod, zero_mean):
    from sporco.dictlrn import cbpdndl

    D0, imgs = _data()
    S = np.stack(imgs, -1)  # (H, W, C, B)
    ccmod = {"rho": 1.0} if dmethod == "cns" else {"L": 1.0}
    ccmod["ZeroMean"] = zero_mean
    opt = {"MaxMainIter": 30, "AccurateDFid": True, "CBPDN": {"rho": 50 * LMBDA + 0.5}, "CCMOD": ccmod}
    sp = cbpdndl.ConvBPDNDictLearn(D0, S, LMBDA, cbpdndl.ConvBPDNDictLearn.Options(
        dict(opt, Verbose=False), dmethod=dmethod), dmethod=dmethod, dimK=1)
    sp.solve()
    D_sp = sp.getdict().squeeze()
    its = sp.getitstat()
    o = csc.DictLearnOptions.from_sporco(opt, dmethod=dmethod)
    o = o.replace(cbpdn=o.cbpdn.replace(backend=backend))
    res = csc.DictLearn(csc.from_sporco_layout(D0, "dictionary"), LMBDA, o).solve(
        torch.from_numpy(np.ascontiguousarray(np.moveaxis(S, (2, 3), (1, 0)))))
    assert res.dictionary.shape == (5, 3, 6, 6)
    D = csc.to_sporco_layout(res.dictionary.numpy(), "dictionary")
    assert np.abs(D_sp - _unit(D0)).max() > 0.05  # it learned something
    assert np.abs(D - D_sp).max() <= 1e-8 * np.abs(D_sp).max()
    np.testing.assert_allclose(res.stats.objective, np.asarray(its.ObjFun), rtol=1e-8)
    np.testing.assert_allclose(res.stats.data_fidelity, np.asarray(its.DFid), rtol=1e-8)
    # the constraints, per kernel over its channels: unit norm; zero mean per channel
    norms = res.dictionary.square().sum((1, 2, 3)).sqrt()
    assert torch.allclose(norms, torch.ones(5, dtype=norms.dtype), atol=1e-12)
    if zero_mean:
        assert res.dictionary.mean((2, 3)).abs().max() < 1e-14
    rec = res.reconstruct()
    assert rec.shape == (3, 3, 24, 24)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_online_colour_learning_matches_sporco(backend):
    from sporco.dictlrn import onlinecdl

    D0, imgs = _data(4)
    opt = {"eta_a": 10.0, "eta_b": 5.0, "CBPDN": {"MaxMainIter": 50}}
    sp = onlinecdl.OnlineConvBPDNDictLearn(D0, LMBDA, onlinecdl.OnlineConvBPDNDictLearn.Options(
        dict(opt, Verbose=False)), dimK=0, dimN=2)
    o = csc.OnlineDictLearnOptions.from_sporco(opt)
    learner = csc.OnlineDictLearn(csc.from_sporco_layout(D0, "dictionary"), LMBDA,
                                  o.replace(cbpdn=o.cbpdn.replace(backend=backend)))
    for im in imgs:
        sp.solve(im)
        learner.step(torch.from_numpy(np.ascontiguousarray(np.moveaxis(im, -1, 0))))
        D_sp = sp.getdict().squeeze()
        D = csc.to_sporco_layout(learner.dictionary.numpy(), "dictionary")
        assert np.abs(D - D_sp).max() <= 1e-8 * np.abs(D_sp).max()
    assert np.abs(D_sp - _unit(D0)).max() > 0.01


def test_colour_image_sampler_and_fit():
    """ImageSampler takes colour images (N, C, H, W) and crops them; fit runs on them."""
    g = torch.Generator().manual_seed(0)
    imgs = torch.rand(3, 3, 20, 20, generator=g, dtype=torch.float64)
    sampler = csc.learn.onlinecdl.ImageSampler(imgs, batch_size=2, crop=12, generator=g)
    assert sampler.sample().shape == (2, 3, 12, 12)
    D0 = torch.randn(4, 3, 5, 5, generator=g, dtype=torch.float64)
    res = csc.OnlineDictLearn(D0, 0.01, csc.OnlineDictLearnOptions(
        cbpdn=csc.learn.options.ONLINE_CBPDN_DEFAULTS.replace(max_iter=5))).fit(sampler, 3)
    assert res.dictionary.shape == (4, 3, 5, 5) and len(res.stats) == 3


@pytest.mark.parametrize("make, text", [
    (lambda: csc.DictLearn(torch.rand(4, 3, 5, 5, dtype=torch.float64), 0.1, csc.DictLearnOptions(max_iter=1)).solve(
        torch.rand(2, 4, 16, 16, dtype=torch.float64)), "channels"),
    (lambda: csc.DictLearn(torch.rand(4, 3, 5, 5, dtype=torch.float64), 0.1, csc.DictLearnOptions(max_iter=1)).solve(
        torch.rand(2, 16, 16, dtype=torch.float64)), "(C, H, W) or (B, C, H, W)"),
    (lambda: csc.OnlineDictLearn(torch.rand(4, 3, 5, 5, dtype=torch.float64), 0.1).step(
        torch.rand(2, 16, 16, dtype=torch.float64)), "(C, H, W) or (B, C, H, W)"),
])
def test_colour_learning_channel_mismatch(make, text):
    with pytest.raises(ValueError) as info:
        make()
    assert text in str(info.value)

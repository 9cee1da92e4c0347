"""Dictionary learning with a mask (missing data): the batch learner against SPORCO 0.2.2's
``dictlrn.cbpdndlmd.ConvBPDNMaskDictLearn`` (xmethod 'admm', dmethod 'pgm' and 'cns'), the
online learner against ``dictlrn.onlinecdl.OnlineConvBPDNMaskDictLearn``, on both CPU back
ends in float64; the masked coding step over a batch of different masks against each image
alone; checkpoints and resume; bad masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import csc
from csc.learn.options import DICTLEARN_MASKDCPL_DEFAULTS
from csc.learn.coding import JointMaskDcpl
from csc.learn.dictlearn import SPORCO_DICTLEARN_STATS_NAMES
from csc.learn.onlinecdl import SPORCO_ONLINE_STATS_NAMES, ImageSampler

from ..backends_params import CPU_BACKENDS
from ..conftest import central_crop, highpass, needs_sporco, sporco_image

LMBDA, H = 0.02, 20


def _images(n: int = 3) -> np.ndarray:
    """n highpassed 20×20 crops of barbara, (n, H, W)."""
    img = sporco_image()
    return np.stack([highpass(central_crop(img, H, H, dy=20 * i, dx=-15 * i)) for i in range(n)])


def _masks(n: int = 3, seed: int = 3, weighted: bool = False) -> np.ndarray:
    """(n, H, W): 0 for about 30% of the pixels; ``weighted``: other weights in [0.5, 1.5)."""
    rs = np.random.RandomState(seed)
    m = (rs.rand(n, H, H) > 0.3).astype(np.float64)
    return m * (0.5 + rs.rand(n, H, H)) if weighted else m


def _D0(K: int = 6) -> np.ndarray:
    return np.random.RandomState(7).randn(5, 5, K)


def _sporco_batch(S, W, dmethod, sopt):
    from sporco.dictlrn import cbpdndlmd

    B = S.shape[0]
    Ss, Ws = np.moveaxis(S, 0, -1), np.moveaxis(W, 0, -1).reshape(H, H, 1, B, 1)  # SPORCO's internal layout
    opt = cbpdndlmd.ConvBPDNMaskDictLearn.Options(dict(sopt, Verbose=False), dmethod=dmethod)
    dl = cbpdndlmd.ConvBPDNMaskDictLearn(_D0(), Ss, LMBDA, Ws, opt, dmethod=dmethod)
    dl.solve()
    return dl.getdict().squeeze(), dl.getitstat()


def _csc_batch(S, W, dmethod, sopt, backend, **solve):
    opts = csc.DictLearnOptions.from_sporco({k: v for k, v in sopt.items() if k != "CBPDN"}, dmethod=dmethod)
    coding = csc.ConvBPDNMaskDcpl(csc.from_sporco_layout(_D0(), "dictionary"), LMBDA,
                                  csc.MaskDcplOptions.from_sporco({"MaxMainIter": 1, **sopt.get("CBPDN", {})},
                                                                  backend=backend))
    learner = csc.DictLearn(csc.from_sporco_layout(_D0(), "dictionary"), LMBDA, opts, coding=coding)
    return learner.solve(torch.from_numpy(S), torch.from_numpy(W), **solve)


def _rel(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def _assert_batch_stats(stats, its, names=None):
    """Every SPORCO statistic at every iteration to 1e-8 relative, except values at rounding
    level: while the codes are still all zero (the first iterations at this λ and ρ = 1) the
    dictionary step's residuals are sums of rounding errors (~1e-15, and ~1e-31 for PGM's
    squared residual) in SPORCO and in csc alike; there both must be below 1e-10 of the
    statistic's largest value. The constraint violation is rounding throughout (< 1e-12)."""
    for name, sname in SPORCO_DICTLEARN_STATS_NAMES.items():
        if name in ("time", "iteration", "constraint") or not hasattr(its, sname) or (names and name not in names):
            continue
        a, b = np.asarray(getattr(stats, name)), np.asarray(getattr(its, sname), float)
        tiny = np.abs(b) < 1e-10 * np.abs(b).max()
        assert np.all(np.abs(a[tiny]) < 1e-10 * np.abs(b).max()), name
        assert _rel(a[~tiny], b[~tiny]) <= 1e-8, name
    assert np.max(stats.constraint) < 1e-12 and np.max(its.Cnstr) < 1e-12


@needs_sporco
@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dmethod", ["pgm", "cns"])
def test_masked_batch_learning_matches_sporco(dmethod, backend):
    """3 images 20×20 with 30% missing pixels, K = 6 kernels 5×5, λ = 0.02, 30 outer iterations."""
    S, W = _images(), _masks()
    sopt = {"MaxMainIter": 30, "CCMOD": {"rho": 1.0} if dmethod == "cns" else {"L": 1.0}}
    D_sp, its = _sporco_batch(S, W, dmethod, sopt)
    res = _csc_batch(S, W, dmethod, sopt, backend)
    D = csc.to_sporco_layout(res.dictionary.numpy(), "dictionary")
    assert np.abs(D_sp - _D0() / np.linalg.norm(_D0(), axis=(0, 1))).max() > 0.01  # it learned
    assert np.abs(D - D_sp).max() <= 1e-8 * np.abs(D_sp).max()
    assert len(res.stats) == 30 and int((res.codes != 0).sum()) > 50
    _assert_batch_stats(res.stats, its)


@needs_sporco
@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dmethod", ["pgm", "cns"])
def test_masked_batch_weighted_mask_options(dmethod, backend):
    """A weighted mask, AccurateDFid, ZeroMean, over-relaxation 1 in the dictionary step and
    adaptive ρ on in both steps (period 3, ratio 1.2), 12 iterations."""
    S, W = _images(2), _masks(2, seed=5, weighted=True)
    ccmod = {"ZeroMean": True, **({"rho": 2.0, "RelaxParam": 1.0, "AutoRho": {"Enabled": True, "Period": 3, "RsdlRatio": 1.2}}
                                  if dmethod == "cns" else {"L": 2.0})}
    sopt = {"MaxMainIter": 12, "AccurateDFid": True, "CCMOD": ccmod,
            "CBPDN": {"rho": 0.5, "AutoRho": {"Enabled": True, "Period": 3, "RsdlRatio": 1.2}}}
    D_sp, its = _sporco_batch(S, W, dmethod, sopt)
    res = _csc_batch(S, W, dmethod, sopt, backend)
    D = csc.to_sporco_layout(res.dictionary.numpy(), "dictionary")
    assert np.abs(D - D_sp).max() <= 1e-8 * np.abs(D_sp).max()
    assert len(set(np.round(its.XRho, 12))) > 1  # ρ did change
    _assert_batch_stats(res.stats, its)
    assert float(res.dictionary.sum((1, 2)).abs().max()) < 1e-12


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_masked_coding_batch_equals_each_image_alone(backend):
    """With ρ fixed (SPORCO's default here) and no early stop, the joint masked coding step of a
    batch with different masks is every image's own csc.ConvBPDNMaskDcpl solve."""
    S, W = torch.from_numpy(_images()), torch.from_numpy(_masks(weighted=True))
    D = torch.from_numpy(csc.from_sporco_layout(_D0(), "dictionary"))
    D = D / D.flatten(1).norm(dim=1).view(-1, 1, 1)
    opts = csc.MaskDcplOptions(max_iter=25, rel_stop_tol=0.0, backend=backend)
    cb = JointMaskDcpl(S, LMBDA, opts, 6, (5, 5), W.unsqueeze(1), fused=backend == "numba")
    cb.set_dictionary(D)
    cb.iterate(25)
    for i in range(S.shape[0]):
        alone = csc.ConvBPDNMaskDcpl(D, LMBDA, opts).solve(S[i], W[i])
        assert float((cb.y[i] - alone.codes[0]).norm() / alone.codes[0].norm()) <= 1e-12
        assert float((cb.u[i] - alone.u[0]).norm() / alone.u[0].norm()) <= 1e-12


@pytest.mark.parametrize("dmethod", ["pgm", "cns"])
def test_masked_checkpoint_resume_and_defaults(tmp_path, dmethod):
    """A resumed masked run equals the uninterrupted one bit for bit; a mask with no coding
    problem uses DICTLEARN_MASKDCPL_DEFAULTS; a masked coding problem without a mask is W = 1."""
    S, W = torch.from_numpy(_images()), torch.from_numpy(_masks())
    D0 = torch.from_numpy(csc.from_sporco_layout(_D0(), "dictionary"))
    opts = csc.DictLearnOptions(max_iter=8, dmethod=dmethod)
    full = csc.DictLearn(D0, LMBDA, opts).solve(S, W)
    ck = tmp_path / "m.ckpt.npz"
    csc.DictLearn(D0, LMBDA, opts.replace(max_iter=4)).solve(S, W, checkpoint=ck, checkpoint_every=2)
    resumed = csc.DictLearn(D0, LMBDA, opts).solve(S, W, checkpoint=ck, checkpoint_every=2, resume=True)
    assert torch.equal(resumed.dictionary, full.dictionary) and torch.equal(resumed.codes, full.codes)
    np.testing.assert_array_equal(resumed.stats.objective, full.stats.objective)
    with pytest.raises(ValueError, match="mask_sha256"):
        csc.DictLearn(D0, LMBDA, opts).solve(S, W * 0.5 + 0.5, checkpoint=ck, resume=True)
    coding = csc.ConvBPDNMaskDcpl(D0, LMBDA, DICTLEARN_MASKDCPL_DEFAULTS)
    explicit = csc.DictLearn(D0, LMBDA, opts, coding=coding).solve(S, W)
    assert torch.equal(explicit.dictionary, full.dictionary)
    ones = csc.DictLearn(D0, LMBDA, opts, coding=coding).solve(S)
    assert torch.equal(ones.dictionary, csc.DictLearn(D0, LMBDA, opts).solve(S, 1.0).dictionary)
    assert not torch.equal(ones.dictionary, full.dictionary)


@needs_sporco
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_online_masked_learning_matches_sporco(backend):
    """OnlineConvBPDNMaskDictLearn.solve(S, W): 4 steps on minibatches of 2 of 4 images, each
    image its own mask ((2, H, W) and (2, 1, H, W)), 30 coding iterations per step, η = 200/(j + 5)."""
    from sporco.dictlrn import onlinecdl

    S, W = _images(4), _masks(4, seed=10)
    sopt = {"eta_a": 200.0, "eta_b": 5.0, "CBPDN": {"MaxMainIter": 30, "RelStopTol": 1e-3}}
    sp = onlinecdl.OnlineConvBPDNMaskDictLearn(_D0(), LMBDA, onlinecdl.OnlineConvBPDNMaskDictLearn.Options(
        dict(sopt, Verbose=False)))
    o = csc.OnlineDictLearnOptions.from_sporco(sopt, masked=True)
    learner = csc.OnlineDictLearn(csc.from_sporco_layout(_D0(), "dictionary"), LMBDA,
                                  o.replace(cbpdn_mask=o.cbpdn_mask.replace(backend=backend)))
    for j in range(4):
        b = [2 * (j % 2), 2 * (j % 2) + 1]
        sp.solve(np.moveaxis(S[b], 0, -1), np.moveaxis(W[b], 0, -1).reshape(H, H, 1, 2, 1))
        m = torch.from_numpy(W[b])
        learner.step(torch.from_numpy(S[b]), m if j % 2 else m.unsqueeze(1))
    D_sp, its = sp.getdict().squeeze(), sp.getitstat()
    D = csc.to_sporco_layout(learner.dictionary.numpy(), "dictionary")
    assert np.abs(D_sp - _D0() / np.linalg.norm(_D0(), axis=(0, 1))).max() > 0.03
    assert np.abs(D - D_sp).max() <= 1e-8 * np.abs(D_sp).max()
    for name, sname in SPORCO_ONLINE_STATS_NAMES.items():
        if name not in ("time", "iteration"):
            assert _rel(getattr(learner.stats, name), getattr(its, sname)) <= 1e-8, name


def test_online_fit_with_masks(tmp_path):
    """fit() with a sampler of images and masks equals steps on the same crops; resume is exact."""
    S, W = torch.from_numpy(_images(3)), torch.from_numpy(_masks(3))
    D0 = torch.from_numpy(csc.from_sporco_layout(_D0(), "dictionary"))
    o = csc.OnlineDictLearnOptions(cbpdn_mask=csc.MaskDcplOptions(max_iter=20))
    sampler = lambda: ImageSampler(S, 2, crop=16, generator=torch.Generator().manual_seed(1), masks=W)  # noqa: E731
    fitted = csc.OnlineDictLearn(D0, LMBDA, o).fit(sampler(), 4)
    by_hand, s = csc.OnlineDictLearn(D0, LMBDA, o), sampler()
    for _ in range(4):
        by_hand.step(*s.sample_with_masks())
    assert torch.equal(fitted.dictionary, by_hand.dictionary)
    ck = tmp_path / "o.ckpt.npz"
    csc.OnlineDictLearn(D0, LMBDA, o).fit(sampler(), 2, checkpoint=ck, checkpoint_every=1)
    resumed = csc.OnlineDictLearn(D0, LMBDA, o).fit(sampler(), 4, checkpoint=ck, checkpoint_every=1, resume=True)
    assert torch.equal(resumed.dictionary, fitted.dictionary)
    with pytest.raises(ValueError, match=r"masks\[1\]: expected the image's shape \(20, 20\)"):
        ImageSampler(S, 1, masks=[W[0], W[1, :10], W[2]])
    with pytest.raises(ValueError, match="masks: expected one mask per image"):
        ImageSampler(S, 1, masks=W[:2])


def test_bad_masks():
    S, W = torch.from_numpy(_images(2)), torch.from_numpy(_masks(2))
    D0 = torch.from_numpy(csc.from_sporco_layout(_D0(), "dictionary"))
    learner = csc.DictLearn(D0, LMBDA, csc.DictLearnOptions(max_iter=2))
    online = csc.OnlineDictLearn(D0, LMBDA)
    bad_nan = W.clone()
    bad_nan[0, 3, 4] = float("nan")
    cases = [
        (W[:, :10], r"mask: expected a scalar, \(20, 20\) or \(2, 20, 20\), got shape \(2, 10, 20\)"),
        (W.unsqueeze(1).expand(2, 3, H, H), r"mask: expected one map per image \(B, 1, H, W\), got shape \(2, 3, 20, 20\)"),
        (bad_nan, "mask: .*(NaN|finite)"),
        (-W, "mask: expected weights >= 0, found negative entries"),
        (torch.stack([W[0], torch.zeros(H, H, dtype=W.dtype)]), r"mask: expected nonzero weights for every image, "
                                                                r"all zero for image\(s\) \[1\]"),
        (0.0, "mask: expected a mask with nonzero weights, got 0"),
        ("ones", "mask: expected a number or an array"),
    ]
    for mask, msg in cases:
        with pytest.raises((ValueError, TypeError), match=msg):
            learner.solve(S, mask)
        with pytest.raises((ValueError, TypeError), match=msg):
            online.step(S, mask)
    with pytest.raises(ValueError, match="mask: a masked learner codes by mask decoupling; its coding problem must "
                                         "be a csc.ConvBPDNMaskDcpl, not ConvElasticNet"):
        csc.DictLearn(D0, LMBDA, coding=csc.ConvElasticNet(D0, LMBDA, 0.1, csc.learn.options.DICTLEARN_CBPDN_DEFAULTS)
                      ).solve(S, W)
    with pytest.raises(ValueError, match="options.cbpdn: with a mask the coding step is mask decoupling"):
        csc.DictLearn(D0, LMBDA, csc.DictLearnOptions(cbpdn=csc.learn.options.DICTLEARN_CBPDN_DEFAULTS.replace(
            rho=3.0))).solve(S, W)
    with pytest.raises(ValueError, match=r"mask: masked learning takes a single-channel \(K, kh, kw\) dictionary"):
        csc.DictLearn(torch.randn(4, 3, 5, 5, dtype=torch.float64), LMBDA).solve(torch.randn(2, 3, H, H,
                                                                                          dtype=torch.float64), W)
    with pytest.raises(TypeError, match="cbpdn_mask: expected MaskDcplOptions, got CBPDNOptions"):
        csc.OnlineDictLearnOptions(cbpdn_mask=csc.CBPDNOptions())

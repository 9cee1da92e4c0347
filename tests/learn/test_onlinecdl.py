"""Online dictionary learner: SPORCO parity, sampler, checkpoints/resume, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from csc.learn.onlinecdl import SPORCO_ONLINE_STATS_NAMES, ImageSampler, OnlineDictLearn, OnlineDictLearnOptions

from ..backends_params import CPU_BACKENDS
from ..conftest import central_crop, highpass, needs_sporco, sporco_image
from .test_dictlearn import kill_and_resume


@pytest.fixture(autouse=True, params=CPU_BACKENDS)
def backend(request, monkeypatch):
    """Every test runs on each CPU back end of the coding step: the torch loop and the
    fused numba kernels (``backend="auto"`` follows ``CSC_CBPDN_BACKEND``; subprocesses
    inherit it). Data-parallel learning always codes with the torch loop."""
    monkeypatch.setenv("CSC_CBPDN_BACKEND", request.param)
    return request.param

LMBDA = 0.02  # 32×32 highpass crops: a larger λ zeroes every code


@needs_sporco
@pytest.mark.parametrize("batch", [1, 2])
def test_first_steps_match_sporco(batch):
    """Issue 3: the first 5 steps agree with SPORCO's online learner to 1e-8 (float64),
    for single images and for minibatches (solved jointly, as SPORCO does)."""
    from sporco.dictlrn import onlinecdl

    names = ["barbara.png", "kodim23.png", "monarch.png", "sail.png", "tulips.png"]
    imgs = [highpass(central_crop(sporco_image(n), 32, 32)) for n in names]  # small: SPORCO is slow
    D0 = np.random.RandomState(12345).randn(8, 8, 16)
    sopt = {"Verbose": False, "ZeroMean": False, "eta_a": 10.0, "eta_b": 5.0, "DataType": np.float64,
            "CBPDN": {"rho": 50 * LMBDA + 1.0, "MaxMainIter": 30, "RelaxParam": 1.8, "RelStopTol": 1e-3,
                      "AbsStopTol": 0.0, "L1Weight": 1.0, "NonNegCoef": False, "NoBndryCross": False,
                      "AuxVarObj": False, "HighMemSolve": False,
                      "AutoRho": {"Enabled": True, "Period": 10, "Scaling": 2.0, "RsdlRatio": 10.0,
                                  "RsdlTarget": 1.0, "AutoScaling": False, "StdResiduals": False}}}
    sp = onlinecdl.OnlineConvBPDNDictLearn(D0, LMBDA, onlinecdl.OnlineConvBPDNDictLearn.Options(sopt), dimK=1)
    learner = OnlineDictLearn(torch.from_numpy(D0.transpose(2, 0, 1).copy()), LMBDA,
                              OnlineDictLearnOptions.from_sporco(sopt))
    for i in range(5):
        S = np.stack([imgs[(i * batch + b) % 5] for b in range(batch)])
        Ds = sp.solve(np.ascontiguousarray(S.transpose(1, 2, 0))).squeeze()
        row = learner.step(S)
        Dc = learner.dictionary.numpy().transpose(1, 2, 0)
        assert np.linalg.norm(Dc - Ds) / np.linalg.norm(Ds) < 1e-8, i
        it = sp.itstat[-1]
        for name, sname in SPORCO_ONLINE_STATS_NAMES.items():
            if name == "time":
                continue
            ref = float(getattr(it, sname))
            assert abs(row[name] - ref) <= 1e-8 * abs(ref), (i, name)
    assert len(learner.stats) == 5 and learner.stats.cbpdn_iterations.min() >= 1


def test_sampler_reproducible_and_state():
    imgs = [torch.rand(30, 40, dtype=torch.float64), torch.rand(50, 35, dtype=torch.float64)]
    a = ImageSampler(imgs, batch_size=3, crop=16, generator=torch.Generator().manual_seed(5))
    b = ImageSampler(imgs, batch_size=3, crop=16, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.sample(), b.sample())
    state = a.get_state()
    x = a.sample()
    a.set_state(state.numpy())
    assert torch.equal(a.sample(), x) and x.shape == (3, 16, 16)
    with pytest.raises(ValueError, match="crop"):
        ImageSampler(imgs, batch_size=2)
    with pytest.raises(ValueError, match="crop"):
        ImageSampler(imgs, crop=45)


def test_fit_decreases_objective_float32_and_resume_in_process(tmp_path):
    g = torch.Generator().manual_seed(0)
    pool = torch.randn(4, 32, 32, generator=g)
    D0 = torch.randn(6, 5, 5, generator=g)
    opts = OnlineDictLearnOptions(eta_a=1.0, eta_b=5.0, zero_mean=True,
                                  cbpdn=OnlineDictLearnOptions().cbpdn.replace(max_iter=20))
    mk = lambda: ImageSampler(pool, batch_size=2, crop=20, generator=torch.Generator().manual_seed(1))  # noqa: E731
    full = OnlineDictLearn(D0, 0.1, opts).fit(mk(), 10)
    assert full.dictionary.dtype == torch.float32 and full.steps == 10
    assert full.dictionary.sum((1, 2)).abs().max() < 1e-5
    ck = tmp_path / "o.ckpt.npz"
    OnlineDictLearn(D0, 0.1, opts).fit(mk(), 4, checkpoint=ck, checkpoint_every=4)
    res = OnlineDictLearn(D0, 0.1, opts).fit(mk(), 10, checkpoint=ck, checkpoint_every=4, resume=True)
    assert torch.equal(res.dictionary, full.dictionary)
    np.testing.assert_array_equal(res.stats.objective, full.stats.objective)


def test_errors():
    D = torch.randn(4, 5, 5, dtype=torch.float64)
    with pytest.raises(ValueError, match="lmbda"):
        OnlineDictLearn(D, float("nan"))
    with pytest.raises(ValueError, match="images"):
        OnlineDictLearn(D, 0.1).step(torch.randn(3, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="eta_a"):
        OnlineDictLearnOptions(eta_a=0)
    with pytest.raises(ValueError, match="CUDA_CBPDN"):
        OnlineDictLearnOptions.from_sporco({"CUDA_CBPDN": True})
    with pytest.raises(TypeError, match="sampler"):
        OnlineDictLearn(D, 0.1).fit(torch.zeros(2, 8, 8), 3)


def test_cli_online_killed_and_resumed(tmp_path):
    kill_and_resume(tmp_path, "online", ("--batch-size", "2", "--cbpdn-iter", "20", "--eta-a", "1"))

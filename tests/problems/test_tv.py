"""csc.TVL2Denoise against SPORCO 0.2.2's admm.tvl2.TVL2Denoise (float64, 24×24, 20 iterations):
the denoised image to 1e-10 and every statistic (GSIter and GSRelRes included) at every
iteration to 1e-8; grey, colour (per channel and vector TV), weights, adaptive ρ, an early
stop; a batch equals each image alone; ``coupling="sporco"`` is SPORCO's multi-image array.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import csc

from ..conftest import central_crop, needs_sporco, sporco_image
from .test_colour import colour_crop

pytestmark = needs_sporco
LMBDA = 0.05


def noisy_grey(i: int = 0) -> np.ndarray:
    rng = np.random.RandomState(i)
    return central_crop(sporco_image(), 24, 24, dy=8 * i, dx=4 * i) + 0.1 * rng.randn(24, 24)


def noisy_colour(i: int = 0) -> np.ndarray:
    return colour_crop(24, dy=20 * i, dx=-20 * i) + 0.05 * np.random.RandomState(i).randn(3, 24, 24)


def sporco_tv(S: np.ndarray, opt: dict, caxis=None):
    from sporco.admm import tvl2

    so = tvl2.TVL2Denoise(S, LMBDA, tvl2.TVL2Denoise.Options(dict({"Verbose": False}, **opt)), caxis=caxis)
    return so.solve(), so.getitstat()


def assert_tv_match(res_x: np.ndarray, stats, X: np.ndarray, its) -> None:
    assert len(stats) == len(its.Iter)
    assert np.abs(res_x - X).max() <= 1e-10 * np.abs(X).max()
    for ours, theirs in csc.TVL2Denoise.sporco_stats_names.items():
        if ours != "time":
            np.testing.assert_allclose(getattr(stats, ours), np.asarray(getattr(its, theirs), float), rtol=1e-8,
                                       atol=0, err_msg=ours)


CASES = {  # (SPORCO options, csc options)
    "default": ({}, {}),
    "no-relax": ({"RelaxParam": 1.0}, {"relax": 1.0}),
    "auto-rho": ({"AutoRho": {"Enabled": True}, "MaxGSIter": 3}, {"auto_rho": True, "max_gs_iter": 3}),
    "gs-tol-on-x": ({"gEvalY": False, "GSTol": 1e-3, "MaxGSIter": 5},
                    {"objective_on_y": False, "gs_tol": 1e-3, "max_gs_iter": 5}),
    "rho-weights": ({"rho": 0.7, "DFidWeight": "map", "TVWeight": "map"},
                    {"rho": 0.7, "dfid_weight": "map", "tv_weight": "map"}),
}


def _maps(d: dict) -> dict:
    w = np.random.RandomState(5).uniform(0.5, 1.5, (24, 24))
    return {k: (w if v == "map" else v) for k, v in d.items()}


@pytest.mark.parametrize("name", list(CASES))
def test_grey_matches_sporco(name):
    sp_opt, opt = (_maps(d) for d in CASES[name])
    s = noisy_grey()
    X, its = sporco_tv(s, {"MaxMainIter": 20, "RelStopTol": 0.0, **sp_opt})
    opts = csc.TVL2Options.from_sporco({"MaxMainIter": 20, "RelStopTol": 0.0, **sp_opt})
    for field, value in dict(max_iter=20, rel_stop_tol=0.0, **opt).items():
        assert np.array_equal(getattr(opts, field), value), field
    res = csc.TVL2Denoise(LMBDA, opts).solve(torch.from_numpy(s))
    assert res.x.shape == (24, 24)
    assert_tv_match(res.x.numpy(), res.stats[0], X, its)


@pytest.mark.parametrize("vector", [False, True])
def test_colour_matches_sporco(vector):
    s = noisy_colour()
    X, its = sporco_tv(np.ascontiguousarray(np.moveaxis(s, 0, -1)), {"MaxMainIter": 20, "RelStopTol": 0.0},
                       caxis=2 if vector else None)
    res = csc.TVL2Denoise(LMBDA, csc.TVL2Options(max_iter=20, rel_stop_tol=0.0, vector=vector)).solve(
        torch.from_numpy(s[None]))
    assert_tv_match(res.x[0].numpy(), res.stats[0], np.moveaxis(X, -1, 0), its)


def test_early_stop_and_batch_equals_each_alone():
    S = np.stack([noisy_grey(i) for i in range(3)])
    opts = csc.TVL2Options(max_iter=200, rel_stop_tol=1e-3, auto_rho=True)
    batch = csc.TVL2Denoise(LMBDA, opts).solve(torch.from_numpy(S))
    assert len(set(batch.iterations.tolist())) > 1  # they stop at different iterations
    for i in range(3):
        X, its = sporco_tv(S[i], {"MaxMainIter": 200, "RelStopTol": 1e-3, "AutoRho": {"Enabled": True}})
        assert_tv_match(batch.x[i].numpy(), batch.stats[i], X, its)


@pytest.mark.parametrize("vector", [False, True])
def test_weighted_batch_equals_each_alone(vector):
    """Weight maps shared by a batch ((H, W)) or one per image, grey and colour."""
    rng = np.random.RandomState(7)
    S = np.stack([noisy_colour(i) for i in range(2)]) if vector else np.stack([noisy_grey(i) for i in range(3)])
    per_image = rng.uniform(0.5, 1.5, S.shape[:1] + S.shape[-2:] if vector else S.shape)
    shared = rng.uniform(0.5, 1.5, (24, 24))
    opts = csc.TVL2Options(max_iter=60, rel_stop_tol=1e-3, auto_rho=True, vector=vector, dfid_weight=shared,
                           tv_weight=per_image[:, None] if vector else per_image)
    batch = csc.TVL2Denoise(LMBDA, opts).solve(torch.from_numpy(S))
    for i in range(S.shape[0]):
        alone = csc.TVL2Denoise(LMBDA, opts.replace(tv_weight=per_image[i])).solve(torch.from_numpy(S[i:i + 1] if vector
                                                                                                  else S[i]))
        assert int(alone.iterations.reshape(-1)[0]) == int(batch.iterations[i])
        assert float((batch.x[i] - alone.x.reshape(batch.x[i].shape)).abs().max()) <= 1e-13
        np.testing.assert_allclose(batch.stats[i].objective, alone.stats[0].objective, rtol=1e-13)


def test_coupled_batch_is_sporcos_multi_image_array():
    """SPORCO's (H, W, B) array with caxis None is one problem over the B images (TV per image)."""
    S = np.stack([noisy_grey(i) for i in range(3)])
    opt = {"MaxMainIter": 200, "RelStopTol": 1e-3, "AutoRho": {"Enabled": True}}
    X, its = sporco_tv(np.ascontiguousarray(np.moveaxis(S, 0, -1)), opt)
    res = csc.TVL2Denoise(LMBDA, csc.TVL2Options(max_iter=200, rel_stop_tol=1e-3, auto_rho=True,
                                                 coupling="sporco")).solve(torch.from_numpy(S))
    assert len(res.stats) == 1 and len(set(res.iterations.tolist())) == 1
    assert_tv_match(res.x.numpy(), res.stats[0], np.moveaxis(X, -1, 0), its)


def test_bad_input():
    with pytest.raises(ValueError, match="max_gs_iter"):
        csc.TVL2Options(max_gs_iter=0)
    with pytest.raises(ValueError, match="coding options"):
        csc.TVL2Options(nonneg=True)
    with pytest.raises(ValueError, match="^L1Weight: not an option"):
        csc.TVL2Options.from_sporco({"L1Weight": 0.5})
    with pytest.raises(TypeError, match="TVL2Options"):
        csc.TVL2Denoise(0.1, csc.CBPDNOptions())
    with pytest.raises(ValueError, match="tv_weight"):
        csc.TVL2Denoise(0.1, csc.TVL2Options(tv_weight=np.ones((5, 5)))).solve(torch.zeros(8, 8, dtype=torch.float64))

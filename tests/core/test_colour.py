"""Colour and multi-channel coding against SPORCO 0.2.2 (float64, both CPU back ends).

Multi-channel dictionary (K, C, kh, kw) on C-channel images, one map per kernel shared by
the channels (SPORCO's ``Cd = C`` case of ``admm.cbpdn.ConvBPDN``): statistics at every
iteration to 1e-8 relative, codes to 1e-10 with the same support, and a batch of
different images equal to each alone.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import csc

from ..conftest import HAVE_SPORCO, central_crop, highpass, needs_sporco
from .test_cbpdn_parity import BACKENDS, assert_stats_match

Y_RTOL = 1e-10


@pytest.fixture(autouse=True, params=BACKENDS)
def backend(request):
    return request.param


def colour_crop(size: int = 32, dy: int = 0, dx: int = 0) -> np.ndarray:
    """A highpassed colour crop (C, H, W) of SPORCO's kodim23 (each channel filtered alone)."""
    from sporco import util as sp_util

    img = sp_util.ExampleImages(scaled=True, gray=False).image("kodim23.png").astype(np.float64)
    crop = central_crop(img, size, size, dy, dx)
    return np.stack([highpass(np.ascontiguousarray(crop[..., c])) for c in range(3)])


def colour_dictionary(K: int = 8, C: int = 3, k: int = 6, seed: int = 3) -> np.ndarray:
    """Gaussian kernels (K, C, k, k), unit norm over each kernel's channels."""
    D = np.random.RandomState(seed).randn(K, C, k, k)
    return D / np.sqrt((D ** 2).sum(axis=(1, 2, 3), keepdims=True))


def sporco_colour(D: np.ndarray, s: np.ndarray, lmbda: float, opt: dict):
    """SPORCO's ConvBPDN with a multi-channel dictionary on one (C, H, W) image."""
    from sporco.admm import cbpdn

    solver = cbpdn.ConvBPDN(csc.to_sporco_layout(D, "dictionary"), np.ascontiguousarray(np.moveaxis(s, 0, -1)),
                            lmbda, cbpdn.ConvBPDN.Options(dict({"Verbose": False}, **opt)), dimK=0)
    assert (solver.cri.Cd, solver.cri.C) == (D.shape[1], D.shape[1])
    solver.solve()
    return np.moveaxis(solver.Y[:, :, 0, 0, :], -1, 0), solver.getitstat()


def assert_codes_match(codes: np.ndarray, y_sp: np.ndarray) -> None:
    assert np.array_equal(codes != 0, y_sp != 0), "supports differ"
    err = np.linalg.norm(codes - y_sp) / max(np.linalg.norm(y_sp), 1e-300)
    assert err <= Y_RTOL, f"relative error of y: {err:.3e}"


OPTIONS = {  # (λ, SPORCO options); at λ = 0.05 every code is zero and ρ grows to ~1e156
    "default": (0.01, {"MaxMainIter": 40}),
    "relaxed-tight": (0.01, {"MaxMainIter": 60, "RelStopTol": 1e-4, "RelaxParam": 1.8,
                             "AutoRho": {"RsdlRatio": 1.05}}),
    "all-zero-codes": (0.05, {"MaxMainIter": 60, "RelStopTol": 1e-4}),
    "fixed-rho-nonneg": (0.005, {"MaxMainIter": 30, "rho": 2.0, "AutoRho": {"Enabled": False},
                                 "NonNegCoef": True}),
    "weights-boundary": (0.01, {"MaxMainIter": 30, "L1Weight": np.linspace(0.5, 1.5, 8).reshape(1, 1, 1, 1, 8),
                                "NoBndryCross": True, "AuxVarObj": True}),
}


@needs_sporco
@pytest.mark.parametrize("name", list(OPTIONS))
def test_multichannel_dictionary_matches_sporco(backend, name):
    lmbda, opt = OPTIONS[name]
    D, s = colour_dictionary(), colour_crop()
    y_sp, its = sporco_colour(D, s, lmbda, opt)
    res = csc.ConvBPDN(D, lmbda, csc.CBPDNOptions.from_sporco(opt, backend=backend)).solve(torch.from_numpy(s))
    assert res.codes.shape == (1, 8, 32, 32)
    assert_stats_match(res.stats[0], its, s)
    assert_codes_match(res.codes[0].numpy(), y_sp)


@needs_sporco
def test_batch_of_colour_images_equals_each_alone(backend):
    D = torch.from_numpy(colour_dictionary())
    S = torch.from_numpy(np.stack([colour_crop(24, dy=20 * i, dx=-20 * i) for i in range(3)]))
    opts = csc.CBPDNOptions(max_iter=80, rel_stop_tol=1e-3, backend=backend)
    batch = csc.ConvBPDN(D, 0.01, opts).solve(S)
    assert len(set(batch.iterations.tolist())) > 1  # they stop at different iterations
    for i in range(3):
        alone = csc.ConvBPDN(D, 0.01, opts).solve(S[i])
        assert int(alone.iterations[0]) == int(batch.iterations[i])
        err = (batch.codes[i] - alone.codes[0]).norm() / alone.codes[0].norm()
        assert err <= 1e-12
        np.testing.assert_allclose(batch.stats[i].objective, alone.stats[0].objective, rtol=1e-12)


def test_multichannel_reconstruction_and_float32(backend):
    """The reconstruction is Σ_k d_ck * x_k per channel; float32 agrees with float64."""
    g = torch.Generator().manual_seed(0)
    D = torch.randn(6, 3, 5, 5, generator=g, dtype=torch.float64)
    S = torch.rand(2, 3, 20, 20, generator=g, dtype=torch.float64)
    opts = csc.CBPDNOptions(max_iter=25, backend=backend)
    r64 = csc.ConvBPDN(D, 0.1, opts).solve(S)
    rec = r64.reconstruct()
    direct = torch.stack([sum(torch.fft.irfft2(torch.fft.rfft2(D[k, c], s=(20, 20)) * torch.fft.rfft2(r64.codes[:, k]),
                                               s=(20, 20)) for k in range(6)) for c in range(3)], 1)
    assert rec.shape == (2, 3, 20, 20) and torch.allclose(rec, direct, atol=1e-12)
    r32 = csc.ConvBPDN(D.float(), 0.1, opts).solve(S.float())
    assert r32.codes.dtype == torch.float32
    rel = (r32.codes.double() - r64.codes).norm() / r64.codes.norm()
    assert rel < 1e-3


@pytest.mark.parametrize("D_shape, S_shape, text", [
    ((6, 3, 5, 5), (2, 4, 20, 20), "channels"),
    ((6, 3, 5, 5), (20, 20), "(C, H, W) or (B, C, H, W)"),
    ((6, 3, 5, 5), (2, 3, 4, 4), "at least as large"),
    ((5, 5, 3, 6), (2, 3, 20, 20), "from_sporco_layout"),
])
def test_channel_mismatch_is_a_clear_error(backend, D_shape, S_shape, text):
    D, S = torch.rand(D_shape, dtype=torch.float64), torch.rand(S_shape, dtype=torch.float64)
    with pytest.raises(ValueError) as info:
        csc.ConvBPDN(D, 0.1, csc.CBPDNOptions(max_iter=2, backend=backend)).solve(S)
    assert text in str(info.value)

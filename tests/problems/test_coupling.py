"""``coupling="sporco"``: a batch solved as one ADMM problem, as SPORCO 0.2.2 solves a
multi-image array or a colour image with a grey dictionary (one ρ, residuals summed, one
stopping test), against SPORCO (float64, 24×24, K = 4, 20 iterations and an early stop):
statistics at every iteration to 1e-8, codes to 1e-10 with the same support.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import csc

from ..backends_params import CPU_BACKENDS
from ..conftest import central_crop, highpass, needs_sporco, random_dictionary, sporco_image
from .test_colour import colour_crop, colour_dictionary
from .test_variants_parity import assert_stats_match

pytestmark = needs_sporco
LMBDA, MU = 0.01, 0.1


@pytest.fixture(params=CPU_BACKENDS)
def backend(request):
    return request.param


def grey_dictionary():
    return csc.from_sporco_layout(random_dictionary(5, 5, 4), "dictionary").copy()


def grey_images(n: int = 3):
    return np.stack([highpass(central_crop(sporco_image(), 24, 24, dy=8 * i, dx=4 * i)) for i in range(n)])


def case(name: str):
    """(csc dictionary, csc images, SPORCO dictionary, SPORCO images, dimK)."""
    if name == "grey-on-colour":  # one colour image, grey dictionary: C = 3, Cd = 1
        D, S = grey_dictionary(), colour_crop(24)[None]
        return D, S, np.ascontiguousarray(np.moveaxis(S[0], 0, -1)), 0
    if name == "multi-image":  # three grey images
        D, S = grey_dictionary(), grey_images(3)
        return D, S, np.ascontiguousarray(np.moveaxis(S, 0, -1)), 1
    if name == "multi-colour":  # two colour images, colour dictionary: C = Cd = 3
        D = colour_dictionary(4, 3, 5)
        S = np.stack([colour_crop(24, dy=20 * i, dx=-20 * i) for i in range(2)])
        return D, S, np.ascontiguousarray(np.moveaxis(S, (0, 1), (-1, -2))), 1
    D, S = grey_dictionary(), np.stack([colour_crop(24, dy=20 * i, dx=-20 * i) for i in range(2)])
    return D, S, np.ascontiguousarray(np.moveaxis(S, (0, 1), (-1, -2))), 1  # two colour images, grey dictionary


def sporco_codes(Y: np.ndarray, D: np.ndarray, S: np.ndarray) -> np.ndarray:
    """SPORCO's Y (H, W, C, B, K) in csc's layout: (B, C, K, H, W) for a grey dictionary on
    colour images, (B, K, H, W) otherwise."""
    Y = np.moveaxis(Y, (2, 3), (1, 0))  # (B, C, H, W, K)
    Y = np.moveaxis(Y, -1, 2)           # (B, C, K, H, W)
    return Y if (D.ndim == 3 and S.ndim == 4) else Y[:, 0]


def run(kind: str, name: str, backend: str, **opt):
    from sporco.admm import cbpdn as sp

    D, S, Ssp, dimK = case(name)
    opt = {"MaxMainIter": 20, "RelStopTol": 0.0, **opt}
    cls, args, ocls = {"cbpdn": (sp.ConvBPDN, (LMBDA,), csc.CBPDNOptions),
                       "enet": (sp.ConvElasticNet, (LMBDA, MU), csc.CBPDNOptions),
                       "grad": (sp.ConvBPDNGradReg, (LMBDA, MU), csc.GradRegOptions),
                       "md": (sp.ConvBPDNMaskDcpl, (LMBDA,), csc.MaskDcplOptions),
                       "joint": (sp.ConvBPDNJoint, (0.002, 0.005), csc.CBPDNJointOptions)}[kind]
    so = cls(csc.to_sporco_layout(D, "dictionary"), Ssp, *args, opt=cls.Options(dict(opt, Verbose=False)), dimK=dimK)
    so.solve()
    o = ocls.from_sporco(opt, backend=backend, coupling="sporco")
    solver = {"cbpdn": csc.ConvBPDN, "enet": csc.ConvElasticNet, "grad": csc.ConvBPDNGradReg,
              "md": csc.ConvBPDNMaskDcpl, "joint": csc.ConvBPDNJoint}[kind](D, *args, o)
    res = solver.solve(torch.from_numpy(S))
    return solver, res, so, D, S


def assert_matches(solver, res, so, D, S):
    Y = sporco_codes(so.getcoef() if hasattr(so, "block_sep1") else so.Y, D, S)
    assert res.codes.shape == Y.shape
    assert len(res.stats) == 1  # one problem, one record
    assert_stats_match(solver, res.stats[0], so.getitstat(), S)
    codes = res.codes.numpy()
    assert np.array_equal(codes != 0, Y != 0), "supports differ"
    assert np.linalg.norm(codes - Y) / np.linalg.norm(Y) <= 1e-10
    assert torch.all(res.iterations == len(res.stats[0].iteration))
    assert torch.all(res.rho == res.rho.reshape(-1)[0])


@pytest.mark.parametrize("name", ["grey-on-colour", "multi-image", "multi-colour", "colour-batch-grey"])
def test_coupled_cbpdn_matches_sporco(backend, name):
    assert_matches(*run("cbpdn", name, backend))


def test_coupled_early_stop_same_iteration_count(backend):
    solver, res, so, D, S = run("cbpdn", "multi-image", backend, MaxMainIter=200, RelStopTol=1e-3)
    assert 5 < len(so.getitstat().Iter) < 200
    assert_matches(solver, res, so, D, S)


@pytest.mark.parametrize("kind, name", [("enet", "multi-image"), ("grad", "grey-on-colour"),
                                        ("enet", "multi-colour"), ("md", "multi-image"),
                                        ("joint", "colour-batch-grey")])
def test_coupled_variants_match_sporco(backend, kind, name):
    assert_matches(*run(kind, name, backend))


def test_coupled_differs_from_per_image_and_sync_interval_does_not_matter():
    """The default solves each image alone (other iterates after a fixed number of iterations);
    the coupled solve does not depend on the host-read interval of the torch loop."""
    D, S = grey_dictionary(), torch.from_numpy(grey_images(3))
    base = csc.CBPDNOptions(max_iter=60, backend="torch", coupling="sporco")
    one = csc.ConvBPDN(D, LMBDA, base).solve(S)
    five = csc.ConvBPDN(D, LMBDA, base.replace(sync_interval=5)).solve(S)
    assert torch.equal(one.iterations, five.iterations)
    assert float((one.codes - five.codes).norm() / one.codes.norm()) <= 1e-14
    np.testing.assert_array_equal(one.stats[0].objective, five.stats[0].objective)
    alone = csc.ConvBPDN(D, LMBDA, base.replace(coupling="image")).solve(S)
    assert float((one.codes - alone.codes).norm() / one.codes.norm()) > 1e-6


def test_coupling_is_checked():
    with pytest.raises(ValueError, match="coupling"):
        csc.CBPDNOptions(coupling="joint")


@pytest.mark.parametrize("shape", [(1, 1, 3, 1, 4), (24, 24, 3, 4)])
def test_channel_dependent_l1_weight(backend, shape):
    """SPORCO's channel-dependent L1Weight ((1, 1, C, 1, K) per channel and kernel, or (H, W, C, K)
    per coefficient) with a grey dictionary on a colour image: coupled, SPORCO's answer; per
    channel (the default), each channel alone with its own weights."""
    from sporco.admm import cbpdn as sp

    D, S, Ssp, _ = case("grey-on-colour")
    w = np.random.RandomState(1).uniform(0.5, 1.5, shape)
    opt = {"MaxMainIter": 20, "RelStopTol": 0.0, "L1Weight": w}
    so = sp.ConvBPDN(csc.to_sporco_layout(D, "dictionary"), Ssp, LMBDA, opt=sp.ConvBPDN.Options(dict(opt, Verbose=False)),
                     dimK=0)
    so.solve()
    o = csc.CBPDNOptions.from_sporco(opt, backend=backend, coupling="sporco")
    solver = csc.ConvBPDN(D, LMBDA, o)
    assert_matches(solver, solver.solve(torch.from_numpy(S)), so, D, S)
    S2 = np.concatenate([S, S[:, ::-1].copy()])  # two images: the weights apply to each
    per = csc.ConvBPDN(D, LMBDA, o.replace(coupling="image")).solve(torch.from_numpy(S2))
    wc = np.asarray(o.l1_weight)[0]  # (C, K, H or 1, W or 1)
    for b in range(2):
        for c in range(3):
            alone = csc.ConvBPDN(D, LMBDA, o.replace(coupling="image", l1_weight=wc[c])).solve(
                torch.from_numpy(S2[b, c]))
            assert float((per.codes[b, c] - alone.codes[0]).norm() / alone.codes[0].norm()) <= 1e-12


def test_solve_in_batches_keeps_a_coupled_batch_whole():
    from csc.problems.cbpdn import solve_in_batches
    from csc.runtime.memory import MemoryBudget

    D, S = grey_dictionary(), torch.from_numpy(grey_images(3))
    solver = csc.ConvBPDN(D, LMBDA, csc.CBPDNOptions(max_iter=30, coupling="sporco"))
    whole = solver.solve(S)
    split = solve_in_batches(solver, S, MemoryBudget(limit_bytes=1))
    assert torch.equal(whole.codes, split.codes) and len(split.stats) == 1

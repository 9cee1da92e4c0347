"""The colour log-Gabor dictionary (csc.dictionary.colour): construction and properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import csc
from csc.dictionary.colour import OPPONENT_AXES, colour_loggabor_dictionary


def test_axes_are_an_orthonormal_opponent_basis():
    A = np.array(list(OPPONENT_AXES.values()))
    np.testing.assert_allclose(A @ A.T, np.eye(3), atol=1e-15)
    assert np.allclose(A[0], A[0][0])  # luminance: equal weights
    np.testing.assert_allclose(A[1:].sum(1), 0, atol=1e-15)  # opponent axes: no luminance


def test_kernels_are_spatial_kernels_times_directions():
    g, _ = csc.loggabor_dictionary("heterogeneous", dtype=torch.float64)
    D, params, axes = colour_loggabor_dictionary("heterogeneous", dtype=torch.float64)
    assert D.shape == (3 * 144, 3, 12, 12) and len(axes) == 432 and params.theta.shape[0] == 144
    np.testing.assert_allclose(D.flatten(1).norm(dim=1), 1, atol=1e-12)
    for k, j in [(0, 0), (5, 1), (143, 2)]:
        a = torch.tensor(OPPONENT_AXES[axes[3 * k + j]], dtype=torch.float64)
        assert torch.allclose(D[3 * k + j], a[:, None, None] * g[k], atol=1e-15)
    # rotation of RGB: the channels of the colour kernels of one spatial kernel span g_k in R, G and B
    blk = D[:3].reshape(3, 3, -1)  # (direction, channel, pixels)
    gram = torch.einsum("jcp,jdp->cd", blk, blk)
    assert torch.allclose(gram, torch.eye(3, dtype=gram.dtype), atol=1e-12)


def test_a_subset_of_directions_and_bad_axes():
    D, _, axes = colour_loggabor_dictionary("homogeneous", size=8, axes=("L",))
    assert D.shape == (144, 3, 8, 8) and set(axes) == {"L"}
    for bad in [(), ("XY",), ("L", "L"), "L"]:
        with pytest.raises(ValueError, match="axes"):
            colour_loggabor_dictionary(axes=bad)


def test_opponent_directions_carry_the_colour_of_a_photograph():
    """On a highpassed colour photograph, the luminance-only dictionary cannot represent
    the chromatic part at all (its reconstruction has equal channels), and the full
    colour dictionary represents it and the whole image better, at a similar sparseness."""
    from csc.pipeline.preprocess import Preprocess
    from csc.pipeline.sources import builtin_photographs

    img = torch.from_numpy(builtin_photographs(["astronaut"], colour=True).images[0][:, 100:148, 100:148].copy())
    s, _ = Preprocess("highpass").forward(img)  # per channel
    chroma = lambda x: x - x.mean(0, keepdim=True)  # noqa: E731
    out = {}
    for axes in [("L",), ("L", "RG", "BY")]:
        D, _, _ = colour_loggabor_dictionary(dtype=torch.float64, axes=axes)
        res = csc.ConvBPDN(D, 0.005, csc.CBPDNOptions(max_iter=30)).solve(s)
        r = res.reconstruct()[0]
        out[axes] = ((r - s).norm() / s.norm(), (chroma(r) - chroma(s)).norm() / chroma(s).norm(),
                     float(csc.sparseness(res.codes)[0]))
    lum, full = out[("L",)], out[("L", "RG", "BY")]
    assert lum[1] == pytest.approx(1.0, abs=1e-12)  # no chromatic content at all
    assert full[1] < 0.8 and full[0] < lum[0]
    assert abs(full[2] - lum[2]) < 0.02

"""Dictionary tiling (csc.dictionary.tile) against SPORCO's util.tiledict and closed forms."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

import csc


def _kernels(shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_grey_tiles_place_each_kernel_scaled_to_its_max():
    D = _kernels((5, 3, 4))
    grid = csc.tile_dictionary(D, ncols=3, pad=1)
    assert grid.shape == (2 * 4 + 1, 3 * 5 + 1)
    for k in range(5):
        r, c = divmod(k, 3)
        block = grid[1 + r * 4: 1 + r * 4 + 3, 1 + c * 5: 1 + c * 5 + 4]
        np.testing.assert_allclose(block, D[k].numpy() / D[k].abs().max().item(), rtol=0, atol=1e-15)
    assert np.isnan(grid[0]).all() and np.isnan(grid[-4:, -5:]).all()  # border and the empty sixth cell


def test_colour_tiles_span_zero_to_one_per_kernel():
    D = _kernels((4, 3, 5, 5))
    grid = csc.tile_dictionary(D, pad=2)
    assert grid.shape == (2 * 7 + 2, 2 * 7 + 2, 3)
    block = grid[2:7, 2:7]
    assert block.min() == 0 and block.max() == 1
    d0 = D[0].numpy()
    np.testing.assert_allclose(block, np.moveaxis((d0 - d0.min()) / (d0.max() - d0.min()), 0, -1))


@pytest.mark.parametrize("shape", [(36, 12, 12), (7, 5, 6), (10, 3, 4, 4)], ids=["grey36", "grey7", "colour10"])
def test_sporco_style_equals_sporco_tiledict(shape):
    util = pytest.importorskip("sporco.util")
    D = _kernels(shape, seed=1)
    ours = csc.tile_dictionary(D, style="sporco")
    theirs = util.tiledict(csc.to_sporco_layout(D.numpy(), "dictionary"))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-15)


def test_plot_dictionary_draws_grey_and_colour():
    import matplotlib.pyplot as plt

    fig, axs = plt.subplots(1, 2)
    csc.plot_dictionary(axs[0], _kernels((4, 5, 5)), title="grey")
    csc.plot_dictionary(axs[1], _kernels((4, 3, 5, 5)), title="colour")
    assert axs[0].get_images()[0].get_array().shape == (13, 13)
    assert axs[1].get_images()[0].get_array().shape == (13, 13, 3)
    plt.close(fig)


@pytest.mark.parametrize("kernels, kw, error, text", [
    (np.ones((4, 5, 5), dtype=np.int64), {}, TypeError, "kernels"),
    (np.ones((4, 2, 5, 5)), {}, ValueError, "(K, 3, kh, kw)"),
    (np.ones((5, 5)), {}, ValueError, "kernels"),
    (np.full((2, 3, 3), np.nan), {}, ValueError, "finite"),
    (np.ones((2, 3, 3)), {"ncols": 0}, ValueError, "ncols"),
    (np.ones((2, 3, 3)), {"pad": -1}, ValueError, "pad"),
    (np.ones((2, 3, 3)), {"style": "matlab"}, ValueError, "style"),
])
def test_bad_kernels_are_named(kernels, kw, error, text):
    with pytest.raises(error, match=text.replace("(", r"\(").replace(")", r"\)")):
        csc.tile_dictionary(kernels, **kw)

"""Tests of csc.science.prune against a numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from csc.science.metrics import sparseness
from csc.science.prune import prune


def _codes(seed=0, shape=(3, 4, 6, 6), dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    x[torch.rand(shape, generator=g, dtype=torch.float64) < 0.5] = 0.0
    x[1] *= 10  # images with different scales
    return x.to(dtype)


def _reference(x: np.ndarray, c: float, relative: bool) -> np.ndarray:
    out = x.copy()
    for b in range(x.shape[0]):
        cut = c * np.abs(x[b]).max() if relative else c
        out[b][np.abs(x[b]) < cut] = 0
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("c", [0.0, 0.001, 0.1, 0.5, 1.0])
def test_absolute_matches_numpy(dtype, c):
    x = _codes(dtype=dtype)
    before = x.clone()
    y = prune(x, c)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_array_equal(y.numpy(), _reference(x.numpy(), c, relative=False))
    torch.testing.assert_close(x, before, rtol=0, atol=0)  # input untouched


@pytest.mark.parametrize("c", [0.0, 0.25, 0.5, 1.0])
def test_relative_matches_numpy_per_image(c):
    x = _codes(seed=1)
    y = prune(x, c, relative=True)
    np.testing.assert_array_equal(y.numpy(), _reference(x.numpy(), c, relative=True))
    if c == 1.0:
        # only each image's largest coefficient survives
        assert torch.equal((y != 0).sum(dim=(1, 2, 3)), torch.ones(3, dtype=torch.long))
    # a single image (K, H, W) behaves like a batch of one
    np.testing.assert_array_equal(prune(x[1], c, relative=True).numpy(), y[1].numpy())


def test_relative_is_scale_invariant_absolute_is_not():
    x = _codes(seed=2)
    torch.testing.assert_close(prune(3.0 * x, 0.25, relative=True), 3.0 * prune(x, 0.25, relative=True))
    assert not torch.equal(prune(3.0 * x, 0.5) != 0, prune(x, 0.5) != 0)


def test_sparseness_grows_with_threshold():
    x = _codes(seed=3)
    values = [sparseness(prune(x, c)) for c in np.linspace(0.001, 0.5, 6)]
    for a, b in zip(values, values[1:]):
        assert bool((b >= a).all())
    assert bool((values[-1] > values[0]).any())


def test_numpy_input_and_keep_at_threshold():
    x = np.array([[[0.5, -0.5, 0.49, -0.2]]], dtype=np.float64)
    y = prune(x, 0.5)
    assert isinstance(y, torch.Tensor)
    np.testing.assert_array_equal(y.numpy(), [[[0.5, -0.5, 0.0, 0.0]]])


def test_bad_inputs():
    x = _codes()
    with pytest.raises(ValueError, match="threshold"):
        prune(x, -0.1)
    with pytest.raises(ValueError, match="threshold"):
        prune(x, float("nan"))
    with pytest.raises(ValueError, match="codes"):
        prune(x[0, 0], 0.1)
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="codes"):
        prune(bad, 0.1)
    with pytest.raises(TypeError, match="codes"):
        prune(torch.ones(2, 3, 3, dtype=torch.int64), 0.1)

"""Tests of csc.science.metrics against SPORCO, scikit-image and hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.filters import sobel_h, sobel_v
from sporco import metric as sporco_metric

from csc.science.metrics import (
    circular_variance,
    gradient_orientations,
    mse,
    orientation_bin_centers,
    orientation_histogram,
    psnr,
    psnr_paper,
    sparseness,
)


def _pair(shape, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    ref = rng.uniform(0, 255, shape).astype(dtype)
    test = (ref + rng.normal(0, 5, shape)).astype(dtype)
    return ref, test


def _grating(theta, n=128, freq=0.08):
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    return np.cos(2 * np.pi * freq * (np.cos(theta) * i + np.sin(theta) * j))


# ---------------------------------------------------------------------------
# PSNR
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_psnr_matches_sporco_single_image(dtype):
    ref, test = _pair((40, 50), dtype=dtype)
    expected = sporco_metric.psnr(ref, test)
    got = psnr(torch.from_numpy(ref), torch.from_numpy(test))
    assert got.shape == () and got.dtype == torch.float64
    assert float(got) == pytest.approx(expected, rel=1e-6 if dtype == np.float32 else 1e-12)
    assert float(psnr(ref, test, data_range=255)) == pytest.approx(sporco_metric.psnr(ref, test, rng=255), rel=1e-6)


def test_psnr_batch_is_per_image():
    ref, test = _pair((5, 24, 30), seed=3)
    ref[2] *= 0.1  # a different range per image
    got = psnr(ref, test)
    assert got.shape == (5,)
    expected = [sporco_metric.psnr(ref[b], test[b]) for b in range(5)]
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)
    got_r = psnr(ref, test, data_range=torch.full((5,), 255.0))
    np.testing.assert_allclose(got_r.numpy(), [sporco_metric.psnr(ref[b], test[b], rng=255) for b in range(5)], rtol=1e-12)


def test_psnr_paper_closed_form():
    ref, test = _pair((3, 16, 16), seed=5)
    got = psnr_paper(torch.from_numpy(ref), torch.from_numpy(test)).numpy()
    for b in range(3):
        err = np.sum((ref[b] - test[b]) ** 2) / ref[b].size
        expected = 20 * math.log10(ref[b].max()) - 10 * math.log10(err)
        assert got[b] == pytest.approx(expected, rel=1e-12)
    # differs from SPORCO's form unless min(reference) == 0
    assert not np.allclose(got, psnr(ref, test).numpy())


def test_psnr_identical_is_inf_and_mse():
    ref, _ = _pair((8, 8))
    assert math.isinf(float(psnr(ref, ref)))
    ref, test = _pair((2, 8, 8))
    np.testing.assert_allclose(mse(ref, test).numpy(), ((ref - test) ** 2).mean(axis=(1, 2)))


def test_psnr_bad_inputs():
    ref, test = _pair((8, 8))
    with pytest.raises(ValueError, match="same shape"):
        psnr(ref, test[:7])
    bad = test.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="test"):
        psnr(ref, bad)
    with pytest.raises(ValueError, match="reference"):
        psnr(ref[0], test[0])  # 1-D
    with pytest.raises(TypeError, match="reference"):
        psnr(ref.astype(np.int64), test)
    with pytest.raises(ValueError, match="data_range"):
        psnr(ref, test, data_range=0)
    with pytest.raises(ValueError, match="reference"):
        psnr_paper(ref - 1000, test)  # max <= 0: eq. 6 undefined


# ---------------------------------------------------------------------------
# sparseness
# ---------------------------------------------------------------------------


def test_sparseness_hand_built():
    codes = torch.zeros(3, 4, 5, 5)  # 100 coefficients per image
    codes[1, 0, 0, :3] = torch.tensor([1.0, -2.0, 1e-30])  # 3 active (tiny is still active)
    codes[2] = 1.0  # all active
    codes[2, 3, 4, 4] = 0.0  # one zero
    got = sparseness(codes)
    assert got.shape == (3,) and got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), [1.0, 0.97, 0.01])
    assert float(sparseness(codes[1].numpy())) == pytest.approx(0.97)
    # a sparse COO tensor gives the same answer
    np.testing.assert_allclose(sparseness(codes.to_sparse()).numpy(), got.numpy())


def test_sparseness_bad_inputs():
    with pytest.raises(ValueError, match="codes"):
        sparseness(torch.zeros(4, 4))
    with pytest.raises(ValueError, match="codes"):
        sparseness(torch.tensor([[[float("inf")]]]))


# ---------------------------------------------------------------------------
# orientation histogram and circular variance
# ---------------------------------------------------------------------------


def _skimage_histogram(img, bins=18, weighted=False):
    gh, gv = sobel_h(img), sobel_v(img)
    theta = np.arctan2(gv, gh) % np.pi
    mag = np.hypot(gh, gv)
    keep = mag > 0
    return np.histogram(theta[keep], bins=bins, range=(0, np.pi), weights=mag[keep] if weighted else None)[0]


def test_histogram_matches_skimage_sobel():
    rng = np.random.default_rng(11)
    img = rng.random((64, 80))
    ours = orientation_histogram(torch.from_numpy(img))
    assert ours.shape == (18,)
    np.testing.assert_array_equal(ours.numpy(), _skimage_histogram(img))
    assert float(ours.sum()) == img.size
    np.testing.assert_allclose(
        orientation_histogram(img, weighted=True).numpy(), _skimage_histogram(img, weighted=True), rtol=1e-10
    )
    dens = orientation_histogram(img, bins=9, density=True)
    assert dens.shape == (9,) and float(dens.sum()) == pytest.approx(1.0)


def test_histogram_batch():
    rng = np.random.default_rng(12)
    imgs = rng.random((2, 3, 32, 32))
    h = orientation_histogram(imgs)
    assert h.shape == (2, 3, 18)
    np.testing.assert_array_equal(h[1, 2].numpy(), _skimage_histogram(imgs[1, 2]))


@pytest.mark.parametrize("deg", [5, 35, 65, 95, 125, 155])
def test_grating_orientation_and_low_variance(deg):
    theta = np.radians(deg)  # gradient direction, measured from the row axis
    img = _grating(theta)
    h = orientation_histogram(img)
    assert int(h.argmax()) == int(deg // 10)
    assert float(circular_variance(histogram=h)) < 0.03
    angles, mag = gradient_orientations(img)
    assert float(circular_variance(angles, dim=(-2, -1))) < 0.03
    assert float(circular_variance(angles, weights=mag, dim=(-2, -1))) < 0.03


def test_white_noise_high_variance():
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(4, 128, 128, generator=g, dtype=torch.float64)
    cv = circular_variance(histogram=orientation_histogram(noise))
    assert cv.shape == (4,)
    assert float(cv.min()) > 0.97


def test_circular_variance_hand_values():
    assert float(circular_variance(torch.tensor([0.3, 0.3, 0.3], dtype=torch.float64))) == pytest.approx(0.0, abs=1e-12)
    # axial: 0 and pi are the same orientation
    assert float(circular_variance(torch.tensor([0.0, math.pi], dtype=torch.float64))) == pytest.approx(0.0, abs=1e-12)
    # orthogonal orientations cancel
    assert float(circular_variance(torch.tensor([0.0, math.pi / 2], dtype=torch.float64))) == pytest.approx(1.0)
    # three orientations 60 degrees apart cancel
    assert float(circular_variance(np.array([0.0, np.pi / 3, 2 * np.pi / 3]))) == pytest.approx(1.0)
    # weights act as repetitions
    a = torch.tensor([0.1, 0.9], dtype=torch.float64)
    rep = torch.tensor([0.1, 0.1, 0.1, 0.9], dtype=torch.float64)
    assert float(circular_variance(a, weights=torch.tensor([3.0, 1.0], dtype=torch.float64))) == pytest.approx(
        float(circular_variance(rep))
    )
    # a histogram uses bin centres: a single full bin has zero variance
    h = torch.zeros(18, dtype=torch.float64)
    h[4] = 10
    assert float(circular_variance(histogram=h)) == pytest.approx(0.0, abs=1e-12)
    centres = orientation_bin_centers(18)
    assert float(centres[0]) == pytest.approx(math.pi / 36)
    assert float(circular_variance(histogram=torch.ones(2, 18, dtype=torch.float64))[0]) == pytest.approx(1.0)


def test_orientation_bad_inputs():
    with pytest.raises(ValueError, match="image"):
        orientation_histogram(np.zeros(10))
    with pytest.raises(ValueError, match="image"):
        orientation_histogram(np.full((8, 8), np.nan))
    with pytest.raises(TypeError, match="image"):
        orientation_histogram(np.zeros((8, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match="bins"):
        orientation_histogram(np.zeros((8, 8)), bins=0)
    with pytest.raises(ValueError, match="angles, histogram"):
        circular_variance()
    with pytest.raises(ValueError, match="angles, histogram"):
        circular_variance(np.zeros(3), histogram=np.ones(18))
    with pytest.raises(ValueError, match="histogram"):
        circular_variance(histogram=-np.ones(18))
    with pytest.raises(ValueError, match="weights"):
        circular_variance(np.zeros(3), weights=np.ones(4))
    with pytest.raises(ValueError, match="angles"):
        circular_variance(np.array([0.0, np.inf]))

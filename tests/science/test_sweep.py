"""Pruning sweeps against an independent numpy/float64 recomputation (prune by hand,
reconstruct by FFT, PSNR by its formula)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import csc
from csc.pipeline.sources.folders import builtin_photographs
from csc.science.sweep import DEFAULT_THRESHOLDS, PruningSweep, plot_pruning_curves, pruning_sweep


@pytest.fixture(autouse=True)
def _one_thread():
    # tiny problems: one thread is faster and immune to a busy shared machine
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _crop(img: np.ndarray, n: int) -> np.ndarray:
    r0, c0 = (img.shape[0] - n) // 2, (img.shape[1] - n) // 2
    return img[r0:r0 + n, c0:c0 + n]


@pytest.fixture(scope="module")
def solved():
    """Two 24×24 highpass crops coded with the heterogeneous dictionary in float64."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    photos = builtin_photographs(["camera", "grass"])
    imgs = torch.from_numpy(np.stack([_crop(im, 24) for im in photos.images]))
    low, high = csc.pipeline.preprocess.tikhonov_filter(imgs, 5.0, 16)
    D = csc.load_dictionary("heterogeneous", dtype=torch.float64)
    res = csc.ConvBPDN(D, 0.01, csc.CBPDNOptions(max_iter=40, record_stats=False)).solve(high)
    torch.set_num_threads(n)
    return imgs, low, res


def _numpy_reconstruct(codes: np.ndarray, D: np.ndarray) -> np.ndarray:
    """Σ_k d_k ⊛ x_k, circular, kernels zero-padded at the origin: (B, K, H, W) → (B, H, W)."""
    B, K, H, W = codes.shape
    pad = np.zeros((K, H, W))
    pad[:, : D.shape[1], : D.shape[2]] = D
    Df = np.fft.fft2(pad)
    return np.real(np.fft.ifft2((Df[None] * np.fft.fft2(codes)).sum(axis=1)))


def _numpy_psnr(ref: np.ndarray, test: np.ndarray) -> np.ndarray:
    rng = ref.max(axis=(-2, -1)) - ref.min(axis=(-2, -1))
    return 10 * np.log10(rng**2 / ((ref - test) ** 2).mean(axis=(-2, -1)))


def test_threshold_zero_reproduces_unpruned(solved):
    imgs, low, res = solved
    sw = pruning_sweep(res.codes, res.dictionary, imgs, thresholds=[0.0], lowpass=low)
    direct = csc.psnr(imgs, res.reconstruct() + low).numpy()
    np.testing.assert_allclose(sw.psnr[0], direct, rtol=1e-10)
    np.testing.assert_allclose(sw.unpruned_psnr, direct, rtol=1e-10)
    np.testing.assert_array_equal(sw.sparseness[0], csc.sparseness(res.codes).numpy())
    # a CBPDNResult can be passed directly; its dictionary is used
    sw2 = pruning_sweep(res, None, imgs, thresholds=[0.0], lowpass=low)
    np.testing.assert_array_equal(sw2.psnr, sw.psnr)


def test_sparseness_rises_with_threshold(solved):
    imgs, low, res = solved
    thr = np.linspace(0.0, 1.5 * float(res.codes.abs().max()), 8)
    sw = pruning_sweep(res.codes, res.dictionary, imgs, thr, lowpass=low)
    assert (np.diff(sw.sparseness, axis=0) >= 0).all()
    assert (sw.sparseness[-1] == 1.0).all()  # above max|x|: nothing left
    # with every coefficient pruned the reconstruction is the lowpass alone
    np.testing.assert_allclose(sw.psnr[-1], csc.psnr(imgs, low).numpy(), rtol=1e-12)
    assert sw.median_sparseness.shape == (8,) and sw.median_psnr.shape == (8,)


def test_matches_numpy_float64_recomputation(solved):
    imgs, low, res = solved
    x = res.codes.numpy()
    D = res.dictionary.numpy()
    thr = [0.001, 0.01, 0.03, 0.1]
    sw = pruning_sweep(res.codes, res.dictionary, imgs, thr, lowpass=low, names=["camera", "grass"])
    for i, c in enumerate(thr):
        xp = np.where(np.abs(x) < c, 0.0, x)
        rec = _numpy_reconstruct(xp, D) + low.numpy()
        np.testing.assert_allclose(sw.psnr[i], _numpy_psnr(imgs.numpy(), rec), rtol=1e-10)
        np.testing.assert_array_equal(sw.sparseness[i], (xp == 0).mean(axis=(1, 2, 3)))
    # eq. 6 form
    swp = pruning_sweep(res.codes, res.dictionary, imgs, thr[:1], lowpass=low, metric="paper")
    xp = np.where(np.abs(x) < thr[0], 0.0, x)
    err = ((imgs.numpy() - _numpy_reconstruct(xp, D) - low.numpy()) ** 2).mean(axis=(1, 2))
    np.testing.assert_allclose(swp.psnr[0], 20 * np.log10(imgs.numpy().max(axis=(1, 2))) - 10 * np.log10(err),
                               rtol=1e-10)
    assert sw.names == ("camera", "grass")


def test_float32_codes_close_to_float64_reference(solved):
    imgs, low, res = solved
    x32 = res.codes.float()
    sw = pruning_sweep(x32, res.dictionary.float(), imgs.float(), [0.01], lowpass=low.float())
    xp = np.where(np.abs(x32.numpy()) < np.float32(0.01), 0.0, x32.numpy().astype(np.float64))
    rec = _numpy_reconstruct(xp, res.dictionary.float().numpy().astype(np.float64)) + low.float().numpy()
    np.testing.assert_allclose(sw.psnr[0], _numpy_psnr(imgs.float().numpy().astype(np.float64), rec), rtol=1e-9)


def test_relative_thresholds_match_prune(solved):
    imgs, low, res = solved
    thr = [0.25, 0.5]
    sw = pruning_sweep(res.codes, res.dictionary, imgs, thr, relative=True, lowpass=low)
    assert sw.relative
    x = res.codes.numpy()
    for i, c in enumerate(thr):
        pruned = csc.prune(res.codes, c, relative=True)
        np.testing.assert_array_equal(sw.sparseness[i], csc.sparseness(pruned).numpy())
        # by hand: per image, |x| < c · max|x|
        cut = c * np.abs(x).max(axis=(1, 2, 3), keepdims=True)
        xp = np.where(np.abs(x) < cut, 0.0, x)
        np.testing.assert_array_equal(pruned.numpy(), xp)
        rec = _numpy_reconstruct(xp, res.dictionary.numpy()) + low.numpy()
        np.testing.assert_allclose(sw.psnr[i], _numpy_psnr(imgs.numpy(), rec), rtol=1e-10)


def test_scale_and_lowpass_for_lcn_codes():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 16, 16)) * (rng.random((2, 3, 16, 16)) < 0.1)
    D = rng.standard_normal((3, 5, 5))
    ref = rng.random((2, 16, 16))
    scale = rng.random((2, 16, 16)) + 0.5
    mean = rng.random((2, 16, 16))
    sw = pruning_sweep(x, D, ref, [0.0, 0.5], scale=scale, lowpass=mean)
    for i, c in enumerate([0.0, 0.5]):
        xp = np.where(np.abs(x) < c, 0.0, x)
        np.testing.assert_allclose(sw.psnr[i], _numpy_psnr(ref, scale * _numpy_reconstruct(xp, D) + mean),
                                   rtol=1e-10)
    # no lowpass: the reconstruction is Σ d_k ⊛ x_k alone; a single (K, H, W) code works
    sw1 = pruning_sweep(x[0], D, ref[0], [0.5])
    xp = np.where(np.abs(x[:1]) < 0.5, 0.0, x[:1])
    np.testing.assert_allclose(sw1.psnr[0], _numpy_psnr(ref[:1], _numpy_reconstruct(xp, D)), rtol=1e-10)


def test_default_thresholds_record_and_plot(solved, tmp_path):
    imgs, low, res = solved
    sw = pruning_sweep(res.codes, res.dictionary, imgs, lowpass=low, label="heterogeneous")
    np.testing.assert_allclose(sw.thresholds, np.linspace(0.001, 0.5, 6))
    assert DEFAULT_THRESHOLDS == tuple(np.linspace(0.001, 0.5, 6))
    d = json.loads(json.dumps(sw.to_dict()))
    assert d["label"] == "heterogeneous" and len(d["psnr"]) == 6 and len(d["psnr"][0]) == 2
    np.testing.assert_allclose(d["median_psnr"], np.median(sw.psnr, axis=1))
    np.testing.assert_allclose(sw.psnr_drop, sw.psnr - sw.unpruned_psnr)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    plot_pruning_curves(ax, {"heterogeneous": sw, "copy": sw})
    assert ax.get_xlabel().startswith("sparseness") and "PSNR" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["heterogeneous", "copy"]
    fig.savefig(tmp_path / "p.png")
    plt.close(fig)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"thresholds": [-0.1]}, "thresholds"),
        ({"thresholds": [np.nan]}, "thresholds"),
        ({"thresholds": []}, "thresholds"),
        ({"thresholds": [[0.1, 0.2]]}, "thresholds"),
        ({"metric": "ssim"}, "metric"),
        ({"names": ["a"]}, "names"),
        ({"lowpass": np.zeros((3, 24, 24))}, "lowpass"),
    ],
)
def test_bad_arguments(solved, kwargs, match):
    imgs, low, res = solved
    with pytest.raises(ValueError, match=match):
        pruning_sweep(res.codes, res.dictionary, imgs, **kwargs)


def test_bad_shapes(solved):
    imgs, low, res = solved
    with pytest.raises(ValueError, match="reference_images"):
        pruning_sweep(res.codes, res.dictionary, imgs[:, :20, :20])
    with pytest.raises(ValueError, match="reference_images"):
        pruning_sweep(res.codes, res.dictionary, imgs[:1])
    with pytest.raises(ValueError, match="dictionary"):
        pruning_sweep(res.codes, res.dictionary[:10], imgs)
    with pytest.raises(ValueError, match="dictionary"):
        pruning_sweep(res.codes, None, imgs)
    with pytest.raises(ValueError, match="codes"):
        pruning_sweep(res.codes[0, 0], res.dictionary, imgs)
    with pytest.raises(ValueError, match="codes"):
        bad = res.codes.clone()
        bad[0, 0, 0, 0] = float("nan")
        pruning_sweep(bad, res.dictionary, imgs)
    with pytest.raises(TypeError, match="codes"):
        pruning_sweep(torch.zeros(1, 3, 8, 8, dtype=torch.int64), torch.zeros(3, 2, 2), torch.zeros(1, 8, 8))
    with pytest.raises(TypeError, match="PruningSweep"):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        try:
            plot_pruning_curves(ax, {"x": 1})
        finally:
            plt.close(fig)
    assert isinstance(pruning_sweep(res.codes, res.dictionary, imgs, 0.1), PruningSweep)  # scalar threshold

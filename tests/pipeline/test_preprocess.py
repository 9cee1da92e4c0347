"""Preprocessing against SPORCO, scikit-image and torch references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from csc.pipeline.preprocess import (
    GRAY_WEIGHTS,
    LCNResult,
    TikhonovResult,
    center_crop,
    local_contrast_normalise,
    resize,
    symmetric_pad,
    tikhonov_filter,
    to_float,
    to_grayscale,
)

sporco_signal = pytest.importorskip("sporco.signal")
sporco_fft = pytest.importorskip("sporco.fft")


@pytest.fixture(autouse=True, scope="module")
def _fast_fftw_planning():
    """SPORCO plans pyFFTW with FFTW_MEASURE (seconds per new odd size); the result is
    the same DFT, so plan with FFTW_ESTIMATE to keep the test fast."""
    old = sporco_fft.pyfftw_planner_effort
    sporco_fft.pyfftw_planner_effort = "FFTW_ESTIMATE"
    yield
    sporco_fft.pyfftw_planner_effort = old


@pytest.fixture(scope="module")
def photos():
    from skimage import data
    from skimage.util import img_as_float

    cam = img_as_float(data.camera())[100:160, 200:247]  # 60 x 47, non-square
    moon = img_as_float(data.moon())[300:360, 50:97]
    return np.stack([cam, moon])


def test_symmetric_pad_matches_numpy():
    x = np.random.default_rng(0).random((2, 5, 4))
    for p in (0, 1, 3, 4, 9):  # 9 > image size: keeps mirroring like numpy
        ref = np.pad(x, ((0, 0), (p, p), (p, p)), mode="symmetric")
        np.testing.assert_array_equal(symmetric_pad(torch.from_numpy(x), p).numpy(), ref)


@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_lcn_matches_sporco_single(photos, scale):
    s = photos[0] * scale
    ref = sporco_signal.local_contrast_normalise(s)
    out = local_contrast_normalise(torch.from_numpy(s))
    assert isinstance(out, LCNResult)
    for a, b in zip(out, ref):
        np.testing.assert_allclose(a.numpy(), b, rtol=0, atol=1e-10 * scale)


def test_lcn_matches_sporco_batch_and_options(photos):
    # SPORCO's stack layout is (H, W, B); c (when None) is per image
    ref = sporco_signal.local_contrast_normalise(np.moveaxis(photos, 0, -1), n=4)
    out = local_contrast_normalise(torch.from_numpy(photos), n=4)
    for a, b in zip(out, ref):
        np.testing.assert_allclose(a.numpy(), np.moveaxis(b, -1, 0), rtol=0, atol=1e-10)
    ref = sporco_signal.local_contrast_normalise(photos[1], n=7, c=0.05)
    out = local_contrast_normalise(photos[1], n=7, c=0.05)
    for a, b in zip(out, ref):
        np.testing.assert_allclose(a.numpy(), b, rtol=0, atol=1e-10)
    np.testing.assert_allclose(out.reconstruct().numpy(), photos[1], atol=1e-12)


@pytest.mark.parametrize("lmbda,npd", [(5.0, 16), (0.5, 4), (20.0, 0)])
def test_tikhonov_matches_sporco(photos, lmbda, npd):
    ref = sporco_signal.tikhonov_filter(photos[0], lmbda, npd)
    out = tikhonov_filter(torch.from_numpy(photos[0]), lmbda, npd)
    assert isinstance(out, TikhonovResult)
    for a, b in zip(out, ref):
        assert a.dtype == torch.float64
        np.testing.assert_allclose(a.numpy(), b, rtol=0, atol=1e-10)
    refb = sporco_signal.tikhonov_filter(np.moveaxis(photos, 0, -1), lmbda, npd)
    outb = tikhonov_filter(torch.from_numpy(photos), lmbda, npd)
    for a, b in zip(outb, refb):
        np.testing.assert_allclose(a.numpy(), np.moveaxis(b, -1, 0), rtol=0, atol=1e-10)
    np.testing.assert_allclose((outb.lowpass + outb.highpass).numpy(), photos, atol=1e-14)


def test_float32_close_to_float64(photos):
    x64 = torch.from_numpy(photos)
    x32 = x64.float()
    lo32, hi32 = tikhonov_filter(x32, 5.0)
    lo64, hi64 = tikhonov_filter(x64, 5.0)
    assert lo32.dtype == torch.float32
    torch.testing.assert_close(hi32.double(), hi64, atol=1e-5, rtol=0)
    n32 = local_contrast_normalise(x32).normalised
    assert n32.dtype == torch.float32
    torch.testing.assert_close(n32.double(), local_contrast_normalise(x64).normalised, atol=1e-4, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.cuda
def test_cuda_matches_cpu(photos):
    x = torch.from_numpy(photos)
    for f in (lambda t: tikhonov_filter(t, 5.0).highpass, lambda t: local_contrast_normalise(t).normalised):
        y = f(x.cuda())
        assert y.is_cuda
        torch.testing.assert_close(y.cpu(), f(x), atol=1e-10, rtol=0)


def test_grayscale_matches_skimage():
    from skimage import color, data
    from skimage.util import img_as_float

    rgb = img_as_float(data.astronaut()[::8, ::8])  # (64, 64, 3) float64
    ref = color.rgb2gray(rgb)
    out = to_grayscale(torch.from_numpy(rgb), channel_dim=-1)
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-12)
    chw = torch.from_numpy(rgb).permute(2, 0, 1)
    batch = torch.stack([chw, chw.flip(-1)])  # (2, 3, H, W)
    outb = to_grayscale(batch)
    assert outb.shape == (2, 64, 64)
    np.testing.assert_allclose(outb[0].numpy(), ref, atol=1e-12)
    np.testing.assert_allclose(outb[1].numpy(), ref[:, ::-1], atol=1e-12)
    r, g, b = GRAY_WEIGHTS["bt601"]
    np.testing.assert_allclose(
        to_grayscale(chw, weights="bt601").numpy(), r * rgb[..., 0] + g * rgb[..., 1] + b * rgb[..., 2], atol=1e-12
    )
    with pytest.raises(ValueError, match="3 \\(R, G, B\\) channels"):
        to_grayscale(torch.zeros(4, 8, 8))
    with pytest.raises(TypeError, match="floating"):
        to_grayscale(torch.zeros(3, 8, 8, dtype=torch.uint8))


def test_to_float():
    u = np.array([[0, 255], [51, 102]], np.uint8)
    t = to_float(u)
    assert t.dtype == torch.float32
    np.testing.assert_allclose(t.numpy(), u / 255.0, rtol=1e-7)
    assert to_float(torch.ones(2, 2, dtype=torch.float64)).dtype == torch.float32
    assert to_float(u, dtype=torch.float64).dtype == torch.float64
    with pytest.raises(TypeError, match="uint8"):
        to_float(np.zeros(3, np.int32))


def test_resize_bilinear():
    x = torch.rand(5, 32, 32, dtype=torch.float64)
    up = resize(x, 128)
    assert up.shape == (5, 128, 128) and up.dtype == torch.float64
    ref = F.interpolate(x[:, None], size=(128, 128), mode="bilinear", align_corners=False)[:, 0]
    torch.testing.assert_close(up, ref, rtol=0, atol=1e-12)
    # antialias does not affect up-sampling
    torch.testing.assert_close(resize(x, 64, antialias=False), resize(x, 64, antialias=True))
    # half-pixel centres: a 2x up-sampling of a ramp is a ramp with clamped ends
    ramp = torch.arange(4, dtype=torch.float64).expand(4, 4)
    np.testing.assert_allclose(resize(ramp, (4, 8))[0].numpy(), [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3])
    # down-sampling: antialias=True averages, False samples
    y = torch.rand(2, 3, 64, 64)
    assert resize(y, (32, 16)).shape == (2, 3, 32, 16)
    ref_aa = F.interpolate(y, size=(32, 16), mode="bilinear", align_corners=False, antialias=True)
    torch.testing.assert_close(resize(y, (32, 16)), ref_aa)
    assert not torch.allclose(resize(y, 32, antialias=False), resize(y, 32, antialias=True))
    assert resize(torch.rand(7, 9), (3, 4)).shape == (3, 4)
    with pytest.raises(ValueError, match="size"):
        resize(x, (0, 3))


def test_center_crop():
    x = torch.arange(5 * 7).reshape(5, 7)
    c = center_crop(x, (2, 3))
    # torchvision offsets: round((5-2)/2)=2, round((7-3)/2)=2
    torch.testing.assert_close(c, x[2:4, 2:5])
    big = torch.rand(2, 300, 451)
    assert center_crop(big, 256).shape == (2, 256, 256)
    torch.testing.assert_close(center_crop(big, 256), big[:, 22:278, 98:354])
    assert center_crop(np.zeros((10, 10, 3))[..., 0], 4).shape == (4, 4)
    with pytest.raises(ValueError, match="larger than the image"):
        center_crop(x, 6)


def test_input_checks():
    with pytest.raises(ValueError, match="finite"):
        tikhonov_filter(torch.tensor([[1.0, float("nan")], [0.0, 0.0]]), 5.0)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        local_contrast_normalise(torch.zeros(5))
    with pytest.raises(ValueError, match="lmbda"):
        tikhonov_filter(torch.zeros(4, 4), -1.0)


# ------------------------------------------------------------------ the Preprocess object
from csc.pipeline.preprocess import (  # noqa: E402
    PREPROCESS_KINDS,
    Preprocess,
    PreprocessState,
    check_preprocess_kind,
)


def test_preprocess_highpass_is_tikhonov_and_sporco(photos):
    x = torch.from_numpy(photos)
    pre = Preprocess("highpass")
    sig, state = pre.forward(x)
    low, high = tikhonov_filter(x, 5.0, 16)
    assert torch.equal(sig, high) and torch.equal(state.lowpass, low) and state.scale is None
    for b in range(len(photos)):  # batch = each image alone, and SPORCO's numbers
        slp, shp = sporco_signal.tikhonov_filter(photos[b], 5.0, 16)
        np.testing.assert_allclose(sig[b].numpy(), shp, rtol=0, atol=1e-13)
        np.testing.assert_allclose(state.offset[b].numpy(), slp, rtol=0, atol=1e-13)
    back = pre.inverse(sig, state)
    np.testing.assert_allclose(back.numpy(), photos, rtol=0, atol=1e-14)
    assert torch.equal(back, high + low)  # what every former copy computed
    assert torch.equal(pre.inverse(sig, state), state.inverse(sig))


@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_preprocess_lcn_is_local_contrast_normalise(photos, scale):
    x = torch.from_numpy(photos)
    pre = Preprocess("lcn", lcn_input_scale=scale)
    sig, state = pre.forward(x)
    ref = local_contrast_normalise(x * scale if scale != 1.0 else x)
    assert torch.equal(sig, ref.normalised)
    assert torch.equal(state.scale, ref.norm) and torch.equal(state.offset, ref.mean) and state.lowpass is None
    sp = sporco_signal.local_contrast_normalise(photos[0] * scale)
    np.testing.assert_allclose(sig[0].numpy(), sp[0], rtol=0, atol=1e-12)
    back = pre.inverse(sig, state)
    np.testing.assert_allclose(back.numpy(), photos, rtol=0, atol=1e-13)
    if scale == 1.0:
        assert torch.equal(back, ref.norm * sig + ref.mean)


def test_preprocess_none_is_identity(photos):
    x = torch.from_numpy(photos)
    pre = Preprocess("none")
    sig, state = pre.forward(x)
    assert torch.equal(sig, x) and state == PreprocessState("none")
    r = torch.rand_like(x)
    assert torch.equal(pre.inverse(r, state), r)


@pytest.mark.parametrize("kind", PREPROCESS_KINDS)
def test_preprocess_dtypes_shapes_and_arrays(photos, kind):
    pre = Preprocess(kind)
    x64 = torch.from_numpy(photos)
    s64, _ = pre.forward(x64)
    s32, st32 = pre.forward(x64.float())
    assert s32.dtype == torch.float32 and s32.shape == x64.shape
    torch.testing.assert_close(s32.double(), s64, atol=1e-4, rtol=0)
    assert pre.inverse(s32, st32).dtype == torch.float32
    one, _ = pre.forward(photos[1])  # a single (H, W) ndarray
    torch.testing.assert_close(one, s64[1], atol=1e-12, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.cuda
@pytest.mark.parametrize("kind", PREPROCESS_KINDS)
def test_preprocess_cuda_matches_cpu(photos, kind):
    pre = Preprocess(kind)
    x = torch.from_numpy(photos)
    sig, state = pre.forward(x.cuda())
    back = pre.inverse(sig, state)
    assert sig.is_cuda and back.is_cuda
    torch.testing.assert_close(sig.cpu(), pre.forward(x)[0], atol=1e-10, rtol=0)
    torch.testing.assert_close(back.cpu(), x, atol=1e-10, rtol=0)


def test_preprocess_errors():
    with pytest.raises(ValueError, match=r"kind: expected 'highpass', 'lcn' or 'none', got 'lowpass'"):
        Preprocess("lowpass")
    with pytest.raises(ValueError, match="tikhonov_lmbda"):
        Preprocess("highpass", tikhonov_lmbda=-1.0)
    with pytest.raises(ValueError, match="tikhonov_npd"):
        Preprocess("highpass", tikhonov_npd=-2)
    with pytest.raises(ValueError, match="lcn_n"):
        Preprocess("lcn", lcn_n=0)
    with pytest.raises(ValueError, match="lcn_c"):
        Preprocess("lcn", lcn_c=float("inf"))
    with pytest.raises(ValueError, match="lcn_input_scale"):
        Preprocess("lcn", lcn_input_scale=0.0)
    _, state = Preprocess("lcn").forward(torch.rand(8, 8))
    with pytest.raises(ValueError, match="state: made by a 'lcn'"):
        Preprocess("highpass").inverse(torch.rand(8, 8), state)
    with pytest.raises(TypeError, match="state"):
        Preprocess("highpass").inverse(torch.rand(8, 8), None)
    with pytest.raises(ValueError, match="finite"):
        Preprocess("none").forward(torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(TypeError, match="floating"):
        Preprocess("highpass").forward(torch.zeros(4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"preprocess: expected 'highpass' or 'lcn', got 'none'"):
        check_preprocess_kind("preprocess", "none", ("highpass", "lcn"))
    assert check_preprocess_kind("preprocess", "lcn") == "lcn"


def test_store_preprocessing_is_the_former_formula():
    """The store codes LCN of the 0–255 image and the Tikhonov highpass, as before."""
    from csc.pipeline.store import EncodeSettings, preprocess_images

    x = torch.rand(3, 16, 16)
    lcn = preprocess_images(x, EncodeSettings(preprocess="lcn"))
    assert torch.equal(lcn, local_contrast_normalise(x * 255.0).normalised)
    hp = preprocess_images(x, EncodeSettings(preprocess="highpass"))
    assert torch.equal(hp, tikhonov_filter(x, 5.0, 16).highpass)
    assert torch.equal(preprocess_images(x, EncodeSettings(preprocess="none")), x)
    with pytest.raises(ValueError, match="preprocess: expected 'highpass', 'lcn' or 'none'"):
        EncodeSettings(preprocess="tikhonov")

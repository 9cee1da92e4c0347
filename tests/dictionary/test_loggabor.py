"""Tests of csc.dictionary.loggabor against independent references (numpy FFTs, SPEC facts)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from csc.dictionary.loggabor import (
    KernelFit,
    LogGaborParams,
    angular_bandwidth_degrees,
    fit_kernel_params,
    loggabor_dictionary,
    loggabor_kernel,
    loggabor_kernels,
)

PAD = 96  # zero-padded DFT size used to read a kernel's spectrum finely


def _spectrum(kernel):
    """Amplitude spectrum of a kernel on a fine grid, with (f_rows, f_cols) coordinates."""
    k = np.asarray(kernel, dtype=np.float64)
    amp = np.fft.fftshift(np.abs(np.fft.fft2(k, s=(PAD, PAD))))
    fr = (np.arange(PAD) - PAD // 2) / PAD
    f_rows, f_cols = np.meshgrid(fr, fr, indexing="ij")
    return amp, f_rows, f_cols


def _axial_diff_deg(a, b):
    """|a - b| modulo π, in degrees."""
    return np.degrees(np.abs((np.asarray(a) - np.asarray(b) + np.pi / 2) % np.pi - np.pi / 2))


def _spectral_circular_variance(kernel):
    amp, fr, fc = _spectrum(kernel)
    w = amp**2
    phi = np.arctan2(fc, fr)
    c = (w * np.cos(2 * phi)).sum() / w.sum()
    s = (w * np.sin(2 * phi)).sum() / w.sum()
    return 1 - np.hypot(c, s)


# ---------------------------------------------------------------------------
# single kernels
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["library", "paper"])
def test_spectrum_peaks_at_theta(form):
    # theta is measured from the row axis towards the column axis:
    # the amplitude peak sits at angle atan2(f_cols, f_rows) = theta (mod pi)
    for theta in np.linspace(0, np.pi, 16, endpoint=False):
        for phase in (0.0, np.pi / 2, 1.0):
            k = loggabor_kernel(theta=theta, b_theta=np.pi / 12, phase=phase, form=form)
            amp, fr, fc = _spectrum(k.numpy())
            i = np.unravel_index(amp.argmax(), amp.shape)
            assert _axial_diff_deg(np.arctan2(fc[i], fr[i]), theta) < 2.0
            # peak radius near the centre frequency region
            assert 0.2 < math.hypot(fr[i], fc[i]) < 0.45


@pytest.mark.parametrize("form", ["library", "paper"])
def test_angular_spread_grows_with_b_theta(form):
    b = np.linspace(0, np.pi / 6, 7)[1:]
    cv = [_spectral_circular_variance(loggabor_kernel(theta=0.4, b_theta=bt, form=form).numpy()) for bt in b]
    assert np.all(np.diff(cv) > 0)
    assert cv[-1] > 3 * cv[0]


def test_theta_zero_is_horizontal_stripes():
    # theta = 0: frequency along the rows, so the even kernel varies down the rows
    k = loggabor_kernel(theta=0.0, b_theta=np.pi / 12).numpy()
    assert np.abs(np.diff(k, axis=0)).sum() > 3 * np.abs(np.diff(k, axis=1)).sum()


def test_no_dc_and_unit_norm():
    for preset in ("homogeneous", "heterogeneous"):
        k, _ = loggabor_dictionary(preset, dtype=torch.float64)
        norms = torch.linalg.vector_norm(k, dim=(1, 2))
        torch.testing.assert_close(norms, torch.ones_like(norms))
        # sum of 144 pixels of a unit kernel is at most 12; the DC is ~100x below that
        assert float((k.sum(dim=(1, 2)).abs() / 12).max()) < 0.01


def test_paper_form_differs_but_is_oriented():
    lib = loggabor_kernel(theta=0.7, b_theta=np.pi / 10, phase=0.3, form="library")
    pap = loggabor_kernel(theta=0.7, b_theta=np.pi / 10, phase=0.3, form="paper")
    assert float(torch.linalg.vector_norm(lib - pap)) > 0.1
    amp, fr, fc = _spectrum(pap.numpy())
    i = np.unravel_index(amp.argmax(), amp.shape)
    assert _axial_diff_deg(np.arctan2(fc[i], fr[i]), 0.7) < 2.0


@pytest.mark.parametrize("form", ["library", "paper"])
def test_phase_is_a_quadrature_pair(form):
    # k(psi) = cos(psi) k(0) + sin(psi) k(pi/2) before normalisation
    kw = dict(theta=1.1, b_theta=0.2, form=form, normalise=None)
    k0, k1, kp = (loggabor_kernel(phase=p, **kw) for p in (0.0, np.pi / 2, 0.8))
    torch.testing.assert_close(kp, math.cos(0.8) * k0 + math.sin(0.8) * k1)
    # the odd kernel is not zero (the paper's pi-periodic envelope needs the analytic form)
    assert float(torch.linalg.vector_norm(k1)) > 0.3 * float(torch.linalg.vector_norm(k0))


def test_dtype_and_device():
    k = loggabor_kernel(dtype=torch.float32, device="cpu")
    assert k.dtype == torch.float32 and k.shape == (12, 12)
    k = loggabor_kernel(size=16)
    assert k.dtype == torch.float64 and k.shape == (16, 16)


def test_bandwidth_degrees_is_half_width_at_half_height():
    sigma = np.radians(5.0)
    half = np.radians(angular_bandwidth_degrees(sigma))
    # the library's angular envelope exp((cos d - 1)/sigma^2) is ~0.5 at d = B_theta
    assert abs(math.exp((math.cos(half) - 1) / sigma**2) - 0.5) < 0.005
    assert angular_bandwidth_degrees(np.pi / 6) == pytest.approx(30 * math.sqrt(2 * math.log(2)))


# ---------------------------------------------------------------------------
# presets
# ---------------------------------------------------------------------------


def test_homogeneous_preset():
    k, p = loggabor_dictionary("homogeneous")
    assert k.shape == (144, 12, 12) and k.dtype == torch.float32 and len(p) == 144
    np.testing.assert_allclose(p.theta.reshape(72, 2)[:, 0], np.linspace(0, np.pi, 72, endpoint=False))
    np.testing.assert_allclose(p.theta.reshape(72, 2)[:, 1], p.theta.reshape(72, 2)[:, 0])
    np.testing.assert_allclose(p.b_theta, np.pi / 15)
    np.testing.assert_allclose(p.b_theta_degrees, 12.0)
    np.testing.assert_allclose(p.phase, np.tile([0, np.pi / 2], 72))
    assert (p.size, p.f0, p.b_f, p.form) == (12, 0.4, 0.4, "library")


def test_heterogeneous_preset_order():
    k, p = loggabor_dictionary("heterogeneous")
    assert k.shape == (144, 12, 12)
    t = p.theta.reshape(12, 6, 2)
    b = p.b_theta.reshape(12, 6, 2)
    ph = p.phase.reshape(12, 6, 2)
    np.testing.assert_allclose(t, np.broadcast_to(np.linspace(0, np.pi, 12, endpoint=False)[:, None, None], t.shape))
    np.testing.assert_allclose(b, np.broadcast_to(np.linspace(0, np.pi / 6, 7)[1:][None, :, None], b.shape))
    np.testing.assert_allclose(np.degrees(b[0, :, 0]), [5, 10, 15, 20, 25, 30])
    np.testing.assert_allclose(ph, np.broadcast_to(np.array([0, np.pi / 2]), ph.shape))
    # kernel i is the kernel of row i of the table
    for i in (0, 17, 100, 143):
        ki = loggabor_kernel(theta=p.theta[i], b_theta=p.b_theta[i], phase=p.phase[i], dtype=torch.float32)
        torch.testing.assert_close(k[i], ki)


def test_authors_normalisation_matches_spec_norm_range():
    # SPEC §3: the authors' kernels (minus median, / max|.|) have l2 norms ~1.5-3.9
    k, _ = loggabor_dictionary("heterogeneous", normalise="authors", dtype=torch.float64)
    flat = k.flatten(1).numpy()
    np.testing.assert_allclose(np.abs(flat).max(axis=1), 1.0)
    np.testing.assert_allclose(np.median(flat, axis=1), 0.0, atol=1e-12)
    norms = np.linalg.norm(flat, axis=1)
    assert 1.4 < norms.min() < 1.6 and 3.8 < norms.max() < 4.0


def test_params_table_and_explicit_params():
    p = LogGaborParams.from_grid([0.0, 1.0], [0.1, 0.2, 0.3], [0.0], size=10, form="paper")
    assert len(p) == 6 and p.as_array().shape == (6, 3)
    np.testing.assert_allclose(p.theta, [0, 0, 0, 1, 1, 1])
    k, p2 = loggabor_dictionary(p, dtype=torch.float64)
    assert p2 is p and k.shape == (6, 10, 10)
    torch.testing.assert_close(k, loggabor_kernels(p, dtype=torch.float64))
    with pytest.raises(ValueError):
        p.theta[0] = 3.0  # read-only


# ---------------------------------------------------------------------------
# fitting
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["library", "paper"])
@pytest.mark.parametrize("normalise", ["unit", "authors"])
def test_fit_recovers_parameters(form, normalise):
    rng = np.random.default_rng(1234)
    n = 24
    theta = rng.uniform(0, np.pi, n)
    b = rng.uniform(np.radians(4), np.radians(32), n)
    phase = rng.uniform(-np.pi, np.pi, n)
    k = loggabor_kernels(LogGaborParams(theta, b, phase, form=form), normalise=normalise)
    fit = fit_kernel_params(k, form=form)
    assert isinstance(fit, KernelFit) and fit.theta.shape == (n,)
    assert _axial_diff_deg(fit.theta, theta).max() < 3.0
    assert np.abs(fit.b_theta / b - 1).max() < 0.2
    assert np.all((fit.theta >= 0) & (fit.theta < np.pi))
    dphase = np.abs((fit.phase - phase + np.pi) % (2 * np.pi) - np.pi)
    assert dphase.max() < 0.05
    assert fit.residual.max() < 0.01


def test_fit_robust_to_noise_and_batch_shape():
    rng = np.random.default_rng(7)
    theta = rng.uniform(0, np.pi, 24)
    b = rng.uniform(np.radians(5), np.radians(30), 24)
    k = loggabor_kernels(LogGaborParams(theta, b, rng.uniform(0, np.pi, 24)), dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    noisy = k + 0.05 / 12 * torch.randn(k.shape, generator=g, dtype=torch.float64)  # 5 % noise energy
    fit = fit_kernel_params(noisy.reshape(4, 6, 12, 12))
    assert fit.theta.shape == (4, 6)
    assert _axial_diff_deg(fit.theta.ravel(), theta).max() < 3.0
    assert np.abs(fit.b_theta.ravel() / b - 1).max() < 0.2
    single = fit_kernel_params(k[3].numpy())
    assert single.theta.shape == ()
    assert _axial_diff_deg(single.theta, theta[3]) < 3.0


def test_fit_whole_preset():
    k, p = loggabor_dictionary("heterogeneous")
    fit = fit_kernel_params(k)
    assert _axial_diff_deg(fit.theta, p.theta).max() < 1.0
    assert np.abs(fit.b_theta / p.b_theta - 1).max() < 0.05
    np.testing.assert_allclose(fit.bandwidth_degrees, angular_bandwidth_degrees(fit.b_theta))


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


def test_bad_inputs():
    with pytest.raises(ValueError, match="form"):
        loggabor_kernel(form="gabor")
    with pytest.raises(ValueError, match="normalise"):
        loggabor_kernel(normalise="l1")
    with pytest.raises(ValueError, match="preset_or_params"):
        loggabor_dictionary("medium")
    with pytest.raises(TypeError, match="preset_or_params"):
        loggabor_dictionary(3)
    with pytest.raises(ValueError, match="b_theta"):
        loggabor_kernel(b_theta=0.0)
    with pytest.raises(ValueError, match="size"):
        loggabor_kernel(size=2)
    with pytest.raises(ValueError, match="equal lengths"):
        LogGaborParams([0.0, 1.0], [0.1], [0.0, 0.0])
    p = LogGaborParams.preset("homogeneous")
    with pytest.raises(ValueError, match="size"):
        loggabor_dictionary(p, size=16)
    with pytest.raises(ValueError, match="kernels"):
        fit_kernel_params(torch.full((12, 12), float("nan"), dtype=torch.float64))
    with pytest.raises(ValueError, match="kernels"):
        fit_kernel_params(torch.zeros(12, 10, dtype=torch.float64))
    with pytest.raises(ValueError, match="kernels"):
        fit_kernel_params(torch.zeros(12, 12, dtype=torch.float64))
    with pytest.raises(TypeError, match="kernels"):
        fit_kernel_params(np.ones((12, 12), dtype=np.int64))

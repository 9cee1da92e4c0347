"""Tests of csc.science.analysis against samples from known distributions."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from scipy import stats  # noqa: E402

from csc.science.analysis import (  # noqa: E402
    MAGNITUDE_FAMILIES,
    ORIENTATION_MODELS,
    batch_coefficient_statistics,
    batch_orientation_statistics,
    bic_from_rss,
    coefficient_orientations,
    coefficient_statistics,
    fit_coefficient_magnitudes,
    fit_orientations,
    orientation_statistics,
    plot_bic,
    plot_coefficient_statistics,
    plot_orientation_statistics,
)


def axial_von_mises(rng, n, kappa, phi):
    """Axial orientations (radians, [0, pi)) whose doubled angle is von Mises(kappa, 2 pi phi).

    Their density in x = theta / pi is proportional to exp(kappa cos(2 pi (x - phi))), the
    shape of one term of the paper's eq. 11.
    """
    doubled = stats.vonmises.rvs(kappa, loc=2 * np.pi * phi, size=n, random_state=rng)
    return np.mod(doubled / 2.0, np.pi)


def circ_err_deg(phi_hat, phi):
    """Axial distance between two orientations given as fractions of pi, in degrees."""
    d = abs((phi_hat - phi + 0.5) % 1.0 - 0.5)
    return d * 180.0


# --------------------------------------------------------------------------------------
# Coefficient magnitudes
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exponential_rate_recovered_and_exponential_wins_bic(seed):
    rng = np.random.default_rng(seed)
    b_true = 3.0
    x = rng.exponential(1.0 / b_true, 20_000)
    # signs and zeros are handled: only the nonzero magnitudes count
    signed = np.concatenate([x * rng.choice([-1.0, 1.0], x.size), np.zeros(5000)])
    r = fit_coefficient_magnitudes(signed)
    assert r.n_nonzero == x.size
    assert r.best_family == "exponential"
    assert set(r.bic) == set(MAGNITUDE_FAMILIES)
    # the paper's least-squares curve a exp(-b x) on the histogram
    assert r.b == pytest.approx(b_true, rel=0.05)
    assert r.a == pytest.approx(b_true, rel=0.05)  # a normalised density: a = b
    assert r.curve.r_squared > 0.98
    # the maximum-likelihood exponential
    assert r.fit("exponential").param("rate") == pytest.approx(b_true, rel=0.03)


def test_lognormal_samples_do_not_pick_exponential():
    rng = np.random.default_rng(10)
    r = fit_coefficient_magnitudes(rng.lognormal(-1.0, 0.6, 20_000))
    assert r.best_family == "log_normal"
    assert r.bic["exponential"] > r.bic["log_normal"] + 100
    ln = r.fit("log_normal")
    assert ln.param("mu") == pytest.approx(-1.0, abs=0.02)
    assert ln.param("sigma") == pytest.approx(0.6, rel=0.03)


def test_power_law_samples_do_not_pick_exponential():
    rng = np.random.default_rng(11)
    # Pareto with density ~ x^-3 above x_m = 0.1
    r = fit_coefficient_magnitudes((rng.pareto(2.0, 20_000) + 1.0) * 0.1)
    assert r.best_family == "power_law"
    assert r.bic["exponential"] > r.bic["power_law"] + 100
    assert r.fit("power_law").param("exponent") == pytest.approx(3.0, rel=0.05)


def test_half_normal_and_gamma_samples_pick_their_family():
    rng = np.random.default_rng(12)
    assert fit_coefficient_magnitudes(np.abs(rng.normal(0, 0.5, 20_000))).best_family == "half_normal"
    g = fit_coefficient_magnitudes(rng.gamma(2.5, 0.2, 20_000))
    assert g.best_family == "gamma"
    assert g.fit("gamma").param("alpha") == pytest.approx(2.5, rel=0.05)


def test_ml_bic_matches_scipy_log_likelihood():
    rng = np.random.default_rng(13)
    x = rng.weibull(0.8, 5000) * 0.3
    r = fit_coefficient_magnitudes(x)
    for fam, logpdf in [
        ("exponential", lambda p: stats.expon.logpdf(x, scale=1 / p[0])),
        ("weibull", lambda p: stats.weibull_min.logpdf(x, p[0], scale=p[1])),
        ("gamma", lambda p: stats.gamma.logpdf(x, p[0], scale=p[1])),
    ]:
        f = r.fit(fam)
        ll = float(np.sum(logpdf(f.params)))
        assert f.log_likelihood == pytest.approx(ll, rel=1e-9)
        assert f.bic == pytest.approx(f.n_params * math.log(x.size) - 2 * ll, rel=1e-9)
    # the Weibull ML solver agrees with scipy's general optimiser
    beta_ref, _, scale_ref = stats.weibull_min.fit(x, floc=0)
    w = r.fit("weibull")
    assert w.param("beta") == pytest.approx(beta_ref, rel=1e-3)
    assert w.param("scale") == pytest.approx(scale_ref, rel=1e-3)
    assert r.best_family == "weibull"


def test_histogram_density_estimates_the_pdf():
    rng = np.random.default_rng(14)
    x = rng.exponential(0.5, 50_000)
    h = fit_coefficient_magnitudes(x, bins=40, upper_quantile=1.0).histogram
    assert np.sum(h.density * h.widths) == pytest.approx(1.0)
    assert h.edges[0] == pytest.approx(x.min()) and h.edges[-1] == pytest.approx(x.max())
    h99 = fit_coefficient_magnitudes(x, bins=40, upper_quantile=0.99).histogram
    assert np.sum(h99.density * h99.widths) == pytest.approx(0.99, abs=1e-3)


# --------------------------------------------------------------------------------------
# Orientations
# --------------------------------------------------------------------------------------


def test_double_von_mises_recovered_and_wins_bic():
    rng = np.random.default_rng(20)
    # cardinal peaks as in natural images: horizontal (x = 0, across the wrap) and vertical
    theta = np.concatenate(
        [axial_von_mises(rng, 12_000, 4.0, 0.0), axial_von_mises(rng, 8_000, 2.0, 0.5)]
    )
    r = fit_orientations(theta, bins=72)
    assert r.best_model == "double_von_mises"
    assert r.bic["double_von_mises"] < r.bic["von_mises"] < r.bic["uniform"]
    (c1, c2) = r.components  # largest amplitude first: the kappa = 4 term
    assert circ_err_deg(c1.phi, 0.0) < 3.0
    assert circ_err_deg(c2.phi, 0.5) < 3.0
    assert c1.kappa == pytest.approx(4.0, rel=0.2)
    assert c2.kappa == pytest.approx(2.0, rel=0.2)
    assert r.kappas == (c1.kappa, c2.kappa) and r.mus == (c1.phi, c2.phi)
    assert all(0.0 <= m < 1.0 for m in r.mus)
    assert c1.mu_degrees == pytest.approx(c1.phi * 180.0)
    # amplitudes of a density: peak heights of each term, A = w e^kappa / I0(kappa)
    assert c1.amplitude == pytest.approx(0.6 * math.exp(4.0) / np.i0(4.0), rel=0.1)
    assert c2.amplitude == pytest.approx(0.4 * math.exp(2.0) / np.i0(2.0), rel=0.1)


def test_double_von_mises_oblique_peaks_and_coarse_bins():
    rng = np.random.default_rng(21)
    theta = np.concatenate(
        [axial_von_mises(rng, 10_000, 6.0, 0.2), axial_von_mises(rng, 10_000, 3.0, 0.65)]
    )
    r = fit_orientations(theta, bins=36)
    assert r.best_model == "double_von_mises"
    got = sorted(zip(r.mus, r.kappas))
    assert circ_err_deg(got[0][0], 0.2) < 3.0 and circ_err_deg(got[1][0], 0.65) < 3.0
    assert got[0][1] == pytest.approx(6.0, rel=0.2)
    assert got[1][1] == pytest.approx(3.0, rel=0.2)


@pytest.mark.parametrize("seed", [30, 31])
def test_uniform_samples_give_a_flat_model(seed):
    rng = np.random.default_rng(seed)
    r = fit_orientations(rng.uniform(0.0, np.pi, 20_000), bins=36)
    # the uniform wins, or whatever wins is flat within 10 %
    best = r.fit(r.best_model)
    xs = np.linspace(0, 1, 200)
    assert r.best_model == "uniform" or np.max(np.abs(best.evaluate(xs) - 1.0)) < 0.1
    assert r.fit("uniform").param("c") == pytest.approx(1.0, abs=0.01)


def test_single_von_mises_beats_uniform_and_second_term_is_negligible():
    rng = np.random.default_rng(40)
    r = fit_orientations(axial_von_mises(rng, 20_000, 3.0, 0.3), bins=36)
    assert r.best_model in ("von_mises", "double_von_mises")
    assert r.bic["von_mises"] < r.bic["uniform"] - 100
    if r.best_model == "double_von_mises":
        assert r.amplitudes[1] < 0.1 * r.amplitudes[0]
    assert circ_err_deg(r.single.phi, 0.3) < 3.0
    assert r.single.kappa == pytest.approx(3.0, rel=0.2)
    assert r.single.mu_radians == pytest.approx(r.single.phi * np.pi)


def test_orientation_histogram_is_normalised_and_centred_on_orientations():
    theta = np.repeat(np.linspace(0, np.pi, 12, endpoint=False), 10)
    theta = theta + np.pi * np.repeat([0, 1, -1, 2, 0, 0, 0, 0, 0, 0], 12)  # axial folding
    r = fit_orientations(theta, bins=12)
    h = r.histogram
    assert np.allclose(h.density, 1.0)
    assert np.sum(h.density * h.widths) == pytest.approx(1.0)
    assert np.allclose(h.centers, np.arange(12) / 12)
    assert r.best_model == "uniform"


def test_magnitude_weights_change_the_histogram():
    theta = np.array([0.0, 0.0, np.pi / 2] * 50)
    w = np.array([1.0, 1.0, 6.0] * 50)
    counts = fit_orientations(theta, bins=8).histogram.density
    weighted = fit_orientations(theta, w, bins=8).histogram.density
    assert counts[0] == pytest.approx(2 * counts[4])
    assert weighted[4] == pytest.approx(3 * weighted[0])


# --------------------------------------------------------------------------------------
# Codes-based wrappers
# --------------------------------------------------------------------------------------


def _random_codes(rng, b=2, k=12, h=24, w=24, density=0.15):
    # orientation-dependent activity so the orientation fits have something to find
    theta = np.linspace(0, np.pi, k, endpoint=False)
    p = density * (0.3 + np.cos(theta) ** 2)
    mask = rng.random((b, k, h, w)) < p[None, :, None, None]
    vals = rng.exponential(0.2, (b, k, h, w)) * rng.choice([-1.0, 1.0], (b, k, h, w))
    return np.where(mask, vals, 0.0), theta


def _same_magnitude_stats(r1, r2):
    assert r1.best_family == r2.best_family and r1.n_nonzero == r2.n_nonzero
    assert (r1.a, r1.b) == (r2.a, r2.b)
    assert [f.params for f in r1.fits] == [f.params for f in r2.fits]
    assert r1.bic == r2.bic
    assert np.array_equal(r1.histogram.density, r2.histogram.density)


def _same_orientation_stats(r1, r2):
    assert r1.best_model == r2.best_model
    assert r1.components == r2.components and r1.single == r2.single
    assert r1.bic == r2.bic
    assert np.array_equal(r1.histogram.density, r2.histogram.density)


def test_codes_wrappers_match_sample_fits_on_hand_extracted_samples():
    rng = np.random.default_rng(50)
    codes, theta = _random_codes(rng)
    per_image_mag = batch_coefficient_statistics(codes)
    per_image_ori = batch_orientation_statistics(codes, theta)
    per_image_ori_w = batch_orientation_statistics(codes, theta, weighting="magnitude")
    assert len(per_image_mag) == len(per_image_ori) == codes.shape[0]
    for i, c in enumerate(codes):
        nz = c != 0
        mags = np.abs(c[nz])
        thetas = np.broadcast_to(theta[:, None, None], c.shape)[nz]
        ref_mag = fit_coefficient_magnitudes(mags)
        _same_magnitude_stats(coefficient_statistics(c), ref_mag)
        _same_magnitude_stats(per_image_mag[i], ref_mag)
        # 12 evenly spaced orientations: one bin per orientation by default
        ref_ori = fit_orientations(thetas, bins=12)
        _same_orientation_stats(orientation_statistics(c, theta), ref_ori)
        _same_orientation_stats(per_image_ori[i], ref_ori)
        ref_w = fit_orientations(thetas, mags, bins=12)
        _same_orientation_stats(per_image_ori_w[i], ref_w)
        s, w = coefficient_orientations(c, theta, weighting="magnitude")
        assert np.allclose(np.sort(s), np.sort(thetas)) and w.sum() == pytest.approx(mags.sum())


def test_codes_wrappers_accept_torch_tensors():
    rng = np.random.default_rng(51)
    codes, theta = _random_codes(rng, b=1)
    t = torch.from_numpy(codes[0]).float()
    ref = coefficient_statistics(t.double().numpy())
    _same_magnitude_stats(coefficient_statistics(t), ref)
    _same_orientation_stats(
        orientation_statistics(t, torch.from_numpy(theta)),
        orientation_statistics(t.double().numpy(), theta),
    )


def test_default_orientation_bins_follow_a_regular_dictionary():
    rng = np.random.default_rng(52)
    theta72 = np.linspace(0, np.pi, 72, endpoint=False)
    codes = (rng.random((72, 8, 8)) < 0.3) * rng.exponential(1.0, (72, 8, 8))
    r = orientation_statistics(codes, theta72)
    assert r.histogram.centers.size == 72
    # every kernel's orientation sits in its own bin: no bin collects two orientations
    counts_per_kernel = (codes != 0).reshape(72, -1).sum(1)
    assert np.allclose(r.histogram.density, counts_per_kernel / counts_per_kernel.mean())
    # irregular orientations fall back to 36 bins
    irregular = np.sort(rng.uniform(0, np.pi, 72))
    assert orientation_statistics(codes, irregular).histogram.centers.size == 36


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------


def test_bad_magnitude_input_names_the_argument():
    with pytest.raises(ValueError, match="values"):
        fit_coefficient_magnitudes(np.array([]))
    with pytest.raises(ValueError, match="values"):
        fit_coefficient_magnitudes(np.zeros(100))
    with pytest.raises(ValueError, match="values.*NaN"):
        fit_coefficient_magnitudes(np.array([1.0, np.nan, 2.0]))
    with pytest.raises(ValueError, match="values"):
        fit_coefficient_magnitudes(np.full(10, 0.5))
    with pytest.raises(TypeError, match="values"):
        fit_coefficient_magnitudes(["a", "b"])
    x = np.random.default_rng(0).exponential(1.0, 100)
    with pytest.raises(ValueError, match="families"):
        fit_coefficient_magnitudes(x, families=("cauchy",))
    with pytest.raises(ValueError, match="families"):
        fit_coefficient_magnitudes(x, families=())
    with pytest.raises(ValueError, match="upper_quantile"):
        fit_coefficient_magnitudes(x, upper_quantile=0.0)
    with pytest.raises(ValueError, match="bins"):
        fit_coefficient_magnitudes(x, bins=2)
    with pytest.raises(TypeError, match="bins"):
        fit_coefficient_magnitudes(x, bins=10.5)


def test_bad_codes_and_theta_name_the_argument():
    rng = np.random.default_rng(1)
    codes, theta = _random_codes(rng, b=2, k=12)
    with pytest.raises(ValueError, match="codes.*K, H, W"):
        coefficient_statistics(codes)  # 4-D given to the single-image function
    with pytest.raises(ValueError, match="codes.*B, K, H, W"):
        batch_coefficient_statistics(codes[0])
    with pytest.raises(ValueError, match="codes.*NaN"):
        bad = codes[0].copy()
        bad[0, 0, 0] = np.nan
        coefficient_statistics(bad)
    with pytest.raises(ValueError, match="theta.*K = 12.*11"):
        orientation_statistics(codes[0], theta[:11])
    with pytest.raises(ValueError, match="theta.*K = 12"):
        batch_orientation_statistics(codes, theta[:11])
    with pytest.raises(ValueError, match="theta.*1-D"):
        orientation_statistics(codes[0], theta[:, None])
    with pytest.raises(ValueError, match="theta.*NaN"):
        orientation_statistics(codes[0], np.where(np.arange(12) == 3, np.nan, theta))
    with pytest.raises(ValueError, match="codes.*nonzero"):
        orientation_statistics(np.zeros((12, 4, 4)), theta)
    with pytest.raises(ValueError, match="weighting"):
        orientation_statistics(codes[0], theta, weighting="energy")


def test_bad_orientation_samples_name_the_argument():
    with pytest.raises(ValueError, match="theta.*empty"):
        fit_orientations(np.array([]))
    with pytest.raises(ValueError, match="theta.*1-D"):
        fit_orientations(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="theta.*NaN"):
        fit_orientations(np.array([0.1, np.nan]))
    with pytest.raises(ValueError, match="weights.*shape"):
        fit_orientations(np.array([0.1, 0.2]), np.array([1.0]))
    with pytest.raises(ValueError, match="weights.*non-negative"):
        fit_orientations(np.array([0.1, 0.2]), np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="weights.*positive"):
        fit_orientations(np.array([0.1, 0.2]), np.array([0.0, 0.0]))
    with pytest.raises(ValueError, match="bins"):
        fit_orientations(np.array([0.1, 0.2]), bins=4)


# --------------------------------------------------------------------------------------
# Small pieces and plots
# --------------------------------------------------------------------------------------


def test_bic_from_rss_formula():
    assert bic_from_rss(2.0, 10, 3) == pytest.approx(10 * math.log(0.2) + 3 * math.log(10))
    assert math.isfinite(bic_from_rss(0.0, 10, 3))


def test_plots_draw_on_the_given_axes():
    rng = np.random.default_rng(60)
    mag = fit_coefficient_magnitudes(rng.exponential(0.3, 3000))
    ori = fit_orientations(
        np.concatenate([axial_von_mises(rng, 2000, 4.0, 0.0), axial_von_mises(rng, 1000, 2.0, 0.5)]),
        bins=36,
    )
    fig, axes = plt.subplots(1, 4)
    try:
        assert plot_coefficient_statistics(axes[0], mag) is axes[0]
        assert len(axes[0].lines) == 1 + 1  # the paper's curve + the best ML density
        plot_coefficient_statistics(axes[1], mag, families=MAGNITUDE_FAMILIES, logy=True)
        assert len(axes[1].lines) == 1 + len(MAGNITUDE_FAMILIES)
        assert plot_orientation_statistics(axes[2], ori, models=ORIENTATION_MODELS) is axes[2]
        assert len(axes[2].lines) == 3
        assert plot_bic(axes[3], [mag, mag]) is axes[3]
        assert [t.get_text() for t in axes[3].get_xticklabels()] == list(MAGNITUDE_FAMILIES)
    finally:
        plt.close(fig)


def test_package_reexports_its_modules_names():
    """``csc.science.analysis`` is a package of one module per section; every public name
    stays importable from the package and is the defining module's object."""
    import importlib

    import csc.science.analysis as analysis

    modules = ("curves", "records", "inputs", "fitting", "magnitudes", "orientations", "plots")
    owners = {}
    for m in modules:
        mod = importlib.import_module(f"csc.science.analysis.{m}")
        for name in analysis.__all__:
            if name in vars(mod) and getattr(getattr(mod, name), "__module__", mod.__name__) == mod.__name__:
                owners.setdefault(name, mod)
    assert sorted(owners) == sorted(analysis.__all__)
    for name, mod in owners.items():
        assert getattr(analysis, name) is getattr(mod, name)

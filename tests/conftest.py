"""Shared fixtures: SPORCO reference solves and small natural test images."""

from __future__ import annotations

import numpy as np
import pytest

from csc.pipeline.preprocess import TIKHONOV_LMBDA, TIKHONOV_NPD

try:  # SPORCO is the reference implementation (dev extra)
    from sporco import signal as sp_signal
    from sporco import util as sp_util
    from sporco import fft as sp_fft
    from sporco.admm import cbpdn as sp_cbpdn

    # FFTW_MEASURE (SPORCO's default) spends seconds planning each new odd size; the
    # estimate plan computes the same DFT, so the references are unchanged.
    sp_fft.pyfftw_planner_effort = "FFTW_ESTIMATE"
    HAVE_SPORCO = True
except ImportError:  # pragma: no cover
    HAVE_SPORCO = False

needs_sporco = pytest.mark.skipif(not HAVE_SPORCO, reason="sporco is not installed")


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_compiled(device): runs the compiled (torch.compile) back end on "
                                       "device; skipped with inductor's reason where it cannot build kernels there")


def pytest_runtest_setup(item):
    """Skip the cases marked ``needs_compiled(device)`` where the compiled back end cannot run
    (tests/backends_params.py); probed here, when such a case runs, not at collection (the
    probe compiles a kernel)."""
    for mark in item.iter_markers("needs_compiled"):
        from .backends_params import compiled_unavailable

        why = compiled_unavailable(*mark.args)
        if why is not None:
            pytest.skip(why)


def sporco_image(name: str = "barbara.png") -> np.ndarray:
    """A SPORCO example image, grayscale, scaled to [0, 1], float64."""
    return sp_util.ExampleImages(scaled=True, gray=True).image(name).astype(np.float64)


def central_crop(img: np.ndarray, h: int, w: int, dy: int = 0, dx: int = 0) -> np.ndarray:
    r0 = (img.shape[0] - h) // 2 + dy
    c0 = (img.shape[1] - w) // 2 + dx
    return img[r0:r0 + h, c0:c0 + w]


def highpass(img: np.ndarray) -> np.ndarray:
    """High-pass part of SPORCO's Tikhonov filter (λ = 5, 16 pad), as in SPEC §1.

    SPORCO's own filter (the reference), with the parameters of csc's
    ``Preprocess("highpass")``; test_preprocess checks that the two agree.
    """
    return sp_signal.tikhonov_filter(img, TIKHONOV_LMBDA, TIKHONOV_NPD)[1]


def random_dictionary(kh: int, kw: int, K: int, seed: int = 12345) -> np.ndarray:
    """SPORCO-layout (kh, kw, K) Gaussian dictionary with unit-norm kernels."""
    rng = np.random.RandomState(seed)
    D = rng.randn(kh, kw, K)
    return D / np.sqrt(np.sum(D ** 2, axis=(0, 1), keepdims=True))


def sporco_cbpdn(D: np.ndarray, s: np.ndarray, lmbda: float, opt: dict):
    """Run SPORCO's ConvBPDN on one image; returns (y in SPORCO layout, itstat, solver)."""
    full = {"Verbose": False}
    full.update(opt)
    solver = sp_cbpdn.ConvBPDN(D, s, lmbda, sp_cbpdn.ConvBPDN.Options(full))
    y = solver.solve()
    return y, solver.getitstat(), solver


@pytest.fixture(scope="session")
def reference_problem():
    """SPEC §1 reference run: barbara 128×128 highpass, 144 random 12×12 kernels."""
    if not HAVE_SPORCO:
        pytest.skip("sporco is not installed")
    s = highpass(central_crop(sporco_image("barbara.png"), 128, 128))
    np.random.seed(12345)
    D = np.random.randn(12, 12, 144)
    D /= np.sqrt(np.sum(D ** 2, axis=(0, 1), keepdims=True))
    return D, s

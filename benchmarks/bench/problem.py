"""The benchmark problem: images, dictionaries, SPORCO's option dict and the coding problems compared.

Single-image mode codes the highpass part of a central crop of SPORCO's bundled barbara
(:func:`single_image`; ``sporco.signal.tikhonov_filter(img, 5.0, 16)``) with a seeded
random unit-norm dictionary (:func:`random_dictionary`); batch mode, ``n`` seeded crops
(:func:`batch_images`); the colour problems, kodim23 (:func:`colour_image`,
:func:`random_colour_dictionary`). :func:`sporco_options` is the one option dict both
libraries are given. :data:`PROBLEMS` names each ``--problem``'s SPORCO class, csc class and
csc options class; :func:`problem_of` and :func:`problem_data` read them from the parsed
options. The image loaders import SPORCO (its bundled images and Tikhonov filter) when called.
"""

from __future__ import annotations

import numpy as np

from csc.cli.bench_args import SPORCO_MISSING, have_sporco

__all__ = [
    "BARBARA", "COLOUR_IMAGE", "COLOUR_PROBLEMS", "PLANNER_EFFORT", "PROBLEMS", "TIKHONOV_LMBDA", "TIKHONOV_NPD",
    "batch_images", "bench_mask", "central_crop", "colour_image", "crop_offsets", "highpass", "is_colour",
    "load_barbara", "problem_data", "problem_of", "random_colour_dictionary", "random_dictionary",
    "require_sporco", "single_image", "sporco_image_crop", "sporco_options",
]

BARBARA = "barbara.png"
TIKHONOV_LMBDA = 5.0
TIKHONOV_NPD = 16
PLANNER_EFFORT = "FFTW_MEASURE"  # SPORCO's default (sporco.fft.pyfftw_planner_effort)


def load_barbara() -> np.ndarray:
    """SPORCO's bundled barbara, grayscale, scaled to [0, 1], float64."""
    from sporco import util as sp_util

    return sp_util.ExampleImages(scaled=True, gray=True).image(BARBARA).astype(np.float64)


def highpass(img: np.ndarray) -> np.ndarray:
    """Highpass part of SPORCO's Tikhonov filter (λ = 5, 16 pixels of padding)."""
    from sporco import signal as sp_signal

    return sp_signal.tikhonov_filter(img, TIKHONOV_LMBDA, TIKHONOV_NPD)[1]


def central_crop(img: np.ndarray, size: int) -> np.ndarray:
    H, W = img.shape
    if size > min(H, W):
        raise ValueError(f"--size {size}: barbara is only {H}×{W}")
    r0, c0 = (H - size) // 2, (W - size) // 2
    return img[r0:r0 + size, c0:c0 + size]


def single_image(size: int) -> np.ndarray:
    """The single-image problem: central size² crop of barbara, then its highpass part."""
    return highpass(central_crop(load_barbara(), size))


COLOUR_IMAGE = "kodim23.png"


def colour_image(size: int) -> np.ndarray:
    """The colour problem, SPORCO layout (size, size, 3): central size² crop of SPORCO's
    kodim23 (colour, [0, 1]), each channel highpass-filtered on its own."""
    from sporco import util as sp_util

    img = sp_util.ExampleImages(scaled=True, gray=False).image(COLOUR_IMAGE).astype(np.float64)
    H, W = img.shape[:2]
    if size > min(H, W):
        raise ValueError(f"--size {size}: {COLOUR_IMAGE} is only {H}×{W}")
    r0, c0 = (H - size) // 2, (W - size) // 2
    crop = img[r0:r0 + size, c0:c0 + size]
    return np.stack([highpass(np.ascontiguousarray(crop[..., c])) for c in range(3)], -1)


def random_colour_dictionary(ksize: int, K: int, seed: int, channels: int = 3) -> np.ndarray:
    """SPORCO-layout (ksize, ksize, C, K) Gaussian multi-channel dictionary, unit ℓ2 norm per
    kernel over its channels."""
    D = np.random.RandomState(seed).randn(ksize, ksize, channels, K)
    return D / np.sqrt(np.sum(D ** 2, axis=(0, 1, 2), keepdims=True))


def crop_offsets(shape: tuple[int, int], crop: int, n: int, seed: int) -> list[tuple[int, int]]:
    """n distinct top-left corners of crop² windows, drawn with a seeded generator."""
    H, W = shape
    if crop > min(H, W):
        raise ValueError(f"--crop {crop}: barbara is only {H}×{W}")
    avail = (H - crop + 1) * (W - crop + 1)
    if n > avail:
        raise ValueError(f"--batch {n}: only {avail} distinct {crop}² crops exist")
    rng = np.random.default_rng(seed)
    seen: set[tuple[int, int]] = set()
    out = []
    while len(out) < n:
        rc = (int(rng.integers(0, H - crop + 1)), int(rng.integers(0, W - crop + 1)))
        if rc not in seen:
            seen.add(rc)
            out.append(rc)
    return out


def batch_images(crop: int, n: int, seed: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """(n, crop, crop): n different crops of barbara, each highpass-filtered on its own."""
    img = load_barbara()
    offs = crop_offsets(img.shape, crop, n, seed)
    return np.stack([highpass(img[r:r + crop, c:c + crop]) for r, c in offs]), offs


def random_dictionary(ksize: int, K: int, seed: int) -> np.ndarray:
    """SPORCO-layout (ksize, ksize, K) Gaussian dictionary, unit ℓ2 norm per kernel.

    ``RandomState(seed).randn`` draws the same numbers as ``np.random.seed(12345);
    randn(12, 12, 144)``, the dictionary of the reference SPORCO 0.2.2 run (barbara,
    central 128² highpass crop, λ = 0.05, 50 iterations of ``admm.cbpdn.ConvBPDN``).
    """
    D = np.random.RandomState(seed).randn(ksize, ksize, K)
    return D / np.sqrt(np.sum(D ** 2, axis=(0, 1), keepdims=True))


def sporco_options(iters: int, dtype: str) -> dict:
    """One SPORCO option dict, given to SPORCO as is and to csc through from_sporco."""
    return {
        "MaxMainIter": int(iters),
        "RelStopTol": 0.0,  # with AbsStopTol 0: never converged, exactly MaxMainIter iterations
        "AbsStopTol": 0.0,
        "FastSolve": True,  # no iteration statistics (csc: record_stats=False)
        "Verbose": False,
        "DataType": np.dtype(dtype).type,
        "AutoRho": {"Enabled": True},  # SPORCO's default, stated
    }


def require_sporco() -> None:
    """Raise RuntimeError with the install command when SPORCO is absent."""
    if not have_sporco():
        raise RuntimeError(SPORCO_MISSING)


#: ``--problem`` → (SPORCO class, csc class, csc options class) names: the coding problems
#: compared (``problem`` arguments below: None or ``{"name": …, "mu": μ}``; ``mu`` is
#: SPORCO's argument of the same name, GradWeight its default 1)
PROBLEMS = {
    "cbpdn": ("ConvBPDN", "ConvBPDN", "CBPDNOptions"),
    "elastic-net": ("ConvElasticNet", "ConvElasticNet", "CBPDNOptions"),
    "grad-reg": ("ConvBPDNGradReg", "ConvBPDNGradReg", "GradRegOptions"),
    "l1l1-grd": ("ConvL1L1Grd", "ConvL1L1Grd", "L1L1GrdOptions"),
    "mask-dcpl": ("ConvBPDNMaskDcpl", "ConvBPDNMaskDcpl", "MaskDcplOptions"),  # with bench_mask's W
    "colour": ("ConvBPDN", "ConvBPDN", "CBPDNOptions"),  # multi-channel dictionary, colour image
    "joint": ("ConvBPDNJoint", "ConvBPDNJoint", "CBPDNJointOptions"),  # ℓ1 + μℓ2,1, colour image
}
#: problems on a colour image (SPORCO: ``dimK=0``, channels on axis 2)
COLOUR_PROBLEMS = ("colour", "joint")


def is_colour(problem: dict | None) -> bool:
    return problem is not None and problem["name"] in COLOUR_PROBLEMS


def problem_data(args) -> tuple[np.ndarray, np.ndarray]:
    """(SPORCO-layout dictionary, single image) of the parsed problem: barbara and
    (ksize, ksize, K) kernels; for ``colour`` kodim23 (H, W, 3) and (ksize, ksize, 3, K)
    kernels, for ``joint`` kodim23 and single-channel kernels."""
    name = getattr(args, "problem", "cbpdn")
    if name == "colour":
        return random_colour_dictionary(args.ksize, args.kernels, args.seed), colour_image(args.size)
    s = colour_image(args.size) if name == "joint" else single_image(args.size)
    return random_dictionary(args.ksize, args.kernels, args.seed), s


def problem_of(args) -> dict | None:
    """The ``problem`` argument for the parsed ``--problem`` and ``--mu`` (None: CBPDN)."""
    name = getattr(args, "problem", "cbpdn")
    return None if name == "cbpdn" else {"name": name, "mu": float(args.mu)}


def bench_mask(shape) -> np.ndarray:
    """The mask W of ``--problem mask-dcpl``: 0/1 per pixel of an (H, W) image, 30% missing
    (fixed seed), the same for SPORCO and csc."""
    return (np.random.RandomState(0).rand(*shape) >= 0.3).astype(np.float64)


def sporco_image_crop(size: int) -> np.ndarray:
    """The highpass of barbara's central size² crop, float64 (the single-image mode's image)."""
    from sporco import signal, util

    img = util.ExampleImages().image(BARBARA, scaled=True, gray=True)
    h0, w0 = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
    _, sh = signal.tikhonov_filter(img[h0:h0 + size, w0:w0 + size], TIKHONOV_LMBDA, TIKHONOV_NPD)
    return np.ascontiguousarray(sh, dtype=np.float64)

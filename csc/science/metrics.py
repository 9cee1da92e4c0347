r"""Reconstruction and image statistics.

The measures of §2.2–2.3 of the paper (Ladret, Casanova & Perrinet, "Kernel heterogeneity
improves sparseness of natural images representations") and SPORCO's PSNR.

All functions accept torch tensors or numpy arrays, work on batches and keep
the input's device.  Results are float64 tensors.

PSNR, SPORCO's form (``sporco.metric.psnr``; used by the paper's figures)

.. math:: \mathrm{PSNR} = 10\log_{10}\frac{r^2}{\mathrm{MSE}},\qquad
          r = \max I_1 - \min I_1

PSNR, the paper's eq. 6

.. math:: \mathrm{PSNR} = 20\log_{10}\max I_1 - 10\log_{10}\mathrm{MSE}

with :math:`\mathrm{MSE} = \frac{1}{mn}\sum (I_1 - I_2)^2` per image
(:math:`I_1` the reference).

Sparseness: the fraction of coefficients exactly equal to zero over
:math:`K\times H\times W`, per image (0 = all active, 1 = none active).

Orientation histogram (the paper's §2.3, eqs. 7–8): Sobel gradients
:math:`G_h = \partial I/\partial\text{row}` and
:math:`G_v = \partial I/\partial\text{column}` (scikit-image's ``sobel_h`` and
``sobel_v``: derivative ``[-1, 0, 1]`` times smoothing ``[1, 2, 1]/4``, edges
replicated), :math:`\theta = \operatorname{atan2}(G_v, G_h)` folded into
:math:`[0,\pi)`, counted in ``bins`` equal bins over :math:`[0,\pi)`.  The
angle is measured from the row axis towards the column axis, the same
convention as the log-Gabor θ₀ of :mod:`csc.dictionary.loggabor`.  Eq. 8 counts pixels
with an indicator, :math:`H(b) = \sum_{x,y} I_b(\theta(x,y))`, so the default
is *unweighted*; ``weighted=True`` weights each pixel by :math:`G_m`.  Pixels
with an exactly zero gradient have no orientation and are not counted.

Circular variance of axial data (orientations defined modulo π)

.. math:: \mathrm{Var}_{circ} = 1 - \sqrt{\bar C^2 + \bar S^2},\quad
          \bar C = \langle\cos 2\theta\rangle,\ \bar S = \langle\sin 2\theta\rangle

between 0 (all orientations equal) and 1 (uniform).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from csc.core.checks import check_bool, as_float_tensor, check_finite, check_ndim, check_not_channels_last


def broadcast_checked(name: str, t: torch.Tensor, shape, expected: str) -> torch.Tensor:
    """``t`` broadcast to ``shape``, or ValueError "``name``: expected ``expected``, got <t's shape>"."""
    try:
        return torch.broadcast_to(t, shape)
    except RuntimeError as exc:
        raise ValueError(f"{name}: expected {expected}, got {tuple(t.shape)}") from exc

__all__ = [
    "mse",
    "psnr",
    "psnr_paper",
    "sparseness",
    "gradient_orientations",
    "orientation_histogram",
    "orientation_bin_centers",
    "circular_variance",
]


def _image_pair(reference, test) -> tuple[torch.Tensor, torch.Tensor]:
    ref = as_float_tensor("reference", reference)
    tst = as_float_tensor("test", test)
    check_ndim("reference", ref, range(2, 9), "(..., H, W)")
    check_not_channels_last("reference", ref, "(..., H, W)")
    if ref.shape != tst.shape:
        raise ValueError(
            f"reference, test: expected the same shape, got {tuple(ref.shape)} and {tuple(tst.shape)}"
        )
    if ref.numel() == 0:
        raise ValueError(f"reference: expected at least one pixel, got shape {tuple(ref.shape)}")
    check_finite("reference", ref)
    check_finite("test", tst)
    if tst.device != ref.device:
        raise ValueError(f"reference, test: expected the same device, got {ref.device} and {tst.device}")
    return ref.to(torch.float64), tst.to(torch.float64)


def mse(reference, test) -> torch.Tensor:
    """Mean squared error over the last two (H, W) dimensions.

    Parameters
    ----------
    reference, test : tensor or ndarray, shape (..., H, W)

    Returns
    -------
    torch.Tensor, float64, shape (...)
    """
    ref, tst = _image_pair(reference, test)
    return ((ref - tst) ** 2).mean(dim=(-2, -1))


def psnr(reference, test, data_range=None) -> torch.Tensor:
    r"""PSNR as ``sporco.metric.psnr``: :math:`10\log_{10}(r^2/\mathrm{MSE})`.

    Parameters
    ----------
    reference : tensor or ndarray, shape (H, W) or (..., H, W)
        Reference images; each (H, W) slice is one image.
    test : tensor or ndarray, same shape
        Images to compare.
    data_range : float or tensor of shape (...), optional
        Signal range r.  Default: ``max - min`` of each reference image (as
        SPORCO, per image for a batch).

    Returns
    -------
    torch.Tensor, float64, shape (...)
        ``inf`` where the images are identical (MSE 0), as SPORCO.

        A constant reference image without ``data_range`` has range max − min = 0 and no
        defined PSNR: −inf, or NaN when the test image is the same constant, as SPORCO's
        (which says so with numpy's RuntimeWarning); csc warns with a ``UserWarning`` naming
        ``data_range``, the argument that makes it defined.
    """
    ref, tst = _image_pair(reference, test)
    err = ((ref - tst) ** 2).mean(dim=(-2, -1))
    if data_range is None:
        rng = ref.amax(dim=(-2, -1)) - ref.amin(dim=(-2, -1))
        if bool((rng == 0).any()):
            warnings.warn(f"psnr: {int((rng == 0).sum())} reference image(s) are constant (max - min = 0), so "
                          "their PSNR is undefined (-inf, or NaN where identical, as SPORCO's); pass data_range= "
                          "(e.g. 1.0 for images in [0, 1])", UserWarning, stacklevel=2)
    else:
        rng = torch.as_tensor(data_range, dtype=torch.float64, device=ref.device)
        if not bool(torch.isfinite(rng).all()) or bool((rng <= 0).any()):
            raise ValueError(f"data_range: expected finite values > 0, got {data_range!r}")
        rng = broadcast_checked("data_range", rng, err.shape, f"a scalar or shape {tuple(err.shape)}")
    return 10.0 * torch.log10(rng.abs() ** 2 / err)


def psnr_paper(reference, test) -> torch.Tensor:
    r"""PSNR of the paper's eq. 6: :math:`20\log_{10}\max I_1 - 10\log_{10}\mathrm{MSE}`.

    Parameters
    ----------
    reference : tensor or ndarray, shape (H, W) or (..., H, W)
        Source images :math:`I_1`; their maximum must be > 0.
    test : tensor or ndarray, same shape
        Reconstructions :math:`I_2`.

    Returns
    -------
    torch.Tensor, float64, shape (...)
    """
    ref, tst = _image_pair(reference, test)
    peak = ref.amax(dim=(-2, -1))
    if bool((peak <= 0).any()):
        raise ValueError(
            "reference: eq. 6 needs max(reference) > 0 for every image "
            f"(found {int((peak <= 0).sum())} image(s) with max <= 0); use psnr() for zero-mean images"
        )
    err = ((ref - tst) ** 2).mean(dim=(-2, -1))
    return 20.0 * torch.log10(peak) - 10.0 * torch.log10(err)


def sparseness(codes) -> torch.Tensor:
    """Fraction of coefficients exactly equal to zero, per image.

    Parameters
    ----------
    codes : tensor or ndarray, shape (B, K, H, W) or (K, H, W)
        Coefficient maps (dense, or a torch sparse COO tensor).

    Returns
    -------
    torch.Tensor, float64, shape (B,) or ()
        0 = every coefficient active, 1 = none active.
    """
    if isinstance(codes, torch.Tensor) and codes.layout == torch.sparse_coo:
        check_ndim("codes", codes, (3, 4), "(B, K, H, W) or (K, H, W)")
        c = codes.coalesce()
        vals = c.values()
        if vals.is_complex() or not (vals.is_floating_point() or vals.dtype in (torch.int32, torch.int64)):
            raise TypeError(f"codes: expected real values, got {vals.dtype}")
        check_finite("codes", vals.to(torch.float64))
        nz = vals != 0
        per = int(np.prod(codes.shape[-3:]))
        if codes.ndim == 3:
            return torch.tensor(1.0 - float(nz.sum()) / per, dtype=torch.float64, device=codes.device)
        counts = torch.zeros(codes.shape[0], dtype=torch.float64, device=codes.device)
        counts.index_add_(0, c.indices()[0], nz.to(torch.float64))
        return 1.0 - counts / per
    t = codes if isinstance(codes, torch.Tensor) else torch.as_tensor(np.asarray(codes))
    if t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"codes: expected a real numeric tensor, got {t.dtype}")
    check_ndim("codes", t, (3, 4), "(B, K, H, W) or (K, H, W)")
    if t.is_floating_point():
        check_finite("codes", t)
    zero = (t == 0).to(torch.float64)
    return zero.mean(dim=(-3, -2, -1))


# ----------------------------------------------------------------------------
# orientations
# ----------------------------------------------------------------------------


def _sobel(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(G_h, G_v) of (N, H, W) images: derivatives along rows and columns."""
    smooth = torch.tensor([1.0, 2.0, 1.0], dtype=images.dtype, device=images.device) / 4.0
    deriv = torch.tensor([-1.0, 0.0, 1.0], dtype=images.dtype, device=images.device)
    k_h = (deriv[:, None] * smooth[None, :])[None, None]  # d/drow
    k_v = (smooth[:, None] * deriv[None, :])[None, None]  # d/dcol
    x = F.pad(images[:, None], (1, 1, 1, 1), mode="replicate")
    # conv2d is a correlation: out[i] = I[i+1] - I[i-1] with these kernels
    g_h = F.conv2d(x, k_h)[:, 0]
    g_v = F.conv2d(x, k_v)[:, 0]
    return g_h, g_v


def _images(name: str, image) -> torch.Tensor:
    t = as_float_tensor(name, image)
    check_ndim(name, t, range(2, 9), "(H, W) or (..., H, W)")
    check_not_channels_last(name, t, "(H, W) or (..., H, W)")
    check_finite(name, t)
    if t.shape[-1] < 2 or t.shape[-2] < 2:
        raise ValueError(f"{name}: expected images of at least 2 x 2 pixels, got shape {tuple(t.shape)}")
    return t.to(torch.float64)


def gradient_orientations(image) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel gradient orientation in [0, π) and magnitude of every pixel (eq. 7).

    Parameters
    ----------
    image : tensor or ndarray, shape (H, W) or (..., H, W)

    Returns
    -------
    theta : torch.Tensor, float64, same shape
        atan2(G_v, G_h) folded into [0, π) (module docstring for the axes).
    magnitude : torch.Tensor, float64, same shape
        G_m = sqrt(G_h² + G_v²).
    """
    t = _images("image", image)
    lead = t.shape[:-2]
    g_h, g_v = _sobel(t.reshape(-1, *t.shape[-2:]))
    theta = torch.remainder(torch.atan2(g_v, g_h), math.pi)
    theta = torch.where(theta >= math.pi, torch.zeros_like(theta), theta)
    mag = torch.sqrt(g_h**2 + g_v**2)
    return theta.reshape(*lead, *t.shape[-2:]), mag.reshape(*lead, *t.shape[-2:])


def orientation_bin_centers(bins: int = 18) -> torch.Tensor:
    """Centres of ``bins`` equal orientation bins over [0, π) (radians, float64)."""
    bins = _check_bins(bins)
    return (torch.arange(bins, dtype=torch.float64) + 0.5) * (math.pi / bins)


def _check_bins(bins) -> int:
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins: expected a positive integer, got {bins!r}")
    return int(bins)


def orientation_histogram(image, bins: int = 18, weighted: bool = False, density: bool = False) -> torch.Tensor:
    """Histogram of Sobel gradient orientations over [0, π) (paper §2.3, eq. 8).

    Parameters
    ----------
    image : tensor or ndarray, shape (H, W) or (..., H, W)
        Grayscale image(s).
    bins : int
        Number of equal bins over [0, π) (paper: 18, i.e. 10° each).
    weighted : bool
        False (default, eq. 8): count pixels.  True: sum gradient magnitudes.
    density : bool
        Divide each histogram by its total (sums to 1).

    Returns
    -------
    torch.Tensor, float64, shape (..., bins)
        Bin ``b`` covers ``[b π/bins, (b+1) π/bins)``; pixels with zero
        gradient are not counted.
    """
    weighted = check_bool("weighted", weighted)
    density = check_bool("density", density)
    bins = _check_bins(bins)
    theta, mag = gradient_orientations(image)
    lead = theta.shape[:-2]
    theta = theta.reshape(-1, theta.shape[-2] * theta.shape[-1])
    mag = mag.reshape(theta.shape)
    idx = torch.floor(theta * (bins / math.pi)).long().clamp_(0, bins - 1)
    valid = mag > 0
    w = (mag if weighted else torch.ones_like(mag)) * valid
    hist = torch.zeros(theta.shape[0], bins, dtype=torch.float64, device=theta.device)
    hist.scatter_add_(1, idx, w)
    if density:
        total = hist.sum(dim=1, keepdim=True)
        hist = torch.where(total > 0, hist / total.clamp_min(torch.finfo(torch.float64).tiny), hist)
    return hist.reshape(*lead, bins)


def circular_variance(angles=None, *, histogram=None, weights=None, dim=-1) -> torch.Tensor:
    r"""Circular variance of axial orientations, :math:`1-\sqrt{\bar C^2+\bar S^2}`.

    Give exactly one of ``angles`` or ``histogram``.

    Parameters
    ----------
    angles : tensor or ndarray, optional
        Orientations in radians (defined modulo π).  Reduced over ``dim``.
    histogram : tensor or ndarray, shape (..., bins), optional
        Counts over equal bins covering [0, π) (e.g. from
        :func:`orientation_histogram`); each bin contributes its centre with
        weight equal to its count.
    weights : tensor or ndarray, optional
        Non-negative weights broadcastable to ``angles`` (e.g. gradient
        magnitudes).  Only with ``angles``.
    dim : int or tuple of int
        Dimension(s) of ``angles`` to reduce.

    Returns
    -------
    torch.Tensor, float64
        Values in [0, 1]: 0 when all orientations agree, near 1 for uniform
        orientations.
    """
    if (angles is None) == (histogram is None):
        raise ValueError("angles, histogram: expected exactly one of them")
    if histogram is not None:
        if weights is not None:
            raise ValueError("weights: only valid with angles (a histogram already holds its weights)")
        h = as_float_tensor("histogram", histogram).to(torch.float64)
        check_ndim("histogram", h, range(1, 9), "(..., bins)")
        check_finite("histogram", h)
        if bool((h < 0).any()):
            raise ValueError("histogram: expected non-negative counts")
        nb = h.shape[-1]
        centres = orientation_bin_centers(nb).to(h.device)
        w, th, red = h, centres, -1
    else:
        th = as_float_tensor("angles", angles).to(torch.float64)
        check_finite("angles", th)
        if th.numel() == 0:
            raise ValueError("angles: expected at least one angle")
        if weights is None:
            w = torch.ones_like(th)
        else:
            w = as_float_tensor("weights", weights).to(dtype=torch.float64, device=th.device)
            check_finite("weights", w)
            if bool((w < 0).any()):
                raise ValueError("weights: expected non-negative values")
            w = broadcast_checked("weights", w, th.shape, f"a shape broadcastable to angles {tuple(th.shape)}")
        red = dim
    total = (w * torch.ones_like(th)).sum(dim=red)
    if bool((total <= 0).any()):
        raise ValueError(f"{'histogram' if histogram is not None else 'weights'}: expected a positive total weight")
    c = (w * torch.cos(2.0 * th)).sum(dim=red) / total
    s = (w * torch.sin(2.0 * th)).sum(dim=red) / total
    return (1.0 - torch.sqrt(c**2 + s**2)).clamp(0.0, 1.0)

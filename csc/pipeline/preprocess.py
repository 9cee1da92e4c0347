"""Image preprocessing: grayscale, resize, central crop, LCN and Tikhonov highpass.

Every function takes a floating tensor (float32 or float64, any device) or array and
returns a tensor of the same dtype on the same device. Spatial functions act on the
last two dimensions; any leading dimensions are batch dimensions, so ``(H, W)``,
``(B, H, W)`` and ``(B, C, H, W)`` all work.

The two filters used by the paper's pipelines reproduce SPORCO 0.2.2 exactly:

* :func:`local_contrast_normalise` — ``sporco.signal.local_contrast_normalise``
  (the authors' code: gray images on the 0–255 scale, Gaussian σ = 1, ``n = 7``);
* :func:`tikhonov_filter` — ``sporco.signal.tikhonov_filter`` (SPORCO's examples,
  ``λ = 5, npd = 16``).

Both pad symmetrically (numpy's ``mode="symmetric"``, edge sample repeated) and filter
with circular FFT convolution over the padded image, as SPORCO does; the results agree
with SPORCO to rounding error (≈1e-15 in float64).

:class:`Preprocess` is the one description of "what is coded" used by the command
line, the demo and the code store: the Tikhonov highpass (the lowpass is added back on
reconstruction), LCN (undone with the local norm and mean) or the image itself, with
:meth:`Preprocess.forward` / :meth:`Preprocess.inverse`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from csc.core.checks import check_bool, as_float_tensor, check_finite, check_ndim, check_not_channels_last

__all__ = [
    "GRAY_WEIGHTS",
    "PREPROCESS_KINDS",
    "TIKHONOV_LMBDA",
    "TIKHONOV_NPD",
    "LCNResult",
    "Preprocess",
    "PreprocessState",
    "check_preprocess_kind",
    "TikhonovResult",
    "center_crop",
    "local_contrast_normalise",
    "resize",
    "symmetric_pad",
    "tikhonov_filter",
    "to_float",
    "to_grayscale",
]

GrayWeights = Literal["skimage", "bt601"]

#: Luma weights (R, G, B) for :func:`to_grayscale`.
#:
#: ``"skimage"``: 0.2125, 0.7154, 0.0721 — exactly ``skimage.color.rgb2gray``; these
#: are (to 4 decimals) the ITU-R BT.709 / sRGB luminance weights, *not* BT.601.
#: ``"bt601"``: 0.299, 0.587, 0.114 — ITU-R BT.601 luma, as PIL's ``convert("L")``
#: and torchvision's ``rgb_to_grayscale`` / ``transforms.Grayscale``.
GRAY_WEIGHTS: dict[str, tuple[float, float, float]] = {
    "skimage": (0.2125, 0.7154, 0.0721),
    "bt601": (0.299, 0.587, 0.114),
}


class LCNResult(NamedTuple):
    """Output of :func:`local_contrast_normalise` (unpacks like SPORCO's 3-tuple).

    The input is recovered as ``norm * normalised + mean``.
    """

    normalised: torch.Tensor
    """Contrast-normalised image(s), same shape as the input."""
    mean: torch.Tensor
    """Local (Gaussian-weighted) mean that was subtracted."""
    norm: torch.Tensor
    """Local norm (floored at ``c``) that the mean-free image was divided by."""

    def reconstruct(self) -> torch.Tensor:
        """Return ``norm * normalised + mean``, the original image(s)."""
        return self.norm * self.normalised + self.mean


class TikhonovResult(NamedTuple):
    """Output of :func:`tikhonov_filter` (unpacks like SPORCO's ``slp, shp``)."""

    lowpass: torch.Tensor
    """Lowpass component (solution of the Tikhonov problem)."""
    highpass: torch.Tensor
    """``input - lowpass``."""


# --------------------------------------------------------------------------- helpers


def to_float(images, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
    """Convert images to a floating tensor, mapping ``uint8`` 0–255 to [0, 1].

    Parameters
    ----------
    images : tensor or ndarray
        ``uint8`` images (scaled by 1/255) or floating images (only cast).
    dtype : torch.dtype, optional (default float32)
        float32 or float64.
    device : torch.device or str, optional
        Target device (default: where the input is; CPU for arrays).

    Returns
    -------
    torch.Tensor
    """
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype: expected torch.float32 or torch.float64, got {dtype}")
    t = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    if not isinstance(t, torch.Tensor):
        t = torch.as_tensor(np.asarray(t))
    if t.dtype == torch.uint8:
        return t.to(device=device or t.device, dtype=dtype) / 255.0
    if t.is_floating_point():
        return t.to(device=device or t.device, dtype=dtype)
    raise TypeError(
        f"images: expected uint8 (0-255) or floating-point images, got {t.dtype}; "
        "other integer types have no agreed scale, convert them yourself"
    )


def _spatial_input(name: str, images) -> torch.Tensor:
    t = as_float_tensor(name, images)
    if t.ndim < 2:
        raise ValueError(f"{name}: expected at least 2 dimensions (..., H, W), got shape {tuple(t.shape)}")
    check_not_channels_last(name, t, "(H, W) or (..., H, W)")
    check_finite(name, t)
    return t


def _pair(name: str, size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        pair = (int(size), int(size))
    else:
        vals = tuple(size)
        if len(vals) != 2:
            raise ValueError(f"{name}: expected an int or a pair (height, width), got {size!r}")
        pair = (int(vals[0]), int(vals[1]))
        if pair != tuple(vals):
            raise ValueError(f"{name}: expected integers, got {size!r}")
    if pair[0] < 1 or pair[1] < 1:
        raise ValueError(f"{name}: expected positive sizes, got {size!r}")
    return pair


def _symmetric_index(n: int, pad: int, device: torch.device) -> torch.Tensor:
    idx = torch.arange(-pad, n + pad, device=device) % (2 * n)
    return torch.where(idx >= n, 2 * n - 1 - idx, idx)


def symmetric_pad(images, pad: int) -> torch.Tensor:
    """Pad the last two dimensions by ``pad`` samples, as ``np.pad(mode="symmetric")``.

    The signal is mirrored including its edge sample (``abc`` → ``cba|abc|cba``);
    pads longer than the image keep mirroring, as numpy does. (``torch`` has no such
    mode: its ``"reflect"`` omits the edge sample.)

    Parameters
    ----------
    images : tensor, shape (..., H, W)
    pad : int
        Samples added on each side of both spatial dimensions.

    Returns
    -------
    torch.Tensor, shape (..., H + 2 pad, W + 2 pad)
    """
    t = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    if t.ndim < 2:
        raise ValueError(f"images: expected at least 2 dimensions (..., H, W), got shape {tuple(t.shape)}")
    pad = int(pad)
    if pad < 0:
        raise ValueError(f"pad: expected >= 0, got {pad}")
    if pad == 0:
        return t
    H, W = t.shape[-2:]
    t = t.index_select(-2, _symmetric_index(H, pad, t.device))
    return t.index_select(-1, _symmetric_index(W, pad, t.device))


# ----------------------------------------------------------------- colour and geometry


def to_grayscale(images, weights: GrayWeights = "skimage", channel_dim: int = -3) -> torch.Tensor:
    """Weighted sum of the R, G, B channels.

    Parameters
    ----------
    images : tensor or ndarray, floating
        Colour image(s) with 3 channels along ``channel_dim``: ``(3, H, W)`` or
        ``(B, 3, H, W)`` with the default ``channel_dim=-3``; pass ``channel_dim=-1``
        for ``(H, W, 3)`` / ``(B, H, W, 3)`` (skimage / PIL layout). Values are used as
        they are (0–1 or 0–255 both work; the result keeps the scale).
    weights : {"skimage", "bt601"}, optional (default "skimage")
        ``"skimage"``: 0.2125 R + 0.7154 G + 0.0721 B, identical to
        ``skimage.color.rgb2gray`` (BT.709 / sRGB luminance weights).
        ``"bt601"``: 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601 luma; PIL ``"L"`` and
        torchvision ``Grayscale``). See :data:`GRAY_WEIGHTS`.
    channel_dim : int, optional (default -3)
        Dimension holding the colour channels; it is removed from the output.

    Returns
    -------
    torch.Tensor
        Gray image(s): the input shape without ``channel_dim``.
    """
    t = as_float_tensor("images", images)
    if weights not in GRAY_WEIGHTS:
        raise ValueError(f"weights: expected one of {sorted(GRAY_WEIGHTS)}, got {weights!r}")
    if not -t.ndim <= channel_dim < t.ndim:
        raise ValueError(f"channel_dim: {channel_dim} is out of range for shape {tuple(t.shape)}")
    if t.ndim < 3:
        raise ValueError(f"images: expected a channel dimension and two spatial ones, got shape {tuple(t.shape)}")
    if t.shape[channel_dim] != 3:
        raise ValueError(
            f"images: expected 3 (R, G, B) channels along dimension {channel_dim}, got shape "
            f"{tuple(t.shape)}; drop an alpha channel first, or set channel_dim (-1 for H, W, 3)"
        )
    check_finite("images", t)
    w = torch.tensor(GRAY_WEIGHTS[weights], dtype=t.dtype, device=t.device)
    return torch.tensordot(t.movedim(channel_dim, -1), w, dims=([-1], [0]))


def resize(images, size: int | Sequence[int], antialias: bool = True) -> torch.Tensor:
    """Bilinear resize of the last two dimensions.

    Uses ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``
    (half-pixel centres, as torchvision's ``Resize``, PIL and OpenCV).

    Parameters
    ----------
    images : tensor or ndarray, floating, shape (H, W), (B, H, W) or (B, C, H, W)
    size : int or (int, int)
        Output (height, width); an int gives a square output (unlike torchvision's
        ``Resize(int)``, which matches the shorter edge).
    antialias : bool, optional (default True)
        Low-pass the input when *down*-sampling, as torchvision ≥ 0.17 ``Resize`` and
        PIL do. Up-sampling (CIFAR 32 → 64/128 in the paper) is unaffected by this
        flag. ``False`` gives plain bilinear sampling (torchvision < 0.17 on tensors),
        which aliases when shrinking (e.g. codes 64 → 32 in the authors' loader).

    Returns
    -------
    torch.Tensor, shape (..., size[0], size[1])
    """
    antialias = check_bool("antialias", antialias)
    t = _spatial_input("images", images)
    check_ndim("images", t, (2, 3, 4), "(H, W), (B, H, W) or (B, C, H, W)")
    out_hw = _pair("size", size)
    shape = t.shape
    x = t.reshape((-1, 1) + tuple(shape[-2:]))
    y = F.interpolate(x, size=out_hw, mode="bilinear", align_corners=False, antialias=bool(antialias))
    return y.reshape(tuple(shape[:-2]) + out_hw)


def center_crop(images, size: int | Sequence[int]) -> torch.Tensor:
    """Central crop of the last two dimensions.

    The offset is ``round((H - h) / 2)`` (Python rounding), as torchvision's
    ``center_crop``, so results coincide with it.

    Parameters
    ----------
    images : tensor or ndarray, shape (..., H, W)
        Any dtype (integer images are allowed here: cropping does not change values).
    size : int or (int, int)
        Crop (height, width); must not exceed the image size.

    Returns
    -------
    torch.Tensor, shape (..., h, w)
        A view of the input when it was a tensor.
    """
    t = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(images))
    if t.ndim < 2:
        raise ValueError(f"images: expected at least 2 dimensions (..., H, W), got shape {tuple(t.shape)}")
    h, w = _pair("size", size)
    H, W = t.shape[-2:]
    if h > H or w > W:
        raise ValueError(f"size: crop {h}x{w} is larger than the image {H}x{W}")
    top = int(round((H - h) / 2.0))
    left = int(round((W - w) / 2.0))
    return t[..., top : top + h, left : left + w]


# ------------------------------------------------------------------------- filters


def _sporco_gaussian(N: int, sd: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``sporco.signal.gaussian((N, N), sd)``: samples on linspace(-3, 3, N), unit sum."""
    x = np.linspace(-3.0, 3.0, N)
    g1 = np.exp(-(x**2) / (2.0 * sd**2)) / (np.sqrt(2.0 * np.pi) * sd)
    g = g1[:, None] * g1[None, :]
    g /= np.sum(g)
    return torch.as_tensor(g, dtype=dtype, device=device)


def _circular_conv(x: torch.Tensor, kernel_f: torch.Tensor) -> torch.Tensor:
    hw = x.shape[-2:]
    return torch.fft.irfft2(torch.fft.rfft2(x) * kernel_f, s=hw)


def local_contrast_normalise(images, n: int = 7, c: float | None = None) -> LCNResult:
    """Local contrast normalisation, as ``sporco.signal.local_contrast_normalise``.

    Subtract a Gaussian-weighted local mean, then divide by the local norm
    (Jarrett et al. 2009). The window is ``(2n+1) × (2n+1)`` samples of SPORCO's
    ``gaussian(…, sd=1)`` (samples on ``linspace(-3, 3, 2n+1)``, unit sum).

    Parameters
    ----------
    images : tensor or ndarray, floating, shape (H, W) or (B, H, W) (any leading dims)
        The authors' code applies it to gray images on the 0–255 scale.
    n : int, optional (default 7)
        Half-size of the local region.
    c : float, optional
        Smallest divisor. ``None`` (default): per image, the mean of the local norms
        over the symmetrically padded image, exactly as SPORCO does with its
        ``(H, W, B)`` arrays.

    Returns
    -------
    LCNResult
        ``(normalised, mean, norm)``, each shaped like the input; the input is
        ``norm * normalised + mean``.
    """
    t = _spatial_input("images", images)
    n = int(n)
    if n < 1:
        raise ValueError(f"n: expected a positive integer, got {n}")
    N = 2 * n + 1
    sp = symmetric_pad(t, n)
    hw = sp.shape[-2:]
    g = torch.zeros(hw, dtype=t.dtype, device=t.device)
    gk = _sporco_gaussian(N, 1.0, t.dtype, t.device)
    gh, gw = min(N, hw[0]), min(N, hw[1])
    g[:gh, :gw] = gk[:gh, :gw]
    gf = torch.fft.rfft2(g)
    smn = torch.roll(_circular_conv(sp, gf), (-n, -n), dims=(-2, -1))
    s1 = sp - smn
    snrm = torch.roll(torch.sqrt(torch.clamp(_circular_conv(s1 * s1, gf), min=0.0)), (-n, -n), dims=(-2, -1))
    if c is None:
        cc = snrm.mean(dim=(-2, -1), keepdim=True)
    else:
        if not math.isfinite(float(c)):
            raise ValueError(f"c: expected a finite number, got {c!r}")
        cc = torch.as_tensor(float(c), dtype=t.dtype, device=t.device)
    snrm = torch.maximum(cc, snrm)
    s2 = s1 / snrm
    crop = (Ellipsis, slice(n, -n), slice(n, -n))
    return LCNResult(s2[crop], smn[crop], snrm[crop])


def tikhonov_filter(images, lmbda: float, npd: int = 16) -> TikhonovResult:
    r"""Lowpass/highpass split by Tikhonov regularisation, as ``sporco.signal.tikhonov_filter``.

    The lowpass part solves

    .. math:: \arg\min_x \tfrac12 \|x - s\|_2^2 + \tfrac{\lambda}{2} \sum_i \|G_i x\|_2^2

    with :math:`G_i` the forward differences along each image axis, computed in the
    DFT domain of the image padded symmetrically by ``npd`` samples; the highpass part
    is ``s - lowpass``.

    Parameters
    ----------
    images : tensor or ndarray, floating, shape (H, W) or (B, H, W) (any leading dims)
    lmbda : float
        Regularisation weight (SPORCO's examples: 5 for images in [0, 1]).
    npd : int, optional (default 16)
        Symmetric padding on each side.

    Returns
    -------
    TikhonovResult
        ``(lowpass, highpass)``, each shaped like the input.
    """
    t = _spatial_input("images", images)
    lmbda = float(lmbda)
    if not math.isfinite(lmbda) or lmbda < 0:
        raise ValueError(f"lmbda: expected a finite value >= 0, got {lmbda!r}")
    npd = int(npd)
    if npd < 0:
        raise ValueError(f"npd: expected >= 0, got {npd}")
    H, W = t.shape[-2:]
    M, L = H + 2 * npd, W + 2 * npd
    gr = torch.zeros((M, L), dtype=t.dtype, device=t.device)
    gc = torch.zeros((M, L), dtype=t.dtype, device=t.device)
    gr[0, 0], gc[0, 0] = -1.0, -1.0
    gr[1 % M, 0] += 1.0
    gc[0, 1 % L] += 1.0
    Gr, Gc = torch.fft.rfft2(gr), torch.fft.rfft2(gc)
    A = 1.0 + lmbda * (Gr.real**2 + Gr.imag**2 + Gc.real**2 + Gc.imag**2)
    sp = symmetric_pad(t, npd)
    slp = torch.fft.irfft2(torch.fft.rfft2(sp) / A, s=(M, L))
    slp = slp[..., npd : M - npd, npd : L - npd]
    return TikhonovResult(slp, t - slp)


# ------------------------------------------------------------------ the one preprocessing

PreprocessKind = Literal["highpass", "lcn", "none"]

#: The kinds of :class:`Preprocess`: Tikhonov highpass, local contrast normalisation, none.
PREPROCESS_KINDS: tuple[str, ...] = ("highpass", "lcn", "none")
#: Tikhonov λ and padding of SPORCO's examples (images in [0, 1]).
TIKHONOV_LMBDA = 5.0
TIKHONOV_NPD = 16


def check_preprocess_kind(name: str, kind, allowed: Sequence[str] = PREPROCESS_KINDS) -> str:
    """Return ``kind`` when it is one of ``allowed``; else raise ``ValueError`` naming ``name``.

    The message reads e.g. ``preprocess: expected 'highpass', 'lcn' or 'none', got 'x'``.
    """
    if isinstance(kind, str) and kind in allowed:
        return kind
    quoted = [repr(k) for k in allowed]
    choices = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    raise ValueError(f"{name}: expected {choices}, got {kind!r}")


@dataclass(frozen=True)
class PreprocessState:
    """What :meth:`Preprocess.forward` split off, to undo it.

    The inverse of a coded-input reconstruction ``r`` is ``(scale · r + offset) / input_scale``
    (a missing ``scale`` or ``offset`` is left out; the division only when
    ``input_scale != 1``).

    Attributes
    ----------
    kind : {"highpass", "lcn", "none"}
    offset : tensor or None
        The Tikhonov lowpass (highpass) or the LCN local mean; None for "none".
    scale : tensor or None
        The LCN local norm; None otherwise.
    input_scale : float
        Factor the images were multiplied by before LCN (1 otherwise).
    """

    kind: str
    offset: torch.Tensor | None = None
    scale: torch.Tensor | None = None
    input_scale: float = 1.0

    @property
    def lowpass(self) -> torch.Tensor | None:
        """The Tikhonov lowpass that was subtracted (None unless ``kind == "highpass"``)."""
        return self.offset if self.kind == "highpass" else None

    def inverse(self, recon) -> torch.Tensor:
        """Map a reconstruction of the coded input back to image space (see the class)."""
        r = as_float_tensor("recon", recon)
        if self.scale is not None:
            r = self.scale * r
        if self.offset is not None:
            r = r + self.offset
        if self.input_scale != 1.0:
            r = r / self.input_scale
        return r


@dataclass(frozen=True)
class Preprocess:
    """The signal CBPDN codes, and the way back to image space.

    ``kind="highpass"``: the highpass of :func:`tikhonov_filter` (SPORCO's examples,
    λ = 5, 16 samples of padding); the lowpass is added back on reconstruction.
    ``kind="lcn"``: :func:`local_contrast_normalise` of ``lcn_input_scale · images``
    (the authors' code works on the 0–255 scale: 255 for [0, 1] images); undone with
    the local norm and mean. ``kind="none"``: the images themselves.

    Works on floating tensors or arrays, float32 or float64, any device, shapes
    ``(H, W)`` or ``(B, H, W)`` (any leading dimensions); results keep dtype and device.

    Examples
    --------
    >>> pre = Preprocess("highpass")
    >>> signal, state = pre.forward(images)          # code ``signal``
    >>> image = pre.inverse(reconstruction, state)   # reconstruction + lowpass
    """

    kind: PreprocessKind = "highpass"
    tikhonov_lmbda: float = TIKHONOV_LMBDA
    tikhonov_npd: int = TIKHONOV_NPD
    lcn_n: int = 7
    lcn_c: float | None = None
    lcn_input_scale: float = 1.0

    def __post_init__(self):
        check_preprocess_kind("kind", self.kind)
        lm = self.tikhonov_lmbda
        if isinstance(lm, bool) or not isinstance(lm, (int, float)) or not math.isfinite(lm) or lm < 0:
            raise ValueError(f"tikhonov_lmbda: expected a finite number >= 0, got {lm!r}")
        for name in ("tikhonov_npd", "lcn_n"):
            v = getattr(self, name)
            low = 0 if name == "tikhonov_npd" else 1
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise ValueError(f"{name}: expected an integer >= {low}, got {v!r}")
        c = self.lcn_c
        if c is not None and (isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c)):
            raise ValueError(f"lcn_c: expected a finite number or None, got {c!r}")
        sc = self.lcn_input_scale
        if isinstance(sc, bool) or not isinstance(sc, (int, float)) or not math.isfinite(sc) or sc <= 0:
            raise ValueError(f"lcn_input_scale: expected a finite number > 0, got {sc!r}")

    def forward(self, images) -> tuple[torch.Tensor, PreprocessState]:
        """Return ``(coded_input, state)``: the signal to code and what undoes it."""
        t = _spatial_input("images", images)
        if self.kind == "highpass":
            low, high = tikhonov_filter(t, self.tikhonov_lmbda, self.tikhonov_npd)
            return high, PreprocessState("highpass", offset=low)
        if self.kind == "lcn":
            sc = float(self.lcn_input_scale)
            x = t * sc if sc != 1.0 else t
            res = local_contrast_normalise(x, self.lcn_n, self.lcn_c)
            return res.normalised, PreprocessState("lcn", offset=res.mean, scale=res.norm, input_scale=sc)
        return t, PreprocessState("none")

    def inverse(self, recon, state: PreprocessState) -> torch.Tensor:
        """Map a reconstruction of the coded input back to image space.

        ``state`` must come from :meth:`forward` of a preprocessing of the same kind.
        """
        if not isinstance(state, PreprocessState):
            raise TypeError(f"state: expected a PreprocessState from Preprocess.forward, got {type(state).__name__}")
        if state.kind != self.kind:
            raise ValueError(f"state: made by a {state.kind!r} preprocessing, not {self.kind!r}")
        return state.inverse(recon)

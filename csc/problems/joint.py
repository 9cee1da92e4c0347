r"""Convolutional BPDN with joint sparsity over the channels of an image (SPORCO ``ConvBPDNJoint``).

For an image of C channels s_c and a single-channel dictionary d_k, one set of maps
x_{c,k} per channel, coupled by an ℓ2,1 norm over the channel index:

.. math::
    \operatorname*{argmin}_x \; \tfrac12 \sum_c \Big\| \sum_k d_k * x_{c,k} - s_c \Big\|_2^2
    + \lambda \sum_{c,k} \| w \odot x_{c,k} \|_1
    + \mu \sum_{k,i} w^{(2,1)}_{k,i} \sqrt{\textstyle\sum_c x_{c,k,i}^2} ,

by the same ADMM (:mod:`csc.core.admm`) on the split x = y: the x-step is the single-channel
Sherman–Morrison solve in each channel, and the y-step is SPORCO's ``prox_sl1l2`` — soft
thresholding by λw/ρ, then each group of the C coefficients at one (kernel, pixel)
shrunk by μw₂₁/ρ in ℓ2 norm — before the optional non-negativity and boundary zeroing.
Every image of a batch is its own problem (own ρ and stopping); its C channels share them.
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from csc.problems.cbpdn import SPORCO_STATS_NAMES, ConvBPDN, IterationStats
from csc.core.checks import check_finite, check_nonnegative, shape_weights
from csc.core import sporco_options
from csc.core.options import CBPDNOptions, _is_real, check_number
from csc.core.prox import SparseGroupThreshold
from csc.core.xstep import ChannelwiseXStep

__all__ = ["CBPDNJointOptions", "ConvBPDNJoint", "JointIterationStats"]


@dataclass(frozen=True)
class CBPDNJointOptions(CBPDNOptions):
    """Options of :class:`ConvBPDNJoint` (SPORCO ``ConvBPDNJoint.Options``): those of
    :class:`csc.CBPDNOptions` and

    Attributes
    ----------
    l21_weight : float, array or tensor
        Weights w₂₁ of the ℓ2,1 term (``L21Weight``, 1): a scalar, one per kernel (K,), or
        a map (K, H, W) / (B, K, H, W) (the coefficient axes without the channel axis).
    """

    l21_weight: Any = 1.0

    #: SPORCO ``ConvBPDNJoint``'s option names: ConvBPDN's and ``L21Weight`` (a scalar, (K,),
    #: or SPORCO's (H, W, 1, K) / (H, W, 1, 1, K) layout)
    _sporco: ClassVar[sporco_options.SporcoTable] = sporco_options.JOINT

    def __post_init__(self) -> None:
        super().__post_init__()
        check_l21_weight(self.l21_weight)

def check_l21_weight(w) -> None:
    """The options' check of ``l21_weight``: a number ≥ 0 or an array of weights (its shape is
    checked at the solve, against the codes)."""
    if isinstance(w, (bool, np.bool_, str, bytes)) or w is None:
        raise TypeError(f"l21_weight: expected a number or an array of weights, got {w!r}")
    if _is_real(w):
        check_number("l21_weight", w, minimum=0)


@dataclass(frozen=True)
class JointIterationStats(IterationStats):
    """:class:`csc.IterationStats` and ``l21``: Σ w₂₁‖x‖₂ over the channel groups
    (SPORCO's ``RegL21``); the objective includes μ·l21."""

    l21: np.ndarray


class ConvBPDNJoint(ConvBPDN):
    """CBPDN with joint sparsity across channels (module docstring; SPORCO ``ConvBPDNJoint``).

    Parameters
    ----------
    dictionary : (K, kh, kw)
        Single-channel kernels, used in every channel.
    lmbda : float
        ℓ1 weight λ ≥ 0.
    mu : float
        ℓ2,1 weight μ ≥ 0 (SPORCO's ``mu``, default 0).
    options : CBPDNJointOptions or CBPDNOptions, optional

    Notes
    -----
    ``solve(images)`` takes (C, H, W) for one image or (B, C, H, W), and returns codes
    (B, C, K, H, W): one map per channel and kernel. Devices as :class:`csc.ConvBPDN`'s (the
    solve works on the images' device; the dictionary, ``l1_weight`` and ``l21_weight`` are
    copied there once).
    """

    options_class = CBPDNJointOptions
    stats_class = JointIterationStats
    sporco_stats_names = {**SPORCO_STATS_NAMES, "l21": "RegL21"}

    def __init__(self, dictionary, lmbda: float, mu: float = 0.0, options: CBPDNOptions | None = None):
        opts = options if options is not None else CBPDNJointOptions()
        if type(opts) is CBPDNOptions:
            opts = CBPDNJointOptions(**{f.name: getattr(opts, f.name) for f in dataclasses.fields(opts) if f.init})
        if not isinstance(opts, CBPDNJointOptions):
            raise TypeError(f"options: expected CBPDNJointOptions (or CBPDNOptions), got {type(opts).__name__}")
        super().__init__(dictionary, lmbda, opts)
        if self.dictionary.ndim != 3:
            raise ValueError(f"dictionary: joint sparsity takes a single-channel (K, kh, kw) dictionary, got shape "
                             f"{tuple(self.dictionary.shape)}")
        self.mu = check_nonnegative("mu", mu)

    def _prepare_images(self, images):
        S, lead = super()._prepare_images(images)  # (n, H, W) with lead (B, C) or (C,)
        if len(lead) == 1:  # a (C, H, W) image: one image of C channels
            lead = (1,) + lead
        B, C = lead[0], int(np.prod(lead[1:]))
        self._channels = C
        return S.reshape(B, C, *S.shape[-2:]), (B,)

    def _num_maps(self, K):
        return self._channels * K

    def _code_shape(self, M, H, W):
        return (self._channels, M // self._channels, H, W)

    def _prepare_weight(self, n, shape, S, lead):
        w = self._checked_weight("l1_weight", self.options.l1_weight, S)
        if isinstance(w, torch.Tensor) and w.ndim == 5:
            return self._channel_dependent(w, n, shape)
        w = super()._prepare_weight(n, shape, S, lead)
        return w if isinstance(w, float) else self._per_channel(w)

    def _channel_dependent(self, w: torch.Tensor, n: int, shape) -> torch.Tensor:
        """(B|1, C|1, K|1, H|1, W|1) weights (SPORCO's (H, W, C, K) or (1, 1, C, 1, K) ``L1Weight``
        of a grey dictionary on colour images): each channel's (B|1, K, ·, ·) shaped as the
        plain weights, then the channels side by side, (B|1, C·K, ·, ·)."""
        C, K = self._channels, self.dictionary.shape[0]
        if w.shape[1] not in (1, C):
            raise ValueError(f"l1_weight: a 5-D weight is (B, C, K, H, W) with C={C} channels (or 1), "
                             f"got shape {tuple(w.shape)}")
        w = w.expand(w.shape[0], C, *w.shape[2:])
        parts = [shape_weights("l1_weight", w[:, c], K, (n, K) + tuple(shape)) for c in range(C)]
        parts = [p.expand(p.shape[0], K, *p.shape[2:]) for p in parts]
        return torch.stack(parts, 1).reshape(parts[0].shape[0], C * K, *parts[0].shape[2:])

    def _per_channel(self, w: torch.Tensor) -> torch.Tensor:
        """(n|1, K, ·, ·) weights repeated for each channel: (n|1, C·K, ·, ·)."""
        C = self._channels
        return w.unsqueeze(1).expand(w.shape[0], C, *w.shape[1:]).reshape(w.shape[0], C * w.shape[1], *w.shape[2:])

    def _prepare_init(self, name, value, n, lead, shape):
        if value is None:
            return None
        D, C = self._dictionary_on(getattr(self, "_device", self.dictionary.device)), self._channels
        t = torch.as_tensor(value).to(dtype=D.dtype, device=D.device).detach()
        expect = tuple(lead) + (C, D.shape[0]) + tuple(shape)
        if tuple(t.shape) != expect:
            raise ValueError(f"{name}: expected shape {expect}, got {tuple(t.shape)}")
        check_finite(name, t)
        return t.reshape(n, C * D.shape[0], *shape).clone()

    def solve(self, images, y0=None, u0=None):
        """Solve for every image of ``images``: (C, H, W) or (B, C, H, W); codes (B, C, K, H, W),
        and ``y0``, ``u0`` of that shape."""
        return super().solve(images, y0, u0)

    def _xstep(self, D, shape):
        return ChannelwiseXStep.from_kernels(D, shape, self._channels)

    def _prox(self, w, kernel_size, S: torch.Tensor) -> SparseGroupThreshold:
        """SPORCO's ``prox_sl1l2``: the soft threshold by λw/ρ, each channel group shrunk by μw₂₁/ρ."""
        o, n = self.options, S.shape[0]
        return SparseGroupThreshold(self.lmbda, w, bool(o.nonneg), tuple(kernel_size) if o.no_boundary_cross else None,
                                    mu=self.mu, l21_weight=self._l21_weight(S, n, S.shape[-2:]),
                                    channels=self._channels)

    def _l21_weight(self, like: torch.Tensor, n: int, shape) -> float | torch.Tensor:
        K = self.dictionary.shape[0]
        w = self._checked_weight("l21_weight", self.options.l21_weight, like)
        return shape_weights("l21_weight", w, K, (n, K) + tuple(shape))

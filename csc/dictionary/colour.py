r"""Colour starting dictionaries: log-Gabor kernels in the channels of an opponent colour space.

A multi-channel kernel (C = 3, RGB) is built as the outer product of a spatial log-Gabor
kernel g (``csc.loggabor_dictionary``) and a colour direction a ∈ ℝ³:

.. math::  d_{k,j}(c, x) = a_j(c)\, g_k(x), \qquad \|d_{k,j}\|_2 = \|a_j\|_2 \|g_k\|_2 = 1 ,

for each spatial kernel g_k and each of three orthonormal opponent directions

.. math::  a_L = (1, 1, 1)/\sqrt3 ,\quad a_{RG} = (1, -1, 0)/\sqrt2 ,\quad a_{BY} = (1, 1, -2)/\sqrt6 ,

luminance, red–green and blue–yellow. Why this construction: the colour signals of
natural images decorrelate, to a good approximation, along these three axes (the
principal components of natural-image cone or RGB responses are a luminance axis and two
opponent axes, Ruderman, Cronin & Chiao 1998), and early visual cortex codes colour with
spatially oriented, colour-opponent receptive fields; separable colour × orientation
kernels are the simplest dictionary with both properties. Because the three directions
are an orthonormal basis of ℝ³, the colour dictionary spans exactly what the grey
log-Gabor dictionary spans in each of R, G and B, so nothing is lost by the rotation, and
the orientation-bandwidth heterogeneity of the paper's dictionary is kept in every channel.
"""

from __future__ import annotations

import math

import torch

from csc.dictionary.loggabor import LogGaborParams, loggabor_dictionary

__all__ = ["OPPONENT_AXES", "colour_loggabor_dictionary"]

#: The orthonormal opponent directions in RGB: luminance, red–green, blue–yellow.
OPPONENT_AXES: dict[str, tuple[float, float, float]] = {
    "L": (1 / math.sqrt(3), 1 / math.sqrt(3), 1 / math.sqrt(3)),
    "RG": (1 / math.sqrt(2), -1 / math.sqrt(2), 0.0),
    "BY": (1 / math.sqrt(6), 1 / math.sqrt(6), -2 / math.sqrt(6)),
}


def colour_loggabor_dictionary(
    preset_or_params: str | LogGaborParams = "heterogeneous",
    size: int | None = None,
    axes: tuple[str, ...] = ("L", "RG", "BY"),
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, LogGaborParams, tuple[str, ...]]:
    """A colour dictionary (K·J, 3, size, size): every log-Gabor kernel of
    ``preset_or_params`` (as :func:`csc.loggabor_dictionary`, unit norm) in each of the J
    opponent directions ``axes`` (keys of :data:`OPPONENT_AXES`; module docstring).

    Returns the kernels (spatial kernel outer, direction inner), the spatial kernels'
    parameter table and the direction of each kernel.
    """
    if isinstance(axes, str) or not axes or any(a not in OPPONENT_AXES for a in axes):
        raise ValueError(f"axes: expected a non-empty sequence of {tuple(OPPONENT_AXES)}, got {axes!r}")
    if len(set(axes)) != len(axes):
        raise ValueError(f"axes: each direction at most once, got {axes!r}")
    g, params = loggabor_dictionary(preset_or_params, size=size, normalise="unit", dtype=torch.float64)
    a = torch.tensor([OPPONENT_AXES[name] for name in axes], dtype=torch.float64)  # (J, 3)
    D = torch.einsum("khw,jc->kjchw", g, a).reshape(g.shape[0] * len(axes), 3, *g.shape[-2:])
    return D.to(dtype=dtype, device=device), params, tuple(axes) * g.shape[0]

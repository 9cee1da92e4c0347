r"""Pruning of sparse codes.

The pruning of §3.3 and Fig. 6 of the paper (Ladret, Casanova & Perrinet, "Kernel
heterogeneity improves sparseness of natural images representations").

Absolute threshold :math:`c` (the paper's Fig. 6 sweep, ``c`` in
``linspace(0.001, 0.5, 6)``):

.. math:: x' = x\,[\,|x| \ge c\,]

Relative threshold (the authors' classifier code prunes ``|x| < max|x| / m``
with ``m`` in {4, 2}):

.. math:: x' = x\,[\,|x| \ge c \max_{k,h,w}|x|\,],

the maximum taken per image over all K × H × W coefficients; the authors'
``m`` corresponds to ``c = 1/m`` (m = 4 → c = 0.25, m = 2 → c = 0.5, the
"c = 0.25 / 0.5" columns of the paper's Table 1).

Coefficients exactly at the threshold are kept (strict ``<`` prunes).
"""

from __future__ import annotations

import torch

from csc.core.checks import check_bool, as_float_tensor, check_finite, check_ndim, check_nonnegative

__all__ = ["prune"]


def check_threshold(name: str, c, relative: bool) -> float:
    """A pruning threshold: a number ≥ 0, and ≤ 1 when relative (a fraction of max|x|:
    above 1 every coefficient would be pruned and a classifier would train on zeros)."""
    c = check_nonnegative(name, c)
    if relative and c > 1:
        raise ValueError(f"{name}: a relative threshold is a fraction of max|x| in [0, 1], got {c!r} "
                         "(above 1 every coefficient is pruned); for an absolute threshold say so")
    return c


def prune(codes, threshold: float, relative: bool = False) -> torch.Tensor:
    """Zero every coefficient whose magnitude is below a threshold.

    Parameters
    ----------
    codes : tensor or ndarray, shape (B, K, H, W) or (K, H, W)
        Coefficient maps (float32 or float64).
    threshold : float
        ``c >= 0``.  Absolute: prune ``|x| < c``.  Relative: prune
        ``|x| < c * max|x|`` per image (``c = 1/m`` for the authors' ``max/m``).
    relative : bool
        Use the relative rule.

    Returns
    -------
    torch.Tensor
        A new tensor with the input's shape, dtype and device; the input is not
        modified.
    """
    relative = check_bool("relative", relative)
    c = check_threshold("threshold", threshold, relative)
    x = as_float_tensor("codes", codes)
    check_ndim("codes", x, (3, 4), "(B, K, H, W) or (K, H, W)")
    check_finite("codes", x)
    mag = x.abs()
    if relative:
        cut = mag.amax(dim=(-3, -2, -1), keepdim=True) * c
    else:
        cut = torch.as_tensor(c, dtype=x.dtype, device=x.device)
    return torch.where(mag < cut, torch.zeros_like(x), x)

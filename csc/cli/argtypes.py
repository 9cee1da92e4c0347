"""Argument types of the ``csc`` command line: numbers checked when the line is parsed.

``--crop 0`` or ``--count -1`` then fail at once with argparse's one-line error naming the
option, instead of deep inside a solve (or, worse, being taken as "no crop"). This module
imports nothing but :mod:`argparse` and :mod:`math`.
"""

from __future__ import annotations

import argparse
import math

__all__ = ["nonneg_float", "nonneg_int", "positive_float", "positive_int", "unit_interval"]


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def positive_int(text: str) -> int:
    """An integer ≥ 1."""
    v = _int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return v


def nonneg_int(text: str) -> int:
    """An integer ≥ 0."""
    v = _int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return v


def positive_float(text: str) -> float:
    """A finite number > 0."""
    v = _float(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return v


def nonneg_float(text: str) -> float:
    """A finite number ≥ 0."""
    v = _float(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return v


def unit_interval(text: str) -> float:
    """A number in [0, 1)."""
    v = _float(text)
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return v

"""Argument types of the ``csc`` command line: numbers checked when the line is parsed.

``--crop 0`` or ``--count -1`` then fail at once with argparse's one-line error naming the
option, instead of deep inside a solve (or, worse, being taken as "no crop"). Each type is
one parser (:func:`_int` or :func:`_float`) and one bound, joined by :func:`_bounded`. This
module imports nothing but :mod:`argparse` and :mod:`math`.
"""

from __future__ import annotations

import argparse
import math
from typing import Callable

__all__ = ["finite_float", "nonneg_float", "nonneg_int", "positive_float", "positive_int", "unit_interval"]


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


def _bounded(name: str, parse: Callable[[str], float], ok: Callable[[float], bool], expected: str,
             doc: str) -> Callable[[str], float]:
    """An argparse ``type`` called ``name``: ``parse(text)``, refused with "expected
    ``expected``, got TEXT" unless ``ok`` holds for the value."""

    def check(text: str):
        v = parse(text)
        if not ok(v):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return v

    check.__name__ = check.__qualname__ = name  # argparse names the type in its messages
    check.__doc__ = doc
    return check


finite_float = _bounded("finite_float", _float, lambda v: True, "a finite number", "A finite number (not nan or inf).")
positive_int = _bounded("positive_int", _int, lambda v: v >= 1, "an integer >= 1", "An integer ≥ 1.")
nonneg_int = _bounded("nonneg_int", _int, lambda v: v >= 0, "an integer >= 0", "An integer ≥ 0.")
positive_float = _bounded("positive_float", _float, lambda v: v > 0, "a number > 0", "A finite number > 0.")
nonneg_float = _bounded("nonneg_float", _float, lambda v: v >= 0, "a number >= 0", "A finite number ≥ 0.")
unit_interval = _bounded("unit_interval", _float, lambda v: 0 <= v < 1, "a number in [0, 1)", "A number in [0, 1).")

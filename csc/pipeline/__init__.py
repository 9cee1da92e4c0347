"""Data pipeline: image sources, preprocessing, the sparse code store and the datasets read from it."""

from csc import _compat

__getattr__ = _compat.lazy_submodules(__name__)

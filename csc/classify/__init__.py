"""Classifier: the ResNet-18 for codes and its training loop."""

from csc import _compat

__getattr__ = _compat.lazy_submodules(__name__)

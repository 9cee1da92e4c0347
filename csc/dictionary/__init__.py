"""Dictionaries: the log-Gabor generator and pickle-free dictionary and code files (shipped files: ``csc.dictionaries``)."""

from csc import _compat

__getattr__ = _compat.lazy_submodules(__name__)

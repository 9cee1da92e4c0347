"""The ADMM core: options, argument checks, DFT-domain operations, the iteration and the coding problems."""

from csc import _compat

__getattr__ = _compat.lazy_submodules(__name__)

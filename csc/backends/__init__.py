"""Back ends of the ADMM core: the torch loop (any device) and the fused numba/FFTW CPU kernels."""

from csc import _compat

__getattr__ = _compat.lazy_submodules(__name__)

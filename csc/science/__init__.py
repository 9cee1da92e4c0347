"""Science: metrics, pruning, pruning sweeps and the statistics of the paper's figures."""

from csc import _compat

__getattr__ = _compat.lazy_submodules(__name__)

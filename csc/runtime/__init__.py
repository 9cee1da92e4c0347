"""Runtime: device resolution (:mod:`csc.runtime.device`) and torch.distributed helpers."""

from csc import _compat

__getattr__ = _compat.lazy_submodules(__name__)

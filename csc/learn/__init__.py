"""Dictionary learning: batch and online learners, dictionary steps, kernel constraints, checkpoints."""

from csc import _compat

__getattr__ = _compat.lazy_submodules(__name__)

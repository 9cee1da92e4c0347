r"""csc as a PyTorch layer: sparse codes that autograd differentiates exactly, at the solution.

- :func:`csc.nn.functional.conv_sparse_code` — the codes of images as a differentiable
  function of the images, the dictionary, λ (and μ, the mask);
- :class:`csc.nn.ConvSparseCode` — the module: the dictionary an ``nn.Parameter``, λ a
  (log-parametrised) parameter when learned;
- :class:`csc.nn.CGOptions`, :class:`csc.nn.BackwardRecord` — the backward's conjugate
  gradients and what it did;
- :mod:`csc.nn.warmstart` — a predictor of codes for warm starts (:func:`csc.nn.fit_warm_start`).

The forward is csc's solve to its tolerance; the backward is implicit differentiation of
the optimality condition on the code's support (:mod:`csc.nn.implicit`), not unrolling.
"""

from csc.nn import functional
from csc.nn.functional import conv_sparse_code
from csc.nn.implicit import BackwardRecord, CGOptions
from csc.nn.modules import ConvSparseCode
from csc.nn.warmstart import WarmStartOptions, WarmStartPredictor, fit_warm_start, load_warm_start, train_warm_start

__all__ = ["functional", "conv_sparse_code", "ConvSparseCode", "CGOptions", "BackwardRecord", "WarmStartOptions",
           "WarmStartPredictor", "fit_warm_start", "load_warm_start", "train_warm_start"]

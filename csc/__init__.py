"""csc — convolutional sparse coding on PyTorch.

Batched ADMM convolutional BPDN that gives SPORCO's answers on CPU and CUDA, log-Gabor
dictionaries, metrics and code statistics, data loaders and a ResNet-18 for codes.
The public API is re-exported here; submodules hold the details:

- :mod:`csc.ops` — stateless DFT-domain operations (the functional layer)
- :mod:`csc.cbpdn`, :mod:`csc.options` — the solver and its options
- :mod:`csc.sporco_compat` — SPORCO array layouts
- :mod:`csc.loggabor`, :mod:`csc.metrics`, :mod:`csc.prune`, :mod:`csc.analysis` — science
- :mod:`csc.io` — pickle-free dictionary and code files
- :mod:`csc.data`, :mod:`csc.preprocess`, :mod:`csc.models` — data and learning
"""

from . import analysis, data, io, metrics, ops, preprocess
from .cbpdn import CBPDNResult, ConvBPDN, IterationStats, encode
from .io import dictionary_metadata, load_dictionary, save_dictionary, shipped_dictionaries
from .loggabor import (
    KernelFit,
    LogGaborParams,
    angular_bandwidth_degrees,
    fit_kernel_params,
    loggabor_dictionary,
    loggabor_kernel,
    loggabor_kernels,
)
from .metrics import circular_variance, orientation_histogram, psnr, psnr_paper, sparseness
from .models import ResNet18, resnet18
from .options import CBPDNOptions
from .prune import prune
from .sporco_compat import from_sporco_layout, to_sporco_layout

__version__ = "0.1.0"

__all__ = [
    # solver
    "CBPDNOptions",
    "CBPDNResult",
    "ConvBPDN",
    "IterationStats",
    "encode",
    "from_sporco_layout",
    "to_sporco_layout",
    # dictionaries
    "KernelFit",
    "LogGaborParams",
    "angular_bandwidth_degrees",
    "dictionary_metadata",
    "fit_kernel_params",
    "load_dictionary",
    "loggabor_dictionary",
    "loggabor_kernel",
    "loggabor_kernels",
    "save_dictionary",
    "shipped_dictionaries",
    # metrics
    "circular_variance",
    "orientation_histogram",
    "prune",
    "psnr",
    "psnr_paper",
    "sparseness",
    # models
    "ResNet18",
    "resnet18",
    # submodules
    "analysis",
    "data",
    "io",
    "metrics",
    "ops",
    "preprocess",
]

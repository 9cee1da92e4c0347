"""csc — convolutional sparse coding on PyTorch.

Batched ADMM convolutional BPDN that gives SPORCO's answers on CPU and CUDA, log-Gabor
dictionaries, metrics and code statistics, data loaders and a ResNet-18 for codes.
The public API is re-exported here; submodules hold the details:

- :mod:`csc.core.ops` — stateless DFT-domain operations (the functional layer)
- :mod:`csc.core.cbpdn`, :mod:`csc.core.options` — the solver and its options
- :mod:`csc.core.sporco` — SPORCO array layouts
- :mod:`csc.dictionary.loggabor`, :mod:`csc.science.metrics`, :mod:`csc.science.prune`, :mod:`csc.science.analysis` — science
- :mod:`csc.dictionary.io` — pickle-free dictionary and code files
- :mod:`csc.learn.constraints`, :mod:`csc.learn.dictlearn`, :mod:`csc.learn.onlinecdl` — dictionary learning
- :mod:`csc.science.sweep`, :mod:`csc.cli.demo` — pruning sweeps and the built-in photograph demo
- :mod:`csc.pipeline.sources`, :mod:`csc.pipeline.preprocess`, :mod:`csc.pipeline.store`, :mod:`csc.pipeline.datasets` — data and code stores
- :mod:`csc.classify.models`, :mod:`csc.classify.train` — ResNet-18 and its training loop
- :mod:`csc.runtime.distributed` — torchrun / torch.distributed helpers (data-parallel encoding, learning, training)
"""

from csc import _compat

_compat.install()
from csc.core.cbpdn import CBPDNResult, ConvBPDN, IterationStats, encode
from csc.pipeline.datasets import PixelDataset, SparseCodeDataset
from csc.cli.demo import DemoConfig, DemoResult, run_demo
from csc.learn.dictlearn import DictLearn, DictLearnOptions, DictLearnResult, DictLearnStats, DictUpdateOptions
from csc.dictionary.io import dictionary_metadata, load_dictionary, save_dictionary, shipped_dictionaries
from csc.dictionary.loggabor import (
    KernelFit,
    LogGaborParams,
    angular_bandwidth_degrees,
    fit_kernel_params,
    loggabor_dictionary,
    loggabor_kernel,
    loggabor_kernels,
)
from csc.science.metrics import circular_variance, orientation_histogram, psnr, psnr_paper, sparseness
from csc.classify.models import ResNet18, resnet18
from csc.learn.onlinecdl import OnlineDictLearn, OnlineDictLearnOptions, OnlineDictLearnResult, OnlineStats
from csc.core.options import CBPDNOptions
from csc.science.prune import prune
from csc.pipeline.store import CodeStore, EncodeSettings, StoreError, encode_dataset, verify_store
from csc.science.sweep import PruningSweep, plot_pruning_curves, pruning_sweep
from csc.classify.train import TrainOptions, aggregate_runs, table_markdown
from csc.classify.train import train as train_classifier
from csc.core.sporco import from_sporco_layout, to_sporco_layout

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
    # dictionary learning
    "DictLearn",
    "DictLearnOptions",
    "DictLearnResult",
    "DictLearnStats",
    "DictUpdateOptions",
    "OnlineDictLearn",
    "OnlineDictLearnOptions",
    "OnlineDictLearnResult",
    "OnlineStats",
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
    "PruningSweep",
    "plot_pruning_curves",
    "pruning_sweep",
    # demo
    "DemoConfig",
    "DemoResult",
    "run_demo",
    # code stores and classifier
    "CodeStore",
    "EncodeSettings",
    "PixelDataset",
    "SparseCodeDataset",
    "StoreError",
    "TrainOptions",
    "aggregate_runs",
    "encode_dataset",
    "table_markdown",
    "train_classifier",
    "verify_store",
    "ResNet18",
    "resnet18",
    # submodules
    "analysis",
    "constraints",
    "data",
    "datasets",
    "demo",
    "dictlearn",
    "distributed",
    "io",
    "metrics",
    "onlinecdl",
    "ops",
    "preprocess",
    "store",
    "sweep",
    "train",
]


def __getattr__(name: str):
    """``csc.metrics``, ``csc.dictlearn`` …: the old flat module names, imported on first use."""
    import importlib

    new = _compat.new_name(f"csc.{name}")
    if new is None:
        raise AttributeError(f"module 'csc' has no attribute {name!r}")
    return importlib.import_module(new)

"""csc — convolutional sparse coding on PyTorch.

Batched ADMM convolutional BPDN that gives SPORCO's answers on CPU and CUDA, log-Gabor
dictionaries, metrics and code statistics, data loaders and a ResNet-18 for codes.
The public API is re-exported here; submodules hold the details:

- :mod:`csc.ops` — stateless DFT-domain operations (the functional layer)
- :mod:`csc.cbpdn`, :mod:`csc.options` — the solver and its options
- :mod:`csc.sporco_compat` — SPORCO array layouts
- :mod:`csc.loggabor`, :mod:`csc.metrics`, :mod:`csc.prune`, :mod:`csc.analysis` — science
- :mod:`csc.io` — pickle-free dictionary and code files
- :mod:`csc.constraints`, :mod:`csc.dictlearn`, :mod:`csc.onlinecdl` — dictionary learning
- :mod:`csc.sweep`, :mod:`csc.demo` — pruning sweeps and the built-in photograph demo
- :mod:`csc.data`, :mod:`csc.preprocess`, :mod:`csc.store`, :mod:`csc.datasets` — data and code stores
- :mod:`csc.models`, :mod:`csc.train` — ResNet-18 and its training loop
- :mod:`csc.distributed` — torchrun / torch.distributed helpers (data-parallel encoding, learning, training)
"""

from . import (
    analysis,
    constraints,
    data,
    datasets,
    demo,
    dictlearn,
    distributed,
    io,
    metrics,
    onlinecdl,
    ops,
    preprocess,
    store,
    sweep,
    train,
)
from .cbpdn import CBPDNResult, ConvBPDN, IterationStats, encode
from .datasets import PixelDataset, SparseCodeDataset
from .demo import DemoConfig, DemoResult, run_demo
from .dictlearn import DictLearn, DictLearnOptions, DictLearnResult, DictLearnStats, DictUpdateOptions
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
from .onlinecdl import OnlineDictLearn, OnlineDictLearnOptions, OnlineDictLearnResult, OnlineStats
from .options import CBPDNOptions
from .prune import prune
from .store import CodeStore, EncodeSettings, StoreError, encode_dataset, verify_store
from .sweep import PruningSweep, plot_pruning_curves, pruning_sweep
from .train import TrainOptions, aggregate_runs, table_markdown
from .train import train as train_classifier
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

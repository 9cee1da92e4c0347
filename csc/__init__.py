"""csc — convolutional sparse coding on PyTorch.

Batched ADMM convolutional BPDN that gives SPORCO's answers on CPU and CUDA, log-Gabor
dictionaries, metrics and code statistics, data loaders and a ResNet-18 for codes: the
tools of Ladret, Casanova & Perrinet, "Kernel heterogeneity improves sparseness of natural
images representations" (the paper whose sections, equations and figures the docstrings cite).
:data:`__all__` is the curated public API; the layers hold the details:

- :mod:`csc.core` — the solver (:mod:`csc.problems.cbpdn`), its options, SPORCO array layouts
  and the stateless DFT-domain operations (:mod:`csc.core.ops`)
- :mod:`csc.backends` — the torch loop and the fused numba/FFTW CPU kernels
- :mod:`csc.learn` — batch and online dictionary learning, kernel constraints
- :mod:`csc.dictionary` — log-Gabor kernels, pickle-free dictionary and code files
- :mod:`csc.pipeline` — image sources, preprocessing, the sparse code store and its datasets
- :mod:`csc.classify` — the ResNet-18 for codes and its training loop
- :mod:`csc.science` — metrics, pruning, pruning sweeps, coefficient and kernel analysis, the
  built-in photograph demo (:mod:`csc.science.demo`)
- :mod:`csc.runtime` — device resolution and torchrun / torch.distributed helpers
- :mod:`csc.cli` — the ``csc`` command, one module per sub-command
- :mod:`csc.nn` — sparse coding as a PyTorch layer, differentiated implicitly at the solution

The solver, the learners, the dictionaries and the metrics load with ``import csc``. The
code store and datasets, the classifier and its training loop, the analysis, the pruning
sweeps and the demo load on first use of one of their names (``csc.CodeStore``,
``csc.resnet18``, ``csc.run_demo`` …), as do the layer packages (``csc.pipeline`` …) and
the module names of the flat layout before the layers (``csc.metrics``, ``csc.dictlearn``,
``csc.data`` …, see :mod:`csc._compat`; deprecated, they warn and go in csc 0.3).
"""

from csc import _compat

_compat.install()
from csc.problems.cbpdn import CBPDNResult, ConvBPDN, IterationStats, encode
from csc.problems.joint import CBPDNJointOptions, ConvBPDNJoint
from csc.problems.maskdcpl import ConvBPDNMaskDcpl
from csc.problems.ams import AddMaskSim  # not in __all__ (capped): csc.AddMaskSim, csc.problems.ams.AddMaskSim
from csc.problems.tv import TVL2Denoise, TVL2Options  # not in __all__ (capped): csc.TVL2Denoise, csc.problems.tv
from csc.problems.constrained import (  # not in __all__ (capped)
    ConvBPDNProjL1, ConvMinL1InL2Ball, MinL1InL2BallOptions, ProjL1Options)
from csc.problems.inhib import ConvBPDNInhib, InhibOptions  # not in __all__ (capped): csc.ConvBPDNInhib
from csc.problems.proddict import (  # not in __all__ (capped)
    ConvProdDictBPDN, ConvProdDictL1L1Grd, ConvProdDictL1L1GrdJoint, L1L1GrdJointOptions)
from csc.core.options import CBPDNOptions, FISTAOptions, GradRegOptions, L1L1GrdOptions, MaskDcplOptions
from csc.problems.fista import ConvBPDNFISTA, FISTAResult, FISTAStats  # the result and stats are not in __all__
from csc.problems.path import PathResult, lambda_path
from csc.problems.variants import (  # the stats classes are not in __all__
    ConvBPDNGradReg, ConvElasticNet, ConvL1L1Grd, ElasticNetStats, GradRegStats, L1L1GrdStats)
from csc.core.sporco import from_sporco_layout, to_sporco_layout
from csc.dictionary.io import dictionary_metadata, load_dictionary, save_dictionary, shipped_dictionaries
from csc.dictionary.tile import plot_dictionary, tile_dictionary
from csc.dictionary.loggabor import (
    KernelFit,
    LogGaborParams,
    angular_bandwidth_degrees,
    fit_kernel_params,
    loggabor_dictionary,
    loggabor_kernel,
    loggabor_kernels,
)
from csc.learn.dictlearn import DictLearn, DictLearnOptions, DictLearnResult, DictLearnStats, DictUpdateOptions
from csc.learn.ccmod import (  # not in __all__ (capped): csc.ConvCnstrMOD, csc.learn.ccmod.ConvCnstrMOD
    ConvCnstrMOD, ConvCnstrMODConsensus, ConvCnstrMODIterSM, DictUpdateResult, DictUpdateStats)
from csc.learn.onlinecdl import OnlineDictLearn, OnlineDictLearnOptions, OnlineDictLearnResult, OnlineStats
from csc.science.metrics import circular_variance, orientation_histogram, psnr, psnr_paper, sparseness
from csc.science.prune import prune

__version__ = "0.1.0"

__all__ = [
    # solver
    "CBPDNOptions",
    "CBPDNResult",
    "ConvBPDN",
    "ConvBPDNGradReg",
    "ConvElasticNet",
    "GradRegOptions",
    "ConvL1L1Grd",
    "L1L1GrdOptions",
    "ConvBPDNMaskDcpl",
    "MaskDcplOptions",
    "IterationStats",
    "encode",
    "ConvBPDNFISTA",
    "FISTAOptions",
    "lambda_path",
    "ConvBPDNJoint",
    "CBPDNJointOptions",
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
    "dictionary_metadata",
    "fit_kernel_params",
    "load_dictionary",
    "loggabor_dictionary",
    "loggabor_kernel",
    "save_dictionary",
    "shipped_dictionaries",
    "tile_dictionary",
    "plot_dictionary",
    # metrics and pruning
    "circular_variance",
    "orientation_histogram",
    "prune",
    "psnr",
    "psnr_paper",
    "sparseness",
    "PruningSweep",
    "pruning_sweep",
    # code stores and the classifier (lazy)
    "CodeStore",
    "SparseCodeDataset",
    "encode_dataset",
    "resnet18",
    # demo (lazy)
    "DemoConfig",
    "run_demo",
]

#: name → (module, attribute) of the public names that load on first use. Not all are in
#: ``__all__``: the rest are kept so that ``csc.NAME`` goes on resolving as it did.
_LAZY: dict[str, tuple[str, str]] = {
    **{n: ("csc.pipeline.store", n) for n in ("CodeStore", "EncodeSettings", "StoreError", "encode_dataset",
                                               "verify_store")},
    **{n: ("csc.pipeline.datasets", n) for n in ("PixelDataset", "SparseCodeDataset")},
    **{n: ("csc.classify.models", n) for n in ("ResNet18", "resnet18")},
    **{n: ("csc.classify.train", n) for n in ("TrainOptions", "aggregate_runs", "table_markdown")},
    "train_classifier": ("csc.classify.train", "train"),
    **{n: ("csc.science.sweep", n) for n in ("PruningSweep", "plot_pruning_curves", "pruning_sweep")},
    **{n: ("csc.science.demo", n) for n in ("DemoConfig", "DemoResult", "run_demo")},
}

#: the layer packages (``csc.nn``: the PyTorch layer), and ``csc.dictionaries`` (the shipped dictionary files)
_PACKAGES = ("core", "backends", "learn", "dictionary", "pipeline", "classify", "science", "runtime", "cli",
             "dictionaries", "nn")


def __getattr__(name: str):
    """Lazy public names (:data:`_LAZY`), the layer packages and the old flat module names
    (``csc.metrics``, ``csc.dictlearn`` … via :func:`csc._compat.new_name`, with a
    :class:`DeprecationWarning`), imported on first use."""
    import importlib

    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    if name in _PACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    new = _compat.new_name(f"csc.{name}")
    if new is None:
        raise AttributeError(f"module 'csc' has no attribute {name!r}")
    _compat.warn_moved(f"csc.{name}", new, stacklevel=2)
    return importlib.import_module(new)


def __dir__() -> list[str]:
    # the old module names (deprecated) are left out, so that introspection does not warn
    return sorted(set(globals()) | set(_LAZY) | set(_PACKAGES))

"""The paper's experiments with the authors' own settings.

Ladret, Casanova & Perrinet, "Kernel heterogeneity improves sparseness of natural images
representations"; the settings are read from the authors' code (hugoladret/epistemic_CSC:
``cbpdn_paramscan.py``, ``cbpdn_learning.py``, ``deep_learning_main.py``,
``deep_learning_train.py``), one typed dataclass per experiment, every field documented
with the authors' value as its default. Where this machine cannot afford the authors'
size, the field says what was changed and the run records it.

- :class:`Fig2Protocol`: coding natural images (Fig. 2, 4, 5, 6).
- :class:`OnlineLearningProtocol`: the post-learning dictionaries, SPORCO's online CDL
  (``OnlineConvBPDNDictLearn``) started from each log-Gabor dictionary; :func:`learn_online`
  runs it, resumable.
- :class:`EncodingProtocol`, :class:`ClassifierProtocol`: Table 1's encoding and ResNet-18.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from csc.core.checks import check_bool, check_int, check_number
from csc.core.options import CBPDNOptions

__all__ = [
    "TRAIN_PHOTOGRAPHS",
    "HELD_OUT_PHOTOGRAPHS",
    "Fig2Protocol",
    "OnlineLearningProtocol",
    "EncodingProtocol",
    "ClassifierProtocol",
    "learn_online",
]

#: Built-in photographs the post-learning dictionaries are learned from, and the two held
#: out to measure them (the split of the shipped batch-learned dictionaries).
TRAIN_PHOTOGRAPHS = ("brick", "chelsea", "clock", "coffee", "coins", "grass", "gravel", "moon", "rocket")
HELD_OUT_PHOTOGRAPHS = ("camera", "astronaut")


def _fields(obj) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


@dataclass(frozen=True)
class Fig2Protocol:
    """Coding natural images (``cbpdn_paramscan.py``): SPORCO's ``ConvBPDN`` on LCN images.

    Attributes
    ----------
    crop : int
        Side of the central square crop (256).
    preprocess : str
        ``"lcn"``: local contrast normalisation (SPORCO's ``local_contrast_normalise``).
    lmbdas : tuple of float
        λ of the two parts of the figure (1e-3 and 1e-2).
    max_iter : int
        ``MaxMainIter`` (100).
    rel_stop_tol : float
        ``RelStopTol`` (1e-4).
    l1_weight : float
        ``L1Weight`` (1).
    """

    crop: int = 256
    preprocess: str = "lcn"
    lmbdas: tuple[float, ...] = (1e-3, 1e-2)
    max_iter: int = 100
    rel_stop_tol: float = 1e-4
    l1_weight: float = 1.0


@dataclass(frozen=True)
class OnlineLearningProtocol:
    """Post-learning dictionaries (``cbpdn_learning.learn_from_img``).

    SPORCO's ``OnlineConvBPDNDictLearn`` from a log-Gabor dictionary, one image per step,
    step size η_i = eta_a / (i + eta_b); each step's coding is CBPDN with fixed ρ.

    Attributes
    ----------
    steps : int
        Single-image steps (800).
    lmbda : float
        λ (0.01).
    max_iter, rho, relax, rel_stop_tol : int, float, float, float
        Coding step: ``MaxMainIter`` 300, ``rho`` 10 with ``AutoRho`` off, ``RelaxParam``
        1.8, ``RelStopTol`` 1e-2.
    eta_a, eta_b : float
        100 and 1000.
    crop : int or None
        Side of a random crop per step. The authors code whole images; 64 here, which makes
        800 steps of 300 iterations about 15 minutes per dictionary on one CPU core
        (None: whole images).
    preprocess : str
        ``"lcn"``. The authors also whiten (SLIP) and apply a circular mask before LCN; csc
        has neither, so the images are LCN only.
    images : tuple of str
        Built-in photographs drawn from (:data:`TRAIN_PHOTOGRAPHS`).
    seed : int
        Seed of the image and crop draws (42, the authors').
    """

    steps: int = 800
    lmbda: float = 0.01
    max_iter: int = 300
    rho: float = 10.0
    relax: float = 1.8
    rel_stop_tol: float = 1e-2
    eta_a: float = 100.0
    eta_b: float = 1000.0
    crop: int | None = 64
    preprocess: str = "lcn"
    images: tuple[str, ...] = TRAIN_PHOTOGRAPHS
    seed: int = 42

    def cbpdn_options(self) -> CBPDNOptions:
        """The coding step's options (SPORCO's ``CBPDN`` sub-dict of the authors' call)."""
        from csc.learn.onlinecdl import ONLINE_CBPDN_DEFAULTS

        return ONLINE_CBPDN_DEFAULTS.replace(max_iter=self.max_iter, rho=self.rho, auto_rho=False,
                                             relax=self.relax, rel_stop_tol=self.rel_stop_tol)

    def learner_options(self, dtype: torch.dtype = torch.float32, device=None):
        from csc.learn.onlinecdl import OnlineDictLearnOptions

        return OnlineDictLearnOptions(eta_a=self.eta_a, eta_b=self.eta_b, cbpdn=self.cbpdn_options(),
                                      dtype=dtype, device=device)


@dataclass(frozen=True)
class EncodingProtocol:
    """Table 1's dataset encoding (``deep_learning_main.py``, ``cbpdn_params``).

    Attributes
    ----------
    upscale : int
        Images are upscaled by this factor before coding (``nscale`` 2: CIFAR-10 32 → 64,
        Fashion-MNIST 28 → 56).
    preprocess : str
        ``"lcn"``.
    lmbda, l1_weight : float
        0.01 and ``L1Weight`` 0.5.
    max_iter, rel_stop_tol, relax, rsdl_ratio : int, float, float, float
        ``MaxMainIter`` 250, ``RelStopTol`` 0.1, ``RelaxParam`` 1.8, ``AutoRho.RsdlRatio`` 1.05.
    """

    upscale: int = 2
    preprocess: str = "lcn"
    lmbda: float = 0.01
    l1_weight: float = 0.5
    max_iter: int = 250
    rel_stop_tol: float = 0.1
    relax: float = 1.8
    rsdl_ratio: float = 1.05

    def __post_init__(self) -> None:
        """Every field checked here (``csc paper table1`` refuses a bad one before it starts)."""
        from csc.pipeline.preprocess import check_preprocess_kind

        check_int("upscale", self.upscale, 1)
        check_preprocess_kind("preprocess", self.preprocess)
        check_number("lmbda", self.lmbda, minimum=0)
        check_number("l1_weight", self.l1_weight, minimum=0)
        check_int("max_iter", self.max_iter, 1)
        check_number("rel_stop_tol", self.rel_stop_tol, minimum=0)
        check_number("relax", self.relax, minimum=0, strict=True)
        check_number("rsdl_ratio", self.rsdl_ratio, minimum=1)


@dataclass(frozen=True)
class ClassifierProtocol:
    """Table 1's ResNet-18 (``deep_learning_train.ResNet18``, ``deep_learning_main.py``).

    Attributes
    ----------
    stem : str
        ``"cifar"``: 3×3 stride-1 first convolution taking the 144 code channels, no max pool.
    dropout : float
        ``Dropout2d`` after the first convolution (0.5).
    size : int
        Codes (and pixels) resized to size × size at load (32).
    hflip : bool
        Random horizontal flips in training (True).
    normalise : tuple of float
        ``Normalize(mean=0.5, std=0.225)``.
    lr, weight_decay : float
        Adam, lr 2e-4 (also OneCycleLR's max), weight decay 5e-2 (torch ``Adam``'s L2 term).
    betas : tuple of float
        Adam's (β1, β2): torch's defaults (0.9, 0.999), which the authors' code keeps (the
        paper's text gives 0.99 for β2).
    schedule : str
        ``"onecycle"``: OneCycleLR over all steps of all epochs.
    epochs, batch_size : int
        100 and 800.
    seeds : int
        Runs per setting (4).
    prune : tuple
        Relative pruning ``|x| < max|x| / m`` for m in (none, 4, 2): c = None, 0.25, 0.5.
    """

    stem: str = "cifar"
    dropout: float = 0.5
    size: int = 32
    hflip: bool = True
    normalise: tuple[float, float] = (0.5, 0.225)
    lr: float = 2e-4
    weight_decay: float = 5e-2
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = "onecycle"
    epochs: int = 100
    batch_size: int = 800
    seeds: int = 4
    prune: tuple[float | None, ...] = (None, 0.25, 0.5)

    def __post_init__(self) -> None:
        """Every field checked here, so that ``csc paper table1`` refuses a bad one before it
        encodes anything (not after hours of encoding, when training starts)."""
        from csc.science.prune import check_threshold

        object.__setattr__(self, "hflip", check_bool("hflip", self.hflip))
        if self.stem not in ("imagenet", "cifar"):
            raise ValueError(f"stem: expected 'imagenet' or 'cifar', got {self.stem!r}")
        if self.schedule not in ("constant", "onecycle"):
            raise ValueError(f"schedule: expected 'constant' or 'onecycle', got {self.schedule!r}")
        check_number("dropout", self.dropout, minimum=0, maximum=1)
        check_number("lr", self.lr, minimum=0, strict=True)
        check_number("weight_decay", self.weight_decay, minimum=0)
        for name, minimum in (("size", 1), ("epochs", 1), ("batch_size", 1), ("seeds", 1)):
            check_int(name, getattr(self, name), minimum)
        _check_pair("betas", self.betas)
        for b in self.betas:
            check_number("betas", b, minimum=0, maximum=1)
        _check_pair("normalise", self.normalise)
        check_number("normalise", self.normalise[0])
        check_number("normalise", self.normalise[1], minimum=0, strict=True)
        if not isinstance(self.prune, tuple) or not self.prune:
            raise ValueError(f"prune: expected a tuple of relative thresholds (None: no pruning), got {self.prune!r}")
        for c in self.prune:
            if c is not None:
                check_threshold("prune", c, relative=True)


def _check_pair(name: str, v) -> None:
    if not isinstance(v, (tuple, list)) or len(v) != 2:
        raise ValueError(f"{name}: expected two numbers, got {v!r}")


def _training_signals(protocol: OnlineLearningProtocol, dtype: torch.dtype) -> list[torch.Tensor]:
    from csc.pipeline.preprocess import Preprocess
    from csc.pipeline.sources.folders import builtin_photographs

    photos = builtin_photographs(list(protocol.images))
    pre = Preprocess(protocol.preprocess)
    return [pre.forward(torch.from_numpy(np.asarray(im)).to(torch.float64))[0].to(dtype) for im in photos.images]


def learn_online(init: str, out: str | Path, protocol: OnlineLearningProtocol = OnlineLearningProtocol(), *,
                 dtype: torch.dtype = torch.float32, device=None, checkpoint_every: int = 25,
                 progress: bool = True) -> Path:
    """Learn a post-learning dictionary the authors' way from the dictionary ``init``.

    Writes ``out`` (the dictionary, with the protocol in its metadata), ``<stem>.stats.json``
    and ``<stem>.objective.png``; checkpoints to ``<stem>.ckpt.npz`` every
    ``checkpoint_every`` steps and resumes from it when called again.
    """
    progress = check_bool("progress", progress)
    from csc.dictionary.io import load_dictionary, save_dictionary
    from csc.learn.dictlearn import plot_objective
    from csc.learn.onlinecdl import ImageSampler, OnlineDictLearn
    from csc.runtime.outputs import check_given, prepare_file_parent

    out = check_given(out, "out")
    prepare_file_parent(out, "out")
    D0 = load_dictionary(init, dtype=dtype)
    sampler = ImageSampler(_training_signals(protocol, dtype), batch_size=1, crop=protocol.crop,
                           generator=torch.Generator().manual_seed(protocol.seed))
    learner = OnlineDictLearn(D0, protocol.lmbda, protocol.learner_options(dtype, device))
    result = learner.fit(sampler, protocol.steps, checkpoint=out.with_name(out.stem + ".ckpt.npz"),
                         checkpoint_every=checkpoint_every, resume=True, progress=progress)
    stats = result.stats
    meta = {"name": out.stem, "made_by": "csc paper learn", "method": "online", "init": str(init),
            "image_names": list(protocol.images), "preprocess": protocol.preprocess, "crop": protocol.crop,
            "protocol": {k: list(v) if isinstance(v, tuple) else v for k, v in _fields(protocol).items()},
            "dtype": str(dtype).replace("torch.", ""), "lmbda": protocol.lmbda, "steps": protocol.steps,
            "final_objective": float(stats.objective[-1]) if len(stats) else None}
    path = save_dictionary(out, result.dictionary.detach().cpu(), meta)
    out.with_name(out.stem + ".stats.json").write_text(json.dumps(stats.to_dict()))
    plot_objective(stats, out.with_name(out.stem + ".objective.png"),
                   title=f"online CDL from {init} (authors' protocol)")
    return path

"""Options of the dictionary learners, SPORCO's defaults, and their SPORCO option names.

:class:`DictLearnOptions` (the batch learner, SPORCO ``ConvBPDNDictLearn``) with its
dictionary step's :class:`DictUpdateOptions` (``CCMOD``), :class:`OnlineDictLearnOptions`
(SPORCO ``OnlineConvBPDNDictLearn``), the coding options SPORCO's learners default to
(:data:`DICTLEARN_CBPDN_DEFAULTS`, :data:`DICTLEARN_MASKDCPL_DEFAULTS`,
:data:`ONLINE_CBPDN_DEFAULTS`), and the name tables that read SPORCO's nested option dicts
(:data:`CCMOD`, :data:`DICTLEARN`, :data:`ONLINE`), on the rules of
:mod:`csc.core.sporco_options`. These names were in :mod:`csc.core.options` before; read there
they still work, with a :class:`DeprecationWarning` (until :data:`csc._compat.REMOVAL`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from functools import partial
from typing import Any, Mapping

import numpy as np
import torch

from csc.core.checks import check_bool, check_int, check_number
from csc.core.options import CBPDNOptions, MaskDcplOptions, _as_dtype, check_admm_parameters
from csc.core.sporco_options import (IGNORED, IGNORED_FLAG, VERBOSE, Field, Flag, Nested, Only, SporcoTable,
                                     SubOptions, autorho_rules, refused, unset)
from csc.learn.constraints import KernelConstraint
from csc.runtime.device import resolve_device

__all__ = ["DictUpdateOptions", "DictLearnOptions", "OnlineDictLearnOptions", "DICTLEARN_CBPDN_DEFAULTS",
           "DICTLEARN_MASKDCPL_DEFAULTS", "ONLINE_CBPDN_DEFAULTS", "CCMOD", "DICTLEARN", "ONLINE", "ONLINE_MASKED"]


# ================================================================ coding defaults
#: SPORCO's learners' ``AutoRho`` for the coding step: every 10 iterations, a fixed
#: multiplier 2, ratio 10, target 1
_LEARNER_AUTORHO = {"Period": 10, "AutoScaling": False, "RsdlRatio": 10.0, "Scaling": 2.0, "RsdlTarget": 1.0}

#: CBPDN options of SPORCO's batch learner (``dictlrn.cbpdndl.ConvBPDNOptionsDefaults``):
#: one ADMM iteration per outer iteration, AutoRho every 10 iterations with a fixed
#: multiplier 2, ratio 10, target 1.
DICTLEARN_CBPDN_DEFAULTS = CBPDNOptions(
    max_iter=1, rho_period=10, auto_scaling=False, rsdl_ratio=10.0, rho_scaling=2.0, rsdl_target=1.0
)
_DICTLEARN_CBPDN_SPORCO = {"MaxMainIter": 1, "AutoRho": _LEARNER_AUTORHO}

#: Coding options of SPORCO's masked batch learner (``dictlrn.cbpdndlmd.ConvBPDNMaskOptionsDefaults('admm')``):
#: :class:`MaskDcplOptions`' defaults (ρ₀ = 1, adaptive ρ off; period 10, multiplier 2, ratio 10,
#: target 1, no auto-scaling when on) with one ADMM iteration per outer iteration.
DICTLEARN_MASKDCPL_DEFAULTS = MaskDcplOptions(max_iter=1)

#: CBPDN options of SPORCO's online learner (``OnlineConvBPDNDictLearn.Options``).
ONLINE_CBPDN_DEFAULTS = CBPDNOptions(
    max_iter=100, rho_period=10, auto_scaling=False, rsdl_ratio=10.0, rho_scaling=2.0, rsdl_target=1.0
)
_ONLINE_CBPDN_SPORCO = {"MaxMainIter": 100, "AutoRho": _LEARNER_AUTORHO}

_DMETHODS = ("pgm", "cns")


def _check_learner(opts, why: str = "", masked_ok: bool = False) -> None:
    """The checks both learners' options share: the dtype (made a torch dtype), the device,
    and the coding options: plain :class:`CBPDNOptions` (a variant's, e.g. GradRegOptions,
    would be ignored; with ``masked_ok`` also :class:`MaskDcplOptions`, the masked batch
    learner's) with at least one iteration (``why`` says what an iteration is)."""
    object.__setattr__(opts, "dtype", _as_dtype(opts.dtype))
    if opts.device is not None:
        resolve_device(opts.device, arg="device")
    if type(opts.cbpdn) is not CBPDNOptions and not (masked_ok and type(opts.cbpdn) is MaskDcplOptions):
        raise TypeError(f"cbpdn: expected CBPDNOptions{' or MaskDcplOptions' if masked_ok else ''}, "
                        f"got {type(opts.cbpdn).__name__}")
    if opts.cbpdn.max_iter < 1:
        raise ValueError(f"cbpdn: max_iter must be >= 1{why}")


# ============================================================================ options
@dataclass(frozen=True)
class DictUpdateOptions:
    """Options of the dictionary step (SPORCO's ``CCMOD`` options), SPORCO's effective defaults.

    Attributes
    ----------
    max_iter : int
        Dictionary iterations per outer iteration (``MaxMainIter``, 1).
    L : float or None
        ``'pgm'``: inverse gradient step 1/η (``L``); None gives 1.0, SPORCO's effective
        default (its documentation says 14 × number of images).
    rel_stop_tol, abs_stop_tol : float
        Stopping tolerances (``RelStopTol`` 1e-3, ``AbsStopTol`` 0); only matter when
        ``max_iter > 1``.
    rho : float or None
        ``'cns'``: ADMM penalty (``rho``); None gives 1.0, SPORCO's effective default
        (documented as the number of images).
    relax : float
        ``'cns'``: over-relaxation (``RelaxParam``, 1.8).
    auto_rho, rho_period, rho_scaling, rsdl_ratio, rsdl_target, auto_scaling, std_residuals
        ``'cns'``: adaptive ρ (``AutoRho.*``): off, 10, 2, 10, 1, off, off.
    zero_mean : bool
        Zero-mean kernels (``ZeroMean``, False).
    nonneg : bool
        Non-negative kernels (csc extension, False).
    """

    max_iter: int = 1
    L: float | None = None
    rel_stop_tol: float = 1e-3
    abs_stop_tol: float = 0.0
    rho: float | None = None
    relax: float = 1.8
    auto_rho: bool = False
    rho_period: int = 10
    rho_scaling: float = 2.0
    rsdl_ratio: float = 10.0
    rsdl_target: float = 1.0
    auto_scaling: bool = False
    std_residuals: bool = False
    zero_mean: bool = False
    nonneg: bool = False

    def __post_init__(self) -> None:
        check_int("max_iter", self.max_iter, 1)
        check_admm_parameters(self)
        for name in ("L", "rho"):
            check_number(name, getattr(self, name), minimum=0, strict=True, none=True)
        check_number("rsdl_target", self.rsdl_target, minimum=0, strict=True)
        for name in ("zero_mean", "nonneg"):
            object.__setattr__(self, name, check_bool(name, getattr(self, name)))
        KernelConstraint((2, 2), self.zero_mean, self.nonneg)  # validates the combination


@dataclass(frozen=True)
class DictLearnOptions:
    """Options of :class:`csc.DictLearn` (SPORCO ``ConvBPDNDictLearn.Options``), SPORCO's defaults.

    Attributes
    ----------
    max_iter : int
        Outer iterations (``MaxMainIter``, 1000).
    dmethod : {'pgm', 'cns'}
        Dictionary step (SPORCO's ``dmethod``, default ``'pgm'``).
    accurate_dfid : bool
        Recompute the objective after the dictionary step (``AccurateDFid``, False).
    cbpdn : CBPDNOptions
        Coding-step options (``CBPDN``); default :data:`DICTLEARN_CBPDN_DEFAULTS`.
        ``record_stats``, ``sync_interval``, ``dtype`` and ``device`` are not used here;
        ``backend`` chooses the back end of the whole learner (module docstring).
        ``l1_weight`` may be a scalar or one weight per kernel (K,).
    ccmod : DictUpdateOptions
        Dictionary-step options (``CCMOD``).
    dtype : torch.dtype or None
        Working dtype; None uses the initial dictionary's.
    device : torch.device, str or None
        Working device; None: the images' device (a tensor's; an array's, the initial
        dictionary's), the initial dictionary copied there (:class:`csc.DictLearn`).
    """

    max_iter: int = 1000
    dmethod: str = "pgm"
    accurate_dfid: bool = False
    cbpdn: CBPDNOptions = DICTLEARN_CBPDN_DEFAULTS
    ccmod: DictUpdateOptions = field(default_factory=DictUpdateOptions)
    dtype: torch.dtype | None = None
    device: torch.device | str | None = None

    def __post_init__(self) -> None:
        if self.dmethod not in _DMETHODS:
            raise ValueError(f"dmethod: expected one of {_DMETHODS}, got {self.dmethod!r}")
        check_int("max_iter", self.max_iter, 0)
        object.__setattr__(self, "accurate_dfid", check_bool("accurate_dfid", self.accurate_dfid))
        _check_learner(self, " (coding iterations per outer iteration)", masked_ok=True)
        if not isinstance(self.ccmod, DictUpdateOptions):
            raise TypeError(f"ccmod: expected DictUpdateOptions, got {type(self.ccmod).__name__}")

    def replace(self, **changes) -> "DictLearnOptions":
        """Return a copy with the given fields changed."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able description (for metadata and checkpoints)."""
        return _jsonable(self)

    @classmethod
    def from_sporco(cls, opt: Mapping[str, Any] | None = None, dmethod: str = "pgm", masked: bool = False,
                    **overrides) -> "DictLearnOptions":
        """Build options from SPORCO's nested ``ConvBPDNDictLearn`` option dict.

        ``opt`` may hold ``MaxMainIter``, ``AccurateDFid``, ``DictSize`` (None),
        ``DataType``, display options (ignored), and the nested ``CBPDN`` and ``CCMOD``
        dicts (merged over SPORCO's learner defaults, as SPORCO does). ``xmethod`` is
        always ``'admm'``. Unknown names and unsupported features (PGM backtracking,
        step-size policies, monotone PGM, ``Callback``, initial values) raise ``ValueError``.
        ``overrides`` (csc field names) are applied last. The names are :data:`DICTLEARN`
        (``CCMOD``'s: :data:`CCMOD`). With ``masked``, ``opt`` is SPORCO's
        ``ConvBPDNMaskDictLearn.Options`` dict, whose ``CBPDN`` (the ``ConvBPDNMaskDcpl`` options,
        merged over :data:`DICTLEARN_MASKDCPL_DEFAULTS`) becomes ``cbpdn`` as a
        :class:`csc.MaskDcplOptions`: :meth:`csc.DictLearn.solve` with a mask then codes with it.
        """
        if dmethod not in _DMETHODS:
            raise ValueError(f"dmethod: expected one of {_DMETHODS}, got {dmethod!r}")
        table = (DICTLEARN_MASKED if check_bool("masked", masked) else DICTLEARN)[dmethod]
        return table.build(cls, opt, {"dmethod": dmethod, **overrides})


@dataclass(frozen=True)
class OnlineDictLearnOptions:
    """Options of :class:`csc.OnlineDictLearn` (SPORCO ``OnlineConvBPDNDictLearn.Options``).

    Attributes
    ----------
    eta_a, eta_b : float
        Step size η_i = eta_a / (i + eta_b) (SPORCO: 10, 5; the paper's authors: 100, 1000).
    zero_mean : bool
        Zero-mean kernels (``ZeroMean``, False).
    nonneg : bool
        Non-negative kernels (csc extension, False).
    cbpdn : CBPDNOptions
        Coding-step options; default :data:`ONLINE_CBPDN_DEFAULTS`. ``l1_weight`` may be
        a scalar or (K,); ``record_stats``, ``sync_interval``, ``dtype`` and ``device``
        are not used.
    cbpdn_mask : MaskDcplOptions
        Coding-step options of the steps given a mask (mask decoupling, SPORCO
        ``OnlineConvBPDNMaskDictLearn``'s ``CBPDN``); default :class:`MaskDcplOptions`'
        (SPORCO's: ρ₀ = 1, adaptive ρ off, 1000 iterations, relative tolerance 1e-3).
    dtype, device
        Working dtype and device; dtype None: the initial dictionary's; device None: each
        minibatch's (a tensor's; an array's, the dictionary's), the learner's dictionary
        moved there (:class:`csc.OnlineDictLearn`).
    """

    eta_a: float = 10.0
    eta_b: float = 5.0
    zero_mean: bool = False
    nonneg: bool = False
    cbpdn: CBPDNOptions = ONLINE_CBPDN_DEFAULTS
    cbpdn_mask: MaskDcplOptions = field(default_factory=MaskDcplOptions)
    dtype: torch.dtype | None = None
    device: torch.device | str | None = None

    def __post_init__(self) -> None:
        if type(self.cbpdn_mask) is not MaskDcplOptions:
            raise TypeError(f"cbpdn_mask: expected MaskDcplOptions, got {type(self.cbpdn_mask).__name__}")
        if self.cbpdn_mask.max_iter < 1:
            raise ValueError("cbpdn_mask: max_iter must be >= 1")
        for name in ("eta_a", "eta_b"):
            check_number(name, getattr(self, name), minimum=0, strict=True)
        for name in ("zero_mean", "nonneg"):
            object.__setattr__(self, name, check_bool(name, getattr(self, name)))
        _check_learner(self)
        KernelConstraint((2, 2), self.zero_mean, self.nonneg)

    def replace(self, **changes) -> "OnlineDictLearnOptions":
        """Return a copy with the given fields changed."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_sporco(cls, opt: Mapping[str, Any] | None = None, masked: bool = False,
                    **overrides) -> "OnlineDictLearnOptions":
        """Build options from SPORCO's ``OnlineConvBPDNDictLearn`` option dict (``eta_a``,
        ``eta_b``, ``ZeroMean``, ``DataType``, ``DictSize`` (None), ``CUDA_CBPDN`` (False),
        display options, and ``CBPDN`` merged over the online learner's defaults); with
        ``masked``, SPORCO's ``OnlineConvBPDNMaskDictLearn`` dict, whose ``CBPDN`` (the
        ``ConvBPDNMaskDcpl`` options) becomes ``cbpdn_mask``. ``overrides`` (csc field names)
        are applied last; the names are :data:`ONLINE` (:data:`ONLINE_MASKED`)."""
        return (ONLINE_MASKED if check_bool("masked", masked) else ONLINE).build(cls, opt, overrides)


# ====================================================================== SPORCO's names
def _falsy(value) -> bool:
    return not value


def _nesterov(value) -> bool:
    return value is None or type(value).__name__ == "MomentumNesterov"


_NOT_SUPPORTED = "SPORCO option not supported by csc (must be None)"

#: the rows of SPORCO's ``CCMOD`` options both dictionary steps share (None: SPORCO's default)
_CCMOD_COMMON = {
    "MaxMainIter": Field("max_iter", skip_none=True),
    "RelStopTol": Field("rel_stop_tol", skip_none=True),
    "ZeroMean": Flag(Field("zero_mean", skip_none=True), none=True),
    # display, statistics-only or numerically equivalent options (the flags' values checked all the same)
    **dict.fromkeys(("IterTimer", "DataType"), IGNORED),
    **dict.fromkeys(("Verbose", "StatusHeader", "FastSolve", "LinSolveCheck", "AuxVarObj", "fEvalX", "gEvalY",
                     "ReturnX"), IGNORED_FLAG),
    **dict.fromkeys(("X0", "Y0", "U0", "Callback", "Backtrack", "StepSizePolicy"), unset(_NOT_SUPPORTED)),
    "Monotone": Flag(Only(_falsy, "monotone PGM is not supported")),
    "AutoStop": Nested(SporcoTable("AutoStop", {"Enabled": Flag(Only(_falsy, "PGM adaptive stopping is not supported")),
                                                "Tau0": IGNORED})),
    "Momentum": Only(_nesterov, "only Nesterov momentum is supported, got {type}"),
}
_PGM_ONLY = "not an option of SPORCO's 'pgm' dictionary step"

#: SPORCO's ``CCMOD`` options (the dictionary step's) of each ``dmethod``, read into
#: :class:`DictUpdateOptions`
CCMOD: dict[str, SporcoTable] = {
    "pgm": SporcoTable("'pgm' dictionary-step", {
        **_CCMOD_COMMON,
        "L": Field("L", skip_none=True),
        **dict.fromkeys(("rho", "RelaxParam", "AbsStopTol", "AutoRho"), refused(_PGM_ONLY)),
    }),
    "cns": SporcoTable("'cns' dictionary-step", {
        **_CCMOD_COMMON,
        "rho": Field("rho", skip_none=True),
        "RelaxParam": Field("relax", skip_none=True),
        "AbsStopTol": Field("abs_stop_tol", skip_none=True),
        "AutoRho": Nested(SporcoTable("AutoRho", autorho_rules(skip_none=True))),
        "L": refused("not an option of SPORCO's 'cns' dictionary step"),
    }),
}

#: the rows SPORCO's batch and online learners share
_LEARNER = {
    "DataType": Field("dtype"),
    "Verbose": VERBOSE,
    "StatusHeader": IGNORED_FLAG,
    "IterTimer": IGNORED,
    "DictSize": unset(_NOT_SUPPORTED),
    "Callback": unset(_NOT_SUPPORTED),
}

#: SPORCO ``ConvBPDNDictLearn.Options`` of each ``dmethod`` (``CBPDN`` merged over
#: SPORCO's learner defaults, ``CCMOD`` read by :data:`CCMOD`)
DICTLEARN: dict[str, SporcoTable] = {
    dmethod: SporcoTable("ConvBPDNDictLearn", {
        **_LEARNER,
        "MaxMainIter": Field("max_iter"),
        "AccurateDFid": Flag(Field("accurate_dfid")),
        "CBPDN": SubOptions("cbpdn", CBPDNOptions.from_sporco, _DICTLEARN_CBPDN_SPORCO),
        "CCMOD": SubOptions("ccmod", partial(CCMOD[dmethod].build, DictUpdateOptions, prefix="CCMOD.")),
    }) for dmethod in _DMETHODS
}

#: SPORCO ``ConvBPDNMaskDictLearn.Options`` of each ``dmethod``: its ``CBPDN`` is ``ConvBPDNMaskDcpl``'s,
#: merged over SPORCO's masked learner defaults (:data:`DICTLEARN_MASKDCPL_DEFAULTS`)
DICTLEARN_MASKED: dict[str, SporcoTable] = {
    dmethod: table.extend("ConvBPDNMaskDictLearn", {"CBPDN": SubOptions("cbpdn", MaskDcplOptions.from_sporco,
                                                                          {"MaxMainIter": 1})})
    for dmethod, table in DICTLEARN.items()
}

#: SPORCO ``OnlineConvBPDNDictLearn.Options`` (``CBPDN`` merged over the online learner's defaults)
ONLINE = SporcoTable("OnlineConvBPDNDictLearn", {
    **_LEARNER,
    "eta_a": Field("eta_a"),
    "eta_b": Field("eta_b"),
    "ZeroMean": Flag(Field("zero_mean")),
    "MaxMainIter": IGNORED,
    "CUDA_CBPDN": Flag(Only(_falsy, "use OnlineDictLearnOptions(device='cuda') instead")),
    "CBPDN": SubOptions("cbpdn", CBPDNOptions.from_sporco, _ONLINE_CBPDN_SPORCO),
})
#: SPORCO ``OnlineConvBPDNMaskDictLearn.Options``: its ``CBPDN`` is ``ConvBPDNMaskDcpl``'s
ONLINE_MASKED = ONLINE.extend("OnlineConvBPDNMaskDictLearn",
                              {"CBPDN": SubOptions("cbpdn_mask", MaskDcplOptions.from_sporco)})


def _jsonable(obj) -> Any:
    """``obj`` as plain JSON values (dataclasses as dicts, dtypes and devices as strings,
    tensors and arrays as lists): the options in checkpoints' and dictionaries' metadata."""
    if dataclasses.is_dataclass(obj):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, (torch.dtype, torch.device)):
        return str(obj)
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().tolist()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    return obj

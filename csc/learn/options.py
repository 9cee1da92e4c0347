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
from csc.core.options import CBPDNOptions, FISTAOptions, MaskDcplOptions, _as_dtype, check_admm_parameters
from csc.core.sporco_options import (IGNORED, IGNORED_FLAG, VERBOSE, Field, Flag, FromObject, Nested, Only,
                                     SporcoTable, SubOptions, _backtrack_from_sporco, _momentum_from_sporco,
                                     autorho_rules, merge, option_dict, refused, unset)
from csc.learn.constraints import KernelConstraint, kernel_constraint
from csc.runtime.device import resolve_device

__all__ = ["DictUpdateOptions", "CCMOD_DEFAULTS", "DICTLEARN_FISTA_DEFAULTS", "DictLearnOptions",
           "OnlineDictLearnOptions", "DICTLEARN_CBPDN_DEFAULTS", "DICTLEARN_MASKDCPL_DEFAULTS",
           "ONLINE_CBPDN_DEFAULTS", "CCMOD", "DICTLEARN", "ONLINE", "ONLINE_MASKED"]


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

_DMETHODS = ("pgm", "cns", "ism")
#: SPORCO's ``admm.ccmod.ConvCnstrMOD_IterSM`` defaults that differ from :class:`DictUpdateOptions`':
#: adaptive ρ on, every iteration, multiplier 1000 with auto-scaling, ratio 1.2 (stand-alone) …
_ISM_SPORCO = {"AutoRho": {"Enabled": True, "Period": 1, "AutoScaling": True, "Scaling": 1000.0, "RsdlRatio": 1.2}}
#: … and in the learner (``ConvCnstrMODOptionsDefaults('ism')``): adaptive ρ on, the rest the learner's
_ISM_LEARNER_SPORCO = {"AutoRho": {"Enabled": True}}
_XMETHODS = ("admm", "pgm")

#: FISTA options of SPORCO's batch learner with ``xmethod='pgm'``
#: (``dictlrn.cbpdndl.ConvBPDNOptionsDefaults('pgm')``): ``pgm.cbpdn.ConvBPDN``'s defaults (L = 500,
#: Nesterov momentum, no backtracking) with one iteration per outer iteration.
DICTLEARN_FISTA_DEFAULTS = FISTAOptions(max_iter=1)
_MOMENTA = ("nesterov", "linear", "genlinear")


def _check_xmethod(opts) -> None:
    """The coding method and its options: ``'admm'`` (``cbpdn``) or ``'pgm'`` (``fista``, with at
    least one iteration, neither robust backtracking nor monotone FISTA)."""
    if opts.xmethod not in _XMETHODS:
        raise ValueError(f"xmethod: expected one of {_XMETHODS}, got {opts.xmethod!r}")
    f = opts.fista
    if type(f) is not FISTAOptions:
        raise TypeError(f"fista: expected FISTAOptions, got {type(f).__name__}")
    if opts.xmethod != "pgm":
        return
    if f.max_iter < 1:
        raise ValueError("fista: max_iter must be >= 1 (coding iterations per outer iteration)")
    if f.backtrack == "robust" or f.monotone:
        raise ValueError("fista: the learner's FISTA coding step offers standard backtracking only (not robust "
                         "backtracking nor monotone FISTA)")
    if opts.cbpdn != DICTLEARN_CBPDN_DEFAULTS:
        raise ValueError("cbpdn: the ADMM coding options are not used with xmethod='pgm'; give the FISTA ones as "
                         "fista=csc.FISTAOptions(...) and leave cbpdn at its default")


def _check_dict_size(sizes):
    """SPORCO's ``DictSize`` as csc's groups: None; one size (kh, kw, [C,] n) as one group; or
    groups ((kh, kw, [C,] n), ...) of positive integers (tuples of ints)."""
    if sizes is None:
        return None
    if not isinstance(sizes, (tuple, list)) or not sizes:
        raise ValueError(f"dict_size: expected groups ((kh, kw, count), ...) or None, got {sizes!r}")
    if all(isinstance(v, (int, np.integer)) for v in sizes):
        sizes = (sizes,)
    out = tuple(tuple(int(v) for v in g) if isinstance(g, (tuple, list)) else g for g in sizes)
    kernel_constraint(out)  # validates the groups
    return out


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
    r"""Options of the dictionary step (SPORCO's ``CCMOD`` options), SPORCO's effective defaults.

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
    momentum : {'nesterov', 'linear', 'genlinear'}
        ``'pgm'``: the momentum coefficient (SPORCO's ``Momentum`` object): ``'nesterov'``
        :math:`t' = (1 + \sqrt{1 + 4t^2})/2` (``MomentumNesterov``, the default),
        ``'linear'`` :math:`t = (k + b)/b` (``MomentumLinear``), ``'genlinear'``
        :math:`t = (k + a)/b` (``MomentumGenLinear``), k the iteration (counted over the
        outer iterations in a learner, as SPORCO's).
    momentum_a, momentum_b : float
        a and b of the linear momenta (SPORCO's defaults 50 and 2).
    backtrack : None or 'standard'
        ``'pgm'``: step-size backtracking (SPORCO's ``Backtrack``, None): ``'standard'``, L ←
        γ_u L until F ≤ Q (Beck & Teboulle; ``BacktrackStandard``), from L of the previous
        iteration. Robust backtracking is not offered. Runs the torch arithmetic.
    gamma_u : float
        The increase factor γ_u of L (``BacktrackStandard.gamma_u``, 1.2).
    backtrack_max_iter : int
        Trials per line search (``BacktrackStandard.maxiter``, 50).
    zero_dual : bool
        ``'cns'``/``'ism'`` in a learner: start the scaled dual u at zero (False: SPORCO's
        learner's start, u = y₀/ρ per image for ``'cns'``, u = y₀ for ``'ism'``). True is the
        ``U0 = 0`` of SPORCO scripts that assemble ``dictlrn.DictLearn`` from its steps
        (``cbpdndl_jnt_clr.py``). The stand-alone updates take ``u0`` instead.
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
    momentum: str = "nesterov"
    momentum_a: float = 50.0
    momentum_b: float = 2.0
    backtrack: str | None = None
    gamma_u: float = 1.2
    backtrack_max_iter: int = 50
    zero_dual: bool = False
    zero_mean: bool = False
    nonneg: bool = False

    def __post_init__(self) -> None:
        check_int("max_iter", self.max_iter, 1)
        if self.backtrack not in (None, "standard"):
            raise ValueError(f"backtrack: expected None or 'standard' (robust backtracking is not offered), got "
                             f"{self.backtrack!r}")
        check_number("gamma_u", self.gamma_u, minimum=1, strict=True)
        check_int("backtrack_max_iter", self.backtrack_max_iter, 1)
        if self.momentum not in _MOMENTA:
            raise ValueError(f"momentum: expected one of {_MOMENTA}, got {self.momentum!r}")
        check_number("momentum_a", self.momentum_a, minimum=0)
        check_number("momentum_b", self.momentum_b, minimum=0, strict=True)
        check_admm_parameters(self)
        for name in ("L", "rho"):
            check_number(name, getattr(self, name), minimum=0, strict=True, none=True)
        check_number("rsdl_target", self.rsdl_target, minimum=0, strict=True)
        for name in ("zero_mean", "nonneg", "zero_dual"):
            object.__setattr__(self, name, check_bool(name, getattr(self, name)))
        KernelConstraint((2, 2), self.zero_mean, self.nonneg)  # validates the combination

    def replace(self, **changes) -> "DictUpdateOptions":
        """Return a copy with the given fields changed."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_sporco(cls, opt: Mapping[str, Any] | None = None, dmethod: str = "pgm",
                    **overrides) -> "DictUpdateOptions":
        """Options of the stand-alone dictionary updates (:class:`csc.ConvCnstrMOD`,
        :class:`csc.ConvCnstrMODConsensus`) from SPORCO's ``pgm.ccmod.ConvCnstrMOD.Options``
        (``dmethod='pgm'``), ``admm.ccmod.ConvCnstrMOD_Consensus.Options`` (``'cns'``) or
        ``admm.ccmod.ConvCnstrMOD_IterSM.Options`` (``'ism'``, whose adaptive ρ is on by default)
        dict, over SPORCO's stand-alone defaults (``MaxMainIter`` 1000: :data:`CCMOD_DEFAULTS`).
        ``X0``/``Y0``/``U0`` are arguments of ``solve``; the names are :data:`CCMOD`."""
        if dmethod not in _DMETHODS:
            raise ValueError(f"dmethod: expected one of {_DMETHODS}, got {dmethod!r}")
        table = CCMOD[dmethod]
        if dmethod == "ism":
            opt = merge(_ISM_SPORCO, option_dict("opt", opt))
        if "max_iter" not in table.translate(opt):
            overrides = {"max_iter": CCMOD_DEFAULTS.max_iter, **overrides}
        return table.build(cls, opt, overrides)


#: SPORCO's stand-alone dictionary updates' defaults (``pgm.ccmod.ConvCnstrMOD``,
#: ``admm.ccmod.ConvCnstrMOD_Consensus``): those of :class:`DictUpdateOptions` with 1000
#: iterations (``MaxMainIter``)
CCMOD_DEFAULTS = DictUpdateOptions(max_iter=1000)


@dataclass(frozen=True)
class DictLearnOptions:
    """Options of :class:`csc.DictLearn` (SPORCO ``ConvBPDNDictLearn.Options``), SPORCO's defaults.

    Attributes
    ----------
    max_iter : int
        Outer iterations (``MaxMainIter``, 1000).
    dmethod : {'pgm', 'cns', 'ism'}
        Dictionary step (SPORCO's ``dmethod``, default ``'pgm'``; ``'ism'``: SPORCO's
        ``ConvCnstrMOD_IterSM``, :class:`csc.learn.dictstep.ISMDictStep`, torch arithmetic,
        whose SPORCO defaults turn adaptive ρ on: ``from_sporco`` does, give
        ``ccmod=DictUpdateOptions(auto_rho=True)`` otherwise).
    accurate_dfid : bool
        Recompute the objective after the dictionary step (``AccurateDFid``, False).
    cbpdn : CBPDNOptions
        Coding-step options (``CBPDN``); default :data:`DICTLEARN_CBPDN_DEFAULTS`.
        ``record_stats``, ``sync_interval``, ``dtype`` and ``device`` are not used here;
        ``backend`` chooses the back end of the whole learner (module docstring).
        ``l1_weight`` may be a scalar or one weight per kernel (K,).
    ccmod : DictUpdateOptions
        Dictionary-step options (``CCMOD``).
    xmethod : {'admm', 'pgm'}
        Coding step (SPORCO's ``xmethod``, default ``'admm'``): ADMM CBPDN with ``cbpdn``, or
        FISTA with ``fista`` (:mod:`csc.learn.fista_coding`; the torch back end on every device).
    fista : FISTAOptions
        Coding-step options with ``xmethod='pgm'`` (``CBPDN`` of SPORCO's ``'pgm'`` learner);
        default :data:`DICTLEARN_FISTA_DEFAULTS` (one iteration, L = 500). Standard
        backtracking is offered, robust backtracking and monotone FISTA are not.
    dict_size : groups ((kh, kw, n), ...) or None
        Multi-scale dictionaries (SPORCO's ``DictSize``; its (kh, kw, C, n) groups too): the
        kernels in order, n of each size, stored at the largest size and each projected onto
        its own support (:func:`csc.learn.constraints.kernel_constraint`). None (the
        default): every kernel of the initial dictionary's size.
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
    xmethod: str = "admm"
    fista: FISTAOptions = DICTLEARN_FISTA_DEFAULTS
    dict_size: tuple | None = None
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
        _check_xmethod(self)
        object.__setattr__(self, "dict_size", _check_dict_size(self.dict_size))

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
        dicts (merged over SPORCO's learner defaults, as SPORCO does); with the override
        ``xmethod='pgm'`` ``CBPDN`` is SPORCO's ``pgm.cbpdn.ConvBPDN`` dict, read into ``fista``.
        Unknown names and unsupported features (step-size policies, monotone PGM, robust
        backtracking, ``Callback``, initial values) raise ``ValueError``.
        ``overrides`` (csc field names) are applied last. The names are :data:`DICTLEARN`
        (``CCMOD``'s: :data:`CCMOD`). With ``masked``, ``opt`` is SPORCO's
        ``ConvBPDNMaskDictLearn.Options`` dict, whose ``CBPDN`` (the ``ConvBPDNMaskDcpl`` options,
        merged over :data:`DICTLEARN_MASKDCPL_DEFAULTS`) becomes ``cbpdn`` as a
        :class:`csc.MaskDcplOptions`: :meth:`csc.DictLearn.solve` with a mask then codes with it.
        """
        if dmethod not in _DMETHODS:
            raise ValueError(f"dmethod: expected one of {_DMETHODS}, got {dmethod!r}")
        table = _dictlearn_table(dmethod, overrides, check_bool("masked", masked))
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
    dict_size : groups ((kh, kw, n), ...) or None
        Multi-scale dictionaries (SPORCO's ``DictSize``), as :class:`DictLearnOptions`'.
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
    dict_size: tuple | None = None
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
        object.__setattr__(self, "dict_size", _check_dict_size(self.dict_size))

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


def _ccmod_backtrack(obj) -> dict[str, Any]:
    """The fields of SPORCO's ``CCMOD.Backtrack`` (None or ``BacktrackStandard``)."""
    fields = _backtrack_from_sporco(obj)
    if fields["backtrack"] == "robust":
        raise ValueError("Backtrack: robust backtracking of the dictionary step is not offered (BacktrackStandard is)")
    return fields


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
    **dict.fromkeys(("X0", "Y0", "U0", "Callback", "StepSizePolicy"), unset(_NOT_SUPPORTED)),
    "Monotone": Flag(Only(_falsy, "monotone PGM is not supported")),
    "AutoStop": Nested(SporcoTable("AutoStop", {"Enabled": Flag(Only(_falsy, "PGM adaptive stopping is not supported")),
                                                "Tau0": IGNORED})),
    "Momentum": Only(_nesterov, "not an option of SPORCO's 'cns' dictionary step, got {type}"),
}
_PGM_ONLY = "not an option of SPORCO's 'pgm' dictionary step"

#: SPORCO's ``CCMOD`` options (the dictionary step's) of each ``dmethod``, read into
#: :class:`DictUpdateOptions`
CCMOD: dict[str, SporcoTable] = {
    "pgm": SporcoTable("'pgm' dictionary-step", {
        **_CCMOD_COMMON,
        "L": Field("L", skip_none=True),
        "Momentum": FromObject(_momentum_from_sporco, {"momentum": "Momentum", "momentum_a": "Momentum.a",
                                                       "momentum_b": "Momentum.b"}),
        "Backtrack": FromObject(_ccmod_backtrack, {"backtrack": "Backtrack", "gamma_u": "Backtrack.gamma_u",
                                                   "backtrack_max_iter": "Backtrack.maxiter"}),
        **dict.fromkeys(("rho", "RelaxParam", "AbsStopTol", "AutoRho"), refused(_PGM_ONLY)),
    }),
    "cns": SporcoTable("'cns' dictionary-step", {
        **_CCMOD_COMMON,
        "rho": Field("rho", skip_none=True),
        "RelaxParam": Field("relax", skip_none=True),
        "AbsStopTol": Field("abs_stop_tol", skip_none=True),
        "AutoRho": Nested(SporcoTable("AutoRho", autorho_rules(skip_none=True))),
        "L": refused("not an option of SPORCO's 'cns' dictionary step"),
        "Backtrack": unset(_NOT_SUPPORTED),
    }),
}
CCMOD["ism"] = CCMOD["cns"].extend("'ism' dictionary-step", {
    "L": refused("not an option of SPORCO's 'ism' dictionary step"),
    "Momentum": Only(_nesterov, "not an option of SPORCO's 'ism' dictionary step, got {type}"),
})

#: the rows SPORCO's batch and online learners share
_LEARNER = {
    "DataType": Field("dtype"),
    "Verbose": VERBOSE,
    "StatusHeader": IGNORED_FLAG,
    "IterTimer": IGNORED,
    "DictSize": Field("dict_size", skip_none=True),
    "Callback": unset(_NOT_SUPPORTED),
}

class _WithCCMOD(SporcoTable):
    """A learner's table that reads ``CCMOD`` also when absent (SPORCO's 'ism' learner defaults
    differ from :class:`DictUpdateOptions`')."""

    def translate(self, opt, prefix: str = "") -> dict[str, Any]:
        opt = option_dict("opt", opt)
        return super().translate(opt if "CCMOD" in opt else {**opt, "CCMOD": {}}, prefix)

    def extend(self, what: str, rules=None) -> "_WithCCMOD":
        return _WithCCMOD(what, {**self.rules, **(rules or {})}, self.csc_only)


#: SPORCO ``ConvBPDNDictLearn.Options`` of each ``dmethod`` (``CBPDN`` merged over
#: SPORCO's learner defaults, ``CCMOD`` read by :data:`CCMOD`)
DICTLEARN: dict[str, SporcoTable] = {
    dmethod: (_WithCCMOD if dmethod == "ism" else SporcoTable)("ConvBPDNDictLearn", {
        **_LEARNER,
        "MaxMainIter": Field("max_iter"),
        "AccurateDFid": Flag(Field("accurate_dfid")),
        "CBPDN": SubOptions("cbpdn", CBPDNOptions.from_sporco, _DICTLEARN_CBPDN_SPORCO),
        "CCMOD": SubOptions("ccmod", partial(CCMOD[dmethod].build, DictUpdateOptions, prefix="CCMOD."),
                            _ISM_LEARNER_SPORCO if dmethod == "ism" else None),
    }) for dmethod in _DMETHODS
}

#: SPORCO ``ConvBPDNDictLearn.Options(xmethod='pgm')`` of each ``dmethod``: its ``CBPDN``
#: (``pgm.cbpdn.ConvBPDN``'s, merged over one iteration) read into ``fista``
DICTLEARN_PGM: dict[str, SporcoTable] = {
    dmethod: DICTLEARN[dmethod].extend("ConvBPDNDictLearn(xmethod='pgm')", {
        "CBPDN": SubOptions("fista", FISTAOptions.from_sporco, {"MaxMainIter": 1})}) for dmethod in _DMETHODS
}


def _dictlearn_table(dmethod: str, overrides: Mapping[str, Any], masked: bool = False) -> SporcoTable:
    """The SPORCO table of the batch learner with ``dmethod`` and the ``xmethod`` of ``overrides``
    (SPORCO's masked learner's with ``masked``)."""
    if masked:
        return DICTLEARN_MASKED[dmethod]
    return (DICTLEARN_PGM if overrides.get("xmethod", "admm") == "pgm" else DICTLEARN)[dmethod]


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

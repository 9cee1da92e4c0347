"""Typed options for the solvers, with SPORCO's defaults and a mapping from SPORCO's names.

Every field of :class:`CBPDNOptions` corresponds to an option of SPORCO's
``admm.cbpdn.ConvBPDN.Options``; the table :data:`SPORCO_CBPDN_NAMES` gives the
correspondence and :meth:`CBPDNOptions.from_sporco` converts a SPORCO option dict.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Mapping

import numpy as np
import torch

from csc.core.checks import _is_real, check_bool, check_int, check_number
from csc.runtime.device import resolve_device

__all__ = ["CBPDNOptions", "GradRegOptions", "MaskDcplOptions", "L1L1GrdOptions", "SPORCO_CBPDN_NAMES", "FISTAOptions",
           "SPORCO_FISTA_NAMES"]


#: csc field name ← SPORCO option name (nested ``AutoRho`` options written as ``AutoRho.X``).
SPORCO_CBPDN_NAMES: dict[str, str] = {
    "max_iter": "MaxMainIter",
    "abs_stop_tol": "AbsStopTol",
    "rel_stop_tol": "RelStopTol",
    "relax": "RelaxParam",
    "rho": "rho",
    "auto_rho": "AutoRho.Enabled",
    "rho_period": "AutoRho.Period",
    "rho_scaling": "AutoRho.Scaling",
    "rsdl_ratio": "AutoRho.RsdlRatio",
    "rsdl_target": "AutoRho.RsdlTarget",
    "auto_scaling": "AutoRho.AutoScaling",
    "std_residuals": "AutoRho.StdResiduals",
    "l1_weight": "L1Weight",
    "nonneg": "NonNegCoef",
    "no_boundary_cross": "NoBndryCross",
    "objective_on_y": "AuxVarObj",
    "record_stats": "FastSolve (inverted)",
    "dtype": "DataType",
    "device": "(none: SPORCO is CPU only)",
    "sync_interval": "(none)",
    "backend": "(none)",
    "fftw_planner": "(none: sporco.fft.pyfftw_planner_effort, module-wide)",
}

# SPORCO options that only affect its console display or timers: accepted, no effect.
_SPORCO_DISPLAY_ONLY = {"Verbose", "StatusHeader", "IterTimer"}
# SPORCO options that select between numerically equivalent code paths: accepted, no effect.
_SPORCO_NO_EFFECT = {"HighMemSolve", "ReturnX"}
# SPORCO options that csc takes elsewhere or does not offer: rejected with a pointer.
_SPORCO_ELSEWHERE = {
    "Y0": "pass y0= to ConvBPDN.solve",
    "U0": "pass u0= to ConvBPDN.solve",
    "Callback": "csc has no per-iteration callback; read result.stats after the solve",
    "LinSolveCheck": "csc does not compute the linear-solve residual",
    "mu": "SPORCO's mu is an argument, not an option: pass mu= to csc.ConvElasticNet or csc.ConvBPDNGradReg",
}
# Set by SPORCO from AuxVarObj (fEvalX = not AuxVarObj, gEvalY = AuxVarObj): accepted when
# consistent with it, since csc evaluates both objective terms on the same variable.
_SPORCO_EVAL_FLAGS = {"fEvalX", "gEvalY"}
# Options of SPORCO's ConvBPDN variants: rejected by the options classes that do not take them.
_SPORCO_VARIANT_ONLY = {
    "GradWeight": "an option of SPORCO's ConvBPDNGradReg and ConvL1L1Grd (csc.GradRegOptions, csc.L1L1GrdOptions)",
}
_AUTORHO_KEYS = {
    "Enabled": "auto_rho",
    "Period": "rho_period",
    "Scaling": "rho_scaling",
    "RsdlRatio": "rsdl_ratio",
    "RsdlTarget": "rsdl_target",
    "AutoScaling": "auto_scaling",
    "StdResiduals": "std_residuals",
}
_TOP_KEYS = {
    "MaxMainIter": "max_iter",
    "AbsStopTol": "abs_stop_tol",
    "RelStopTol": "rel_stop_tol",
    "RelaxParam": "relax",
    "rho": "rho",
    "L1Weight": "l1_weight",
    "NonNegCoef": "nonneg",
    "NoBndryCross": "no_boundary_cross",
    "AuxVarObj": "objective_on_y",
}
_BACKENDS = ("auto", "numba", "compiled", "torch")
FFTW_PLANNERS = ("FFTW_ESTIMATE", "FFTW_MEASURE", "FFTW_PATIENT", "FFTW_EXHAUSTIVE")


def check_planner(name: str, value) -> None:
    """None or one of :data:`FFTW_PLANNERS`."""
    if value is not None and value not in FFTW_PLANNERS:
        raise ValueError(f"{name}: expected None or one of {FFTW_PLANNERS}, got {value!r}")
_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
}


def _as_dtype(value) -> torch.dtype | None:
    if value is None:
        return None
    if isinstance(value, torch.dtype):
        if value not in _DTYPES.values():
            raise ValueError(f"dtype: expected float32 or float64, got {value}")
        return value
    try:
        name = np.dtype(value).name
    except TypeError:
        raise ValueError(f"dtype: expected float32 or float64, got {value!r}") from None
    if name not in _DTYPES:
        raise ValueError(f"dtype: expected float32 or float64, got {value!r}")
    return _DTYPES[name]


@dataclass(frozen=True)
class CBPDNOptions:
    """Options of the convolutional BPDN ADMM solver (SPORCO ``admm.cbpdn.ConvBPDN.Options``), SPORCO's defaults.

    Attributes
    ----------
    max_iter : int
        Maximum number of ADMM iterations (``MaxMainIter``, 1000).
    abs_stop_tol, rel_stop_tol : float
        Absolute and relative stopping tolerances (``AbsStopTol`` 0, ``RelStopTol`` 1e-3).
    relax : float
        Over-relaxation parameter α (``RelaxParam``, 1.8).
    rho : float or None
        Initial penalty ρ₀; None gives SPORCO's 50λ + 1.
    auto_rho : bool
        Adaptive ρ (``AutoRho.Enabled``, True).
    rho_period : int
        Iterations between ρ updates (``AutoRho.Period``, 1).
    rho_scaling : float
        Largest multiplier τ of one ρ update (``AutoRho.Scaling``, 1000).
    rsdl_ratio : float
        Residual ratio μ that triggers an update (``AutoRho.RsdlRatio``, 1.2).
    rsdl_target : float or None
        Residual target ξ; None gives 1 + 18.3^(log10 λ + 1) (1 if λ = 0).
    auto_scaling : bool
        Multiplier from the residual ratio, capped at τ (``AutoRho.AutoScaling``, True);
        when False the multiplier is always τ.
    std_residuals : bool
        Unnormalised residuals and tolerances (``AutoRho.StdResiduals``, False).
    l1_weight : float, array or tensor
        Weights w of the ℓ1 term (``L1Weight``, 1): a scalar, one weight per kernel (K,),
        or any array that broadcasts to the codes (B, K, H, W), e.g. (K, H, W).
    nonneg : bool
        Force non-negative coefficients (``NonNegCoef``, False).
    no_boundary_cross : bool
        Zero the coefficients of kernels that cross the image boundary, i.e. the last
        kh−1 rows and kw−1 columns of every map (``NoBndryCross``, False).
    objective_on_y : bool
        Evaluate the objective on y instead of x (``AuxVarObj``, False).
    record_stats : bool
        Record per-iteration statistics (SPORCO records them unless ``FastSolve``).
        Recording needs one host synchronisation per iteration on CUDA.
    dtype : torch.dtype or None
        Working dtype; None uses the inputs' dtype (they must agree).
    device : torch.device, str or None
        Working device; None: the images' device (a tensor's; images given as an array go
        to the dictionary's), the dictionary and weights copied there once by the solver
        (:class:`csc.ConvBPDN`).
    sync_interval : int or None
        Iterations between host reads of the torch and compiled back ends (the
        convergence checks, and the statistics rows buffered on the device meanwhile);
        None gives 1 on CPU (where a check costs nothing) and 10 on CUDA. Results do not
        depend on it: an image that converges between checks is frozen on the device.
        The fused CPU back end checks every iteration (it costs nothing there).
    backend : str
        ``"auto"`` (default): on CPU the fused back end when numba is installed, else the
        torch loop; on CUDA the compiled back end when ``torch.compile`` can build kernels
        there (Triton), else the torch loop; ``"numba"``: the fused CPU back end (numba
        kernels, FFTW through pyFFTW when installed, else scipy.fft), an error where it
        cannot run; ``"compiled"``: the ``torch.compile`` back end
        (:mod:`csc.backends.compiled`, any device with a compiler; an error where it has
        none); ``"torch"``: the torch loop (any device). All give SPORCO's answers; they
        differ by floating-point rounding only. The environment variable
        ``CSC_CBPDN_BACKEND`` overrides ``"auto"`` (a back end that cannot run on the
        device then falls back to ``"auto"``'s choice).
    fftw_planner : str or None
        FFTW planner effort of the fused back end: ``"FFTW_ESTIMATE"``, ``"FFTW_MEASURE"``
        (SPORCO's), ``"FFTW_PATIENT"`` or ``"FFTW_EXHAUSTIVE"``; None: MEASURE for maps of
        at least 2¹⁶ coefficients per image, ESTIMATE below. MEASURE times candidate plans,
        so two runs may pick different plans and differ by rounding; ESTIMATE picks the
        same plan every run (run-to-run identical codes: :func:`csc.encode_dataset` uses it).
    """

    max_iter: int = 1000
    abs_stop_tol: float = 0.0
    rel_stop_tol: float = 1e-3
    relax: float = 1.8
    rho: float | None = None
    auto_rho: bool = True
    rho_period: int = 1
    rho_scaling: float = 1000.0
    rsdl_ratio: float = 1.2
    rsdl_target: float | None = None
    auto_scaling: bool = True
    std_residuals: bool = False
    l1_weight: Any = 1.0
    nonneg: bool = False
    no_boundary_cross: bool = False
    objective_on_y: bool = False
    record_stats: bool = True
    dtype: torch.dtype | None = None
    device: torch.device | str | None = None
    sync_interval: int | None = None
    backend: str = "auto"
    fftw_planner: str | None = None

    #: SPORCO option name → field, of the options a subclass adds (a variant's options)
    _sporco_extra: ClassVar[dict[str, str]] = {}
    _sporco_class: ClassVar[str] = "ConvBPDN"

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", _as_dtype(self.dtype))
        check_int("max_iter", self.max_iter, 0)
        for name in ("abs_stop_tol", "rel_stop_tol"):
            check_number(name, getattr(self, name), minimum=0)
        for name in ("rho_scaling", "rsdl_ratio"):  # below 1 the ρ update diverges
            check_number(name, getattr(self, name), minimum=1)
        check_number("relax", self.relax, minimum=0, maximum=2, strict=True)
        for name in ("rho", "rsdl_target"):
            check_number(name, getattr(self, name), minimum=0, strict=True, none=True)
        check_int("rho_period", self.rho_period, 1)
        check_int("sync_interval", self.sync_interval, 1, none=True)
        for name in ("auto_rho", "auto_scaling", "std_residuals", "nonneg", "no_boundary_cross",
                     "objective_on_y", "record_stats"):
            object.__setattr__(self, name, check_bool(name, getattr(self, name)))
        if isinstance(self.l1_weight, (bool, np.bool_, str, bytes)) or self.l1_weight is None:
            raise TypeError(f"l1_weight: expected a number or an array of weights, got {self.l1_weight!r}")
        if _is_real(self.l1_weight):
            check_number("l1_weight", self.l1_weight, minimum=0)
        if self.device is not None:
            resolve_device(self.device, arg="device")
        if self.backend not in _BACKENDS:
            raise ValueError(f"backend: expected one of {_BACKENDS}, got {self.backend!r}")
        check_planner("fftw_planner", self.fftw_planner)

    def replace(self, **changes) -> "CBPDNOptions":
        """Return a copy with the given fields changed."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_sporco(cls, opt: Mapping[str, Any] | None = None, **overrides) -> "CBPDNOptions":
        """Build options from a SPORCO ``ConvBPDN`` option dict.

        Accepts the nested ``AutoRho`` dict, ``FastSolve`` (→ ``record_stats=False``),
        ``DataType`` and the display-only options (ignored). Unknown names, and SPORCO
        options that csc takes elsewhere (``Y0``, ``U0``, ``Callback``, …), raise
        ``ValueError``. ``L1Weight`` arrays in SPORCO's layout (spatial axes first,
        kernel axis last) are converted to csc's (K, H, W) layout.
        """
        fields: dict[str, Any] = {}
        eval_flags: dict[str, bool] = {}
        for key, value in _option_dict("opt", opt).items():
            if key in _TOP_KEYS:
                fields[_TOP_KEYS[key]] = value
            elif key == "AutoRho":
                if not isinstance(value, Mapping):
                    raise ValueError(f"AutoRho: expected a dict of AutoRho options, got {value!r}")
                for sub, subval in value.items():
                    if sub not in _AUTORHO_KEYS:
                        raise ValueError(
                            f"AutoRho.{sub}: unknown SPORCO AutoRho option; known: {sorted(_AUTORHO_KEYS)}"
                        )
                    fields[_AUTORHO_KEYS[sub]] = subval
            elif key == "FastSolve":
                fields["record_stats"] = not bool(value)
            elif key == "DataType":
                fields["dtype"] = value
            elif key == "Verbose":
                _warn_verbose(value)
            elif key in _SPORCO_DISPLAY_ONLY or key in _SPORCO_NO_EFFECT:
                continue
            elif key in _SPORCO_EVAL_FLAGS:
                eval_flags[key] = bool(value)
            elif key in _SPORCO_ELSEWHERE:
                if value is None or value is False:
                    continue
                raise ValueError(f"{key}: SPORCO option not taken here: {_SPORCO_ELSEWHERE[key]}")
            elif key in cls._sporco_extra:
                fields[cls._sporco_extra[key]] = value
            elif key in _SPORCO_VARIANT_ONLY:
                raise ValueError(f"{key}: {_SPORCO_VARIANT_ONLY[key]}, not of {cls._sporco_class}")
            else:
                raise ValueError(f"{key}: unknown SPORCO {cls._sporco_class} option")
        on_y = bool(fields.get("objective_on_y", False))
        for key, expected in (("fEvalX", not on_y), ("gEvalY", on_y)):
            if key in eval_flags and eval_flags[key] != expected:
                raise ValueError(
                    f"{key}: {eval_flags[key]} is inconsistent with AuxVarObj={on_y}; csc evaluates both "
                    "objective terms on x, or both on y (objective_on_y)"
                )
        if "l1_weight" in fields:
            fields["l1_weight"] = _l1_weight_from_sporco(fields["l1_weight"])
        fields.update(overrides)
        return _build(cls, fields, _SPORCO_OF)


def _option_dict(name: str, opt) -> dict:
    """A SPORCO option dict (None: empty); TypeError naming ``name`` for anything else."""
    if opt is None:
        return {}
    if not isinstance(opt, Mapping):
        raise TypeError(f"{name}: expected a dict of SPORCO options (or None), got {type(opt).__name__}")
    return dict(opt)


def _warn_verbose(value) -> None:
    """SPORCO's ``Verbose``: csc prints no iteration table; say so instead of ignoring it."""
    if value:
        import warnings

        warnings.warn("Verbose: csc does not print SPORCO's per-iteration table; the same numbers are in "
                      "result.stats (record_stats=True, the default)", UserWarning, stacklevel=3)


#: SPORCO option name of each csc field (for messages about a converted option dict).
_SPORCO_OF = {v: k for k, v in _TOP_KEYS.items()} | {v: f"AutoRho.{k}" for k, v in _AUTORHO_KEYS.items()} \
    | {"record_stats": "FastSolve", "dtype": "DataType"}


def _build(cls, fields: Mapping[str, Any], sporco_of: Mapping[str, str]):
    """``cls(**fields)``, an error about a field re-raised with the SPORCO option it came from."""
    try:
        return cls(**fields)
    except (TypeError, ValueError) as exc:
        name = str(exc).split(":", 1)[0]
        if name in sporco_of:
            raise type(exc)(f"{sporco_of[name]} ({exc})") from None
        raise


@dataclass(frozen=True)
class GradRegOptions(CBPDNOptions):
    """Options of :class:`csc.ConvBPDNGradReg` (SPORCO ``admm.cbpdn.ConvBPDNGradReg.Options``):
    every :class:`CBPDNOptions` field, and

    Attributes
    ----------
    grad_weight : float or (K,) array
        Weights w_k of the gradient term (μ/2) Σ_k w_k ‖∇x_k‖² (``GradWeight``, 1): a
        scalar, or one weight ≥ 0 per kernel. Weight 0 leaves a kernel's maps
        unregularised (SPORCO's usual choice for all but an appended impulse kernel).
    """

    grad_weight: Any = 1.0

    _sporco_extra: ClassVar[dict[str, str]] = {"GradWeight": "grad_weight"}
    _sporco_class: ClassVar[str] = "ConvBPDNGradReg"

    def __post_init__(self) -> None:
        super().__post_init__()
        w = self.grad_weight
        if isinstance(w, torch.Tensor):
            w = w.detach().cpu().numpy()
        try:
            arr = np.asarray(w, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"grad_weight: expected a number or a (K,) array of numbers, got {w!r}") from None
        if arr.ndim > 1:
            raise ValueError(f"grad_weight: expected a scalar or one weight per kernel (K,), got shape {arr.shape}")
        if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ValueError(f"grad_weight: expected finite weights >= 0, got {w!r}")
        object.__setattr__(self, "grad_weight", float(arr) if arr.ndim == 0 else arr)


@dataclass(frozen=True)
class MaskDcplOptions(CBPDNOptions):
    """Options of :class:`csc.ConvBPDNMaskDcpl` (SPORCO ``admm.cbpdn.ConvBPDNMaskDcpl.Options``):
    the fields of :class:`CBPDNOptions` with SPORCO's defaults for its two-block problems
    (``ConvTwoBlockCnstrnt.Options``), which are those of its generic ADMM rather than
    ConvBPDN's: ρ₀ = 1 (``rho``), adaptive ρ off (``AutoRho.Enabled``), and when switched
    on: period 10, multiplier 2, ratio 10, target 1 (SPORCO's ``RsdlTarget`` None means 1
    here, not ConvBPDN's λ-dependent target), no auto-scaling. Relaxation 1.8, relative
    tolerance 1e-3 and 1000 iterations as ConvBPDN's.
    """

    rho: float | None = 1.0
    auto_rho: bool = False
    rho_period: int = 10
    rho_scaling: float = 2.0
    rsdl_ratio: float = 10.0
    rsdl_target: float | None = 1.0
    auto_scaling: bool = False

    _sporco_class: ClassVar[str] = "ConvBPDNMaskDcpl"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("rho", "rsdl_target"):  # SPORCO's ADMM: None means 1 (its dval)
            if getattr(self, name) is None:
                object.__setattr__(self, name, 1.0)


@dataclass(frozen=True)
class L1L1GrdOptions(MaskDcplOptions, GradRegOptions):
    """Options of :class:`csc.ConvL1L1Grd` (SPORCO ``admm.cbpdn.ConvL1L1Grd.Options``): the
    fields of :class:`GradRegOptions` with :class:`MaskDcplOptions`' defaults (SPORCO's
    ConvL1L1Grd is a ConvBPDNMaskDcpl): ρ₀ = 1, adaptive ρ off, and when switched on:
    period 10, multiplier 2, ratio 10, target 1, no auto-scaling.
    """

    _sporco_extra: ClassVar[dict[str, str]] = {"GradWeight": "grad_weight"}
    _sporco_class: ClassVar[str] = "ConvL1L1Grd"


def _l1_weight_from_sporco(w):
    """SPORCO's L1Weight layout (spatial axes first, kernel axis last) → csc's."""
    arr = np.asarray(w)
    if arr.ndim <= 1:
        return arr if arr.ndim == 1 else float(arr)
    # SPORCO: (H, W[, C][, B], K) broadcastable to X = (H, W, C, B, K).
    if arr.ndim == 2:  # (H, W): the same weight map for every kernel
        return arr[None]
    k_last = np.moveaxis(arr, -1, 0)  # (K, H, W, ...)
    extra = k_last.shape[3:]
    if any(s != 1 for s in extra):
        if k_last.ndim == 5 and k_last.shape[3] == 1:  # (K, H, W, 1, B) → (B, K, H, W)
            return np.moveaxis(k_last[:, :, :, 0, :], -1, 0)
        raise ValueError(
            "L1Weight: SPORCO arrays with channel-dependent weights are not supported; "
            f"got shape {arr.shape}"
        )
    return k_last.reshape(k_last.shape[:3])


def default_rsdl_target(lmbda: float) -> float:
    """SPORCO's residual target ξ = 1 + 18.3^(log10 λ + 1) (1 when λ = 0)."""
    if lmbda == 0.0:
        return 1.0
    return float(1.0 + 18.3 ** (np.log10(lmbda) + 1.0))


# ============================================================ the learners' options
#: CBPDN options of SPORCO's batch learner (``dictlrn.cbpdndl.ConvBPDNOptionsDefaults``):
#: one ADMM iteration per outer iteration, AutoRho every 10 iterations with a fixed
#: multiplier 2, ratio 10, target 1.
DICTLEARN_CBPDN_DEFAULTS = CBPDNOptions(
    max_iter=1, rho_period=10, auto_scaling=False, rsdl_ratio=10.0, rho_scaling=2.0, rsdl_target=1.0
)
_DICTLEARN_CBPDN_SPORCO = {
    "MaxMainIter": 1,
    "AutoRho": {"Period": 10, "AutoScaling": False, "RsdlRatio": 10.0, "Scaling": 2.0, "RsdlTarget": 1.0},
}

#: Coding options of SPORCO's masked batch learner (``dictlrn.cbpdndlmd.ConvBPDNMaskOptionsDefaults('admm')``):
#: :class:`MaskDcplOptions`' defaults (ρ₀ = 1, adaptive ρ off; period 10, multiplier 2, ratio 10,
#: target 1, no auto-scaling when on) with one ADMM iteration per outer iteration.
DICTLEARN_MASKDCPL_DEFAULTS = MaskDcplOptions(max_iter=1)

_DMETHODS = ("pgm", "cns")


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
        for name in ("L", "rho"):
            check_number(name, getattr(self, name), minimum=0, strict=True, none=True)
        for name in ("rel_stop_tol", "abs_stop_tol"):
            check_number(name, getattr(self, name), minimum=0)
        check_number("relax", self.relax, minimum=0, maximum=2, strict=True)
        check_int("rho_period", self.rho_period, 1)
        for name in ("rho_scaling", "rsdl_ratio"):
            check_number(name, getattr(self, name), minimum=1)
        check_number("rsdl_target", self.rsdl_target, minimum=0, strict=True)
        for name in ("auto_rho", "auto_scaling", "std_residuals", "zero_mean", "nonneg"):
            object.__setattr__(self, name, check_bool(name, getattr(self, name)))
        from csc.learn.constraints import KernelConstraint

        KernelConstraint((1, 1), self.zero_mean, self.nonneg)  # validates the combination


@dataclass(frozen=True)
class DictLearnOptions:
    """Options of :class:`DictLearn` (SPORCO ``ConvBPDNDictLearn.Options``), SPORCO's defaults.

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
        object.__setattr__(self, "dtype", _as_dtype(self.dtype))
        if self.dmethod not in _DMETHODS:
            raise ValueError(f"dmethod: expected one of {_DMETHODS}, got {self.dmethod!r}")
        check_int("max_iter", self.max_iter, 0)
        object.__setattr__(self, "accurate_dfid", check_bool("accurate_dfid", self.accurate_dfid))
        if self.device is not None:
            resolve_device(self.device, arg="device")
        if type(self.cbpdn) is not CBPDNOptions:  # a variant's options (GradRegOptions) would be ignored
            raise TypeError(f"cbpdn: expected CBPDNOptions, got {type(self.cbpdn).__name__}")
        if self.cbpdn.max_iter < 1:
            raise ValueError("cbpdn: max_iter must be >= 1 (coding iterations per outer iteration)")
        if not isinstance(self.ccmod, DictUpdateOptions):
            raise TypeError(f"ccmod: expected DictUpdateOptions, got {type(self.ccmod).__name__}")

    def replace(self, **changes) -> "DictLearnOptions":
        """Return a copy with the given fields changed."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able description (for metadata and checkpoints)."""
        return _jsonable(self)

    @classmethod
    def from_sporco(cls, opt: Mapping[str, Any] | None = None, dmethod: str = "pgm", **overrides) -> "DictLearnOptions":
        """Build options from SPORCO's nested ``ConvBPDNDictLearn`` option dict.

        ``opt`` may hold ``MaxMainIter``, ``AccurateDFid``, ``DictSize`` (None),
        ``DataType``, display options (ignored), and the nested ``CBPDN`` and ``CCMOD``
        dicts (merged over SPORCO's learner defaults, as SPORCO does). ``xmethod`` is
        always ``'admm'``. Unknown names and unsupported features (PGM backtracking,
        step-size policies, monotone PGM, ``Callback``, initial values) raise ``ValueError``.
        """
        if dmethod not in _DMETHODS:
            raise ValueError(f"dmethod: expected one of {_DMETHODS}, got {dmethod!r}")
        out: dict[str, Any] = {"dmethod": dmethod}
        for key, value in _option_dict("opt", opt).items():
            if key == "MaxMainIter":
                out["max_iter"] = value
            elif key == "AccurateDFid":
                out["accurate_dfid"] = bool(value)
            elif key == "DataType":
                out["dtype"] = value
            elif key == "Verbose":
                _warn_verbose(value)
            elif key in ("StatusHeader", "IterTimer"):
                continue
            elif key in ("DictSize", "Callback"):
                if value is not None:
                    raise ValueError(f"{key}: SPORCO option not supported by csc (must be None)")
            elif key == "CBPDN":
                out["cbpdn"] = CBPDNOptions.from_sporco(_merge(_DICTLEARN_CBPDN_SPORCO, _as_dict(key, value)))
            elif key == "CCMOD":
                out["ccmod"] = _ccmod_from_sporco(_as_dict(key, value), dmethod)
            else:
                raise ValueError(f"{key}: unknown SPORCO ConvBPDNDictLearn option")
        out.update(overrides)
        return cls(**out)


def _as_dict(name: str, value) -> dict:
    if not isinstance(value, Mapping):
        raise ValueError(f"{name}: expected a dict of options, got {type(value).__name__}")
    return {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in dict(value).items()}


def _merge(base: Mapping, new: Mapping) -> dict:
    out = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in base.items()}
    for k, v in new.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


_CCMOD_TOP = {
    "MaxMainIter": "max_iter", "L": "L", "RelStopTol": "rel_stop_tol", "AbsStopTol": "abs_stop_tol",
    "rho": "rho", "RelaxParam": "relax", "ZeroMean": "zero_mean",
}
_CCMOD_AUTORHO = {
    "Enabled": "auto_rho", "Period": "rho_period", "Scaling": "rho_scaling", "RsdlRatio": "rsdl_ratio",
    "RsdlTarget": "rsdl_target", "AutoScaling": "auto_scaling", "StdResiduals": "std_residuals",
}


def _ccmod_from_sporco(opt: Mapping[str, Any], dmethod: str) -> DictUpdateOptions:
    fields_: dict[str, Any] = {}
    for key, value in opt.items():
        name = f"CCMOD.{key}"
        if key in _CCMOD_TOP:
            if dmethod == "pgm" and key in ("rho", "RelaxParam", "AbsStopTol"):
                raise ValueError(f"{name}: not an option of SPORCO's 'pgm' dictionary step")
            if dmethod == "cns" and key == "L":
                raise ValueError(f"{name}: not an option of SPORCO's 'cns' dictionary step")
            if value is not None:
                fields_[_CCMOD_TOP[key]] = value
        elif key == "AutoRho":
            if dmethod == "pgm":
                raise ValueError(f"{name}: not an option of SPORCO's 'pgm' dictionary step")
            for sub, subval in _as_dict(name, value).items():
                if sub not in _CCMOD_AUTORHO:
                    raise ValueError(f"{name}.{sub}: unknown AutoRho option")
                if subval is not None:
                    fields_[_CCMOD_AUTORHO[sub]] = subval
        elif key in ("Verbose", "StatusHeader", "IterTimer", "FastSolve", "DataType", "LinSolveCheck",
                     "AuxVarObj", "fEvalX", "gEvalY", "ReturnX"):
            continue  # display, statistics-only or numerically equivalent options
        elif key in ("X0", "Y0", "U0", "Callback", "Backtrack", "StepSizePolicy"):
            if value is not None:
                raise ValueError(f"{name}: SPORCO option not supported by csc (must be None)")
        elif key == "Monotone":
            if value:
                raise ValueError(f"{name}: monotone PGM is not supported")
        elif key == "AutoStop":
            if _as_dict(name, value).get("Enabled", False):
                raise ValueError(f"{name}: PGM adaptive stopping is not supported")
        elif key == "Momentum":
            if value is not None and type(value).__name__ != "MomentumNesterov":
                raise ValueError(f"{name}: only Nesterov momentum is supported, got {type(value).__name__}")
        else:
            raise ValueError(f"{name}: unknown SPORCO dictionary-step option")
    return DictUpdateOptions(**fields_)


#: CBPDN options of SPORCO's online learner (``OnlineConvBPDNDictLearn.Options``).
ONLINE_CBPDN_DEFAULTS = CBPDNOptions(
    max_iter=100, rho_period=10, auto_scaling=False, rsdl_ratio=10.0, rho_scaling=2.0, rsdl_target=1.0
)
_ONLINE_CBPDN_SPORCO = {
    "MaxMainIter": 100,
    "AutoRho": {"Period": 10, "AutoScaling": False, "RsdlRatio": 10.0, "Scaling": 2.0, "RsdlTarget": 1.0},
}


@dataclass(frozen=True)
class OnlineDictLearnOptions:
    """Options of :class:`OnlineDictLearn` (SPORCO ``OnlineConvBPDNDictLearn.Options``).

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
        object.__setattr__(self, "dtype", _as_dtype(self.dtype))
        if type(self.cbpdn_mask) is not MaskDcplOptions:
            raise TypeError(f"cbpdn_mask: expected MaskDcplOptions, got {type(self.cbpdn_mask).__name__}")
        if self.cbpdn_mask.max_iter < 1:
            raise ValueError("cbpdn_mask: max_iter must be >= 1")
        for name in ("eta_a", "eta_b"):
            check_number(name, getattr(self, name), minimum=0, strict=True)
        for name in ("zero_mean", "nonneg"):
            object.__setattr__(self, name, check_bool(name, getattr(self, name)))
        if self.device is not None:
            resolve_device(self.device, arg="device")
        if type(self.cbpdn) is not CBPDNOptions:  # a variant's options (GradRegOptions) would be ignored
            raise TypeError(f"cbpdn: expected CBPDNOptions, got {type(self.cbpdn).__name__}")
        if self.cbpdn.max_iter < 1:
            raise ValueError("cbpdn: max_iter must be >= 1")
        from csc.learn.constraints import KernelConstraint

        KernelConstraint((1, 1), self.zero_mean, self.nonneg)

    def replace(self, **changes) -> "OnlineDictLearnOptions":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_sporco(cls, opt: Mapping[str, Any] | None = None, masked: bool = False,
                    **overrides) -> "OnlineDictLearnOptions":
        """Build options from SPORCO's ``OnlineConvBPDNDictLearn`` option dict (``eta_a``,
        ``eta_b``, ``ZeroMean``, ``DataType``, ``DictSize`` (None), ``CUDA_CBPDN`` (False),
        display options, and ``CBPDN`` merged over the online learner's defaults); with
        ``masked``, SPORCO's ``OnlineConvBPDNMaskDictLearn`` dict, whose ``CBPDN`` (the
        ``ConvBPDNMaskDcpl`` options) becomes ``cbpdn_mask``."""
        out: dict[str, Any] = {}
        for key, value in _option_dict("opt", opt).items():
            if key in ("eta_a", "eta_b"):
                out[key] = value
            elif key == "ZeroMean":
                out["zero_mean"] = bool(value)
            elif key == "DataType":
                out["dtype"] = value
            elif key == "Verbose":
                _warn_verbose(value)
            elif key in ("StatusHeader", "IterTimer", "MaxMainIter"):
                continue
            elif key in ("DictSize", "Callback"):
                if value is not None:
                    raise ValueError(f"{key}: SPORCO option not supported by csc (must be None)")
            elif key == "CUDA_CBPDN":
                if value:
                    raise ValueError("CUDA_CBPDN: use OnlineDictLearnOptions(device='cuda') instead")
            elif key == "CBPDN" and masked:
                out["cbpdn_mask"] = MaskDcplOptions.from_sporco(_as_dict(key, value))
            elif key == "CBPDN":
                out["cbpdn"] = CBPDNOptions.from_sporco(_merge(_ONLINE_CBPDN_SPORCO, _as_dict(key, value)))
            else:
                raise ValueError(f"{key}: unknown SPORCO OnlineConvBPDNDictLearn option")
        out.update(overrides)
        return cls(**out)


def _jsonable(obj) -> Any:
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


# ------------------------------------------------------------------- FISTA (SPORCO pgm)
_MOMENTA = ("nesterov", "linear", "genlinear")
_BACKTRACKS = (None, "standard", "robust")
#: csc field ← SPORCO ``pgm.cbpdn.ConvBPDN.Options`` name (objects written as Class.attribute).
SPORCO_FISTA_NAMES: dict[str, str] = {
    "max_iter": "MaxMainIter", "rel_stop_tol": "RelStopTol", "L": "L",
    "auto_stop": "AutoStop.Enabled", "tau0": "AutoStop.Tau0", "monotone": "Monotone",
    "momentum": "Momentum (MomentumNesterov | MomentumLinear | MomentumGenLinear)",
    "momentum_a": "MomentumGenLinear.a", "momentum_b": "MomentumLinear.b / MomentumGenLinear.b",
    "backtrack": "Backtrack (None | BacktrackStandard | BacktrackRobust)",
    "gamma_u": "Backtrack.gamma_u", "gamma_d": "BacktrackRobust.gamma_d", "backtrack_max_iter": "Backtrack.maxiter",
    "l1_weight": "L1Weight", "nonneg": "NonNegCoef", "no_boundary_cross": "NoBndryCross",
    "record_stats": "FastSolve (inverted)", "dtype": "DataType", "device": "(none)", "backend": "(none)",
    "fftw_planner": "(none)",
}


@dataclass(frozen=True)
class FISTAOptions:
    """Options of :class:`csc.ConvBPDNFISTA` (SPORCO 0.2.2 ``pgm.cbpdn.ConvBPDN.Options``), SPORCO's defaults.

    Attributes
    ----------
    max_iter : int
        Iteration limit (``MaxMainIter``, 1000).
    rel_stop_tol : float
        Stop when the fixed-point residual ‖x_k − y_k‖² falls below it (``RelStopTol``,
        1e-3; SPORCO's residual is squared and not normalised).
    L : float
        Initial inverse step size L (``L``, 500 for ConvBPDN); each image keeps its own.
    auto_stop, tau0 : bool, float
        Adaptive tolerance τ₀/(1 + k) instead of ``rel_stop_tol`` (``AutoStop``, off, 1e-2).
    monotone : bool
        Monotone FISTA of Beck & Teboulle 2009 (``Monotone``, False): an iterate that raises
        the objective is rejected in the DFT domain (as SPORCO, the spatial x is kept).
    momentum : str
        ``"nesterov"`` t ← (1 + √(1 + 4t²))/2 (SPORCO's default), ``"linear"`` t = (k + b)/b,
        ``"genlinear"`` t = (k + a)/b (``Momentum``).
    momentum_a, momentum_b : float
        a and b of the linear momenta (SPORCO's defaults 50, 2).
    backtrack : None, "standard" or "robust"
        Step-size backtracking (``Backtrack``, None): ``"standard"`` (Beck & Teboulle:
        L ← γ_u L until F ≤ Q, ``BacktrackStandard``), ``"robust"`` (Florea & Vorobyov 2017,
        ``BacktrackRobust``: L ← γ_d L each iteration, then the same search).
    gamma_u : float or None
        Increase factor of L (None: 1.2 for standard, 2.0 for robust, SPORCO's).
    gamma_d : float
        Decrease factor of robust backtracking (0.9).
    backtrack_max_iter : int
        Trials per line search (``maxiter``, 50).
    l1_weight, nonneg, no_boundary_cross, record_stats, dtype, device, backend, fftw_planner
        As in :class:`CBPDNOptions` (``L1Weight``, ``NonNegCoef``, ``NoBndryCross``,
        ``FastSolve`` inverted, ``DataType``). With ``record_stats=False`` csc still stops
        at the tolerance (SPORCO's ``FastSolve`` runs ``MaxMainIter`` iterations).
    """

    max_iter: int = 1000
    rel_stop_tol: float = 1e-3
    L: float = 500.0
    auto_stop: bool = False
    tau0: float = 1e-2
    monotone: bool = False
    momentum: str = "nesterov"
    momentum_a: float = 50.0
    momentum_b: float = 2.0
    backtrack: str | None = None
    gamma_u: float | None = None
    gamma_d: float = 0.9
    backtrack_max_iter: int = 50
    l1_weight: Any = 1.0
    nonneg: bool = False
    no_boundary_cross: bool = False
    record_stats: bool = True
    dtype: torch.dtype | None = None
    device: torch.device | str | None = None
    backend: str = "auto"
    fftw_planner: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", _as_dtype(self.dtype))
        check_int("max_iter", self.max_iter, 0)
        check_int("backtrack_max_iter", self.backtrack_max_iter, 1)
        check_number("rel_stop_tol", self.rel_stop_tol, minimum=0)
        for name in ("L", "tau0"):
            check_number(name, getattr(self, name), minimum=0, strict=True)
        check_number("gamma_u", self.gamma_u, minimum=1, strict=True, none=True)
        check_number("gamma_d", self.gamma_d, minimum=0, maximum=1, strict=True)
        check_number("momentum_b", self.momentum_b, minimum=0, strict=True)
        check_number("momentum_a", self.momentum_a, minimum=0)
        for name in ("auto_stop", "monotone", "nonneg", "no_boundary_cross", "record_stats"):
            object.__setattr__(self, name, check_bool(name, getattr(self, name)))
        if self.momentum not in _MOMENTA:
            raise ValueError(f"momentum: expected one of {_MOMENTA}, got {self.momentum!r}")
        if self.backtrack not in _BACKTRACKS:
            raise ValueError(f"backtrack: expected one of {_BACKTRACKS}, got {self.backtrack!r}")
        if isinstance(self.l1_weight, (bool, np.bool_, str, bytes)) or self.l1_weight is None:
            raise TypeError(f"l1_weight: expected a number or an array of weights, got {self.l1_weight!r}")
        if _is_real(self.l1_weight):
            check_number("l1_weight", self.l1_weight, minimum=0)
        if self.device is not None:
            resolve_device(self.device, arg="device")
        if self.backend not in _BACKENDS:
            raise ValueError(f"backend: expected one of {_BACKENDS}, got {self.backend!r}")
        check_planner("fftw_planner", self.fftw_planner)

    @property
    def increase(self) -> float:
        """γ_u: ``gamma_u``, or SPORCO's default of the chosen backtracking."""
        if self.gamma_u is not None:
            return float(self.gamma_u)
        return 2.0 if self.backtrack == "robust" else 1.2

    def replace(self, **changes) -> "FISTAOptions":
        """Return a copy with the given fields changed."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_sporco(cls, opt: Mapping[str, Any] | None = None, **overrides) -> "FISTAOptions":
        """Build options from a SPORCO ``pgm.cbpdn.ConvBPDN`` option dict (its ``Backtrack``
        and ``Momentum`` objects included). ``X0`` goes to ``solve(x0=...)``;
        ``StepSizePolicy`` (Cauchy, Barzilai–Borwein) is not offered."""
        fields: dict[str, Any] = {}
        for key, value in _option_dict("opt", opt).items():
            if key in _FISTA_TOP:
                fields[_FISTA_TOP[key]] = value
            elif key == "AutoStop":
                for sub, subval in dict(value).items():
                    if sub not in ("Enabled", "Tau0"):
                        raise ValueError(f"AutoStop.{sub}: unknown SPORCO AutoStop option")
                    fields["auto_stop" if sub == "Enabled" else "tau0"] = subval
            elif key == "FastSolve":
                fields["record_stats"] = not bool(value)
            elif key == "DataType":
                fields["dtype"] = value
            elif key == "Backtrack":
                fields.update(_backtrack_from_sporco(value))
            elif key == "Momentum":
                fields.update(_momentum_from_sporco(value))
            elif key in ("Verbose", "StatusHeader", "IterTimer"):
                continue
            elif key in ("X0", "Callback", "StepSizePolicy"):
                if value is not None:
                    raise ValueError(f"{key}: SPORCO option not taken here"
                                     + (" (pass x0= to ConvBPDNFISTA.solve)" if key == "X0" else ""))
            else:
                raise ValueError(f"{key}: unknown SPORCO pgm.cbpdn.ConvBPDN option")
        if "l1_weight" in fields:
            fields["l1_weight"] = _l1_weight_from_sporco(fields["l1_weight"])
        fields.update(overrides)
        return cls(**fields)


_FISTA_TOP = {"MaxMainIter": "max_iter", "RelStopTol": "rel_stop_tol", "L": "L", "Monotone": "monotone",
              "L1Weight": "l1_weight", "NonNegCoef": "nonneg", "NoBndryCross": "no_boundary_cross"}


def _backtrack_from_sporco(obj) -> dict[str, Any]:
    """The fields of a SPORCO ``Backtrack`` object (None, BacktrackStandard, BacktrackRobust)."""
    if obj is None:
        return {"backtrack": None}
    name = type(obj).__name__
    if name == "BacktrackStandard":
        return {"backtrack": "standard", "gamma_u": obj.gamma_u, "backtrack_max_iter": obj.maxiter}
    if name == "BacktrackRobust":
        return {"backtrack": "robust", "gamma_u": obj.gamma_u, "gamma_d": obj.gamma_d,
                "backtrack_max_iter": obj.maxiter}
    raise ValueError(f"Backtrack: expected None, BacktrackStandard or BacktrackRobust, got {name}")


def _momentum_from_sporco(obj) -> dict[str, Any]:
    """The fields of a SPORCO ``Momentum`` object."""
    name = type(obj).__name__
    if name == "MomentumNesterov":
        return {"momentum": "nesterov"}
    if name == "MomentumLinear":
        return {"momentum": "linear", "momentum_b": obj.b}
    if name == "MomentumGenLinear":
        return {"momentum": "genlinear", "momentum_a": obj.a, "momentum_b": obj.b}
    raise ValueError(f"Momentum: expected MomentumNesterov, MomentumLinear or MomentumGenLinear, got {name}")

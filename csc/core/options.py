"""Typed options for the solvers, with SPORCO's defaults and a mapping from SPORCO's names.

Every field of :class:`CBPDNOptions` corresponds to an option of SPORCO's
``admm.cbpdn.ConvBPDN.Options``; the table :data:`SPORCO_CBPDN_NAMES` gives the
correspondence and :meth:`CBPDNOptions.from_sporco` converts a SPORCO option dict, by the
name tables of :mod:`csc.core.sporco_options` (one per options class; :class:`FISTAOptions`'
too). The learners' options (:class:`csc.DictLearnOptions`, :class:`csc.DictUpdateOptions`,
:class:`csc.OnlineDictLearnOptions` and their defaults) are in :mod:`csc.learn.options`; their
old names here still work, deprecated (:func:`__getattr__`).
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import numpy as np
import torch

from csc import _compat
from csc.core import sporco_options
from csc.core.checks import _is_real, check_bool, check_int, check_number
from csc.core.sporco_options import SPORCO_CBPDN_NAMES, SPORCO_FISTA_NAMES
from csc.runtime.device import resolve_device

__all__ = ["CBPDNOptions", "GradRegOptions", "MaskDcplOptions", "L1L1GrdOptions", "SPORCO_CBPDN_NAMES", "FISTAOptions",
           "SPORCO_FISTA_NAMES"]

_BACKENDS = ("auto", "numba", "compiled", "torch")
#: values of :attr:`CBPDNOptions.coupling`
COUPLINGS = ("image", "sporco")
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


def _check_coding(opts) -> None:
    """The checks :class:`CBPDNOptions` and :class:`FISTAOptions` share (run first): the dtype
    (made a torch dtype), the iteration limit, the flags ``nonneg``, ``no_boundary_cross`` and
    ``record_stats`` (made bools), the ℓ1 weights, the device, the back end and the FFTW planner."""
    object.__setattr__(opts, "dtype", _as_dtype(opts.dtype))
    check_int("max_iter", opts.max_iter, 0)
    for name in ("nonneg", "no_boundary_cross", "record_stats"):
        object.__setattr__(opts, name, check_bool(name, getattr(opts, name)))
    if isinstance(opts.l1_weight, (bool, np.bool_, str, bytes)) or opts.l1_weight is None:
        raise TypeError(f"l1_weight: expected a number or an array of weights, got {opts.l1_weight!r}")
    if _is_real(opts.l1_weight):
        check_number("l1_weight", opts.l1_weight, minimum=0)
    if opts.device is not None:
        resolve_device(opts.device, arg="device")
    if opts.backend not in _BACKENDS:
        raise ValueError(f"backend: expected one of {_BACKENDS}, got {opts.backend!r}")
    check_planner("fftw_planner", opts.fftw_planner)


def check_admm_parameters(opts) -> None:
    """The checks of the ADMM parameters that :class:`CBPDNOptions` and the ``'cns'``
    dictionary step's (:class:`csc.DictUpdateOptions`) share: stopping tolerances ≥ 0,
    relaxation in (0, 2], the ρ update's period ≥ 1, its multiplier and residual ratio ≥ 1
    (below 1 the update diverges), and its flags ``auto_rho``, ``auto_scaling``,
    ``std_residuals`` (made bools)."""
    for name in ("abs_stop_tol", "rel_stop_tol"):
        check_number(name, getattr(opts, name), minimum=0)
    check_number("relax", opts.relax, minimum=0, maximum=2, strict=True)
    check_int("rho_period", opts.rho_period, 1)
    for name in ("rho_scaling", "rsdl_ratio"):
        check_number(name, getattr(opts, name), minimum=1)
    for name in ("auto_rho", "auto_scaling", "std_residuals"):
        object.__setattr__(opts, name, check_bool(name, getattr(opts, name)))


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
    verbose : bool
        Print SPORCO's iteration table (``Verbose``): iteration, objective, data fidelity,
        ℓ1 term, primal and dual residuals and ρ, one row per iteration and image (an
        ``img`` column for a batch), flushed at every host read (default False). Long
        solves show their progress this way; Ctrl-C stops them with a ``KeyboardInterrupt``.
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
    coupling : str
        ``"image"`` (default): every image of a batch, and every channel of an image coded
        with a single-channel dictionary, is its own ADMM problem (own ρ, residuals and
        stopping; csc's semantics). ``"sporco"``: the whole array is one ADMM problem, as
        SPORCO solves a multi-image array or a colour image with a grey dictionary (one ρ,
        residual norms summed over the images and channels, one stopping test); the
        statistics are then one record for the array.
    rho_policy : str
        How the adaptive ρ is updated (with ``auto_rho``): ``"residual"`` (default, SPORCO's
        residual balancing, the fields above) or ``"spectral"``: Xu, Figueiredo and Goldstein's
        spectral penalty (AISTATS 2017, :mod:`csc.core.rho_policy`), ρ = √(α̂β̂) from
        curvature estimates of the data term and of the ℓ1 term over the last
        max(``rho_period``, 2) iterations, per image, one change capped at ``rho_scaling``.
        Per-image solves only (not the learners); not SPORCO's iterates. Measured
        (``benchmarks/rho_policy.py``): on high-passed photographs it needs 1.4–1.5× the
        iterations of residual balancing to reach 1e-3 and 1e-4 of the optimum, so it is
        not the default.
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
    verbose: bool = False
    dtype: torch.dtype | None = None
    device: torch.device | str | None = None
    sync_interval: int | None = None
    backend: str = "auto"
    fftw_planner: str | None = None
    coupling: str = "image"
    rho_policy: str = "residual"

    #: the SPORCO option names this class takes (its SPORCO class's table)
    _sporco: ClassVar[sporco_options.SporcoTable] = sporco_options.CBPDN

    def __post_init__(self) -> None:
        _check_coding(self)
        check_admm_parameters(self)
        for name in ("rho", "rsdl_target"):
            check_number(name, getattr(self, name), minimum=0, strict=True, none=True)
        check_int("sync_interval", self.sync_interval, 1, none=True)
        if not isinstance(self.coupling, str) or self.coupling not in COUPLINGS:
            raise ValueError(f"coupling: expected one of {COUPLINGS}, got {self.coupling!r}")
        object.__setattr__(self, "objective_on_y", check_bool("objective_on_y", self.objective_on_y))
        object.__setattr__(self, "verbose", check_bool("verbose", self.verbose))
        if self.rho_policy not in ("residual", "spectral"):
            raise ValueError(f"rho_policy: expected 'residual' or 'spectral', got {self.rho_policy!r}")

    def replace(self, **changes) -> "CBPDNOptions":
        """Return a copy with the given fields changed."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_sporco(cls, opt: Mapping[str, Any] | None = None, **overrides) -> "CBPDNOptions":
        """Build options from a SPORCO ``ConvBPDN`` option dict (a subclass's: its SPORCO class's).

        Accepts the nested ``AutoRho`` dict, ``FastSolve`` (→ ``record_stats=False``),
        ``DataType`` and the display-only options (ignored). Unknown names, and SPORCO
        options that csc takes elsewhere (``Y0``, ``U0``, ``Callback``, …), raise
        ``ValueError``. ``L1Weight`` arrays in SPORCO's layout (spatial axes first,
        kernel axis last) are converted to csc's (K, H, W) layout. ``overrides`` (csc field
        names) are applied last. The names are the class's table in
        :mod:`csc.core.sporco_options` (:data:`~csc.core.sporco_options.CBPDN` here).
        """
        return cls._sporco.build(cls, opt, overrides)


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

    _sporco: ClassVar[sporco_options.SporcoTable] = sporco_options.GRADREG

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

    _sporco: ClassVar[sporco_options.SporcoTable] = sporco_options.MASKDCPL

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

    _sporco: ClassVar[sporco_options.SporcoTable] = sporco_options.L1L1GRD


def default_rsdl_target(lmbda: float) -> float:
    """SPORCO's residual target ξ = 1 + 18.3^(log10 λ + 1) (1 when λ = 0)."""
    if lmbda == 0.0:
        return 1.0
    return float(1.0 + 18.3 ** (np.log10(lmbda) + 1.0))


# ------------------------------------------------------------------- FISTA (SPORCO pgm)
_MOMENTA = ("nesterov", "linear", "genlinear")
_BACKTRACKS = (None, "standard", "robust")


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

    _sporco: ClassVar[sporco_options.SporcoTable] = sporco_options.FISTA

    def __post_init__(self) -> None:
        _check_coding(self)
        check_int("backtrack_max_iter", self.backtrack_max_iter, 1)
        check_number("rel_stop_tol", self.rel_stop_tol, minimum=0)
        for name in ("L", "tau0"):
            check_number(name, getattr(self, name), minimum=0, strict=True)
        check_number("gamma_u", self.gamma_u, minimum=1, strict=True, none=True)
        check_number("gamma_d", self.gamma_d, minimum=0, maximum=1, strict=True)
        check_number("momentum_b", self.momentum_b, minimum=0, strict=True)
        check_number("momentum_a", self.momentum_a, minimum=0)
        for name in ("auto_stop", "monotone"):
            object.__setattr__(self, name, check_bool(name, getattr(self, name)))
        if self.momentum not in _MOMENTA:
            raise ValueError(f"momentum: expected one of {_MOMENTA}, got {self.momentum!r}")
        if self.backtrack not in _BACKTRACKS:
            raise ValueError(f"backtrack: expected one of {_BACKTRACKS}, got {self.backtrack!r}")

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
        ``StepSizePolicy`` (Cauchy, Barzilai–Borwein) is not offered. ``overrides`` (csc
        field names) are applied last; the names are :data:`csc.core.sporco_options.FISTA`."""
        return cls._sporco.build(cls, opt, overrides)


# ====================================================== the learners' options, moved
#: the names of :mod:`csc.learn.options` that were defined here before it existed
_MOVED_TO_LEARN = frozenset({"DictUpdateOptions", "DictLearnOptions", "OnlineDictLearnOptions",
                             "DICTLEARN_CBPDN_DEFAULTS", "DICTLEARN_MASKDCPL_DEFAULTS", "ONLINE_CBPDN_DEFAULTS"})


def __getattr__(name: str):
    """The learners' options under their old names here (``from csc.core.options import
    DictLearnOptions``): deprecated, with a :class:`DeprecationWarning` naming
    :mod:`csc.learn.options` and the removal (:data:`csc._compat.REMOVAL`). The core imports
    nothing from the learners: the object is read from the loaded module, which ``import
    csc`` always loads (``csc/__init__.py`` imports the learners)."""
    if name in _MOVED_TO_LEARN:
        learn_options = sys.modules.get("csc.learn.options")
        if learn_options is None:
            raise AttributeError(f"csc.core.options.{name} moved to csc.learn.options; import it from there")
        _compat.warn_moved(f"csc.core.options.{name}", f"csc.learn.options.{name}", stacklevel=2)
        return getattr(learn_options, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

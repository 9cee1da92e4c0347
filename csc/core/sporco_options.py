"""SPORCO option dicts → csc's option dataclasses: one name table per options class.

A :class:`SporcoTable` maps each SPORCO option name that an options class accepts to a
*rule*: the csc field it sets (:class:`Field`, with an optional converter; a bool option's
rule wrapped in :class:`Flag`, which refuses anything but True or False — ``"no"`` is never
read as true — naming the option), the fields of a
SPORCO object (:class:`FromObject`: ``Backtrack``, ``Momentum``), a nested dict read by its
own table (:class:`Nested`: ``AutoRho``), a nested options dict built into another options
class (:class:`SubOptions`: the learners' ``CBPDN`` and ``CCMOD``), an option SPORCO derives
from another (:class:`Derived`: ``fEvalX``), one csc ignores (:data:`IGNORED`, and
:data:`VERBOSE`, which says so), or one csc refuses — always (:func:`refused`) or unless it
has an accepted value (:class:`Only`: ``Y0=None``). Every message names the option, nested
ones with their path (``AutoRho.Period``, ``CCMOD.L``); a name not in the table is refused
as unknown. :meth:`SporcoTable.build` makes the options, an error of the dataclass's checks
re-raised with the SPORCO name of the field it is about.

Adding a SPORCO option to csc is one row in its class's table; the documentation tables
(:data:`SPORCO_CBPDN_NAMES`, :data:`SPORCO_FISTA_NAMES`: csc field → SPORCO name) are read
off the tables, with the csc-only fields (``device``, ``backend`` …) named in ``csc_only``.

This module holds the tables of the solvers' options (:data:`CBPDN`, its variants',
:data:`FISTA`); the learners' (``ConvBPDNDictLearn``, ``CCMOD``, the online learner's) are in
:mod:`csc.learn.options`, on the same rules.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from csc.core.checks import check_bool

__all__ = ["SporcoTable", "Rule", "Field", "Flag", "FromObject", "Nested", "SubOptions", "Derived", "Only", "refused",
           "unset", "IGNORED", "IGNORED_FLAG", "VERBOSE", "CBPDN", "GRADREG", "MASKDCPL", "L1L1GRD", "JOINT", "INHIB", "L1L1GRD_JOINT", "FISTA",
           "SPORCO_CBPDN_NAMES", "SPORCO_FISTA_NAMES", "AUTORHO_FIELDS", "autorho_rules", "l1_weight_from_sporco",
           "l21_weight_from_sporco", "option_dict", "as_dict", "merge"]


# ================================================================== the mechanism
class _Translation:
    """The fields read so far from one SPORCO dict (nested dicts included), the table's
    class name for messages, and the checks to run once every option is read."""

    def __init__(self, what: str):
        self.what = what
        self.fields: dict[str, Any] = {}
        self.checks: list[Callable[[dict[str, Any]], None]] = []


class Rule:
    """What one SPORCO option does: :meth:`Rule.apply` reads its value into the translation;
    :meth:`Rule.documented` and :meth:`Rule.sources` name the csc fields it sets (none by default)."""

    def apply(self, key: str, value: Any, tr: _Translation) -> None:
        raise NotImplementedError

    def documented(self, key: str) -> dict[str, str]:
        """csc field → SPORCO name (with a note), for the documentation tables."""
        return {}

    def sources(self, key: str) -> dict[str, str]:
        """csc field → the option ``key`` it is read from, for messages."""
        return {}


@dataclass(frozen=True)
class Field(Rule):
    """The option sets csc field ``name`` to its value, or to ``convert(value)``.

    ``skip_none``: a None value leaves the field at its default (SPORCO's ``CCMOD`` options,
    whose None means "SPORCO's default"). ``note``: how the value maps, for the
    documentation tables (``"inverted"`` for ``FastSolve``)."""

    name: str
    convert: Callable[[Any], Any] | None = None
    skip_none: bool = False
    note: str = ""

    def apply(self, key: str, value: Any, tr: _Translation) -> None:
        if value is None and self.skip_none:
            return
        tr.fields[self.name] = value if self.convert is None else self.convert(value)

    def documented(self, key: str) -> dict[str, str]:
        return {self.name: f"{key} ({self.note})" if self.note else key}

    def sources(self, key: str) -> dict[str, str]:
        return {self.name: key}


@dataclass(frozen=True)
class Flag(Rule):
    """A SPORCO flag (a bool option): its value must be True or False (numpy's too), checked
    by :func:`csc.core.checks.check_bool` under the SPORCO name (``"no"``, ``"False"``, 0, 1.5
    or None are a ``TypeError`` naming the option, never read as true), then ``rule`` applied
    to the bool. ``none``: None is passed on to ``rule`` as is (SPORCO's ``CCMOD`` options,
    whose None means "SPORCO's default"). Every bool option of every table goes through it."""

    rule: Rule
    none: bool = False

    def apply(self, key: str, value: Any, tr: _Translation) -> None:
        if not (value is None and self.none):
            value = check_bool(key, value)
        self.rule.apply(key, value, tr)

    def documented(self, key: str) -> dict[str, str]:
        return self.rule.documented(key)

    def sources(self, key: str) -> dict[str, str]:
        return self.rule.sources(key)


@dataclass(frozen=True)
class FromObject(Rule):
    """The option is a SPORCO object (``Backtrack``, ``Momentum``) that sets several fields:
    ``convert(value)`` returns them (and raises ``ValueError`` naming the option for an
    object it does not know). ``names``: csc field → SPORCO attribute, for the tables."""

    convert: Callable[[Any], dict[str, Any]]
    names: Mapping[str, str]

    def apply(self, key: str, value: Any, tr: _Translation) -> None:
        tr.fields.update(self.convert(value))

    def documented(self, key: str) -> dict[str, str]:
        return dict(self.names)

    def sources(self, key: str) -> dict[str, str]:
        return {name: key for name in self.names}


@dataclass(frozen=True)
class Nested(Rule):
    """The option is a dict of sub-options (``AutoRho``, ``AutoStop``) read by ``table``
    into the same fields; anything but a dict is refused."""

    table: "SporcoTable"

    def apply(self, key: str, value: Any, tr: _Translation) -> None:
        if not isinstance(value, Mapping):
            raise ValueError(f"{key}: expected a dict of {self.table.what} options, got {value!r} (e.g. "
                             f"{{'{key}': {{'Enabled': True}}}})")
        self.table.read(value, tr, prefix=f"{key}.")

    def documented(self, key: str) -> dict[str, str]:
        return self.table.documented(prefix=f"{key}.")

    def sources(self, key: str) -> dict[str, str]:
        return self.table.sources(prefix=f"{key}.")


@dataclass(frozen=True)
class SubOptions(Rule):
    """The option is a dict of another options class's SPORCO options (the learners'
    ``CBPDN`` and ``CCMOD``), merged over ``defaults`` (a SPORCO dict; SPORCO's learners
    merge theirs so) and made into field ``name`` by ``make(dict)``."""

    name: str
    make: Callable[[dict], Any]
    defaults: Mapping[str, Any] | None = None

    def apply(self, key: str, value: Any, tr: _Translation) -> None:
        opt = as_dict(key, value)
        try:
            tr.fields[self.name] = self.make(merge(self.defaults, opt) if self.defaults else opt)
        except (TypeError, ValueError) as exc:  # name the option as the user wrote it: CBPDN.MaxMainIter
            msg = str(exc)
            if msg.startswith(f"{key}.") or msg.partition(":")[0].partition(" ")[0].partition(".")[0] not in opt:
                raise
            raise type(exc)(f"{key}.{msg}") from None

    def documented(self, key: str) -> dict[str, str]:
        return {self.name: key}

    def sources(self, key: str) -> dict[str, str]:
        return {self.name: key}


@dataclass(frozen=True)
class Derived(Rule):
    """An option SPORCO derives from another (``fEvalX`` = not ``AuxVarObj``): accepted when
    ``bool(value)`` is ``derive`` of field ``name`` as read from the same dict (``default``
    when absent), refused otherwise with the reason ``why``."""

    name: str
    derive: Callable[[bool], bool]
    source: str
    why: str
    default: Any = False

    def apply(self, key: str, value: Any, tr: _Translation) -> None:
        def check(fields: dict[str, Any]) -> None:
            src = bool(fields.get(self.name, self.default))
            if bool(value) != self.derive(src):
                raise ValueError(f"{key}: {bool(value)} is inconsistent with {self.source}={src}; {self.why}")

        tr.checks.append(check)


def _format(reason: str, value: Any, tr: _Translation) -> str:
    return reason.format(what=tr.what, type=type(value).__name__, value=repr(value))


@dataclass(frozen=True)
class Only(Rule):
    """The option is accepted (and has no effect) when ``accept(value)``; otherwise a
    ``ValueError`` "option: reason". ``reason`` may name ``{what}`` (the table's SPORCO
    class) and ``{type}`` (the value's type)."""

    accept: Callable[[Any], bool]
    reason: str

    def apply(self, key: str, value: Any, tr: _Translation) -> None:
        if not self.accept(value):
            raise ValueError(f"{key}: {_format(self.reason, value, tr)}")


def refused(reason: str) -> Only:
    """An option refused whatever its value (one of a variant's, one of another step's):
    a ``ValueError`` "option: reason" (``{what}``, ``{type}`` as in :class:`Only`)."""
    return Only(lambda value: False, reason)


def _is_none(value) -> bool:
    return value is None


def unset(reason: str) -> Only:
    """An option csc does not take, accepted when None: "option: reason" otherwise."""
    return Only(_is_none, reason)


IGNORED = Only(lambda value: True, "")
"""An option that only changes SPORCO's display, timers or an equivalent code path: accepted, no effect."""

IGNORED_FLAG = Flag(IGNORED)
"""A bool option csc ignores (:data:`IGNORED`), its value checked all the same (:class:`Flag`)."""


def _stacklevel_outside_csc() -> int:
    """The ``stacklevel`` that makes :func:`warnings.warn`, called by the caller of this
    function, name the first frame outside the csc package (the user's call)."""
    frame, level = sys._getframe(2), 2
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] == "csc":
        frame, level = frame.f_back, level + 1
    return level


class _Verbose(Rule):
    """SPORCO's ``Verbose``: csc prints no iteration table; say so instead of ignoring it."""

    def apply(self, key: str, value: Any, tr: _Translation) -> None:
        if value:
            warnings.warn("Verbose: csc does not print SPORCO's per-iteration table; the same numbers are in "
                          "result.stats (record_stats=True, the default)", UserWarning,
                          stacklevel=_stacklevel_outside_csc())


VERBOSE = Flag(_Verbose())
"""SPORCO's ``Verbose`` (a :class:`Flag`): accepted, with a warning when true (csc prints no iteration table)."""


@dataclass(frozen=True)
class SporcoTable:
    """The SPORCO options of one options class: SPORCO option name → rule.

    Attributes
    ----------
    what : str
        SPORCO's name of the class whose options these are (``"ConvBPDN"``), for messages.
    rules : mapping
        SPORCO option name → rule (:class:`Field`, :class:`FromObject`, :class:`Nested`,
        :class:`SubOptions`, :class:`Derived`, :class:`Only`, :data:`IGNORED`, :data:`VERBOSE`).
    csc_only : mapping
        csc fields with no SPORCO option → a note, for :meth:`documented` (default none).
    """

    what: str
    rules: Mapping[str, Any]
    csc_only: Mapping[str, str] = field(default_factory=dict)

    def extend(self, what: str, rules: Mapping[str, Any] | None = None) -> "SporcoTable":
        """This table for SPORCO's class ``what``, with ``rules`` added or replacing rows."""
        return SporcoTable(what, {**self.rules, **(rules or {})}, self.csc_only)

    def read(self, opt: Mapping[str, Any], tr: _Translation, prefix: str = "") -> None:
        """Apply the rule of every option of ``opt`` (its names written ``prefix + name``)."""
        for key, value in opt.items():
            rule = self.rules.get(key)
            if rule is None:
                known = f"; known: {sorted(self.rules)}" if prefix else ""
                raise ValueError(f"{prefix}{key}: unknown SPORCO {self.what} option{known}")
            rule.apply(f"{prefix}{key}", value, tr)

    def translate(self, opt: Mapping[str, Any] | None, prefix: str = "") -> dict[str, Any]:
        """The csc fields of a SPORCO option dict ``opt`` (None: empty); ``TypeError`` for
        anything but a dict, ``ValueError`` naming the option for an unknown or refused one."""
        tr = _Translation(self.what)
        self.read(option_dict("opt", opt), tr, prefix)
        for check in tr.checks:
            check(tr.fields)
        return tr.fields

    def build(self, cls, opt: Mapping[str, Any] | None, overrides: Mapping[str, Any] | None = None,
              prefix: str = ""):
        """``cls(**fields)`` of :meth:`translate` ``(opt)`` updated by ``overrides``; an error
        of ``cls``'s checks about a field is re-raised naming the SPORCO option it maps to."""
        fields = self.translate(opt, prefix)
        fields.update(overrides or {})
        try:
            return cls(**fields)
        except (TypeError, ValueError) as exc:
            name = str(exc).split(":", 1)[0]
            sources = self.sources(prefix)
            if name in sources:
                raise type(exc)(f"{sources[name]} ({exc})") from None
            raise

    def documented(self, prefix: str = "") -> dict[str, str]:
        """csc field → the SPORCO option it comes from (with its note), and the csc-only
        fields with theirs."""
        out: dict[str, str] = {}
        for key, rule in self.rules.items():
            out.update(rule.documented(f"{prefix}{key}"))
        return {**out, **self.csc_only}

    def sources(self, prefix: str = "") -> dict[str, str]:
        """csc field → the SPORCO option it is read from (for messages)."""
        out: dict[str, str] = {}
        for key, rule in self.rules.items():
            out.update(rule.sources(f"{prefix}{key}"))
        return out


def option_dict(name: str, opt) -> dict:
    """A SPORCO option dict (None: empty); TypeError naming ``name`` for anything else."""
    if opt is None:
        return {}
    if not isinstance(opt, Mapping):
        raise TypeError(f"{name}: expected a dict of SPORCO options (or None), got {type(opt).__name__}")
    return dict(opt)


def as_dict(name: str, value) -> dict:
    """A nested SPORCO option dict as a plain dict (its own nested dicts too); ValueError
    naming ``name`` for anything else."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{name}: expected a dict of options, got {type(value).__name__}")
    return {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in dict(value).items()}


def merge(base: Mapping, new: Mapping) -> dict:
    """``new`` over ``base``, nested dicts merged key by key (SPORCO's option update)."""
    out = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in base.items()}
    for k, v in new.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


# ================================================================== converters
def l1_weight_from_sporco(w):
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
        # channel-dependent (K, H, W, C[, B]) → (B or 1, C, K, H, W): codes (B, C, K, H, W) of
        # colour images under a grey dictionary
        k5 = k_last if k_last.ndim == 5 else k_last[..., None]
        return np.ascontiguousarray(np.transpose(k5, (4, 3, 0, 1, 2)))
    return k_last.reshape(k_last.shape[:3])


def l21_weight_from_sporco(w):
    """SPORCO's L21Weight → csc's: a scalar, (K,), or a map in SPORCO's layout of the
    channel-reduced coefficients, (H, W, 1, 1, K) (its y-step's) or (H, W, 1, K)."""
    arr = np.asarray(w)
    if arr.ndim <= 1:
        return float(arr) if arr.ndim == 0 else arr
    if arr.ndim == 5 and arr.shape[2] == arr.shape[3] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 4 or arr.shape[2] != 1:
        raise ValueError(f"L21Weight: expected a scalar, (K,) or SPORCO's (H, W, 1, 1, K) layout, got shape "
                         f"{arr.shape}")
    return np.moveaxis(arr[:, :, 0, :], -1, 0)  # (K, H, W)


def _not(value) -> bool:
    return not bool(value)


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


# ================================================================== the solvers' tables
#: SPORCO ``AutoRho`` sub-option → csc field (ConvBPDN's and the ``'cns'`` dictionary step's)
AUTORHO_FIELDS: dict[str, str] = {
    "Enabled": "auto_rho",
    "Period": "rho_period",
    "Scaling": "rho_scaling",
    "RsdlRatio": "rsdl_ratio",
    "RsdlTarget": "rsdl_target",
    "AutoScaling": "auto_scaling",
    "StdResiduals": "std_residuals",
}

#: the ``AutoRho`` sub-options that are flags (SPORCO's ``Enabled``, ``AutoScaling``, ``StdResiduals``)
_AUTORHO_FLAGS = ("Enabled", "AutoScaling", "StdResiduals")


def autorho_rules(skip_none: bool = False) -> dict[str, Rule]:
    """The rules of SPORCO's ``AutoRho`` sub-options (:data:`AUTORHO_FIELDS`), its flags
    checked by :class:`Flag`; ``skip_none``: None leaves a field at its default (``CCMOD``)."""
    return {k: Flag(Field(v, skip_none=skip_none), none=skip_none) if k in _AUTORHO_FLAGS
            else Field(v, skip_none=skip_none) for k, v in AUTORHO_FIELDS.items()}


#: the options SPORCO's ADMM ConvBPDN and its pgm ConvBPDN share, read the same way
_CODING = {
    "MaxMainIter": Field("max_iter"),
    "RelStopTol": Field("rel_stop_tol"),
    "L1Weight": Field("l1_weight", l1_weight_from_sporco),
    "NonNegCoef": Flag(Field("nonneg")),
    "NoBndryCross": Flag(Field("no_boundary_cross")),
    "FastSolve": Flag(Field("record_stats", _not, note="inverted")),
    "DataType": Field("dtype"),
    "Verbose": VERBOSE,
    "StatusHeader": IGNORED_FLAG,
    "IterTimer": IGNORED,
}


def _unset_or_false(value) -> bool:
    return value is None or value is False


def _elsewhere(reason: str) -> Only:
    """A SPORCO option csc takes elsewhere or does not offer (accepted when None or False)."""
    return Only(_unset_or_false, f"SPORCO option not taken here: {reason}")


_ON_Y = "csc evaluates both objective terms on x, or both on y (objective_on_y)"

#: SPORCO ``admm.cbpdn.ConvBPDN.Options`` (0.2.2)
CBPDN = SporcoTable("ConvBPDN", {
    **_CODING,
    "Verbose": Flag(Field("verbose")),  # csc prints SPORCO's iteration table (CBPDNOptions.verbose)
    "AbsStopTol": Field("abs_stop_tol"),
    "RelaxParam": Field("relax"),
    "rho": Field("rho"),
    "AuxVarObj": Flag(Field("objective_on_y")),
    "AutoRho": Nested(SporcoTable("AutoRho", autorho_rules())),
    # set by SPORCO from AuxVarObj: accepted when consistent with it
    "fEvalX": Flag(Derived("objective_on_y", _not, "AuxVarObj", _ON_Y)),
    "gEvalY": Flag(Derived("objective_on_y", bool, "AuxVarObj", _ON_Y)),
    # numerically equivalent code paths
    "HighMemSolve": IGNORED_FLAG,
    "ReturnX": IGNORED_FLAG,
    "Y0": _elsewhere("pass y0= to ConvBPDN.solve"),
    "U0": _elsewhere("pass u0= to ConvBPDN.solve"),
    "Callback": _elsewhere("csc has no per-iteration callback; read result.stats after the solve"),
    "LinSolveCheck": Flag(_elsewhere("csc does not compute the linear-solve residual")),
    "mu": _elsewhere("SPORCO's mu is an argument, not an option: pass mu= to csc.ConvElasticNet or "
                     "csc.ConvBPDNGradReg"),
    # the variants' options, refused by the classes that do not take them
    "GradWeight": refused("an option of SPORCO's ConvBPDNGradReg and ConvL1L1Grd (csc.GradRegOptions, "
                          "csc.L1L1GrdOptions), not of {what}"),
}, csc_only={
    "device": "(none: SPORCO is CPU only)",
    "sync_interval": "(none)",
    "rho_policy": "(none: SPORCO's residual balancing is 'residual')",
    "backend": "(none)",
    "fftw_planner": "(none: sporco.fft.pyfftw_planner_effort, module-wide)",
    "coupling": "(none: SPORCO always couples the images and channels of one array)",
})

_GRAD_WEIGHT = {"GradWeight": Field("grad_weight")}
#: SPORCO ``ConvBPDNGradReg.Options``
GRADREG = CBPDN.extend("ConvBPDNGradReg", _GRAD_WEIGHT)
#: SPORCO's two-block problems return y₁ (``ReturnVar`` 'Y1', its default) as csc's codes do
_RETURN_Y1 = {"ReturnVar": Only(lambda v: v in (None, "Y1"), "csc's {what} returns Y1 (the codes); "
                                "'X' is not offered, got {value}")}
#: SPORCO ``ConvBPDNMaskDcpl.Options``
MASKDCPL = CBPDN.extend("ConvBPDNMaskDcpl", _RETURN_Y1)
#: SPORCO ``ConvL1L1Grd.Options``
L1L1GRD = CBPDN.extend("ConvL1L1Grd", {**_GRAD_WEIGHT, **_RETURN_Y1})
#: SPORCO ``ConvBPDNJoint.Options``: ``L21Weight`` a scalar, (K,), or SPORCO's (H, W, 1, K) / (H, W, 1, 1, K)
JOINT = CBPDN.extend("ConvBPDNJoint", {"L21Weight": Field("l21_weight", l21_weight_from_sporco)})

#: SPORCO ``admm.pdcsc.ConvProdDictL1L1GrdJoint.Options``: ConvL1L1Grd's and ``L21Weight``
L1L1GRD_JOINT = L1L1GRD.extend("ConvProdDictL1L1GrdJoint", {"L21Weight": Field("l21_weight", l21_weight_from_sporco)})
#: SPORCO ``admm.cbpdnin.ConvBPDNInhib.Options``: ConvBPDN's and ``SmoothWeight``
INHIB = CBPDN.extend("ConvBPDNInhib", {"SmoothWeight": Field("smooth_weight")})

#: SPORCO 0.2.2 ``pgm.cbpdn.ConvBPDN.Options`` (objects written as Class.attribute)
FISTA = SporcoTable("pgm.cbpdn.ConvBPDN", {
    **_CODING,
    "L": Field("L"),
    "Monotone": Flag(Field("monotone")),
    "AutoStop": Nested(SporcoTable("AutoStop", {"Enabled": Flag(Field("auto_stop")), "Tau0": Field("tau0")})),
    "Momentum": FromObject(_momentum_from_sporco, {
        "momentum": "Momentum (MomentumNesterov | MomentumLinear | MomentumGenLinear)",
        "momentum_a": "MomentumGenLinear.a", "momentum_b": "MomentumLinear.b / MomentumGenLinear.b"}),
    "Backtrack": FromObject(_backtrack_from_sporco, {
        "backtrack": "Backtrack (None | BacktrackStandard | BacktrackRobust)", "gamma_u": "Backtrack.gamma_u",
        "gamma_d": "BacktrackRobust.gamma_d", "backtrack_max_iter": "Backtrack.maxiter"}),
    "X0": unset("SPORCO option not taken here (pass x0= to ConvBPDNFISTA.solve)"),
    "Callback": unset("SPORCO option not taken here"),
    "StepSizePolicy": unset("SPORCO option not taken here"),
}, csc_only={"device": "(none)", "backend": "(none)", "fftw_planner": "(none)"})

#: csc field name → SPORCO option name of :class:`csc.CBPDNOptions` (nested ``AutoRho``
#: options written as ``AutoRho.X``), read off :data:`CBPDN`.
SPORCO_CBPDN_NAMES: dict[str, str] = CBPDN.documented()
#: csc field → SPORCO ``pgm.cbpdn.ConvBPDN.Options`` name of :class:`csc.FISTAOptions`
#: (objects written as Class.attribute), read off :data:`FISTA`.
SPORCO_FISTA_NAMES: dict[str, str] = FISTA.documented()

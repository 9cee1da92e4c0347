r"""The dictionary update as a problem of its own: SPORCO's ``pgm.ccmod.ConvCnstrMOD`` and
``admm.ccmod.ConvCnstrMOD_Consensus``.

Given codes :math:`z_{jk}` and images :math:`s_j`, both solve

.. math::
    \operatorname*{argmin}_{d} \; \tfrac12 \sum_j \Big\| \sum_k d_k * z_{jk} - s_j \Big\|_2^2
    \quad \text{s.t.} \quad d_k \in C,

with C the kernels of their support, of unit norm (optionally zero mean or non-negative;
:mod:`csc.learn.constraints`, several kernel sizes in one dictionary included), by the
dictionary steps of the learners (:mod:`csc.learn.dictstep`; their arithmetic is the torch
back end's, :mod:`csc.backends.torch_dictstep`, on every device):

- :class:`ConvCnstrMOD` — FISTA in the DFT domain (``PGMDictStep``): :math:`d = P_C(\mathrm{IDFT}(\hat y - \nabla/L))`,
  :math:`\nabla = \sum_j \overline{\hat Z_j}(\hat Z_j \hat y - \hat S_j)`, momentum
  Nesterov's, linear or generalised linear (:class:`csc.DictUpdateOptions` ``momentum``),
  stopping when the squared fixed-point residual ‖x̂ − ŷ_prev‖² falls below ``rel_stop_tol``.
  The iterate starts at ``x0`` (SPORCO's ``X0``; zero by default, as SPORCO's).
- :class:`ConvCnstrMODConsensus` — ADMM consensus over the images (``ConsensusDictStep``):
  per image :math:`(\hat Z_j^H \hat Z_j + \rho I)\hat x_j = \hat Z_j^H \hat s_j + \rho\,\mathrm{DFT}(g - u_j)`,
  relaxation, :math:`g = P_C(\mathrm{mean}_j(a_j + u_j))`, :math:`u_j \mathrel{+}= a_j - g`,
  SPORCO's residuals, stopping and adaptive ρ. g starts at ``y0`` (SPORCO's ``Y0``; zero by
  default) and u at ``u0`` (``U0``), else at y0/ρ for every image when y0 is given and at zero
  when it is not (SPORCO's ``uinit``).

Statistics per iteration are SPORCO's (:data:`SPORCO_DICTUPDATE_STATS_NAMES`): the data
fidelity (at the iterate x for ``ConvCnstrMOD``, at g for the consensus, SPORCO's
``fEvalX = False``) and the constraint violation, then each method's own. Options are
:class:`csc.DictUpdateOptions` with SPORCO's stand-alone defaults
(:data:`csc.learn.options.CCMOD_DEFAULTS`: 1000 iterations; ``L`` and ρ effectively 1, as
SPORCO's); ``DictUpdateOptions.from_sporco(opt, dmethod)`` reads SPORCO's option dicts.

Layouts: codes (B, K, H, W) with images (B, H, W) learn single-channel kernels (K, kh, kw);
with colour images (B, C, H, W) a multi-channel dictionary (K, C, kh, kw) (SPORCO's ``Cd = C``);
codes (B, C, K, H, W) with images (B, C, H, W) a single-channel dictionary shared by the
channels (SPORCO's ``Cd = 1``, each channel one more image). One image (H, W) with codes
(K, H, W) is one problem of one image.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from csc.backends.registry import dictionary_ops
from csc.core.checks import as_float_tensor, check_finite, check_image_size, check_images
from csc.core.stats import StatsTable
from csc.learn.coding import read_row
from csc.learn.constraints import KernelConstraint, kernel_constraint
from csc.learn.dictstep import ConsensusDictStep, ISMDictStep, PGMDictStep
from csc.learn.options import CCMOD_DEFAULTS, DictUpdateOptions

__all__ = ["ConvCnstrMOD", "ConvCnstrMODConsensus", "ConvCnstrMODIterSM", "DictUpdateResult", "DictUpdateStats",
           "SPORCO_DICTUPDATE_STATS_NAMES"]

#: csc :class:`DictUpdateStats` field → SPORCO ``IterationStats`` field
SPORCO_DICTUPDATE_STATS_NAMES: dict[str, str] = {
    "iteration": "Iter", "data_fidelity": "DFid", "constraint": "Cnstr", "residual": "Rsdl", "L": "L",
    "primal_residual": "PrimalRsdl", "dual_residual": "DualRsdl", "eps_primal": "EpsPrimal",
    "eps_dual": "EpsDual", "rho": "Rho", "F_backtrack": "F_Btrack", "Q_backtrack": "Q_Btrack",
    "backtrack_iterations": "IterBTrack", "time": "Time",
}


@dataclass(frozen=True)
class DictUpdateStats(StatsTable):
    """Per-iteration statistics of a dictionary update (arrays over iterations; SPORCO's
    names: :data:`SPORCO_DICTUPDATE_STATS_NAMES`). ``residual`` and ``L`` are
    :class:`ConvCnstrMOD`'s (NaN for the consensus); ``primal_residual``, ``dual_residual``,
    ``eps_primal``, ``eps_dual`` and ``rho`` (before its update) the consensus' (NaN for
    ``ConvCnstrMOD``); ``F_backtrack``, ``Q_backtrack``, ``backtrack_iterations`` the line
    search's (``backtrack='standard'``; NaN otherwise); ``time`` is seconds since the start of
    the solve."""

    iteration: np.ndarray
    data_fidelity: np.ndarray
    constraint: np.ndarray
    residual: np.ndarray
    L: np.ndarray
    primal_residual: np.ndarray
    dual_residual: np.ndarray
    eps_primal: np.ndarray
    eps_dual: np.ndarray
    rho: np.ndarray
    F_backtrack: np.ndarray
    Q_backtrack: np.ndarray
    backtrack_iterations: np.ndarray
    time: np.ndarray


@dataclass
class DictUpdateResult:
    """Result of a dictionary update.

    Attributes
    ----------
    dictionary : (K, kh, kw) or (K, C, kh, kw)
        The constrained dictionary (SPORCO's ``getdict()``).
    stats : DictUpdateStats
    iterations : int
    u : tensor or None
        The consensus' scaled duals u_j (B, K, [C,] H, W) after the last iteration (to
        continue with ``u0=``); None for :class:`ConvCnstrMOD`.
    """

    dictionary: torch.Tensor
    stats: DictUpdateStats
    iterations: int
    u: torch.Tensor | None = None


class _DictUpdate:
    """What both stand-alone updates share: options, the constraint, the inputs' checks."""

    def __init__(self, kernel_size, options: DictUpdateOptions | None = None):
        self.options = CCMOD_DEFAULTS if options is None else options
        if not isinstance(self.options, DictUpdateOptions):
            raise TypeError(f"options: expected DictUpdateOptions, got {type(self.options).__name__}")
        o = self.options
        self.constraint: KernelConstraint = kernel_constraint(kernel_size, zero_mean=o.zero_mean, nonneg=o.nonneg)

    def _prepare(self, codes, images) -> tuple[torch.Tensor, torch.Tensor]:
        """(codes (B, K, H, W), images (B, H, W) or (B, C, H, W)) checked, in the images'
        dtype and device (module docstring's layouts)."""
        S = as_float_tensor("images", images).detach()
        Z = as_float_tensor("codes", codes, S.dtype, S.device).detach()
        if S.ndim == 2 and Z.ndim == 3:
            S, Z = S.unsqueeze(0), Z.unsqueeze(0)
        if S.ndim == 4 and Z.ndim == 5:  # a single-channel dictionary for colour codes (SPORCO Cd = 1)
            if Z.shape[:2] != S.shape[:2]:
                raise ValueError(f"codes: (B, C, K, H, W) codes need one map set per image and channel of images "
                                 f"{tuple(S.shape)}, got {tuple(Z.shape)}")
            S, Z = S.reshape(-1, *S.shape[2:]), Z.reshape(-1, *Z.shape[2:])
        if S.ndim not in (3, 4) or Z.ndim != 4:
            raise ValueError(f"codes, images: expected codes (B, K, H, W) with images (B, H, W) or (B, C, H, W), "
                             f"or codes (B, C, K, H, W) with images (B, C, H, W); got {tuple(Z.shape)} and "
                             f"{tuple(S.shape)}")
        if Z.shape[0] != S.shape[0] or Z.shape[-2:] != S.shape[-2:]:
            raise ValueError(f"codes: expected (B, K, H, W) = ({S.shape[0]}, K, {S.shape[-2]}, {S.shape[-1]}) "
                             f"for images {tuple(S.shape)}, got {tuple(Z.shape)}")
        check_image_size("images", *S.shape[-2:], self.constraint.kernel_size)
        check_images("images", S)
        check_finite("codes", Z)
        self.constraint.check_count(Z.shape[1], "codes")
        return Z.contiguous(), S.contiguous()

    def _initial(self, name: str, value, Z: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
        """The initial kernels (K, [C,] kh, kw): zero, or ``value`` (kernels, or padded up to
        H×W with nothing outside the kernel support)."""
        kh, kw = self.constraint.kernel_size
        lead = (Z.shape[1],) + ((S.shape[1],) if S.ndim == 4 else ())
        if value is None:
            return S.new_zeros(lead + (kh, kw))
        D = as_float_tensor(name, value, S.dtype, S.device).detach()
        if D.ndim != len(lead) + 2 or tuple(D.shape[:-2]) != lead:
            raise ValueError(f"{name}: expected kernels {lead + ('kh', 'kw')} for these codes and images, got shape "
                             f"{tuple(D.shape)}")
        h, w = D.shape[-2:]
        if h > S.shape[-2] or w > S.shape[-1]:
            raise ValueError(f"{name}: {h}×{w} kernels are larger than the {S.shape[-2]}×{S.shape[-1]} images")
        check_finite(name, D)
        out = S.new_zeros(lead + (max(h, kh), max(w, kw)))
        out[..., :h, :w] = D
        if bool((out[..., kh:, :] != 0).any()) or bool((out[..., :, kw:] != 0).any()):
            raise ValueError(f"{name}: nonzero entries outside the {kh}×{kw} kernel support; crop the kernels to "
                             f"kernel_size (SPORCO's X0/Y0 are zero there)")
        return out[..., :kh, :kw].contiguous()


def _run(step, max_iter: int, extra) -> list[dict[str, Any]]:
    """``max_iter`` iterations of ``step`` (a function returning a row of 0-d tensors with a
    ``done`` flag), each row read in one host read; stops after the first row that is done."""
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for k in range(max_iter):
        row = read_row(step(), "ccmod.row")
        done = bool(row.pop("done"))
        rows.append({"iteration": k, **extra(row), "time": time.perf_counter() - t0})
        if done:
            break
    return rows


class ConvCnstrMOD(_DictUpdate):
    r"""The dictionary update by FISTA (SPORCO ``pgm.ccmod.ConvCnstrMOD``; module docstring).

    Parameters
    ----------
    kernel_size : (kh, kw) or groups ((kh, kw, count), ...)
        The kernels' support; groups of several sizes make a multi-scale dictionary (SPORCO's
        ``dsz`` of several sizes; :func:`csc.learn.constraints.kernel_constraint`).
    options : DictUpdateOptions, optional
        SPORCO's stand-alone defaults when omitted (:data:`csc.learn.options.CCMOD_DEFAULTS`);
        ``L``, ``rel_stop_tol``, ``momentum`` (``momentum_a``, ``momentum_b``), ``backtrack``
        (``gamma_u``, ``backtrack_max_iter``), ``max_iter``, ``zero_mean``, ``nonneg`` are used.

    Examples
    --------
    >>> opts = csc.DictUpdateOptions(max_iter=100, L=50.0, momentum="linear")
    >>> res = csc.ConvCnstrMOD((12, 12), opts).solve(codes, images, x0=D0)
    >>> res.dictionary.shape, res.stats.data_fidelity[-1]
    """

    def solve(self, codes, images, x0=None) -> DictUpdateResult:
        """Update the dictionary for ``codes`` and ``images`` (module docstring's layouts)
        from ``x0`` (kernels (K, [C,] kh, kw); zero when omitted, as SPORCO's ``X0``)."""
        Z, S = self._prepare(codes, images)
        D0 = self._initial("x0", x0, Z, S)
        o = self.options
        ops = dictionary_ops("pgm", torch.fft.rfft2(S), S.shape[-2:], D0, self.constraint, False, o.relax)
        step = PGMDictStep(ops, D0, o, self.constraint)
        step.set_codes(SimpleNamespace(y=Z))

        def one() -> dict[str, Any]:
            row = step.step()
            return {**row, "data_fidelity": ops.fidelity(), "done": row["d_residual"] < o.rel_stop_tol}

        rows = _run(one, o.max_iter, lambda r: dict(
            data_fidelity=r["data_fidelity"], constraint=r["constraint"], residual=r["d_residual"], L=r["d_L"],
            **{k[2:]: r[k] for k in ("d_F_backtrack", "d_Q_backtrack", "d_backtrack_iterations") if k in r}))
        return DictUpdateResult(step.D, DictUpdateStats.from_rows(rows), len(rows))


class ConvCnstrMODConsensus(_DictUpdate):
    r"""The dictionary update by ADMM consensus over the images (SPORCO
    ``admm.ccmod.ConvCnstrMOD_Consensus``; module docstring).

    Parameters
    ----------
    kernel_size : (kh, kw) or groups ((kh, kw, count), ...)
        As :class:`ConvCnstrMOD`'s.
    options : DictUpdateOptions, optional
        SPORCO's stand-alone defaults when omitted; ``rho``, ``relax``, the tolerances, the
        adaptive-ρ fields, ``max_iter``, ``zero_mean``, ``nonneg`` are used.

    Examples
    --------
    >>> opts = csc.DictUpdateOptions(max_iter=100, rho=10.0)
    >>> res = csc.ConvCnstrMODConsensus((12, 12), opts).solve(codes, images)
    """

    _METHOD = "cns"

    def solve(self, codes, images, y0=None, u0=None) -> DictUpdateResult:
        """Update the dictionary for ``codes`` and ``images`` (module docstring's layouts)
        from g = ``y0`` (kernels (K, [C,] kh, kw); zero when omitted, SPORCO's ``Y0``) and
        u = ``u0`` ((B, K, [C,] H, W), the scaled duals of each image, SPORCO's ``U0``;
        y0/ρ when omitted with y0 given, else zero)."""
        Z, S = self._prepare(codes, images)
        D0 = self._initial("y0", y0, Z, S)
        U0 = None
        if u0 is not None:
            U0 = as_float_tensor("u0", u0, S.dtype, S.device).detach()
            want = ((Z.shape[0],) if self._METHOD == "cns" else ()) + tuple(D0.shape[:-2]) + tuple(S.shape[-2:])
            if tuple(U0.shape) != want:
                raise ValueError(f"u0: expected the scaled duals {want}, got shape {tuple(U0.shape)}")
            check_finite("u0", U0)
        o = self.options
        ops = dictionary_ops(self._METHOD, torch.fft.rfft2(S), S.shape[-2:], D0, self.constraint, False, o.relax)
        if self._METHOD == "ism":
            step = ISMDictStep(ops, D0, o, self.constraint, S.shape[-2:], U0)
        else:
            step = ConsensusDictStep(ops, D0, o, self.constraint, S.shape[0], S.shape[-2:], U0)
        step.set_codes(SimpleNamespace(y=Z))

        def one() -> dict[str, Any]:
            row, done, (epri, edua) = step.step()
            return {**row, "data_fidelity": ops.fidelity(), "eps_primal": epri, "eps_dual": edua, "done": done}

        rows = _run(one, o.max_iter, lambda r: dict(
            data_fidelity=r["data_fidelity"], constraint=r["constraint"], primal_residual=r["d_primal_residual"],
            dual_residual=r["d_dual_residual"], eps_primal=r["eps_primal"], eps_dual=r["eps_dual"], rho=r["d_rho"]))
        return DictUpdateResult(step.D, DictUpdateStats.from_rows(rows), len(rows), u=ops.U)


class ConvCnstrMODIterSM(ConvCnstrMODConsensus):
    r"""The dictionary update by ADMM with one x for all images (SPORCO
    ``admm.ccmod.ConvCnstrMOD_IterSM``): per frequency
    :math:`(\sum_j \hat Z_j^H \hat Z_j + \rho I)\hat x = \sum_j \hat Z_j^H \hat s_j + \rho\,\mathrm{DFT}(y - u)`
    solved exactly (:class:`csc.backends.torch_dictstep.TorchISMOps`), relaxation,
    :math:`y = P_C(a + u)`, :math:`u \mathrel{+}= a - y`; SPORCO's ``ADMMEqual`` residuals and
    adaptive ρ. ``solve(codes, images, y0=None, u0=None)`` as :class:`ConvCnstrMODConsensus`'s,
    but u is one (K, [C,] H, W) array, y₀ when omitted with y0 given (SPORCO's ``uinit``).
    Statistics: the data fidelity and the constraint violation at x (SPORCO's ``fEvalX`` and
    ``gEvalY`` of this class). Options default to SPORCO's for this class,
    ``DictUpdateOptions.from_sporco(None, "ism")`` (adaptive ρ every iteration, auto-scaling,
    multiplier 1000, ratio 1.2)."""

    _METHOD = "ism"

    def __init__(self, kernel_size, options: DictUpdateOptions | None = None):
        super().__init__(kernel_size, DictUpdateOptions.from_sporco(None, "ism") if options is None else options)

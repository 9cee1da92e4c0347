r"""SPORCO's constrained forms of convolutional sparse coding, on the same ADMM core.

:class:`ConvBPDNProjL1` (SPORCO ``admm.cbpdn.ConvBPDNProjL1``): the data term under an ℓ1
budget γ per image,

.. math::
    \operatorname*{argmin}_x \; \tfrac12 \Big\| \sum_k d_k * x_k - s \Big\|_2^2
    \;\;\text{s.t.}\;\; \sum_k \| x_k \|_1 \le \gamma ,

split x = y as :class:`csc.ConvBPDN` with g(y) = ι{‖y‖₁ ≤ γ}: CBPDN's iteration with the soft
threshold replaced by the projection onto the ℓ1 ball (:class:`csc.core.prox.L1BallProjection`,
independent of ρ), then non-negativity and boundary zeroing.

:class:`ConvMinL1InL2Ball` (SPORCO ``admm.cbpdn.ConvMinL1InL2Ball``, Afonso et al. 2011): the
ℓ1 norm under a bound ε on the residual per image,

.. math::
    \operatorname*{argmin}_x \; \sum_k \| w_k \odot x_k \|_1
    \;\;\text{s.t.}\;\; \Big\| \sum_k d_k * x_k - s \Big\|_2 \le \epsilon ,

split Ax − y = c, A = (D; I), c = (s; 0) as :class:`csc.ConvBPDNMaskDcpl` with
g₀(y₀) = ι{‖y₀‖₂ ≤ ε} (:class:`csc.core.prox.L2BallData`: y₀ = the projection of
a₀ + u₀ − s onto the ℓ2 ball) and g₁(y₁) = ‖w ⊙ y₁‖₁ (the soft threshold by w/ρ, λ = 1).

Both are a prox object and a thin class: the loop, the back-end registry and the workspaces
are CBPDN's and mask decoupling's. Neither prox has a fused kernel, so ``backend="numba"``
(or ``"compiled"``) runs the torch loop and ``result.backend`` says so
(``"torch (numba has no kernel for L1BallProjection)"``).
"""

from __future__ import annotations

from dataclasses import dataclass, make_dataclass
from typing import ClassVar

import numpy as np
import torch

from csc.core.checks import check_nonnegative
from csc.core.options import CBPDNOptions, MaskDcplOptions
from csc.core.prox import L1BallProjection, L2BallData, Prox
from csc.core.stats import StatsTable
from csc.problems.cbpdn import CBPDNResult, ConvBPDN
from csc.problems.maskdcpl import ConvBPDNMaskDcpl

__all__ = ["ConvBPDNProjL1", "ConvMinL1InL2Ball", "ProjL1Options", "MinL1InL2BallOptions", "ProjL1Stats",
           "MinL1InL2BallStats"]


# ------------------------------------------------------------------------------------ options
@dataclass(frozen=True)
class ProjL1Options(CBPDNOptions):
    """Options of :class:`ConvBPDNProjL1` (SPORCO ``admm.cbpdn.ConvBPDNProjL1.Options``, which are
    ``GenericConvBPDN.Options``): the fields of :class:`csc.CBPDNOptions` with its defaults
    (relaxation 1.8, adaptive ρ every iteration, τ = 1000, μ = 1.2, auto-scaling), except
    ρ₀ = 1 (``rho``: SPORCO's ADMM default; there is no λ for ConvBPDN's 50λ + 1) and ξ = 1
    (``AutoRho.RsdlTarget``). There is no ℓ1 term, so no ``l1_weight`` (SPORCO has no
    ``L1Weight`` here): it must stay 1.
    """

    rho: float | None = 1.0
    rsdl_target: float | None = 1.0

    _sporco_class: ClassVar[str] = "ConvBPDNProjL1"

    def __post_init__(self) -> None:
        super().__post_init__()
        w = self.l1_weight
        if not (isinstance(w, (int, float, np.integer, np.floating)) and float(w) == 1.0):
            raise ValueError(f"l1_weight: ConvBPDNProjL1 has no ℓ1 term to weight (SPORCO's ConvBPDNProjL1 has no "
                             f"L1Weight); leave it at 1, got {w!r}")
        for name in ("rho", "rsdl_target"):  # SPORCO's ADMM: None means 1 (its dval)
            if getattr(self, name) is None:
                object.__setattr__(self, name, 1.0)


@dataclass(frozen=True)
class MinL1InL2BallOptions(MaskDcplOptions):
    """Options of :class:`ConvMinL1InL2Ball` (SPORCO ``admm.cbpdn.ConvMinL1InL2Ball.Options``): the
    fields of :class:`csc.MaskDcplOptions` (SPORCO's ``ConvTwoBlockCnstrnt`` defaults: ρ₀ = 1,
    relaxation 1.8) with SPORCO's defaults for this problem: adaptive ρ on, every 10
    iterations, τ = 1000, μ = 1.2, ξ = 1, auto-scaling. ``l1_weight`` is SPORCO's
    ``L1Weight`` (the ℓ1 term's w; there is no λ).
    """

    auto_rho: bool = True
    rho_period: int = 10
    rho_scaling: float = 1000.0
    rsdl_ratio: float = 1.2
    auto_scaling: bool = True

    _sporco_class: ClassVar[str] = "ConvMinL1InL2Ball"


# --------------------------------------------------------------------------------- statistics
#: the loop's columns after its first four (the objective's terms), as every statistics class has them
_TAIL = ("primal_residual", "dual_residual", "eps_primal", "eps_dual", "rho", "time")


def _stats_class(name: str, third: str, fourth: str, doc: str) -> type:
    """A frozen statistics dataclass of arrays: iteration, objective, ``third``, ``fourth``, then
    :data:`_TAIL` (the loop's column order)."""
    fields = [(f, np.ndarray) for f in ("iteration", "objective", third, fourth) + _TAIL]
    cls = make_dataclass(name, fields, bases=(StatsTable,), frozen=True, namespace={"__doc__": doc})
    cls.__module__ = __name__
    return cls


ProjL1Stats = _stats_class("ProjL1Stats", "data_fidelity", "constraint", """Per-iteration statistics of one
    image's :class:`ConvBPDNProjL1` solve (arrays over its iterations): ``objective`` = ``data_fidelity``
    = ½‖Σ_k d_k * x_k − s‖² (SPORCO ``ObjFun``), ``constraint`` = ‖P(x) − x‖₂, the distance of x to
    the ℓ1 ball (SPORCO ``Cnstr``; on y, hence 0, with ``objective_on_y``), then the residuals,
    tolerances, ρ and time as :class:`csc.IterationStats`'. Fields in the loop's column order.""")

MinL1InL2BallStats = _stats_class("MinL1InL2BallStats", "constraint", "l1", """Per-iteration statistics of
    one image's :class:`ConvMinL1InL2Ball` solve: ``objective`` = ``l1`` = Σ|w·x| (SPORCO ``ObjFun``),
    ``constraint`` = ‖P(Dx − s) − (Dx − s)‖₂, the distance of the residual to the ℓ2 ball (SPORCO
    ``Cnstr``; both on y with ``objective_on_y``), then the residuals, tolerances, ρ and time as
    :class:`csc.IterationStats`'. Fields in the loop's column order.""")


_RESIDUAL_NAMES = {"primal_residual": "PrimalRsdl", "dual_residual": "DualRsdl", "eps_primal": "EpsPrimal",
                   "eps_dual": "EpsDual", "rho": "Rho", "time": "Time"}


# ----------------------------------------------------------------------------------- problems
class ConvBPDNProjL1(ConvBPDN):
    r"""Convolutional BPDN with an ℓ1 budget instead of an ℓ1 penalty, by ADMM (SPORCO
    ``admm.cbpdn.ConvBPDNProjL1``; module docstring):

    .. math::
        \operatorname*{argmin}_x \; \tfrac12 \Big\| \sum_k d_k * x_k - s \Big\|_2^2
        \;\;\text{s.t.}\;\; \sum_k \| x_k \|_1 \le \gamma .

    The y-step is y = P_γ(αx + (1 − α)y + u), the projection of each image's maps onto the ℓ1
    ball of radius ``gamma`` (:class:`csc.core.prox.L1BallProjection`), then the options'
    non-negativity and boundary zeroing; everything else is :class:`csc.ConvBPDN`'s (batches
    of images each solved alone, devices, dtypes, ``y0``). With ``y0`` given and no ``u0``,
    u starts at 0 (SPORCO's ``ConvBPDNProjL1.uinit``). Options: :class:`ProjL1Options`;
    statistics: :class:`ProjL1Stats`. A single-channel dictionary codes each channel of
    (B, C, H, W) images on its own (its own ball); a multi-channel one (K, C, kh, kw)
    constrains the shared maps.
    """

    options_class = ProjL1Options
    stats_class = ProjL1Stats
    sporco_stats_names = {"iteration": "Iter", "objective": "ObjFun", "data_fidelity": "ObjFun",
                          "constraint": "Cnstr", **_RESIDUAL_NAMES}

    def __init__(self, dictionary, gamma: float, options: ProjL1Options | None = None):
        super().__init__(dictionary, 0.0, options)
        self.gamma = check_nonnegative("gamma", gamma)

    def _prox(self, w, kernel_size, S: torch.Tensor) -> Prox:
        """The projection onto the ℓ1 ball of radius γ, with the options' constraints."""
        o = self.options
        return L1BallProjection(self.gamma, bool(o.nonneg), tuple(kernel_size) if o.no_boundary_cross else None)

    def _initial_dual(self, y: torch.Tensor, rho0: float) -> torch.Tensor:
        """u₀ = 0 even when y₀ is given (SPORCO ``ConvBPDNProjL1.uinit``)."""
        return torch.zeros_like(y)


class ConvMinL1InL2Ball(ConvBPDNMaskDcpl):
    r"""The ℓ1 norm of the codes under an ℓ2 bound on the residual, by ADMM (SPORCO
    ``admm.cbpdn.ConvMinL1InL2Ball``; module docstring):

    .. math::
        \operatorname*{argmin}_x \; \sum_k \| w_k \odot x_k \|_1
        \;\;\text{s.t.}\;\; \Big\| \sum_k d_k * x_k - s \Big\|_2 \le \epsilon ,

    on the split Ax − y = c, A = (D; I), c = (s; 0) of :class:`csc.ConvBPDNMaskDcpl`: x-step
    (D̂ᴴD̂ + I)x̂ = D̂ᴴ·DFT(y₀ − u₀ + s) + DFT(y₁ − u₁); y₀ = P_ε(a₀ + u₀ − s), the projection of
    each image's residual onto the ℓ2 ball of radius ``epsilon``
    (:class:`csc.core.prox.L2BallData`); y₁ = S_{w/ρ}(a₁ + u₁) with the options' constraints;
    the residuals of SPORCO's ``ConvTwoBlockCnstrnt`` (dual ρ‖Aᵀu‖ over ρ‖u‖). Options:
    :class:`MinL1InL2BallOptions` (w = ``l1_weight``); statistics:
    :class:`MinL1InL2BallStats`. Single-channel dictionaries; every image (and channel) of a
    batch its own problem. ``codes`` are y₁ (SPORCO's ``ReturnVar`` 'Y1'), ``u`` its dual u₁.
    """

    options_class = MinL1InL2BallOptions
    stats_class = MinL1InL2BallStats
    sporco_stats_names = {"iteration": "Iter", "objective": "ObjFun", "constraint": "Cnstr", "l1": "ObjFun",
                          **_RESIDUAL_NAMES}

    def __init__(self, dictionary, epsilon: float, options: MinL1InL2BallOptions | None = None):
        super().__init__(dictionary, 1.0, options)  # g₁ = ‖w·y₁‖₁: λ = 1
        self.epsilon = check_nonnegative("epsilon", epsilon)

    def solve(self, images) -> CBPDNResult:
        """Solve for every image of ``images`` ((H, W), (B, H, W) or (B, C, H, W)) independently."""
        return super().solve(images)

    def _data_term(self, mask) -> L2BallData:
        """Block 0's g₀ = ι{‖y₀‖₂ ≤ ε} (:class:`csc.core.prox.L2BallData`)."""
        return L2BallData(self.epsilon)

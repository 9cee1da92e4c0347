"""Regularisation paths: CBPDN codes for a decreasing sequence of λ, each solve warm-started
from the previous λ's solution.

ADMM (:class:`csc.ConvBPDN`): y starts at the previous codes and the scaled dual at
u·(λ_new/λ_old)·(ρ_old/ρ₀): the unscaled dual ρu lies in λ∂‖·‖₁ at a solution, so it is
rescaled with λ and divided by the new solve's initial ρ₀. FISTA
(:class:`csc.ConvBPDNFISTA`): x starts at the previous codes and L at each image's final L.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from csc.core.admm import initial_rho
from csc.problems.cbpdn import CBPDNResult, ConvBPDN
from csc.core.checks import check_bool, check_nonnegative
from csc.problems.fista import ConvBPDNFISTA, FISTAResult
from csc.core.options import CBPDNOptions, FISTAOptions

__all__ = ["PathResult", "lambda_path"]


@dataclass
class PathResult:
    """The solves of a λ path: ``lmbdas`` (decreasing) and one result per λ
    (:class:`csc.CBPDNResult` or :class:`csc.problems.fista.FISTAResult`)."""

    lmbdas: list[float]
    results: list

    @property
    def codes(self) -> list[torch.Tensor]:
        """The codes at each λ."""
        return [r.codes for r in self.results]


def _check_lmbdas(lmbda: Sequence[float]) -> list[float]:
    if isinstance(lmbda, (str, bytes)) or not hasattr(lmbda, "__len__") or len(lmbda) == 0:
        raise ValueError(f"lmbda: expected a non-empty sequence of decreasing values, got {lmbda!r}")
    vals = [check_nonnegative("lmbda", v) for v in lmbda]
    if any(b >= a for a, b in zip(vals, vals[1:])):
        raise ValueError(f"lmbda: expected strictly decreasing values (warm starts go from sparse to dense), got {vals}")
    return vals


def lambda_path(dictionary, images, lmbda: Sequence[float], options: CBPDNOptions | FISTAOptions | None = None,
                warm_start: bool = True) -> PathResult:
    """Codes of ``images`` for each λ of the decreasing sequence ``lmbda``.

    ``options`` chooses the solver: :class:`CBPDNOptions` (default) for ADMM,
    :class:`FISTAOptions` for FISTA. With ``warm_start`` (default) each solve starts from
    the previous λ's solution (module docstring); ``warm_start=False`` solves each λ cold.
    """
    lams = _check_lmbdas(lmbda)
    warm_start = check_bool("warm_start", warm_start)
    options = options if options is not None else CBPDNOptions()
    if type(options) not in (CBPDNOptions, FISTAOptions):
        raise TypeError(f"options: expected CBPDNOptions or FISTAOptions, got {type(options).__name__}")
    results: list = []
    prev = None
    for i, lam in enumerate(lams):
        init = prev if warm_start else None
        if isinstance(options, FISTAOptions):
            prev = _fista_step(dictionary, images, lam, options, init)
        else:
            prev = _admm_step(dictionary, images, lam, lams[i - 1] if i else lam, options, init)
        results.append(prev)
    return PathResult(lmbdas=lams, results=results)


def _admm_step(D, images, lam: float, lam_prev: float, opts: CBPDNOptions, prev: CBPDNResult | None) -> CBPDNResult:
    solver = ConvBPDN(D, lam, opts)
    if prev is None:
        return solver.solve(images)
    rho_prev = prev.rho.reshape(prev.rho.shape + (1, 1, 1)).to(prev.u.dtype)
    u0 = prev.u * (rho_prev * (lam / lam_prev) / initial_rho(opts, lam))
    return solver.solve(images, y0=prev.codes, u0=u0)


def _fista_step(D, images, lam: float, opts: FISTAOptions, prev: FISTAResult | None) -> FISTAResult:
    solver = ConvBPDNFISTA(D, lam, opts)
    if prev is None:
        return solver.solve(images)
    return solver.solve(images, x0=prev.codes, L0=prev.L.reshape(-1).numpy())

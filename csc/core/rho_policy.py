r"""Spectral adaptive ρ (Xu, Figueiredo and Goldstein, AISTATS 2017), an alternative to SPORCO's
residual balancing for per-image ADMM problems (``CBPDNOptions(rho_policy="spectral")``).

For the split x = y with H(x) = ½‖Dx − s‖² and G(y) = λ‖w ⊙ y‖₁, the x-step and the
y-step give, in unscaled duals (scaled u as SPORCO keeps it, ρ the penalty of iteration k):

.. math::
    \hat\lambda_k = -\big(\rho_k (x_k - y_{k-1}) + \lambda_{k-1}\big) = \nabla H(x_k), \qquad
    \lambda_k = \rho_k u_k \in \partial G(y_k)

(over-relaxation does not change either identity). Every ``period`` iterations, with Δ the
change since the previous update (per image), the curvature of H along Δx and of G along Δy:

.. math::
    \alpha_{SD} = \frac{\langle\Delta\hat\lambda,\Delta\hat\lambda\rangle}{\langle\Delta x,\Delta\hat\lambda\rangle},\quad
    \alpha_{MG} = \frac{\langle\Delta x,\Delta\hat\lambda\rangle}{\langle\Delta x,\Delta x\rangle},\quad
    \hat\alpha = \begin{cases}\alpha_{MG} & 2\alpha_{MG} > \alpha_{SD}\\
                               \alpha_{SD} - \alpha_{MG}/2 & \text{otherwise}\end{cases}

(the hybrid step rule; β̂ likewise from Δy, Δλ), the safeguard correlations
:math:`\alpha_{cor} = \langle\Delta x,\Delta\hat\lambda\rangle / (\|\Delta x\|\|\Delta\hat\lambda\|)`,
:math:`\beta_{cor}` likewise, and

.. math::
    \rho_{k+1} = \begin{cases}\sqrt{\hat\alpha\hat\beta} & \alpha_{cor} > \epsilon_{cor},\ \beta_{cor} > \epsilon_{cor}\\
    \hat\alpha & \text{only } \alpha_{cor} > \epsilon_{cor}\\
    \hat\beta & \text{only } \beta_{cor} > \epsilon_{cor}\\
    \rho_k & \text{otherwise}\end{cases}

with ε_cor = 0.2 (the paper's). csc also caps one change at the factor τ (``rho_scaling``)
either way, as residual balancing does. The loop then divides u by ρ_{k+1}/ρ_k.
"""

from __future__ import annotations

import torch

__all__ = ["RHO_POLICIES", "SpectralRho", "spectral_factor"]

#: the values of ``CBPDNOptions.rho_policy``
RHO_POLICIES = ("residual", "spectral")

EPS_COR = 0.2


def _dots(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per image ⟨a, a⟩, ⟨a, b⟩, ⟨b, b⟩ of (n, …) maps, in float64."""
    f = lambda p, q: (p * q).flatten(1).sum(1).to(torch.float64)  # noqa: E731
    return f(a, a), f(a, b), f(b, b)


def _curvature(aa: torch.Tensor, ab: torch.Tensor, bb: torch.Tensor, eps: float):
    """The hybrid curvature estimate and whether its correlation passes (module docstring)."""
    tiny = torch.finfo(torch.float64).tiny
    sd = bb / ab.clamp(min=tiny)
    mg = ab / aa.clamp(min=tiny)
    est = torch.where(2 * mg > sd, mg, sd - mg / 2)
    cor = ab / (aa * bb).sqrt().clamp(min=tiny)
    return est, (cor > eps) & (ab > 0) & (aa > 0) & (bb > 0)


def spectral_factor(dx, dlh, dy, dl, rho: torch.Tensor, tau: float, eps: float = EPS_COR) -> torch.Tensor:
    """ρ_{k+1}/ρ_k per image from the changes Δx, Δλ̂, Δy, Δλ (module docstring), capped to [1/τ, τ]."""
    a, a_ok = _curvature(*_dots(dx, dlh), eps)
    b, b_ok = _curvature(*_dots(dy, dl), eps)
    rho64 = rho.to(torch.float64)
    new = torch.where(a_ok & b_ok, (a * b).sqrt(), torch.where(a_ok, a, torch.where(b_ok, b, rho64)))
    return (new / rho64).clamp(1.0 / tau, tau).to(rho.dtype)


class SpectralRho:
    """The state of the spectral policy over a per-image ADMM loop (:class:`csc.core.admm.ADMMLoop`).

    ``observe(k, ws, rho)`` is called after every y-step, before the dual's rescale, with
    the workspace's ``iterate()`` = (x_k, y_k, u_k) (u_k true, in ρ_k's units). Before an update
    iteration it keeps y and λ = ρu; at an update iteration it forms λ̂_k and λ_k, returns the
    factor ρ_{k+1}/ρ_k (ones at the first update, which only records the point) and keeps
    (x, y, λ̂, λ) for the next. Updates fall on the iterations k ≠ 0 with (k+1) % period = 0.
    """

    def __init__(self, period: int, tau: float):
        self.period, self.tau = max(2, int(period)), float(tau)
        self.prev: tuple | None = None  # (y_{k-1}, λ_{k-1})
        self.point: tuple | None = None  # (x, y, λ̂, λ) at the last update

    def updates(self, k: int) -> bool:
        return k != 0 and (k + 1) % self.period == 0

    def observe(self, k: int, ws, rho: torch.Tensor) -> torch.Tensor | None:
        if self.updates(k + 1):
            x, y, u = ws.iterate()
            r = rho.to(y.dtype).view(-1, *([1] * (y.ndim - 1)))
            self.prev = (y.clone(), u * r)
        if not self.updates(k) or self.prev is None:
            return None
        x, y, u = ws.iterate()
        r = rho.to(y.dtype).view(-1, *([1] * (y.ndim - 1)))
        yp, lp = self.prev
        lh = -(r * (x - yp) + lp)
        lam = u * r
        f = None
        if self.point is not None:
            x0, y0, lh0, l0 = self.point
            f = spectral_factor(x - x0, lh - lh0, y - y0, lam - l0, rho, self.tau)
        self.point, self.prev = (x.clone(), y.clone(), lh, lam), None
        return f

    def keep(self, mask: torch.Tensor) -> None:
        """Drop the state of the images not in ``mask`` (retired images)."""
        sel = lambda t: None if t is None else tuple(a[mask.to(a.device)] for a in t)  # noqa: E731
        self.prev, self.point = sel(self.prev), sel(self.point)

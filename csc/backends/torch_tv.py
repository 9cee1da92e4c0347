r"""The torch back end of total-variation denoising (SPORCO ``admm.tvl2.TVL2Denoise``,
:class:`csc.TVL2Denoise`): the split Ax − y = 0 with A = (G_r; G_c) the non-circular first
differences along rows and columns (SPORCO ``signal.grad``: the last row or column 0).

x (n, C, H, W) the images, y and u (n, 2, C, H, W) the gradients and the scaled dual. One
iteration, as SPORCO's (``xstep``, ``relax_AX``, ``ystep``, ``ustep``, ``compute_residuals``):

1. x-step: ``max_gs_iter`` Jacobi ("Gauss–Seidel" in SPORCO) sweeps of
   (W²_df + ρAᵀA)x = W²_df s + ρAᵀ(y − u), x ← (ρ(N(x) + Aᵀ(y − u)) + W²_df s)/(W²_df + ρ·l)
   with N(x) the sum of each pixel's neighbours and l their count (SPORCO
   ``GaussSeidelStep``), stopping early where the relative residual of the system is at most
   ``gs_tol``;
2. relaxation a = α·Ax + (1 − α)·y;
3. y = prox of λ‖w·|∇·|‖₁ at a + u (:class:`csc.core.prox.GroupL2Threshold`);
4. u ← u + a − y;
5. the residual sums of a split Ax − y = c (c = 0), with the dual residual ρ‖Aᵀ(y_prev − y)‖
   over ρ‖Aᵀu‖ (SPORCO's ``ADMM.rsdl_s``, ``rsdl_sn``).
"""

from __future__ import annotations

import torch

from csc.core.admm import select_images

__all__ = ["TorchTVL2", "grad", "grad_t"]

_AXES = (-2, -1)


def grad(x: torch.Tensor, axis: int) -> torch.Tensor:
    """SPORCO ``signal.grad(x, axis)``: x[i + 1] − x[i], 0 at the last index."""
    out = torch.zeros_like(x)
    n = x.shape[axis]
    out.narrow(axis, 0, n - 1).copy_(x.narrow(axis, 1, n - 1) - x.narrow(axis, 0, n - 1))
    return out


def grad_t(y: torch.Tensor, axis: int) -> torch.Tensor:
    """SPORCO ``signal.gradT(y, axis)``: y[i − 1] − y[i], −y[0] at the first index, y[−2] at the last."""
    n = y.shape[axis]
    out = torch.roll(y, 1, dims=axis) - y
    out.narrow(axis, 0, 1).copy_(-y.narrow(axis, 0, 1))
    out.narrow(axis, n - 1, 1).copy_(y.narrow(axis, n - 2, 1))
    return out


def _sq(t: torch.Tensor) -> torch.Tensor:
    return t.square().flatten(1).sum(1)


class TorchTVL2:
    """Working set of a TV-denoising solve (module docstring) on the torch back end.

    Parameters
    ----------
    S : tensor
        (n, C, H, W) images.
    prox : GroupL2Threshold
        :class:`csc.core.prox.GroupL2Threshold`.
    opts : TVL2Options
        :class:`csc.problems.tv.TVL2Options`.
    wdf : float or tensor
        The data term's weight W_df (broadcasting to S).
    joint : bool
        The batch is one problem (the Gauss–Seidel residual over it).
    """

    backend = "torch"

    def __init__(self, S: torch.Tensor, prox, opts, wdf, joint: bool = False):
        n, C, H, W = S.shape
        self.opts, self.prox, self.shape, self.joint = opts, prox, (H, W), joint
        self.dtype, self.device = S.dtype, S.device
        self.S, self.wdf = S, wdf
        self.wdf2 = wdf * wdf
        self.variables_per_image = C * H * W
        self.constraints_per_image = 2 * C * H * W
        self.x = S.clone()                       # SPORCO: X = S before the first x-step
        self.y, self.u = S.new_zeros((n, 2, C, H, W)), S.new_zeros((n, 2, C, H, W))
        self.lcw = self._centre_weight(H, W, S)
        self.gs_iter = torch.zeros(n, dtype=torch.int64, device=S.device)
        self.gs_relres = S.new_zeros(n)
        self._new = None

    @staticmethod
    def _centre_weight(H: int, W: int, S: torch.Tensor) -> torch.Tensor:
        """The neighbour count l of each pixel (SPORCO ``LaplaceCentreWeight``)."""
        lcw = torch.full((H, W), 4.0, dtype=S.dtype, device=S.device)
        lcw[[0, -1], :] -= 1.0
        lcw[:, [0, -1]] -= 1.0
        return lcw

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    @property
    def fidelity_weight(self) -> float:
        return 1.0

    def A(self, x: torch.Tensor) -> torch.Tensor:
        """Ax = (G_r x; G_c x), (n, 2, C, H, W)."""
        return torch.stack([grad(x, ax) for ax in _AXES], 1)

    def AT(self, y: torch.Tensor) -> torch.Tensor:
        """Aᵀy = G_rᵀ y_r + G_cᵀ y_c, (n, C, H, W)."""
        return grad_t(y[:, 0], _AXES[0]) + grad_t(y[:, 1], _AXES[1])

    def _gauss_seidel(self, x: torch.Tensor, atyu: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        """One sweep of SPORCO's ``GaussSeidelStep``."""
        xss = torch.zeros_like(x)
        for ax in _AXES:
            m = x.shape[ax]
            xss.narrow(ax, 1, m - 1).add_(x.narrow(ax, 0, m - 1))
            xss.narrow(ax, 0, m - 1).add_(x.narrow(ax, 1, m - 1))
        return (rho * (xss + atyu) + self.wdf2 * self.S) / (self.wdf2 + rho * self.lcw)

    def _rrs(self, ax: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """SPORCO ``linalg.rrs`` per problem: ‖ax − b‖ / max(‖ax‖, ‖b‖) (0 when both are 0)."""
        sums = torch.stack([_sq(ax - b), _sq(ax), _sq(b)], 1)
        if self.joint:
            sums = sums.sum(0, keepdim=True)
        d, nrm = sums[:, 0].sqrt(), torch.maximum(sums[:, 1].sqrt(), sums[:, 2].sqrt())
        out = torch.where(nrm == 0, torch.zeros_like(d), d / torch.where(nrm == 0, torch.ones_like(nrm), nrm))
        return out.expand(self.n) if self.joint else out

    def xstep(self, rho: torch.Tensor, want_fidelity: bool) -> None:
        r = rho.view(-1, 1, 1, 1)
        atyu = self.AT(self.y - self.u)
        x, count = self.x, torch.zeros(self.n, dtype=torch.int64, device=self.device)
        res = torch.full((self.n,), float("inf"), dtype=self.dtype, device=self.device)
        for _ in range(int(self.opts.max_gs_iter)):
            go = res > self.opts.gs_tol
            if not bool(go.any()):
                break
            new = self._gauss_seidel(x, atyu, r)
            x = torch.where(go.view(-1, 1, 1, 1), new, x)
            rrs = self._rrs(r * self.AT(self.A(x)) + self.wdf2 * x, self.wdf2 * self.S + r * atyu)
            res = torch.where(go, rrs, res)
            count = count + go.to(torch.int64)
        self.x, self.gs_iter, self.gs_relres = x, count, res
        self._rho = r

    def ystep(self, thr: torch.Tensor, want_l1: bool, may_rescale: bool) -> torch.Tensor:
        o = self.opts
        axnr = self.A(self.x)
        a = axnr if o.relax == 1.0 else o.relax * axnr - (1 - o.relax) * (-self.y)
        y = torch.empty_like(a)
        self.prox.apply_(a + self.u, thr, y, None)
        u = self.u + (a - y)
        zero = torch.zeros_like(thr)
        cols = [_sq(axnr), _sq(y), _sq(self.AT(u)), _sq(axnr - y), _sq(self.AT(y - self.y))]
        vals = self.prox.values(y if o.objective_on_y else axnr) if want_l1 else [zero]
        cols += vals + [zero]
        self._new = (y, u)
        return torch.stack(cols, 1)

    def fidelity(self) -> torch.Tensor:
        """½‖W_df(x − s)‖² per image."""
        return 0.5 * _sq(self.wdf * (self.x - self.S))

    def rescale(self, factor: torch.Tensor | None) -> None:
        if factor is not None:
            y, u = self._new
            self._new = (y, u / factor.view(-1, 1, 1, 1, 1))

    def hold(self, frozen) -> None:
        """Converged images retire at once (``sync_every`` 1)."""

    def finish(self, frozen) -> None:
        if frozen is not None:
            raise ValueError("the TV back end retires converged images at once (sync_every = 1)")
        self.y, self.u = self._new
        self._new = None

    def take(self, mask: torch.Tensor):
        return select_images(mask, self.x, self.y, self.u)

    def keep(self, mask: torch.Tensor) -> None:
        if bool(mask.all()):
            return
        self.x, self.y, self.u, self.S = (t[mask] for t in (self.x, self.y, self.u, self.S))
        self.gs_iter, self.gs_relres = self.gs_iter[mask], self.gs_relres[mask]
        if isinstance(self.wdf, torch.Tensor) and self.wdf.shape[0] > 1:
            self.wdf = self.wdf[mask]
            self.wdf2 = self.wdf * self.wdf
        self.prox = self.prox.keep(mask)

"""The torch back end of the ADMM core: CBPDN's operations on preallocated tensors, any device.

Each operation of :class:`csc.core.admm.Workspace` is a few in-place torch calls over
(n, K, H, W) buffers: the FFTs are ``torch.fft``, the x-step is the x-step object's torch
solve, the y-step is ``lerp``/``add`` and the prox object's torch operator
(:mod:`csc.core.prox`; soft thresholding written as v − clamp(v, −t, t)), and the residual sums are ``Tensor.sum`` over each image (its
cascade summation keeps float32 sums accurate enough not to change the adaptive-ρ path).
y, u and x are double-buffered so that the previous iterate stays available for the dual
residual and for freezing converged images without a host synchronisation.
"""

from __future__ import annotations

import torch

from csc.core import ops
from csc.core.admm import select_images
from csc.core.options import CBPDNOptions

__all__ = ["TorchCBPDN"]


class TorchCBPDN:
    """Working set of an ADMM solve of the split x = y on the torch back end.

    Parameters
    ----------
    S : tensor
        (n, H, W) images ((n, C, H, W) for a multi-channel x-step).
    xstep : XStep
        An x-step object (:mod:`csc.core.xstep`).
    y, u : tensor
        (n, M, H, W) initial values (taken over, not copied).
    prox : Prox
        The y-step's operator (:mod:`csc.core.prox`: soft threshold with its weights and
        constraints, joint sparsity, additive mask simulation, an ℓ1-ball projection …).
    opts : CBPDNOptions
        The solver's options.
    freeze : bool
        Keep the previous x for :meth:`finish` (device-side freezing of converged images).
    penalty_maps : int or None
        The x-step penalty's statistic over the first that many maps only (None: all;
        additive mask simulation leaves the impulse map out for the elastic net).
    """

    #: the back end's name, as :attr:`csc.CBPDNResult.backend` reports it
    backend = "torch"

    def __init__(self, S: torch.Tensor, xstep, y: torch.Tensor, u: torch.Tensor, prox, opts: CBPDNOptions,
                 freeze: bool = False, penalty_maps: int | None = None):
        n, K, H, W = y.shape
        self.opts, self.xs, self.prox, self.shape = opts, xstep, prox, (H, W)
        self.penalty_maps = penalty_maps
        self.dtype, self.device = y.dtype, y.device
        self.variables_per_image = K * H * W
        self.Sf = xstep.signal_dft(S).contiguous()  # (n, 1, H, Wr); (n, C, H, Wr) for a multi-channel dictionary
        self.y, self.u = y, u
        self.x = torch.zeros_like(y)
        self.freeze = bool(freeze)
        self._allocate(y, self.freeze)
        self.xf: torch.Tensor | None = None
        self._vf: torch.Tensor | None = None
        self._new: tuple | None = None

    def _allocate(self, y: torch.Tensor, freeze: bool) -> None:
        """The scratch maps for images like ``y``: the double buffers of y, u (and x when
        freezing), v and the relaxed x. They hold nothing between iterations, so
        :meth:`keep` allocates them anew rather than copying them."""
        empty = lambda: torch.empty_like(y)  # noqa: E731
        self.y_alt, self.u_alt, self.tmp = empty(), empty(), empty()
        self.x_alt = empty() if freeze else None
        self.ax = empty() if self.opts.relax != 1.0 else None

    @property
    def n(self) -> int:
        return int(self.y.shape[0])

    def xstep(self, rho: torch.Tensor, want_fidelity: bool) -> None:
        H, W = self.shape
        self._rho = rho.view(-1, 1, 1, 1)
        xf = torch.fft.rfft2(torch.sub(self.y, self.u, out=self.tmp))
        self.xf = self.xs.solve_(xf, self.Sf, self._rho)
        x = self.x_alt if self.x_alt is not None else self.x
        torch.fft.irfft2(self.xf, s=(H, W), out=x)
        self._x_new = x

    def ystep(self, thr: torch.Tensor, want_l1: bool, may_rescale: bool) -> torch.Tensor:
        """Relaxation, the prox's y-step, the dual step and the sums (:class:`csc.core.admm.Workspace`):
        the five norms, then the prox's values (:attr:`csc.core.prox.Prox.terms`) on x (or y)."""
        o = self.opts
        yprev, uprev, x, y = self.y, self.u, self._x_new, self.y_alt
        ax = x if self.ax is None else torch.lerp(yprev, x, o.relax, out=self.ax)
        v = torch.add(ax, uprev, out=self.u_alt)
        u = self.tmp
        if self.prox.apply_(v, thr, y, u):
            torch.sub(v, y, out=u)
        self.prox.observe_(x)  # a regulariser that follows the iterates (csc.core.prox.InhibitionThreshold)
        sq = lambda a: torch.mul(a, a, out=v).sum((1, 2, 3))  # noqa: E731  (v is scratch now)
        cols = [sq(x), sq(y), sq(u), sq(torch.sub(x, y, out=v)), sq(torch.sub(yprev, y, out=v))]
        if want_l1:
            cols += self.prox.values(y if o.objective_on_y else x)
        else:
            cols += [torch.zeros_like(cols[0]) for _ in self.prox.terms]
        self._new = (y, u, x)
        return torch.stack(cols, 1)

    def iterate(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x, y, u) of this iteration after the y-step, before the dual's rescale (u in the
        current ρ's units; views, not copies): the spectral ρ policy's input."""
        y, u, x = self._new
        return x, y, u

    def fidelity(self) -> torch.Tensor:
        H, W = self.shape
        y = self._new[0]
        vf = torch.fft.rfft2(y) if self.opts.objective_on_y else self.xf
        self._vf = vf
        return ops.rfft2_sqnorm(self.xs.synthesis(vf).reshape(self.Sf.shape) - self.Sf, W).sum(1) / 2.0

    def penalty(self) -> torch.Tensor:
        """The x-step's quadratic penalty ½ x̂ᴴ diag(P) x̂ per image, on the variable of the
        last :meth:`fidelity` (x, or y with ``objective_on_y``; its first ``penalty_maps`` maps)."""
        vf = self._vf if self.penalty_maps is None else self._vf[:, :self.penalty_maps]
        return self.xs.penalty(vf, self.shape[1])

    def rescale(self, factor: torch.Tensor | None) -> None:
        if factor is not None:
            self._new[1].div_(factor.view(-1, 1, 1, 1))

    def finish(self, frozen: torch.Tensor | None) -> None:
        y, u, x = self._new
        yprev, uprev, xprev = self.y, self.u, self.x
        if frozen is not None:
            keep = frozen.view(-1, 1, 1, 1)
            torch.where(keep, yprev, y, out=y)
            torch.where(keep, uprev, u, out=u)
            torch.where(keep, xprev, x, out=x)
            self.x, self.x_alt = x, xprev
        # rotate: u lives in the old scratch, the old u becomes scratch
        self.y, self.y_alt, self.u, self.tmp = y, yprev, u, uprev
        self._new = self._vf = None

    def take(self, mask: torch.Tensor):
        return select_images(mask, self.y, self.x, self.u)

    def hold(self, frozen: torch.Tensor | None) -> None:
        """The images the coming iteration keeps as they are; this back end restores them in
        :meth:`finish` and needs no notice (:class:`csc.backends.compiled.CompiledCBPDN` does)."""

    def keep(self, mask: torch.Tensor) -> None:
        if bool(mask.all()):
            return
        self.y, self.u, self.x, self.Sf = (t[mask] for t in (self.y, self.u, self.x, self.Sf))
        self.y_alt = self.u_alt = self.tmp = self.x_alt = self.ax = None  # freed before the new scratch
        self._allocate(self.y, self.freeze)
        self.prox = self.prox.keep(mask)

    # ------------------------------------------------------------------ state
    def codes_dft(self) -> torch.Tensor:
        """rfft2(y), (n, K, H, Wr)."""
        return torch.fft.rfft2(self.y)

    def load(self, y: torch.Tensor, u: torch.Tensor) -> None:
        """Set y and u (a resumed learner)."""
        self.y.copy_(y)
        self.u.copy_(u)

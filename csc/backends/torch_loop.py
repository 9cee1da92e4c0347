"""The torch back end of the ADMM core: CBPDN's operations on preallocated tensors, any device.

Each operation of :class:`csc.core.admm.Workspace` is a few in-place torch calls over
(n, K, H, W) buffers: the FFTs are ``torch.fft``, the x-step is the x-step object's torch
solve, the y-step is ``lerp``/``add``/``clamp``/``sub`` (soft thresholding written as
v − clamp(v, −t, t)), and the residual sums are ``Tensor.sum`` over each image (its
cascade summation keeps float32 sums accurate enough not to change the adaptive-ρ path).
y, u and x are double-buffered so that the previous iterate stays available for the dual
residual and for freezing converged images without a host synchronisation.
"""

from __future__ import annotations

import torch

from csc.core import ops
from csc.core.admm import select_images
from csc.core.options import CBPDNOptions

__all__ = ["TorchCBPDN", "TorchJointCBPDN", "TorchAddMaskSim"]


class TorchCBPDN:
    """Working set of a CBPDN solve on the torch back end.

    Parameters
    ----------
    S : (n, H, W) images ((n, C, H, W) for a multi-channel x-step); xstep : an x-step object (:mod:`csc.core.xstep`);
    y, u : (n, K, H, W) initial values (taken over, not copied); w : ℓ1 weight, a float
    or a tensor broadcasting to (n, K, H, W); freeze : keep the previous x for
    :meth:`finish` (device-side freezing of converged images).
    """

    #: the back end's name, as :attr:`csc.CBPDNResult.backend` reports it
    backend = "torch"

    def __init__(self, S: torch.Tensor, xstep, y: torch.Tensor, u: torch.Tensor, w, opts: CBPDNOptions,
                 kernel_size, freeze: bool = False):
        n, K, H, W = y.shape
        self.opts, self.xs, self.w, self.shape = opts, xstep, w, (H, W)
        self.kernel_size = tuple(kernel_size)
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
        o = self.opts
        yprev, uprev, x, y = self.y, self.u, self._x_new, self.y_alt
        ax = x if self.ax is None else torch.lerp(yprev, x, o.relax, out=self.ax)
        v = torch.add(ax, uprev, out=self.u_alt)
        u = self.tmp
        changed = self._prox(v, thr, y, u)
        self._constrain(y)
        if changed or o.nonneg or o.no_boundary_cross:
            torch.sub(v, y, out=u)
        sq = lambda a: torch.mul(a, a, out=v).sum((1, 2, 3))  # noqa: E731  (v is scratch now)
        cols = [sq(x), sq(y), sq(u), sq(torch.sub(x, y, out=v)), sq(torch.sub(yprev, y, out=v))]
        z = y if o.objective_on_y else x
        if want_l1:
            cols.append((self.w * z).abs().sum((1, 2, 3)))
        else:
            cols.append(torch.zeros_like(cols[0]))
        cols += self._extra_sums(z, want_l1)
        self._new = (y, u, x)
        return torch.stack(cols, 1)

    def _prox(self, v: torch.Tensor, thr: torch.Tensor, y: torch.Tensor, u: torch.Tensor) -> bool:
        """y ← prox of the regulariser at v (soft thresholding by λw/ρ), u ← v − y by
        clamping; returns whether y was changed after that (u must then be v − y)."""
        t = thr.view(-1, 1, 1, 1) * self.w
        torch.clamp(v, min=-t, max=t, out=u)
        torch.sub(v, u, out=y)
        return False

    def _constrain(self, y: torch.Tensor) -> None:
        """Non-negativity and boundary zeroing of y, in place (the options')."""
        o, (H, W), (kh, kw) = self.opts, self.shape, self.kernel_size
        if o.nonneg:
            y.clamp_(min=0)
        if o.no_boundary_cross:
            if kh > 1:
                y[..., H - kh + 1:, :] = 0
            if kw > 1:
                y[..., :, W - kw + 1:] = 0

    def _extra_sums(self, z: torch.Tensor, want: bool) -> list[torch.Tensor]:
        """Sums of further regularisation terms (none here)."""
        return []

    def fidelity(self) -> torch.Tensor:
        H, W = self.shape
        y = self._new[0]
        vf = torch.fft.rfft2(y) if self.opts.objective_on_y else self.xf
        self._vf = vf
        return ops.rfft2_sqnorm(self.xs.synthesis(vf).reshape(self.Sf.shape) - self.Sf, W).sum(1) / 2.0

    def penalty(self) -> torch.Tensor:
        """The x-step's quadratic penalty ½ x̂ᴴ diag(P) x̂ per image, on the variable of the
        last :meth:`fidelity` (x, or y with ``objective_on_y``)."""
        return self.xs.penalty(self._vf, self.shape[1])

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
        if isinstance(self.w, torch.Tensor) and self.w.shape[0] > 1:
            self.w = self.w[mask]

    # ------------------------------------------------------------------ state
    def codes_dft(self) -> torch.Tensor:
        """rfft2(y), (n, K, H, Wr)."""
        return torch.fft.rfft2(self.y)

    def load(self, y: torch.Tensor, u: torch.Tensor) -> None:
        """Set y and u (a resumed learner)."""
        self.y.copy_(y)
        self.u.copy_(u)


class TorchJointCBPDN(TorchCBPDN):
    """:class:`TorchCBPDN` for CBPDN with joint sparsity over C channels (SPORCO
    ``ConvBPDNJoint``): maps (n, C·K, H, W) of C channels × K kernels; the y-step is
    ``prox_sl1l2``: soft thresholding by λw/ρ, then shrinking each group of C coefficients
    (the same kernel and pixel in every channel) by μw₂₁/ρ in ℓ2 norm. ``thr`` is then
    (n, 2): λ/ρ and μ/ρ per image; the extra sum is Σ w₂₁‖z‖₂ over the groups.
    """

    def __init__(self, *args, channels: int, l21_weight, **kwargs):
        super().__init__(*args, **kwargs)
        self.C, self.w21 = int(channels), l21_weight

    def _groups(self, t: torch.Tensor) -> torch.Tensor:
        n, CK, H, W = t.shape
        return t.view(n, self.C, CK // self.C, H, W)

    def _prox(self, v, thr, y, u) -> bool:
        super()._prox(v, thr[:, 0].contiguous(), y, u)
        g = self._groups(y)
        nrm = torch.linalg.vector_norm(g, dim=1)
        b = thr[:, 1].view(-1, 1, 1, 1) * self.w21
        scale = torch.clamp(nrm - b, min=0) / torch.where(nrm == 0, torch.ones_like(nrm), nrm)  # SPORCO's prox_l2
        g.mul_(scale.unsqueeze(1))
        return True

    def _extra_sums(self, z, want):
        if not want:
            return [torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)]
        return [(self.w21 * torch.linalg.vector_norm(self._groups(z), dim=1)).sum((1, 2, 3))]

    def keep(self, mask: torch.Tensor) -> None:
        super().keep(mask)
        if isinstance(self.w21, torch.Tensor) and self.w21.shape[0] > 1 and not bool(mask.all()):
            self.w21 = self.w21[mask]


class TorchAddMaskSim(TorchCBPDN):
    """:class:`TorchCBPDN` with additive mask simulation (SPORCO ``admm.cbpdn.AddMaskSim``,
    Wohlberg 2016): the last map belongs to an impulse kernel appended to the dictionary; its
    y is a + u where the mask is 0 and 0 where it is not (``free``: (1 or n, 1, H, W), true
    where the mask is 0), untouched by the ℓ1 threshold, non-negativity and boundary zeroing
    (which act on the other maps). Its ℓ1 weight must be 0 (the ℓ1 term leaves it out);
    ``penalty_without_impulse``: the quadratic penalty's statistic leaves it out too (SPORCO's
    ConvElasticNet evaluates RegL2 on the variable AddMaskSim strips, ConvBPDNGradReg its
    RegGrad on the full maps)."""

    def __init__(self, *args, free: torch.Tensor, penalty_without_impulse: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.free, self.penalty_without_impulse = free, penalty_without_impulse

    def penalty(self) -> torch.Tensor:
        vf = self._vf[:, :-1] if self.penalty_without_impulse else self._vf
        return self.xs.penalty(vf, self.shape[1])

    def _prox(self, v, thr, y, u) -> bool:
        super()._prox(v, thr, y, u)
        y[:, -1:] = torch.where(self.free, v[:, -1:], torch.zeros_like(v[:, -1:]))
        return True

    def _constrain(self, y: torch.Tensor) -> None:
        super()._constrain(y[:, :-1])

    def keep(self, mask: torch.Tensor) -> None:
        super().keep(mask)
        if self.free.shape[0] > 1 and not bool(mask.all()):
            self.free = self.free[mask]

"""The fused CPU back end of the ADMM core: CBPDN's operations as numba kernels over FFTW plans.

The torch loop makes about 45 passes over a coefficient map per iteration outside its
FFTs; this back end makes one per step (:mod:`csc.backends.fused` for the threading and
the FFT plans, :mod:`csc.backends.kernels` for the kernels):

1. forward real FFT of t = y − u;
2. the x-step in place in the DFT domain (:func:`csc.backends.kernels.xstep`), with the
   inverse FFT's 1/(H·W) folded in and the data fidelity per DFT row when asked;
3. inverse real FFT into x;
4. relaxation, soft threshold, constraints, dual update, the next t and the residual sums
   in one pass (:func:`csc.backends.kernels.ystep`; :func:`csc.backends.dl_kernels.ystep_nonzeros`
   also records the nonzero codes for a learner's sparse dictionary step);
5. after an adaptive-ρ change: per-image problems divide u lazily (the next y-step reads
   u / pend) and rebuild t only where needed; joint problems divide u at once.

Results do not depend on the number of threads: rows or planes are split between threads
and their partial sums added in a fixed order.
"""

from __future__ import annotations

import numpy as np
import torch

from csc.backends import fused, numba_xstep
from csc.core.admm import select_images
from csc.core.options import CBPDNOptions

__all__ = ["FusedCBPDN", "FusedJointCBPDN", "FusedAddMaskSim", "fused_weights"]


def _npdt(dtype: torch.dtype):
    return np.dtype(np.float32 if dtype == torch.float32 else np.float64).type


def fused_weights(w, npdt) -> tuple[np.ndarray, torch.Tensor | None]:
    """The ℓ1 weight w (a float, or a tensor broadcasting to (n, K, H, W)) as the fused
    y-step kernels read it: (wk, None) with a per-kernel vector wk (one entry for a
    scalar), or (unused wk, the 4-D map) for weights that vary over images or pixels."""
    if not isinstance(w, torch.Tensor):
        return np.full(1, float(w), dtype=npdt), None
    if w.shape[0] == 1 and w.shape[2] == 1 and w.shape[3] == 1:
        return w.reshape(-1).contiguous().numpy(), None
    return np.ones(1, dtype=npdt), w.contiguous()


class FusedCBPDN:
    """Working set of a CBPDN solve on the fused CPU back end.

    Parameters
    ----------
    S : tensor
        (n, H, W) images ((n, C, H, W) for a multi-channel x-step).
    xstep : XStep
        An x-step object (its numba solve: :mod:`csc.backends.numba_xstep`).
    y, u : tensor
        (n, K, H, W) initial values (updated in place).
    prox : SoftThreshold
        A :class:`csc.core.prox.SoftThreshold` (its ℓ1 weight a float, (1, K, 1, 1) or a
        broadcast (·, ·, ·, ·) map, its non-negativity and boundary zeroing); the subclasses
        take joint sparsity's and additive mask simulation's prox.
    opts : CBPDNOptions
        The solver's options.
    threads : int
        Numba threads.
    one_rho : bool
        Every image shares one ρ (a joint problem: u is divided at once on a ρ change).
    planner : str or None
        FFTW planner effort (None: by size, see :mod:`csc.backends.fused`).
    keep_codes_plan : bool
        Also plan an input-preserving rfft2(y).
    penalty_maps : int or None
        As :class:`csc.backends.torch_loop.TorchCBPDN`'s.
    """

    #: the back end's name, as :attr:`csc.CBPDNResult.backend` reports it
    backend = "numba"

    def __init__(self, S: torch.Tensor, xstep, y: torch.Tensor, u: torch.Tensor, prox, opts: CBPDNOptions,
                 threads: int, *, one_rho: bool = False, planner: str | None = None,
                 keep_codes_plan: bool = False, penalty_maps: int | None = None):
        n, K, H, W = y.shape
        self.opts, self.xs, self.threads, self.shape = opts, xstep, threads, (H, W)
        self.prox, self.penalty_maps = prox, penalty_maps
        l1 = getattr(prox, "inner", prox)  # the soft threshold (additive mask simulation wraps one)
        self.nonneg = bool(l1.nonneg)
        self.dtype, self.device = y.dtype, torch.device("cpu")
        self.npdt = _npdt(y.dtype)
        self.variables_per_image = K * H * W
        self.one_rho = one_rho
        cdtype = torch.complex64 if y.dtype == torch.float32 else torch.complex128
        self.x = torch.empty_like(y)
        self.t = torch.empty_like(y)
        self.xf = torch.empty((n, K, H, W // 2 + 1), dtype=cdtype)
        self.fft = fused.FFTPair(self.t.numpy(), self.xf.numpy(), self.x.numpy(), threads, planner=planner)
        self.fft_y = None
        if keep_codes_plan:  # FFTW's planner may overwrite the arrays it plans on
            y0 = y.clone()
            self.fft_y = fused.FFTPair(y.numpy(), self.xf.numpy(), y.numpy(), threads, planner=planner,
                                       preserve_input=True)
            y.copy_(y0)
        self.y, self.u = y, u
        torch.sub(y, u, out=self.t)
        self.x.zero_()
        self.S, self.Sf = S.contiguous(), torch.fft.rfft2(S).contiguous()
        self._weights(l1.weight, K)
        r = opts.relax
        self.alpha, self.beta = (self.npdt(r), self.npdt(1.0 - r)) if r != 1.0 else (self.npdt(1), self.npdt(0))
        kh, kw = l1.kernel_size or (1, 1)
        self.bh = H - kh + 1 if kh > 1 else H
        self.bw = W - kw + 1 if kw > 1 else W
        self.pend = torch.ones(n, dtype=y.dtype)
        self.rescaled = torch.zeros(n, dtype=torch.bool)
        self.write_t = torch.ones(n, dtype=torch.uint8)
        self.track_nonzeros = False
        self._idx: np.ndarray | None = None
        self._cnt = np.empty(n * K, dtype=np.int64)
        self._nnz = 0
        self.invalidate()

    def _weights(self, w, K: int) -> None:
        """ℓ1 weights: a per-kernel vector ``wk`` (one entry for a scalar), or a 4-D map."""
        self.wk, self.wmap = fused_weights(w, self.npdt)
        self.w4 = np.ones((1, 1, 1, 1), dtype=self.npdt)
        self.spatial = self.wmap is not None

    @property
    def n(self) -> int:
        return int(self.y.shape[0])

    def invalidate(self) -> None:
        """Forget cached views of y (its DFT in x̂, its nonzeros)."""
        self._zf_valid = self._nz_valid = False

    # ------------------------------------------------------------- the iteration
    def xstep(self, rho: torch.Tensor, want_fidelity: bool) -> None:
        n, H = self.n, self.shape[0]
        self.invalidate()
        xfv = self.xf.numpy()
        self.fft.forward(self.t.numpy(), xfv)
        self._fid_rows = np.zeros(n * H * self.xs.row_factor if want_fidelity else 0)
        self._pen_rows = np.zeros(n * H if want_fidelity and self.xs.has_penalty else 0)
        numba_xstep.solve(self.xs, self, xfv.view(self.npdt), rho.contiguous().numpy(), self.npdt(self.fft.scale),
                            self._fid_rows, self._pen_rows)
        self.fft.inverse(xfv, self.x.numpy())

    def ystep(self, thr: torch.Tensor, want_l1: bool, may_rescale: bool) -> torch.Tensor:
        return self._ystep_planes(thr, want_l1, may_rescale).sum(1)

    def _ystep_planes(self, thr: torch.Tensor, want_l1: bool, may_rescale: bool) -> torch.Tensor:
        """The y-step kernel's run; its sums per map (n, K, 6)."""
        o, n, K = self.opts, self.n, self.y.shape[1]
        H, W = self.shape
        xv, yv, uv, tv = self.x.numpy(), self.y.numpy(), self.u.numpy(), self.t.numpy()
        part = np.empty((n * K, 6))
        plain = not (o.objective_on_y or self.nonneg or self.bh < H or self.bw < W or self.spatial)
        if self.track_nonzeros and plain and self.one_rho:
            if self._idx is None:
                self._idx = np.empty(n * K * H * W, dtype=np.int32)
            fused.run_split(fused.dl_kernels().ystep_nonzeros, n * K, self.threads, xv, yv, uv, tv, self.alpha,
                            self.beta, self.npdt(float(thr[0])), self.wk, self._idx, self._cnt, part)
            self._nnz, self._nz_valid = int(self._cnt.sum()), True
        else:
            self.write_t = ((~self.rescaled) if may_rescale else torch.ones(n, dtype=torch.bool)).to(torch.uint8)
            fused.run_split(fused.kernels().ystep, n * K, self.threads, xv, yv, uv, tv, self.alpha, self.beta,
                            thr.contiguous().numpy(), self.wk, self.wmap.numpy() if self.spatial else self.w4,
                            self.spatial, self.pend.numpy(), self.write_t.numpy(), self.nonneg, self.bh, self.bw,
                            o.objective_on_y, want_l1, part)
        return torch.from_numpy(part.reshape(n, K, 6))

    def iterate(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x, y, u) of this iteration after the y-step, before the dual's rescale (the y-step
        leaves u true, in the current ρ's units; views, not copies): the spectral ρ policy's input."""
        return self.x, self.y, self.u

    def fidelity(self) -> torch.Tensor:
        n, (H, W) = self.n, self.shape
        if self.opts.objective_on_y:
            rows = np.empty(n * H * self.xs.row_factor)
            numba_xstep.fidelity_rows(self.xs, self._y_dft(), self.Sf, W % 2 == 0, rows, self.threads)
        else:
            rows = self._fid_rows
        return (torch.from_numpy(rows.reshape(n, -1).sum(1)) / (H * W) / 2.0).to(self.dtype)

    def penalty(self) -> torch.Tensor:
        """The x-step's quadratic penalty ½ x̂ᴴ diag(P) x̂ per image (on y with ``objective_on_y``)."""
        n, (H, W) = self.n, self.shape
        if self.opts.objective_on_y:
            rows = np.empty(n * H)
            fused.run_split(fused.kernels().penalty_rows, n * H, self.threads, self._y_dft().numpy().view(self.npdt),
                            numba_xstep.penalty_arrays(self.xs)[1], W % 2 == 0, rows)
        else:
            rows = self._pen_rows
        return (torch.from_numpy(rows.reshape(n, H).sum(1)) / (H * W) / 2.0).to(self.dtype)

    def _y_dft(self) -> torch.Tensor:
        """rfft2(y), leaving x intact (statistics on y)."""
        keeps_x = self.fft_y is not None and self.fft_y.preserves_input
        return self.codes_dft() if keeps_x else torch.fft.rfft2(self.y)

    def rescale(self, factor: torch.Tensor | None) -> None:
        n = self.n
        if self.one_rho:  # joint: divide u now, rebuild t
            if factor is not None and float(factor[0]) != 1.0:
                self.u.div_(factor.view(-1, 1, 1, 1))
                torch.sub(self.y, self.u, out=self.t)
            return
        changed = torch.zeros(n, dtype=torch.bool) if factor is None else factor != 1
        if factor is not None:
            self.pend.copy_(torch.where(changed, factor, torch.ones_like(factor)))
        else:
            self.pend.fill_(1)
        need = changed | (self.write_t == 0)
        if bool(need.any()):
            fused.run_split(fused.kernels().rescale_t, n * self.y.shape[1], self.threads, self.y.numpy(),
                            self.u.numpy(), self.pend.numpy(), need.to(torch.uint8).numpy(), self.t.numpy())
        self.rescaled = changed

    def finish(self, frozen) -> None:
        if frozen is not None:
            raise ValueError("the fused CPU back end retires converged images at once (sync_every = 1)")

    def take(self, mask: torch.Tensor):
        sel = mask & (self.pend != 1)
        if bool(sel.any()):  # apply the pending u rescale of the retiring images
            fused.run_split(fused.kernels().divide_planes, self.n * self.y.shape[1], self.threads, self.u.numpy(),
                            self.pend.numpy(), sel.to(torch.uint8).numpy())
            self.pend[sel] = 1
        return select_images(mask, self.y, self.x, self.u)

    def hold(self, frozen: torch.Tensor | None) -> None:
        """Nothing to do before an iteration: :meth:`finish` restores frozen images."""

    def keep(self, mask: torch.Tensor) -> None:
        if bool(mask.all()):
            return
        for name in ("y", "u", "x", "t", "xf", "S", "Sf", "pend", "rescaled", "write_t"):
            setattr(self, name, getattr(self, name)[mask].contiguous())
        if self.spatial and self.wmap.shape[0] > 1:
            self.wmap = self.wmap[mask].contiguous()
        self._cnt = np.empty(self.n * self.y.shape[1], dtype=np.int64)
        self._idx = None
        self.invalidate()

    # ------------------------------------------------- views of y for the learners
    def codes_dft(self) -> torch.Tensor:
        """rfft2(y) (n, K, H, Wr), in the x̂ buffer (valid until the next x-step)."""
        if not self._zf_valid:
            if self.fft_y is not None and self.fft_y.preserves_input:
                self.fft_y.forward(self.y.numpy(), self.xf.numpy())
            else:
                xv = self.x.numpy()
                np.copyto(xv, self.y.numpy())  # the forward FFT may destroy its input
                self.fft.forward(xv, self.xf.numpy())
            self._zf_valid = True
        return self.xf

    def nonzeros(self) -> tuple[np.ndarray, np.ndarray, int]:
        """The nonzero codes of y (:func:`csc.backends.dl_kernels.nonzeros`): (idx, cnt, total)."""
        if not self._nz_valid:
            if self._idx is None:
                self._idx = np.empty(self.y.numel(), dtype=np.int32)
            fused.run_split(fused.dl_kernels().nonzeros, self._cnt.shape[0], self.threads, self.y.numpy(),
                            self._idx, self._cnt)
            self._nnz, self._nz_valid = int(self._cnt.sum()), True
        return self._idx, self._cnt, self._nnz

    def load(self, y: torch.Tensor, u: torch.Tensor) -> None:
        """Set y and u (a resumed learner)."""
        self.y.copy_(y)
        self.u.copy_(u)
        torch.sub(self.y, self.u, out=self.t)
        self.pend.fill_(1)
        self.invalidate()


class FusedJointCBPDN(FusedCBPDN):
    """:class:`FusedCBPDN` for joint sparsity over C channels (maps (n, C·K, H, W)): the
    y-step is the numba kernel :func:`csc.backends.kernels.ystep_joint` (``prox_sl1l2``),
    with thresholds (n, 2) = (λ/ρ, μ/ρ) and a seventh sum Σ w₂₁‖z‖₂."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.C, l21_weight = int(self.prox.channels), self.prox.l21_weight
        self.spatial21 = isinstance(l21_weight, torch.Tensor) and not (
            l21_weight.shape[0] == 1 and l21_weight.shape[2] == 1 and l21_weight.shape[3] == 1)
        if self.spatial21:
            self.w21k, self.w21map = np.ones(1, dtype=self.npdt), l21_weight.contiguous()
        else:
            w = l21_weight.reshape(-1).contiguous().numpy() if isinstance(l21_weight, torch.Tensor) else \
                np.full(1, float(l21_weight), dtype=self.npdt)
            self.w21k, self.w21map = w, torch.ones((1, 1, 1, 1), dtype=self.dtype)

    def ystep(self, thr: torch.Tensor, want_l1: bool, may_rescale: bool) -> torch.Tensor:
        o, n, K = self.opts, self.n, self.y.shape[1] // self.C
        part = np.empty((n * K, 7))
        self.write_t = ((~self.rescaled) if may_rescale else torch.ones(n, dtype=torch.bool)).to(torch.uint8)
        fused.run_split(fused.kernels().ystep_joint, n * K, self.threads, self.x.numpy(), self.y.numpy(),
                        self.u.numpy(), self.t.numpy(), self.alpha, self.beta, thr[:, 0].contiguous().numpy(),
                        thr[:, 1].contiguous().numpy(), self.wk, self.wmap.numpy() if self.spatial else self.w4,
                        self.spatial, self.w21k, self.w21map.numpy(), self.spatial21, self.pend.numpy(),
                        self.write_t.numpy(), self.nonneg, self.bh, self.bw, o.objective_on_y, want_l1, self.C, part)
        return torch.from_numpy(part.reshape(n, K, 7).sum(1))

    def keep(self, mask: torch.Tensor) -> None:
        if not bool(mask.all()) and self.spatial21 and self.w21map.shape[0] > 1:
            self.w21map = self.w21map[mask].contiguous()
        super().keep(mask)


class FusedAddMaskSim(FusedCBPDN):
    r""":class:`FusedCBPDN` with additive mask simulation (SPORCO ``admm.cbpdn.AddMaskSim``; the
    torch loop runs :class:`csc.core.prox.ImpulseMask` itself): the last map belongs to the
    impulse kernel, whose ℓ1 weight is 0. The y-step kernel runs over every map; on the
    impulse's it computes y = v, u = 0 (threshold 0) or, where a constraint zeroes y, y = 0,
    u = v, so y + u is v = a + u_prev exactly. The impulse's map is then set as SPORCO's:

    .. math::
        y_z = [W = 0]\,v, \qquad u_z = v - y_z, \qquad t_z = y_z - u_z ,

    free of the threshold and the constraints (``free``: (1 or n, 1, H, W), true where the
    mask is 0; the prox's, :class:`csc.core.prox.ImpulseMask`), and its residual sums are
    recomputed. ``penalty_maps`` = K (the elastic net, P = 1): the penalty statistic ½‖x‖²
    leaves the impulse's map out."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.free = self.prox.free.contiguous()

    def ystep(self, thr: torch.Tensor, want_l1: bool, may_rescale: bool) -> torch.Tensor:
        yprev = self.y[:, -1:].clone()
        part = self._ystep_planes(thr, want_l1, may_rescale)
        y, u, x = self.y[:, -1:], self.u[:, -1:], self.x[:, -1:]
        v = y + u
        y.copy_(torch.where(self.free, v, torch.zeros_like(v)))
        torch.sub(v, y, out=u)
        torch.sub(y, u, out=self.t[:, -1:])
        sq = lambda a: a.to(torch.float64).square().sum((1, 2, 3))  # noqa: E731
        part[:, -1, :5] = torch.stack([sq(x), sq(y), sq(u), sq(x - y), sq(yprev - y)], 1)
        return part.sum(1)

    def penalty(self) -> torch.Tensor:
        if self.penalty_maps is None:
            return super().penalty()
        v = self.y if self.opts.objective_on_y else self.x
        return v[:, :self.penalty_maps].square().sum((1, 2, 3)) / 2.0

    def keep(self, mask: torch.Tensor) -> None:
        if self.free.shape[0] > 1 and not bool(mask.all()):
            self.free = self.free[mask].contiguous()
        super().keep(mask)

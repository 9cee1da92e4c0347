r"""Convolutional basis pursuit denoising (CBPDN) by ADMM, batched, on CPU and CUDA.

For each image s (H×W) and a dictionary of K kernels d_k (kh×kw) the solver computes

.. math::
    \operatorname*{argmin}_x \; \tfrac12 \Big\| \sum_k d_k * x_k - s \Big\|_2^2
    + \lambda \sum_k \| w_k \odot x_k \|_1 ,

with ``*`` circular 2-D convolution and kernels zero-padded at the top-left origin, by
ADMM on the split x = y with scaled dual u (SPEC §1; SPORCO ``admm.cbpdn.ConvBPDN``).
One iteration, in SPORCO's order:

1. x-step in the DFT domain: :math:`(\hat D^H \hat D + \rho I)\hat x = \hat D^H \hat s
   + \rho\,\hat v`, v = y − u, solved per frequency by Sherman–Morrison, written as
   :math:`\hat x = \hat v + \hat D^H (\hat s - \hat D \hat v)/(\rho + \hat D \hat D^H)`
   (the same solution as :func:`csc.core.ops.sherman_morrison_solve`, without forming
   :math:`\hat D^H \hat s`);
2. over-relaxation :math:`a = \alpha x + (1-\alpha) y`;
3. y-step :math:`y = \mathcal S_{\lambda w/\rho}(a + u)`, then optional non-negativity and
   zeroing of boundary-crossing coefficients;
4. dual :math:`u \leftarrow u + a - y`, which equals clamp(a + u, −λw/ρ, λw/ρ) when no
   constraint modified y;
5. primal and dual residuals and their tolerances;
6. adaptive ρ (residual balancing) with u rescaled;
7. stop when both residuals are below tolerance.

Every image of a batch is solved as if it were alone: its own ρ, residuals and
stopping. An image that has converged stops changing and leaves the working set, so
the cost of a batch falls as its images converge.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch

from csc.backends import fused as _fused

from csc.core import ops
from csc.core.checks import as_float_tensor, check_finite, check_ndim, check_nonnegative
from csc.core.options import CBPDNOptions, default_rsdl_target

__all__ = ["ConvBPDN", "CBPDNResult", "IterationStats", "encode", "SPORCO_STATS_NAMES"]


#: csc statistics field → SPORCO ``IterationStats`` field.
SPORCO_STATS_NAMES: dict[str, str] = {
    "iteration": "Iter",
    "objective": "ObjFun",
    "data_fidelity": "DFid",
    "l1": "RegL1",
    "primal_residual": "PrimalRsdl",
    "dual_residual": "DualRsdl",
    "eps_primal": "EpsPrimal",
    "eps_dual": "EpsDual",
    "rho": "Rho",
    "time": "Time",
}


@dataclass(frozen=True)
class IterationStats:
    """Per-iteration statistics of one image's solve (arrays over its iterations).

    ``rho`` is the penalty used in that iteration (before its adaptive update), as in
    SPORCO; ``time`` is seconds since the start of the solve. The objective terms are
    evaluated on x, or on y with ``CBPDNOptions(objective_on_y=True)``.
    """

    iteration: np.ndarray
    objective: np.ndarray
    data_fidelity: np.ndarray
    l1: np.ndarray
    primal_residual: np.ndarray
    dual_residual: np.ndarray
    eps_primal: np.ndarray
    eps_dual: np.ndarray
    rho: np.ndarray
    time: np.ndarray

    def __len__(self) -> int:
        return len(self.iteration)

    def to_dict(self) -> dict[str, list]:
        """Plain lists, for JSON."""
        return {k: np.asarray(v).tolist() for k, v in asdict(self).items()}


_STAT_FIELDS = [f.name for f in fields(IterationStats)]


@dataclass
class CBPDNResult:
    """Result of :meth:`ConvBPDN.solve`.

    Shapes use ``lead`` for the input's leading axes: () for one (H, W) image is
    promoted to (1,), (B,) for (B, H, W), (B, C) for (B, C, H, W).

    Attributes
    ----------
    codes : lead + (K, H, W)
        The exactly sparse solution y.
    x : lead + (K, H, W)
        The dense ADMM variable x of the last iteration.
    u : lead + (K, H, W)
        The scaled dual variable.
    rho : lead
        Final penalty of each image.
    iterations : lead, int64
        Iterations run for each image.
    stats : list of IterationStats, or None
        One record per image (in flattened ``lead`` order) when statistics are recorded.
    dictionary : (K, kh, kw)
        The dictionary used.
    """

    codes: torch.Tensor
    x: torch.Tensor
    u: torch.Tensor
    rho: torch.Tensor
    iterations: torch.Tensor
    stats: list[IterationStats] | None
    dictionary: torch.Tensor

    def reconstruct(self, codes: torch.Tensor | None = None) -> torch.Tensor:
        """Σ_k d_k * codes_k, shape lead + (H, W); ``codes`` defaults to :attr:`codes`."""
        c = self.codes if codes is None else codes
        K, H, W = c.shape[-3:]
        flat = c.reshape(-1, K, H, W)
        return ops.synthesis(self.dictionary.to(c.device), flat).reshape(c.shape[:-3] + (H, W))


class ConvBPDN:
    r"""Batched ADMM solver for convolutional BPDN (module docstring for the equations).

    Parameters
    ----------
    dictionary : (K, kh, kw) tensor or array
        Single-channel kernels. Use :func:`csc.from_sporco_layout` for SPORCO's
        (kh, kw, K) layout.
    lmbda : float
        Regularisation weight λ ≥ 0.
    options : CBPDNOptions, optional
        Solver options; SPORCO's defaults when omitted.

    Examples
    --------
    >>> solver = ConvBPDN(D, 0.05, CBPDNOptions(max_iter=200))
    >>> result = solver.solve(images)          # images (B, H, W)
    >>> result.codes.shape                     # (B, K, H, W)
    """

    def __init__(self, dictionary, lmbda: float, options: CBPDNOptions | None = None):
        self.options = options if options is not None else CBPDNOptions()
        if not isinstance(self.options, CBPDNOptions):
            raise TypeError(f"options: expected CBPDNOptions, got {type(self.options).__name__}")
        self.lmbda = check_nonnegative("lmbda", lmbda)
        D = as_float_tensor("dictionary", dictionary, self.options.dtype, self.options.device)
        if D.ndim == 4:
            raise ValueError(
                f"dictionary: multi-channel dictionaries (K, C, kh, kw) are not supported; got shape "
                f"{tuple(D.shape)}. Pass a single-channel (K, kh, kw) dictionary: each image channel "
                "is then coded on its own"
            )
        check_ndim("dictionary", D, (3,), "(K, kh, kw)")
        if min(D.shape) == 0:
            raise ValueError(f"dictionary: expected a non-empty (K, kh, kw) tensor, got shape {tuple(D.shape)}")
        check_finite("dictionary", D)
        self.dictionary = D

    # ------------------------------------------------------------------ helpers
    def _prepare_images(self, images) -> tuple[torch.Tensor, tuple[int, ...]]:
        opts, D = self.options, self.dictionary
        S = as_float_tensor("images", images, opts.dtype, opts.device)
        if opts.dtype is None and S.dtype != D.dtype:
            raise TypeError(
                f"images: dtype {S.dtype} does not match the dictionary's {D.dtype}; convert one, "
                "or set CBPDNOptions(dtype=...) to convert both"
            )
        if opts.device is None and S.device != D.device:
            raise ValueError(
                f"images: on {S.device} but the dictionary is on {D.device}; move one, or set "
                "CBPDNOptions(device=...) to move both"
            )
        check_ndim("images", S, (2, 3, 4), "(H, W), (B, H, W) or (B, C, H, W)")
        H, W = S.shape[-2:]
        kh, kw = D.shape[-2:]
        if kh > H or kw > W:
            raise ValueError(
                f"images: each image ({H}×{W}) must be at least as large as the kernels ({kh}×{kw})"
            )
        if S.numel() == 0:
            raise ValueError(f"images: expected at least one image, got shape {tuple(S.shape)}")
        check_finite("images", S)
        lead = tuple(S.shape[:-2]) or (1,)
        return S.reshape(-1, H, W), lead

    def _prepare_weight(self, n: int, shape: tuple[int, int], S: torch.Tensor, lead) -> torch.Tensor | float:
        w = self.options.l1_weight
        K = self.dictionary.shape[0]
        if isinstance(w, (int, float, np.floating, np.integer)) and not isinstance(w, bool):
            return check_nonnegative("l1_weight", w)
        wt = as_float_tensor("l1_weight", w, S.dtype, S.device)
        check_finite("l1_weight", wt)
        if bool((wt < 0).any()):
            raise ValueError("l1_weight: expected weights >= 0, found negative entries")
        if wt.ndim == 0:
            return float(wt)
        if wt.ndim == 1:
            if wt.shape[0] not in (1, K):
                raise ValueError(f"l1_weight: a 1-D weight must have K={K} entries, got {wt.shape[0]}")
            wt = wt.reshape(1, -1, 1, 1)
        target = (n, K) + tuple(shape)
        if wt.ndim == len(lead) + 3 and tuple(wt.shape[: len(lead)]) == tuple(lead) and len(lead) > 1:
            wt = wt.reshape((n,) + tuple(wt.shape[len(lead):]))
        try:
            torch.broadcast_shapes(wt.shape, target)
            if torch.broadcast_shapes(wt.shape, target) != torch.Size(target):
                raise RuntimeError
        except RuntimeError:
            raise ValueError(
                f"l1_weight: shape {tuple(wt.shape)} does not broadcast to the codes' shape {target} "
                "(expected a scalar, (K,), (K, H, W) or (B, K, H, W))"
            ) from None
        while wt.ndim < 4:
            wt = wt.unsqueeze(0)
        return wt

    def _prepare_init(self, name: str, value, n: int, lead, shape) -> torch.Tensor | None:
        if value is None:
            return None
        D = self.dictionary
        K = D.shape[0]
        t = as_float_tensor(name, value, D.dtype, D.device)
        expect = tuple(lead) + (K,) + tuple(shape)
        if tuple(t.shape) not in (expect, (n, K) + tuple(shape)):
            raise ValueError(f"{name}: expected shape {expect}, got {tuple(t.shape)}")
        check_finite(name, t)
        return t.reshape(n, K, *shape).clone()

    # ------------------------------------------------------------------ solve
    def solve(self, images, y0=None, u0=None) -> CBPDNResult:
        """Solve CBPDN for every image of ``images`` independently.

        Parameters
        ----------
        images : (H, W), (B, H, W) or (B, C, H, W) tensor or array
            Each channel of each image is coded on its own.
        y0, u0 : lead + (K, H, W), optional
            Initial y and scaled dual u. When only ``y0`` is given, u starts at
            (λ/ρ₀)·sign(y0) (SPORCO's choice); both default to zero.
        """
        opts, D, lmbda = self.options, self.dictionary, self.lmbda
        S, lead = self._prepare_images(images)
        n, H, W = S.shape
        K = D.shape[0]
        kh, kw = D.shape[-2:]
        dtype, device = S.dtype, S.device
        D = D.to(dtype=dtype, device=device)
        w = self._prepare_weight(n, (H, W), S, lead)

        rho0 = float(opts.rho) if opts.rho is not None else 50.0 * lmbda + 1.0
        xi = float(opts.rsdl_target) if opts.rsdl_target is not None else default_rsdl_target(lmbda)
        y = self._prepare_init("y0", y0, n, lead, (H, W))
        u = self._prepare_init("u0", u0, n, lead, (H, W))
        if y is None:
            y = S.new_zeros((n, K, H, W))
        if u is None:
            u = (lmbda / rho0) * torch.sign(y) if y0 is not None else torch.zeros_like(y)

        if self._use_fused(device):
            return self._solve_fused(S, lead, D, w, y, u, rho0, xi)

        Df = ops.kernel_dft(D, (H, W))
        Dfc = Df.conj().resolve_conj()
        gram = ops.gram_diagonal(Df)
        Sf = torch.fft.rfft2(S)
        rho = torch.full((n, 1, 1, 1), rho0, dtype=dtype, device=device)

        # Statistics are read on the host every iteration anyway; otherwise check for
        # convergence every `sync_every` iterations and freeze converged images between checks.
        sync_every = 1 if opts.record_stats else opts.sync_interval or (1 if device.type == "cpu" else 10)
        freeze = sync_every > 1
        out = _Outputs(n, (K, H, W), S, opts.record_stats)
        st = _State.create(y, u, rho, Sf, w, relax=opts.relax != 1.0, freeze=freeze)
        sqrt_n = math.sqrt(K * H * W)
        t0 = time.perf_counter()
        for k in range(opts.max_iter):
            if st.n == 0:
                break
            yprev, uprev, xprev = st.y, st.u, st.x
            y, x = st.y_alt, (st.x_alt if freeze else st.x)
            # x-step, v = y - u:  x̂ = v̂ + conj(D̂)·(Ŝ − Σ_k D̂_k v̂_k) / (ρ + Σ_k |D̂_k|²),
            # the Sherman–Morrison solution of (D̂ᴴD̂ + ρI) x̂ = D̂ᴴŜ + ρv̂ rearranged so that
            # D̂ᴴŜ is never formed (ops.sherman_morrison_solve is the textbook form).
            xf = torch.fft.rfft2(torch.sub(yprev, uprev, out=st.tmp))
            c = (st.Sf - torch.einsum("khw,nkhw->nhw", Df, xf).unsqueeze(1)).div_(st.rho + gram)
            xf.addcmul_(Dfc, c)
            torch.fft.irfft2(xf, s=(H, W), out=x)
            # relaxation a = αx + (1−α)y; y-step y = v − clamp(v, −t, t) with v = a + u
            # (soft thresholding); dual step u ← u + a − y = v − y = clamp(v, −t, t).
            ax = x if st.ax is None else torch.lerp(yprev, x, opts.relax, out=st.ax)
            v = torch.add(ax, uprev, out=st.u_alt)
            thr = (lmbda / st.rho) * st.w
            u = torch.clamp(v, min=-thr, max=thr, out=st.tmp)
            torch.sub(v, u, out=y)
            if opts.nonneg:
                y.clamp_(min=0)
            if opts.no_boundary_cross:
                if kh > 1:
                    y[..., H - kh + 1:, :] = 0
                if kw > 1:
                    y[..., :, W - kw + 1:] = 0
            if opts.nonneg or opts.no_boundary_cross:
                torch.sub(v, y, out=u)
            # v's buffer is free from here on: scratch for the residuals.
            r, s, epri, edua = self._residuals(x, y, yprev, u, st.rho, v, sqrt_n)
            if opts.record_stats:
                fid_f = xf if not opts.objective_on_y else torch.fft.rfft2(y)
                fid = ops.rfft2_sqnorm(ops.synthesis_dft(Df, fid_f) - st.Sf[:, 0], W) / 2.0
                l1 = (st.w * (y if opts.objective_on_y else x)).abs().sum((1, 2, 3))
                row = torch.stack([fid + lmbda * l1, fid, l1, r, s, epri, edua, st.rho.reshape(-1)])
                out.record(k, st.idx, row.cpu().numpy(), time.perf_counter() - t0)
            rho = self._update_rho(k, r, s, xi, st.rho, u)
            converged = (r < epri) & (s < edua)
            if freeze:
                keep = st.frozen.view(-1, 1, 1, 1)
                torch.where(keep, yprev, y, out=y)
                torch.where(keep, uprev, u, out=u)
                torch.where(keep, xprev, x, out=x)
                rho = torch.where(keep, st.rho, rho)
                st.iters += (~st.frozen).to(torch.int64)
                st.frozen = st.frozen | converged
                st.x, st.x_alt = x, xprev
            else:
                st.iters += 1
                st.frozen = converged
            # rotate buffers: u lives in the old scratch, the old u becomes scratch
            st.y, st.y_alt, st.u, st.tmp, st.rho = y, yprev, u, uprev, rho
            if (k + 1) % sync_every == 0 or k + 1 == opts.max_iter:
                done = st.frozen.cpu()
                if bool(done.any()):
                    out.retire(st, done.to(device))
        if st.n:
            out.retire(st, torch.ones(st.n, dtype=torch.bool, device=device))
        return out.result(lead, D)

    # ------------------------------------------------------------ fused CPU path
    def _use_fused(self, device: torch.device) -> bool:
        """Whether :meth:`solve` runs the fused CPU back end (:func:`csc.backends.fused.use_fused`)."""
        return _fused.use_fused(self.options.backend, device, "the solve")

    def _solve_fused(self, S, lead, D, w, y, u, rho0: float, xi: float) -> CBPDNResult:
        """:meth:`solve` on the CPU with fused kernels (:mod:`csc.backends.fused`): the same
        iteration as the torch loop, in fewer passes over memory (module docstring of
        :mod:`csc.backends.fused`). Converged images retire at once (no ``sync_interval``)."""
        kn = _fused.kernels()
        opts, lmbda = self.options, self.lmbda
        n, H, W = S.shape
        K, kh, kw = D.shape
        Wr = W // 2 + 1
        dtype = S.dtype
        npdt = np.dtype(np.float32 if dtype == torch.float32 else np.float64).type
        cdtype = torch.complex64 if dtype == torch.float32 else torch.complex128
        threads = max(1, torch.get_num_threads())
        record, on_y = opts.record_stats, opts.objective_on_y

        Df = ops.kernel_dft(D, (H, W))
        Dre, Dim = Df.real.contiguous().numpy(), Df.imag.contiguous().numpy()
        gram = ops.gram_diagonal(Df).contiguous().numpy()
        del Df
        x = torch.empty((n, K, H, W), dtype=dtype)
        t = torch.empty_like(x)
        xf = torch.empty((n, K, H, Wr), dtype=cdtype)
        fft = _fused.FFTPair(t.numpy(), xf.numpy(), x.numpy(), threads)  # plans before any data
        torch.sub(y, u, out=t)
        if opts.max_iter == 0:
            x.zero_()
        scale = npdt(fft.scale)

        # ℓ1 weights: a per-kernel vector (one entry for a scalar), or a 4-D broadcast map
        wk = np.full(1, 1.0 if isinstance(w, torch.Tensor) else float(w), dtype=npdt)
        w4 = np.ones((1, 1, 1, 1), dtype=npdt)
        spatial = False
        if isinstance(w, torch.Tensor):
            if w.shape[0] == 1 and w.shape[2] == 1 and w.shape[3] == 1:
                wk = w.reshape(-1).contiguous().numpy()
            else:
                spatial, w = True, w.contiguous()
        alpha, beta = (npdt(opts.relax), npdt(1.0 - opts.relax)) if opts.relax != 1.0 else (npdt(1), npdt(0))
        bh = H - kh + 1 if opts.no_boundary_cross and kh > 1 else H
        bw = W - kw + 1 if opts.no_boundary_cross and kw > 1 else W
        even = W % 2 == 0

        st = _FusedState(idx=torch.arange(n), y=y, u=u, x=x, t=t, xf=xf,
                         rho=torch.full((n,), rho0, dtype=dtype), Sf=torch.fft.rfft2(S).contiguous(),
                         w=w if spatial else None, pend=torch.ones(n, dtype=dtype),
                         rescaled=torch.zeros(n, dtype=torch.bool), iters=torch.zeros(n, dtype=torch.int64))
        out = _Outputs(n, (K, H, W), S, record)
        sqrt_n = math.sqrt(K * H * W)
        t0 = time.perf_counter()
        for k in range(opts.max_iter):
            nn = st.n
            if nn == 0:
                break
            yv, uv, xv, tv, xfv = st.y.numpy(), st.u.numpy(), st.x.numpy(), st.t.numpy(), st.xf.numpy()
            pend = st.pend.numpy()
            # x-step: x = irfft2((x̂ + conj(D̂)(Ŝ − Σ D̂ x̂)/(ρ + Σ|D̂|²))), x̂ = rfft2(y − u)
            fft.forward(tv, xfv)
            fid_rows = np.zeros(nn * H if record and not on_y else 0)
            _fused.run_split(kn.xstep, nn * H, threads, xfv.view(npdt), Dre, Dim, st.Sf.numpy().view(npdt),
                             st.rho.numpy(), gram, scale, even, fid_rows)
            fft.inverse(xfv, xv)
            # relaxation, y-step, dual step, next FFT input, residual sums
            may_rescale = opts.auto_rho and k != 0 and (k + 1) % opts.rho_period == 0
            write_t = (~st.rescaled if may_rescale else torch.ones(nn, dtype=torch.bool)).to(torch.uint8)
            thr = (lmbda / st.rho).numpy()
            part = np.empty((nn * K, 6))
            _fused.run_split(kn.ystep, nn * K, threads, xv, yv, uv, tv, alpha, beta, thr, wk,
                             st.w.numpy() if spatial else w4, spatial, pend, write_t.numpy(), opts.nonneg,
                             bh, bw, on_y, record, part)
            sums = torch.from_numpy(part.reshape(nn, K, 6).sum(1))
            norms = sums[:, :5].sqrt().to(dtype)
            r, s, epri, edua = self._residuals_from_norms(*norms.unbind(1), st.rho, sqrt_n)
            if record:
                if on_y:
                    fid_rows = np.empty(nn * H)
                    yf = torch.fft.rfft2(st.y)
                    _fused.run_split(kn.fidelity_rows, nn * H, threads, yf.numpy().view(npdt), Dre, Dim,
                                     st.Sf.numpy().view(npdt), even, fid_rows)
                    del yf
                fid = (torch.from_numpy(fid_rows.reshape(nn, H).sum(1)) / (H * W) / 2.0).to(dtype)
                l1 = sums[:, 5].to(dtype)
                row = torch.stack([fid + lmbda * l1, fid, l1, r, s, epri, edua, st.rho])
                out.record(k, st.idx, row.numpy(), time.perf_counter() - t0)
            # adaptive ρ: ρ ← ρ·f now, u ← u/f lazily (pend), t = y − u/f where needed
            rsf = self._rho_factor(k, r, s, xi)
            changed = torch.zeros(nn, dtype=torch.bool) if rsf is None else rsf != 1
            if rsf is not None:
                st.rho = st.rho * rsf
                st.pend.copy_(torch.where(changed, rsf, torch.ones_like(rsf)))
            else:
                st.pend.fill_(1)
            need = changed | (write_t == 0)
            if bool(need.any()):
                _fused.run_split(kn.rescale_t, nn * K, threads, yv, uv, pend, need.to(torch.uint8).numpy(), tv)
            st.rescaled = changed
            st.iters += 1
            done = (r < epri) & (s < edua)
            if bool(done.any()):
                self._fused_retire(st, out, done, threads)
        if st.n:
            self._fused_retire(st, out, torch.ones(st.n, dtype=torch.bool), threads)
        return out.result(lead, D)

    @staticmethod
    def _fused_retire(st: "_FusedState", out: "_Outputs", done: torch.Tensor, threads: int) -> None:
        """Apply the pending u rescale of the ``done`` images, then retire them."""
        kn = _fused.kernels()
        K = st.u.shape[1]
        sel = done & (st.pend != 1)
        if bool(sel.any()):
            _fused.run_split(kn.divide_planes, st.n * K, threads, st.u.numpy(), st.pend.numpy(),
                             sel.to(torch.uint8).numpy())
            st.pend[sel] = 1
        out.retire(st, done)

    def _residuals(self, x, y, yprev, u, rho, tmp, sqrt_n):
        """Primal and dual residuals and tolerances per image (SPEC §1 step 5); ``tmp`` is
        scratch space of the maps' shape."""
        nx, ny, nu = _norm(x, tmp), _norm(y, tmp), _norm(u, tmp)
        r = _norm(torch.sub(x, y, out=tmp), tmp)
        d = _norm(torch.sub(yprev, y, out=tmp), tmp)
        return self._residuals_from_norms(nx, ny, nu, r, d, rho.reshape(-1), sqrt_n)

    def _residuals_from_norms(self, nx, ny, nu, nxy, nyy, rho, sqrt_n):
        """r, s, ε_pri, ε_dua from ‖x‖, ‖y‖, ‖u‖, ‖x − y‖, ‖y_prev − y‖ and ρ, all (n,)."""
        opts = self.options
        r = nxy
        s = rho * nyy
        rn = torch.maximum(nx, ny)
        sn = rho * nu
        if opts.std_residuals:
            epri = sqrt_n * opts.abs_stop_tol + rn * opts.rel_stop_tol
            edua = sqrt_n * opts.abs_stop_tol + sn * opts.rel_stop_tol
            return r, s, epri, edua
        rn = torch.where(rn == 0, torch.ones_like(rn), rn)
        sn = torch.where(sn == 0, torch.ones_like(sn), sn)
        return (r / rn, s / sn, sqrt_n * opts.abs_stop_tol / rn + opts.rel_stop_tol,
                sqrt_n * opts.abs_stop_tol / sn + opts.rel_stop_tol)

    def _update_rho(self, k, r, s, xi, rho, u):
        """Adaptive ρ (SPEC §1 step 6): returns the new ρ and rescales ``u`` in place."""
        rsf = self._rho_factor(k, r, s, xi)
        if rsf is None:
            return rho
        rsf = rsf.view(-1, 1, 1, 1)
        u.div_(rsf)
        return rho * rsf

    def _rho_factor(self, k, r, s, xi):
        """The factor of the adaptive ρ update per image (ρ ← ρ·f, u ← u/f), or None when
        ρ is not updated at iteration k."""
        opts = self.options
        if not opts.auto_rho or k == 0 or (k + 1) % opts.rho_period != 0:
            return None
        tau, mu = opts.rho_scaling, opts.rsdl_ratio
        if opts.auto_scaling:
            ratio = torch.where(r > s * xi, r / (s * xi), (s * xi) / r)
            m = torch.clamp(torch.sqrt(ratio), max=tau)
            m = torch.where((r == 0) | (s == 0), torch.full_like(m, tau), m)
        else:
            m = torch.full_like(r, tau)
        one = torch.ones_like(m)
        return torch.where(r > xi * mu * s, m, torch.where(s > (mu / xi) * r, one / m, one))


def _norm(t: torch.Tensor, tmp: torch.Tensor) -> torch.Tensor:
    """ℓ2 norm of each (K, H, W) block, squares written to ``tmp`` (which may be ``t``).

    Summed by ``Tensor.sum``'s cascade summation: torch's float32 ``vector_norm`` and
    BLAS dot products lose 1e-6 to 1e-4 over 10⁶–10⁷ terms, enough to change the
    adaptive-ρ path of a float32 solve.
    """
    return torch.mul(t, t, out=tmp).sum((1, 2, 3)).sqrt()


@dataclass
class _Working:
    """The images of a solve not retired yet: ``idx`` (their positions in the batch) and
    per-image tensors (first axis of length n) that :meth:`keep` filters together; a
    per-coefficient ℓ1 weight ``w`` is filtered only when it has one entry per image."""

    idx: torch.Tensor

    @property
    def n(self) -> int:
        return int(self.idx.shape[0])

    def keep(self, mask: torch.Tensor) -> None:
        """Drop the images where ``mask`` is False."""
        if bool(mask.all()):
            return
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor) and v.ndim and v.shape[0] == mask.shape[0] and (f.name != "w" or v.shape[0] > 1):
                setattr(self, f.name, v[mask])


@dataclass
class _State(_Working):
    """Working set of a batched solve (the images not retired yet) and its buffers.

    ``y_alt`` receives the next y while ``y`` is still needed as y_prev; with device-side
    freezing x is double-buffered the same way. ``u``, ``u_alt`` and ``tmp`` rotate: the
    y-step writes v = a + u to ``u_alt`` and the new u to ``tmp``.
    """

    y: torch.Tensor
    y_alt: torch.Tensor
    u: torch.Tensor
    u_alt: torch.Tensor
    x: torch.Tensor
    x_alt: torch.Tensor | None
    ax: torch.Tensor | None
    tmp: torch.Tensor
    rho: torch.Tensor
    Sf: torch.Tensor
    w: Any
    iters: torch.Tensor
    frozen: torch.Tensor

    @classmethod
    def create(cls, y, u, rho, Sf, w, relax: bool, freeze: bool) -> "_State":
        n = y.shape[0]
        empty = lambda: torch.empty_like(y)  # noqa: E731
        return cls(idx=torch.arange(n, device=y.device), y=y, y_alt=empty(), u=u, u_alt=empty(),
                   x=torch.zeros_like(y), x_alt=empty() if freeze else None,
                   ax=empty() if relax else None, tmp=empty(), rho=rho, Sf=Sf.unsqueeze(1), w=w,
                   iters=torch.zeros(n, dtype=torch.int64, device=y.device),
                   frozen=torch.zeros(n, dtype=torch.bool, device=y.device))



@dataclass
class _FusedState(_Working):
    """Working set of a fused CPU solve. y and u are updated in place; u is stored
    before the last adaptive-ρ rescale, which ``pend`` holds (u_true = u / pend)."""

    y: torch.Tensor
    u: torch.Tensor
    x: torch.Tensor
    t: torch.Tensor
    xf: torch.Tensor
    rho: torch.Tensor
    Sf: torch.Tensor
    w: torch.Tensor | None
    pend: torch.Tensor
    rescaled: torch.Tensor
    iters: torch.Tensor



class _Outputs:
    """Final values of retired images, and their statistics.

    The output arrays are allocated when images first retire; when every image retires
    at once (the usual case for one image), the solver's own buffers become the
    outputs, without a copy.
    """

    def __init__(self, n: int, shape, like: torch.Tensor, record: bool):
        self.n, self.shape, self.like = n, tuple(shape), like
        self.y = self.x = self.u = None
        self.rho = like.new_zeros(n)
        self.iters = torch.zeros(n, dtype=torch.int64, device=like.device)
        self._rows: list[list] | None = [[] for _ in range(n)] if record else None

    def result(self, lead: tuple, D: torch.Tensor) -> "CBPDNResult":
        """The solve's result, arrays shaped as the input's leading dimensions ``lead``."""
        shape = tuple(lead) + self.shape
        return CBPDNResult(codes=self.y.reshape(shape), x=self.x.reshape(shape), u=self.u.reshape(shape),
                           rho=self.rho.reshape(lead), iterations=self.iters.reshape(lead),
                           stats=self.stats(), dictionary=D)

    def retire(self, state, done: torch.Tensor) -> None:
        i = state.idx[done]
        if self.y is None and state.n == self.n and bool(done.all()):
            self.y, self.x, self.u = state.y, state.x, state.u  # idx is 0..n-1 here
        else:
            if self.y is None:
                self.y, self.x, self.u = (self.like.new_empty((self.n,) + self.shape) for _ in range(3))
            self.y[i] = state.y[done]
            self.x[i] = state.x[done]
            self.u[i] = state.u[done]
        self.rho[i] = state.rho.reshape(-1)[done]
        self.iters[i] = state.iters[done]
        state.keep(~done)

    def record(self, k: int, idx: torch.Tensor, rows: np.ndarray, elapsed: float) -> None:
        for j, i in enumerate(idx.tolist()):
            self._rows[i].append((k, *rows[:, j].tolist(), elapsed))

    def stats(self) -> list[IterationStats] | None:
        if self._rows is None:
            return None
        out = []
        for rows in self._rows:
            cols = np.array(rows, dtype=np.float64).reshape(-1, len(_STAT_FIELDS)).T
            rec = dict(zip(_STAT_FIELDS, cols))
            rec["iteration"] = rec["iteration"].astype(np.int64)
            out.append(IterationStats(**rec))
        return out


def encode(images, dictionary, lmbda: float, **options) -> torch.Tensor:
    """Sparse codes of ``images`` with ``dictionary`` in one call.

    ``options`` are :class:`CBPDNOptions` fields (``max_iter=200``, ``rel_stop_tol=1e-2``,
    ``device="cuda"``, …); statistics are not recorded unless ``record_stats=True``.
    Returns the codes, shape lead + (K, H, W) (see :class:`CBPDNResult`).
    """
    known = {f.name for f in fields(CBPDNOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"encode: unknown option(s) {unknown}; expected CBPDNOptions fields {sorted(known)}")
    options.setdefault("record_stats", False)
    return ConvBPDN(dictionary, lmbda, CBPDNOptions(**options)).solve(images).codes

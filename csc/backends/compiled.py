r"""The fused back end for CUDA: CBPDN's element-wise work in a few ``torch.compile`` kernels.

:class:`csc.backends.torch_loop.TorchCBPDN` makes one pass over the (n, K, H, W) maps per
torch operation. :class:`CompiledCBPDN` keeps its FFTs (``torch.fft``) and replaces the
element-wise work by three functions compiled with ``torch.compile`` (inductor: Triton
kernels on CUDA, C++/OpenMP on the CPU, so the same code is tested on the CPU), as the
numba back end does on the CPU:

1. :func:`shift_fused`: the FFT input t = y − u/f, with the ρ factor f of the previous
   iteration applied to u lazily (u itself is never rescaled in a pass of its own);
2. :func:`xstep_fused`: the single-channel Sherman–Morrison solve per frequency on the
   real and imaginary parts of x̂, in place, with the inverse FFT's 1/(H·W) folded in
   (``irfft2(norm="forward")`` then makes no scaling pass) and the data fidelity
   ½‖Dx − s‖² per image from the same reduction (Parseval: the residual's DFT is
   −(ŝ − D̂v̂)·ρ/(ρ + Σ|D̂|²));
3. :func:`ystep_fused`: the lazy rescale of u, relaxation, soft threshold,
   non-negativity, boundary zeroing, dual update, the six per-image residual sums, and,
   with ``sync_interval`` > 1, freezing converged images (their y, u, x kept), writing y,
   u (and x) once.

An iteration is then t, rfft2, the solve, irfft2 and the y-step (:mod:`csc.backends.counting`
counts the passes and kernel launches); the ADMM loop's per-image residuals, ρ update,
iteration counts and frozen flags (:func:`csc.core.admm.per_image_update`, about 40 small
operations) run as one compiled kernel too, so that small batches are not launch-bound. Other x-steps (multi-channel, diagonal) keep their
torch solve and still get the fused shift and y-step. Each kernel gets the same argument
kinds whatever the options (flags as tensors, a scalar weight as a (1, 1, 1, 1) tensor, an
all-true boundary mask), so options do not multiply the compiled variants; the variants
that remain (dtype, device, a batch of one, the weight's shape, freezing) are compiled per
(device, dtype) with their own recompile limit, and a variant that cannot be compiled runs
eagerly after one warning (:mod:`csc.backends.compiling`). The arithmetic is the torch
loop's; the order of the sums' additions and the place of the 1/(H·W) differ, so codes and
statistics agree with the torch loop to rounding (tests/backends/test_compiled.py).
"""

from __future__ import annotations

import functools
import os
import shutil
import sysconfig

import torch

from csc.backends.compiling import CompiledFunction
from csc.backends.torch_loop import TorchCBPDN
from csc.core.admm import per_image_update, select_images
from csc.core.options import CBPDNOptions
from csc.core.prox import SoftThreshold, trim
from csc.core.xstep import SingleChannelXStep

__all__ = ["CompiledCBPDN", "compile_available", "compile_unavailable_reason", "shift_fused", "xstep_fused",
           "ystep_fused", "KERNELS"]


def _shift(y: torch.Tensor, u: torch.Tensor, f: torch.Tensor, t: torch.Tensor) -> None:
    """t ← y − u / f (f: (n, 1, 1, 1), the pending ρ factor of u)."""
    t.copy_(y - u / f)


def _xstep(vr: torch.Tensor, sr: torch.Tensor, dr: torch.Tensor, di: torch.Tensor, gram: torch.Tensor,
           rho: torch.Tensor, scale: torch.Tensor, wcol: torch.Tensor) -> torch.Tensor:
    """vr (n, K, H, Wr, 2) ← scale · x̂ (real/imaginary parts) of the single-channel x-step
    for v̂ = vr, image DFTs sr (n, 1, H, Wr, 2), D̂ = dr + i·di (K, H, Wr), Σ|D̂|² and ρ
    (n, 1, 1, 1); returns ½‖Dx − s‖² per image (n,) (``wcol``: Parseval's column weights
    over H·W, (1, 1, 1, Wr))."""
    v_re, v_im = vr[..., 0], vr[..., 1]
    e_re = sr[..., 0] - (dr * v_re - di * v_im).sum(1, keepdim=True)  # ŝ − D̂v̂
    e_im = sr[..., 1] - (dr * v_im + di * v_re).sum(1, keepdim=True)
    den = rho + gram
    c_re, c_im = e_re / den, e_im / den
    # x̂ = v̂ + conj(D̂)·c, scaled for irfft2(norm="forward"), written in one pass over both parts
    re = torch.arange(2, device=vr.device) == 0
    vr.copy_(torch.where(re, vr + (dr * c_re + di * c_im).unsqueeze(-1), vr + (dr * c_im - di * c_re).unsqueeze(-1))
             * scale)
    # D̂x̂ − ŝ = −(ŝ − D̂v̂)·ρ/(ρ + Σ|D̂|²)
    r2 = (c_re * c_re + c_im * c_im) * (rho * rho)
    return 0.5 * (wcol * r2).sum((1, 2, 3))


def _ystep(x: torch.Tensor, yprev: torch.Tensor, uprev: torch.Tensor, f: torch.Tensor, t: torch.Tensor,
           bound: torch.Tensor, w: torch.Tensor, lo: torch.Tensor, flags: torch.Tensor, relax: torch.Tensor,
           y_out: torch.Tensor, u_out: torch.Tensor, frozen: torch.Tensor | None, xprev: torch.Tensor | None
           ) -> tuple[torch.Tensor, ...]:
    """y_out, u_out ← the y-step and dual update (:meth:`TorchCBPDN.ystep`'s arithmetic) of
    x with the previous y, u/f, threshold max(t·w, ``bound``) with t (n, 1, 1, 1) and w the
    ℓ1 weight (``bound``: +∞ where ``no_boundary_cross`` zeroes the coefficient, else 0: soft
    thresholding by +∞ gives y = 0 and u = v, exactly what zeroing y and setting u = v − y
    gives), lower bound ``lo`` (0 for non-negative codes, −∞ else); ``flags`` = (u
    recomputed as v − y, objective on y).
    With ``frozen`` (n, 1, 1, 1): those images keep yprev and u/f, and xprev ← the new x of
    the others (in place: xprev becomes the current x).
    Returns the six (n,) residual sums of the new iterate (separate outputs: one fused
    reduction; :meth:`CompiledCBPDN.ystep` stacks them), the ℓ1 term weighted by ``w``."""
    up = uprev / f
    v = torch.lerp(yprev, x, relax) + up
    tw = torch.maximum(t * w, bound)
    u = torch.clamp(v, min=-tw, max=tw)
    y = torch.maximum(v - u, lo)
    u = torch.where(flags[0], v - y, u)
    dims = (1, 2, 3)
    z = torch.where(flags[1], y, x)
    sums = ((x * x).sum(dims), (y * y).sum(dims), (u * u).sum(dims), ((x - y) * (x - y)).sum(dims),
            ((yprev - y) * (yprev - y)).sum(dims), (w * z).abs().sum(dims))
    if frozen is not None:
        y, u = torch.where(frozen, yprev, y), torch.where(frozen, up, u)
        xprev.copy_(torch.where(frozen, xprev, x))  # into xprev: an in-place x upsets inductor's CPU fusion
    y_out.copy_(y)
    u_out.copy_(u)
    return sums


shift_fused = CompiledFunction(_shift, "shift")
xstep_fused = CompiledFunction(_xstep, "xstep")
ystep_fused = CompiledFunction(_ystep, "ystep")
#: the compiled functions of one iteration's maps (the probe runs these)
KERNELS = (shift_fused, xstep_fused, ystep_fused)
#: the per-image ρ and residual bookkeeping (:func:`csc.core.admm.per_image_update`) in one kernel
bookkeeping_fused = CompiledFunction(per_image_update, "bookkeeping")


# ----------------------------------------------------------------------------- probe
def _toolchain_reason(device_type: str) -> str | None:
    """What inductor needs and is missing, before trying it: Triton on CUDA; on the CPU a
    C++ compiler and the Python headers."""
    if device_type == "cuda":
        try:
            import triton  # noqa: F401  (inductor's CUDA code generator)
        except ImportError as exc:
            return f"Triton is not installed ({exc}); pip install triton"
        return None
    if device_type == "cpu":
        from torch._inductor import config as inductor_config

        cxx = inductor_config.cpp.cxx[-1] if isinstance(inductor_config.cpp.cxx, tuple) else inductor_config.cpp.cxx
        cxx = os.environ.get("CXX") or cxx or "g++"
        if shutil.which(cxx) is None and shutil.which("g++") is None and shutil.which("clang++") is None:
            return f"no C++ compiler found ({cxx!r} is not on PATH); install g++"
        include = sysconfig.get_paths().get("include")
        if include and not os.path.exists(os.path.join(include, "Python.h")):
            return f"the Python headers are missing ({include}/Python.h); install python3-dev"
    return None


@functools.lru_cache(maxsize=None)
def _probe(device_type: str) -> str | None:
    """None when csc's compiled kernels build and agree with their eager selves on
    ``device_type`` (a tiny problem, float32), else why not."""
    reason = _toolchain_reason(device_type)
    if reason is not None:
        return reason
    try:
        return _probe_kernels(torch.device(device_type))
    except Exception as exc:  # no device, inductor errors
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:400]


def _probe_kernels(dev: torch.device) -> str | None:
    """Runs the three kernels compiled and eager on a (2, 3, 4, 6) problem; the first that
    fails or disagrees, or None."""
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g).to(dev)  # noqa: E731
    n, K, H, W = 2, 3, 4, 6
    Wr = W // 2 + 1
    y, u, x, f = r(n, K, H, W), r(n, K, H, W), r(n, K, H, W), torch.ones(n, 1, 1, 1, device=dev) * 1.5
    one = torch.ones((), device=dev)
    args = {
        "shift": (y, u, f, torch.empty_like(y)),
        "xstep": (r(n, K, H, Wr, 2), r(n, 1, H, Wr, 2), r(K, H, Wr), r(K, H, Wr), r(H, Wr).abs(),
                  one.expand(n, 1, 1, 1) * 2, one / (H * W), torch.ones(1, 1, 1, Wr, device=dev)),
        "ystep": (x, y, u, f, torch.full((n, 1, 1, 1), 0.3, device=dev), torch.ones(1, 1, 1, 1, device=dev),
                  torch.ones(1, 1, 1, 1, device=dev), torch.tensor(float("-inf"), device=dev),
                  torch.tensor([False, False], device=dev), one * 1.8, torch.empty_like(y), torch.empty_like(y),
                  None, None),
    }
    for fn in KERNELS:
        a = args[fn.name]
        eager = [t.clone() if isinstance(t, torch.Tensor) else t for t in a]
        got = [t.clone() if isinstance(t, torch.Tensor) else t for t in a]
        want_out, got_out = fn.fn(*eager), fn(*got)
        reason = fn.fell_back(dev.type, torch.float32)
        if reason is not None:
            return f"compiling {fn.name} failed: {reason}"
        pairs = [(e, o) for e, o in zip(eager, got) if isinstance(e, torch.Tensor)]
        if want_out is not None:
            pairs += list(zip(want_out, got_out)) if isinstance(want_out, tuple) else [(want_out, got_out)]
        if not all(torch.allclose(e, o, rtol=1e-4, atol=1e-5, equal_nan=True) for e, o in pairs):
            return f"the compiled {fn.name} kernel disagrees with its eager arithmetic"
    return None


def compile_available(device: torch.device) -> bool:
    """Whether :class:`CompiledCBPDN` can run on ``device``: csc's kernels compile there and
    agree with their eager arithmetic (:func:`compile_unavailable_reason` says why not)."""
    return _probe(torch.device(device).type) is None


def compile_unavailable_reason(device: torch.device) -> str | None:
    """Why csc's kernels cannot be compiled on ``device`` (no Triton, no C++ compiler, no
    Python headers, an inductor error), or None when they can."""
    return _probe(torch.device(device).type)


# ------------------------------------------------------------------------- workspace
class CompiledCBPDN(TorchCBPDN):
    """:class:`TorchCBPDN` with the element-wise work in compiled kernels (module docstring).

    Same parameters and state as :class:`TorchCBPDN`: y, x and u (u read from outside —
    :meth:`take`, the learners — is the true dual: the pending ρ factor is applied on
    read), so the ADMM loop, retiring and the learners' views are unchanged. Buffers:
    y, u, x and their double buffers (the FFT input t shares y's), and x̂. Only the plain ℓ1
    proximal operator (CBPDN and the quadratic-penalty variants): joint sparsity and
    additive mask simulation keep their torch-loop workspaces.
    """

    #: the ADMM loop's per-image bookkeeping, compiled (:func:`csc.core.admm.per_image_update`)
    bookkeeping = bookkeeping_fused

    @property
    def backend(self) -> str:
        """"compiled", or "compiled (eager fallback: …)" with the reasons of the kernels
        that run eagerly for this device and dtype (:mod:`csc.backends.compiling`)."""
        why = [f"{k.name}: {r}" for k in KERNELS + (bookkeeping_fused,)
               if (r := k.fell_back(self.device.type, self.dtype))]
        return "compiled" if not why else f"compiled (eager fallback: {'; '.join(why)})"

    def __init__(self, S: torch.Tensor, xstep, y: torch.Tensor, u: torch.Tensor, prox: SoftThreshold,
                 opts: CBPDNOptions, freeze: bool = False, penalty_maps: int | None = None):
        if type(prox) is not SoftThreshold:
            raise TypeError(f"prox: the compiled back end runs SoftThreshold only, got {type(prox).__name__}")
        super().__init__(S, xstep, y, u, prox, opts, freeze=freeze, penalty_maps=penalty_maps)
        dt, dev = self.dtype, self.device
        w = prox.weight
        if not isinstance(w, torch.Tensor):  # a scalar weight as a (1, 1, 1, 1) tensor: one compiled variant
            w = torch.full((1, 1, 1, 1), float(w), dtype=dt, device=dev)
        self.w = w
        H, W = self.shape
        # the threshold's floor: +∞ where boundary zeroing drops a coefficient, else 0
        self._bound = torch.zeros((1, 1, 1, 1), dtype=dt, device=dev)
        if prox.kernel_size is not None:
            kh, kw = prox.kernel_size
            rows = torch.arange(H, device=dev) < (H - kh + 1 if kh > 1 else H)
            cols = torch.arange(W, device=dev) < (W - kw + 1 if kw > 1 else W)
            inside = (rows[:, None] & cols[None, :]).view(1, 1, H, W)
            zero, inf = torch.zeros((), dtype=dt, device=dev), torch.tensor(float("inf"), dtype=dt, device=dev)
            self._bound = torch.where(inside, zero, inf).expand(1, y.shape[1], H, W).contiguous()
        self._lo = torch.tensor(0.0 if prox.nonneg else float("-inf"), dtype=dt, device=dev)
        self._flags = torch.tensor([bool(prox.nonneg or prox.kernel_size is not None), bool(opts.objective_on_y)],
                                   device=dev)
        self._relax = torch.tensor(float(opts.relax), dtype=dt, device=dev)
        self._single = type(xstep) is SingleChannelXStep
        Wr = W // 2 + 1
        wcol = torch.full((Wr,), 2.0, dtype=dt, device=dev)
        wcol[0] = 1.0
        if W % 2 == 0:
            wcol[-1] = 1.0
        self._wcol = (wcol / (H * W)).view(1, 1, 1, Wr)
        self._scale = torch.tensor(1.0 / (H * W), dtype=dt, device=dev)
        self._f: torch.Tensor | None = None  # pending ρ factor of u, (n, 1, 1, 1)
        self._fid: torch.Tensor | None = None
        self._frozen_next: torch.Tensor | None = None
        self._factor: torch.Tensor | None = None

    # u with its pending factor applied on read from outside the hot path
    @property
    def u(self) -> torch.Tensor:
        if self._f is not None:
            self._u.div_(self._f)
            self._f = None
        return self._u

    @u.setter
    def u(self, value: torch.Tensor) -> None:
        self._u, self._f = value, None

    def _pending(self) -> torch.Tensor:
        """The pending ρ factor of u, ones when there is none (the kernels always take one)."""
        if self._f is not None:
            return self._f
        ones = getattr(self, "_ones", None)
        if ones is None or ones.shape[0] != self.n:
            ones = self._ones = torch.ones((self.n, 1, 1, 1), dtype=self.dtype, device=self.device)
        return ones

    def xstep(self, rho: torch.Tensor, want_fidelity: bool) -> None:
        H, W = self.shape
        self._rho = rho.view(-1, 1, 1, 1)
        t = self.y_alt  # free until the y-step writes the new y there
        shift_fused(self.y, self._u, self._pending(), t)
        xf = torch.fft.rfft2(t, out=self._xf_buf)
        x = self.x_alt if self.x_alt is not None else self.x
        if self._single:
            dr, di = self._dft_parts()
            self._fid = xstep_fused(torch.view_as_real(xf), self._sr, dr, di, self.xs.gram, self._rho, self._scale,
                                    self._wcol)
            torch.fft.irfft2(xf, s=(H, W), norm="forward", out=x)
        else:
            self.xf = self.xs.solve_(xf, self.Sf, self._rho)
            torch.fft.irfft2(self.xf, s=(H, W), out=x)
        self._x_new = x

    def _dft_parts(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(Re D̂, Im D̂), contiguous, remade when the dictionary changes (the learners)."""
        Df = self.xs.Df
        cached = getattr(self, "_parts", None)
        if cached is None or cached[0] is not Df:
            self._parts = (Df, Df.real.contiguous(), Df.imag.contiguous())
        return self._parts[1], self._parts[2]

    def ystep(self, thr: torch.Tensor, want_l1: bool, may_rescale: bool) -> torch.Tensor:
        yprev, uprev, x = self.y, self._u, self._x_new
        y, u = self.y_alt, self.tmp
        frozen = self._frozen_next
        xprev = self.x if frozen is not None else None
        sums = ystep_fused(x, yprev, uprev, self._pending(), thr.view(-1, 1, 1, 1), self._bound, self.w, self._lo,
                           self._flags, self._relax, y, u, frozen, xprev)
        self._new = (y, u, x if frozen is None else xprev)
        return torch.stack(sums, 1)

    def fidelity(self) -> torch.Tensor:
        if self._single and not self.opts.objective_on_y:
            self._vf = None
            return self._fid
        return super().fidelity()

    def rescale(self, factor: torch.Tensor | None) -> None:
        self._factor = None if factor is None else factor.view(-1, 1, 1, 1)

    def finish(self, frozen: torch.Tensor | None) -> None:
        y, u, x = self._new
        yprev, uprev = self.y, self._u
        f = self._factor  # 1 for frozen images (the loop's bookkeeping): their u stays as the y-step kept it
        self.x = x  # with freezing the y-step merged the new x into the old x's buffer
        self.y, self.y_alt, self._u, self.tmp = y, yprev, u, uprev
        self._f, self._factor = f, None
        self._new = self._vf = None

    def hold(self, frozen: torch.Tensor | None) -> None:
        """The images the next y-step keeps as they are (the loop's ``frozen`` flags): the
        y-step restores their y, u and x in the same pass."""
        self._frozen_next = None if frozen is None else frozen.view(-1, 1, 1, 1)

    def take(self, mask: torch.Tensor):
        return select_images(mask, self.y, self.x, self.u)

    def keep(self, mask: torch.Tensor) -> None:
        super().keep(mask)
        self.w = trim(self.w, mask)


    def _allocate(self, y: torch.Tensor, freeze: bool) -> None:
        """y, u, x double-buffered and x̂; no relaxation or v buffer (the y-step fuses them)."""
        n, K, H, W = y.shape
        self.y_alt, self.tmp = torch.empty_like(y), torch.empty_like(y)
        self.u_alt = self.ax = None
        self.x_alt = torch.empty_like(y) if freeze else None
        cdt = torch.complex128 if y.dtype == torch.float64 else torch.complex64
        self._xf_buf = torch.empty((n, K, H, W // 2 + 1), dtype=cdt, device=y.device)
        self._sr = torch.view_as_real(self.Sf)  # the image DFTs (contiguous) as the x-step kernel reads them

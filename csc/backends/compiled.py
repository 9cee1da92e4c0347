r"""The fused back end for CUDA: CBPDN's element-wise work in a few ``torch.compile`` kernels.

:class:`csc.backends.torch_loop.TorchCBPDN` makes one pass over the (n, K, H, W) maps per
torch operation (about 59 per iteration outside the FFTs). :class:`CompiledCBPDN` keeps its
buffers and FFTs (``torch.fft``) and replaces the element-wise work by three functions
compiled with ``torch.compile`` (inductor: Triton kernels on CUDA, C++/OpenMP on the CPU,
so the same code is tested on the CPU):

1. :func:`xstep_solve`: the single-channel Sherman–Morrison solve per frequency on the
   real and imaginary parts of x̂ (a reduction over the K kernels and one update pass);
2. :func:`ystep_fused`: relaxation, soft threshold, non-negativity, boundary zeroing,
   dual update and the six per-image residual sums, writing y and u once;
3. :func:`finish_fused`: the adaptive-ρ rescale of u and, with ``sync_interval`` > 1,
   freezing converged images (their y, u, x restored), in one pass.

An iteration is then y − u, rfft2, the solve, irfft2, the y-step and (when ρ changed or an
image is frozen) the finish: about 8 passes over the maps. Other x-steps (multi-channel,
diagonal) keep their torch solve and still get the fused y-step. The arithmetic is the
torch loop's, operation for operation; only the order of the sums' additions differs, so
the codes and statistics agree with the torch loop to rounding (tests/backends/test_compiled.py).

Shapes are compiled dynamically (``dynamic=True``), so a batch whose images retire does
not recompile; each combination of options (relaxation, constraints, statistics) is one
compiled variant, cached by inductor on disk between processes.
"""

from __future__ import annotations

import functools
import threading

import torch

from csc.backends.torch_loop import TorchCBPDN
from csc.core.options import CBPDNOptions
from csc.core.xstep import SingleChannelXStep

__all__ = ["CompiledCBPDN", "compile_available", "compile_unavailable_reason", "xstep_solve", "ystep_fused",
           "finish_fused"]

_lock = threading.Lock()
_compiled: dict[str, object] = {}


def _xstep_solve(vr: torch.Tensor, sr: torch.Tensor, dr: torch.Tensor, di: torch.Tensor, gram: torch.Tensor,
                 rho: torch.Tensor) -> None:
    """vr (n, K, H, Wr, 2) ← x̂ (real/imaginary parts) of the single-channel x-step for
    v̂ = vr, image DFTs sr (n, 1, H, Wr, 2), D̂ = dr + i·di (K, H, Wr), Σ|D̂|² and ρ (n, 1, 1, 1)."""
    v_re, v_im = vr[..., 0], vr[..., 1]
    dv_re = (dr * v_re - di * v_im).sum(1, keepdim=True)
    dv_im = (dr * v_im + di * v_re).sum(1, keepdim=True)
    den = rho + gram
    c_re = (sr[..., 0] - dv_re) / den
    c_im = (sr[..., 1] - dv_im) / den
    # vf + conj(D̂)·c
    vr.copy_(torch.stack((v_re + (dr * c_re + di * c_im), v_im + (dr * c_im - di * c_re)), -1))


def _ystep_fused(x: torch.Tensor, yprev: torch.Tensor, uprev: torch.Tensor, t: torch.Tensor, w: torch.Tensor,
                 inside: torch.Tensor | None, y_out: torch.Tensor, u_out: torch.Tensor, relax: float, nonneg: bool,
                 on_y: bool, want_l1: bool) -> torch.Tensor:
    """y_out, u_out ← the y-step and dual update (:meth:`TorchCBPDN.ystep`'s arithmetic) of
    x with threshold t (n, 1, 1, 1) × w, ``inside`` the (1, 1, H, W) mask of coefficients
    that ``no_boundary_cross`` keeps; returns the (n, 6) residual sums."""
    if relax != 1.0:  # torch.lerp's formula for a weight ≥ 0.5 (relax > 0.5), else start + w·(end − start)
        ax = x - (x - yprev) * (1.0 - relax) if relax >= 0.5 else yprev + relax * (x - yprev)
    else:
        ax = x
    v = ax + uprev
    tw = t * w
    u = torch.clamp(v, min=-tw, max=tw)
    y = v - u
    if nonneg:
        y = torch.clamp(y, min=0)
    if inside is not None:  # boundary zeroing: coefficients whose kernel stays inside the image
        y = torch.where(inside, y, torch.zeros_like(y))
    if nonneg or inside is not None:
        u = v - y
    y_out.copy_(y)
    u_out.copy_(u)
    dims = (1, 2, 3)
    cols = [(x * x).sum(dims), (y * y).sum(dims), (u * u).sum(dims), ((x - y) * (x - y)).sum(dims),
            ((yprev - y) * (yprev - y)).sum(dims)]
    z = y if on_y else x
    cols.append((w * z).abs().sum(dims) if want_l1 else torch.zeros_like(cols[0]))
    return torch.stack(cols, 1)


def _finish_fused(y: torch.Tensor, u: torch.Tensor, x: torch.Tensor, yprev: torch.Tensor, uprev: torch.Tensor,
                  xprev: torch.Tensor, frozen: torch.Tensor | None, factor: torch.Tensor | None) -> None:
    """u ← u / factor; then the frozen images get their previous y, u, x back (in place)."""
    if factor is not None:
        unew = u / factor
    else:
        unew = u
    if frozen is not None:
        y.copy_(torch.where(frozen, yprev, y))
        u.copy_(torch.where(frozen, uprev, unew))
        x.copy_(torch.where(frozen, xprev, x))
    else:
        u.copy_(unew)


def _compiled_fn(name: str):
    with _lock:
        fn = _compiled.get(name)
        if fn is None:
            raw = {"xstep": _xstep_solve, "ystep": _ystep_fused, "finish": _finish_fused}[name]
            fn = torch.compile(raw, dynamic=True, fullgraph=True)
            _compiled[name] = fn
        return fn


def xstep_solve(*args) -> None:
    """The compiled :func:`_xstep_solve`."""
    _compiled_fn("xstep")(*args)


def ystep_fused(*args) -> torch.Tensor:
    """The compiled :func:`_ystep_fused`."""
    return _compiled_fn("ystep")(*args)


def finish_fused(*args) -> None:
    """The compiled :func:`_finish_fused`."""
    _compiled_fn("finish")(*args)


@functools.lru_cache(maxsize=None)
def _probe(device_type: str) -> str | None:
    """None when ``torch.compile`` can build kernels for ``device_type``, else why not."""
    try:
        if device_type == "cuda":
            import triton  # noqa: F401  (inductor's CUDA code generator)
        dev = torch.device(device_type)
        a = torch.ones(4, device=dev)
        out = torch.compile(lambda t: (t * 2 + 1).sum(), dynamic=False, fullgraph=True)(a)
        if float(out) != 12.0:
            return "a compiled probe kernel returned a wrong value"
        return None
    except Exception as exc:  # ImportError (no triton / no compiler), inductor's errors
        return f"{type(exc).__name__}: {exc}"


def compile_available(device: torch.device) -> bool:
    """Whether :class:`CompiledCBPDN` can run on ``device`` (``torch.compile`` builds kernels there)."""
    return _probe(device.type) is None


def compile_unavailable_reason(device: torch.device) -> str | None:
    return _probe(device.type)


class CompiledCBPDN(TorchCBPDN):
    """:class:`TorchCBPDN` with the element-wise work in compiled kernels (module docstring).

    Same parameters and state as :class:`TorchCBPDN` (same buffers, same rotation), so the
    ADMM loop, retiring and the learners' views of y and u are unchanged. Only the plain
    ℓ1 proximal operator (CBPDN and the quadratic-penalty variants): joint sparsity and
    additive mask simulation keep their torch-loop workspaces.
    """

    def __init__(self, S: torch.Tensor, xstep, y: torch.Tensor, u: torch.Tensor, w, opts: CBPDNOptions,
                 kernel_size, freeze: bool = False):
        super().__init__(S, xstep, y, u, w, opts, kernel_size, freeze=freeze)
        self.ax = None  # the relaxation happens inside the compiled y-step
        if not isinstance(w, torch.Tensor):  # a scalar weight as a (1, 1, 1, 1) tensor: one compiled variant
            w = torch.full((1, 1, 1, 1), float(w), dtype=self.dtype, device=self.device)
        self.w = w
        (H, W), (kh, kw) = self.shape, self.kernel_size
        self._keep = None
        if opts.no_boundary_cross and (kh > 1 or kw > 1):
            rows = torch.arange(H, device=self.device) < (H - kh + 1 if kh > 1 else H)
            cols = torch.arange(W, device=self.device) < (W - kw + 1 if kw > 1 else W)
            self._keep = (rows[:, None] & cols[None, :]).view(1, 1, H, W)
        self._factor: torch.Tensor | None = None
        self._single = type(xstep) is SingleChannelXStep

    def xstep(self, rho: torch.Tensor, want_fidelity: bool) -> None:
        if not self._single:
            super().xstep(rho, want_fidelity)
            return
        H, W = self.shape
        self._rho = rho.view(-1, 1, 1, 1)
        xf = torch.fft.rfft2(torch.sub(self.y, self.u, out=self.tmp))
        dr, di = self._dft_parts()
        xstep_solve(torch.view_as_real(xf), torch.view_as_real(self.Sf), dr, di, self.xs.gram, self._rho)
        self.xf = xf
        x = self.x_alt if self.x_alt is not None else self.x
        torch.fft.irfft2(xf, s=(H, W), out=x)
        self._x_new = x

    def _dft_parts(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(Re D̂, Im D̂), contiguous, remade when the dictionary changes (the learners)."""
        Df = self.xs.Df
        cached = getattr(self, "_parts", None)
        if cached is None or cached[0] is not Df:
            self._parts = (Df, Df.real.contiguous(), Df.imag.contiguous())
        return self._parts[1], self._parts[2]

    def ystep(self, thr: torch.Tensor, want_l1: bool, may_rescale: bool) -> torch.Tensor:
        o = self.opts
        yprev, uprev, x = self.y, self.u, self._x_new
        y, u = self.y_alt, self.tmp
        sums = ystep_fused(x, yprev, uprev, thr.view(-1, 1, 1, 1), self.w, self._keep, y, u, float(o.relax),
                           bool(o.nonneg), bool(o.objective_on_y), bool(want_l1))
        self._new = (y, u, x)
        return sums

    def rescale(self, factor: torch.Tensor | None) -> None:
        self._factor = None if factor is None else factor.view(-1, 1, 1, 1)

    def finish(self, frozen: torch.Tensor | None) -> None:
        y, u, x = self._new
        yprev, uprev, xprev = self.y, self.u, self.x
        if frozen is not None or self._factor is not None:
            keep = None if frozen is None else frozen.view(-1, 1, 1, 1)
            finish_fused(y, u, x, yprev, uprev, xprev, keep, self._factor)
        if frozen is not None:
            self.x, self.x_alt = x, xprev
        self.y, self.y_alt, self.u, self.tmp = y, yprev, u, uprev
        self._new = self._vf = None
        self._factor = None

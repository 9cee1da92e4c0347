r"""The learners' coding step: CBPDN over a batch solved as one problem, state kept between calls.

SPORCO's learners (``dictlrn.cbpdndl.ConvBPDNDictLearn``, ``OnlineConvBPDNDictLearn``)
code a multi-image array jointly: one ρ, residual norms over the whole batch, one stopping
test, and the ADMM state (y, u, ρ, iteration count) carried over from one outer iteration
to the next while the dictionary changes. :class:`JointCBPDN` is exactly that on the one
ADMM iteration of :mod:`csc.core.admm` (a joint :class:`~csc.core.admm.Coupling`), on
either back end; data parallel, the norms are summed over processes too.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import torch

from csc.backends import fused as _fused
from csc.backends.registry import admm_workspace, select_backend, two_block_workspace
from csc.core import ops
from csc.core.admm import ADMMLoop, Coupling
from csc.core.checks import check_weights
from csc.core.options import CBPDNOptions
from csc.core.prox import QuadraticData, SoftThreshold, SparseGroupThreshold
from csc.core.xstep import ChannelwiseXStep, MultiChannelXStep, SingleChannelXStep
from csc.runtime.sync import to_host

__all__ = ["JointCBPDN", "JointMaskDcpl", "learner_weight", "read_row"]

#: The fused 'pgm' step works with the nonzero codes in the spatial domain when their
#: number times kh·kw is at most this fraction of the coefficients (B·K·H·W): then
#: the scatter/gather costs less than rfft2(y) and a pass over its spectrum (measured
#: break-even about 1.2 for 5 × 64 maps of 128×128 and 8×8 kernels).
SPARSE_RATIO = 1.0


def learner_weight(w, K: int, like: torch.Tensor):
    """The learners' ℓ1 weight: a float, or one weight per kernel as (1, K, 1, 1); given as (K,),
    or as (K, 1, 1) / (1, K, 1, 1) (SPORCO's (1, 1, 1, 1, K) ``L1Weight`` as ``from_sporco`` reads it)."""
    wt = check_weights("l1_weight", w, like)
    if isinstance(wt, float):
        return wt
    if tuple(wt.shape) in ((K,), (K, 1, 1), (1, K, 1, 1)):
        return wt.reshape(1, K, 1, 1)
    raise ValueError(f"l1_weight: the learners take a scalar or one weight per kernel (K={K},), "
                     f"got shape {tuple(wt.shape)}")


class JointCBPDN:
    """CBPDN for a batch S (B, H, W) as one problem (module docstring); with a
    multi-channel dictionary (``channels`` > 0), S is (B, C, H, W).

    Parameters
    ----------
    fused : run the fused CPU back end (else the torch loop, any device)
    all_reduce, total_images : data parallel: sum the residual norms over processes,
        of a problem of ``total_images`` images in all
    """

    def __init__(self, S: torch.Tensor, lmbda: float, opts: CBPDNOptions, K: int, kernel_size, *,
                 fused: bool = False, all_reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 total_images: int | None = None, problem=None):
        B, (H, W) = S.shape[0], S.shape[-2:]
        self.opts, self.lmbda, self.shape, self.fused = opts, lmbda, (H, W), fused
        self.S = S.contiguous()
        w = learner_weight(opts.l1_weight, K, S)
        from csc.problems.joint import ConvBPDNJoint

        self.joint = isinstance(problem, ConvBPDNJoint)  # maps (B, C·K, H, W), single-channel kernels
        C = S.shape[1] if self.joint else 1
        if self.joint:
            self.xs = ChannelwiseXStep(S.new_zeros((K, H, W // 2 + 1), dtype=_complex(S.dtype)), C)
            if isinstance(w, torch.Tensor):
                w = w.repeat(1, C, 1, 1)
        elif problem is not None:  # a coding problem's x-step (csc.problems.variants: a quadratic penalty)
            self.xs = problem._xstep(S.new_zeros((K,) + tuple(kernel_size)), (H, W))
        elif S.ndim == 4:  # multi-channel dictionary (K, C, kh, kw)
            self.xs = MultiChannelXStep(S.new_zeros((K, S.shape[1], H, W // 2 + 1), dtype=_complex(S.dtype)))
        else:
            self.xs = SingleChannelXStep(S.new_zeros((K, H, W // 2 + 1), dtype=_complex(S.dtype)))
        y, u = S.new_zeros((B, C * K, H, W)), S.new_zeros((B, C * K, H, W))
        bound = tuple(kernel_size) if opts.no_boundary_cross else None
        if self.joint:
            prox = SparseGroupThreshold(lmbda, w, bool(opts.nonneg), bound, mu=problem.mu,
                                        l21_weight=problem._l21_weight(S, B, (H, W)), channels=C)
        else:
            prox = SoftThreshold(lmbda, w, bool(opts.nonneg), bound)
        # the fused CPU kernels (estimated plans: a resumed run in another process repeats them bit for
        # bit), else the torch loop or its compiled kernels (CUDA by default: csc.backends.compiled)
        backend = "numba" if fused else select_backend(opts.backend, S.device, "learning")
        self.ws = admm_workspace(self.S, self.xs, y, u, prox, opts, what="learning", joint=True,
                                 backend="torch" if backend == "numba" and not fused else backend)
        self.Sf = self.ws.Sf if fused or S.ndim == 4 else self.ws.Sf[:, 0]
        if self.joint:  # the dictionary step sees B·C single-channel images
            self.Sf = self.Sf.reshape(B * C, H, W // 2 + 1)
        coupling = Coupling(joint=True, all_reduce=all_reduce, total_images=total_images)
        self.loop = ADMMLoop(self.ws, prox, opts, coupling, sync_every=self.ws.sync_every,
                             penalty=None if problem is None or self.joint else problem._penalty_weight())

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        """Maps (B, C·K, …) as the dictionary step sees them: (B·C, K, …) (joint sparsity)."""
        if not self.joint:
            return t
        C = self.xs.channels
        return t.reshape(t.shape[0] * C, t.shape[1] // C, *t.shape[2:])

    # ------------------------------------------------------------ the dictionary
    def set_dictionary(self, D: torch.Tensor | None = None, Df: torch.Tensor | None = None) -> None:
        """The dictionary, by its kernels D (K, kh, kw) or its DFT Df (K, H, Wr) ((K, C, …)
        for a multi-channel one)."""
        self.xs.set_dft(Df if Df is not None else ops.kernel_dft(D, self.shape))
        self.Df = self.xs.Df

    # ------------------------------------------------------------ the iteration
    def iterate(self, n: int, host: bool = True) -> dict[str, Any]:
        """Up to n ADMM iterations (fewer when converged); the last one's statistics: floats
        (one host read), or with ``host=False`` 0-d device tensors for the caller to read
        with the rest of its row (:func:`read_row`)."""
        last: list[torch.Tensor] = []
        self.loop.run(n, lambda k, idx, row: last.append(row))
        if not last:
            return {}
        vals = last[-1][:8, 0]  # a penalty's value follows
        obj, fid, l1, r, s, _, _, rho = to_host(vals, "coding.row").tolist() if host else vals.unbind(0)
        return dict(objective=obj, data_fidelity=fid, l1=l1, x_primal_residual=r, x_dual_residual=s, x_rho=rho)

    @property
    def y(self) -> torch.Tensor:
        """The codes as the dictionary step sees them (B, K, H, W) ((B·C, K, H, W) with joint sparsity)."""
        return self._split(self.ws.y)

    @property
    def u(self) -> torch.Tensor:
        return self._split(self.ws.u)

    @property
    def rho(self) -> float:
        return float(to_host(self.loop.rho[0], "coding.rho"))

    @property
    def k(self) -> int:
        return self.loop.k

    # state for checkpoints
    def state(self) -> dict[str, Any]:
        return {"y": self.y, "u": self.u, "rho": self.rho, "k": self.k}

    def load_state(self, st: Mapping[str, Any]) -> None:
        self.ws.load(st["y"].to(self.y).reshape(self.ws.y.shape), st["u"].to(self.u).reshape(self.ws.u.shape))
        self.loop.rho.fill_(float(st["rho"]))
        self.loop.k = int(st["k"])

    # ------------------------------------------------- views of y for the dictionary step
    def codes_dft(self) -> torch.Tensor:
        """rfft2(y), (B, K, H, Wr) ((B·C, K, H, Wr) with joint sparsity)."""
        return self._split(self.ws.codes_dft())

    @property
    def track_nonzeros(self) -> bool:
        return self.fused and self.ws.track_nonzeros

    @track_nonzeros.setter
    def track_nonzeros(self, on: bool) -> None:
        if self.fused:
            self.ws.track_nonzeros = bool(on)

    def nonzeros(self):
        return self.ws.nonzeros()

    def sparse_ok(self, kernel_size) -> bool:
        """Whether a dictionary step on y should work with its nonzeros in the spatial
        domain rather than with rfft2(y): y's DFT is not at hand, and the nonzeros times
        the kernel size are at most :data:`SPARSE_RATIO` of the coefficients (the choice
        depends on y alone, so a resumed run makes the same choices)."""
        if not self.fused or self.ws._zf_valid or self.S.ndim == 4 or self.joint:
            return False
        kh, kw = kernel_size
        return SPARSE_RATIO > 0 and self.nonzeros()[2] * kh * kw <= SPARSE_RATIO * self.y.numel()

    def residual(self, D: torch.Tensor, out: np.ndarray) -> np.ndarray:
        """out (B, H, W) ← Σ_k d_k * y_k − s from the nonzeros of y (spatial, circular)."""
        idx, cnt, _ = self.nonzeros()
        _fused.run_split(_fused.dl_kernels().sparse_residual, out.shape[0], self.ws.threads, self.y.numpy(), idx,
                         cnt, D.contiguous().numpy(), self.S.numpy(), out)
        return out

    def objective(self, D: torch.Tensor, Df: torch.Tensor) -> dict[str, float]:
        """DFid + λ‖y‖₁ of the codes y with the dictionary D (K, kh, kw), DFT Df
        (SPORCO's ``AccurateDFid``)."""
        H, W = self.shape
        if self.sparse_ok(D.shape[-2:]):
            r = self.residual(D, np.empty(tuple(self.S.shape), dtype=self.ws.npdt))
            fid = float(np.square(r, dtype=np.float64).sum()) / 2.0
        else:
            Zf = self.codes_dft()
            fid = float(ops.rfft2_sqnorm(ops.synthesis_any(Df, Zf) - self.Sf, W).sum()) / 2.0
        l1 = float(self.y.abs().sum())
        return dict(objective=fid + self.lmbda * l1, data_fidelity=fid, l1=l1)


def read_row(row: dict[str, Any], site: str = "learner.row") -> dict[str, Any]:
    """``row`` with its tensor values read as floats, all in one host read (the learners'
    one per outer iteration); other values unchanged."""
    keys = [k for k, v in row.items() if isinstance(v, torch.Tensor)]
    if not keys:
        return row
    dev = row[keys[0]].device
    vals = to_host(torch.stack([row[k].reshape(()).to(device=dev, dtype=torch.float64) for k in keys]), site)
    return {**row, **dict(zip(keys, vals.tolist()))}


def _complex(dtype: torch.dtype) -> torch.dtype:
    return torch.complex64 if dtype == torch.float32 else torch.complex128


class JointMaskDcpl:
    r"""Mask-decoupled CBPDN (SPORCO ``admm.cbpdn.ConvBPDNMaskDcpl``) for a batch S (B, H, W)
    as one problem, state kept between calls: the learners' coding step with a mask,

    .. math::
        \operatorname*{argmin}_x \; \tfrac12 \sum_j \Big\| W_j \odot \Big(\sum_k d_k * x_{jk} - s_j\Big)
        \Big\|_2^2 + \lambda \sum_{jk} \| w_k \odot x_{jk} \|_1 ,

    by the two-block iteration of :mod:`csc.problems.maskdcpl` (workspaces
    :class:`~csc.backends.torch_twoblock.TorchMaskDcpl`,
    :class:`~csc.backends.numba_twoblock.FusedMaskDcpl`) with one ρ, residual norms summed
    over the batch and one stopping test (a joint :class:`~csc.core.admm.Coupling`), as
    SPORCO codes a multi-image array. The same interface as :class:`JointCBPDN`; ``y`` and
    ``u`` are the code block y₁ and its dual u₁, the checkpoint state also holds y₀, u₀.

    Parameters
    ----------
    mask : the data term's weights W, a float or (1 or B, 1, H, W) (checked by the caller:
        :meth:`csc.ConvBPDNMaskDcpl._prepare_mask`)
    fused, all_reduce, total_images : as :class:`JointCBPDN`
    """

    track_nonzeros = False  # the dictionary steps with a mask work on rfft2(y)

    def __init__(self, S: torch.Tensor, lmbda: float, opts: CBPDNOptions, K: int, kernel_size, mask, *,
                 fused: bool = False, all_reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 total_images: int | None = None):
        from csc.core.xstep import DiagonalXStep

        (H, W) = S.shape[-2:]
        self.opts, self.lmbda, self.shape, self.fused = opts, lmbda, (H, W), fused
        self.S, self.mask = S.contiguous(), mask
        w = learner_weight(opts.l1_weight, K, S)
        Df = S.new_zeros((K, H, W // 2 + 1), dtype=_complex(S.dtype))
        self.xs = DiagonalXStep(Df, S.new_zeros((1, H, W // 2 + 1)), 0.0, over_rho=True)
        prox = SoftThreshold(lmbda, w, bool(opts.nonneg), tuple(kernel_size) if opts.no_boundary_cross else None)
        self.ws = two_block_workspace(self.S, self.xs, K, prox, QuadraticData(mask), opts, dual="plain",
                                      what="learning", backend="numba" if fused else "torch")
        self.Sf = torch.fft.rfft2(self.S)
        coupling = Coupling(joint=True, all_reduce=all_reduce, total_images=total_images)
        self.loop = ADMMLoop(self.ws, prox, opts, coupling, rho0=prox.rho0(opts))

    def set_dictionary(self, D: torch.Tensor | None = None, Df: torch.Tensor | None = None) -> None:
        """The dictionary, by its kernels D (K, kh, kw) or its DFT Df (K, H, Wr)."""
        self.xs.set_dft((Df if Df is not None else ops.kernel_dft(D, self.shape)).contiguous())
        self.Df = self.xs.Df

    iterate = JointCBPDN.iterate
    rho = JointCBPDN.rho
    k = JointCBPDN.k

    @property
    def y(self) -> torch.Tensor:
        return self.ws.y1

    @property
    def u(self) -> torch.Tensor:
        return self.ws.u1

    def state(self) -> dict[str, Any]:
        return {"y": self.ws.y1, "u": self.ws.u1, "y0": self.ws.y0, "u0": self.ws.u0, "rho": self.rho, "k": self.k}

    def load_state(self, st: Mapping[str, Any]) -> None:
        ws = self.ws
        for name, key in (("y1", "y"), ("u1", "u"), ("y0", "y0"), ("u0", "u0")):
            getattr(ws, name).copy_(st[key].to(getattr(ws, name)))
        if self.fused:  # the next forward FFT's input t = y₁ − u₁
            torch.sub(ws.y1, ws.u1, out=ws.t)
        self.loop.rho.fill_(float(st["rho"]))
        self.loop.k = int(st["k"])

    def codes_dft(self) -> torch.Tensor:
        """rfft2(y₁), (B, K, H, Wr)."""
        return torch.fft.rfft2(self.ws.y1)

    def sparse_ok(self, kernel_size) -> bool:
        return False

    def residual(self, Df: torch.Tensor, Zf: torch.Tensor | None = None) -> torch.Tensor:
        """Σ_k d_k * y_k − s (B, H, W) for the kernels' DFT Df (K, H, Wr)."""
        Zf = self.codes_dft() if Zf is None else Zf
        return torch.fft.irfft2(torch.einsum("bkhw,khw->bhw", Zf, Df), s=self.shape) - self.S

    def objective(self, D: torch.Tensor, Df: torch.Tensor) -> dict[str, float]:
        """½‖W ⊙ (Σ_k d_k * y_k − s)‖² + λ‖y‖₁ with the dictionary's DFT Df (SPORCO's
        ``ConvBPDNMaskDictLearn.evaluate`` with ``AccurateDFid``: unweighted ℓ1)."""
        W = self.mask[:, 0] if isinstance(self.mask, torch.Tensor) else self.mask
        fid = float((W * self.residual(Df)).square().sum()) / 2.0
        l1 = float(self.ws.y1.abs().sum())
        return dict(objective=fid + self.lmbda * l1, data_fidelity=fid, l1=l1)

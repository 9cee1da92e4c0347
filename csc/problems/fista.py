r"""Convolutional BPDN by FISTA (SPORCO 0.2.2 ``pgm.cbpdn.ConvBPDN``), batched, on CPU and CUDA.

For each image s and kernels d_k the solver minimises F(x) = f(x) + λ g(x),

.. math::
    f(x) = \tfrac12 \Big\| \sum_k d_k * x_k - s \Big\|_2^2 ,\qquad
    g(x) = \sum_k \| w_k \odot x_k \|_1 ,

by the proximal gradient method with Nesterov momentum (Beck & Teboulle 2009). One
iteration, in SPORCO's order, with the gradient taken in the DFT domain
(:math:`\widehat{\nabla f(y)} = \overline{\hat D}\,(\sum_k \hat D_k \hat y_k - \hat s)`):

.. math::
    x_k = \mathcal S_{\lambda w / L}\big(y_k - \tfrac1L \nabla f(y_k)\big),\qquad
    t_{k+1} = \tfrac12\big(1 + \sqrt{1 + 4 t_k^2}\big),\qquad
    y_{k+1} = x_k + \frac{t_k - 1}{t_{k+1}} (x_k - x_{k-1}),

then non-negativity and boundary zeroing of x when asked. With backtracking, L grows by
γ_u until f(x) ≤ Q_L(x, y) = f(y) + ⟨∇f(y), x − y⟩ + (L/2)‖x − y‖² (all three in SPORCO's
unnormalised half-spectrum DFT scaling); robust backtracking (Florea & Vorobyov) first
shrinks L by γ_d and builds y from an accumulated point. The iteration stops when the
fixed-point residual ‖x_k − y_k‖² (squared, unnormalised: SPORCO's ``Rsdl``) falls below
``rel_stop_tol`` (or τ₀/(1 + k) with ``auto_stop``).

Every image of a batch is solved as if alone: its own L, t, line search and stopping; an
image that has stopped leaves the working set. Back ends: the torch loop
(:class:`csc.backends.torch_fista.TorchFISTA`, any device) and, on the CPU, fused numba
kernels over FFTW plans (:class:`csc.backends.numba_fista.FusedFISTA`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from csc.backends.registry import fista_workspace
from csc.core import ops
from csc.core.checks import (DeviceCopies, as_float_tensor, check_colour_images, check_finite, check_image_size,
                             check_images, check_ndim,
                             check_nonnegative, check_not_channels_last, check_weights, on_device,
                             prepare_dictionary, shape_weights, working_device)
from csc.core.options import FISTAOptions
from csc.core.fista import FISTALoop
from csc.core.stats import StatsTable

__all__ = ["ConvBPDNFISTA", "FISTAResult", "FISTAStats", "SPORCO_FISTA_STATS_NAMES"]

#: csc statistics field → SPORCO ``pgm.cbpdn.ConvBPDN.IterationStats`` field.
SPORCO_FISTA_STATS_NAMES: dict[str, str] = {
    "iteration": "Iter", "objective": "ObjFun", "data_fidelity": "DFid", "l1": "RegL1", "residual": "Rsdl",
    "f_btrack": "F_Btrack", "q_btrack": "Q_Btrack", "iter_btrack": "IterBTrack", "L": "L", "time": "Time",
}


@dataclass(frozen=True)
class FISTAStats(StatsTable):
    """Per-iteration statistics of one image's FISTA solve (SPORCO's fields; the backtracking
    columns are NaN without backtracking). ``L`` is the step parameter after the iteration's
    line search; ``time`` is seconds since the start of the solve."""

    iteration: np.ndarray
    objective: np.ndarray
    data_fidelity: np.ndarray
    l1: np.ndarray
    residual: np.ndarray
    f_btrack: np.ndarray
    q_btrack: np.ndarray
    iter_btrack: np.ndarray
    L: np.ndarray
    time: np.ndarray


@dataclass
class FISTAResult:
    """Result of :meth:`ConvBPDNFISTA.solve`: ``codes`` lead + (K, H, W) (SPORCO's X, exactly
    sparse), the final ``L`` and ``iterations`` per image (shape lead), ``stats`` (one
    :class:`FISTAStats` per image, or None), the ``dictionary`` (K, kh, kw) or (K, C, kh, kw)
    and the ``backend`` that ran."""

    codes: torch.Tensor
    L: torch.Tensor
    iterations: torch.Tensor
    stats: list[FISTAStats] | None
    dictionary: torch.Tensor
    #: the back end that ran: "numba", "torch", or "torch (why not numba)"
    backend: str | None = None

    def reconstruct(self, codes: torch.Tensor | None = None) -> torch.Tensor:
        """Σ_k d_k * codes_k, shape lead + (H, W)."""
        c = self.codes if codes is None else codes
        K, H, W = c.shape[-3:]
        out = ops.synthesis(self.dictionary.to(c.device), c.reshape(-1, K, H, W))
        return out.reshape(c.shape[:-3] + out.shape[1:])


class ConvBPDNFISTA:
    r"""Batched FISTA solver for convolutional BPDN (module docstring for the equations).

    Parameters
    ----------
    dictionary : (K, kh, kw) or (K, C, kh, kw) tensor or array
        Kernels. Single-channel: each channel of (B, C, H, W) images is coded on its own;
        multi-channel (K, C, kh, kw): images (C, H, W) or (B, C, H, W), one map per kernel
        shared by the channels (SPORCO's ``Cd = C``, whose gradient
        :math:`\sum_c \overline{\hat D_{ck}} (\sum_j \hat D_{cj} \hat y_j - \hat s_c)` sums over
        the channels; the torch loop runs it).
    lmbda : float
        λ ≥ 0.
    options : FISTAOptions, optional
        SPORCO's defaults when omitted (L = 500, no backtracking, Nesterov momentum).

    Notes
    -----
    Devices as :class:`csc.ConvBPDN`'s: without ``options.device`` a solve works on the
    images' device (arrays go to the dictionary's), the dictionary and ``l1_weight`` copied
    there once and kept; :attr:`dictionary` stays the tensor given. Images of another dtype
    than the dictionary's are an error unless ``options.dtype`` is set.

    Examples
    --------
    >>> opts = FISTAOptions(max_iter=200, L=50.0, backtrack="standard")
    >>> result = ConvBPDNFISTA(D, 0.05, opts).solve(images)   # (B, H, W) → codes (B, K, H, W)
    """

    sporco_stats_names = SPORCO_FISTA_STATS_NAMES

    def __init__(self, dictionary, lmbda: float, options: FISTAOptions | None = None):
        self.options = options if options is not None else FISTAOptions()
        if not isinstance(self.options, FISTAOptions):
            raise TypeError(f"options: ConvBPDNFISTA takes FISTAOptions, got {type(self.options).__name__}")
        self.lmbda = check_nonnegative("lmbda", lmbda)
        D = prepare_dictionary(dictionary, self.options.dtype, self.options.device, multichannel=True)
        self.dictionary = D
        self._copies = DeviceCopies()  # the dictionary and weights on the devices solved on

    def clear_device_copies(self) -> None:
        """Drop the copies made for solves on other devices (:class:`csc.ConvBPDN`'s)."""
        self._copies.clear()

    def _prepare(self, images, x0):
        opts, D = self.options, self.dictionary
        device = working_device(images, opts.device, D.device)
        S = as_float_tensor("images", images, opts.dtype, device).detach()
        if opts.dtype is None and S.dtype != D.dtype:
            raise TypeError(f"images: dtype {S.dtype} does not match the dictionary's {D.dtype}")
        if D.ndim == 4:
            S = check_colour_images(S, D)
            lead = (S.shape[0],)
        else:
            check_ndim("images", S, (2, 3, 4), "(H, W), (B, H, W) or (B, C, H, W)")
            check_not_channels_last("images", S, "(H, W), (B, H, W) or (B, C, H, W)")
            lead = tuple(S.shape[:-2]) or (1,)
        H, W = S.shape[-2:]
        check_image_size("images", H, W, D.shape[-2:])
        check_images("images", S)
        S = S.reshape(-1, *S.shape[-3 if D.ndim == 4 else -2:])
        n, K = S.shape[0], D.shape[0]
        if x0 is None:
            X = S.new_zeros((n, K, H, W))
        else:
            X = as_float_tensor("x0", x0, S.dtype, S.device).detach()
            if tuple(X.shape) not in (lead + (K, H, W), (n, K, H, W)):
                raise ValueError(f"x0: expected shape {lead + (K, H, W)}, got {tuple(X.shape)}")
            check_finite("x0", X)
            X = X.reshape(n, K, H, W).clone()
        return S, lead, X

    def solve(self, images, x0=None, L0=None) -> FISTAResult:
        """Solve for every image of ``images`` independently.

        ``x0`` (lead + (K, H, W)) starts the iteration from given codes (SPORCO's ``X0``);
        ``L0`` (a number or one per image) replaces ``options.L`` as the initial L.
        """
        opts = self.options
        S, lead, X = self._prepare(images, x0)
        n, (H, W) = S.shape[0], S.shape[-2:]
        D = on_device(self._copies, "dictionary", self.dictionary, S.device).to(dtype=S.dtype)
        K = D.shape[0]
        w = self._copies.get("l1_weight", opts.l1_weight, (S.device, S.dtype),
                             lambda: check_weights("l1_weight", opts.l1_weight, S))
        w = shape_weights("l1_weight", w, K, (n, K, H, W), lead)
        L = np.broadcast_to(np.asarray(opts.L if L0 is None else L0, dtype=np.float64), (n,)).copy()
        if not (np.isfinite(L).all() and (L > 0).all()):
            raise ValueError(f"L0: expected positive finite values, got {L0!r}")
        ws = self._workspace(S, D, X, w)
        out = _FISTAOutputs(n, (K, H, W), S, opts.record_stats)
        FISTALoop(ws, self.lmbda, opts, L, out).run(opts.max_iter)
        return FISTAResult(codes=out.codes.reshape(lead + (K, H, W)), L=torch.from_numpy(out.L).reshape(lead),
                           iterations=torch.from_numpy(out.iters).reshape(lead), stats=out.stats(),
                           dictionary=D, backend=getattr(ws, "backend", None))

    def _workspace(self, S, D, X, w):
        """The back end's working set (:func:`csc.backends.registry.fista_workspace`)."""
        Df = ops.kernel_dft(D, tuple(S.shape[-2:]))
        return fista_workspace(S, Df, X, w, self.lmbda, self.options, D.shape[-2:])


class _FISTAOutputs:
    """Final codes, L and iteration counts of retired images, and their statistics rows."""

    def __init__(self, n: int, shape, like: torch.Tensor, record: bool):
        self.codes = like.new_zeros((n,) + tuple(shape))
        self.L = np.zeros(n)
        self.iters = np.zeros(n, dtype=np.int64)
        self.rows = [[] for _ in range(n)] if record else None

    def retire(self, idx: np.ndarray, codes: torch.Tensor, L: np.ndarray, iters: int) -> None:
        self.codes[torch.from_numpy(idx).to(self.codes.device)] = codes
        self.L[idx], self.iters[idx] = L, iters

    def stats(self) -> list[FISTAStats] | None:
        if self.rows is None:
            return None
        return [FISTAStats(**{name: np.asarray([r[j] for r in rows], dtype=np.int64 if j == 0 else np.float64)
                              for j, name in enumerate(SPORCO_FISTA_STATS_NAMES)}) for rows in self.rows]

r"""Convolutional basis pursuit denoising (CBPDN) by ADMM, batched, on CPU and CUDA.

For each image s (H×W) and a dictionary of K kernels d_k (kh×kw) the solver computes

.. math::
    \operatorname*{argmin}_x \; \tfrac12 \Big\| \sum_k d_k * x_k - s \Big\|_2^2
    + \lambda \sum_k \| w_k \odot x_k \|_1 ,

with ``*`` circular 2-D convolution and kernels zero-padded at the top-left origin, by
ADMM on the split x = y with scaled dual u (SPORCO ``admm.cbpdn.ConvBPDN``; the iteration: :mod:`csc.core.admm`).
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

import copy
import sys
import time
from dataclasses import dataclass, fields
from typing import Callable, Protocol, runtime_checkable

import numpy as np
import torch

from csc.backends.registry import admm_workspace
from csc.core import ops
from csc.core.admm import PER_IMAGE, STAT_COLUMNS, ADMMLoop, Coupling, default_sync_interval  # noqa: F401 (re-exported)
from csc.core.checks import (
    DeviceCopies, as_float_tensor, check_finite, check_image_size, check_images, check_instance, check_ndim,
    check_nonnegative, check_not_channels_last, check_colour_images, check_solution, check_weights,
    explain_out_of_memory, on_device, prepare_dictionary, shape_weights, working_device,
)
from csc.core.options import CBPDNOptions
from csc.core.prox import Prox, SoftThreshold
from csc.core.stats import CodingStats
from csc.core.xstep import xstep_for
from csc.runtime.memory import MemoryBudget, batch_size, image_bytes, measured_image_bytes, solve_split

__all__ = ["ConvBPDN", "CBPDNResult", "IterationStats", "encode", "solve_in_batches", "SPORCO_STATS_NAMES",
           "WarmStart", "consistent_dual"]


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
class IterationStats(CodingStats):
    """Per-iteration statistics of one image's solve (arrays over its iterations).

    ``rho`` is the penalty used in that iteration (before its adaptive update), as in
    SPORCO; ``time`` is seconds since the start of the solve. The objective terms are
    evaluated on x, or on y with ``CBPDNOptions(objective_on_y=True)``.
    """

    eps_primal: np.ndarray
    eps_dual: np.ndarray
    rho: np.ndarray
    time: np.ndarray




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
        One record per image (in flattened ``lead`` order) when statistics are recorded
        (the solver's ``stats_class``); one record for the whole batch with
        ``coupling="sporco"`` (one problem).
    dictionary : (K, kh, kw)
        The dictionary used.
    backend : str or None
        The back end that ran the solve: ``"numba"``, ``"torch"``, ``"compiled"``, or
        ``"compiled (eager fallback: …)"`` when ``torch.compile`` failed and its kernels ran
        eagerly (the reason follows).
    """

    codes: torch.Tensor
    x: torch.Tensor
    u: torch.Tensor
    rho: torch.Tensor
    iterations: torch.Tensor
    stats: list[IterationStats] | None
    dictionary: torch.Tensor
    backend: str | None = None

    def reconstruct(self, codes: torch.Tensor | None = None) -> torch.Tensor:
        """Σ_k d_k * codes_k, shape lead + (H, W); ``codes`` defaults to :attr:`codes`."""
        c = self.codes if codes is None else codes
        K, H, W = c.shape[-3:]
        flat = c.reshape(-1, K, H, W)
        out = ops.synthesis(self.dictionary.to(c.device), flat)  # (n, H, W), or (n, C, H, W)
        return out.reshape(c.shape[:-3] + out.shape[1:])


@runtime_checkable
class WarmStart(Protocol):
    """What :meth:`ConvBPDN.solve` takes as ``warm_start``: a predictor of codes
    (:class:`csc.nn.warmstart.WarmStartPredictor` is one; the problems layer does not import it)."""

    def warm_start(self, images: torch.Tensor, dictionary: torch.Tensor,
                   lmbda: float) -> tuple[torch.Tensor, float | None]:
        """(y0, ρ₀) for the signals ``images`` (n, H, W) coded with ``dictionary`` (K, kh, kw) (in
        the images' dtype, on their device) and ``lmbda``: y0 (n, K, H, W), and the starting ρ
        (None: the options' default). Raise ValueError for a dictionary or λ it was not made for."""


def consistent_dual(D: torch.Tensor, S: torch.Tensor, y0: torch.Tensor, rho: float) -> torch.Tensor:
    r"""The scaled dual u₀ = Dᵀ(s − D y₀)/ρ for codes y₀ (n, K, H, W) of images S (n, H, W).

    The x-step solves :math:`(D^T D + \rho I)x = D^T s + \rho(y - u)`; at x = y = y₀ that is
    :math:`\rho u = D^T(s - D y_0) = -D^T(D y_0 - s)`, so with this u₀ the first x-step
    returns x = y₀, and at the CBPDN solution ρu ∈ λ∂‖y‖₁ (the y-step's optimality) holds
    too: ADMM starts on its fixed point's dual when y₀ is the solution.
    """
    H, W = S.shape[-2:]
    Df = ops.kernel_dft(D.to(S.dtype), (H, W))
    Rf = torch.fft.rfft2(S) - ops.synthesis_dft(Df, torch.fft.rfft2(y0))
    return torch.fft.irfft2(ops.adjoint_dft(Df, Rf), s=(H, W)) / rho


class ConvBPDN:
    r"""Batched ADMM solver for convolutional BPDN (module docstring for the equations).

    Parameters
    ----------
    dictionary : (K, kh, kw) or (K, C, kh, kw) tensor or array
        Kernels. A single-channel dictionary (K, kh, kw) codes each channel of a
        (B, C, H, W) batch on its own (SPORCO's ``Cd = 1`` case with independent channels);
        a multi-channel dictionary (K, C, kh, kw) codes images (B, C, H, W) or (C, H, W)
        with one coefficient map per kernel shared by the C channels (SPORCO's ``Cd = C``
        case: codes (B, K, H, W), :class:`csc.core.xstep.MultiChannelXStep`). Use
        :func:`csc.from_sporco_layout` for SPORCO's (kh, kw[, C], K) layout.
    lmbda : float
        Regularisation weight λ ≥ 0.
    options : CBPDNOptions, optional
        Solver options; SPORCO's defaults when omitted.

    Notes
    -----
    Devices: with ``options.device`` set, the dictionary, the images and everything else
    are moved there. Without it (the default) a solve works on the images' device (for a
    tensor; images given as an array or a list go to the dictionary's device): a CPU or
    numpy dictionary given CUDA images is moved to the GPU, as are weights given as arrays
    or tensors (``l1_weight``, a variant's ``l21_weight``) and masks. The copy on each device
    is made once, at the first solve there, and kept by the solver (the next solves reuse
    it; :meth:`clear_device_copies` frees it); :attr:`dictionary` stays the tensor given, on
    its own device, and ``result.dictionary`` is the one the solve used. Dtypes are not
    converted: images of another dtype than the dictionary's are an error unless
    ``options.dtype`` is set.

    Examples
    --------
    >>> solver = ConvBPDN(D, 0.05, CBPDNOptions(max_iter=200))
    >>> result = solver.solve(images)          # images (B, H, W)
    >>> result.codes.shape                     # (B, K, H, W)
    >>> colour = ConvBPDN(Dc, 0.05).solve(rgb)  # Dc (K, 3, kh, kw), rgb (B, 3, H, W) → (B, K, H, W)
    >>> on_gpu = ConvBPDN(D_cpu, 0.05).solve(images.cuda())  # D_cpu is copied to the GPU once
    """

    #: the options class this solver takes (exactly: a variant's options are refused)
    options_class: type = CBPDNOptions
    #: the statistics record of one image, and its fields' SPORCO names
    stats_class: type = IterationStats
    sporco_stats_names: dict[str, str] = SPORCO_STATS_NAMES

    def __init__(self, dictionary, lmbda: float, options: CBPDNOptions | None = None):
        self.options = options if options is not None else self.options_class()
        if type(self.options) is not self.options_class:
            raise TypeError(f"options: {type(self).__name__} takes {self.options_class.__name__}, got "
                            f"{type(self.options).__name__}")
        self.lmbda = check_nonnegative("lmbda", lmbda)
        D = prepare_dictionary(dictionary, self.options.dtype, self.options.device, multichannel=True)
        self.dictionary = D
        self._copies = DeviceCopies()  # the dictionary and weights on the devices solved on

    # ------------------------------------------------------------------ helpers
    def clear_device_copies(self) -> None:
        """Drop the copies of the dictionary and weights made for solves on other devices
        (class docstring); the next solve there copies them again."""
        self._copies.clear()

    def _dictionary_on(self, device: torch.device) -> torch.Tensor:
        """:attr:`dictionary` on ``device``: itself, or its copy there, made once."""
        return on_device(self._copies, "dictionary", self.dictionary, device)

    def _prepare_images(self, images) -> tuple[torch.Tensor, tuple[int, ...]]:
        opts, D = self.options, self.dictionary
        device = working_device(images, opts.device, D.device)
        S = as_float_tensor("images", images, opts.dtype, device).detach()
        if opts.dtype is None and S.dtype != D.dtype:
            raise TypeError(
                f"images: dtype {S.dtype} does not match the dictionary's {D.dtype}; convert one, "
                "or set CBPDNOptions(dtype=...) to convert both"
            )
        self._device = S.device  # the solve's device (y0, u0 go there)
        if D.ndim == 4:
            return self._prepare_colour_images(S)
        check_ndim("images", S, (2, 3, 4), "(H, W), (B, H, W) or (B, C, H, W)")
        check_not_channels_last("images", S, "(H, W), (B, H, W) or (B, C, H, W)")
        H, W = S.shape[-2:]
        check_image_size("images", H, W, D.shape[-2:])
        check_images("images", S)  # at least one image, finite, a scale the iteration can square
        lead = tuple(S.shape[:-2]) or (1,)
        return S.reshape(-1, H, W), lead

    def _prepare_colour_images(self, S: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        """Images (C, H, W) or (B, C, H, W) for a multi-channel dictionary (K, C, kh, kw)."""
        S = check_colour_images(S, self.dictionary)
        check_image_size("images", *S.shape[-2:], self.dictionary.shape[-2:])
        check_images("images", S)  # at least one image, finite, a scale the iteration can square
        return S, (S.shape[0],)

    def _prepare_weight(self, n: int, shape: tuple[int, int], S: torch.Tensor, lead) -> torch.Tensor | float:
        K = self.dictionary.shape[0]
        w = self._checked_weight("l1_weight", self.options.l1_weight, S)
        return shape_weights("l1_weight", w, K, (n, K) + tuple(shape), lead)

    def _checked_weight(self, name: str, w, S: torch.Tensor) -> float | torch.Tensor:
        """Option weights ``w`` checked (:func:`csc.core.checks.check_weights`) in S's dtype and
        on its device, once per device and dtype."""
        return self._copies.get(name, w, (S.device, S.dtype), lambda: check_weights(name, w, S))

    def _prepare_init(self, name: str, value, n: int, lead, shape) -> torch.Tensor | None:
        if value is None:
            return None
        D = self._dictionary_on(getattr(self, "_device", self.dictionary.device))
        K = D.shape[0]
        t = as_float_tensor(name, value, D.dtype, D.device).detach()
        expect = tuple(lead) + (K,) + tuple(shape)
        if tuple(t.shape) not in (expect, (n, K) + tuple(shape)):
            raise ValueError(f"{name}: expected shape {expect}, got {tuple(t.shape)}")
        check_finite(name, t)
        return t.reshape(n, K, *shape).clone()

    # ------------------------------------------------------------------ solve
    def solve(self, images, y0=None, u0=None, warm_start: "WarmStart | None" = None) -> CBPDNResult:
        r"""Solve CBPDN for every image of ``images`` independently (or the batch as one problem
        with ``options.coupling == "sporco"``).

        Parameters
        ----------
        images : (H, W), (B, H, W) or (B, C, H, W) tensor or array
            Each channel of each image is coded on its own.
        y0, u0 : lead + (K, H, W), optional
            Initial y and scaled dual u. When only ``y0`` is given, u starts at
            (λ/ρ₀)·sign(y0) (SPORCO's choice); both default to zero.
        warm_start : WarmStart, optional
            A predictor of codes (:class:`WarmStart`, e.g. :class:`csc.nn.warmstart.WarmStartPredictor`):
            ADMM starts from its prediction y₀ of each image's code, at its ρ₀ (unless
            ``options.rho`` is set), with the dual that the x-step's optimality condition
            gives at x = y = y₀ (:func:`consistent_dual`):
            :math:`\rho_0 u_0 = D^T(s - D y_0)`. The solve runs to the same tolerance, so
            the result is the CBPDN solution; only the iterations change. Not with ``y0``/``u0``.
        """
        S, lead = self._prepare_images(images)
        with explain_out_of_memory("images", S, self._num_maps(self.dictionary.shape[0])):
            if warm_start is not None:
                return self._solve_warm(S, lead, warm_start, y0, u0)
            return self._solve_prepared(S, lead, y0, u0)

    def _solve_warm(self, S: torch.Tensor, lead, warm_start, y0, u0) -> CBPDNResult:
        """The solve from a warm start's prediction (:meth:`solve`)."""
        if y0 is not None or u0 is not None:
            raise ValueError("warm_start: give a warm start or y0/u0, not both")
        if not callable(getattr(warm_start, "warm_start", None)):
            raise TypeError(f"warm_start: expected an object with a warm_start(images, dictionary, lmbda) method "
                            f"(csc.problems.cbpdn.WarmStart), got {type(warm_start).__name__}")
        D = self._dictionary_on(S.device).to(dtype=S.dtype)
        if D.ndim != 3 or S.ndim != 3 or self._penalty_weight() is not None or \
                type(self)._xstep is not ConvBPDN._xstep or self._num_maps(D.shape[0]) != D.shape[0]:
            raise ValueError(f"warm_start: {type(self).__name__} with a dictionary of shape {tuple(D.shape)} has no "
                             "warm start; it takes ConvBPDN's x-step and a single-channel dictionary (K, kh, kw)")
        y, rho = warm_start.warm_start(S, D, self.lmbda)
        n, K, (H, W) = S.shape[0], D.shape[0], S.shape[-2:]
        y = self._prepare_init("warm_start's codes", y, n, (n,), (H, W))
        rho0 = self.options.rho if self.options.rho is not None else rho
        if rho0 is None:
            rho0 = self._prox(1.0, D.shape[-2:], S).rho0(self.options)
        rho0 = check_nonnegative("warm_start's rho", rho0)
        if not rho0 > 0:
            raise ValueError("warm_start's rho: expected ρ₀ > 0, got 0")
        u = consistent_dual(D, S, y, rho0)
        return self._solve_prepared(S, lead, y, u, rho0=rho0)

    def _solve_prepared(self, S: torch.Tensor, lead, y0=None, u0=None, wrap=None,
                        penalty_maps: int | None = None, rho0: float | None = None) -> CBPDNResult:
        """The solve of prepared images S (n, H, W) (or (n, C, H, W)): x-step, prox, workspace
        (:func:`csc.backends.registry.admm_workspace`), loop. ``wrap``: a y-step composed around
        this problem's prox (additive mask simulation's :class:`csc.core.prox.ImpulseMask`);
        ``penalty_maps``: the penalty statistic over the first that many maps only; ``rho0``:
        the starting ρ (default: the prox's, from the options)."""
        opts = self.options
        n, (H, W) = S.shape[0], S.shape[-2:]
        D = self._dictionary_on(S.device).to(dtype=S.dtype)
        K = self._num_maps(D.shape[0])
        prox = self._prox(self._prepare_weight(n, (H, W), S, lead), D.shape[-2:], S)
        if wrap is not None:
            prox = wrap(prox)
        rho0 = prox.rho0(opts) if rho0 is None else float(rho0)
        y = self._prepare_init("y0", y0, n, lead, (H, W))
        u = self._prepare_init("u0", u0, n, lead, (H, W))
        if y is None:
            y = S.new_zeros((n, K, H, W))
        if u is None:
            u = self._initial_dual(y, rho0) if y0 is not None else torch.zeros_like(y)
        ws = admm_workspace(S, self._xstep(D, (H, W)), y, u, prox, opts, penalty_maps=penalty_maps,
                            joint=self._coupled())
        return self._run(ws, S, lead, D, prox, rho0)

    def _coupled(self) -> bool:
        """Whether the batch is one ADMM problem (``options.coupling == "sporco"``)."""
        return getattr(self.options, "coupling", "image") == "sporco"

    def _run(self, ws, S: torch.Tensor, lead, D: torch.Tensor, prox: Prox, rho0: float) -> "CBPDNResult":
        """Run the ADMM loop on the workspace ``ws`` of images S with the y-step ``prox``; the result."""
        if self._coupled():
            return self._run_coupled(ws, S, lead, D, prox, rho0)
        opts = self.options
        n, (H, W) = S.shape[0], S.shape[-2:]
        M = self._num_maps(D.shape[0])
        out = _Outputs(n, (M, H, W), S, opts.record_stats, self.stats_class)
        loop = ADMMLoop(ws, prox, opts, PER_IMAGE, rho0=rho0, sync_every=ws.sync_every, on_retire=out.retire,
                        penalty=self._penalty_weight())
        t0 = time.perf_counter()
        record = None
        if opts.record_stats:
            record = lambda k, idx, row: out.record(k, idx, row.numpy(), loop.row_time - t0)  # noqa: E731
        loop.run(opts.max_iter, IterationTable.wrap(record, n > 1) if opts.verbose else record)
        result = out.result(lead, D, self._code_shape(M, H, W))
        result.backend = getattr(ws, "backend", None)
        check_solution(result.codes, S)
        return result

    def _run_coupled(self, ws, S: torch.Tensor, lead, D: torch.Tensor, prox: Prox, rho0: float) -> "CBPDNResult":
        r"""The ADMM loop over the whole batch as one problem (``coupling="sporco"``, SPORCO's
        semantics for a multi-image array or a colour image with a grey dictionary): one ρ, the
        residual norms :math:`\|r\| = (\sum_i \|r_i\|^2)^{1/2}` over the n working images (and
        channels), their tolerances over all n·K·H·W variables, one stopping test
        (:class:`csc.core.admm.Coupling`, the learners' :class:`csc.learn.coding.JointCBPDN`'s);
        ``stats`` is one record, ``rho`` and ``iterations`` the same for every image."""
        opts = self.options
        n, (H, W) = S.shape[0], S.shape[-2:]
        M = self._num_maps(D.shape[0])
        loop = ADMMLoop(ws, prox, opts, Coupling(joint=True), rho0=rho0, sync_every=ws.sync_every,
                        penalty=self._penalty_weight())
        out = _Outputs(1, (M, H, W), S, opts.record_stats, self.stats_class)
        t0, first = time.perf_counter(), torch.zeros(1, dtype=torch.int64)
        record = None
        if opts.record_stats:
            record = lambda k, idx, row: out.record(k, first, row.numpy(), loop.row_time - t0)  # noqa: E731
        loop.run(opts.max_iter, IterationTable.wrap(record, False) if opts.verbose else record)
        y, x, u = ws.take(torch.ones(ws.n, dtype=torch.bool))
        shape = tuple(lead) + self._code_shape(M, H, W)
        full = lambda t: t.reshape(1).to(S.dtype).expand(n).reshape(lead).clone()  # noqa: E731
        result = CBPDNResult(codes=y.reshape(shape), x=x.reshape(shape), u=u.reshape(shape), rho=full(loop.rho),
                             iterations=loop.iters[:1].expand(n).reshape(lead).clone(), stats=out.stats(),
                             dictionary=D, backend=getattr(ws, "backend", None))
        check_solution(result.codes, S)
        return result

    # ------------------------------------------------- what a variant changes
    def _num_maps(self, K: int) -> int:
        """Coefficient maps per image in the working set: one per kernel."""
        return K

    def _code_shape(self, M: int, H: int, W: int) -> tuple[int, ...]:
        """The codes of one image from its M maps: (K, H, W)."""
        return (M, H, W)

    def _xstep(self, D: torch.Tensor, shape):
        """The x-step object for kernels ``D`` and images of ``shape`` (:mod:`csc.core.xstep`)."""
        return xstep_for(D, shape)

    def _prox(self, w, kernel_size, S: torch.Tensor) -> Prox:
        """The y-step (:mod:`csc.core.prox`): the soft threshold by λw/ρ with the options'
        non-negativity and boundary zeroing (kernels of ``kernel_size``)."""
        o = self.options
        return SoftThreshold(self.lmbda, w, bool(o.nonneg), tuple(kernel_size) if o.no_boundary_cross else None)

    def _initial_dual(self, y: torch.Tensor, rho0: float) -> torch.Tensor:
        """u₀ when only y₀ is given: (λ/ρ₀)·sign(y₀) (SPORCO ``ConvBPDN.uinit``)."""
        return (self.lmbda / rho0) * torch.sign(y)

    def _penalty_weight(self) -> float | None:
        """The weight of the x-step's quadratic penalty in the objective (None: no penalty)."""
        return None


class _Outputs:
    """Final values of retired images, and their statistics.

    The output arrays are allocated when images first retire; when every image retires
    at once (the usual case for one image), the solver's own buffers become the
    outputs, without a copy.
    """

    def __init__(self, n: int, shape, like: torch.Tensor, record: bool, stats_class=IterationStats):
        self.n, self.shape, self.like = n, tuple(shape), like
        self.stats_class = stats_class
        self.fields = [f.name for f in fields(stats_class)]
        self.y = self.x = self.u = None
        self.rho = like.new_zeros(n)
        self.iters = torch.zeros(n, dtype=torch.int64, device=like.device)
        self._rows: list[list] | None = [[] for _ in range(n)] if record else None

    def result(self, lead: tuple, D: torch.Tensor, code_shape: tuple) -> "CBPDNResult":
        """The solve's result, arrays shaped as the input's leading dimensions ``lead`` and
        ``code_shape`` per image."""
        shape = tuple(lead) + tuple(code_shape)
        if self.y is None:  # max_iter = 0 and nothing retired
            self.y, self.x, self.u = (self.like.new_zeros((self.n,) + self.shape) for _ in range(3))
        return CBPDNResult(codes=self.y.reshape(shape), x=self.x.reshape(shape), u=self.u.reshape(shape),
                           rho=self.rho.reshape(lead), iterations=self.iters.reshape(lead),
                           stats=self.stats(), dictionary=D)

    def retire(self, idx, y, x, u, rho, iters) -> None:
        """Store the final values of the images at batch positions ``idx``."""
        if self.y is None and idx.shape[0] == self.n:
            self.y, self.x, self.u = y, x, u  # idx is 0..n-1 here
        else:
            if self.y is None:
                self.y, self.x, self.u = (self.like.new_empty((self.n,) + self.shape) for _ in range(3))
            self.y[idx], self.x[idx], self.u[idx] = y, x, u
        self.rho[idx] = rho.to(self.rho.dtype)
        self.iters[idx] = iters

    def record(self, k: int, idx: torch.Tensor, rows: np.ndarray, elapsed: float) -> None:
        m = len(STAT_COLUMNS)  # the loop's columns, then (after the time) its extra terms
        for j, i in enumerate(idx.tolist()):
            self._rows[i].append((k, *rows[:m, j].tolist(), elapsed, *rows[m:, j].tolist()))

    def stats(self) -> list[IterationStats] | None:
        if self._rows is None:
            return None
        out = []
        for rows in self._rows:
            cols = np.array(rows, dtype=np.float64).reshape(-1, len(self.fields)).T
            rec = dict(zip(self.fields, cols))
            rec["iteration"] = rec["iteration"].astype(np.int64)
            out.append(self.stats_class(**rec))
        return out


class IterationTable:
    """SPORCO's ``Verbose`` table (:attr:`csc.CBPDNOptions.verbose`): a header, then one row per
    iteration (and image, with ``batch``) as the loop hands its statistics rows over."""

    COLUMNS = ("Itn", "Fnc", "DFid", "Regl1", "r", "s", "rho")
    #: the loop's statistics rows' indices (csc.core.admm.STAT_COLUMNS) of the printed columns
    _ROWS = tuple(STAT_COLUMNS.index(c) for c in ("objective", "data_fidelity", "l1", "primal_residual",
                                                  "dual_residual", "rho"))

    def __init__(self, batch: bool, stream=None):
        self.batch, self.stream = batch, stream if stream is not None else sys.stdout
        head = ("img",) * batch + self.COLUMNS
        self.stream.write("  ".join(f"{c:>5}" if c in ("img", "Itn") else f"{c:>10}" for c in head) + "\n")

    @classmethod
    def wrap(cls, record, batch: bool, stream=None):
        """A ``record`` callback that prints its rows, then hands them to ``record`` (or None)."""
        table = cls(batch, stream)

        def both(k, idx, row):
            table(k, idx, row)
            if record is not None:
                record(k, idx, row)
        return both

    def __call__(self, k: int, idx: torch.Tensor, row: torch.Tensor) -> None:
        vals = row.double().numpy()  # (columns, problems): one problem for a coupled batch
        ids = idx.tolist()
        for j in range(vals.shape[1]):
            cells = ([f"{ids[j]:>5d}"] if self.batch else []) + [f"{k:>5d}"]
            cells += [f"{vals[r, j]:>10.3e}" for r in self._ROWS]
            self.stream.write("  ".join(cells) + "\n")
        self.stream.flush()


def solve_in_batches(solver: ConvBPDN, images, memory: MemoryBudget | None = None,
                     on_split: Callable[[int, int], None] | None = None,
                     warm_start: WarmStart | None = None) -> CBPDNResult:
    """``solver.solve(images)`` over batches of the images' first axis sized to the device's
    memory (:func:`csc.runtime.memory.batch_size`; ``memory`` caps it; on CUDA the bytes per
    image are measured by two 2-iteration solves of 1 and 3 images,
    :func:`csc.runtime.memory.measured_image_bytes`), a batch that runs
    out of device memory halved and retried (:func:`csc.runtime.memory.solve_split`). Every
    image is its own problem, so the result is the one-batch result. A single (H, W) image
    (or (C, H, W) for a multi-channel dictionary) is solved as is, and so is a batch under
    ``coupling="sporco"`` (one problem: splitting it would change the answer). ``warm_start``:
    :meth:`ConvBPDN.solve`'s, for every batch (a prediction per image: the batches do not
    change it)."""
    D = solver.dictionary
    check_instance("memory", memory, MemoryBudget, "MemoryBudget(limit_bytes=2**30)")

    def solve(x):  # warm_start only when given: other problems' solve() (joint, …) takes none
        return solver.solve(x) if warm_start is None else solver.solve(x, warm_start=warm_start)

    t = images if isinstance(images, torch.Tensor) else np.asarray(images)  # batches of an array stay arrays
    single = t.ndim == 2 or (D.ndim == 4 and t.ndim == 3)
    if single or t.shape[0] <= 1 or solver._coupled():
        return solve(images)
    device = working_device(images, solver.options.device, D.device)  # the solves' device
    dtype = solver.options.dtype or D.dtype
    maps = D.shape[0] * (t.shape[1] if t.ndim == 4 and D.ndim == 3 else 1)
    per_image = image_bytes((maps,) + tuple(t.shape[-2:]), dtype)
    if device.type == "cuda" and t.shape[0] > 3:  # measure the allocator's peak of two short solves instead
        short = solver.options.replace(max_iter=2, record_stats=False)
        probe = copy.copy(solver)
        probe.options = short
        per_image = measured_image_bytes(lambda k: probe.solve(t[:k]), device) or per_image
    batch = batch_size(t.shape[0], per_image, memory, device)
    parts = solve_split(lambda lo, hi: solve(t[lo:hi]), t.shape[0], batch, on_split)
    if len(parts) == 1:
        return parts[0][2]
    return _concat_results([r for _, _, r in parts])


def _concat_results(results: list[CBPDNResult]) -> CBPDNResult:
    """The results of consecutive batches as one."""
    cat = lambda name: torch.cat([getattr(r, name) for r in results])  # noqa: E731
    stats = None if results[0].stats is None else [st for r in results for st in r.stats]
    return CBPDNResult(codes=cat("codes"), x=cat("x"), u=cat("u"), rho=cat("rho"), iterations=cat("iterations"),
                       stats=stats, dictionary=results[0].dictionary, backend=results[0].backend)


def encode(images, dictionary, lmbda: float, *, memory: MemoryBudget | None = None, **options) -> torch.Tensor:
    """Sparse codes of ``images`` with ``dictionary`` in one call.

    ``options`` are :class:`CBPDNOptions` fields (``max_iter=200``, ``rel_stop_tol=1e-2``,
    ``device="cuda"``, …); statistics are not recorded unless ``record_stats=True``.
    The images are solved in batches sized to the device's free memory (``memory``: a
    :class:`csc.runtime.memory.MemoryBudget` to cap it), a batch that runs out of memory
    split and retried (:func:`solve_in_batches`).
    Returns the codes, shape lead + (K, H, W) (see :class:`CBPDNResult`).
    """
    known = {f.name for f in fields(CBPDNOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"encode: unknown option(s) {unknown}; expected CBPDNOptions fields {sorted(known)}")
    options.setdefault("record_stats", False)
    return solve_in_batches(ConvBPDN(dictionary, lmbda, CBPDNOptions(**options)), images, memory).codes

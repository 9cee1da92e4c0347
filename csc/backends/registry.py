r"""The back-end registry: the one place that maps (problem, back end, device) to a workspace.

A coding problem is a composition (:mod:`csc.core.xstep`, :mod:`csc.core.prox`,
:mod:`csc.core.admm`); a back end makes one composition fast on one device. The solver front
ends (:mod:`csc.problems`) and the learners (:mod:`csc.learn`) describe what they solve and
call the functions here, which are the only code that constructs a workspace:

- :func:`select_backend` — the back end of a ``backend`` option on a device
  (``"auto"`` | ``"numba"`` | ``"compiled"`` | ``"torch"``);
- :func:`admm_workspace` — the split x = y (CBPDN and its variants) for an x-step and a prox;
- :func:`two_block_workspace` — the split Ax − y = c, A = (D; I) for a prox and a data term;
- :func:`fista_workspace` — the FISTA iteration of CBPDN;
- :func:`dictionary_ops` — the learners' dictionary-step operators.

Which back end has a kernel for which composition is the table :data:`ADMM_KERNELS` (and
:data:`TWO_BLOCK_KERNELS`): a composition the chosen back end has no kernel for runs on the
torch loop, and the workspace's ``backend`` says so (``"torch (numba has no kernel for …)"``).
A new back end adds its workspace classes to the tables; a new prox that only has its torch
operator needs no entry at all.
"""

from __future__ import annotations

import os

import torch

from csc.backends import fused, numba_xstep
from csc.backends.compiled import CompiledCBPDN, compile_available, compile_unavailable_reason
from csc.backends.numba_cpu import FusedAddMaskSim, FusedCBPDN, FusedJointCBPDN
from csc.backends.numba_twoblock import FusedMaskDcpl, FusedTwoBlock
from csc.backends.torch_fista import TorchFISTA
from csc.backends.torch_loop import TorchCBPDN
from csc.backends.torch_tv import TorchTVL2
from csc.backends.torch_twoblock import TorchMaskDcpl, TorchTwoBlock
from csc.core.admm import default_sync_interval
from csc.core.prox import ImpulseMask, L1Data, QuadraticData, SoftThreshold, SparseGroupThreshold

__all__ = ["ADMM_KERNELS", "TWO_BLOCK_KERNELS", "admm_workspace", "dictionary_ops", "fista_workspace",
           "select_backend", "tv_workspace", "two_block_workspace", "use_fused"]

BACKENDS = ("auto", "numba", "compiled", "torch")

#: (back end, prox type) → the workspace class whose fused kernels run that prox (the split x = y)
ADMM_KERNELS: dict[tuple[str, type], type] = {
    ("numba", SoftThreshold): FusedCBPDN,
    ("numba", SparseGroupThreshold): FusedJointCBPDN,
    ("numba", ImpulseMask): FusedAddMaskSim,
    ("compiled", SoftThreshold): CompiledCBPDN,
}

#: (back end, data-term type) → the two-block workspace class with kernels for it; the torch
#: classes by SPORCO's dual-residual convention ("adjoint": ConvL1L1Grd's, "plain":
#: ConvTwoBlockCnstrnt's)
TWO_BLOCK_KERNELS: dict[tuple[str, type], type] = {
    ("numba", L1Data): FusedTwoBlock,
    ("numba", QuadraticData): FusedMaskDcpl,
}
_TORCH_TWO_BLOCK = {"adjoint": TorchTwoBlock, "plain": TorchMaskDcpl}


def select_backend(backend: str, device, what: str = "the solve") -> str:
    """The back end a solver runs, ``"numba"`` | ``"compiled"`` | ``"torch"``, from its
    ``backend`` option (``"auto"`` | ``"numba"`` | ``"compiled"`` | ``"torch"``) and the
    device it works on.

    ``"auto"``: the fused numba kernels on the CPU when numba imports; on CUDA the
    ``torch.compile`` back end (:mod:`csc.backends.compiled`) when it can build kernels
    there, else the torch loop. The environment variable ``CSC_CBPDN_BACKEND`` replaces
    ``"auto"`` when set; a back end it names that cannot run on the device falls back to
    ``"auto"``'s choice (so ``CSC_CBPDN_BACKEND=numba`` still runs CUDA solves). An explicit
    ``"numba"`` or ``"compiled"`` option raises where it cannot run."""
    device = torch.device(device)
    if backend == "auto":
        return _auto(device)
    if backend == "torch":
        return "torch"
    if backend == "compiled":
        if not compile_available(device):
            raise RuntimeError(f"backend='compiled': torch.compile cannot build kernels on {device} "
                               f"({compile_unavailable_reason(device)}); use backend='auto' or 'torch'")
        return "compiled"
    if device.type != "cpu":
        raise ValueError(f"backend='numba' runs on the CPU only; {what} is on {device} "
                         "(use backend='auto' or 'torch')")
    if not fused.available():
        raise RuntimeError(f"backend='numba' needs numba ({fused.unavailable_reason()}); "
                           "pip install numba, or use backend='auto' or 'torch'")
    return "numba"


def _auto(device: torch.device) -> str:
    """``backend="auto"`` on ``device`` (:func:`select_backend`), with ``CSC_CBPDN_BACKEND``."""
    env = os.environ.get("CSC_CBPDN_BACKEND", "auto").strip().lower() or "auto"
    if env not in BACKENDS:
        raise ValueError(f"CSC_CBPDN_BACKEND: expected auto, numba, compiled or torch, got {env!r}")
    if env == "numba" and device.type == "cpu" and fused.available():
        return "numba"
    if env == "compiled" and compile_available(device):
        return "compiled"
    if env == "torch":
        return "torch"
    if device.type == "cpu":
        return "numba" if fused.available() else "torch"
    return "compiled" if device.type == "cuda" and compile_available(device) else "torch"


def use_fused(backend: str, device, what: str = "the solve") -> bool:
    """Whether a solver runs its fused CPU back end (:func:`select_backend` is ``"numba"``)."""
    return select_backend(backend, device, what) == "numba"


def _kernel_class(table: dict, name: str, part, xs) -> tuple[type | None, str | None]:
    """The class of ``table`` for back end ``name`` and the composition's ``part`` (a prox or a
    data term), or (None, why not) when that back end has none."""
    if name == "torch":
        return None, None
    cls = table.get((name, type(part)))
    if cls is None:
        return None, f"{name} has no kernel for {type(part).__name__}"
    if getattr(part, "maps", 1) > 1:  # ImpulseMask of a multi-channel dictionary: one impulse per channel
        return None, f"{name} has no kernel for {type(part).__name__} with {part.maps} impulse maps"
    if name == "numba" and not numba_xstep.supported(xs):
        return None, f"numba has no kernel for {type(xs).__name__}"
    return cls, None


def _noted(ws, why: str | None):
    """``ws`` with ``backend`` saying why it is the torch loop (when it stands in for another)."""
    if why is not None:
        ws.backend = f"torch ({why})"
    return ws


def admm_workspace(S: torch.Tensor, xstep, y: torch.Tensor, u: torch.Tensor, prox, opts, *,
                   what: str = "the solve", joint: bool = False, penalty_maps: int | None = None,
                   backend: str | None = None):
    """The workspace of the split x = y (:class:`csc.core.admm.Workspace`) for images S, an
    x-step, initial y and u, and a prox (:mod:`csc.core.prox`), on the back end of
    ``opts.backend`` (or ``backend``) for S's device.

    ``joint``: one problem over the batch (the learners: one ρ, estimated FFTW plans so that a
    resumed run repeats them bit for bit, an input-preserving plan for the codes' DFT). The
    workspace's ``sync_every`` is the number of iterations between host reads its loop should
    use (1 on the fused CPU back end, which retires at once)."""
    name = select_backend(opts.backend if backend is None else backend, S.device, what)
    cls, why = _kernel_class(ADMM_KERNELS, name, prox, xstep)
    if cls is not None and name == "numba":
        extra = dict(one_rho=True, planner=fused._planner(0), keep_codes_plan=True) if joint else \
            dict(planner=opts.fftw_planner)
        ws = cls(S, xstep, y.contiguous(), u.contiguous(), prox, opts, max(1, torch.get_num_threads()),
                 penalty_maps=penalty_maps, **extra)
        ws.sync_every = 1
        return ws
    sync = default_sync_interval(opts, S.device)
    ws = (cls or TorchCBPDN)(S, xstep, y, u, prox, opts, freeze=sync > 1, penalty_maps=penalty_maps)
    ws.sync_every = sync
    return _noted(ws, why)


def two_block_workspace(S: torch.Tensor, xstep, K: int, prox, data, opts, *, dual: str = "adjoint",
                        what: str = "the solve", backend: str | None = None):
    """The workspace of the split Ax − y = c, A = (D; I), c = (s; 0) (:mod:`csc.backends.torch_twoblock`)
    for images S (n, H, W), a diagonal ``over_rho`` x-step, K kernels, block 1's prox and block
    0's data term (:class:`csc.core.prox.DataTerm`); ``dual``: SPORCO's dual residual of the
    problem ("adjoint": ρ‖Aᵀ(y_prev − y)‖ over ρ‖Aᵀu‖, ConvL1L1Grd; "plain": ρ‖Aᵀu‖ over ρ‖u‖,
    ConvTwoBlockCnstrnt); ``backend`` replaces ``opts.backend``. Retires converged images at
    once (``sync_every`` 1)."""
    name = select_backend(opts.backend if backend is None else backend, S.device, what)
    cls, why = _kernel_class(TWO_BLOCK_KERNELS, "numba" if name == "numba" else "torch", data, xstep)
    if cls is not None and cls.dual != dual:
        cls, why = None, f"numba has no kernel for {type(data).__name__} with the {dual!r} dual residual"
    if cls is not None:
        ws = cls(S.contiguous(), xstep, K, prox, data, opts, max(1, torch.get_num_threads()))
    else:
        ws = _noted(_TORCH_TWO_BLOCK[dual](S, xstep, K, prox, data, opts), why)
    ws.sync_every = 1
    return ws


def tv_workspace(S: torch.Tensor, prox, opts, wdf, joint: bool = False):
    """The workspace of total-variation denoising (:class:`csc.TVL2Denoise`): the torch loop on
    every device (:class:`csc.backends.torch_tv.TorchTVL2`; no fused kernel), converged images
    retired at once."""
    ws = TorchTVL2(S, prox, opts, wdf, joint)
    name = select_backend(opts.backend, S.device, "the solve")
    if name != "torch":
        ws.backend = f"torch ({name} has no kernel for total-variation denoising)"
    ws.sync_every = 1
    return ws


def fista_workspace(S: torch.Tensor, Df: torch.Tensor, X: torch.Tensor, w, lmbda: float, opts, kernel_size):
    """The workspace of :class:`csc.ConvBPDNFISTA`'s iteration on the back end of ``opts.backend``
    (the fused CPU kernels or the torch loop; ``"compiled"`` runs the torch loop). A multi-channel
    dictionary's DFT (K, C, H, Wr) runs on the torch loop (the fused kernels are single-channel),
    which its ``backend`` says."""
    fused_cpu = use_fused(opts.backend, S.device, "the solve")
    if fused_cpu and Df.ndim == 3:
        from csc.backends.numba_fista import FusedFISTA

        ws = FusedFISTA(S, Df, X, w, lmbda, opts, kernel_size)
        ws.backend = "numba"
        return ws
    ws = TorchFISTA(S, Df, X, w, lmbda, opts, kernel_size)
    ws.backend = "torch (numba has no kernel for a multi-channel dictionary)" if fused_cpu else "torch"
    return ws


def dictionary_ops(method: str, Sf: torch.Tensor, shape, D0: torch.Tensor, cons, fused_cpu: bool, relax: float,
                   masked: tuple[torch.Tensor, object] | None = None):
    """The operators of the learners' dictionary step ``method`` ("pgm" | "cns" | "ism") for image
    DFTs ``Sf`` and initial kernels D0: the fused CPU ones (``fused_cpu``; one per channel for
    multi-channel kernels) or the torch ones (any device); ``masked`` = (images, W²): the masked
    steps, whose arithmetic is the torch back end's on every device, as that of "ism"."""
    from csc.backends.numba_dictstep import FusedConsensusOps, FusedPGMOps, PerChannelOps
    from csc.backends.torch_dictstep import (TorchConsensusOps, TorchISMOps, TorchMaskedConsensusOps,
                                             TorchMaskedPGMOps, TorchPGMOps)

    if method == "ism":
        return TorchISMOps(Sf, shape, relax)

    if masked is not None:
        S, mask2 = masked
        if method == "pgm":
            return TorchMaskedPGMOps(Sf, shape, mask2)
        return TorchMaskedConsensusOps(Sf, shape, relax, S, mask2)
    if not fused_cpu:
        return TorchPGMOps(Sf, shape) if method == "pgm" else TorchConsensusOps(Sf, shape, relax)
    threads = max(1, torch.get_num_threads())
    if method == "pgm":
        make = lambda D, S: FusedPGMOps(D, S, shape, cons, threads)  # noqa: E731
    else:
        make = lambda D, S: FusedConsensusOps(D, S, shape, cons, threads, relax)  # noqa: E731
    return PerChannelOps(make, D0, Sf) if D0.ndim == 4 else make(D0, Sf)

r"""Total-variation denoising (SPORCO ``admm.tvl2.TVL2Denoise``; Rudin et al. 1992, Goldstein &
Osher 2009, Blomgren & Chan 1998 for the vector form), batched, on the ADMM loop of the coding
problems:

.. math::
    \operatorname*{argmin}_x \; \tfrac12 \| W_{\mathrm{df}} (x - s) \|_2^2
    + \lambda \Big\| W_{\mathrm{tv}} \sqrt{(G_r x)^2 + (G_c x)^2} \Big\|_1 ,

G_r, G_c the non-circular first differences along rows and columns, split as Ax − y = 0 with
A = (G_r; G_c) (:mod:`csc.backends.torch_tv` for the iteration); the y-step is the ℓ2 shrink of
each pixel's gradient vector (:class:`csc.core.prox.GroupL2Threshold`), over the channels too
with ``vector=True`` (SPORCO's ``caxis``: vector TV). Six of SPORCO's examples use it as the
low-pass filter of masked data (``cbpdn_md_*``, ``cbpdn_ams_*``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from csc.backends.registry import tv_workspace
from csc.core.admm import PER_IMAGE, ADMMLoop, Coupling
from csc.core.checks import as_float_tensor, check_finite, check_int, check_ndim, check_nonnegative, check_number
from csc.core import sporco_options as so
from csc.core.options import CBPDNOptions
from csc.core.prox import GroupL2Threshold
from csc.core.stats import StatsTable

__all__ = ["TVL2Denoise", "TVL2Options", "TVResult", "TVStats"]


def _weight_from_sporco(w):
    """SPORCO's DFidWeight / TVWeight (H, W) or (H, W, C) → csc's (H, W) or (C, H, W)."""
    arr = np.asarray(w, dtype=np.float64)
    return float(arr) if arr.ndim == 0 else (np.moveaxis(arr, -1, 0) if arr.ndim == 3 else arr)


_NOT_TV = so.refused("not an option of SPORCO's admm.tvl2.TVL2Denoise")
#: SPORCO ``admm.tvl2.TVL2Denoise.Options`` (0.2.2): the ADMM options of :data:`csc.core.sporco_options.CBPDN`
#: without ConvBPDN's own, and the TV options
TVL2 = so.CBPDN.extend("TVL2Denoise", {
    **{name: _NOT_TV for name in ("L1Weight", "NonNegCoef", "NoBndryCross", "AuxVarObj", "fEvalX", "HighMemSolve",
                                  "ReturnX", "LinSolveCheck", "GradWeight")},
    "gEvalY": so.Flag(so.Field("objective_on_y")),
    "MaxGSIter": so.Field("max_gs_iter"),
    "GSTol": so.Field("gs_tol"),
    "DFidWeight": so.Field("dfid_weight", _weight_from_sporco),
    "TVWeight": so.Field("tv_weight", _weight_from_sporco),
})


@dataclass(frozen=True)
class TVL2Options(CBPDNOptions):
    """Options of :class:`TVL2Denoise` (SPORCO ``admm.tvl2.TVL2Denoise.Options``): the ADMM fields of
    :class:`csc.CBPDNOptions` with SPORCO's defaults for this class (relaxation 1.8, adaptive ρ
    off (period 1, τ = 1000, μ = 1.2, ξ = 1 when on), ρ₀ = 2λ + 0.1 when ``rho`` is None, the
    regulariser evaluated on y: ``objective_on_y`` True, SPORCO ``gEvalY``), and

    - ``max_gs_iter`` (``MaxGSIter``, 2), ``gs_tol`` (``GSTol``, 0): the x-step's sweeps;
    - ``dfid_weight`` (``DFidWeight``, 1), ``tv_weight`` (``TVWeight``, 1): W_df and W_tv, scalars
      or arrays broadcasting to the images (``tv_weight`` without a channel axis when ``vector``);
    - ``vector`` (SPORCO's ``caxis`` given): one gradient vector over the channels (vector TV).

    The coding fields without a meaning here (``l1_weight``, ``nonneg``, ``no_boundary_cross``)
    must keep their defaults; ``backend`` runs the torch loop whatever it names.
    ``TVL2Options.from_sporco(opt)`` takes SPORCO's dict (``vector``: SPORCO's ``caxis`` argument).
    """

    relax: float = 1.8
    auto_rho: bool = False
    rsdl_target: float | None = 1.0
    objective_on_y: bool = True
    max_gs_iter: int = 2
    gs_tol: float = 0.0
    dfid_weight: object = 1.0
    tv_weight: object = 1.0
    vector: bool = False

    _sporco: ClassVar[so.SporcoTable] = TVL2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("max_gs_iter", self.max_gs_iter, 1)
        check_number("gs_tol", self.gs_tol, minimum=0)
        for name in ("vector",):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name}: expected a bool, got {getattr(self, name)!r}")
        if self.nonneg or self.no_boundary_cross or not (np.ndim(self.l1_weight) == 0 and float(self.l1_weight) == 1):
            raise ValueError("TVL2Options: l1_weight, nonneg and no_boundary_cross are coding options; leave them")


@dataclass(frozen=True)
class TVStats(StatsTable):
    """Per-iteration statistics of a TV solve (SPORCO's ``TVL2Denoise.IterationStats``)."""

    iteration: np.ndarray
    objective: np.ndarray
    data_fidelity: np.ndarray
    tv: np.ndarray
    primal_residual: np.ndarray
    dual_residual: np.ndarray
    eps_primal: np.ndarray
    eps_dual: np.ndarray
    rho: np.ndarray
    gs_iter: np.ndarray
    gs_relres: np.ndarray
    time: np.ndarray


#: csc statistics field → SPORCO ``TVL2Denoise.IterationStats`` field
SPORCO_TV_STATS_NAMES = {"iteration": "Iter", "objective": "ObjFun", "data_fidelity": "DFid", "tv": "RegTV",
                         "primal_residual": "PrimalRsdl", "dual_residual": "DualRsdl", "eps_primal": "EpsPrimal",
                         "eps_dual": "EpsDual", "rho": "Rho", "gs_iter": "GSIter", "gs_relres": "GSRelRes",
                         "time": "Time"}


@dataclass
class TVResult:
    """Result of :meth:`TVL2Denoise.solve`: ``x`` the denoised images (the input's shape, on its
    device), ``rho`` and ``iterations`` per image (CPU tensors) (per problem: the same for every image with
    ``coupling="sporco"``), ``stats`` (one :class:`TVStats` per problem, or None), ``backend``."""

    x: torch.Tensor
    rho: torch.Tensor
    iterations: torch.Tensor
    stats: list[TVStats] | None
    backend: str = "torch"


class TVL2Denoise:
    r"""ℓ2–TV denoising by ADMM (module docstring; SPORCO ``admm.tvl2.TVL2Denoise``).

    ``TVL2Denoise(lmbda, options).solve(images)``: images (H, W), (B, H, W) (B grey images) or
    (B, C, H, W); each image its own problem (own ρ, residuals and stopping: SPORCO's answer for
    that image alone; an (H, W, C) SPORCO array is one (1, C, H, W) image here), or the whole
    batch one problem with ``coupling="sporco"`` (SPORCO's multi-image array).
    """

    sporco_stats_names = SPORCO_TV_STATS_NAMES

    def __init__(self, lmbda: float, options: TVL2Options | None = None):
        self.options = options if options is not None else TVL2Options()
        if not isinstance(self.options, TVL2Options):
            raise TypeError(f"options: TVL2Denoise takes TVL2Options, got {type(self.options).__name__}")
        self.lmbda = check_nonnegative("lmbda", lmbda)

    def _weight(self, name: str, w, S: torch.Tensor, shape, shape4) -> float | torch.Tensor:
        """A weight option as a float, or a tensor broadcast to the images' ``shape`` and laid out as
        ``shape4`` (n, C or 1, H, W)."""
        if np.ndim(w) == 0 and not isinstance(w, torch.Tensor):
            return check_number(name, w, minimum=0) and float(w)
        t = as_float_tensor(name, w, S.dtype, S.device).detach()
        check_finite(name, t)
        try:
            t = torch.broadcast_to(t, shape)
        except RuntimeError:
            raise ValueError(f"{name}: shape {tuple(t.shape)} does not broadcast to the images' {tuple(shape)}") \
                from None
        return t.reshape(shape4)

    def solve(self, images) -> TVResult:
        """Denoise every image of ``images`` (class docstring)."""
        opts = self.options
        device = torch.device(opts.device) if opts.device is not None else \
            (images.device if isinstance(images, torch.Tensor) else torch.device("cpu"))
        S = as_float_tensor("images", images, opts.dtype, device).detach()
        check_ndim("images", S, (2, 3, 4), "(H, W), (B, H, W) or (B, C, H, W)")
        check_finite("images", S)
        if min(S.shape[-2:]) < 2:
            raise ValueError(f"images: expected at least 2×2 pixels, got {tuple(S.shape[-2:])}")
        shape4 = S.shape if S.ndim == 4 else ((1, 1) if S.ndim == 2 else (S.shape[0], 1)) + tuple(S.shape[-2:])
        S4 = S.reshape(shape4)
        wdf = self._weight("dfid_weight", opts.dfid_weight, S, S.shape, shape4)
        wtv_shape, wtv_shape4 = S.shape, shape4
        if opts.vector and S.ndim == 4:  # one weight per pixel, shared by the channels' vector
            wtv_shape = wtv_shape4 = S.shape[:-3] + (1,) + S.shape[-2:]
        wtv = self._weight("tv_weight", opts.tv_weight, S, wtv_shape, wtv_shape4)
        wtv = wtv.unsqueeze(1) if isinstance(wtv, torch.Tensor) else wtv  # (n, 1, C, H, W): over the gradient axis
        prox = GroupL2Threshold(self.lmbda, wtv, (1, 2) if opts.vector else (1,))
        joint = opts.coupling == "sporco"
        ws = tv_workspace(S4, prox, opts, wdf, joint)
        return self._run(ws, S, S4, prox, joint)

    def _run(self, ws, S, S4, prox, joint: bool) -> TVResult:
        opts, n = self.options, S4.shape[0]
        groups = 1 if joint else n
        loop = ADMMLoop(ws, prox, opts, Coupling(joint=True) if joint else PER_IMAGE, rho0=prox.rho0(opts),
                        sync_every=1, on_retire=None if joint else lambda *a: out.retire(*a))
        out = _TVOutputs(S4, groups, opts.record_stats)
        t0 = time.perf_counter()
        record = None
        if opts.record_stats:
            record = lambda k, idx, row: out.record(k, idx if not joint else torch.zeros(1, dtype=torch.int64),  # noqa: E731
                                                    row.numpy(), ws, loop.row_time - t0)
        loop.run(opts.max_iter, record)
        if joint:
            out.retire(torch.arange(n), ws.x, None, None, loop.rho.expand(n), loop.iters)
        lead = S.shape[:-2] if S.ndim != 4 else S.shape[:1]
        return TVResult(x=out.x.reshape(S.shape), rho=out.rho.reshape(lead) if S.ndim != 2 else out.rho,
                        iterations=out.iters.reshape(lead) if S.ndim != 2 else out.iters,
                        stats=out.stats(), backend=getattr(ws, "backend", "torch"))


class _TVOutputs:
    """The retired images' x, ρ and iteration counts, and the statistics rows of each problem."""

    def __init__(self, S4: torch.Tensor, groups: int, record: bool):
        n = S4.shape[0]
        self.x = torch.zeros_like(S4)
        self.rho = torch.zeros(n, dtype=S4.dtype)  # on the host, as the iteration counts
        self.iters = torch.zeros(n, dtype=torch.int64)
        self.rows = [[] for _ in range(groups)] if record else None

    def retire(self, idx, x, y, u, rho, iters) -> None:
        idx = idx.cpu()
        self.x[idx] = x
        self.rho[idx] = rho.to(self.rho.dtype).cpu()
        self.iters[idx] = iters.cpu()

    def record(self, k: int, idx, rows: np.ndarray, ws, elapsed: float) -> None:
        gi, gr = ws.gs_iter.cpu().numpy(), ws.gs_relres.double().cpu().numpy()
        for j, i in enumerate(idx.tolist()):
            self.rows[i].append((k, *rows[:8, j].tolist(), gi[j], gr[j], elapsed))

    def stats(self) -> list[TVStats] | None:
        if self.rows is None:
            return None
        names = list(SPORCO_TV_STATS_NAMES)
        out = []
        for rows in self.rows:
            cols = np.array(rows, dtype=np.float64).reshape(-1, len(names)).T
            rec = dict(zip(names, cols))
            rec["iteration"], rec["gs_iter"] = rec["iteration"].astype(np.int64), rec["gs_iter"].astype(np.int64)
            out.append(TVStats(**rec))
        return out

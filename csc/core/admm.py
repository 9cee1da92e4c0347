r"""The ADMM iteration of convolutional BPDN, written once for every solver and back end.

The problem, for images s (H×W) and kernels d_k,

.. math::
    \operatorname*{argmin}_x \; \tfrac12 \Big\| \sum_k d_k * x_k - s \Big\|_2^2
    + \lambda \sum_k \| w_k \odot x_k \|_1 ,

is split as x = y with scaled dual u (Boyd et al. 2010; SPORCO ``admm.cbpdn.ConvBPDN``,
Wohlberg 2016). One iteration, in SPORCO's order:

1. x-step :math:`(\hat D^H \hat D + \rho I)\hat x = \hat D^H \hat s + \rho\,\hat v`,
   v = y − u (an :mod:`csc.core.xstep` object);
2. over-relaxation :math:`a = \alpha x + (1-\alpha) y`;
3. y-step :math:`y = \mathcal S_{\lambda w/\rho}(a + u)`, then optional non-negativity and
   zeroing of coefficients whose kernel crosses the image boundary;
4. dual :math:`u \leftarrow u + a - y`;
5. residuals :math:`r = \|x - y\| / \max(\|x\|, \|y\|)`,
   :math:`s = \rho\|y_{prev} - y\| / \|\rho u\|` and tolerances
   :math:`\epsilon = \sqrt{n}\,\epsilon_{abs} / \text{norm} + \epsilon_{rel}` (unnormalised
   with ``std_residuals``);
6. adaptive ρ (residual balancing, Wohlberg 2017): with ξ the residual target, μ the ratio
   and τ the largest factor, ρ ← ρ·m if r > ξμs, ρ ← ρ/m if s > (μ/ξ)r, u ← u·ρ_old/ρ;
7. stop when r < ε_pri and s < ε_dua.

Steps 2–4 and the residual sums are one back-end operation (:meth:`Workspace.ystep`); the
back ends (:mod:`csc.backends.torch_loop`, :mod:`csc.backends.numba_cpu`) hold the
buffers and implement the few operations below, and :class:`ADMMLoop` runs the iteration
on any of them. How images share ρ and the stopping test is a :class:`Coupling`: each
image on its own (:class:`csc.ConvBPDN`), or one problem over the batch (SPORCO's
multi-image semantics, used by the learners), optionally summed over processes.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import Callable, Protocol

import torch

from csc.core.options import CBPDNOptions
from csc.core.prox import Prox, SoftThreshold
from csc.core.rho_policy import SpectralRho
from csc.runtime.sync import host_bool, to_host

__all__ = ["Coupling", "PER_IMAGE", "Workspace", "ADMMLoop", "residuals", "rho_factor", "initial_rho",
           "per_image_update", "residuals_of", "rho_factor_of", "step_constants", "updates_rho",
           "default_sync_interval"]


@dataclass(frozen=True)
class Coupling:
    """How the images of a batch share ρ, residuals and the stopping test.

    ``joint=False``: every image is its own problem (own ρ, residuals and stopping;
    converged images retire). ``joint=True``: the batch is one problem (one ρ, residual
    norms summed over its images, as SPORCO solves a multi-image array); ``all_reduce``
    then sums those norms over processes too and ``total_images`` is the number of images
    of the whole problem (for the √n of the absolute tolerance).
    """

    joint: bool = False
    all_reduce: Callable[[torch.Tensor], torch.Tensor] | None = None
    total_images: int | None = None

    def reduce(self, per_image: torch.Tensor) -> torch.Tensor:
        """(n, m) per-image sums → (groups, m)."""
        if not self.joint:
            return per_image
        total = per_image.sum(0, keepdim=True)
        return total if self.all_reduce is None else self.all_reduce(total)

    def expand(self, per_group: torch.Tensor, n: int) -> torch.Tensor:
        """(groups, …) → (n, …) per image."""
        return per_group.expand(n, *per_group.shape[1:]) if self.joint else per_group

    def variables(self, n: int, per_image: int) -> int:
        """Number of variables of one problem, for the absolute tolerance."""
        if not self.joint:
            return per_image
        return (self.total_images or n) * per_image


PER_IMAGE = Coupling()


class Workspace(Protocol):
    """What a back end provides to :class:`ADMMLoop` (buffers for n working images)."""

    n: int
    dtype: torch.dtype
    device: torch.device
    variables_per_image: int  # K·H·W

    def xstep(self, rho: torch.Tensor, want_fidelity: bool) -> None:
        """x ← the x-step solution for v = y − u, per image ρ (n,)."""

    def ystep(self, thr: torch.Tensor, want_l1: bool, may_rescale: bool) -> torch.Tensor:
        """Relaxation, y-step (threshold λ/ρ per image, (n,)), dual step; returns per-image
        (n, 6) sums ‖x‖², ‖y‖², ‖u‖², ‖x − y‖², ‖y_prev − y‖², Σ|w·x| (or on y); a two-block
        split Ax − y = c returns (n, 7): ‖Ax‖², ‖y‖², ‖Aᵀu‖², ‖Ax − y − c‖²,
        ‖Aᵀ(y_prev − y)‖², the ℓ1 term and ‖c‖² (and has ``constraints_per_image``, y's size)."""

    def fidelity(self) -> torch.Tensor:
        """½‖Σ_k d_k * x_k − s‖² per image (n,) (on y with ``objective_on_y``)."""

    def penalty(self) -> torch.Tensor:
        """Problems with a quadratic penalty only (an x-step with ``penalty``), after
        :meth:`fidelity`: the penalty ½ x̂ᴴ diag(P) x̂ per image (n,), on the same variable."""

    def rescale(self, factor: torch.Tensor | None) -> None:
        """u ← u / factor per image after ρ ← ρ·factor (None: ρ unchanged)."""

    def hold(self, frozen: torch.Tensor | None) -> None:
        """Start of an iteration with ``sync_every`` > 1: the images in ``frozen`` keep their
        y, u, x through it (a back end may restore them in its y-step; most do in :meth:`finish`)."""

    def finish(self, frozen: torch.Tensor | None) -> None:
        """End of an iteration: images in ``frozen`` get their previous y, u, x back."""

    def take(self, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(y, x, u) of the images in ``mask`` (true u, after any pending rescale)."""

    def keep(self, mask: torch.Tensor) -> None:
        """Drop the images not in ``mask`` from the working set."""


def select_images(mask: torch.Tensor, *maps: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The images of ``mask`` of each (n, ...) map: the maps themselves when all are selected.
    ``mask`` is a CPU bool tensor (the loop's host copy), so the test reads no device value."""
    if bool(mask.all()):
        return maps
    return tuple(m[mask] for m in maps)


def initial_rho(opts: CBPDNOptions, lmbda: float) -> float:
    """ρ₀: ``opts.rho``, or SPORCO's default 50λ + 1 (:meth:`csc.core.prox.Prox.rho0` of the ℓ1 norm)."""
    return SoftThreshold(lmbda).rho0(opts)


def default_sync_interval(opts: CBPDNOptions, device: torch.device) -> int:
    """Iterations between host reads of a per-image solve: ``opts.sync_interval``, else 1
    on the CPU and 10 elsewhere (results do not depend on it)."""
    return opts.sync_interval or (1 if device.type == "cpu" else 10)


def step_constants(opts, xi: float, n: int, n_dual: int | None = None, dtype=torch.float64,
                   device=None) -> torch.Tensor:
    """The stopping and ρ-update constants of ``opts`` for problems of ``n`` variables (``n_dual``
    for the dual tolerance) and residual target ``xi``, as one tensor for :func:`residuals_of`
    and :func:`rho_factor_of` (made once per loop: reading it needs no host value, and a
    compiled step gets the same kernel whatever the options): √n·ε_abs, √n_dual·ε_abs, ε_rel,
    std_residuals, ξ, ξμ, μ/ξ, τ, auto_scaling. Products of constants are formed here in
    double precision, as the Python-float expressions they replace were. Options classes
    without the ρ-update fields (callers of :func:`residuals` only) get neutral ones. The
    tensor is cached per value: a solver or learner step copies it to its device once."""
    sq, sqd = math.sqrt(n), math.sqrt(n if n_dual is None else n_dual)
    mu, tol = getattr(opts, "rsdl_ratio", 1.0), opts.abs_stop_tol
    vals = (sq * tol, sqd * tol, opts.rel_stop_tol, float(bool(opts.std_residuals)), xi, xi * mu, mu / xi,
            getattr(opts, "rho_scaling", 1.0), float(bool(getattr(opts, "auto_scaling", True))))
    return _constants(vals, dtype, None if device is None else torch.device(device))


@functools.lru_cache(maxsize=64)
def _constants(vals: tuple, dtype: torch.dtype, device: torch.device | None) -> torch.Tensor:
    return torch.tensor(vals, dtype=dtype, device=device)


def norm_columns(sums: torch.Tensor, two_block: bool) -> torch.Tensor:
    """The y-step's squared sums that enter the residuals: ‖x‖², ‖y‖², ‖u‖², ‖x − y‖²,
    ‖y_prev − y‖² (columns 0–4) and, for a two-block split, ‖c‖² (column 6)."""
    return torch.cat((sums[:, :5], sums[:, 6:7]), 1) if two_block else sums[:, :5]


def residuals_of(norms: torch.Tensor, rho: torch.Tensor, c: torch.Tensor):
    """r, s, ε_pri, ε_dua per problem from ``norms`` (g, 5 or 6) and ρ (g,) with the constants
    ``c`` of :func:`step_constants` (see :func:`residuals`)."""
    nx, ny, nu, r, d = norms[:, :5].unbind(1)
    s = rho * d
    rn, sn = torch.maximum(nx, ny), rho * nu
    if norms.shape[1] > 5:
        rn = torch.maximum(rn, norms[:, 5])
    std, one = c[3] != 0, torch.ones_like(rn)
    rn1, sn1 = torch.where(rn == 0, one, rn), torch.where(sn == 0, one, sn)
    return (torch.where(std, r, r / rn1), torch.where(std, s, s / sn1),
            torch.where(std, c[0] + rn * c[2], c[0] / rn1 + c[2]),
            torch.where(std, c[1] + sn * c[2], c[1] / sn1 + c[2]))


def rho_factor_of(r: torch.Tensor, s: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """The adaptive-ρ factor per problem with the constants ``c`` of :func:`step_constants`
    (see :func:`rho_factor`), for an iteration that updates ρ."""
    xi, tau = c[4], c[7]
    ratio = torch.where(r > s * xi, r / (s * xi), (s * xi) / r)
    m = torch.clamp(torch.sqrt(ratio), max=tau)
    m = torch.where((r == 0) | (s == 0), tau, m)
    m = torch.where(c[8] != 0, m, tau)  # without auto_scaling the factor is τ
    one = torch.ones_like(m)
    return torch.where(r > c[5] * s, m, torch.where(s > c[6] * r, one / m, one))


def updates_rho(opts, k: int) -> bool:
    """Whether iteration k updates ρ (adaptive ρ, not the first, every ``rho_period``)."""
    return bool(opts.auto_rho) and k != 0 and (k + 1) % opts.rho_period == 0


def residuals(opts, norms: torch.Tensor, rho: torch.Tensor, n: int, n_dual: int | None = None):
    """r, s, ε_pri, ε_dua per problem from ``norms`` (g, 5) = ‖x‖, ‖y‖, ‖u‖, ‖x − y‖,
    ‖y_prev − y‖ and ρ (g,), for problems of ``n`` variables (step 5 of the module
    docstring). ``opts`` has ``std_residuals``, ``abs_stop_tol``, ``rel_stop_tol``.

    A split Ax − y = c (SPORCO ``ADMMTwoBlockCnstrnt``) gives ‖Ax‖, ‖y‖, ‖Aᵀu‖, ‖Ax − y − c‖,
    ‖Aᵀ(y_prev − y)‖ and, as a sixth column, ‖c‖ (the primal norm is the largest of ‖Ax‖,
    ‖y‖, ‖c‖); ``n`` is then the number of constraints (y's size) and ``n_dual`` x's size."""
    c = step_constants(opts, 1.0, n, n_dual, rho.dtype, rho.device)
    return residuals_of(norms, rho, c)


def rho_factor(opts, k: int, r: torch.Tensor, s: torch.Tensor, xi: float) -> torch.Tensor | None:
    """The adaptive-ρ factor per problem (ρ ← ρ·f, u ← u/f) at iteration k, or None when ρ
    is not updated then (step 6 of the module docstring; SPORCO ``ADMM.update_rho``)."""
    if not updates_rho(opts, k):
        return None
    return rho_factor_of(r, s, step_constants(opts, xi, 1, dtype=r.dtype, device=r.device))


def per_image_update(sums: torch.Tensor, rho: torch.Tensor, frozen: torch.Tensor, iters: torch.Tensor,
                     c: torch.Tensor, update: bool, freeze: bool, two_block: bool = False):
    """The bookkeeping of one iteration of per-image problems, from the y-step's sums: the
    residuals and tolerances (:func:`residuals_of`), which images converged, the ρ factor
    (None when ``update`` is False; 1 for frozen images when ``freeze``, so that their ρ and
    dual stay as they are) and the new ρ, the iteration counts and the frozen flags. Returns (r, s, ε_pri, ε_dua, f,
    converged, ρ, iters, frozen). A back end may run it compiled (one kernel instead of ~40
    small ones: :mod:`csc.backends.compiled`)."""
    norms = norm_columns(sums, two_block).sqrt().to(rho.dtype)
    r, s, epri, edua = residuals_of(norms, rho, c)
    converged = (r < epri) & (s < edua)
    f = None
    if update:
        f = rho_factor_of(r, s, c)
        if freeze:
            f = torch.where(frozen, torch.ones_like(f), f)
        rho = rho * f
    iters = iters + (~frozen).to(torch.int64)
    return r, s, epri, edua, f, converged, rho, iters, frozen | converged


#: statistics columns of :meth:`ADMMLoop.run`'s recorder, in order; a loop with a
#: ``penalty`` weight appends the penalty term as a ninth
STAT_COLUMNS = ("objective", "data_fidelity", "l1", "primal_residual", "dual_residual",
                "eps_primal", "eps_dual", "rho")


class ADMMLoop:
    """The CBPDN ADMM iteration (module docstring) over a :class:`Workspace`.

    State that outlives one :meth:`run` (the learners call it once per outer iteration):
    ρ per problem, the iteration counter ``k`` (for the ρ update period), and per working
    image its batch position ``idx``, iteration count ``iters`` and ``frozen`` flag.

    ``sync_every`` > 1 checks convergence on the host every that many iterations: images
    that converge in between are frozen (their y, u, x and ρ stop changing) and retire at the
    next check, so results do not depend on it (the workspace must keep the previous x:
    ``freeze=True``). A joint problem is frozen as a whole and its iteration counter ``k``
    set back at the check to the iterations it ran.
    ``on_retire(idx, y, x, u, rho, iters)`` receives the images that leave the working set.
    ``penalty`` (problems with a quadratic term (μ/2)·x̂ᴴ diag(P) x̂ in the x-step, e.g.
    :class:`csc.ConvElasticNet`): its weight μ; the objective then adds μ times the
    workspace's :meth:`Workspace.penalty`, recorded as a ninth column.

    ``prox``: the y-step's regulariser (:mod:`csc.core.prox`; a number λ stands for the plain
    ℓ1 norm :class:`~csc.core.prox.SoftThreshold`). The loop takes from it the y-step's
    parameters at each ρ (:meth:`~csc.core.prox.Prox.thresholds`: λ/ρ, or (λ/ρ, μ/ρ) for
    joint sparsity, or a radius independent of ρ), the objective's terms
    (:attr:`~csc.core.prox.Prox.terms`: the workspace returns their values after the
    residual sums; the first is the third statistics column, ``l1`` for the ℓ1 norm, the
    others are appended to the rows), and the defaults of ρ₀ and ξ. A workspace's
    ``fidelity_weight`` (default 1) weights its :meth:`Workspace.fidelity` in the objective (0
    for a data term that is a constraint: :class:`csc.core.prox.L2BallData`).
    """

    def __init__(self, ws: Workspace, prox: Prox | float, opts: CBPDNOptions, coupling: Coupling = PER_IMAGE,
                 rho0: float | None = None, sync_every: int = 1,
                 on_retire: Callable[..., None] | None = None, penalty: float | None = None):
        if not isinstance(prox, Prox):
            prox = SoftThreshold(float(prox))
        self.ws, self.prox, self.opts, self.coupling = ws, prox, opts, coupling
        self.weights = tuple(float(wt) for _, wt in prox.terms)
        self.penalty = None if penalty is None else float(penalty)
        # the data term's weight in the objective (a two-block constraint's: 0, its value a violation)
        self.fid_weight = float(getattr(ws, "fidelity_weight", 1.0))
        # a two-block split (``constraints_per_image``) returns ‖c‖² as its seventh sum
        self.two_block = getattr(ws, "constraints_per_image", None) is not None
        self.extra0 = 7 if self.two_block else 6
        n, dev = ws.n, ws.device
        # per-image problems keep ρ in the maps' dtype; a joint problem's scalars are float64
        self.scalar_dtype = torch.float64 if coupling.joint else ws.dtype
        groups = 1 if coupling.joint else n
        rho0 = prox.rho0(opts) if rho0 is None else float(rho0)
        self.rho = torch.full((groups,), rho0, dtype=self.scalar_dtype, device=dev)
        self.xi = prox.rsdl_target(opts)
        K_HW = ws.variables_per_image
        n_pri = getattr(ws, "constraints_per_image", K_HW)
        self.consts = step_constants(opts, self.xi, coupling.variables(n, n_pri), coupling.variables(n, K_HW),
                                     self.scalar_dtype, dev)
        # a back end may run the per-image bookkeeping compiled (``ws.bookkeeping``: the same function)
        self._update = getattr(ws, "bookkeeping", None) or per_image_update
        self.k = 0
        self.idx = torch.arange(n, device=dev)
        self.iters = torch.zeros(n, dtype=torch.int64, device=dev)
        self.frozen = torch.zeros(n, dtype=torch.bool, device=dev)
        self.sync_every = max(1, int(sync_every))
        self.on_retire = on_retire
        self.last: torch.Tensor | None = None
        self.idx_host = torch.arange(n)  # the working images' batch positions, on the host
        self._pending: list[tuple] = []  # statistics rows buffered on the device
        self.row_time = 0.0  # host clock when the row being recorded was computed
        self.spectral = self._spectral_policy(ws, opts, coupling)

    @staticmethod
    def _spectral_policy(ws, opts, coupling: Coupling) -> SpectralRho | None:
        """The spectral ρ policy's state (:mod:`csc.core.rho_policy`) when ``opts.rho_policy`` is
        ``"spectral"`` and ρ is adaptive, else None (residual balancing). It needs per-image
        problems and a workspace with ``iterate()``; anything else is refused by name."""
        if getattr(opts, "rho_policy", "residual") != "spectral" or not opts.auto_rho:
            return None
        if coupling.joint:
            raise ValueError("rho_policy='spectral' runs per-image problems only; joint (learner) "
                             "problems use rho_policy='residual'")
        if not hasattr(ws, "iterate"):
            raise ValueError(f"rho_policy='spectral': the {type(ws).__name__} workspace does not expose its "
                             "iterate; use rho_policy='residual'")
        return SpectralRho(opts.rho_period, opts.rho_scaling)

    @property
    def n(self) -> int:
        return self.ws.n

    def run(self, max_iter: int, record: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None) -> bool:
        """Run up to ``max_iter`` iterations; returns whether every problem converged.

        ``record(k, idx, row)`` receives the statistics (:data:`STAT_COLUMNS` × problems)
        of each iteration when given (``idx``: the problems' batch positions, on the CPU).
        Joint problems stop at convergence and keep their state; per-image problems retire
        (``on_retire``) as they converge, and the rest retire after the last iteration when
        ``on_retire`` is set.

        Host reads (:func:`csc.runtime.sync.to_host`): per-image problems make one every
        ``sync_every`` iterations (the frozen flags and the statistics rows buffered on the
        device since the last one, together), and so do joint problems with ``sync_every``
        > 1; with ``sync_every`` = 1 a joint problem reads its stopping test after every
        iteration but the last (a joint run that reaches ``max_iter`` then returns False
        without reading its last test), and ``record`` gets its rows at once.
        """
        joint, start = self.coupling.joint, (self.k, self.iters[:1].clone())
        for it in range(max_iter):
            if self.n == 0:
                break
            converged = self.step(record)
            last = it + 1 == max_iter
            at_sync = (it + 1) % self.sync_every == 0 or last
            if joint and self.sync_every == 1:
                if not last and host_bool(converged.all(), "admm.converged"):
                    return True
            elif joint and at_sync:
                if self._joint_sync_point(record, *start):
                    return True
            elif at_sync:
                self._sync_point(record)
        if self.on_retire is not None and self.n:
            self._retire(torch.ones(self.n, dtype=torch.bool))
        return self.n == 0

    def step(self, record=None) -> torch.Tensor:
        """One iteration; returns whether each problem converged in it (on the device: no
        host read). Per-image statistics rows are buffered on the device until the next
        :meth:`_sync_point`; a joint problem's row goes to ``record`` at once."""
        ws, opts, cp, n = self.ws, self.opts, self.coupling, self.n
        rho_img = cp.expand(self.rho, n).to(ws.dtype)
        want = record is not None
        freeze = self.sync_every > 1
        if freeze:
            ws.hold(self.frozen)
        ws.xstep(rho_img, want and not opts.objective_on_y)
        thr = cp.expand(self.prox.thresholds(self.rho), n).to(ws.dtype)
        spectral = self.spectral
        update = updates_rho(opts, self.k) if spectral is None else spectral.updates(self.k)
        sums = ws.ystep(thr, want, update)
        if cp.joint:
            converged = self._joint_update(sums, record, update, freeze)
        else:
            r, s, epri, edua, f, converged, rho, iters, frozen = self._update(
                sums, self.rho, self.frozen, self.iters, self.consts, update and spectral is None, freeze,
                self.two_block)
            if spectral is not None:
                f, rho = self._spectral_step(freeze)
            if want:
                self._pending.append((self.k, self._stats_row(sums, r, s, epri, edua), ~self.frozen,
                                      time.perf_counter()))
            self.rho = rho
            ws.rescale(f)
            ws.finish(self.frozen if freeze else None)
            self.iters, self.frozen = iters, frozen
        self.k += 1
        return converged

    def _spectral_step(self, freeze: bool) -> tuple[torch.Tensor | None, torch.Tensor]:
        """The spectral policy's factor of this iteration (None: ρ unchanged; 1 for frozen
        images) and the new ρ."""
        f = self.spectral.observe(self.k, self.ws, self.rho)
        if f is None:
            return None, self.rho
        if freeze:
            f = torch.where(self.frozen, torch.ones_like(f), f)
        return f, self.rho * f

    def _joint_update(self, sums: torch.Tensor, record, update: bool, freeze: bool) -> torch.Tensor:
        """The bookkeeping of one iteration of a joint problem (one ρ, residual norms summed
        over the batch, and over processes): its statistics row, ρ, the dual's rescale."""
        ws, cp, n = self.ws, self.coupling, self.n
        sums = cp.reduce(sums)
        norms = norm_columns(sums, self.two_block).sqrt().to(ws.dtype).to(self.scalar_dtype)
        r, s, epri, edua = residuals_of(norms, self.rho, self.consts)
        if record is not None:
            row = self._stats_row(sums, r, s, epri, edua)
            if self.sync_every == 1:
                self.row_time = time.perf_counter()
                record(self.k, self.idx_host, row)
            else:
                self._pending.append((self.k, row, ~self.frozen[:row.shape[1]], time.perf_counter()))
        f = rho_factor_of(r, s, self.consts) if update else None
        converged = (r < epri) & (s < edua)
        if f is not None:
            if freeze:  # a frozen problem keeps its ρ and dual: factor 1
                f = torch.where(self.frozen[:1], torch.ones_like(f), f)
            self.rho = self.rho * f
        ws.rescale(None if f is None else cp.expand(f, n).to(ws.dtype))
        ws.finish(self.frozen if freeze else None)
        self.iters += (~self.frozen).to(torch.int64)
        if freeze:
            self.frozen = self.frozen | converged.expand(n)
        return converged

    def _stats_row(self, sums, r, s, epri, edua) -> torch.Tensor:
        """The recorded statistics (:data:`STAT_COLUMNS`, and the penalty) × problems."""
        ws, cp = self.ws, self.coupling
        fid = cp.reduce(ws.fidelity().unsqueeze(1))[:, 0].to(self.scalar_dtype)
        l1 = sums[:, 5].to(ws.dtype).to(self.scalar_dtype)
        reg, tail = self.weights[0] * l1, []
        if self.penalty is not None:
            pen = cp.reduce(ws.penalty().unsqueeze(1))[:, 0].to(self.scalar_dtype)
            reg, tail = reg + self.penalty * pen, [pen]  # SPORCO: obj = dfd + (λ·l1 + μ·pen)
        for j, m in enumerate(self.weights[1:]):
            g = sums[:, self.extra0 + j].to(ws.dtype).to(self.scalar_dtype)
            reg, tail = reg + m * g, tail + [g]
        return torch.stack([self.fid_weight * fid + reg, fid, l1, r, s, epri, edua, self.rho] + tail)

    def _sync_point(self, record) -> None:
        """The one host read of a per-image run per ``sync_every`` iterations: the frozen
        flags and the buffered statistics rows (with each row's active flags) in one
        transfer; records the rows of the images that were still active, retires the
        frozen images."""
        n, pending = self.n, self._pending
        parts = [self.frozen.to(self.scalar_dtype)]
        for _, row, active, _ in pending:
            parts += [row.reshape(-1), active.to(self.scalar_dtype)]
        host = to_host(torch.cat(parts) if len(parts) > 1 else parts[0], "admm.sync")
        frozen, pos = host[:n] != 0, n
        for k, row, _, t in pending:
            m = row.shape[0]
            vals = host[pos:pos + m * n].reshape(m, n)
            active = host[pos + m * n:pos + (m + 1) * n] != 0
            pos += (m + 1) * n
            self.row_time = t
            record(k, self.idx_host[active], vals[:, active])
        self._pending = []
        self._retire(frozen)

    def _joint_sync_point(self, record, k_start: int, iters_start: torch.Tensor) -> bool:
        """The host read of a joint problem with ``sync_every`` > 1: whether it converged
        (then it is unfrozen, at its converged iterate), the iterations it ran since
        ``run`` began (``k`` is set to ``k_start`` plus them) and the buffered rows (those
        of iterations it ran go to ``record``)."""
        pending = self._pending
        parts = [self.frozen[:1].to(torch.float64), (self.iters[:1] - iters_start).to(torch.float64)]
        for _, row, active, _ in pending:
            parts += [row.reshape(-1).to(torch.float64), active[:1].to(torch.float64)]
        host = to_host(torch.cat(parts), "admm.sync")
        converged, pos = bool(host[0] != 0), 2
        for k, row, _, t in pending:
            m = row.numel()
            if host[pos + m] != 0:
                self.row_time = t
                record(k, self.idx_host, host[pos:pos + m].reshape(row.shape).to(row.dtype))
            pos += m + 1
        self._pending = []
        self.k = k_start + int(host[1])
        if converged:
            self.frozen.zero_()
        return converged

    def _retire(self, done: torch.Tensor) -> None:
        """Retire the images of the host mask ``done`` (a CPU bool tensor: no host read)."""
        if not bool(done.any()):
            return
        y, x, u = self.ws.take(done)
        if self.on_retire is not None:
            sel = done.nonzero().flatten().to(self.idx.device, non_blocking=True)
            self.on_retire(self.idx_host[done].to(self.idx.device, non_blocking=True), y, x, u,
                           self.rho.index_select(0, sel), self.iters.index_select(0, sel))
        keep = ~done
        self.ws.keep(keep)
        ksel = keep.nonzero().flatten().to(self.idx.device, non_blocking=True)
        self.idx, self.iters, self.frozen, self.rho = (t.index_select(0, ksel)
                                                       for t in (self.idx, self.iters, self.frozen, self.rho))
        self.idx_host = self.idx_host[keep]
        if self.spectral is not None:
            self.spectral.keep(keep)

r"""The dictionary steps of batch dictionary learning, each written once over back-end operations.

With the codes y fixed, the dictionary step solves (SPORCO ``ccmod``)

.. math::
    \operatorname*{argmin}_{d} \; \tfrac12 \sum_j \Big\| \sum_k d_k * y_{j,k} - s_j \Big\|_2^2
    \quad \text{s.t.} \quad d_k \in C \;\; (\text{support } kh\times kw,\ \|d_k\|_2 = 1,
    \text{ optionally zero mean or non-negative}),

by one of two methods, both with state carried from one outer iteration to the next:

- :class:`PGMDictStep` — SPORCO ``pgm.ccmod.ConvCnstrMOD``: FISTA (Beck & Teboulle 2009)
  with step 1/L, :math:`d \leftarrow P_C(\hat y - \nabla/L)`, momentum
  :math:`t' = (1 + \sqrt{1 + 4t^2})/2`, :math:`\hat y \leftarrow \hat x + \tfrac{t-1}{t'}(\hat x - \hat x_{prev})`,
  stopping when :math:`\|\hat x - \hat y_{prev}\|^2` falls below ``rel_stop_tol``;
- :class:`ConsensusDictStep` — SPORCO ``admm.ccmod.ConvCnstrMOD_Consensus``: ADMM consensus
  over the images (Šorel & Šroubek 2016): per image :math:`(\hat Z_j^H \hat Z_j + \rho I)\hat x_j
  = \hat Z_j^H \hat s_j + \rho(\hat g - \hat u_j)`, relaxation, :math:`g = P_C(\mathrm{mean}_j(a_j + u_j))`,
  :math:`u_j \leftarrow u_j + a_j - g`, residuals and adaptive ρ as in :mod:`csc.core.admm`.

The arithmetic lives in back-end objects (:mod:`csc.backends.torch_dictstep` for any
device, :mod:`csc.backends.numba_dictstep` for the fused CPU kernels); the algorithms
above, their statistics, stopping and state are here only.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from csc.runtime.sync import host_bool, to_host
from csc.core.admm import residuals, rho_factor
from csc.learn.constraints import KernelConstraint

__all__ = ["PGMDictStep", "ConsensusDictStep", "ISMDictStep", "MaskedConsensusDictStep", "constraint_violation"]


def l2(t: torch.Tensor) -> torch.Tensor:
    """‖t‖₂ over all entries, a float64 0-d tensor where t is (no host read; the norm is
    taken in t's dtype, as ``float(...)`` of it was)."""
    return t.square().sum().sqrt().to(torch.float64)


def constraint_violation(D: torch.Tensor, cons: KernelConstraint) -> torch.Tensor:
    """‖P_C(D) − D‖ of the cropped kernels D (K, kh, kw) (SPORCO's ``Cnstr``)."""
    return l2(cons.project(D) - D)


class _DictStep:
    """What both dictionary steps share: the back end ``ops`` and the state they keep."""

    _STATE = ("D", "k")

    def set_codes(self, cb) -> None:
        self.ops.set_codes(cb)

    def dft(self) -> torch.Tensor:
        return self.ops.dft()

    def padded(self) -> torch.Tensor:
        return self.ops.padded()

    def state(self) -> dict[str, Any]:
        return {**{name: getattr(self, name) for name in self._STATE}, **self.ops.state()}

    def load_state(self, st) -> None:
        self.D = st["D"].to(self.D)
        for name in self._STATE[1:]:
            setattr(self, name, type(getattr(self, name))(st[name]))
        self.ops.load(self.D, st)


class PGMDictStep(_DictStep):
    """FISTA dictionary step (module docstring) over back-end operations ``ops``:
    ``gradient_step(1/L)`` (the point P_C projects), ``extrapolate(D, Dprev, coef)`` (the
    new DFT, momentum and the residual), ``set_codes``, ``dft``, ``padded``, ``state``, ``load``."""

    _STATE = ("D", "t", "k")

    def __init__(self, ops, D0: torch.Tensor, opts, cons: KernelConstraint):
        self.ops, self.opts, self.cons = ops, opts, cons
        self.L = float(opts.L) if opts.L is not None else 1.0
        self.D = D0
        self.t = 1.0
        self.k = 0
        if opts.backtrack is not None:  # L changes: kept in checkpoints
            self._STATE = ("D", "t", "k", "L")
        ops.start(D0)

    def iterate(self, n: int) -> dict[str, Any]:
        """Up to n iterations; the last one's statistics (floats, or 0-d device tensors that
        the caller reads with the rest of its row: :func:`csc.learn.coding.read_row`). The
        stopping test reads the device only when another iteration would follow."""
        row: dict[str, Any] = {}
        for i in range(n):
            row = self.step()
            if i + 1 < n and _host_float(row["d_residual"], "pgm.stop") < self.opts.rel_stop_tol:
                break
        return row

    def step(self) -> dict[str, Any]:
        """One iteration (no host read); its statistics: ``constraint``, ``d_L`` and the
        squared fixed-point residual ``d_residual`` ‖x̂ − ŷ_prev‖² (the stopping test's)."""
        Dprev = self.D
        row: dict[str, Any] = {}
        if self.opts.backtrack is None:
            self.D = self.cons.project(self.ops.gradient_step(1.0 / self.L))
        else:
            self.D, row = self._line_search()
        tprv = self.t
        self.t = self._momentum(tprv)
        rsdl = self.ops.extrapolate(self.D, Dprev, (tprv - 1.0) / self.t)
        self.k += 1
        return dict(constraint=constraint_violation(self.D, self.cons), d_L=self.L, d_residual=rsdl, **row)

    def _line_search(self) -> tuple[torch.Tensor, dict[str, Any]]:
        """Standard backtracking (SPORCO ``BacktrackStandard.update`` without its y-step): from
        one gradient, L ← γ_u L until F(x) ≤ Q_L(x, y) (one host read per trial); the kernels
        and the statistics F, Q and the number of trials."""
        o = self.opts
        self.ops.gradient()
        for nbt in range(1, o.backtrack_max_iter + 1):
            D = self.cons.project(self.ops.descend(1.0 / self.L))
            f, fy, lin, dxy2 = to_host(self.ops.backtrack_terms(D), "pgm.backtrack").tolist()
            F, Q = f, fy + lin + self.L / 2.0 * dxy2
            if F <= Q:
                break
            self.L *= o.gamma_u
        return D, dict(d_F_backtrack=F, d_Q_backtrack=Q, d_backtrack_iterations=float(nbt))

    def _momentum(self, t: float) -> float:
        """The next momentum coefficient (SPORCO ``pgm.momentum``): Nesterov's from t, or the
        linear ones from the iteration count k."""
        o = self.opts
        if o.momentum == "nesterov":
            return 0.5 * float(1.0 + math.sqrt(1.0 + 4.0 * t ** 2))
        a = o.momentum_b if o.momentum == "linear" else o.momentum_a
        return (self.k + a) / o.momentum_b


class ConsensusDictStep(_DictStep):
    """ADMM consensus dictionary step (module docstring) over back-end operations ``ops``:
    ``consensus_mean(rho)`` (x-step, relaxation, the mean P_C projects), ``dual_update(D)``
    (u ← u + a − g; returns ‖x − g‖, ‖u‖, ‖x‖), ``divide_dual(f)``, ``set_codes``, ``dft``,
    ``padded``, ``state``, ``load``."""

    _STATE = ("D", "rho", "k")

    def __init__(self, ops, D0: torch.Tensor, opts, cons: KernelConstraint, n_images: int, shape,
                 U0: torch.Tensor | None = None):
        self.ops, self.opts, self.cons = ops, opts, cons
        self.rho = float(opts.rho) if opts.rho is not None else 1.0
        self.D = D0
        self.k = 0
        self.nb = int(n_images)
        self.n = self.nb * math.prod(D0.shape[:-2]) * shape[0] * shape[1]  # SPORCO's Nx (channels too)
        if U0 is None:
            ops.start(D0, self.rho)
        else:
            ops.start(D0, self.rho, U0)

    def iterate(self, n: int) -> dict[str, Any]:
        """Up to n iterations; the last one's statistics (as :meth:`PGMDictStep.iterate`).
        Host reads: the adaptive-ρ factor when ρ may change, the stopping test when another
        iteration would follow."""
        row: dict[str, Any] = {}
        for i in range(n):
            row, done, _ = self.step()
            if i + 1 < n and host_bool(done, "cns.stop"):
                break
        return row

    def step(self) -> tuple[dict[str, Any], torch.Tensor, tuple]:
        """One iteration: (its statistics; the stopping test r < ε_pri and s < ε_dua as a 0-d
        bool tensor; the tolerances (ε_pri, ε_dua)). Reads the device only for the adaptive-ρ
        factor when ρ may change."""
        rho, Dprev = self.rho, self.D
        self.D = self.cons.project(self.ops.consensus_mean(rho))
        r, s, epri, edua = _residuals(self.opts, self._norms(Dprev), rho, self.n)
        row = dict(constraint=constraint_violation(self.D, self.cons), d_primal_residual=r,
                   d_dual_residual=s, d_rho=rho)
        rsf = _rho_update(self.opts, self.k, r, s)
        if rsf != 1.0:
            self.rho *= rsf
            self.ops.divide_dual(rsf)
        self.k += 1
        return row, (r < epri) & (s < edua), (epri, edua)

    def _norms(self, Dprev: torch.Tensor) -> tuple:
        """The dual step; then ‖X‖, √B‖G‖, ‖U‖, ‖X − G‖ and the unscaled dual norm
        √B‖G_prev − G‖ (SPORCO ``ADMMConsensus.rsdl_*``)."""
        nxg, nu, nx = self.ops.dual_update(self.D)
        nb = math.sqrt(self.nb)
        return nx, nb * l2(self.D), nu, nxg, nb * l2(Dprev - self.D)


class ISMDictStep(ConsensusDictStep):
    r"""The ADMM dictionary step with one x for all images (SPORCO ``admm.ccmod.ConvCnstrMOD_IterSM``,
    ``dmethod='ism'``): :math:`(\sum_j \hat Z_j^H \hat Z_j + \rho I)\hat x = \sum_j \hat Z_j^H \hat s_j
    + \rho\,\mathrm{DFT}(y - u)`, :math:`a = \alpha x + (1-\alpha) y`, :math:`y = P_C(a + u)`,
    :math:`u \mathrel{+}= a - y`, over :class:`csc.backends.torch_dictstep.TorchISMOps`; the
    residuals of SPORCO's ``ADMMEqual`` (the consensus' with one block), u starting at y₀ (SPORCO's
    ``uinit``). ``constraint`` is SPORCO's for this class, ‖P_C(x) − x‖ of the padded x."""

    def __init__(self, ops, D0: torch.Tensor, opts, cons: KernelConstraint, shape, U0: torch.Tensor | None = None):
        super().__init__(ops, D0, opts, cons, 1, shape, U0)

    def step(self) -> tuple[dict[str, Any], torch.Tensor, tuple]:
        row, done, eps = super().step()
        X = self.ops.X
        kh, kw = self.cons.kernel_size
        P = X.new_zeros(X.shape)
        P[..., :kh, :kw] = self.cons.project(X)
        return {**row, "constraint": l2(P - X)}, done, eps


class MaskedConsensusDictStep(ConsensusDictStep):
    r"""The ADMM consensus step with mask decoupling (SPORCO
    ``admm.ccmodmd.ConvCnstrMODMaskDcpl_Consensus``) for
    :math:`\operatorname*{argmin}_d \tfrac12 \sum_j \| W_j \odot (\sum_k d_k * z_{jk} - s_j)\|_2^2`,
    d ∈ C, over :class:`csc.backends.torch_dictstep.TorchMaskedConsensusOps` (its docstring
    has the iteration). Its residuals are SPORCO's for this class: the primal residual over
    both blocks normalised by max(‖Ax‖, ‖y‖, ‖s‖), the dual residual ρ‖Aᵀu‖ normalised by
    ρ‖u‖ (u over both blocks)."""

    def _norms(self, Dprev: torch.Tensor) -> tuple:
        return self.ops.dual_update(self.D)


def _host_float(v, site: str) -> float:
    return float(to_host(v, site)) if isinstance(v, torch.Tensor) else float(v)


def _residuals(o, norms, rho: float, n: int):
    """r, s, ε_pri, ε_dua (float64 0-d tensors on the norms' device) by
    :func:`csc.core.admm.residuals` from the norms ‖Ax‖, ‖y‖, ‖u‖, ‖r‖, the unscaled dual
    norm d (s = ρ·d) [and ‖c‖] — 0-d tensors (no host read), or floats from the fused back
    end — and ρ."""
    dev = next((v.device for v in norms if isinstance(v, torch.Tensor)), torch.device("cpu"))
    t = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=dev) for v in norms]).view(1, len(norms))
    out = residuals(o, t, torch.tensor([rho], dtype=torch.float64, device=dev), n)
    return tuple(v[0] for v in out)


def _rho_update(o, k: int, r, s) -> float:
    """The adaptive-ρ factor (:func:`csc.core.admm.rho_factor`; 1 when ρ is not updated:
    then without a host read)."""
    f = rho_factor(o, k, torch.as_tensor(r, dtype=torch.float64).view(1), torch.as_tensor(s, dtype=torch.float64).view(1),
                   o.rsdl_target)
    return 1.0 if f is None else float(to_host(f[0], "cns.rho"))

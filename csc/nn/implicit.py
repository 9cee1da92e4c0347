r"""The backward of the sparse-coding layer: implicit differentiation at the solution.

Problem, for one image s (H×W, or C channels with a multi-channel dictionary: A then maps
the K maps to C channels and Aᵀ sums over them), kernels d_k, a mask W ≥ 0 (W = 1 without
one), ℓ1 weights w ≥ 0 and μ ≥ 0 (μ = 0 without the elastic net):

.. math::
    x^\star = \operatorname*{argmin}_x \tfrac12 \| W \odot (A x - s) \|^2
              + \lambda \| w \odot x \|_1 + \tfrac{\mu}{2} \|x\|^2 ,
    \qquad A x = \sum_k d_k * x_k .

On the support S of x* (S = {x* ≠ 0}; for non-negative codes the positive entries) the
optimality condition is

.. math::  F := A_S^T W^2 (A x - s) + \mu x_S + \lambda\, w_S \odot \operatorname{sign}(x_S) = 0 ,

and off S, x* = 0 stays 0 under a small change of the inputs when the support is stable
(strict complementarity: |A_iᵀW²(Ax − s)| < λw_i off S). Differentiating F = 0,
M dx_S = −∂F, with M = A_SᵀW²A_S + μI. For an incoming gradient g = ∂L/∂x*, the adjoint
v solves

.. math::  M v_S = g_S, \qquad v = 0 \text{ off } S ,

and with r = Ax − s, dL = ⟨g, dx⟩ = −⟨v, ∂F⟩ gives

.. math::
    \partial_s L = W^2 \odot A v, \qquad
    \partial_\lambda L = -\langle v, w \odot \operatorname{sign} x \rangle, \qquad
    \partial_w L = -\lambda\, v \odot \operatorname{sign} x, \qquad
    \partial_\mu L = -\langle v, x \rangle,

.. math::
    \partial_{d_k} L = -\operatorname{crop}_{k_h\times k_w}\Big[\operatorname{corr}(W^2 r, v_k)
                       + \operatorname{corr}(W^2 A v, x_k)\Big],\qquad
    \partial_W L = -2\, W \odot (A v) \odot r ,

with corr(a, b)[m] = Σ_n a[n] b[n − m] (circular; the gradient of ⟨d * b, a⟩ in d),
summed over the images. The system is solved per image by preconditioned conjugate
gradients (:func:`conjugate_gradient`) on the support's compact vectors
(:class:`csc.nn.support.Support`): M applied patch by patch (:class:`csc.nn.support.PatchOperator`,
2|S|·kh·kw multiply-adds) or by FFTs (:class:`SupportNormalOperator`), preconditioned by the
inverses of M's blocks over small tiles of pixels (:class:`csc.nn.precondition.BlockJacobi`),
which the paper's coherent log-Gabor kernels need. Memory is a few code-sized tensors,
whatever the forward's iteration count.

Gradient regularisation (:class:`csc.ConvBPDNGradReg`) replaces (μ/2)‖x‖² by
(μ/2) Σ_k x̂_kᴴ diag(P_k) x̂_k with P_k = g_k Σ_i |Ĝ_i|² (a convolution Q per kernel): M gains
μ P_S Q P_S instead of μI, and ∂_μ L = −⟨v, Q x⟩; the rest is unchanged.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch

from csc.core import ops
from csc.core.checks import check_bool
from csc.nn.precondition import BlockJacobi
from csc.nn.support import PatchOperator, Support
from csc.runtime.sync import host_bool

__all__ = ["CGOptions", "BackwardRecord", "SupportNormalOperator", "L2Term", "SpectralTerm", "GroupTerm",
           "conjugate_gradient", "implicit_gradients"]

_ON_NOT_CONVERGED = ("warn", "raise", "ignore")
_PRECONDITIONERS = ("block", "none")
_OPERATORS = ("auto", "patches", "fft")


@dataclass(frozen=True)
class CGOptions:
    """Options of the backward's conjugate-gradient solve of (A_SᵀW²A_S + μI + εI) v_S = g_S.

    Attributes
    ----------
    tol : float or None
        Relative residual ‖g_S − M v_S‖ ≤ tol·‖g_S‖ at which an image stops (each image its
        own). None (default): 1e-10 in float64, 1e-5 in float32.
    max_iter : int
        Iteration limit (default 1000). CG is exact in |S| iterations in exact arithmetic.
    check_every : int
        Iterations between host reads of "is any image still running?" (default 10): the
        iterations between reads run with a device-side mask (a finished image's step is
        zero), so there is no host synchronisation per iteration.
    ridge : float
        ε ≥ 0 added to the diagonal (default 0: the exact gradient). A ridge regularises a
        singular or badly conditioned A_S at the price of a biased gradient; it is reported
        in :attr:`BackwardRecord.ridge`.
    warm_start : bool
        Start CG from the previous backward's adjoint v (restricted to the new support) when
        the shapes match (default False: start from 0). Useful when the same inputs are
        differentiated again (several losses, gradcheck); a record object must be given.
    on_not_converged : {"warn", "raise", "ignore"}
        What a backward does when an image's CG stops at ``max_iter`` above ``tol``
        (default "warn").
    preconditioner : {"block", "none"}
        "block" (default): block Jacobi over ``tile``×``tile``-pixel tiles of the support
        (:class:`csc.nn.precondition.BlockJacobi`: each block's Gram matrix inverted exactly),
        which makes CG converge where the support holds coherent atoms close together (the
        paper's 144 log-Gabor kernels); "none": plain CG. Either gives the same v to ``tol``.
    tile : int
        The tiles' side in pixels (default 8).
    max_block : int
        The largest block (default 64): a tile with more support coefficients is cut in pieces.
    float64 : bool
        Run CG in float64 whatever the inputs' dtype (default True; the adjoint v is returned
        in the inputs' dtype). Its vectors hold the support only, so this costs little, and in
        float32 CG's recursive residual drifts from the true one on a badly conditioned M (at
        256² with 144 kernels: 1e-5 recursive, 6e-3 true).
    operator : {"auto", "patches", "fft"}
        How CG applies M: "patches" adds and reads each support coefficient's kernel patch
        (:class:`csc.nn.support.PatchOperator`, 2|S|·kh·kw multiply-adds), "fft" the FFT
        operator over all K maps; "auto" (default) picks the cheaper. The same M either way.
    """

    tol: float | None = None
    max_iter: int = 1000
    check_every: int = 10
    ridge: float = 0.0
    warm_start: bool = False
    on_not_converged: str = "warn"
    preconditioner: str = "block"
    tile: int = 8
    max_block: int = 64
    operator: str = "auto"
    float64: bool = True

    def __post_init__(self):
        if self.tol is not None and not (isinstance(self.tol, (int, float)) and 0 < self.tol < 1):
            raise ValueError(f"CGOptions.tol: expected None or a number in (0, 1), got {self.tol!r}")
        for name in ("max_iter", "check_every", "tile", "max_block"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"CGOptions.{name}: expected an integer >= 1, got {v!r}")
        if isinstance(self.ridge, bool) or not isinstance(self.ridge, (int, float)) or not self.ridge >= 0:
            raise ValueError(f"CGOptions.ridge: expected a number >= 0, got {self.ridge!r}")
        object.__setattr__(self, "warm_start", check_bool("CGOptions.warm_start", self.warm_start))
        object.__setattr__(self, "float64", check_bool("CGOptions.float64", self.float64))
        if self.preconditioner not in _PRECONDITIONERS:
            raise ValueError(f"CGOptions.preconditioner: expected one of {_PRECONDITIONERS}, "
                             f"got {self.preconditioner!r}")
        if self.operator not in _OPERATORS:
            raise ValueError(f"CGOptions.operator: expected one of {_OPERATORS}, got {self.operator!r}")
        if self.on_not_converged not in _ON_NOT_CONVERGED:
            raise ValueError(f"CGOptions.on_not_converged: expected one of {_ON_NOT_CONVERGED}, "
                             f"got {self.on_not_converged!r}")

    def tolerance(self, dtype: torch.dtype) -> float:
        """:attr:`tol`, or its default for ``dtype``."""
        if self.tol is not None:
            return float(self.tol)
        return 1e-10 if dtype == torch.float64 else 1e-5


@dataclass
class BackwardRecord:
    """What the last backward did, filled in by it (pass one to record; the layer keeps one).

    Attributes
    ----------
    iterations : (n,) int64 tensor
        CG iterations of each image (each problem: a joint-sparsity image's channels are one).
    relative_residual : (n,) tensor
        ‖g_S − M v_S‖ / ‖g_S‖ of each image, recomputed from the returned v (0 for an image
        with g_S = 0).
    support : (n,) int64 tensor
        |S|, the number of nonzero coefficients of each image.
    converged : bool
        Whether every image reached the tolerance.
    tol, ridge : float
        The tolerance used and the ridge ε added to M (0: exact gradient).
    adjoint : tensor or None
        The adjoint v (n, K, H, W), kept for :attr:`CGOptions.warm_start`.
    """

    iterations: torch.Tensor | None = None
    relative_residual: torch.Tensor | None = None
    support: torch.Tensor | None = None
    converged: bool | None = None
    tol: float | None = None
    ridge: float = 0.0
    adjoint: torch.Tensor | None = field(default=None, repr=False)


class L2Term:
    r"""The elastic net's (μ/2)‖x‖²: its Hessian on the support is μI, ∂F/∂μ = x."""

    def hessian(self, v: torch.Tensor) -> torch.Tensor:
        return v

    compact_hessian = hessian  # the identity on the support's compact vectors too

    def d_mu(self, x: torch.Tensor) -> torch.Tensor:
        return x


class SpectralTerm:
    r"""(μ/2) Σ_k x̂_kᴴ diag(P_k) x̂_k, a convolution Q per kernel (:class:`csc.ConvBPDNGradReg`:
    P_k = g_k Σ_i |Ĝ_i|²): Hessian μQ, ∂F/∂μ = Qx.

    Parameters
    ----------
    P : (1 or K, H, Wr) real tensor
    shape : (H, W)
    """

    def __init__(self, P: torch.Tensor, shape):
        self.P, self.shape = P, tuple(shape)

    def hessian(self, v: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfft2(self.P * torch.fft.rfft2(v), s=self.shape)

    d_mu = hessian


class GroupTerm:
    r"""μ Σ_{k,i} w₂₁ ‖x_{·,k,i}‖₂ over groups of C channels (:class:`csc.ConvBPDNJoint`). On a
    group g with x_g ≠ 0 its gradient is μw₂₁ u_g (u_g = x_g/‖x_g‖) and its Hessian
    μw₂₁(I − u_g u_gᵀ)/‖x_g‖; ∂F/∂μ = w₂₁ u_g. Codes are (B·C, K, H, W), channels innermost
    of the first axis (image b's channel c at row b·C + c).

    Parameters
    ----------
    x : (B·C, K, H, W)
        The solution.
    channels : int
        C.
    weight : float or tensor broadcasting to (B, 1, K, H, W)
        w₂₁.
    """

    def __init__(self, x: torch.Tensor, channels: int, weight):
        self.C = self.channels = channels
        xg = self._groups(x)
        norm = xg.norm(dim=1, keepdim=True)
        nz = norm > 0
        safe = torch.where(nz, norm, torch.ones_like(norm))
        self.u = torch.where(nz, xg / safe, torch.zeros_like(xg))
        self.scale = torch.where(nz, weight / safe, torch.zeros_like(norm))  # w₂₁/‖x_g‖
        self.weight = weight

    def _groups(self, t: torch.Tensor) -> torch.Tensor:
        return t.reshape(-1, self.C, *t.shape[1:])

    def hessian(self, v: torch.Tensor) -> torch.Tensor:
        vg = self._groups(v)
        return (self.scale * (vg - self.u * (self.u * vg).sum(1, keepdim=True))).reshape(v.shape)

    def d_mu(self, x: torch.Tensor) -> torch.Tensor:
        return (self.weight * self.u).expand(self._groups(x).shape).reshape(x.shape)


class SupportNormalOperator:
    r"""M v = P ⊙ [Aᵀ(W² ⊙ A(P ⊙ v)) + μ H(P ⊙ v)] + ε·(P ⊙ v) for every image of a batch at once.

    Parameters
    ----------
    Df : (K, H, Wr) or (K, C, H, Wr) complex
        Kernel DFTs (:func:`csc.core.ops.kernel_dft`); a multi-channel dictionary's synthesis
        maps the K maps to C channels, its adjoint sums over the channels.
    shape : (H, W)
        Spatial size.
    support : (n, K, H, W) bool
        P, the support of each image's code.
    weight2 : tensor broadcasting to the images (n, [C,] H, W), or None
        W², the squared mask (None: W = 1).
    ridge : float
        ε ≥ 0 (:attr:`CGOptions.ridge`).
    term, mu : L2Term, SpectralTerm or GroupTerm, and float
        The smooth regulariser μR(x) whose Hessian H is added (None or μ = 0: none).
    """

    def __init__(self, Df: torch.Tensor, shape, support: torch.Tensor, weight2: torch.Tensor | None, ridge: float,
                 term=None, mu: float = 0.0):
        self.Df, self.shape, self.weight2, self.ridge = Df, tuple(shape), weight2, float(ridge)
        self.term, self.mu = (term, float(mu)) if term is not None and mu else (None, 0.0)
        self.P = support.to(Df.real.dtype)

    def synthesis(self, v: torch.Tensor) -> torch.Tensor:
        """A v = Σ_k d_k * v_k, (n, K, H, W) → (n, H, W) (or (n, C, H, W))."""
        return torch.fft.irfft2(ops.synthesis_any(self.Df, torch.fft.rfft2(v)), s=self.shape)

    def adjoint(self, r: torch.Tensor) -> torch.Tensor:
        """Aᵀ r = (Σ_c corr(r_c, d_kc))_k, (n, [C,] H, W) → (n, K, H, W)."""
        Rf = torch.fft.rfft2(r)
        if self.Df.ndim == 4:
            return torch.fft.irfft2(torch.einsum("kchw,nchw->nkhw", self.Df.conj(), Rf), s=self.shape)
        return torch.fft.irfft2(ops.adjoint_dft(self.Df, Rf), s=self.shape)

    def weighted(self, r: torch.Tensor) -> torch.Tensor:
        """W² ⊙ r (r itself without a mask)."""
        return r if self.weight2 is None else self.weight2 * r

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        pv = self.P * v
        inner = self.adjoint(self.weighted(self.synthesis(pv)))
        if self.term is not None:
            inner = inner + self.mu * self.term.hessian(pv)
        out = self.P * inner
        return out + self.ridge * pv if self.ridge else out


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image inner products over (K, H, W): (n,)."""
    return (a * b).flatten(1).sum(1)


def conjugate_gradient(op, b: torch.Tensor, x0: torch.Tensor | None, tol: float, max_iter: int,
                       check_every: int, prec=None, dot=None,
                       per=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Batched (preconditioned) conjugate gradients for M x = b, M = ``op`` symmetric positive
    (semi)definite, ``prec`` (None: the identity) a symmetric positive definite approximation of M⁻¹.

    Every image (first axis) has its own step sizes α = ⟨r, z⟩/⟨p, Mp⟩, β = ⟨r_new, z_new⟩/⟨r, z⟩
    (z = prec(r)) and stops when ‖r‖ ≤ tol·‖b‖ (the residual itself, not the preconditioned one).
    A stopped image's updates are masked to zero on the device; the host reads whether any
    image still runs every ``check_every`` iterations only (through
    :func:`csc.runtime.sync.host_bool`, counted by the tests).

    Returns x (as b), the iterations of each image (n,) int64 and whether each reached the
    tolerance (n,) bool (an image whose ⟨p, Mp⟩ is not positive, a breakdown, did not).

    ``dot`` (default: per first-axis row) gives the per-problem inner products of two vectors
    and ``per`` spreads per-problem values over a vector (default: a reshape that
    broadcasts over the rows), so that compact vectors of several problems
    (:class:`csc.nn.support.Support`) run as well.
    """
    prec = (lambda r: r) if prec is None else prec
    dot = _dot if dot is None else dot
    if per is None:
        def per(t):
            return t.reshape((-1,) + (1,) * (b.ndim - 1))
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - op(x) if x0 is not None else b.clone()
    z = prec(r)
    p = z.clone()
    rz, rs = dot(r, z), dot(r, r)
    thresh = (tol * tol) * dot(b, b)
    active = rs > thresh
    iters = torch.zeros(rs.shape[0], dtype=torch.int64, device=b.device)
    tiny = torch.finfo(b.dtype).tiny
    for it in range(max_iter):
        if it % check_every == 0 and not host_bool(active.any(), "cg.active"):
            break
        Mp = op(p)
        pMp = dot(p, Mp)
        ok = active & (pMp > 0)
        alpha = per(torch.where(ok, rz / pMp.clamp_min(tiny), torch.zeros_like(rz)))
        x = x + alpha * p
        r = r - alpha * Mp
        z = prec(r)
        rz_new = dot(r, z)
        p = z + per(torch.where(ok, rz_new / rz.clamp_min(tiny), torch.zeros_like(rz))) * p
        iters = iters + ok.to(torch.int64)
        rz = torch.where(ok, rz_new, rz)
        rs = torch.where(ok, dot(r, r), rs)
        active = ok & (rs > thresh)
    return x, iters, rs <= thresh


def _cg_start(record: BackwardRecord | None, cg: CGOptions, support: Support, like: torch.Tensor):
    """The warm start: the previous adjoint on the new support, when asked and it matches the
    codes (``like``) in shape, dtype and device; else None (start from 0)."""
    if not cg.warm_start or record is None or record.adjoint is None:
        return None
    v0 = record.adjoint
    if v0.shape != like.shape or v0.dtype != like.dtype or v0.device != like.device:
        return None
    return support.gather(v0)


def solve_adjoint(op, support: Support, g: torch.Tensor, cg: CGOptions, record: BackwardRecord | None,
                  prec=None, work: torch.dtype | None = None) -> torch.Tensor:
    """v with M v_S = g_S, v = 0 off S, by :func:`conjugate_gradient` on the support's compact
    vectors (one problem per :attr:`Support.problem`: the C channels of a joint-sparsity image
    are one, coupled by M); ``op`` and ``prec`` act on compact vectors. Fills ``record`` and
    warns or raises as :attr:`CGOptions.on_not_converged` says. Returns v shaped as g, in g's
    dtype; CG runs in ``work`` (float64 by :attr:`CGOptions.float64`), as ``op`` and ``prec``."""
    tol, work = cg.tolerance(g.dtype), work or g.dtype
    b = support.gather(g).to(work)
    x0 = _cg_start(record, cg, support, g)
    v, iters, done = conjugate_gradient(op, b, None if x0 is None else x0.to(work), tol, cg.max_iter,
                                        cg.check_every, prec, support.dot, support.per_problem)
    bn = support.dot(b, b).sqrt()
    rv = b - op(v)
    relres = torch.where(bn > 0, support.dot(rv, rv).sqrt() / bn.clamp_min(torch.finfo(b.dtype).tiny),
                         torch.zeros_like(bn))
    converged = bool(done.all())
    dense = support.scatter(v.to(g.dtype))
    if record is not None:
        record.iterations, record.relative_residual = iters, relres
        record.support = torch.zeros_like(iters).index_add_(0, support.problem, torch.ones_like(support.problem))
        record.converged, record.tol, record.ridge = converged, tol, cg.ridge
        record.adjoint = dense.detach() if cg.warm_start else None
    if not converged and cg.on_not_converged != "ignore":
        msg = (f"conv_sparse_code backward: conjugate gradients did not reach CGOptions tol={tol:.3g} within "
               f"max_iter={cg.max_iter} (or broke down on a singular A_S) for image(s) "
               f"{(~done).nonzero().flatten().tolist()}: relative residual up to {float(relres.max()):.3g}; the "
               "gradient is inexact (raise max_iter, or add a ridge: CGOptions(ridge=...), reported in the record)")
        if cg.on_not_converged == "raise":
            raise RuntimeError(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
    return dense


def implicit_gradients(S: torch.Tensor, D: torch.Tensor, x: torch.Tensor, g: torch.Tensor, *, l1_weight,
                       mask: torch.Tensor | None, mu: float, needs: tuple[bool, ...], cg: CGOptions,
                       record: BackwardRecord | None = None, term=None,
                       lmbda: float = 0.0) -> tuple[torch.Tensor | None, ...]:
    r"""The gradients of L at the solution x of every image, from g = ∂L/∂x (module docstring).

    Parameters
    ----------
    S : (n, H, W), or (n, C, H, W) with a multi-channel dictionary
        Images.
    D : (K, kh, kw) or (K, C, kh, kw)
        Kernels.
    x : (n, K, H, W)
        The solutions (their nonzeros are the supports).
    g : (n, K, H, W)
        The incoming gradient ∂L/∂x.
    l1_weight : float or tensor broadcasting to (n, K, H, W)
        w.
    mask : tensor broadcasting to S, or None
        W (None: W = 1).
    mu : float
        μ of the smooth regulariser ``term`` (0 for CBPDN).
    needs : 5 or 6 bools
        Which of (images, dictionary, λ, μ, mask[, ℓ1 weights]) want a gradient.
    term : L2Term, SpectralTerm or GroupTerm, optional
        The regulariser that μ weights (None: :class:`L2Term`, the elastic net's).
    lmbda : float
        λ, for the ℓ1 weights' gradient −λ v ⊙ sign x.

    Returns
    -------
    ∂s (as S), ∂D (as D), ∂λ (), ∂μ (), ∂W (as ``mask``)[, ∂w (n, K, H, W): the caller sums
    it to the weights' shape]; None where not needed.
    """
    H, W = S.shape[-2:]
    Df = ops.kernel_dft(D, (H, W))
    weight2 = None if mask is None else mask * mask
    term = L2Term() if term is None else term
    op = SupportNormalOperator(Df, (H, W), x != 0, weight2, cg.ridge, term, mu)
    support = Support(x != 0, cg.tile, cg.max_block, getattr(term, "channels", 1))
    work = torch.float64 if cg.float64 else g.dtype
    opw = op if work == g.dtype else SupportNormalOperator(
        ops.kernel_dft(D.to(work), (H, W)), (H, W), x != 0, None if weight2 is None else weight2.to(work), cg.ridge,
        term, mu)
    v = solve_adjoint(_compact_operator(D.to(work), opw, support, cg), support, g, cg, record,
                      _preconditioner(D.to(work), opw, support, cg), work)
    Av = op.synthesis(v)
    want_r = needs[1] or needs[4]
    r = op.synthesis(x) - S if want_r else None
    g_s = op.weighted(Av) if needs[0] else None
    g_D = _dictionary_gradient(op, v, x, op.weighted(r), op.weighted(Av), D.shape[-2:]) if needs[1] else None
    g_l = -(v * torch.sign(x) * l1_weight).sum() if needs[2] else None
    g_mu = -(v * term.d_mu(x)).sum() if needs[3] else None
    g_W = None
    if needs[4]:
        g_W = (-2.0 * mask * Av * r).sum_to_size(mask.shape)
    if len(needs) == 5:
        return g_s, g_D, g_l, g_mu, g_W
    return g_s, g_D, g_l, g_mu, g_W, (-lmbda * v * torch.sign(x)) if needs[5] else None


def _compact_operator(D: torch.Tensor, op: SupportNormalOperator, support: Support, cg: CGOptions):
    """M on the support's compact vectors: :class:`PatchOperator` (no FFTs) or the FFT operator
    ``op`` between a scatter and a gather, as :attr:`CGOptions.operator` says ("auto": patches
    while 2|S|·kh·kw, their cost, is below the FFTs' n·K·H·W·log₂(H·W))."""
    n, K, H, W = support.shape
    kh, kw = D.shape[-2:]
    use = cg.operator
    if use == "auto":
        use = "patches" if support.size * kh * kw <= n * K * H * W * math.log2(max(H * W, 2)) else "fft"
    if use == "patches":
        return PatchOperator(D, support, op.weight2, op.ridge, op.term, op.mu)
    return lambda v: support.gather(op(support.scatter(v)))


def _preconditioner(D: torch.Tensor, op: SupportNormalOperator, support: Support, cg: CGOptions):
    """:class:`BlockJacobi` for the support (None for ``preconditioner="none"``): its blocks
    hold the Gram matrix, the ridge, and μ's elastic net (μI) or gradient regularisation (μQ);
    a mask and the joint-sparsity term are left out (module docstring of
    :mod:`csc.nn.precondition`)."""
    if cg.preconditioner == "none":
        return None
    shift, spectral = cg.ridge, None
    if isinstance(op.term, L2Term):
        shift += op.mu
    elif isinstance(op.term, SpectralTerm):
        spectral = op.mu * op.term.P
    return BlockJacobi(D, support, cg.tile, shift, spectral)


def _dictionary_gradient(op: SupportNormalOperator, v: torch.Tensor, x: torch.Tensor, Wr: torch.Tensor,
                         WAv: torch.Tensor, kernel_size) -> torch.Tensor:
    r"""∂L/∂d_k = −crop[Σ_n corr(W²r, v_k) + corr(W²Av, x_k)], in the DFT domain
    Σ_n conj(V̂_k) Ŵr + conj(X̂_k) ŴAv (:func:`csc.core.ops.dictionary_gradient`; per channel
    for a multi-channel dictionary), cropped to the kernels' kh×kw at the top-left origin."""
    Gf = ops.dictionary_gradient(torch.fft.rfft2(v), torch.fft.rfft2(Wr))
    Gf = Gf + ops.dictionary_gradient(torch.fft.rfft2(x), torch.fft.rfft2(WAv))
    kh, kw = kernel_size
    return -torch.fft.irfft2(Gf, s=op.shape)[..., :kh, :kw]

r"""The y-step of the ADMM split x = y: proximal operators and projections, one object per regulariser.

ADMM on :math:`\min_x f(x) + g(y)` s.t. x = y (:mod:`csc.core.admm`) takes, at every
iteration, y = prox_{g/ρ}(v) at v = αx + (1 − α)y + u. A *prox object* is g: it owns

- its **threshold rule** — :meth:`Prox.thresholds`: the per-problem parameters its
  operator takes at the current ρ, (g,) or (g, J) (λ/ρ for the ℓ1 norm; a radius γ,
  independent of ρ, for a projection onto the ℓ1 ball);
- its **operator** on torch tensors — :meth:`Prox.apply_`: y ← prox(v) and, where
  cheaper, u ← v − y, in place on (n, M, H, W) maps (any device, any dtype);
- its **terms** — :attr:`Prox.terms`: the statistics names and objective weights of the
  values :meth:`Prox.values` returns (Σ|w·z| with weight λ for the ℓ1 norm; a constraint
  violation with weight 0 for a projection);
- the defaults that depend on it: :meth:`Prox.rho0` (SPORCO's ρ₀ = 50λ + 1 for CBPDN)
  and :meth:`Prox.rsdl_target` (the residual-balancing target ξ).

The torch back end runs every prox through :meth:`Prox.apply_`; the numba and compiled
back ends have fused kernels for some (``csc.backends.registry`` picks one by the prox's
type, and falls back to the torch loop, saying so, where none is written). A new
regulariser is a class here and a thin problem class (:mod:`csc.problems`) that returns
it; the loop does not change.

Two-block problems (Ax − y = c, A = (D; I), SPORCO ``ConvTwoBlockCnstrnt``) have a second
y-block for the data term; its operators are the :class:`DataTerm` objects below.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from csc.core.options import default_rsdl_target

__all__ = ["Prox", "SoftThreshold", "SparseGroupThreshold", "ImpulseMask", "L1BallProjection", "GroupL2Threshold",
           "InhibitionThreshold", "DataTerm", "L1Data", "QuadraticData", "L2BallData", "project_l1_ball", "trim"]


def trim(w: Any, mask: torch.Tensor) -> Any:
    """Per-image weights ``w`` ((n, …) tensor) restricted to the images of ``mask``; scalars and
    weights shared by all images ((1, …)) as they are."""
    if isinstance(w, torch.Tensor) and w.ndim > 0 and w.shape[0] > 1 and not bool(mask.all()):
        return w[mask]
    return w


def _zero_boundary_(y: torch.Tensor, kernel_size: tuple[int, int] | None) -> None:
    """Zero the coefficients of y (…, H, W) whose kernel (kh, kw) crosses the bottom or right
    image boundary (SPORCO ``NoBndryCross``); nothing when ``kernel_size`` is None."""
    if kernel_size is None:
        return
    (kh, kw), (H, W) = kernel_size, y.shape[-2:]
    if kh > 1:
        y[..., H - kh + 1:, :] = 0
    if kw > 1:
        y[..., :, W - kw + 1:] = 0


class Prox:
    """A regulariser g of the split x = y (module docstring): the interface and CBPDN's defaults."""

    #: (statistics name, objective weight) of each value :meth:`values` returns, in order
    terms: tuple[tuple[str, float], ...] = ()
    #: the value its thresholds are proportional to, for ρ₀ and ξ's defaults (λ for ℓ1)
    scale: float = 1.0

    def thresholds(self, rho: torch.Tensor) -> torch.Tensor:
        """The operator's parameters at ρ (g,): (g,) or (g, J)."""
        raise NotImplementedError

    def apply_(self, v: torch.Tensor, thr: torch.Tensor, y: torch.Tensor, u: torch.Tensor) -> bool:
        """y ← prox(v) for the per-image parameters ``thr`` ((n,) or (n, J)); may set u ← v − y
        and returns False when it did, True when u must still be formed (u is scratch)."""
        raise NotImplementedError

    def values(self, z: torch.Tensor) -> list[torch.Tensor]:
        """The values of :attr:`terms` at maps z (n, M, H, W), each (n,)."""
        raise NotImplementedError

    def keep(self, mask: torch.Tensor) -> "Prox":
        """This prox for the images of ``mask`` (per-image weights trimmed)."""
        return self

    def observe_(self, x: torch.Tensor) -> None:
        """After the y-step and before :meth:`values`: this iteration's x (n, M, H, W), for a
        regulariser whose parameters follow the iterates (:class:`InhibitionThreshold`'s
        weights); nothing for the others."""

    def rho0(self, opts) -> float:
        """ρ₀: ``opts.rho``, or SPORCO's default 50·scale + 1 (50λ + 1 for CBPDN)."""
        return float(opts.rho) if opts.rho is not None else 50.0 * self.scale + 1.0

    def rsdl_target(self, opts) -> float:
        """ξ of residual balancing: ``opts.rsdl_target``, or SPORCO's default for ``scale``."""
        return float(opts.rsdl_target) if opts.rsdl_target is not None else default_rsdl_target(self.scale)


@dataclass
class SoftThreshold(Prox):
    r"""g(y) = λ Σ_k ‖w_k ⊙ y_k‖₁ (SPORCO ``ConvBPDN``): y = S_{λw/ρ}(v) = v − clamp(v, −λw/ρ, λw/ρ),
    then non-negativity (``nonneg``, SPORCO ``NonNegCoef``) and zeroing of coefficients whose
    kernel crosses the image boundary (``kernel_size`` (kh, kw) given: SPORCO ``NoBndryCross``).

    ``weight``: a float or a tensor broadcasting to (n, M, H, W)."""

    lmbda: float
    weight: Any = 1.0
    nonneg: bool = False
    kernel_size: tuple[int, int] | None = None

    @property
    def scale(self) -> float:
        return self.lmbda

    @property
    def terms(self):
        return (("l1", self.lmbda),)

    def thresholds(self, rho):
        return self.lmbda / rho

    def threshold_(self, v, thr, y, u) -> None:
        """The soft threshold alone: u ← clamp(v, −t, t), y ← v − u, t = thr·w."""
        t = thr.reshape(-1, 1, 1, 1) * self.weight
        torch.clamp(v, min=-t, max=t, out=u)
        torch.sub(v, u, out=y)

    def constrain_(self, y: torch.Tensor) -> bool:
        """Non-negativity and boundary zeroing of y in place; whether either applies."""
        if self.nonneg:
            y.clamp_(min=0)
        _zero_boundary_(y, self.kernel_size)
        return self.nonneg or self.kernel_size is not None

    def apply_(self, v, thr, y, u) -> bool:
        self.threshold_(v, thr, y, u)
        return self.constrain_(y)

    def values(self, z):
        return [(self.weight * z).abs().sum((1, 2, 3))]

    def keep(self, mask):
        return replace(self, weight=trim(self.weight, mask))


@dataclass
class SparseGroupThreshold(SoftThreshold):
    r"""g(y) = λ Σ‖w ⊙ y‖₁ + μ Σ_{k,i} w₂₁ ‖(y_{c,k,i})_c‖₂ over C channel groups (SPORCO
    ``ConvBPDNJoint``'s ``prox_sl1l2``): the soft threshold by λw/ρ, then each group of the C
    coefficients of one kernel and pixel shrunk by μw₂₁/ρ in ℓ2 norm, then the constraints.
    Maps (n, C·K, H, W), channel-major; ``l21_weight`` broadcasts to (n, K, H, W)."""

    mu: float = 0.0
    l21_weight: Any = 1.0
    channels: int = 1

    @property
    def terms(self):
        return (("l1", self.lmbda), ("l21", self.mu))

    def thresholds(self, rho):
        return torch.stack([self.lmbda / rho, self.mu / rho], -1)

    def _groups(self, t: torch.Tensor) -> torch.Tensor:
        n, CK, H, W = t.shape
        return t.view(n, self.channels, CK // self.channels, H, W)

    def apply_(self, v, thr, y, u) -> bool:
        self.threshold_(v, thr[:, 0].contiguous(), y, u)
        g = self._groups(y)
        nrm = torch.linalg.vector_norm(g, dim=1)
        b = thr[:, 1].reshape(-1, 1, 1, 1) * self.l21_weight
        scale = torch.clamp(nrm - b, min=0) / torch.where(nrm == 0, torch.ones_like(nrm), nrm)  # SPORCO's prox_l2
        g.mul_(scale.unsqueeze(1))
        self.constrain_(y)
        return True

    def values(self, z):
        l21 = (self.l21_weight * torch.linalg.vector_norm(self._groups(z), dim=1)).sum((1, 2, 3))
        return super().values(z) + [l21]

    def keep(self, mask):
        return replace(self, weight=trim(self.weight, mask), l21_weight=trim(self.l21_weight, mask))


@dataclass
class ImpulseMask(Prox):
    r"""Additive mask simulation's y-step (SPORCO ``admm.cbpdn.AddMaskSim``): the last ``maps``
    maps are impulse kernels' (one, or one per channel of a multi-channel dictionary), free
    where the mask is 0 (``free``: (1 or n, 1 or maps, H, W), true there) and zero elsewhere,
    y = v there; the other maps take ``inner``'s operator (its weight for the impulse maps
    must be 0) with its constraints on them only."""

    inner: SoftThreshold
    free: torch.Tensor
    maps: int = 1

    @property
    def scale(self) -> float:
        return self.inner.scale

    @property
    def terms(self):
        return self.inner.terms

    def thresholds(self, rho):
        return self.inner.thresholds(rho)

    def apply_(self, v, thr, y, u) -> bool:
        self.inner.threshold_(v, thr, y, u)
        c = self.maps
        y[:, -c:] = torch.where(self.free, v[:, -c:], torch.zeros_like(v[:, -c:]))
        self.inner.constrain_(y[:, :-c])
        return True

    def values(self, z):
        return self.inner.values(z)

    def keep(self, mask):
        return replace(self, inner=self.inner.keep(mask), free=trim(self.free, mask))


@dataclass
class GroupL2Threshold(Prox):
    r"""g(y) = λ Σ_p w_p ‖y_p‖₂, the ℓ2 norm of each group y_p (SPORCO ``prox.prox_l2`` with an
    ``axis``; total variation's gradient vector at each pixel, :class:`csc.TVL2Denoise`):
    y_p = max(0, ‖v_p‖ − λw_p/ρ)/‖v_p‖ · v_p (0 where ‖v_p‖ = 0). y is (n, G, C, H, W), a
    group the G entries of ``dims`` (1,) at a pixel and channel, or with ``dims`` (1, 2) its
    G·C entries at a pixel (vector TV over the channels). ``weight``: a float or a tensor
    broadcasting to (n, 1, C or 1, H, W). ρ₀ default 2λ + 0.1 (SPORCO ``TVL2Denoise``)."""

    lmbda: float
    weight: Any = 1.0
    dims: tuple[int, ...] = (1,)

    @property
    def scale(self) -> float:
        return self.lmbda

    @property
    def terms(self):
        return (("tv", self.lmbda),)

    def thresholds(self, rho):
        return self.lmbda / rho

    def _norms(self, v: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(torch.sum(v * v, dim=self.dims, keepdim=True))

    def apply_(self, v, thr, y, u) -> bool:
        a = self._norms(v)
        b = torch.clamp(a - thr.reshape((-1,) + (1,) * (v.ndim - 1)) * self.weight, min=0)
        b = torch.where(a == 0, torch.zeros_like(b), b / torch.where(a == 0, torch.ones_like(a), a))
        torch.mul(b, v, out=y)
        return True

    def values(self, z):
        return [(self.weight * self._norms(z)).flatten(1).sum(1)]

    def keep(self, mask):
        return replace(self, weight=trim(self.weight, mask))

    def rho0(self, opts) -> float:
        return float(opts.rho) if opts.rho is not None else 2.0 * self.lmbda + 0.1


@dataclass
class InhibitionThreshold(Prox):
    r"""g(y) = λ Σ_m ‖w_m ⊙ y_m‖₁ + μ Σ_m ω_mᵀ|y_m| + γ Σ_m z_mᵀ|y_m| (SPORCO
    ``admm.cbpdnin.ConvBPDNInhib``, Cogliati et al. 2017): an ℓ1 norm whose weights follow the
    iterates. The y-step is the soft threshold by t = (λw + μω + γz)/ρ (SPORCO's ``prox_l1``,
    y = sign(v)·max(0, |v| − t), so a negative t, possible with fractional group weights,
    widens y as SPORCO's does), then non-negativity and boundary zeroing; ``thresholds`` are ρ
    itself. After it (:meth:`observe_`), from this iteration's x:

    .. math::
        a = h * |x|,\quad
        \omega \leftarrow s\,\omega + (1 - s)\big((a\,W_g^T) W_g - (\textstyle\sum_g W_{g,m})\,a_m\big),
        \quad z \leftarrow s\,z + (1 - s)\,(h' * |x|),

    h the lateral window (``lateral_window``: its DFT (H, Wr), circular convolution), h' the
    same with 0 at the origin (``self_window``), W_g the (G, M) group weights (``groups``),
    s the smoothing (``smooth``, SPORCO ``SmoothWeight``); ω and z start at 0. Lateral
    inhibition runs when ``groups`` is given and μ ≠ 0, self inhibition when γ ≠ 0; with
    neither, the threshold is CBPDN's (λ/ρ)w. The terms are ``l1`` (Σ|w·z|, weight λ),
    ``lateral`` (Σ|ω·z|, weight μ) and ``self_inhibition`` (Σ|z·z'|, weight γ), with the
    weights of the iteration's end. ω and z are per image ((n, M, H, W)), trimmed by
    :meth:`keep`. A frozen image (``sync_every`` > 1) keeps its y, u and x, not its weights,
    which no longer enter its result."""

    lmbda: float
    mu: float = 0.0
    gamma: float = 0.0
    weight: Any = 1.0
    groups: torch.Tensor | None = None
    lateral_window: torch.Tensor | None = None
    self_window: torch.Tensor | None = None
    smooth: float = 0.9
    nonneg: bool = False
    kernel_size: tuple[int, int] | None = None
    lateral: Any = 0.0
    self_weights: Any = 0.0

    @property
    def scale(self) -> float:
        return self.lmbda

    @property
    def terms(self):
        return (("l1", self.lmbda), ("lateral", self.mu), ("self_inhibition", self.gamma))

    @property
    def lateral_on(self) -> bool:
        return self.groups is not None and self.mu != 0

    @property
    def self_on(self) -> bool:
        return self.gamma != 0

    def thresholds(self, rho):
        return rho

    def apply_(self, v, thr, y, u) -> bool:
        rho = thr.reshape(-1, 1, 1, 1)
        if self.lateral_on or self.self_on:  # SPORCO: (λ·wl1 + μ·wml + γ·wms)/ρ
            t = (self.lmbda * self.weight + self.mu * self.lateral + self.gamma * self.self_weights) / rho
        else:
            t = (self.lmbda / rho) * self.weight
        torch.mul(torch.sign(v), torch.clamp(v.abs() - t, min=0), out=y)
        if self.nonneg:
            y.clamp_(min=0)
        _zero_boundary_(y, self.kernel_size)
        return True

    def observe_(self, x) -> None:
        if not (self.lateral_on or self.self_on):
            return
        H, W = x.shape[-2:]
        xaf = torch.fft.rfft2(x.abs())
        s = self.smooth
        if self.lateral_on:
            a = torch.fft.irfft2(self.lateral_window * xaf, s=(H, W))
            Wg = self.groups.to(a.dtype)
            new = torch.einsum("nghw,gm->nmhw", torch.einsum("nmhw,gm->nghw", a, Wg), Wg)
            new = new - Wg.sum(0).reshape(1, -1, 1, 1) * a
            self.lateral = s * self.lateral + (1 - s) * new
        if self.self_on:
            new = torch.fft.irfft2(self.self_window * xaf, s=(H, W))
            self.self_weights = s * self.self_weights + (1 - s) * new

    def values(self, z):
        return [(w * z).abs().sum((1, 2, 3)) for w in (self.weight, self.lateral, self.self_weights)]

    def keep(self, mask):
        return replace(self, weight=trim(self.weight, mask), lateral=trim(self.lateral, mask),
                       self_weights=trim(self.self_weights, mask))


def project_l1_ball(v: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    r"""The Euclidean projection of each image's maps v (n, …) onto {z : ‖z‖₁ ≤ γ}, γ = ``radius``
    (n,), by SPORCO's ``prox.proj_l1`` with an ``axis`` (its 'sortcumsum', Duchi et al. 2008),
    operation for operation: for a = |v| sorted in decreasing order and c_j = 1/j,
    t_j = c_j(Σ_{i≤j} a_i − γ); the K entries with a_j ≥ t_j give θ = max(0, (Σ_{a_j ≥ t_j} a_j − γ)/K)
    and z = sign(v)·(|v| − θ where |v| > θ, else 0). Inside the ball θ = 0 and z = v."""
    n = v.shape[0]
    av = v.abs()
    s, _ = torch.sort(av.reshape(n, -1), dim=1, descending=True)
    c = 1.0 / torch.arange(1, s.shape[1] + 1, dtype=s.dtype, device=s.device)
    g = radius.reshape(-1, 1).to(s.dtype)
    t = c * (torch.cumsum(s, 1) - g)
    ge = s >= t
    count = ge.sum(1, keepdim=True).to(s.dtype)
    theta = torch.clamp(((s * ge).sum(1, keepdim=True) - g) / count, min=0)
    theta = theta.reshape((n,) + (1,) * (v.ndim - 1))
    return torch.sign(v) * torch.where(av > theta, av - theta, torch.zeros_like(av))


@dataclass
class L1BallProjection(Prox):
    r"""g(y) = ι{‖y‖₁ ≤ γ} over each image's maps (SPORCO ``ConvBPDNProjL1``): y = the projection
    of v onto the ℓ1 ball of radius γ (:func:`project_l1_ball`; independent of ρ), then
    non-negativity and boundary zeroing as :class:`SoftThreshold`'s (SPORCO's
    ``GenericConvBPDN.ystep``, after the projection). Its one term is SPORCO's ``Cnstr``,
    ‖P(z) − z‖₂ at z = x (y with ``objective_on_y``), with weight 0: the objective is the data
    term alone. Defaults: ρ₀ = 1 (no λ to scale SPORCO's 50λ + 1 by: SPORCO's ADMM default) and
    ξ = 1 (``ConvBPDNProjL1.Options``' ``RsdlTarget``)."""

    gamma: float
    nonneg: bool = False
    kernel_size: tuple[int, int] | None = None

    terms = (("constraint", 0.0),)

    def thresholds(self, rho):
        return torch.full_like(rho, self.gamma)

    def apply_(self, v, thr, y, u) -> bool:
        y.copy_(project_l1_ball(v, thr.reshape(-1)))
        if self.nonneg:
            y.clamp_(min=0)
        _zero_boundary_(y, self.kernel_size)
        return True

    def values(self, z):
        radius = torch.full((z.shape[0],), self.gamma, dtype=z.dtype, device=z.device)
        return [torch.linalg.vector_norm((project_l1_ball(z, radius) - z).flatten(1), dim=1)]

    def rho0(self, opts) -> float:
        """ρ₀: ``opts.rho``, else SPORCO's ADMM default, 1."""
        return float(opts.rho) if opts.rho is not None else 1.0

    def rsdl_target(self, opts) -> float:
        """ξ: ``opts.rsdl_target``, else 1 (SPORCO ``ConvBPDNProjL1.Options``' RsdlTarget)."""
        return float(opts.rsdl_target) if opts.rsdl_target is not None else 1.0


# --------------------------------------------------------------------------- two-block data terms
class DataTerm:
    """Block 0 of a two-block split Ax − y = c, A = (D; I), c = (s; 0): g₀(y₀) of y₀ = Dx − s.

    :meth:`step` is y₀ = prox_{g₀/ρ}(v) at v = a₀ + u₀ − s; :meth:`value` is g₀ at a residual
    e = Dx − s (SPORCO's ``obfn_g0``), reported as ``data_fidelity``; ``mask`` (a float or (1 or
    n, 1, H, W)) weights it. :attr:`weight` is the value's weight in the objective (1; 0 for a
    constraint, whose value is a violation measure reported beside the objective)."""

    mask: Any = 1.0
    weight: float = 1.0

    def step(self, v: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def value(self, e: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def keep(self, mask: torch.Tensor) -> "DataTerm":
        return replace(self, mask=trim(self.mask, mask))


@dataclass
class L1Data(DataTerm):
    """g₀ = ‖W ⊙ y₀‖₁ (SPORCO ``ConvL1L1Grd``): y₀ = S_{W/ρ}(v)."""

    mask: Any = 1.0

    def step(self, v, rho):
        return torch.sign(v) * torch.clamp(v.abs() - (1.0 / rho) * self.mask, min=0)

    def value(self, e):
        return (self.mask * e).abs().sum((1, 2, 3))


@dataclass
class QuadraticData(DataTerm):
    """g₀ = ½‖W ⊙ y₀‖² (SPORCO ``ConvBPDNMaskDcpl``): y₀ = ρv/(W² + ρ)."""

    mask: Any = 1.0

    def step(self, v, rho):
        return (rho * v) / (self.mask * self.mask + rho)

    def value(self, e):
        return (self.mask * e).square().sum((1, 2, 3)) / 2.0


@dataclass
class L2BallData(DataTerm):
    r"""g₀ = ι{‖y₀‖₂ ≤ ε} per image (SPORCO ``ConvMinL1InL2Ball``; no weights): y₀ = the projection
    of v onto the ball, SPORCO's ``prox.proj_l2`` over the spatial axes, v where ‖v‖₂ ≤ ε and
    ε·(v/‖v‖₂) elsewhere (independent of ρ). Its value is SPORCO's ``Cnstr``, ‖P(e) − e‖₂ (the
    distance of e to the ball), with objective weight 0: the objective is block 1's term alone.
    With a multi-channel dictionary, y₀ (n, C, H, W) is projected channel by channel (SPORCO's
    ``proj_l2`` over ``axisN``, its channels on another axis): one ball of radius ε per channel."""

    epsilon: float = 1.0

    weight = 0.0

    def _project(self, v: torch.Tensor) -> torch.Tensor:
        d = torch.linalg.vector_norm(v.flatten(-2), dim=-1)[..., None, None]  # per image and channel
        out = self.epsilon * (v / torch.where(d == 0, torch.ones_like(d), d))
        return torch.where(d > self.epsilon, out, v)

    def step(self, v, rho):
        return self._project(v)

    def value(self, e):
        return torch.linalg.vector_norm((self._project(e) - e).flatten(1), dim=1)

    def keep(self, mask):
        return self

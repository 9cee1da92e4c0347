r"""Sparse codes as a differentiable function: :func:`conv_sparse_code`.

The forward is csc's solve (any back end, batched, each image its own ρ and stopping), run
to its tolerance on detached inputs; the backward is implicit differentiation at the
solution (:mod:`csc.nn.implicit`): on the support S of each image's code,

.. math::  (A_S^T W^2 A_S + \mu I)\, v_S = g_S ,\quad v = 0 \text{ off } S ,

solved by batched conjugate gradients, then ∂s = W²Av, ∂d_k = −crop[corr(W²r, v_k) +
corr(W²Av, x_k)], ∂λ = −⟨v, w ⊙ sign x⟩ (r = Ax − s). Memory does not grow with the
forward's iterations: the backward keeps the images, the kernels and the codes.

Problems with a gradient: CBPDN (:class:`csc.ConvBPDN`, or :class:`csc.ConvBPDNFISTA` with
``FISTAOptions``: the same problem), the elastic net (:class:`csc.ConvElasticNet`, μ > 0),
gradient regularisation (:class:`csc.ConvBPDNGradReg`, ``GradRegOptions``) and the
mask-decoupled problem (:class:`csc.ConvBPDNMaskDcpl`), with ℓ1 weights (scalar, per
kernel, per pixel), non-negative codes and multi-channel dictionaries (K, C, kh, kw) for
(B, C, H, W) images (not with a mask). The others (``L1L1GrdOptions``,
``CBPDNJointOptions``) run forward but refuse inputs that require a gradient.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from csc.core.checks import check_bool, shape_weights
from csc.core.xstep import gradient_gram
from csc.core.options import CBPDNOptions, FISTAOptions, GradRegOptions, L1L1GrdOptions, MaskDcplOptions
from csc.nn.implicit import BackwardRecord, CGOptions, GroupTerm, L2Term, SpectralTerm, implicit_gradients
from csc.problems.cbpdn import ConvBPDN
from csc.problems.fista import ConvBPDNFISTA
from csc.problems.joint import CBPDNJointOptions, ConvBPDNJoint
from csc.problems.maskdcpl import ConvBPDNMaskDcpl
from csc.problems.variants import ConvBPDNGradReg, ConvElasticNet, ConvL1L1Grd

#: the solvers by name (the layer picks one from the options' type, ``mu`` and ``mask``)
SOLVERS = {c.__name__: c for c in (ConvBPDN, ConvBPDNFISTA, ConvBPDNJoint, ConvBPDNMaskDcpl, ConvBPDNGradReg,
                                   ConvElasticNet, ConvL1L1Grd)}

__all__ = ["conv_sparse_code"]

#: solver classes whose constructor takes (D, lmbda, mu, options)
_WITH_MU = ("ConvElasticNet", "ConvBPDNGradReg", "ConvL1L1Grd", "ConvBPDNJoint")
#: solver classes whose solve takes a mask
_MASKED = ("ConvBPDNMaskDcpl", "ConvL1L1Grd")
#: solver classes with an implicit gradient
_RULES = ("ConvBPDN", "ConvBPDNFISTA", "ConvElasticNet", "ConvBPDNMaskDcpl", "ConvBPDNGradReg", "ConvBPDNJoint")


@dataclass(frozen=True)
class _Problem:
    """Which csc solver runs the forward, its options, and the backward's settings."""

    solver: str
    options: Any
    cg: CGOptions
    record: BackwardRecord | None
    require_converged: bool
    channels: int = 1  # C of ConvBPDNJoint: the images are (B·C, H, W), channel innermost


def _select_solver(options, mu, mask) -> tuple[str, Any]:
    """The solver class name for ``options``' type, μ and the mask; the options (defaults
    filled in). Errors name the argument that does not fit."""
    if options is None:
        options = MaskDcplOptions() if mask is not None else CBPDNOptions()
    has_mu = isinstance(mu, torch.Tensor) or mu != 0
    by_type = {CBPDNOptions: "ConvElasticNet" if has_mu else "ConvBPDN",
               MaskDcplOptions: "ConvBPDNMaskDcpl", FISTAOptions: "ConvBPDNFISTA",
               GradRegOptions: "ConvBPDNGradReg", L1L1GrdOptions: "ConvL1L1Grd",
               CBPDNJointOptions: "ConvBPDNJoint"}
    name = by_type.get(type(options))
    if name is None:
        raise TypeError(f"options: expected one of {[t.__name__ for t in by_type]} (or None), "
                        f"got {type(options).__name__}")
    if mask is not None and name not in _MASKED:
        raise ValueError(f"mask: {name} ({type(options).__name__}) takes no mask; a mask selects the "
                         "mask-decoupled problem: pass csc.MaskDcplOptions (or options=None)")
    if has_mu and name not in _WITH_MU:
        raise ValueError(f"mu: {name} ({type(options).__name__}) has no ℓ2 term; μ > 0 with "
                         "csc.CBPDNOptions is the elastic net")
    return name, options


def _run_solver(name: str, options, S, D, lmbda: float, mu: float, mask, channels: int = 1):
    """csc's solve of ``name`` (a top-level csc class) for images S; its result. ConvBPDNJoint's
    images (B·C, H, W) are solved as B images of ``channels`` channels."""
    cls = SOLVERS[name]
    if name == "ConvBPDNJoint":
        S = S.reshape(-1, channels, *S.shape[-2:])
    solver = cls(D, lmbda, mu, options) if name in _WITH_MU else cls(D, lmbda, options)
    if name in _MASKED:
        return solver.solve(S, mask=mask)
    return solver.solve(S)


def _unconverged(result, options) -> tuple[list[int], str]:
    """Images whose solve stopped at ``max_iter`` above its tolerance, and their last
    residuals (from the statistics when recorded; without them, every image at max_iter)."""
    iters = result.iterations.reshape(-1).cpu()
    bad = (iters >= options.max_iter).nonzero().flatten().tolist()
    stats = getattr(result, "stats", None)
    if not bad or not stats or not hasattr(stats[0], "eps_primal"):
        return bad, ""
    still, detail = [], []
    for i in bad:
        st = stats[i]
        if len(st.primal_residual) == 0:
            still.append(i)
            continue
        r, s, er, es = st.primal_residual[-1], st.dual_residual[-1], st.eps_primal[-1], st.eps_dual[-1]
        if not (r < er and s < es):
            still.append(i)
            detail.append(f"image {i}: primal {r:.3g} (tolerance {er:.3g}), dual {s:.3g} (tolerance {es:.3g})")
    return still, "; ".join(detail[:4])


def _check_converged(problem: _Problem, result) -> None:
    """Raise when a gradient is wanted at codes that are not a solution (module docstring)."""
    bad, detail = _unconverged(result, problem.options)
    if bad:
        opts = problem.options
        tol = f"rel_stop_tol={opts.rel_stop_tol:g}" + (f", abs_stop_tol={opts.abs_stop_tol:g}"
                                                        if hasattr(opts, "abs_stop_tol") else "")
        raise RuntimeError(
            f"conv_sparse_code: the {problem.solver} solve stopped at options.max_iter={opts.max_iter} before "
            f"its stopping tolerance ({tol}) for image(s) {bad[:10]}{' …' if len(bad) > 10 else ''}"
            f"{': ' + detail if detail else ''}. The implicit gradient is exact at the solution only (its "
            "error follows the codes'): raise options.max_iter, or pass require_converged=False to "
            "differentiate these codes anyway")


class _ConvSparseCodeFunction(torch.autograd.Function):
    """codes = solve(images, D, λ[, μ][, W]); backward by :func:`csc.nn.implicit.implicit_gradients`."""

    @staticmethod
    def forward(ctx, problem: _Problem, S, D, lmbda, mu, mask, weight):
        m = None if mask is None else (mask[0] if mask.shape[0] == 1 else mask)
        result = _run_solver(problem.solver, problem.options, S.detach(), D.detach(), float(lmbda.detach()),
                             0.0 if mu is None else float(mu.detach()), None if m is None else m.detach(),
                             problem.channels)
        if problem.require_converged:
            _check_converged(problem, result)
        codes = result.codes.reshape(S.shape[0], D.shape[0], *S.shape[-2:])
        ctx.problem = problem
        ctx.save_for_backward(S, D, codes, lmbda, mu, mask, weight)
        return codes

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        S, D, codes, lmbda, mu, mask, weight = ctx.saved_tensors
        problem = ctx.problem
        w = _l1_weight(problem.options.l1_weight if weight is None else weight, S, D.shape[0], problem.channels)
        needs = tuple(ctx.needs_input_grad[1:7])
        *grads, g_w = implicit_gradients(S, D, codes, grad.contiguous(), l1_weight=w, mask=mask,
                                         mu=0.0 if mu is None else float(mu), needs=needs, cg=problem.cg,
                                         record=problem.record, term=_term(problem, S, codes), lmbda=float(lmbda))
        if g_w is not None:  # summed over what the weights broadcast over, in their own shape
            g_w = g_w.sum_to_size(w.shape).reshape(weight.shape)
        return (None, *grads, g_w)


def _term(problem: _Problem, S: torch.Tensor, codes: torch.Tensor):
    """The regulariser μ weights: gradient regularisation's P_k = g_k Σ_i |Ĝ_i|² (as
    :class:`csc.ConvBPDNGradReg`'s x-step), joint sparsity's ℓ2,1 groups, else the elastic
    net's ½‖x‖² (:mod:`csc.nn.implicit`)."""
    o = problem.options
    if problem.solver == "ConvBPDNGradReg":
        g = torch.as_tensor(np.asarray(o.grad_weight, dtype=np.float64)).reshape(-1, 1, 1)
        return SpectralTerm((g * gradient_gram(tuple(S.shape[-2:]))).to(dtype=S.dtype, device=S.device),
                            S.shape[-2:])
    if problem.solver == "ConvBPDNJoint":
        C = problem.channels
        w = _as_weights("l21_weight", o.l21_weight, S, codes.shape[1], codes.shape[0] // C)
        return GroupTerm(codes, C, w if isinstance(w, float) else w.unsqueeze(1))
    return L2Term()


def _as_weights(name: str, w, S: torch.Tensor, K: int, rows: int):
    """Weights as a float, or a tensor shaped by :func:`csc.core.checks.shape_weights` to
    broadcast to (rows, K, H, W), in the images' dtype and device."""
    if isinstance(w, (int, float, np.integer, np.floating)) and not isinstance(w, bool):
        return float(w)
    t = torch.as_tensor(w, dtype=S.dtype, device=S.device)
    return float(t) if t.ndim == 0 else shape_weights(name, t, K, (rows, K) + tuple(S.shape[-2:]))


def _l1_weight(w, S: torch.Tensor, K: int, channels: int = 1):
    """The ℓ1 weights broadcasting to the codes (n, K, H, W) (a (B, K, H, W) map repeated for
    each of ConvBPDNJoint's channels)."""
    w = _as_weights("l1_weight", w, S, K, S.shape[0] // channels)
    if isinstance(w, float) or channels == 1 or w.shape[0] == 1:
        return w
    return w.repeat_interleave(channels, 0)


def conv_sparse_code(images: torch.Tensor, dictionary: torch.Tensor, lmbda, options=None, *, mu=0.0, mask=None,
                     l1_weight: torch.Tensor | None = None, cg: CGOptions | None = None,
                     record: BackwardRecord | None = None, require_converged: bool = True) -> torch.Tensor:
    r"""Sparse codes of ``images``, differentiable in the images, the dictionary, λ, μ, the mask
    and the ℓ1 weights.

    .. math::
        x^\star = \operatorname*{argmin}_x \tfrac12 \Big\| W \odot \Big(\sum_k d_k * x_k - s\Big)\Big\|^2
                  + \lambda \| w \odot x \|_1 + \tfrac{\mu}{2}\|x\|^2

    solved by csc (the solver follows from ``options``, ``mu`` and ``mask``: module
    docstring), differentiated implicitly at the solution (:mod:`csc.nn.implicit`).

    Parameters
    ----------
    images : (H, W), (B, H, W) or (B, C, H, W) tensor
        Each image (and, with a single-channel dictionary, each channel) is its own problem.
    dictionary : (K, kh, kw) or (K, C, kh, kw) tensor
        Kernels, on the images' device, in their dtype (float32 or float64); a multi-channel
        dictionary codes (C, H, W) or (B, C, H, W) images into one set of K maps each.
    lmbda : float or 0-d tensor
        λ ≥ 0 (a tensor may require a gradient).
    options : CBPDNOptions, MaskDcplOptions, FISTAOptions, … or None
        The forward solve's options (``l1_weight``, ``nonneg``, ``max_iter``,
        ``rel_stop_tol``, ``backend`` …). None: ``CBPDNOptions()``, or ``MaskDcplOptions()``
        with a mask. The gradient is exact at the solution: solve to the tolerance the
        gradient needs (the codes' relative error, about ``rel_stop_tol``, carries over).
    mu : float or 0-d tensor
        μ ≥ 0 of the elastic net (with ``CBPDNOptions``); 0 is CBPDN.
    mask : scalar, (H, W) or lead + (H, W) tensor, optional
        W ≥ 0 of the mask-decoupled problem (may require a gradient).
    l1_weight : tensor, optional
        The ℓ1 weights w ≥ 0 as a tensor that may require a gradient (∂L/∂w = −λ v ⊙ sign x,
        summed to its shape): (K,) per kernel, (K, H, W) or (B, K, H, W); it replaces
        ``options.l1_weight`` (None: the options' weights, constants).
    cg, record : CGOptions, BackwardRecord, optional
        The backward's conjugate gradients; a record it fills in (CG iterations, residuals).
    require_converged : bool
        When a gradient is wanted, raise if an image's solve stopped at ``max_iter`` above
        its tolerance (default True).

    Notes
    -----
    Returns the codes, lead + (K, H, W) (lead: the images' leading axes, (1,) for one image).
    """
    require_converged = check_bool("require_converged", require_converged)
    D = _as_dictionary(dictionary, images)
    name, options = _select_solver(options, mu, mask)
    S, lead = _as_images(images, D)
    channels = _joint_channels(images) if name == "ConvBPDNJoint" else 1
    _check_options_device(options, S)
    lam = _as_scalar("lmbda", lmbda, S)
    mu_t = _as_scalar("mu", mu, S) if name in _WITH_MU else None
    m = _as_mask(mask, S, lead) if mask is not None else None
    weight, options = _as_weight(l1_weight, options, S, channels)
    wants = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (S, D, lam, mu_t, m, weight))
    if not wants:  # csc's solve as is: no graph, no backward cost
        with torch.no_grad():
            mm = mask.detach() if isinstance(mask, torch.Tensor) else mask
            return _run_solver(name, options, images.detach(), D.detach(), float(lam),
                               0.0 if mu_t is None else float(mu_t), mm, channels).codes
    _check_rule(name, options, D, mask)
    problem = _Problem(name, options, cg if cg is not None else CGOptions(), record, require_converged, channels)
    codes = _ConvSparseCodeFunction.apply(problem, S, D, lam, mu_t, m, weight)
    if channels > 1 or name == "ConvBPDNJoint":  # (B·C, K, H, W) → (B, C, K, H, W), as the solver's
        return codes.reshape((-1, channels) + tuple(codes.shape[1:]))
    return codes.reshape(tuple(lead) + tuple(codes.shape[1:]))


def _as_weight(w, options, S: torch.Tensor, channels: int):
    """(the ℓ1 weights as an autograd input or None, the options with their detached copy)."""
    if w is None:
        return None, options
    if not isinstance(w, torch.Tensor):
        raise TypeError(f"l1_weight: expected a tensor (or None: options.l1_weight), got {type(w).__name__}")
    if w.dtype != S.dtype or w.device != S.device:
        raise TypeError(f"l1_weight: expected {S.dtype} on {S.device} (the images'), got {w.dtype} on {w.device}")
    if w.ndim not in (1, 3, 4) or (w.ndim == 4 and channels > 1):
        raise ValueError(f"l1_weight: expected (K,), (K, H, W) or (B, K, H, W)"
                         f"{' ((K,) or (K, H, W) with joint sparsity)' if channels > 1 else ''}, "
                         f"got shape {tuple(w.shape)}")
    return w, dataclasses.replace(options, l1_weight=w.detach())


def _check_rule(name: str, options, D: torch.Tensor, mask) -> None:
    """Refuse a gradient where there is no implicit rule: the problem, or a mask with a
    multi-channel dictionary."""
    if name not in _RULES:
        raise NotImplementedError(
            f"conv_sparse_code: {name} ({type(options).__name__}) has no implicit gradient yet; its forward runs "
            "on inputs that do not require a gradient (detach them, or use torch.no_grad()). Gradients: "
            f"{', '.join(_RULES)}")
    if D.ndim == 4 and mask is not None:
        raise NotImplementedError("mask: the implicit gradient takes a mask with a single-channel dictionary "
                                  f"(K, kh, kw) only, got a dictionary of shape {tuple(D.shape)}")


def _joint_channels(images: torch.Tensor) -> int:
    """C of ConvBPDNJoint's (C, H, W) or (B, C, H, W) images."""
    if images.ndim not in (3, 4):
        raise ValueError(f"images: joint sparsity takes (C, H, W) or (B, C, H, W) images, got shape "
                         f"{tuple(images.shape)}")
    return images.shape[-3]


def _as_images(images: torch.Tensor, D: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Images as (n, H, W), or (n, C, H, W) for a multi-channel dictionary (K, C, kh, kw), and
    their leading axes."""
    if images.ndim not in (2, 3, 4) or images.numel() == 0:
        raise ValueError(f"images: expected (H, W), (B, H, W) or (B, C, H, W), got shape {tuple(images.shape)}")
    if D.ndim == 4:
        C = D.shape[1]
        if images.ndim not in (3, 4) or images.shape[-3] != C:
            raise ValueError(f"images: a dictionary of {C} channels {tuple(D.shape)} takes (C, H, W) or "
                             f"(B, C, H, W) images with C = {C}, got shape {tuple(images.shape)}")
        return images.reshape(-1, *images.shape[-3:]), tuple(images.shape[:-3]) or (1,)
    lead = tuple(images.shape[:-2]) or (1,)
    return images.reshape(-1, *images.shape[-2:]), lead


def _as_dictionary(D, images) -> torch.Tensor:
    """The kernels, checked against the images' type, dtype and device."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images: expected a torch tensor, got {type(images).__name__}")
    if images.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"images: expected float32 or float64, got {images.dtype}")
    if not isinstance(D, torch.Tensor):
        raise TypeError(f"dictionary: expected a torch tensor, got {type(D).__name__}")
    if D.dtype != images.dtype or D.device != images.device:
        raise TypeError(f"dictionary: expected {images.dtype} on {images.device} (the images'), got {D.dtype} on "
                        f"{D.device}")
    if D.ndim not in (3, 4):
        raise ValueError(f"dictionary: expected (K, kh, kw) or (K, C, kh, kw), got shape {tuple(D.shape)}")
    return D


def _check_options_device(options, S: torch.Tensor) -> None:
    """The options' dtype and device, when set, must be the images' (gradients go back there)."""
    dt = getattr(options, "dtype", None)
    if dt is not None and dt != S.dtype:
        raise ValueError(f"options.dtype: {dt} differs from the images' {S.dtype}; convert the images instead")
    dev = getattr(options, "device", None)
    if dev is not None:
        dev = torch.device(dev)
        if dev.type != S.device.type or (dev.index is not None and dev.index != S.device.index):
            raise ValueError(f"options.device: {dev} differs from the images' {S.device}; move the images instead")


def _as_scalar(name: str, value, S: torch.Tensor) -> torch.Tensor:
    """λ or μ as a 0-d tensor in the images' dtype and device; ≥ 0, finite."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name}: expected a number or a one-element tensor, got shape {tuple(value.shape)}")
        t = value.reshape(()).to(dtype=S.dtype, device=S.device)
    elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        t = torch.tensor(float(value), dtype=S.dtype, device=S.device)
    else:
        raise TypeError(f"{name}: expected a number or a tensor, got {value!r}")
    v = float(t.detach())
    if not np.isfinite(v) or v < 0:
        raise ValueError(f"{name}: expected a finite value >= 0, got {v!r}")
    return t


def _as_mask(mask, S: torch.Tensor, lead) -> torch.Tensor:
    """W as (1, H, W) or (n, H, W) in the images' dtype and device (the solver checks its values)."""
    n, (H, W) = S.shape[0], S.shape[-2:]
    m = mask if isinstance(mask, torch.Tensor) else torch.as_tensor(mask)
    m = m.to(dtype=S.dtype, device=S.device)
    if m.ndim == 0:
        return m.expand(1, H, W)
    shapes = {(H, W): 1, tuple(lead) + (H, W): n, (n, H, W): n}
    if tuple(m.shape) not in shapes:
        raise ValueError(f"mask: expected a scalar, {(H, W)} or {tuple(lead) + (H, W)}, got shape {tuple(m.shape)}")
    return m.reshape(shapes[tuple(m.shape)], H, W)

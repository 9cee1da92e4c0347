r"""Additive mask simulation (SPORCO ``admm.cbpdn.AddMaskSim``, Wohlberg 2016): a spatial mask
for problems where mask decoupling does not apply, around :class:`csc.ConvBPDN` and its
quadratic variants (:class:`csc.ConvElasticNet`, :class:`csc.ConvBPDNGradReg`).

An impulse kernel δ is appended to the dictionary and its map z takes whatever the mask
hides: the problem solved is

.. math::
    \operatorname*{argmin}_{x, z} \; \tfrac12 \Big\| \sum_k d_k * x_k + z - s \Big\|_2^2
    + \lambda \sum_k \| w_k \odot x_k \|_1 + (\text{the variant's term})
    \quad \text{such that } z = 0 \text{ where } W \ne 0 ,

which for a 0/1 mask W is min ½‖W ⊙ (Σ_k d_k * x_k − s)‖² + λ‖w ⊙ x‖₁ (+ …). The ADMM
iteration is the wrapped solver's, with z's y-step replaced (y_z = a_z + u_z where W = 0,
0 elsewhere, no threshold or constraint: the prox :class:`csc.core.prox.ImpulseMask` around the
solver's, composed at the solve, with its numba kernel :class:`csc.backends.numba_cpu.FusedAddMaskSim`);
statistics are the wrapped solver's on the extended dictionary (the fidelity includes z,
the ℓ1 term leaves it out), as SPORCO's. The result drops z: ``codes``, ``x`` and ``u``
have the K maps of the dictionary and ``reconstruct`` uses its kernels only.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch

from csc.core.checks import DeviceCopies, check_nonnegative
from csc.core.prox import ImpulseMask
from csc.problems.cbpdn import CBPDNResult, ConvBPDN
from csc.problems.maskdcpl import BOUNDARIES, ConvBPDNMaskDcpl, pad_for_mask
from csc.problems.variants import ConvBPDNGradReg, ConvElasticNet

__all__ = ["AddMaskSim"]

#: the solvers AddMaskSim wraps (their y-step is CBPDN's soft threshold)
_WRAPPABLE = (ConvBPDN, ConvElasticNet, ConvBPDNGradReg)


class AddMaskSim:
    r"""Additive mask simulation around a :class:`csc.ConvBPDN`, :class:`csc.ConvElasticNet` or
    :class:`csc.ConvBPDNGradReg` solver (SPORCO ``admm.cbpdn.AddMaskSim``; module docstring):

    .. math::
        \operatorname*{argmin}_{x, z:\, z = 0 \text{ where } W \ne 0} \;
        \tfrac12 \Big\| \sum_k d_k * x_k + z - s \Big\|_2^2 + \lambda \sum_k \| w_k \odot x_k \|_1 .

    ``AddMaskSim(solver).solve(images, mask, boundary="periodic")``: ``mask`` as
    :meth:`csc.ConvBPDNMaskDcpl.solve` (only where it is 0 matters), ``boundary="mask"``
    pads and masks the borders. The solver's options apply (``l1_weight`` a scalar or one
    weight per kernel; ``grad_weight`` a scalar, the impulses' too, or per kernel with
    ``impulse_grad_weight`` the impulses' weight: SPORCO's ``GradWeight`` of K + C entries
    split); on the solver's back end (``backend``: the
    torch loop on any device, or the fused CPU kernels). Devices as the solver's
    (:class:`csc.ConvBPDN`): without ``options.device`` the solve works on the images'
    device; the mask is moved there with them, and the dictionary with its impulse kernel and
    the weights are made there once (kept for the next solves).
    """

    def __init__(self, solver: ConvBPDN, impulse_grad_weight: float | None = None):
        if type(solver) not in _WRAPPABLE:
            raise TypeError(f"solver: expected a ConvBPDN, ConvElasticNet or ConvBPDNGradReg, got "
                            f"{type(solver).__name__}")
        gw = getattr(solver.options, "grad_weight", None)
        if impulse_grad_weight is not None:
            if gw is None:
                raise ValueError("impulse_grad_weight: only a ConvBPDNGradReg solver has gradient weights")
            impulse_grad_weight = check_nonnegative("impulse_grad_weight", impulse_grad_weight)
        elif gw is not None and np.ndim(gw) != 0 and np.size(gw) > 1:
            raise ValueError("grad_weight: with one gradient weight per kernel, AddMaskSim needs the impulse "
                             "kernels' too: pass impulse_grad_weight= (SPORCO's GradWeight has K + C entries, "
                             "the last C the impulses')")
        self.solver, self.impulse_grad_weight = solver, impulse_grad_weight
        self._copies = DeviceCopies()  # the extended dictionary and weights on each device

    def solve(self, images, mask, boundary: str = "periodic") -> CBPDNResult:
        """Codes of ``images`` ((H, W), (B, H, W) or (B, C, H, W)) under ``mask``."""
        if boundary not in BOUNDARIES:
            raise ValueError(f"boundary: expected one of {BOUNDARIES}, got {boundary!r}")
        base = self.solver
        S, lead = base._prepare_images(images)
        C = self._impulses()
        m = ConvBPDNMaskDcpl._prepare_mask(mask, S.shape[0], lead, tuple(S.shape[-2:]), S, C)
        if boundary == "mask":
            S, m = pad_for_mask(S, m, base.dictionary.shape[-2:])
        free = (m == 0) if isinstance(m, torch.Tensor) else torch.zeros((1, 1, 1, 1), dtype=torch.bool)
        inner, K = self._inner(S), base.dictionary.shape[0]
        free = free.to(S.device)
        res = inner._solve_prepared(S, lead, wrap=lambda prox: ImpulseMask(prox, free, C),
                                    penalty_maps=K if type(base) is ConvElasticNet else None)
        return dataclasses.replace(res, codes=res.codes[..., :K, :, :], x=res.x[..., :K, :, :],
                                   u=res.u[..., :K, :, :], dictionary=res.dictionary[:K])

    def _impulses(self) -> int:
        """The impulse kernels appended: 1, or C for a multi-channel dictionary (K, C, kh, kw),
        kernel c an impulse in channel c only (SPORCO's ``imp[0, 0, c, c] = 1``); a mask with a
        channel axis frees impulse c where channel c's mask is 0."""
        D = self.solver.dictionary
        return int(D.shape[1]) if D.ndim == 4 else 1

    def _inner(self, S: torch.Tensor) -> ConvBPDN:
        """The wrapped solver on the dictionary with the impulse kernel appended and the impulse's
        ℓ1 weight 0 (its y-step is composed at the solve: :class:`csc.core.prox.ImpulseMask`); its
        dictionary and weights on the images S's device (made there once). The elastic net's
        penalty statistic leaves the impulse's map out (SPORCO's ConvElasticNet evaluates RegL2 on
        the variable AddMaskSim strips; ConvBPDNGradReg its RegGrad on the full maps)."""
        base = self.solver
        K, dev, C = base.dictionary.shape[0], S.device, self._impulses()

        def extended():
            D = base._dictionary_on(dev)
            imp = torch.zeros((C,) + tuple(D.shape[1:]), dtype=D.dtype, device=D.device)
            for c in range(C):
                imp[(c, c, 0, 0) if D.ndim == 4 else (0, 0, 0)] = 1.0
            return torch.cat([D, imp])

        w = base.options.l1_weight
        inner = copy.copy(base)
        inner._copies = DeviceCopies()  # the inner solver's own (its dictionary is another)
        inner.dictionary = self._copies.get("dictionary", base.dictionary, dev, extended)
        changes = dict(l1_weight=self._copies.get(
            "l1_weight", w, (dev, S.dtype), lambda: _with_impulse_weight(w, K, C).to(dtype=S.dtype, device=dev)))
        if self.impulse_grad_weight is not None:  # the impulses' gradient weights appended (SPORCO's K + C)
            g = np.broadcast_to(np.asarray(base.options.grad_weight, dtype=np.float64), (K,))
            changes["grad_weight"] = np.append(g, np.full(C, self.impulse_grad_weight))
        inner.options = _replace_unchecked(base.options, **changes)
        inner._device = dev
        return inner


def _replace_unchecked(opts, **changes):
    """``opts`` with ``changes``, without the options' checks (the inner solver's weights cover
    the impulse kernels too: K + C of them, which the options of a K-kernel solver refuse)."""
    out = copy.copy(opts)
    for name, value in changes.items():
        object.__setattr__(out, name, value)
    return out


def _with_impulse_weight(w, K: int, impulses: int = 1) -> torch.Tensor:
    """ℓ1 weights for the K kernels and the impulses (weight 0): from a scalar or (K,) weights."""
    arr = w.detach().cpu().numpy() if isinstance(w, torch.Tensor) else np.asarray(w, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(K, float(arr))
    if arr.ndim > 1 and arr.shape[0] == arr.size:  # (K, 1, 1): SPORCO's per-kernel layout, converted
        arr = arr.reshape(-1)
    if arr.ndim != 1 or arr.shape[0] not in (1, K):
        raise ValueError(f"l1_weight: AddMaskSim takes a scalar or one weight per kernel (K={K},), got shape "
                         f"{arr.shape}")
    return torch.from_numpy(np.append(np.broadcast_to(arr.astype(np.float64), (K,)), np.zeros(impulses)))


"""Small problems and finite differences for the layer's tests.

Every check differentiates the *solution map*: the codes of a tightly solved problem
(relative stopping tolerance 1e-13, float64), perturbed along a random direction by ±h with
h small enough that the support does not change (asserted, not assumed)."""

from __future__ import annotations

import torch

import csc
from csc.nn import conv_sparse_code

F64 = torch.float64

#: ADMM options that reach 1e-13 in under a thousand iterations on these problems (SPORCO's
#: adaptive ρ, updated every iteration towards its default residual target, oscillates above
#: 1e-8 at λ ≈ 0.3 with weights: ξ = 1, an update every 10 iterations and no relaxation do not)
TIGHT = dict(rel_stop_tol=1e-13, max_iter=5000, rsdl_target=1.0, rho_period=10, relax=1.0, record_stats=False)


def unit_dictionary(K: int = 4, k: int = 5, seed: int = 0, dtype=F64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    D = torch.randn(K, k, k, generator=g, dtype=F64)
    return (D / D.flatten(1).norm(dim=1).reshape(-1, 1, 1)).to(dtype)


def images(B: int = 2, H: int = 16, seed: int = 1, dtype=F64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, H, H, generator=g, dtype=F64).to(dtype)


def tight(cls=None, **kw):
    """Tight options of ``cls`` (CBPDNOptions by default; MaskDcplOptions keeps its fixed ρ)."""
    cls = cls or csc.CBPDNOptions
    base = dict(TIGHT)
    if cls is csc.MaskDcplOptions:
        base = dict(rel_stop_tol=1e-13, max_iter=5000, record_stats=False)
    return cls(**{**base, **kw})


def directional_check(inputs: dict, call, h: float = 1e-5, seed: int = 7, keep_zeros: tuple = ()) -> dict:
    """Directional derivatives of ⟨G, codes(inputs)⟩ along a random unit direction of each
    input: autograd against central differences.

    ``inputs`` maps names to tensors (the differentiable arguments); ``call(**inputs)`` returns
    the codes. Returns, per name, (autograd, finite difference, relative error), after
    asserting that the support is the same at +h and −h. The inputs named in ``keep_zeros``
    are perturbed where they are nonzero only (a mask's missing pixels stay missing)."""
    g = torch.Generator().manual_seed(seed)
    leaves = {n: t.detach().clone().requires_grad_(True) for n, t in inputs.items()}
    codes = call(**leaves)
    G = torch.randn(codes.shape, generator=g, dtype=codes.dtype)
    (codes * G).sum().backward()
    out = {}
    for name, t in inputs.items():
        d = torch.randn(t.shape, generator=g, dtype=t.dtype)
        if name in keep_zeros:
            d = d * (t != 0)
        d = d / d.norm()  # a unit direction: h is the step's length
        plus = call(**{**inputs, name: t + h * d})
        minus = call(**{**inputs, name: t - h * d})
        assert torch.equal(plus != 0, minus != 0), f"{name}: the support changed within ±h; pick another point"
        assert torch.equal(plus != 0, codes.detach() != 0), f"{name}: the support changed within h"
        fd = float(((plus - minus) * G).sum()) / (2 * h)
        an = float((leaves[name].grad * d).sum())
        out[name] = (an, fd, abs(an - fd) / max(abs(fd), 1e-300))
    return out


def code(options, **extra):
    """``call`` for :func:`directional_check`: conv_sparse_code with ``options`` and ``extra``."""
    def call(images, dictionary, lmbda, **more):
        return conv_sparse_code(images, dictionary, lmbda, options, **{**extra, **more})
    return call

r"""The sparse-coding layer: :class:`ConvSparseCode`."""

from __future__ import annotations

import math

import torch
from torch import nn

from csc.core.checks import check_bool
from csc.nn.functional import conv_sparse_code
from csc.nn.implicit import BackwardRecord, CGOptions

__all__ = ["ConvSparseCode", "CONSTRAINTS"]

#: the dictionary constraints of :class:`ConvSparseCode`
CONSTRAINTS = (None, "unit_norm", "unit_ball", "normalize")


class ConvSparseCode(nn.Module):
    r"""Convolutional sparse coding as a layer: images (B, H, W) → codes (B, K, H, W).

    .. math::
        x^\star(s) = \operatorname*{argmin}_x \tfrac12 \Big\|\sum_k d_k * x_k - s\Big\|^2
                     + \lambda \|w \odot x\|_1 \;[+ \tfrac{\mu}{2}\|x\|^2]

    solved by csc to the options' tolerance and differentiated implicitly at the solution
    (:func:`csc.nn.functional.conv_sparse_code`). Gradients reach the images, the
    dictionary (an ``nn.Parameter`` when ``learn_dictionary``) and λ (when ``learn_lmbda``:
    λ = exp(``log_lmbda``), so it stays positive under any step).

    Parameters
    ----------
    dictionary : (K, kh, kw) tensor or array
        Initial kernels (copied).
    lmbda : float
        Initial λ > 0 (≥ 0 when not learned).
    options : CBPDNOptions, MaskDcplOptions or FISTAOptions, optional
        The forward solve's options (:func:`conv_sparse_code`).
    learn_dictionary, learn_lmbda : bool
        Which of the dictionary and λ are parameters (the others are buffers: both are in
        the ``state_dict`` either way).
    learn_kernel_weights : bool
        Learn one ℓ1 weight per kernel, w_k = exp(``log_kernel_weight``_k) (1 at the start):
        each kernel its own λw_k, as the paper's heterogeneous dictionaries suggest. They
        replace ``options.l1_weight`` (default False: the options' weights).
    mu : float
        The elastic net's μ (0: CBPDN).
    cg : CGOptions, optional
        The backward's conjugate gradients.
    constraint : None, "unit_norm", "unit_ball" or "normalize"
        What keeps the kernels' scale, as the user chooses. None (default): nothing (the
        dictionary is free; with a learned dictionary its norms may grow as the codes
        shrink). "unit_norm" / "unit_ball": :meth:`project_` rescales every kernel to
        ‖d_k‖ = 1 / ‖d_k‖ ≤ 1 in place; it runs at the start of every forward (under
        ``no_grad``, only when a kernel is off the set), so a step's change is projected
        before the next solve; call it after ``optimizer.step()`` to keep the stored
        parameter projected at all times. "normalize": the solve uses d_k / ‖d_k‖ (the
        gradient flows through the normalisation; the parameter itself is unconstrained).
    require_converged : bool
        Raise when a gradient is wanted at an unconverged solve (default True).

    Attributes
    ----------
    record : BackwardRecord
        What the last backward did (CG iterations, residuals, support sizes).

    Examples
    --------
    >>> layer = ConvSparseCode(D0, 0.1, csc.CBPDNOptions(rel_stop_tol=1e-4), constraint="unit_norm")
    >>> codes = layer(images)                  # (B, K, H, W)
    >>> loss = ((csc.core.ops.synthesis(layer.dictionary, codes) - clean) ** 2).sum()
    >>> loss.backward()                        # layer.dictionary.grad
    """

    def __init__(self, dictionary, lmbda: float, options=None, learn_dictionary: bool = True,
                 learn_lmbda: bool = False, *, learn_kernel_weights: bool = False, mu: float = 0.0,
                 cg: CGOptions | None = None, constraint: str | None = None, require_converged: bool = True):
        super().__init__()
        learn_dictionary = check_bool("learn_dictionary", learn_dictionary)
        learn_lmbda = check_bool("learn_lmbda", learn_lmbda)
        learn_kernel_weights = check_bool("learn_kernel_weights", learn_kernel_weights)
        require_converged = check_bool("require_converged", require_converged)
        if constraint not in CONSTRAINTS:
            raise ValueError(f"constraint: expected one of {CONSTRAINTS}, got {constraint!r}")
        D = torch.as_tensor(dictionary).detach().clone()
        if not D.is_floating_point() or D.ndim != 3:
            raise ValueError(f"dictionary: expected float kernels (K, kh, kw), got {D.dtype} {tuple(D.shape)}")
        if isinstance(lmbda, bool) or not isinstance(lmbda, (int, float)) or not math.isfinite(lmbda) \
                or lmbda < 0 or (learn_lmbda and lmbda == 0):
            raise ValueError(f"lmbda: expected a finite number {'> 0 (learned as log λ)' if learn_lmbda else '>= 0'}, "
                             f"got {lmbda!r}")
        if learn_dictionary:
            self.dictionary = nn.Parameter(D)
        else:
            self.register_buffer("dictionary", D)
        value = torch.tensor(math.log(lmbda) if learn_lmbda else float(lmbda), dtype=D.dtype)
        if learn_lmbda:
            self.log_lmbda = nn.Parameter(value)
        else:
            self.register_buffer("lmbda_value", value)
        if learn_kernel_weights:  # w_k = exp(log w_k), 1 at the start: λw_k is kernel k's own λ
            self.log_kernel_weight = nn.Parameter(torch.zeros(D.shape[0], dtype=D.dtype))
        self.options, self.mu, self.cg, self.constraint = options, float(mu), cg, constraint
        self.require_converged = require_converged
        self.record = BackwardRecord()

    @property
    def kernel_weights(self) -> torch.Tensor | None:
        """The learned per-kernel ℓ1 weights w_k = exp(``log_kernel_weight``) (K,), or None."""
        return self.log_kernel_weight.exp() if hasattr(self, "log_kernel_weight") else None

    @property
    def lmbda(self) -> torch.Tensor:
        """λ as a 0-d tensor (exp(log λ) when learned)."""
        return self.log_lmbda.exp() if hasattr(self, "log_lmbda") else self.lmbda_value

    def kernels(self) -> torch.Tensor:
        """The kernels the solve uses: the dictionary, normalised with ``constraint="normalize"``."""
        D = self.dictionary
        if self.constraint == "normalize":
            return D / D.flatten(1).norm(dim=1).clamp_min(torch.finfo(D.dtype).tiny).reshape(-1, 1, 1)
        return D

    @torch.no_grad()
    def project_(self, atol: float = 0.0) -> bool:
        """Project the dictionary in place onto the constraint set ("unit_norm": ‖d_k‖ = 1,
        zero kernels left at 0; "unit_ball": ‖d_k‖ ≤ 1). Does nothing, and returns False, when
        every kernel is within ``atol`` of the set (or for no projection constraint); True
        when it changed the dictionary."""
        if self.constraint not in ("unit_norm", "unit_ball"):
            return False
        D = self.dictionary
        norms = D.flatten(1).norm(dim=1)
        target = torch.ones_like(norms) if self.constraint == "unit_norm" else norms.clamp(max=1.0)
        target = torch.where(norms > 0, target, norms)
        if bool(((norms - target).abs() <= atol).all()):
            return False
        D.mul_((target / norms.clamp_min(torch.finfo(D.dtype).tiny)).reshape(-1, 1, 1))
        return True

    def forward(self, images: torch.Tensor, mask=None) -> torch.Tensor:
        """Codes lead + (K, H, W) of ``images`` (H, W), (B, H, W) or (B, C, H, W); ``mask`` selects
        the mask-decoupled problem (with ``MaskDcplOptions`` or ``options=None``)."""
        self.project_(atol=64 * torch.finfo(self.dictionary.dtype).eps)
        return conv_sparse_code(images, self.kernels(), self.lmbda, self.options, mu=self.mu, mask=mask,
                                l1_weight=self.kernel_weights, cg=self.cg, record=self.record,
                                require_converged=self.require_converged)

    def extra_repr(self) -> str:
        K, kh, kw = self.dictionary.shape
        learned = "learned" if hasattr(self, "log_lmbda") else "fixed"
        return (f"K={K}, kernel=({kh}, {kw}), lmbda={float(self.lmbda.detach()):.4g} ({learned}), mu={self.mu:g}, "
                f"constraint={self.constraint!r}, options={type(self.options).__name__ if self.options else None}")

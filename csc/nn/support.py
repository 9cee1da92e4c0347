r"""The backward's vectors on the support, and M applied to them patch by patch.

The adjoint system M v_S = g_S of :mod:`csc.nn.implicit` lives on the support S of the codes,
a small fraction of the K·H·W coefficients (0.13% for a 256² photograph with the paper's 144
kernels). :class:`Support` holds S once per backward as a compact vector: its coefficients'
flat indices, ordered by image row and by t×t-pixel tile (the blocks of
:class:`csc.nn.precondition.BlockJacobi`), with the problem each belongs to (CG's per-problem
inner products are segment sums). :class:`PatchOperator` applies

.. math::  M v = A_S^T W^2 A_S v + \mu H_S v + \epsilon v

to a compact v without FFTs: A v adds each coefficient's kernel, a kh×kw (×C) patch, into
the images at its pixel (circularly, as csc's A), and A_Sᵀ reads the patch of each
coefficient back and takes its inner product with the kernel, so an application costs
2·|S|·C·kh·kw multiply-adds against the FFT operator's 2K maps' FFTs. A smooth term other
than the elastic net's (gradient regularisation's Q, the joint-sparsity groups) is applied
on the dense maps.
"""

from __future__ import annotations

import torch

__all__ = ["Support", "PatchOperator"]


class Support:
    r"""The support of codes (n, K, H, W) as compact vectors, in blocks of tiles.

    Parameters
    ----------
    support : (n, K, H, W) bool
        Each row's support.
    tile : int
        The tiles' side in pixels.
    max_block : int
        The largest block: a tile with more coefficients is cut in pieces.
    rows : int
        Consecutive rows that make one problem (a joint-sparsity image's C channels).

    Attributes
    ----------
    flat : (|S|,) int64
        Flat indices into the codes, tile by tile.
    row, k, i, j : (|S|,) int64
        Row, kernel and pixel of each coefficient.
    problem : (|S|,) int64
        The problem (row // rows) of each, for :meth:`dot`.
    members : (NB, m) int64
        Each block's coefficients (positions in the compact vector), −1 for padding.
    """

    def __init__(self, support: torch.Tensor, tile: int, max_block: int, rows: int = 1):
        self.shape = tuple(support.shape)
        n, K, H, W = self.shape
        self.n_problems = n // rows
        flat = support.flatten().nonzero().flatten()  # the one host read of the backward's support
        row, rem = flat // (K * H * W), flat % (H * W)
        ti, tj = (rem // W) // tile, (rem % W) // tile
        key = (row * ((H + tile - 1) // tile) + ti) * ((W + tile - 1) // tile) + tj
        key, order = torch.sort(key, stable=True)
        self.flat = flat[order]
        self.row, self.k = self.flat // (K * H * W), (self.flat // (H * W)) % K
        self.i, self.j = (self.flat % (H * W)) // W, self.flat % W
        self.problem = self.row // rows
        self.members = self._blocks(key, max_block)

    @staticmethod
    def _blocks(key: torch.Tensor, max_block: int) -> torch.Tensor:
        if key.numel() == 0:
            return torch.zeros((0, 0), dtype=torch.int64, device=key.device)
        rank = torch.arange(key.numel(), device=key.device) - torch.searchsorted(key, key)
        first = torch.ones(1, dtype=torch.bool, device=key.device)
        starts = torch.cat([first, (key[1:] != key[:-1]) | (rank[1:] % max_block == 0)])
        block, pos = torch.cumsum(starts.to(torch.int64), 0) - 1, rank % max_block
        members = torch.full((int(block[-1]) + 1, int(pos.max()) + 1), -1, dtype=torch.int64, device=key.device)
        members[block, pos] = torch.arange(key.numel(), device=key.device)
        return members

    @property
    def size(self) -> int:
        """|S|."""
        return self.flat.numel()

    def gather(self, t: torch.Tensor) -> torch.Tensor:
        """The support's entries of a code-shaped tensor: (|S|,)."""
        return t.reshape(-1)[self.flat]

    def scatter(self, v: torch.Tensor) -> torch.Tensor:
        """The code-shaped tensor with ``v`` on the support and zeros off it."""
        out = torch.zeros(self.shape, dtype=v.dtype, device=v.device)
        out.view(-1)[self.flat] = v
        return out

    def dot(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Per-problem inner products of two compact vectors: (n_problems,)."""
        out = torch.zeros(self.n_problems, dtype=a.dtype, device=a.device)
        return out.index_add_(0, self.problem, a * b)

    def per_problem(self, t: torch.Tensor) -> torch.Tensor:
        """A per-problem value (n_problems,) spread over the compact vector."""
        return t[self.problem]


class PatchOperator:
    r"""M v = A_SᵀW²A_S v + μ H v + ε v on compact vectors (module docstring).

    Parameters
    ----------
    D : (K, kh, kw) or (K, C, kh, kw)
        Kernels.
    support : Support
    weight2 : tensor broadcasting to (n, [C,] H, W), or None
        W² (None: W = 1).
    ridge : float
        ε.
    term, mu : the smooth regulariser (:class:`csc.nn.implicit.L2Term`, ``SpectralTerm``,
        ``GroupTerm``) and its weight (None or 0: none)
    """

    def __init__(self, D: torch.Tensor, support: Support, weight2: torch.Tensor | None, ridge: float,
                 term=None, mu: float = 0.0):
        n, K, H, W = support.shape
        self.S, self.weight2, self.ridge = support, weight2, float(ridge)
        self.term, self.mu = (term, float(mu)) if term is not None and mu else (None, 0.0)
        C = D.shape[1] if D.ndim == 4 else 1
        kh, kw = D.shape[-2:]
        self.image_shape = (n, C, H, W) if D.ndim == 4 else (n, H, W)
        u = torch.arange(kh, device=D.device).reshape(1, 1, kh, 1)
        w = torch.arange(kw, device=D.device).reshape(1, 1, 1, kw)
        c = torch.arange(C, device=D.device).reshape(1, C, 1, 1)
        s = support
        pix = ((s.i.reshape(-1, 1, 1, 1) + u) % H) * W + (s.j.reshape(-1, 1, 1, 1) + w) % W
        self.index = ((s.row.reshape(-1, 1, 1, 1) * C + c) * (H * W) + pix).reshape(s.size, -1)
        self.patches = D.reshape(K, -1)[s.k]  # (|S|, C·kh·kw)

    def synthesis(self, v: torch.Tensor) -> torch.Tensor:
        """A v for a compact v: the images (n, [C,] H, W)."""
        out = torch.zeros(self.image_shape, dtype=v.dtype, device=v.device)
        out.view(-1).index_add_(0, self.index.reshape(-1), (v[:, None] * self.patches).reshape(-1))
        return out

    def adjoint(self, r: torch.Tensor) -> torch.Tensor:
        """A_Sᵀ r for images r (n, [C,] H, W): compact."""
        return (r.reshape(-1)[self.index] * self.patches).sum(1)

    def weighted(self, r: torch.Tensor) -> torch.Tensor:
        """W² ⊙ r (r itself without a mask)."""
        return r if self.weight2 is None else self.weight2 * r

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        out = self.adjoint(self.weighted(self.synthesis(v)))
        if self.term is not None:
            out = out + self.mu * self._term_hessian(v)
        return out + self.ridge * v if self.ridge else out

    def _term_hessian(self, v: torch.Tensor) -> torch.Tensor:
        hess = getattr(self.term, "compact_hessian", None)
        if hess is not None:
            return hess(v)
        return self.S.gather(self.term.hessian(self.S.scatter(v)))

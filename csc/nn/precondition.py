r"""The backward's preconditioner: block Jacobi over spatial tiles of the support.

The adjoint system of :mod:`csc.nn.implicit` is M v_S = g_S with M = A_SᵀW²A_S + μH_S (+ εI).
Its Gram part is badly conditioned when the support holds coherent atoms close together
(two similar kernels at the same pixel, a smooth kernel at neighbouring pixels): on a 64²
photograph coded with the 144 log-Gabor kernels (λ = 0.05, ADMM stopped at 1e-3) cond(M) is
7.6·10⁵ and plain CG does not reach 1e-10 in 3000 iterations, while the same matrix
preconditioned by the inverse of its blocks over 8×8-pixel tiles has cond 2·10³ and PCG
converges in under 400.

The blocks: the support's coefficients are grouped by image row and by t×t tile of pixels
(all K kernels of the tile together), a group larger than ``max_block`` cut in pieces. Each
block's Gram matrix is exact for the unmasked A and the elastic net's or gradient
regularisation's μH (translation-invariant, so read from tables of kernel correlations),

.. math::  G_{ac} = \operatorname{corr}(d_{k_a}, d_{k_c})[p_a - p_c]
                    + \mu\,H_{k_a k_c}[p_a - p_c] + \epsilon\,\delta_{ac},
           \qquad \operatorname{corr}(d_1, d_2)[\delta] = \sum_q d_1(q)\, d_2(q + \delta),

(circular on the image grid, as A is), and the preconditioner applies the blocks' inverses
by their inverses (from Cholesky factors), one batched product per iteration. A mask W and the joint-sparsity term are left out of the
blocks: the preconditioner is then an approximation of M's blocks, still symmetric positive
definite, so PCG converges to the same v (only its speed depends on the approximation).
All of it is torch on the solution's device; the support's indices are read once per
backward, never per iteration.
"""

from __future__ import annotations

import torch

from csc.core import ops
from csc.nn.support import Support

__all__ = ["BlockJacobi", "kernel_correlations"]


def kernel_correlations(D: torch.Tensor, shape, reach: int) -> tuple[torch.Tensor, tuple[int, int]]:
    r"""corr(d_k1, d_k2)[δ] for every pair of kernels and every offset |δ| < ``reach``.

    Parameters
    ----------
    D : (K, kh, kw) or (K, C, kh, kw)
        Kernels (a multi-channel dictionary's correlations are summed over the channels).
    shape : (H, W)
        The image grid (A is circular on it).
    reach : int
        The largest offset needed, plus one.

    Returns
    -------
    table : (K, K, Lh, Lw)
        table[k1, k2, δ mod (Lh, Lw)], circular on a grid (Lh, Lw) = min(shape, kernel + reach − 1):
        the image grid itself when it is that small, else a grid large enough for the
        correlations at |δ| < reach not to wrap (and so equal the image grid's).
    grid : (Lh, Lw)
    """
    kh, kw = D.shape[-2:]
    grid = (min(shape[0], kh + reach - 1), min(shape[1], kw + reach - 1))
    Df = ops.kernel_dft(D, grid)  # (K, [C,] Lh, Lwr)
    if Df.ndim == 4:
        prod = torch.einsum("achw,bchw->abhw", Df.conj(), Df)
    else:
        prod = Df.conj()[:, None] * Df[None, :]
    return torch.fft.irfft2(prod, s=grid), grid


class BlockJacobi:
    r"""z = blockdiag(G)⁻¹ r on compact vectors of a :class:`csc.nn.support.Support` (module docstring).

    Parameters
    ----------
    D : (K, kh, kw) or (K, C, kh, kw)
        Kernels.
    support : csc.nn.support.Support
        The support, in blocks of tiles.
    tile : int
        The tiles' side (the largest offset between two coefficients of a block is tile − 1).
    shift : float
        μ of an elastic net plus the ridge ε: added to the blocks' diagonals.
    spectral : (1 or K, H, Wr) real tensor, optional
        μ·P of gradient regularisation (its Q is the convolution irfft2(P)): added to the
        blocks' same-kernel entries.
    """

    def __init__(self, D: torch.Tensor, support: Support, tile: int, shift: float = 0.0,
                 spectral: torch.Tensor | None = None):
        self.S = support
        members = support.members
        self.valid, self.members_safe = members >= 0, members.clamp_min(0)
        # gathers only, no boolean masks per application: the blocks read a compact vector
        # padded with one zero (padding points at it), the result is read back block by block
        self.members_padded = torch.where(self.valid, members, torch.full_like(members, support.size))
        self.position = torch.empty(support.size, dtype=torch.int64, device=members.device)
        self.position[members[self.valid]] = self.valid.flatten().nonzero().flatten()
        self.inverse = None
        if support.size:
            H, W = support.shape[-2:]
            table, grid = kernel_correlations(D, (H, W), min(tile, max(H, W)))
            # the blocks' inverses, applied by one batched product (faster than triangular solves)
            L = self._cholesky(self._gram(table, grid, shift, spectral, (H, W)))
            self.inverse = torch.cholesky_inverse(L).contiguous()

    def _gram(self, table, grid, shift, spectral, shape):
        """The blocks' Gram matrices (NB, m, m), identity on the padding."""
        S, idx = self.S, self.members_safe
        k, i, j = S.k[idx], S.i[idx], S.j[idx]
        di, dj = i[:, :, None] - i[:, None, :], j[:, :, None] - j[:, None, :]
        G = table[k[:, :, None], k[:, None, :], di % grid[0], dj % grid[1]]
        if spectral is not None:
            q = torch.fft.irfft2(spectral, s=shape)  # (1 or K, H, W)
            kq = k if q.shape[0] > 1 else torch.zeros_like(k)
            same = k[:, :, None] == k[:, None, :]
            G = G + same * q[kq[:, :, None], di % shape[0], dj % shape[1]]
        valid = self.valid
        pair = valid[:, :, None] & valid[:, None, :]
        eye = torch.eye(G.shape[-1], dtype=G.dtype, device=G.device)
        return torch.where(pair, G, torch.zeros_like(G)) + eye * (shift * valid[:, :, None] + (~valid)[:, :, None])

    @staticmethod
    def _cholesky(G: torch.Tensor) -> torch.Tensor:
        """Cholesky factors of the blocks, with a diagonal jitter of 10·eps·max diag; a block
        still singular in the working precision (coherent atoms) gets ×100 more until it factors."""
        jitter = 10 * torch.finfo(G.dtype).eps * G.diagonal(dim1=-2, dim2=-1).amax(-1).clamp_min(1.0)
        eye = torch.eye(G.shape[-1], dtype=G.dtype, device=G.device)
        L, info = torch.linalg.cholesky_ex(G + jitter[:, None, None] * eye)
        scale = jitter
        for _ in range(8):  # rare; ×100 each time: 8 tries reach any finite block's scale
            if not bool((info > 0).any()):
                break
            scale = torch.where(info > 0, scale * 100, scale)
            L2, info2 = torch.linalg.cholesky_ex(G + scale[:, None, None] * eye)
            L = torch.where((info > 0)[:, None, None], L2, L)
            info = torch.where(info > 0, info2, info)
        return L

    def __call__(self, r: torch.Tensor) -> torch.Tensor:
        """blockdiag(G)⁻¹ r for a compact r (|S|,)."""
        if self.inverse is None:
            return torch.zeros_like(r)
        rhs = torch.cat([r, r.new_zeros(1)])[self.members_padded]
        z = torch.bmm(self.inverse, rhs.unsqueeze(-1))
        return z.reshape(-1)[self.position]

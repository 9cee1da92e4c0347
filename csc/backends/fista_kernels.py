r"""Fused CPU kernels of FISTA for CBPDN (:mod:`csc.problems.fista`), compiled by numba.

Imported only through :func:`csc.backends.numba_fista.fista_kernels` (numba is optional).
Layouts as :mod:`csc.backends.kernels`: DFTs (n, K, H, Wr) complex read as (n, K, H, 2·Wr)
real views, kernel DFTs split into ``Dre, Dim`` (K, H, Wr), image DFTs ``Sf`` (n, H, 2·Wr).
Row kernels work on rows j = i·H + h of image i, plane kernels on planes p = i·K + k;
their sums are written per row or plane and added afterwards in a fixed order, so results
do not depend on the number of threads. ``fastmath`` is off: the iterates round as written.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_OPTS = dict(nogil=True, cache=True, fastmath=False, error_model="numpy", boundscheck=False)


@njit(**_OPTS)
def grad_point(yf, Dre, Dim, Sf, invL, scale, ry, vf, r0, r1):
    """For rows r0..r1: R̂_y = Σ_k D̂_k ŷ_k − ŝ (into ``ry``) and v̂ = scale·(ŷ − conj(D̂) R̂_y / L)."""
    K, H, Wr = Dre.shape
    ar = np.empty(Wr)
    ai = np.empty(Wr)
    for j in range(r0, r1):
        i, h = j // H, j % H
        for w in range(Wr):
            ar[w] = 0.0
            ai[w] = 0.0
        for k in range(K):
            for w in range(Wr):
                yr, yi = yf[i, k, h, 2 * w], yf[i, k, h, 2 * w + 1]
                ar[w] += Dre[k, h, w] * yr - Dim[k, h, w] * yi
                ai[w] += Dre[k, h, w] * yi + Dim[k, h, w] * yr
        for w in range(Wr):
            ar[w] -= Sf[i, h, 2 * w]
            ai[w] -= Sf[i, h, 2 * w + 1]
            ry[i, h, 2 * w] = ar[w]
            ry[i, h, 2 * w + 1] = ai[w]
        c = invL[i]
        for k in range(K):
            for w in range(Wr):
                gr = Dre[k, h, w] * ar[w] + Dim[k, h, w] * ai[w]
                gi = Dre[k, h, w] * ai[w] - Dim[k, h, w] * ar[w]
                vf[i, k, h, 2 * w] = scale * (yf[i, k, h, 2 * w] - c * gr)
                vf[i, k, h, 2 * w + 1] = scale * (yf[i, k, h, 2 * w + 1] - c * gi)


@njit(**_OPTS)
def prox_l1(v, x, thr, wk, w4, spatial, nonneg, bh, bw, l1, p0, p1):
    """For planes p0..p1: x = sign(v)·max(|v| − thr_i·w, 0), then x ≥ 0 (``nonneg``) and zero
    outside rows < bh, columns < bw; Σ|w·x| per plane into ``l1``."""
    n, K, H, W = v.shape
    for p in range(p0, p1):
        i, k = p // K, p % K
        base = thr[i] * wk[k if wk.shape[0] > 1 else 0]
        s = 0.0
        for h in range(H):
            for col in range(W):
                wv = w4[i if w4.shape[0] > 1 else 0, k if w4.shape[1] > 1 else 0,
                        h if w4.shape[2] > 1 else 0, col if w4.shape[3] > 1 else 0]
                th = thr[i] * wv if spatial else base
                a = v[i, k, h, col]
                m = abs(a) - th
                out = 0.0
                if m > 0.0:
                    out = m if a > 0.0 else -m
                if (nonneg and out < 0.0) or h >= bh or col >= bw:
                    out = 0.0
                x[i, k, h, col] = out
                s += abs((wv if spatial else wk[k if wk.shape[0] > 1 else 0]) * out)
        l1[p] = s


@njit(**_OPTS)
def momentum(xf, xfp, yf, c, Dre, Dim, Sf, even, want_fid, res, fid, r0, r1):
    """For rows r0..r1: the residual Σ|x̂ − ŷ_prev|² (Parseval weights) into ``res``, then
    ŷ ← x̂ + c_i (x̂ − x̂_prev) in place; with ``want_fid`` also Σ|Σ_k D̂_k x̂_k − ŝ|² into ``fid``."""
    K, H, Wr = Dre.shape
    ar = np.empty(Wr)
    ai = np.empty(Wr)
    last = Wr - 1
    for j in range(r0, r1):
        i, h = j // H, j % H
        ci = c[i]
        s = 0.0
        for w in range(Wr):
            ar[w] = 0.0
            ai[w] = 0.0
        for k in range(K):
            for w in range(Wr):
                xr, xi = xf[i, k, h, 2 * w], xf[i, k, h, 2 * w + 1]
                dr, di = xr - yf[i, k, h, 2 * w], xi - yf[i, k, h, 2 * w + 1]
                wt = 1.0 if (w == 0 or (even and w == last)) else 2.0
                s += wt * (dr * dr + di * di)
                yf[i, k, h, 2 * w] = xr + ci * (xr - xfp[i, k, h, 2 * w])
                yf[i, k, h, 2 * w + 1] = xi + ci * (xi - xfp[i, k, h, 2 * w + 1])
                if want_fid:
                    ar[w] += Dre[k, h, w] * xr - Dim[k, h, w] * xi
                    ai[w] += Dre[k, h, w] * xi + Dim[k, h, w] * xr
        res[j] = s
        if want_fid:
            f = 0.0
            for w in range(Wr):
                er, ei = ar[w] - Sf[i, h, 2 * w], ai[w] - Sf[i, h, 2 * w + 1]
                wt = 1.0 if (w == 0 or (even and w == last)) else 2.0
                f += wt * (er * er + ei * ei)
            fid[j] = f

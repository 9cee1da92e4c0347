r"""Fused CPU kernels of the batch dictionary learner's dictionary step, compiled by numba.

Used by :class:`csc.DictLearn` on its fused CPU back end (the coding step uses
:func:`csc.backends.kernels.xstep` and :func:`csc.backends.kernels.ystep`); imported lazily, numba is
optional. Same conventions as :mod:`csc.backends.kernels`: every kernel is serial and releases
the GIL, the caller runs disjoint row ranges ``[r0, r1)`` on several threads
(:func:`csc.backends.fused.run_split`), ``fastmath`` is off wherever an iterate is computed, and
reductions that feed statistics are written per row in float64 and summed afterwards
in a fixed order, so results do not depend on the number of threads.

Layout (numpy views of contiguous torch tensors; complex arrays read as real views of
interleaved (re, im) pairs, Wr = W//2 + 1):

* code DFTs ``zf`` and per-image maps ``uf, xf``: (n, K, H, 2·Wr);
* dictionary-sized DFTs ``yf, gf, vf, mf``: (K, H, 2·Wr);
* image DFTs ``sf``: (n, H, 2·Wr).

Sums of squares over a half spectrum are Parseval-weighted (:func:`_half_sumsq`): the
sum over all rows of a map, divided by H·W, is the squared ℓ2 norm of the real map.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from csc.backends.kernels import _OPTS, _SUM_OPTS, _sum, add_row_sums, row_scratch, shrink_row


@njit(**_SUM_OPTS)
def _half_sumsq(a, even):
    """Σ ω_w |a_w|² over one interleaved half-spectrum row a (2·Wr reals), in float64,
    with ω = 1 at w = 0 and (even W) at w = Wr − 1, else 2."""
    W2 = a.shape[0]
    last = W2 // 2 - 1 if even else W2 // 2
    s = 0.0
    for j in range(2, 2 * last):
        v = np.float64(a[j])
        s += v * v
    e = np.float64(a[0]) * np.float64(a[0]) + np.float64(a[1]) * np.float64(a[1])
    if even and W2 > 2:
        e += np.float64(a[W2 - 2]) * np.float64(a[W2 - 2]) + np.float64(a[W2 - 1]) * np.float64(a[W2 - 1])
    return 2.0 * s + e


@njit(**_OPTS)
def split_dft(df, dre, dim, gram, r0, r1):
    """dre, dim ← real and imaginary parts of D̂ (K, H, 2·Wr) and gram ← Σ_k |D̂_k|²
    (H, Wr), for the DFT rows r0 ≤ h < r1 (the x-step's inputs, :func:`csc.backends.kernels.xstep`)."""
    K, H, W2 = df.shape
    Wr = W2 // 2
    for h in range(r0, r1):
        g = gram[h]
        g[:] = 0
        for k in range(K):
            d = df[k, h]
            re = dre[k, h]
            im = dim[k, h]
            for j in range(Wr):
                a = d[2 * j]
                b = d[2 * j + 1]
                re[j] = a
                im[j] = b
                g[j] += a * a + b * b


@njit(**_OPTS)
def pgm_grad(zf, yf, sf, inv_l, scale, vf, r0, r1):
    r"""PGM gradient step for the DFT rows r0 ≤ h < r1:
    v̂_k = (ŷ_k − ∇_k / L)·scale with ∇_k = Σ_i conj(ẑ_ik)(Σ_k' ẑ_ik' ŷ_k' − ŝ_i)
    (``scale``: the inverse FFT's normalisation). The sum over images runs in image
    order inside the row, so the result does not depend on how rows are split."""
    n, K, H, W2 = zf.shape
    Wr = W2 // 2
    gr = np.empty((K, Wr), dtype=zf.dtype)
    gi = np.empty((K, Wr), dtype=zf.dtype)
    ar = np.empty(Wr, dtype=zf.dtype)
    ai = np.empty(Wr, dtype=zf.dtype)
    for h in range(r0, r1):
        gr[:, :] = 0
        gi[:, :] = 0
        for i in range(n):
            ar[:] = 0
            ai[:] = 0
            for k in range(K):
                z = zf[i, k, h]
                y = yf[k, h]
                for j in range(Wr):
                    zr = z[2 * j]
                    zi = z[2 * j + 1]
                    yr = y[2 * j]
                    yi = y[2 * j + 1]
                    ar[j] += zr * yr - zi * yi
                    ai[j] += zr * yi + zi * yr
            s = sf[i, h]
            for j in range(Wr):
                ar[j] = ar[j] - s[2 * j]
                ai[j] = ai[j] - s[2 * j + 1]
            for k in range(K):
                z = zf[i, k, h]
                g_r = gr[k]
                g_i = gi[k]
                for j in range(Wr):
                    zr = z[2 * j]
                    zi = z[2 * j + 1]
                    g_r[j] += zr * ar[j] + zi * ai[j]
                    g_i[j] += zr * ai[j] - zi * ar[j]
        for k in range(K):
            y = yf[k, h]
            v = vf[k, h]
            g_r = gr[k]
            g_i = gi[k]
            for j in range(Wr):
                v[2 * j] = (y[2 * j] - inv_l * g_r[j]) * scale
                v[2 * j + 1] = (y[2 * j + 1] - inv_l * g_i[j]) * scale


@njit(**_OPTS)
def pgm_momentum(xf, xp, yf, coef, even, part, r0, r1):
    r"""Nesterov extrapolation in place for the DFT rows r0 ≤ k·H + h < r1:
    ŷ ← x̂ + coef·(x̂ − x̂_prev); ``part[k·H + h]`` receives the Parseval-weighted
    Σ_w |x̂ − ŷ_prev|² of the row (ŷ_prev: ŷ on entry)."""
    K, H, W2 = xf.shape
    d = np.empty(W2, dtype=xf.dtype)
    for row in range(r0, r1):
        k = row // H
        h = row - k * H
        x = xf[k, h]
        p = xp[k, h]
        y = yf[k, h]
        for j in range(W2):
            a = x[j]
            d[j] = a - y[j]
            y[j] = a + coef * (a - p[j])
        part[row] = _half_sumsq(d, even)


@njit(**_OPTS)
def cns_xstep(zf, uf, gf, sf, rho, alpha, beta, relax, scale, xf, mf, r0, r1):
    r"""Consensus x-step and the mean of the relaxed iterates, for the DFT rows r0 ≤ h < r1.

    Per image i and frequency: b̂_k = conj(ẑ_k) ŝ + ρ(ĝ_k − û_k),
    c = Σ_k ẑ_k b̂_k / (ρ + Σ_k |ẑ_k|²), x̂_k = (b̂_k − conj(ẑ_k) c) / ρ, written to
    ``xf``; with â_k = α x̂_k + β ĝ_k (â = x̂ when not ``relax``),
    m̂_k = (Σ_i (â_ik + û_ik) / n)·scale is written to ``mf`` (``scale``: the inverse
    FFT's normalisation). The images are summed in order inside the row."""
    n, K, H, W2 = zf.shape
    Wr = W2 // 2
    zg = np.empty(Wr, dtype=zf.dtype)
    ar = np.empty(Wr, dtype=zf.dtype)
    ai = np.empty(Wr, dtype=zf.dtype)
    mr = np.empty((K, W2), dtype=zf.dtype)
    for h in range(r0, r1):
        mr[:, :] = 0
        for i in range(n):
            zg[:] = 0
            ar[:] = 0
            ai[:] = 0
            s = sf[i, h]
            for k in range(K):
                z = zf[i, k, h]
                u = uf[i, k, h]
                g = gf[k, h]
                x = xf[i, k, h]
                for j in range(Wr):
                    zr = z[2 * j]
                    zi = z[2 * j + 1]
                    sr = s[2 * j]
                    si = s[2 * j + 1]
                    br = (zr * sr + zi * si) + rho * (g[2 * j] - u[2 * j])
                    bi = (zr * si - zi * sr) + rho * (g[2 * j + 1] - u[2 * j + 1])
                    x[2 * j] = br
                    x[2 * j + 1] = bi
                    zg[j] += zr * zr + zi * zi
                    ar[j] += zr * br - zi * bi
                    ai[j] += zr * bi + zi * br
            for j in range(Wr):
                dd = rho + zg[j]
                ar[j] = ar[j] / dd
                ai[j] = ai[j] / dd
            for k in range(K):
                z = zf[i, k, h]
                u = uf[i, k, h]
                g = gf[k, h]
                x = xf[i, k, h]
                m = mr[k]
                for j in range(Wr):
                    zr = z[2 * j]
                    zi = z[2 * j + 1]
                    cr = ar[j]
                    ci = ai[j]
                    x[2 * j] = (x[2 * j] - (zr * cr + zi * ci)) / rho
                    x[2 * j + 1] = (x[2 * j + 1] - (zr * ci - zi * cr)) / rho
                if relax:
                    for j in range(W2):
                        m[j] += (alpha * x[j] + beta * g[j]) + u[j]
                else:
                    for j in range(W2):
                        m[j] += x[j] + u[j]
        for k in range(K):
            m = mf[k, h]
            a = mr[k]
            for j in range(W2):
                m[j] = (a[j] / n) * scale


@njit(**_OPTS)
def cns_ustep(xf, uf, gp, gf, alpha, beta, relax, even, part, r0, r1):
    r"""Consensus dual step in place for the DFT rows r0 ≤ i·H + h < r1:
    û ← û + (â − ĝ) with â = α x̂ + β ĝ_prev (x̂ when not ``relax``), as in
    :func:`cns_xstep`; ``part[i·H + h]`` receives the Parseval-weighted sums
    Σ|x̂ − ĝ|², Σ|û|², Σ|x̂|² over the row (all kernels)."""
    n, K, H, W2 = xf.shape
    d = np.empty(W2, dtype=xf.dtype)
    for row in range(r0, r1):
        i = row // H
        h = row - i * H
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        for k in range(K):
            x = xf[i, k, h]
            u = uf[i, k, h]
            p = gp[k, h]
            g = gf[k, h]
            if relax:
                for j in range(W2):
                    xv = x[j]
                    gv = g[j]
                    u[j] = u[j] + ((alpha * xv + beta * p[j]) - gv)
                    d[j] = xv - gv
            else:
                for j in range(W2):
                    xv = x[j]
                    gv = g[j]
                    u[j] = u[j] + (xv - gv)
                    d[j] = xv - gv
            s0 += _half_sumsq(d, even)
            s1 += _half_sumsq(u, even)
            s2 += _half_sumsq(x, even)
        part[row, 0] = s0
        part[row, 1] = s1
        part[row, 2] = s2


# ------------------------------------------------------------- sparse codes (spatial)
@njit(**_OPTS)
def nonzeros(y, idx, cnt, p0, p1):
    """Positions of the nonzero codes of the planes p0 ≤ i·K + k < p1 of y (n, K, H, W)
    (C-contiguous): the flat indices h·W + w, in order, in ``idx[p·H·W : p·H·W + cnt[p]]``.
    Blocks of 64 are counted first (vectorised) and searched only when not all zero."""
    n, K, H, W = y.shape
    HW = H * W
    for p in range(p0, p1):
        i = p // K
        k = p - i * K
        base = p * HW
        c = 0
        yp = y[i, k].reshape(HW)
        for b0 in range(0, HW, 64):
            b1 = min(b0 + 64, HW)
            m = 0
            for q in range(b0, b1):
                m += yp[q] != 0
            if m:
                for q in range(b0, b1):
                    if yp[q] != 0:
                        idx[base + c] = q
                        c += 1
        cnt[p] = c


@njit(**_OPTS)
def sparse_residual(y, idx, cnt, d, s, r, i0, i1):
    r"""r_i = Σ_k d_k * y_ik − s_i for the images i0 ≤ i < i1, from the nonzero codes
    (:func:`nonzeros`): circular convolution with the kernels d (K, kh, kw) at the
    top-left origin, every nonzero y_ik(q) adding d_k(m)·y_ik(q) at q + m."""
    n, K, H, W = y.shape
    kh = d.shape[1]
    kw = d.shape[2]
    HW = H * W
    for i in range(i0, i1):
        ri = r[i]
        si = s[i]
        for h in range(H):
            for w in range(W):
                ri[h, w] = -si[h, w]
        for k in range(K):
            p = i * K + k
            base = p * HW
            dk = d[k]
            yk = y[i, k]
            for c in range(cnt[p]):
                q = idx[base + c]
                qh = q // W
                qw = q - qh * W
                v = yk[qh, qw]
                for a in range(kh):
                    hh = qh + a
                    if hh >= H:
                        hh -= H
                    row = ri[hh]
                    da = dk[a]
                    if qw + kw <= W:
                        for b in range(kw):
                            row[qw + b] += da[b] * v
                    else:
                        for b in range(kw):
                            ww = qw + b
                            if ww >= W:
                                ww -= W
                            row[ww] += da[b] * v


@njit(**_OPTS)
def sparse_grad(y, idx, cnt, r, g, k0, k1):
    r"""g_k(m) = Σ_i Σ_q y_ik(q)·r_i(q + m) for the kernels k0 ≤ k < k1 and m in the
    kernel support (g: (K, kh, kw)): the adjoint of :func:`sparse_residual`, i.e. the
    support block of irfft2(Σ_i conj(ẑ_ik) r̂_i). Accumulated in float64, images in order."""
    n, K, H, W = y.shape
    kh = g.shape[1]
    kw = g.shape[2]
    HW = H * W
    acc = np.empty((kh, kw), dtype=np.float64)
    for k in range(k0, k1):
        acc[:, :] = 0.0
        for i in range(n):
            p = i * K + k
            base = p * HW
            yk = y[i, k]
            ri = r[i]
            for c in range(cnt[p]):
                q = idx[base + c]
                qh = q // W
                qw = q - qh * W
                v = np.float64(yk[qh, qw])
                for a in range(kh):
                    hh = qh + a
                    if hh >= H:
                        hh -= H
                    row = ri[hh]
                    ac = acc[a]
                    if qw + kw <= W:
                        for b in range(kw):
                            ac[b] += v * row[qw + b]
                    else:
                        for b in range(kw):
                            ww = qw + b
                            if ww >= W:
                                ww -= W
                            ac[b] += v * row[ww]
        gk = g[k]
        for a in range(kh):
            for b in range(kw):
                gk[a, b] = acc[a, b]


# ------------------------------------------------------------------- coding step
@njit(**_OPTS)
def ystep_nonzeros(x, y, u, t, alpha, beta, thr, wk, idx, cnt, part, p0, p1):
    r"""The y-step of :func:`csc.backends.kernels.ystep` in its common case (no pending ρ rescale,
    t always written, no constraints, weights per kernel, ℓ1 on x: the same y, u, t and
    sums, bit for bit) for the planes p0 ≤ i·K + k < p1 with one threshold ``thr``·w_k,
    that also records the nonzero y as :func:`nonzeros` does."""
    n, K, H, W = x.shape
    HW = H * W
    nwk = wk.shape[0]
    d1, d2, lr = row_scratch(W, x.dtype)
    for p in range(p0, p1):
        i = p // K
        k = p - i * K
        wv = wk[k] if nwk > 1 else wk[0]
        th = thr * wv
        base = p * HW
        c = 0
        acc = part[p]
        acc[:] = 0.0
        for h in range(H):
            xr = x[i, k, h]
            yr = y[i, k, h]
            shrink_row(xr, yr, u[i, k, h], t[i, k, h], d1, d2, alpha, beta, th)
            for j in range(W):
                if yr[j] != 0:
                    idx[base + c] = h * W + j
                    c += 1
            for j in range(W):
                lr[j] = abs(wv * xr[j])
            add_row_sums(acc, xr, yr, u[i, k, h], d1, d2)
            acc[5] += _sum(lr)
        cnt[p] = c

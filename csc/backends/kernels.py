r"""Fused CPU kernels of the ConvBPDN ADMM iteration, compiled by numba.

Imported only through :mod:`csc.backends.fused` (numba is optional). Every kernel is serial and
releases the GIL (``nogil``); :mod:`csc.backends.fused` runs disjoint row or plane ranges of one
call on several threads. Reductions are written per plane (per ``(image, kernel)``) or
per DFT row and summed afterwards in a fixed order, so results do not depend on the
number of threads nor on the other images of a batch.

Rounding: ``fastmath`` is off in the kernels that compute the iterates (every operation
rounds as written: no reassociation, no contraction into FMA). Only the sums of squares
(:func:`_sumsq` and friends) may be reassociated, so that they vectorise; they
accumulate in float64.

Arrays are numpy views of the solver's contiguous torch tensors:

* spatial maps ``x, y, u, t``: (n, K, H, W) real;
* their DFTs ``xf``: (n, K, H, Wr) complex (``rfft2`` layout, Wr = W//2 + 1), read here
  as a real view (n, K, H, 2·Wr) of interleaved (re, im) pairs;
* kernel DFTs as separate real and imaginary parts ``Dre, Dim``: (K, H, Wr);
  image DFTs ``Sf``: (n, H, 2·Wr) real view; ``gram`` = Σ_k |D̂_k|²: (H, Wr).

Why one file of ~800 lines, and why the y-step kernels are long: numba compiles a kernel and
the helpers it calls together, and caches them per file (``cache=True``); the kernels here
share their inlined helpers (:func:`_sumsq`, the soft threshold, the per-row DFT loops), so
splitting the file would duplicate them or make every kernel's cache depend on another module.
The y-step kernels (``ystep``, ``ystep_joint``) and ``xstep_diagonal`` are single passes over
a plane on purpose — relaxation, prox, constraints, dual, the next FFT input and every residual
sum with each value read once — so each is one function of 80–90 lines rather than several
passes over memory (the iteration is memory-bound; :mod:`csc.backends.counting`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_OPTS = dict(nogil=True, cache=True, fastmath=False, error_model="numpy", boundscheck=False)
_SUM_OPTS = dict(_OPTS, fastmath={"reassoc"})


# ----------------------------------------------------------------------------- sums
@njit(**_SUM_OPTS)
def _sumsq(a):
    """Σ a_j² in float64 (reassociated: vectorised)."""
    s = 0.0
    for j in range(a.shape[0]):
        v = np.float64(a[j])
        s += v * v
    return s


@njit(**_SUM_OPTS)
def _sum(a):
    """Σ a_j in float64 (reassociated: vectorised)."""
    s = 0.0
    for j in range(a.shape[0]):
        s += np.float64(a[j])
    return s


# --------------------------------------------------------------------- DFT domain
@njit(**_OPTS)
def _synthesis_row(xf, i, h, Dre, Dim, ar, ai):
    """ar + i·ai ← Σ_k D̂_k x̂_k over the DFT row (i, h), accumulated in ar's dtype (each
    product rounded in the maps' dtype)."""
    K = xf.shape[1]
    Wr = ar.shape[0]
    ar[:] = 0
    ai[:] = 0
    for k in range(K):
        xr = xf[i, k, h]
        dre = Dre[k, h]
        dim = Dim[k, h]
        for j in range(Wr):
            a = xr[2 * j]
            b = xr[2 * j + 1]
            ar[j] += dre[j] * a - dim[j] * b
            ai[j] += dre[j] * b + dim[j] * a


@njit(**_OPTS)
def xstep(xf, Dre, Dim, Sf, rho, gram, scale, parseval_even, fid, r0, r1):
    r"""x-step in the DFT domain, in place, for the DFT rows ``r0 ≤ i·H + h < r1``.

    At every frequency of image i, with x̂ = DFT(y − u) on entry:
    acc = Σ_k D̂_k x̂_k, c = (Ŝ − acc)/(ρ_i + Σ_k|D̂_k|²), x̂_k ← (x̂_k + conj(D̂_k)·c)·scale
    (``scale``: the inverse DFT's normalisation, when the inverse FFT does not apply
    it). One read of D̂ and x̂ and one write of x̂: a row's K×Wr block stays in cache
    between the two loops over k.

    When ``fid`` has rows, ``fid[i·H + h]`` receives Σ_w ω_w |Σ_k D̂_k x̂_k − Ŝ|² over
    the row for the updated (unscaled) x̂, with the Parseval weights ω of a real
    signal's half spectrum: the new residual Σ_k D̂_k x̂_k − Ŝ is exactly −ρ_i·c, so no
    second sum over k is needed. The sum over all rows of an image, divided by H·W, is
    ‖Σ_k d_k * x_k − s‖².
    """
    n, K, H, W2 = xf.shape
    Wr = W2 // 2
    ar = np.empty(Wr, dtype=xf.dtype)
    ai = np.empty(Wr, dtype=xf.dtype)
    want_fid = fid.shape[0] > 0
    for row in range(r0, r1):
        i = row // H
        h = row - i * H
        _synthesis_row(xf, i, h, Dre, Dim, ar, ai)
        sr = Sf[i, h]
        g = gram[h]
        rh = rho[i]
        for j in range(Wr):
            d = rh + g[j]
            ar[j] = (sr[2 * j] - ar[j]) / d
            ai[j] = (sr[2 * j + 1] - ai[j]) / d
        if want_fid:
            tot = 0.0
            for j in range(Wr):
                er = np.float64(rh) * np.float64(ar[j])
                ei = np.float64(rh) * np.float64(ai[j])
                sq = er * er + ei * ei
                tot += sq if j == 0 or (parseval_even and j == Wr - 1) else 2.0 * sq
            fid[row] = tot
        for k in range(K):
            xr = xf[i, k, h]
            dre = Dre[k, h]
            dim = Dim[k, h]
            for j in range(Wr):
                a = xr[2 * j] + (dre[j] * ar[j] + dim[j] * ai[j])
                b = xr[2 * j + 1] + (dre[j] * ai[j] - dim[j] * ar[j])
                xr[2 * j] = a * scale
                xr[2 * j + 1] = b * scale


@njit(**_OPTS)
def xstep_diagonal(xf, Dre, Dim, Sf, rho, q, muP, P, scale, parseval_even, fid, pen, dxf, r0, r1):
    r"""x-step with a diagonal term, in place, for the DFT rows ``r0 ≤ i·H + h < r1``
    (:class:`csc.core.xstep.DiagonalXStep`, SPORCO ``linalg.solvedbd_sm``).

    At every frequency of image i, with x̂ = DFT(y − u) on entry and δ_k = ρ_i + q_i·μP_k
    (``muP``, ``P``: (1 or K, H, Wr); q_i = 1, or for the two-block split ρ_i = 1,
    q_i = μ/ρ and ``muP`` = P): ẑ_k = ρ_i x̂_k/δ_k, c = (Ŝ − Σ_k D̂_k ẑ_k) /
    (1 + Σ_k |D̂_k|²/δ_k), x̂_k ← (ẑ_k + conj(D̂_k)·c/δ_k)·scale. ẑ is kept in x̂ between
    the two loops over k.

    When ``fid`` has rows, ``fid[i·H + h]`` receives Σ_w ω_w |c_w|² (the new residual
    Σ_k D̂_k x̂_k − Ŝ is −c); when ``pen`` has rows, ``pen[i·H + h]`` receives
    Σ_w ω_w Σ_k P_k |x̂_k|² for the unscaled x̂ (ω: :func:`xstep`'s Parseval weights); when
    ``dxf`` (n, H, 2·Wr) has images, it receives (Ŝ − c)·scale = DFT(Σ_k d_k * x_k)·scale.
    """
    n, K, H, W2 = xf.shape
    Wr = W2 // 2
    ar = np.empty(Wr, dtype=xf.dtype)
    ai = np.empty(Wr, dtype=xf.dtype)
    gam = np.empty(Wr, dtype=xf.dtype)
    one = np.ones(1, dtype=xf.dtype)[0]  # 1 in the maps' dtype (an integer literal would promote)
    want_fid = fid.shape[0] > 0
    want_pen = pen.shape[0] > 0
    want_dx = dxf.shape[0] > 0
    per_k = muP.shape[0] > 1
    for row in range(r0, r1):
        i = row // H
        h = row - i * H
        rh = rho[i]
        qi = q[i]
        ar[:] = 0
        ai[:] = 0
        gam[:] = 0
        for k in range(K):
            xr = xf[i, k, h]
            dre = Dre[k, h]
            dim = Dim[k, h]
            mp = muP[k if per_k else 0, h]
            for j in range(Wr):
                d = rh + qi * mp[j]
                a = rh * xr[2 * j] / d
                b = rh * xr[2 * j + 1] / d
                xr[2 * j] = a
                xr[2 * j + 1] = b
                ar[j] += dre[j] * a - dim[j] * b
                ai[j] += dre[j] * b + dim[j] * a
                gam[j] += (dre[j] * dre[j] + dim[j] * dim[j]) / d
        sr = Sf[i, h]
        for j in range(Wr):
            g = gam[j] + one
            ar[j] = (sr[2 * j] - ar[j]) / g
            ai[j] = (sr[2 * j + 1] - ai[j]) / g
        if want_fid:
            tot = 0.0
            for j in range(Wr):
                sq = np.float64(ar[j]) * np.float64(ar[j]) + np.float64(ai[j]) * np.float64(ai[j])
                tot += sq if j == 0 or (parseval_even and j == Wr - 1) else 2.0 * sq
            fid[row] = tot
        if want_dx:
            dr = dxf[i, h]
            for j in range(Wr):
                dr[2 * j] = (sr[2 * j] - ar[j]) * scale
                dr[2 * j + 1] = (sr[2 * j + 1] - ai[j]) * scale
        ptot = 0.0
        for k in range(K):
            xr = xf[i, k, h]
            dre = Dre[k, h]
            dim = Dim[k, h]
            mp = muP[k if per_k else 0, h]
            pk = P[k if per_k else 0, h]
            for j in range(Wr):
                d = rh + qi * mp[j]
                a = xr[2 * j] + (dre[j] * ar[j] + dim[j] * ai[j]) / d
                b = xr[2 * j + 1] + (dre[j] * ai[j] - dim[j] * ar[j]) / d
                if want_pen:
                    sq = np.float64(pk[j]) * (np.float64(a) * np.float64(a) + np.float64(b) * np.float64(b))
                    ptot += sq if j == 0 or (parseval_even and j == Wr - 1) else 2.0 * sq
                xr[2 * j] = a * scale
                xr[2 * j + 1] = b * scale
        if want_pen:
            pen[row] = ptot


@njit(**_OPTS)
def penalty_rows(yf, P, parseval_even, pen, r0, r1):
    """``pen[i·H + h]``: Σ_w ω_w Σ_k P_k |ŷ_k|² of DFT row (i, h) (the quadratic penalty of y,
    for statistics evaluated on y; P (1 or K, H, Wr))."""
    n, K, H, W2 = yf.shape
    Wr = W2 // 2
    per_k = P.shape[0] > 1
    for row in range(r0, r1):
        i = row // H
        h = row - i * H
        tot = 0.0
        for k in range(K):
            yr = yf[i, k, h]
            pk = P[k if per_k else 0, h]
            for j in range(Wr):
                a = np.float64(yr[2 * j])
                b = np.float64(yr[2 * j + 1])
                sq = np.float64(pk[j]) * (a * a + b * b)
                tot += sq if j == 0 or (parseval_even and j == Wr - 1) else 2.0 * sq
        pen[row] = tot


@njit(**_OPTS)
def _parseval_row(br, bi, sr, parseval_even):
    """Σ_w ω_w |b_w − ŝ_w|², ω = 1 at w = 0 and (even W) at the last column, else 2."""
    Wr = br.shape[0]
    tot = 0.0
    for j in range(Wr):
        er = br[j] - np.float64(sr[2 * j])
        ei = bi[j] - np.float64(sr[2 * j + 1])
        sq = er * er + ei * ei
        if j == 0 or (parseval_even and j == Wr - 1):
            tot += sq
        else:
            tot += 2.0 * sq
    return tot


@njit(**_OPTS)
def fidelity_rows(yf, Dre, Dim, Sf, parseval_even, fid, r0, r1):
    """``fid[i·H + h]``: Parseval-weighted Σ_w |Σ_k D̂_k ŷ_k − Ŝ|² of DFT row (i, h) (the
    data fidelity of y, for statistics evaluated on y)."""
    n, K, H, W2 = yf.shape
    Wr = W2 // 2
    br = np.empty(Wr, dtype=np.float64)
    bi = np.empty(Wr, dtype=np.float64)
    for row in range(r0, r1):
        i = row // H
        h = row - i * H
        _synthesis_row(yf, i, h, Dre, Dim, br, bi)
        fid[row] = _parseval_row(br, bi, Sf[i, h], parseval_even)


# ---------------------------------------------------- multi-channel dictionaries
@njit(**_OPTS)
def _synthesis_row_mc(xf, i, h, Dre, Dim, ar, ai):
    """ar[c] + i·ai[c] ← Σ_k D̂_ck x̂_k over the DFT row (i, h) for each channel c
    (kernel DFTs (K, C, H, Wr), as :func:`_synthesis_row` per channel)."""
    K = xf.shape[1]
    C, Wr = ar.shape
    ar[:] = 0
    ai[:] = 0
    for k in range(K):
        xr = xf[i, k, h]
        for c in range(C):
            dre = Dre[k, c, h]
            dim = Dim[k, c, h]
            acr = ar[c]
            aci = ai[c]
            for j in range(Wr):
                a = xr[2 * j]
                b = xr[2 * j + 1]
                acr[j] += dre[j] * a - dim[j] * b
                aci[j] += dre[j] * b + dim[j] * a


@njit(**_OPTS)
def _solve_hermitian(Gr, Gi, rho, br, bi, C):
    """Solve (ρI + G) z = b in place (b ← z) for a C×C Hermitian positive definite G, by
    Cholesky in complex128 (Gr, Gi: (C, C) real and imaginary parts; br, bi: (C,))."""
    L = np.zeros((C, C), dtype=np.complex128)
    for a in range(C):
        for b in range(a + 1):
            v = complex(Gr[a, b], Gi[a, b]) + (rho if a == b else 0.0)
            for m in range(b):
                v -= L[a, m] * L[b, m].conjugate()
            if a == b:
                L[a, a] = np.sqrt(v.real)
            else:
                L[a, b] = v / L[b, b]
    z = np.empty(C, dtype=np.complex128)
    for a in range(C):  # L w = b
        v = complex(br[a], bi[a])
        for m in range(a):
            v -= L[a, m] * z[m]
        z[a] = v / L[a, a]
    for a in range(C - 1, -1, -1):  # Lᴴ z = w
        v = z[a]
        for m in range(a + 1, C):
            v -= L[m, a].conjugate() * z[m]
        z[a] = v / L[a, a].real
    for a in range(C):
        br[a] = z[a].real
        bi[a] = z[a].imag


@njit(**_OPTS)
def xstep_mc(xf, Dre, Dim, Sf, rho, Gre, Gim, scale, parseval_even, fid, r0, r1):
    r"""x-step for a multi-channel dictionary (kernel DFTs (K, C, H, Wr)), in place, for the
    DFT rows ``r0 ≤ i·H + h < r1``; image DFTs ``Sf`` (n, C, H, 2·Wr) real view;
    ``Gre, Gim`` (H, Wr, C, C): the channel Gram matrix G = D̂D̂ᴴ per frequency.

    At every frequency, with x̂ = DFT(y − u) on entry: r = Ŝ − D̂x̂ (C values),
    c = (ρ_i I + G)⁻¹ r, x̂ ← (x̂ + D̂ᴴc)·scale — the solution of (D̂ᴴD̂ + ρI)x̂ = D̂ᴴŜ + ρv̂
    (Woodbury's identity; SPORCO solves the same system by iterated Sherman–Morrison,
    ``linalg.solvemdbi_ism``). ``fid`` as in :func:`xstep`: the new residual D̂x̂ − Ŝ is −ρ_i c.
    """
    n, K, H, W2 = xf.shape
    C = Sf.shape[1]
    Wr = W2 // 2
    ar = np.empty((C, Wr), dtype=xf.dtype)
    ai = np.empty((C, Wr), dtype=xf.dtype)
    br = np.empty(C, dtype=np.float64)
    bi = np.empty(C, dtype=np.float64)
    want_fid = fid.shape[0] > 0
    for row in range(r0, r1):
        i = row // H
        h = row - i * H
        _synthesis_row_mc(xf, i, h, Dre, Dim, ar, ai)
        rh = np.float64(rho[i])
        tot = 0.0
        for j in range(Wr):
            for c in range(C):
                br[c] = np.float64(Sf[i, c, h, 2 * j]) - np.float64(ar[c, j])
                bi[c] = np.float64(Sf[i, c, h, 2 * j + 1]) - np.float64(ai[c, j])
            _solve_hermitian(Gre[h, j], Gim[h, j], rh, br, bi, C)
            w = 1.0 if j == 0 or (parseval_even and j == Wr - 1) else 2.0
            for c in range(C):
                ar[c, j] = br[c]
                ai[c, j] = bi[c]
                er = rh * br[c]  # the residual −ρc, formed before squaring (ρ may be huge)
                ei = rh * bi[c]
                tot += w * (er * er + ei * ei)
        if want_fid:
            fid[row] = tot
        for k in range(K):
            xr = xf[i, k, h]
            for j in range(Wr):
                a = xr[2 * j]
                b = xr[2 * j + 1]
                for c in range(C):
                    dre = Dre[k, c, h, j]
                    dim = Dim[k, c, h, j]
                    a += dre * ar[c, j] + dim * ai[c, j]
                    b += dre * ai[c, j] - dim * ar[c, j]
                xr[2 * j] = a * scale
                xr[2 * j + 1] = b * scale


@njit(**_OPTS)
def fidelity_rows_mc(yf, Dre, Dim, Sf, parseval_even, fid, r0, r1):
    """:func:`fidelity_rows` for a multi-channel dictionary: summed over the channels."""
    n, K, H, W2 = yf.shape
    C = Sf.shape[1]
    Wr = W2 // 2
    br = np.empty((C, Wr), dtype=np.float64)
    bi = np.empty((C, Wr), dtype=np.float64)
    for row in range(r0, r1):
        i = row // H
        h = row - i * H
        _synthesis_row_mc(yf, i, h, Dre, Dim, br, bi)
        tot = 0.0
        for c in range(C):
            tot += _parseval_row(br[c], bi[c], Sf[i, c, h], parseval_even)
        fid[row] = tot


# -------------------------------------------------------------------- spatial domain
@njit(**_OPTS)
def ystep(x, y, u, t, alpha, beta, thr, wk, w4, spatial, pend, write_t, nonneg, bh, bw,
          l1_on_y, want_l1, part, p0, p1):
    r"""Relaxation, y-step, dual step and residual sums for the planes ``p0 ≤ i·K + k < p1``.

    With u_prev = u / pend[i] (the previous adaptive-ρ rescale, applied lazily; pend[i]
    is 1 when there is none) and y_prev = y on entry, per coefficient::

        a = α·x + (1 − α)·y_prev          (α = 1, β = 0 when not relaxing: a = x)
        v = a + u_prev
        u = clamp(v, −τ, τ),  τ = thr[i]·w
        y = v − u                          (soft thresholding of v)
        nonneg: y = max(y, 0); no boundary crossing: y = 0 in rows ≥ bh, columns ≥ bw;
        with either constraint: u = v − y
        t = y − u                          (the next FFT input; with constraints or spatial
                                           weights only if write_t[i], otherwise always: the
                                           caller rebuilds t where write_t[i] is 0)

    y and u are overwritten in place (u unscaled). ``part[i·K + k]`` receives, in
    float64: ‖x‖², ‖y‖², ‖u‖², ‖x − y‖², ‖y_prev − y‖² and, if ``want_l1``, Σ|w·x|
    (Σ|w·y| when ``l1_on_y``) over the plane.

    Weights: ``spatial`` False: w = wk[k] (wk[0] when wk has one entry); ``spatial``
    True: w = w4[i, k, h, w], w4 a broadcast view (any axis may have length 1). τ is
    rounded as thr[i]·w in the maps' dtype, as the torch path computes it.
    """
    n, K, H, W = x.shape
    cons = nonneg or bh < H or bw < W
    nwk = wk.shape[0]
    d1, d2, lr = row_scratch(W, x.dtype)
    for p in range(p0, p1):
        i = p // K
        k = p - i * K
        pd = pend[i]
        scaled = pd != 1
        wt = write_t[i] != 0
        ti = thr[i]
        wv = wk[k] if nwk > 1 else wk[0]
        th = ti * wv
        iw = i if w4.shape[0] > 1 else 0
        kw = k if w4.shape[1] > 1 else 0
        acc = part[p]
        acc[:] = 0.0
        for h in range(H):
            xr = x[i, k, h]
            yr = y[i, k, h]
            ur = u[i, k, h]
            tr = t[i, k, h]
            if not spatial and not cons:  # the common case: no branches in the loops
                if scaled:  # the pending ρ rescale, in place: the same u_prev as u / pend below
                    for j in range(W):
                        ur[j] = ur[j] / pd
                shrink_row(xr, yr, ur, tr, d1, d2, alpha, beta, th)  # t is rebuilt later where not wt
                if want_l1:
                    for j in range(W):
                        lr[j] = abs(wv * (yr[j] if l1_on_y else xr[j]))
            else:
                zrow = h >= bh
                wrow = w4[iw, kw, h if w4.shape[2] > 1 else 0]
                wsp = wrow.shape[0] > 1
                for j in range(W):
                    if spatial:
                        wv = wrow[j if wsp else 0]
                        th = ti * wv
                    xv = xr[j]
                    yp = yr[j]
                    up = ur[j] / pd if scaled else ur[j]
                    v = (alpha * xv + beta * yp) + up
                    uu = min(max(v, -th), th)
                    yy = v - uu
                    if cons:
                        if nonneg and yy < 0:
                            yy = yy - yy
                        if zrow or j >= bw:
                            yy = yy - yy
                        uu = v - yy
                    yr[j] = yy
                    ur[j] = uu
                    if wt:
                        tr[j] = yy - uu
                    d1[j] = xv - yy
                    d2[j] = yp - yy
                    if want_l1:
                        lr[j] = abs(wv * (yy if l1_on_y else xv))
            add_row_sums(acc, xr, yr, ur, d1, d2)
            if want_l1:
                acc[5] += _sum(lr)


@njit(**_OPTS)
def row_scratch(W, dtype):
    """Three scratch rows of W entries (the y-step's differences and ℓ1 terms)."""
    return np.empty(W, dtype=dtype), np.empty(W, dtype=dtype), np.empty(W, dtype=dtype)


@njit(**_OPTS)
def shrink_row(xr, yr, ur, tr, d1, d2, alpha, beta, th):
    """One row of the y-step's common case (no pending rescale, no constraints, one
    threshold): a = αx + βy, v = a + u, u = clamp(v, −th, th), y = v − u, t = y − u, and
    the differences d1 = x − y, d2 = y_prev − y for the residual sums."""
    for j in range(xr.shape[0]):
        xv = xr[j]
        yp = yr[j]
        v = (alpha * xv + beta * yp) + ur[j]
        uu = min(max(v, -th), th)
        yy = v - uu
        yr[j] = yy
        ur[j] = uu
        tr[j] = yy - uu
        d1[j] = xv - yy
        d2[j] = yp - yy


@njit(**_OPTS)
def add_row_sums(acc, xr, yr, ur, d1, d2):
    """acc[0:5] += ‖x‖², ‖y‖², ‖u‖², ‖x − y‖², ‖y_prev − y‖² of one row (float64)."""
    acc[0] += _sumsq(xr)
    acc[1] += _sumsq(yr)
    acc[2] += _sumsq(ur)
    acc[3] += _sumsq(d1)
    acc[4] += _sumsq(d2)


@njit(**_OPTS)
def ystep_joint(x, y, u, t, alpha, beta, thr, thr2, wk, w4, spatial, w21k, w21map, spatial21, pend, write_t,
                nonneg, bh, bw, l1_on_y, want_l1, C, part, p0, p1):
    r""":func:`ystep` for joint sparsity over C channels (SPORCO ``prox_sl1l2``), for the
    groups ``p0 ≤ i·K + k < p1``: maps (n, C·K, H, W) hold channel c's kernel k at plane
    c·K + k, and group (i, k) is the C planes of kernel k. Per coefficient position::

        v_c = α·x_c + (1 − α)·y_prev,c + u_prev,c
        y_c = v_c − clamp(v_c, −τ_c, τ_c)               (τ_c = thr[i]·w of plane c·K + k)
        y_c ← y_c · max(0, ‖y‖ − β)/‖y‖   (0 if ‖y‖ = 0; ‖·‖ over c, β = thr2[i]·w₂₁)
        nonneg / boundary zeroing; u_c = v_c − y_c; t_c = y_c − u_c (if write_t[i])

    ``part[i·K + k]`` receives the six sums of :func:`ystep` over the group and, when
    ``want_l1``, Σ w₂₁‖z‖ (z = x, or y with ``l1_on_y``) as its seventh. ℓ1 weights as
    in :func:`ystep` indexed by plane; ℓ2,1 weights ``w21k`` (one per kernel, or one
    entry) or, with ``spatial21``, the broadcast map ``w21map`` (·, K, ·, ·).
    """
    n, CK, H, W = x.shape
    K = CK // C
    nwk = wk.shape[0]
    nw21 = w21k.shape[0]
    V = np.empty((C, W), dtype=x.dtype)  # v and the soft-thresholded y of the C rows
    Y = np.empty((C, W), dtype=x.dtype)
    nrm = np.empty(W, dtype=np.float64)
    d1, d2, lr = row_scratch(W, x.dtype)
    zn = np.empty(W, dtype=np.float64)
    for p in range(p0, p1):
        i = p // K
        k = p - i * K
        pd = pend[i]
        scaled = pd != 1
        wt = write_t[i] != 0
        acc = part[p]
        acc[:] = 0.0
        iw = i if w4.shape[0] > 1 else 0
        i21 = i if w21map.shape[0] > 1 else 0
        k21 = k if w21map.shape[1] > 1 else 0
        b0 = thr2[i] * (w21k[k] if nw21 > 1 else w21k[0])
        for h in range(H):
            nrm[:] = 0.0
            for c in range(C):  # pass 1: v and soft thresholding, row by row
                q = c * K + k
                xr, yr, ur = x[i, q, h], y[i, q, h], u[i, q, h]
                wrow = w4[iw, q if w4.shape[1] > 1 else 0, h if w4.shape[2] > 1 else 0]
                th = thr[i] * (wk[q] if nwk > 1 else wk[0])
                for j in range(W):
                    if spatial:
                        th = thr[i] * wrow[j if wrow.shape[0] > 1 else 0]
                    up = ur[j] / pd if scaled else ur[j]
                    v = (alpha * xr[j] + beta * yr[j]) + up
                    yy = v - min(max(v, -th), th)
                    V[c, j] = v
                    Y[c, j] = yy
                    nrm[j] += np.float64(yy) * np.float64(yy)
            w21row = w21map[i21, k21, h if w21map.shape[2] > 1 else 0]
            for j in range(W):  # pass 2: the group shrink factor, max(0, ‖y‖ − β)/‖y‖
                a = np.sqrt(nrm[j])
                b = thr2[i] * w21row[j if w21row.shape[0] > 1 else 0] if spatial21 else b0
                nrm[j] = max(a - np.float64(b), 0.0) / a if a != 0 else 0.0
            zn[:] = 0.0
            zrow = h >= bh
            for c in range(C):  # pass 3: constraints, u, t, and the sums
                q = c * K + k
                xr, yr, ur, tr = x[i, q, h], y[i, q, h], u[i, q, h], t[i, q, h]
                wrow = w4[iw, q if w4.shape[1] > 1 else 0, h if w4.shape[2] > 1 else 0]
                wv = wk[q] if nwk > 1 else wk[0]
                for j in range(W):
                    yy = Y[c, j] * nrm[j]
                    if nonneg and yy < 0:
                        yy = yy - yy
                    if zrow or j >= bw:
                        yy = yy - yy
                    uu = V[c, j] - yy
                    xv = xr[j]
                    d1[j] = xv - yy
                    d2[j] = yr[j] - yy
                    yr[j] = yy
                    ur[j] = uu
                    if wt:
                        tr[j] = yy - uu
                    if want_l1:
                        if spatial:
                            wv = wrow[j if wrow.shape[0] > 1 else 0]
                        z = yy if l1_on_y else xv
                        lr[j] = abs(wv * z)
                        zn[j] += np.float64(z) * np.float64(z)
                add_row_sums(acc, xr, yr, ur, d1, d2)
                if want_l1:
                    acc[5] += _sum(lr)
            if want_l1:
                for j in range(W):
                    w21 = w21row[j if w21row.shape[0] > 1 else 0] if spatial21 else (w21k[k] if nw21 > 1 else w21k[0])
                    acc[6] += np.float64(w21) * np.sqrt(zn[j])


@njit(**_OPTS)
def rescale_t(y, u, pend, sel, t, p0, p1):
    """t = y − u / pend[i] for the planes p0 ≤ i·K + k < p1 of the images with sel[i]."""
    n, K, H, W = y.shape
    for p in range(p0, p1):
        i = p // K
        if sel[i] == 0:
            continue
        k = p - i * K
        pd = pend[i]
        for h in range(H):
            yr = y[i, k, h]
            ur = u[i, k, h]
            tr = t[i, k, h]
            if pd != 1:
                for j in range(W):
                    tr[j] = yr[j] - ur[j] / pd
            else:
                for j in range(W):
                    tr[j] = yr[j] - ur[j]


@njit(**_OPTS)
def divide_planes(u, pend, sel, p0, p1):
    """u /= pend[i] in place for the planes of the images with sel[i]."""
    n, K, H, W = u.shape
    for p in range(p0, p1):
        i = p // K
        if sel[i] == 0 or pend[i] == 1:
            continue
        k = p - i * K
        pd = pend[i]
        for h in range(H):
            ur = u[i, k, h]
            for j in range(W):
                ur[j] = ur[j] / pd


# ------------------------------------------------- the two-block split (ConvL1L1Grd)
@njit(**_OPTS)
def two_block_y1(x, y1, u1, t, dy1, alpha, beta, thr, wk, w4, spatial, nonneg, bh, bw, l1_on_y, want_l1,
                 part, p0, p1):
    r"""Block 1 (y₁ for x) of the two-block split, for the planes ``p0 ≤ i·K + k < p1``
    (:class:`csc.backends.numba_twoblock.FusedTwoBlock`), per coefficient::

        a = α·x + (1 − α)·y₁              (α = 1, β = 0 when not relaxing: a = x)
        y₁ ← S_τ(a + u₁), τ = thr[i]·w     (then non-negativity, boundary zeroing)
        u₁ ← u₁ + (a − y₁)
        t = y₁ − u₁ (the next x-step's FFT input), dy1 = y₁_prev − y₁

    ``part[i·K + k]``: ‖x‖², ‖y₁‖², ‖x − y₁‖², if ``want_l1`` Σ|w·x| (Σ|w·y₁| when
    ``l1_on_y``), and ‖u₁‖², in float64. Weights as in :func:`ystep` (``wk`` per kernel, or
    ``w4``).
    """
    n, K, H, W = x.shape
    nwk = wk.shape[0]
    d1, d2, lr = row_scratch(W, x.dtype)
    for p in range(p0, p1):
        i = p // K
        k = p - i * K
        ti = thr[i]
        wv = wk[k] if nwk > 1 else wk[0]
        th = ti * wv
        iw = i if w4.shape[0] > 1 else 0
        kw = k if w4.shape[1] > 1 else 0
        acc = part[p]
        acc[:] = 0.0
        for h in range(H):
            xr, yr, ur, tr, dr = x[i, k, h], y1[i, k, h], u1[i, k, h], t[i, k, h], dy1[i, k, h]
            wrow = w4[iw, kw, h if w4.shape[2] > 1 else 0]
            wsp = wrow.shape[0] > 1
            for j in range(W):
                if spatial:
                    wv = wrow[j if wsp else 0]
                    th = ti * wv
                xv = xr[j]
                yp = yr[j]
                a = alpha * xv + beta * yp
                v = a + ur[j]
                yy = v - min(max(v, -th), th)
                if nonneg and yy < 0:
                    yy = yy - yy
                if h >= bh or j >= bw:
                    yy = yy - yy
                uu = ur[j] + (a - yy)
                yr[j] = yy
                ur[j] = uu
                tr[j] = yy - uu
                dr[j] = yp - yy
                d1[j] = xv - yy
                if want_l1:
                    lr[j] = abs(wv * (yy if l1_on_y else xv))
            acc[0] += _sumsq(xr)
            acc[1] += _sumsq(yr)
            acc[2] += _sumsq(d1)
            if want_l1:
                acc[3] += _sum(lr)
            acc[4] += _sumsq(ur)


@njit(**_OPTS)
def two_block_y0(Dx, y0, u0, S, dy0, alpha, beta, rpar, mask, quadratic, fid_on_y, part, i0, i1):
    r"""Block 0 (y₀ for Dx − s) of the two-block split, for the images ``i0 ≤ i < i1``
    ((n, 1, H, W) maps; ``mask`` W a broadcast (·, 1, ·, ·) view), per pixel::

        a = α·Dx + (1 − α)·(y₀ + s),  v = (a + u₀) − s
        y₀ ← S_τ(v), τ = rpar[i]·W      (ℓ1 data term; rpar = 1/ρ)
        y₀ ← (ρ·v) / (W·W + ρ)          (``quadratic``: ½‖W·y₀‖², mask decoupling; rpar = ρ)
        u₀ ← u₀ + (a − (y₀ + s)),  dy0 = y₀_prev − y₀

    ``part[i]``: ‖Dx‖², ‖y₀‖², ‖Dx − (y₀ + s)‖², ‖s‖², the data term's sum — Σ|W·e|, or
    Σ(W·e)² when ``quadratic`` — of e = Dx − s (e = y₀ when ``fid_on_y``), and ‖u₀‖², in
    float64.
    """
    n, _, H, W = Dx.shape
    e = np.empty(W, dtype=Dx.dtype)
    lr = np.empty(W, dtype=Dx.dtype)
    for i in range(i0, i1):
        acc = part[i]
        acc[:] = 0.0
        ri = rpar[i]
        im = i if mask.shape[0] > 1 else 0
        for h in range(H):
            dxr, yr, ur, sr, dr = Dx[i, 0, h], y0[i, 0, h], u0[i, 0, h], S[i, 0, h], dy0[i, 0, h]
            mrow = mask[im, 0, h if mask.shape[2] > 1 else 0]
            msp = mrow.shape[0] > 1
            for j in range(W):
                wv = mrow[j if msp else 0]
                yp = yr[j]
                a = alpha * dxr[j] + beta * (yp + sr[j])
                v = (a + ur[j]) - sr[j]
                if quadratic:
                    yy = (ri * v) / (wv * wv + ri)
                else:
                    th = ri * wv
                    yy = v - min(max(v, -th), th)
                ur[j] = ur[j] + (a - (yy + sr[j]))
                yr[j] = yy
                dr[j] = yp - yy
                e[j] = dxr[j] - (yy + sr[j])
                lr[j] = wv * (yy if fid_on_y else dxr[j] - sr[j])
            acc[0] += _sumsq(dxr)
            acc[1] += _sumsq(yr)
            acc[2] += _sumsq(e)
            acc[3] += _sumsq(sr)
            if quadratic:
                acc[4] += _sumsq(lr)
            else:
                for j in range(W):
                    lr[j] = abs(lr[j])
                acc[4] += _sum(lr)
            acc[5] += _sumsq(ur)


@njit(**_OPTS)
def adjoint_spectrum(v0f, Dre, Dim, scale, gf, r0, r1):
    """``gf[i, k, h] = conj(D̂_k)·v̂₀[i, h]·scale`` for the DFT rows ``r0 ≤ i·H + h < r1``
    (real views: v0f (n, H, 2·Wr), gf (n, K, H, 2·Wr)): the spectrum of Dᵀv₀."""
    n, K, H, W2 = gf.shape
    Wr = W2 // 2
    for row in range(r0, r1):
        i = row // H
        h = row - i * H
        vr = v0f[i, h]
        for k in range(K):
            g = gf[i, k, h]
            dre = Dre[k, h]
            dim = Dim[k, h]
            for j in range(Wr):
                a = vr[2 * j]
                b = vr[2 * j + 1]
                g[2 * j] = (dre[j] * a + dim[j] * b) * scale
                g[2 * j + 1] = (dre[j] * b - dim[j] * a) * scale


@njit(**_OPTS)
def add_sumsq(g, v, out, p0, p1):
    """``out[i·K + k]`` = ‖g + v‖² over the plane (i, k) (float64), for ``p0 ≤ i·K + k < p1``."""
    n, K, H, W = g.shape
    row = np.empty(W, dtype=g.dtype)
    for p in range(p0, p1):
        i = p // K
        k = p - i * K
        tot = 0.0
        for h in range(H):
            gr = g[i, k, h]
            vr = v[i, k, h]
            for j in range(W):
                row[j] = gr[j] + vr[j]
            tot += _sumsq(row)
        out[p] = tot

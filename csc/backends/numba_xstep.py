r"""The x-steps of :mod:`csc.core.xstep` on the fused CPU back end: their numba kernels and arrays.

An x-step object describes its arithmetic in torch (:mod:`csc.core.xstep`); this module runs
the same solve as the numba kernels of :mod:`csc.backends.kernels` over the fused workspaces'
buffers (:mod:`csc.backends.numba_cpu`, :mod:`csc.backends.numba_twoblock`):

- :func:`solve` — the x-step in place on the DFT buffer, with the fidelity (and penalty) rows;
- :func:`fidelity_rows` — the data term's rows for codes' DFTs (statistics on y);
- :func:`dft_arrays` and :func:`penalty_arrays` — the dictionary's DFT as the kernels read it
  (real and imaginary planes, Σ|D̂|², the channel Gram matrix, μP and P), cached in the
  x-step's ``backend_cache`` (emptied by its ``set_dft`` when the dictionary changes; the
  planes' buffers kept in its ``backend_buffers`` for the next dictionary);
- :func:`solve_two_block` — the two-block split's x-step (:class:`~csc.core.xstep.DiagonalXStep`
  with ``over_rho``).

A new x-step gets its numba solve here (a kernel in :mod:`csc.backends.kernels`); one without
runs on the torch loop (:mod:`csc.backends.registry`).
"""

from __future__ import annotations

import numpy as np
import torch

from csc.backends import fused
from csc.core.xstep import ChannelwiseXStep, DiagonalXStep, MultiChannelXStep, SingleChannelXStep

__all__ = ["dft_arrays", "fidelity_rows", "penalty_arrays", "solve", "solve_two_block", "supported"]


def supported(xs) -> bool:
    """Whether the fused back end has a kernel for the x-step ``xs``."""
    return isinstance(xs, (SingleChannelXStep, MultiChannelXStep, ChannelwiseXStep))


def dft_arrays(xs, threads: int = 1) -> tuple[np.ndarray, ...]:
    """The dictionary's DFT as the kernels read it, contiguous CPU arrays: (Re D̂, Im D̂, Σ_k|D̂_k|²)
    (K, H, Wr) for single-channel kernels, (Re D̂, Im D̂, Re G, Im G) with G = D̂D̂ᴴ (H, Wr, C, C)
    for multi-channel ones. Made once per dictionary (the planes' buffers reused across updates)."""
    if isinstance(xs, ChannelwiseXStep):
        return dft_arrays(xs.inner, threads)
    cache = xs.backend_cache
    if "numba" not in cache:
        cache["numba"] = _multichannel_arrays(xs) if isinstance(xs, MultiChannelXStep) else \
            _single_arrays(xs, threads, xs.backend_buffers.get("numba"))
        xs.backend_buffers["numba"] = cache["numba"]
    return cache["numba"]


def _single_arrays(xs, threads: int, buf) -> tuple[np.ndarray, ...]:
    Df = xs.Df.contiguous()
    K, H, Wr = Df.shape
    npdt = Df.real.numpy().dtype
    if buf is None or len(buf) != 3 or buf[0].shape != (K, H, Wr) or buf[0].dtype != npdt:
        buf = tuple(np.empty(s, dtype=npdt) for s in ((K, H, Wr), (K, H, Wr), (H, Wr)))
    fused.run_split(fused.dl_kernels().split_dft, H, threads, Df.numpy().view(npdt), *buf)
    return buf


def _multichannel_arrays(xs) -> tuple[np.ndarray, ...]:
    G = xs.channel_gram
    return tuple(np.ascontiguousarray(a.numpy()) for a in (xs.Df.real, xs.Df.imag, G.real, G.imag))


def penalty_arrays(xs: DiagonalXStep) -> tuple[np.ndarray, np.ndarray]:
    """(μP, P) of a diagonal x-step as contiguous CPU arrays."""
    return xs.muP.contiguous().cpu().numpy(), xs.P.contiguous().cpu().numpy()


def solve(xs, ws, xfv: np.ndarray, rho: np.ndarray, scale, fid: np.ndarray, pen: np.ndarray) -> None:
    """The x-step of the fused workspace ``ws`` in place on the DFT ``xfv`` (real view), with the
    fidelity rows ``fid`` and (a diagonal x-step) the penalty rows ``pen`` when they have rows."""
    H, W = ws.shape
    even, Sfv = W % 2 == 0, ws.Sf.numpy().view(xfv.dtype)
    kn = fused.kernels()
    if isinstance(xs, DiagonalXStep):
        if xs.over_rho:
            raise ValueError("an over_rho x-step is the two-block split's: use solve_two_block")
        muP, P = penalty_arrays(xs)
        _diagonal(xs, ws, xfv, Sfv, rho, np.ones_like(rho), muP, P, scale, fid, pen,
                  np.empty((0, 1, 2), dtype=xfv.dtype))
    elif isinstance(xs, ChannelwiseXStep):
        dre, dim, gram = dft_arrays(xs, ws.threads)
        n, CK, C = xfv.shape[0], xfv.shape[1], xs.channels
        fused.run_split(kn.xstep, n * C * H, ws.threads, xfv.reshape(n * C, CK // C, *xfv.shape[2:]), dre, dim,
                        ws.Sf.reshape(-1, *ws.Sf.shape[-2:]).numpy().view(xfv.dtype), np.repeat(rho, C), gram,
                        scale, even, fid)
    elif isinstance(xs, MultiChannelXStep):
        dre, dim, gre, gim = dft_arrays(xs, ws.threads)
        fused.run_split(kn.xstep_mc, ws.n * H, ws.threads, xfv, dre, dim, Sfv, rho, gre, gim, scale, even, fid)
    else:
        dre, dim, gram = dft_arrays(xs, ws.threads)
        fused.run_split(kn.xstep, ws.n * H, ws.threads, xfv, dre, dim, Sfv, rho, gram, scale, even, fid)


def solve_two_block(xs: DiagonalXStep, ws, xfv: np.ndarray, s0f: np.ndarray, rho: np.ndarray, scale,
                    pen: np.ndarray, dxf: np.ndarray) -> None:
    """The two-block split's x-step (``over_rho``) on the fused back end: x̂ from v̂ = ``xfv`` and
    ŝ = ``s0f`` (real views), DFT(Dx)·scale into ``dxf``, the penalty rows ``pen``."""
    P = penalty_arrays(xs)[1]
    q = (xs.mu / rho.astype(np.float64)).astype(rho.dtype)  # SPORCO: mu / rho
    _diagonal(xs, ws, xfv, s0f, np.ones_like(rho), q, P, P, scale, np.zeros(0), pen, dxf)


def _diagonal(xs, ws, xfv, Sfv, rho, q, muP, P, scale, fid, pen, dxf) -> None:
    """The kernel :func:`csc.backends.kernels.xstep_diagonal` over the workspace's images."""
    dre, dim, _ = dft_arrays(xs, ws.threads)
    H, W = ws.shape
    fused.run_split(fused.kernels().xstep_diagonal, ws.n * H, ws.threads, xfv, dre, dim, Sfv, rho, q, muP, P,
                    scale, W % 2 == 0, fid, pen, dxf)


def fidelity_rows(xs, zf: torch.Tensor, Sf: torch.Tensor, even: bool, rows: np.ndarray, threads: int) -> None:
    """Per DFT row the Parseval-weighted |Σ_k D̂_k ẑ_k − Ŝ|² (summed over channels for
    multi-channel kernels) of codes' DFTs ``zf``, into ``rows``."""
    if isinstance(xs, ChannelwiseXStep):
        zf = zf.reshape(zf.shape[0] * xs.channels, zf.shape[1] // xs.channels, *zf.shape[2:])
        fidelity_rows(xs.inner, zf, Sf.reshape(-1, *Sf.shape[-2:]), even, rows, threads)
        return
    arrays = dft_arrays(xs, threads)
    dre, dim, npdt = arrays[0], arrays[1], arrays[0].dtype
    kernel = fused.kernels().fidelity_rows_mc if isinstance(xs, MultiChannelXStep) else fused.kernels().fidelity_rows
    fused.run_split(kernel, Sf.shape[0] * Sf.shape[-2], threads, zf.numpy().view(npdt), dre, dim,
                    Sf.numpy().view(npdt), even, rows)

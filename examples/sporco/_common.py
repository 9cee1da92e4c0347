"""Shared pieces of the SPORCO example ports: data as SPORCO's scripts load it, one-thread
timing, the comparison record and the command line.

The data come from SPORCO's own package (its example images and ``util.convdicts()`` ship
inside ``sporco/data``, so nothing is downloaded): a port needs SPORCO installed for its
data, as the script it ports does, but solves with csc alone unless ``compare=True``.

The comparison record of a port that ran SPORCO too (``compare=True``):

- ``codes``: max |a − b| / max |b| over the codes (or the learnt dictionary),
- ``objective``: |F_csc − F_sporco| / |F_sporco| of the final functional value,
- ``psnr``: |PSNR_csc − PSNR_sporco| in dB,
- ``csc_time``, ``sporco_time``: wall seconds of each solve (one thread each).
"""

from __future__ import annotations

import argparse
import os
import time
from contextlib import contextmanager

import numpy as np
import torch

#: the quick mode's image side (a top-left crop) and iteration limit
QUICK, QUICK_ITERS = 24, 10

__all__ = ["QUICK", "QUICK_ITERS", "single_thread", "image", "convdict", "tikhonov", "tensor", "psnr", "timed",
           "Timer", "rel_diff", "record", "report", "figure", "main", "masked_monarch", "crop", "chw", "hwc",
           "tv_lowpass", "sporco_tv_lowpass", "outcome", "sporco_solve", "add_par", "quick_crop", "learner_images",
           "learnt", "sporco_learnt"]


def single_thread() -> None:
    """One thread for torch, numba and SPORCO's pyFFTW (numpy's BLAS is pinned by the
    environment of the process: ``OMP_NUM_THREADS=1``, as ``benchmarks/sporco_examples.py`` sets)."""
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    torch.set_num_threads(1)
    try:
        from sporco import fft as sp_fft

        sp_fft.pyfftw_threads = 1
    except ImportError:
        pass


def image(name: str, ctor: dict | None = None, **kwargs) -> np.ndarray:
    """``sporco.util.ExampleImages(**ctor).image(name, **kwargs)`` in float64: SPORCO's images,
    shipped in its package (SPORCO loads them as float32; the ports compute in float64, csc and
    SPORCO alike, so that a comparison measures the algorithms and not float32 rounding)."""
    from sporco import util

    return util.ExampleImages(**(ctor or {})).image(name, **kwargs).astype(np.float64)


def convdict(name: str) -> np.ndarray:
    """SPORCO's dictionary ``util.convdicts()[name]`` in float64, SPORCO's (kh, kw[, C], K) layout."""
    from sporco import util

    return util.convdicts()[name].astype(np.float64)


def tikhonov(img: np.ndarray, lmbda: float, npd: int = 16):
    """(lowpass, highpass) of ``img``: ``sporco.signal.tikhonov_filter``, as SPORCO's scripts."""
    from sporco import signal

    return signal.tikhonov_filter(img, lmbda, npd)


def tensor(a) -> torch.Tensor:
    """A float64 tensor of ``a`` (a contiguous copy)."""
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))


def psnr(ref, img) -> float:
    """SPORCO's ``metric.psnr``: 10 log10((max − min of ref)² / MSE) over the whole array (a
    colour image is one signal, as in SPORCO's scripts)."""
    ref, img = np.asarray(ref, dtype=np.float64), np.asarray(img, dtype=np.float64)
    return float(10 * np.log10((ref.max() - ref.min()) ** 2 / np.mean((ref - img) ** 2)))


class Timer:
    """Wall seconds of a ``with timed() as t:`` block, in ``t.elapsed``."""

    elapsed: float = 0.0


@contextmanager
def timed():
    t, t0 = Timer(), time.perf_counter()
    try:
        yield t
    finally:
        t.elapsed = time.perf_counter() - t0


def rel_diff(a, b) -> float:
    """max |a − b| / max |b| (0 when both are 0)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_diff: shapes differ, {a.shape} and {b.shape}")
    scale = np.abs(b).max()
    diff = np.abs(a - b).max()
    return float(diff / scale) if scale > 0 else float(diff)


def record(script: str, quick: bool, ours: dict, sporco: dict | None = None) -> dict:
    """The result of a port: ``ours`` (and SPORCO's) ``objective``, ``psnr``, ``time`` and the
    arrays ``codes`` (csc layout) kept apart, plus the differences when SPORCO ran."""
    keep = ("objective", "psnr", "time", "iterations")
    out = {"script": script, "quick": quick, "csc": {k: ours[k] for k in keep if k in ours}}
    if sporco is not None:
        out["sporco"] = {k: sporco[k] for k in keep if k in sporco}
        out["diff"] = {
            "codes": rel_diff(ours["codes"], sporco["codes"]),
            "objective": abs(ours["objective"] - sporco["objective"]) / abs(sporco["objective"]),
            "psnr": abs(ours["psnr"] - sporco["psnr"]),
            "csc_time": ours["time"], "sporco_time": sporco["time"],
        }
    out["csc"]["nonzero"] = float(np.mean(np.asarray(ours["codes"]) != 0))
    out["arrays"] = {"codes": ours["codes"], **ours.get("images", {})}
    return out


def report(out: dict, what: str = "solve") -> None:
    """Print what SPORCO's script prints: the functional value, the solve time, the PSNR."""
    c = out["csc"]
    print(f"{out['script']}: csc {what} time: {c['time']:.2f}s, functional value {c['objective']:.6e}, "
          f"PSNR {c['psnr']:.2f}dB")
    if "sporco" in out:
        s, d = out["sporco"], out["diff"]
        print(f"{out['script']}: SPORCO {what} time: {s['time']:.2f}s, functional value {s['objective']:.6e}, "
              f"PSNR {s['psnr']:.2f}dB")
        print(f"{out['script']}: differences: codes {d['codes']:.2e} (max rel.), objective {d['objective']:.2e} "
              f"(rel.), PSNR {d['psnr']:.2e} dB")


def figure(out: dict, path: str) -> None:
    """Write the images of ``out['arrays']`` (2-D, or (H, W, 3) colour) side by side to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    imgs = {k: np.asarray(v) for k, v in out["arrays"].items() if k != "codes"}
    fig, axes = plt.subplots(1, len(imgs), figsize=(5 * len(imgs), 5), squeeze=False)
    for ax, (name, img) in zip(axes[0], imgs.items()):
        ax.imshow(np.clip(img, 0, 1) if img.ndim == 3 else img, cmap="gray" if img.ndim == 2 else None)
        ax.set_title(name)
        ax.axis("off")
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


def main(run, script: str) -> dict:
    """The command line of a port: ``--quick``, ``--compare``, ``--plot`` (writes ``<script>.png``)."""
    parser = argparse.ArgumentParser(description=f"SPORCO's {script} example on csc")
    parser.add_argument("--quick", action="store_true", help="a reduced size that runs in seconds")
    parser.add_argument("--compare", action="store_true", help="also run SPORCO with the same options")
    parser.add_argument("--plot", action="store_true", help=f"write the figure to {script}.png")
    args = parser.parse_args()
    single_thread()
    out = run(quick=args.quick, compare=args.compare)
    if args.plot:
        figure(out, f"{script}.png")
    return out


def masked_monarch(gray: bool, quick: bool, pn: int = 8, size: int = 16):
    """The inpainting data of SPORCO's ``cbpdn_ams_*`` and ``cbpdn_md_gry``: monarch at half size
    (``quick``: its top-left ``size``² crop), half its pixels removed by ``signal.rndmask`` after
    ``np.random.seed(12345)``, padded by ``pn`` (the image symmetrically, the mask with zeros).
    Returns (img, msk, imgw, mskp, imgwp)."""
    from sporco import signal

    img = image("monarch.png", zoom=0.5, scaled=True, gray=gray, idxexp=np.s_[:, 160:672])
    if quick:
        img = quick_crop(img, size)
    np.random.seed(12345)
    msk = signal.rndmask(img.shape, 0.5, dtype=np.float64)
    imgw = msk * img
    pad = ((pn, pn),) * 2 + ((0, 0),) * (img.ndim - 2)
    return img, msk, imgw, np.pad(msk, pad, mode="constant"), np.pad(imgw, pad, mode="symmetric")


def crop(x: np.ndarray, pn: int = 8) -> np.ndarray:
    """``x[pn:-pn, pn:-pn]`` (SPORCO's scripts' ``crop``)."""
    return x[pn:-pn, pn:-pn]


def chw(img: np.ndarray) -> np.ndarray:
    """An (H, W, C) colour image as (C, H, W); a grey (H, W) one unchanged."""
    return np.moveaxis(img, -1, 0) if img.ndim == 3 else img


def hwc(img) -> np.ndarray:
    """The inverse of :func:`chw` (a tensor becomes an array)."""
    img = np.asarray(img)
    return np.moveaxis(img, 0, -1) if img.ndim == 3 else img


def tv_lowpass(imgwp: np.ndarray, mskp: np.ndarray, lmbda: float = 0.05, iters: int = 200) -> np.ndarray:
    """ℓ2–TV denoising with the mask as data-fidelity weight (SPORCO's scripts' non-linear
    lowpass filter: ``tvl2.TVL2Denoise`` with ``DFidWeight`` the mask, adaptive ρ, ``caxis=2``
    for colour), on csc's :class:`csc.TVL2Denoise`. (H, W[, C]) in and out."""
    import csc

    colour = imgwp.ndim == 3
    opts = csc.TVL2Options(max_iter=iters, dfid_weight=tensor(chw(mskp))[None], objective_on_y=False,
                           auto_rho=True, vector=colour)
    return hwc(csc.TVL2Denoise(lmbda, opts).solve(tensor(chw(imgwp))[None]).x[0])


def sporco_tv_lowpass(imgwp: np.ndarray, mskp: np.ndarray, lmbda: float = 0.05, iters: int = 200) -> np.ndarray:
    """:func:`tv_lowpass` as SPORCO's scripts run it."""
    from sporco.admm import tvl2

    opt = tvl2.TVL2Denoise.Options({"Verbose": False, "MaxMainIter": iters, "DFidWeight": mskp, "gEvalY": False,
                                    "AutoRho": {"Enabled": True}})
    return tvl2.TVL2Denoise(imgwp, lmbda, opt, caxis=2 if imgwp.ndim == 3 else None).solve()


def outcome(codes, objective, psnr_db, seconds, iterations, **images) -> dict:
    """A port's own numbers, as :func:`record` takes them (``images``: for the figure; ``psnr_db``
    None: NaN, for a script that computes none)."""
    return dict(codes=np.asarray(codes), objective=float(objective),
                psnr=float("nan") if psnr_db is None else float(psnr_db), time=float(seconds),
                iterations=int(iterations), images=images)


def sporco_solve(b, img, reconstruct, prep: float = 0.0) -> dict:
    """Run SPORCO's solver object ``b`` (timed, plus ``prep`` seconds of preprocessing already
    spent) and return its numbers: codes ``b.getcoef()`` in csc's layout, ``ObjFun``, the PSNR of
    ``reconstruct(b)`` against ``img``, the iterations."""
    import csc

    with timed() as t:
        b.solve()
    return dict(codes=csc.from_sporco_layout(np.asarray(b.getcoef()), "codes"),
                objective=float(b.getitstat().ObjFun[-1]), psnr=psnr(img, reconstruct(b)),
                time=prep + t.elapsed, iterations=len(b.getitstat().ObjFun))


def add_par(out: dict, par: dict) -> dict:
    """Add SPORCO's ``ParConvBPDN`` run to a record: its numbers and the relative difference of
    its objective and its PSNR from csc's (the same minimiser, other iterates)."""
    out["par"] = {k: par[k] for k in ("objective", "psnr", "time", "iterations")}
    out["par"]["objective_diff"] = abs(out["csc"]["objective"] - par["objective"]) / abs(par["objective"])
    out["par"]["psnr_diff"] = abs(out["csc"]["psnr"] - par["psnr"])
    print(f"{out['script']}: SPORCO ParConvBPDN (one process) time {par['time']:.2f}s, functional value "
          f"{par['objective']:.6e} (csc's differs by {out['par']['objective_diff']:.1e}), PSNR {par['psnr']:.2f}dB")
    return out


def quick_crop(img: np.ndarray, size: int | None = None) -> np.ndarray:
    """The quick mode's image: the central ``size``² (default :data:`QUICK`) crop."""
    size = size or QUICK
    r, c = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
    return img[r:r + size, c:c + size]


def learner_images(names, zoom: float, quick: bool, size: int = 16, gray: bool = True) -> np.ndarray:
    """SPORCO's learning scripts' images: ``ExampleImages(scaled=True, zoom=zoom, gray=gray)``
    crops stacked as (H, W, B), colour ones as (H, W, C, B) (``quick``: their central ``size``² crops)."""
    crops = {"barbara.png": np.s_[10:522, 100:612], "kodim23.png": np.s_[:, 60:572],
             "monarch.png": np.s_[:, 160:672], "sail.png": np.s_[:, 210:722], "tulips.png": np.s_[:, 30:542]}
    imgs = [image(n, dict(scaled=True, zoom=zoom, gray=gray), idxexp=crops[n]) for n in names]
    return np.stack([quick_crop(i, size) if quick else i for i in imgs], axis=-1)


def learnt(res, S: np.ndarray, seconds: float, sl=0.0) -> dict:
    """A csc learner's numbers: the dictionary in the ``codes`` slot (compared as SPORCO's
    ``getdict()``), the last objective, the PSNR of its reconstruction (+ ``sl``) against S."""
    import csc

    recon = np.asarray(csc.to_sporco_layout(res.reconstruct(), "images")) + sl
    return outcome(res.dictionary, res.stats.objective[-1], psnr(S, recon), seconds, res.iterations)


def sporco_learnt(d, S: np.ndarray, sl=0.0, prep: float = 0.0) -> dict:
    """SPORCO's learner ``d`` run (timed): its ``getdict()`` in csc's layout, ``ObjFun``, the PSNR."""
    import csc

    with timed() as t:
        d.solve()
    return dict(codes=csc.from_sporco_layout(np.asarray(d.getdict()).squeeze(), "dictionary"),
                objective=float(d.getitstat().ObjFun[-1]), psnr=psnr(S, d.reconstruct().squeeze() + sl),
                time=prep + t.elapsed, iterations=len(d.getitstat().ObjFun))

"""SPORCO's ``csc/implsden_grd_pd_dct.py`` on csc: removing salt-and-pepper noise from a
hyperspectral image with a product dictionary, ℓ1 data fidelity and a gradient penalty.

The Indian Pines image (every second of its first 200 bands, scaled to max 1) with 33% salt and
pepper noise (``signal.spnoise`` after seed 12345), padded symmetrically by 8, coded by
``csc.ConvProdDictL1L1Grd`` (SPORCO's ``admm.pdcsc.ConvProdDictL1L1Grd``): an impulse kernel and
``G:8x8x32`` times a standard (bands × 20) dictionary B, λ 1.4, μ 9, ℓ1 weight 0 and gradient
weight 1 on the impulse kernel only, ρ 10, RelaxParam 1.8, 100 iterations, RelStopTol 5e-3; the
denoised image is the reconstruction from x (SPORCO's ``reconstruct()`` of this class), cropped.

What differs from the script:

- B: the script learns it with SPORCO's non-convolutional ``dictlrn.bpdndl.BPDNDictLearn`` on the
  noise-free image's spectra (B0 random with seed 12345, λ 0.02, 100 iterations), which csc does
  not have: the port computes B exactly so, with SPORCO, and gives the same B to csc and to
  SPORCO's solver (its time is in neither solve's). Only the convolutional step is csc's.
- Data: the script downloads ``Indian_pines.mat`` (not in SPORCO's package) to the temporary
  folder; the full size does the same (or reads it there). The quick mode, run by the tests
  offline, codes a stand-in instead: the central 16² crop of SPORCO's colour kodim23 crop
  spread over 20 bands (smooth spectral mixtures of its channels, scaled to [0, 1]), the same
  noise, B and options.

Expected against SPORCO (float64, the same iterates): codes 1e-10, objective 1e-12.
"""

import os
import tempfile

import numpy as np

import csc
from examples.sporco import _common as C

SCRIPT = "implsden_grd_pd_dct"
EXPECT = {"codes": 1e-10, "objective": 1e-12, "psnr": 1e-9}
NOTE = "ConvProdDictL1L1Grd with B from SPORCO's BPDNDictLearn (as the script): the same iterates"
PN = 8


def hyperspectral(quick):
    """The script's noise-free image (H, W, bands), scaled to max 1: Indian Pines, or the quick
    mode's 20-band stand-in (scaled to [0, 1])."""
    if quick:
        rgb = C.quick_crop(C.image("kodim23.png", scaled=True, idxexp=np.s_[160:416, 60:316]), 16)
        w = np.exp(-((np.linspace(0, 2, 20)[:, None] - np.arange(3)[None]) ** 2) / 0.5)  # (bands, 3)
        img = rgb @ w.T
        img = img - img.min()
    else:
        import scipy.io as sio
        from sporco import util

        pth = os.path.join(tempfile.gettempdir(), "Indian_pines.mat")
        if not os.path.isfile(pth):  # as the script
            with open(pth, "wb") as f:
                f.write(util.netgetdata("http://www.ehu.eus/ccwintco/uploads/2/22/Indian_pines.mat").read())
        img = sio.loadmat(pth)["indian_pines"].astype(np.float64)[16:-17, 16:-17, 0:200:2]
    return img / img.max()


def noisy_data(quick):
    """(img, imgn, D, wl1, wgr): the image, its noisy version, the impulse kernel and G:8x8x32,
    and the weights (ℓ1 0 and gradient 1 on the impulse kernel)."""
    from sporco import signal

    img = hyperspectral(quick)
    np.random.seed(12345)
    imgn = signal.spnoise(img, 0.33)
    D0 = C.convdict("G:8x8x32")
    Di = np.zeros(D0.shape[0:2] + (1,))
    Di[0, 0] = 1.0
    D = np.concatenate((Di, D0), axis=2)
    wl1 = np.ones((1,) * 4 + (D.shape[2],))
    wl1[..., 0] = 0.0
    wgr = np.zeros(D.shape[2])
    wgr[0] = 1.0
    return img, imgn, D, wl1, wgr


def pad(x, n=PN):
    return np.pad(x, ((n, n), (n, n), (0, 0)), mode="symmetric")


def standard_dictionary(img):
    """The script's B: SPORCO's ``BPDNDictLearn`` on the noise-free spectra (bands × 20)."""
    from sporco.dictlrn import bpdndl

    S = img.reshape((-1, img.shape[-1])).T
    np.random.seed(12345)
    B0, lmbda = np.random.randn(S.shape[0], 20), 0.02
    opt = bpdndl.BPDNDictLearn.Options({"Verbose": False, "MaxMainIter": 100, "BPDN": {"rho": 10.0 * lmbda + 0.1},
                                        "CMOD": {"rho": S.shape[1] / 2e2}})
    return np.asarray(bpdndl.BPDNDictLearn(B0, S, lmbda, opt).solve())


def solve(script, quick, compare, B_of, csc_cls, sp_name, lmbda, mu, weight_key):
    """The two scripts' common body: csc's ``csc_cls`` and SPORCO's ``pdcsc.<sp_name>`` with the
    weights under ``weight_key`` (``L1Weight`` or ``L21Weight``)."""
    img, imgn, D, wl1, wgr = noisy_data(quick)
    B = B_of(img)
    opt = {"Verbose": False, "MaxMainIter": C.QUICK_ITERS if quick else 100, "RelStopTol": 5e-3,
           "AuxVarObj": False, "rho": 1e1, "RelaxParam": 1.8, weight_key: wl1, "GradWeight": wgr}
    opts_cls = csc.L1L1GrdJointOptions if weight_key == "L21Weight" else csc.L1L1GrdOptions
    solver = csc_cls(C.tensor(csc.from_sporco_layout(D, "dictionary")), C.tensor(B), lmbda, mu,
                     opts_cls.from_sporco(opt))
    with C.timed() as t:
        res = solver.solve(C.tensor(C.chw(pad(imgn)))[None])
    imgd = C.crop(C.hwc(res.reconstruct(res.x)[0]))  # SPORCO's reconstruct() of this class: from X
    ours = C.outcome(res.codes, res.stats[0].objective[-1], C.psnr(img, imgd), t.elapsed, res.iterations.max())
    print(f"Noisy image PSNR: {C.psnr(img, imgn):5.2f} dB")
    if compare:
        from sporco.admm import pdcsc

        cls = getattr(pdcsc, sp_name)
        b = cls(D, B, pad(imgn), lmbda, mu, opt=cls.Options(opt), dimK=0)
        theirs = C.sporco_solve(b, img, lambda b: C.crop(b.reconstruct().squeeze()))
        H, W = pad(imgn).shape[:2]
        theirs["codes"] = np.transpose(b.getcoef().reshape(H, W, B.shape[1], -1), (2, 3, 0, 1))[None]
        return C.record(script, quick, ours, theirs)
    return C.record(script, quick, ours)


def run(quick=False, compare=False):
    return solve(SCRIPT, quick, compare, standard_dictionary, csc.ConvProdDictL1L1Grd, "ConvProdDictL1L1Grd",
                 1.4, 9.0, "L1Weight")


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT))

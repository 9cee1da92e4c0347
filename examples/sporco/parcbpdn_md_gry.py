"""SPORCO's ``csc/parcbpdn_md_gry.py`` on csc: masked CBPDN, the problem of SPORCO's masked ``ParConvBPDN``.

Greyscale monarch (quarter size), pixels removed where |N(0, 1)| < 0.5 (seed 12345), padded by
8, ℓ2–TV lowpass with the mask as weight; the masked highpass part coded by
``csc.ConvBPDNMaskDcpl`` (``G:12x12x216``, λ 2e-2, ρ = 50λ + 0.1 fixed, RelStopTol 5e-2), which
is SPORCO's ``ConvBPDNMaskDcpl``. SPORCO's script also runs ``ParConvBPDN`` with the mask (α 1.5,
RelStopTol 1e-2): the same minimiser by other iterates (``par`` in the record).

Expected (float64): codes 1e-10 and objective 1e-12 against SPORCO's ``ConvBPDNMaskDcpl``.
"""

import numpy as np

import csc
from examples.sporco import _common as C

SCRIPT = "parcbpdn_md_gry"
EXPECT = {"codes": 1e-10, "objective": 1e-12, "psnr": 1e-9}
SAME_MINIMISER = True
NOTE = ("csc.ConvBPDNMaskDcpl is SPORCO's ConvBPDNMaskDcpl to 1e-10; masked ParConvBPDN reaches the same "
        "minimiser by other iterates")


def data(quick):
    img = C.image("monarch.png", zoom=0.25, scaled=True, gray=True, idxexp=np.s_[:, 160:672])
    img = C.quick_crop(img, 16) if quick else img
    np.random.seed(12345)
    msk = np.random.randn(*img.shape)
    msk[np.abs(msk) > 0.5] = 1
    msk[np.abs(msk) < 0.5] = 0
    imgw = msk * img
    return img, imgw, np.pad(msk, 8, mode="constant"), np.pad(imgw, 8, mode="symmetric")


def run(quick=False, compare=False):
    img, imgw, mskp, imgwp = data(quick)
    D, lmbda, iters = C.convdict("G:12x12x216"), 2e-2, C.QUICK_ITERS if quick else 200
    opt = {"Verbose": False, "MaxMainIter": iters, "HighMemSolve": True, "RelStopTol": 5e-2, "AuxVarObj": False,
           "RelaxParam": 1.8, "rho": 5e1 * lmbda + 1e-1, "AutoRho": {"Enabled": False, "StdResiduals": False}}
    with C.timed() as t:
        sl = C.tv_lowpass(imgwp, mskp)
        sh = mskp * (imgwp - sl)
        solver = csc.ConvBPDNMaskDcpl(C.tensor(csc.from_sporco_layout(D, "dictionary")), lmbda,
                                      csc.MaskDcplOptions.from_sporco(opt))
        res = solver.solve(C.tensor(sh), mask=C.tensor(mskp))
    imgr = C.crop(sl + res.reconstruct()[0].numpy())
    ours = C.outcome(res.codes, res.stats[0].objective[-1], C.psnr(img, imgr), t.elapsed, res.iterations[0],
                     corrupted=imgw, reconstructed=imgr)
    if not compare:
        return C.record(SCRIPT, quick, ours)
    from sporco.admm import cbpdn, parcbpdn

    with C.timed() as tp:
        sl = C.sporco_tv_lowpass(imgwp, mskp)
        sh = mskp * (imgwp - sl)
    recon = lambda b: C.crop(sl + b.reconstruct().squeeze())  # noqa: E731
    b = cbpdn.ConvBPDNMaskDcpl(D, sh, lmbda, mskp, opt=cbpdn.ConvBPDNMaskDcpl.Options(opt))
    out = C.record(SCRIPT, quick, ours, C.sporco_solve(b, img, recon, prep=tp.elapsed))
    opt_par = {**opt, "RelStopTol": 1e-2, "alpha": 1.5}
    b_par = parcbpdn.ParConvBPDN(D, sh, lmbda, mskp, opt=parcbpdn.ParConvBPDN.Options(opt_par), nproc=1)
    return C.add_par(out, C.sporco_solve(b_par, img, recon, prep=tp.elapsed))


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT))

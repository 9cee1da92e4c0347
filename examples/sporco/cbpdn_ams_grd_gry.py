"""SPORCO's ``csc/cbpdn_ams_grd_gry.py`` on csc: inpainting with the lowpass part in the problem.

The data of ``cbpdn_ams_gry`` (greyscale monarch, half its pixels removed, padded by 8), not
filtered: an impulse kernel is put in front of ``G:8x8x128``, its map free of the ℓ1 term
(``l1_weight`` 0) and smoothed by the gradient term (``grad_weight`` 1; 0.2 for the others),
coded by ``csc.AddMaskSim`` around ``csc.ConvBPDNGradReg`` (λ 1e-2, μ 2e-1, ρ = 50λ + 0.1
fixed, RelStopTol 5e-3). SPORCO's weights have one more entry, for AMS's own impulse
(``L1Weight`` 0, ``GradWeight`` 0): csc appends it (``impulse_grad_weight=0``).

Expected against SPORCO (float64, the same iterates): codes 1e-10, objective 1e-12.
"""

import numpy as np

import csc
from examples.sporco import _common as C

SCRIPT = "cbpdn_ams_grd_gry"
EXPECT = {"codes": 1e-10, "objective": 1e-12, "psnr": 1e-9}
NOTE = "AddMaskSim(ConvBPDNGradReg) with per-kernel weights: the same iterates"


def dictionary_and_weights():
    """Di = [impulse, G:8x8x128] and the ℓ1 and gradient weights of its kernels."""
    D = C.convdict("G:8x8x128")
    di = np.zeros(D.shape[0:2] + (1,))
    di[0, 0] = 1
    Di = np.dstack((di, D))
    wl1, wgr = np.ones(Di.shape[2]), 2e-1 * np.ones(Di.shape[2])
    wl1[0], wgr[0] = 0.0, 1.0
    return Di, wl1, wgr


def options(lmbda, iters):
    return {"Verbose": False, "MaxMainIter": iters, "HighMemSolve": True, "RelStopTol": 5e-3, "AuxVarObj": False,
            "RelaxParam": 1.8, "rho": 5e1 * lmbda + 1e-1, "AutoRho": {"Enabled": False, "StdResiduals": False}}


def run(quick=False, compare=False):
    img, msk, imgw, mskp, imgwp = C.masked_monarch(gray=True, quick=quick)
    (Di, wl1, wgr), lmbda, mu, iters = dictionary_and_weights(), 1e-2, 2e-1, C.QUICK_ITERS if quick else 200
    opts = csc.GradRegOptions.from_sporco(options(lmbda, iters), l1_weight=C.tensor(wl1), grad_weight=C.tensor(wgr))
    solver = csc.ConvBPDNGradReg(C.tensor(csc.from_sporco_layout(Di, "dictionary")), lmbda, mu, opts)
    with C.timed() as t:
        res = csc.AddMaskSim(solver, impulse_grad_weight=0.0).solve(C.tensor(imgwp), mask=C.tensor(mskp))
    imgr = C.crop(res.reconstruct()[0].numpy())
    ours = C.outcome(res.codes, res.stats[0].objective[-1], C.psnr(img, imgr), t.elapsed, res.iterations[0],
                     corrupted=imgw, reconstructed=imgr)
    print(f"Corrupted image PSNR: {C.psnr(img, imgw):5.2f} dB")
    if compare:
        from sporco.admm import cbpdn

        opt = {**options(lmbda, iters), "L1Weight": np.append(wl1, 0.0).reshape(1, 1, -1), "GradWeight": np.append(wgr, 0.0)}
        ams = cbpdn.AddMaskSim(cbpdn.ConvBPDNGradReg, Di, imgwp, mskp, lmbda, mu, opt=cbpdn.ConvBPDNGradReg.Options(opt))
        return C.record(SCRIPT, quick, ours, C.sporco_solve(ams, img, lambda b: C.crop(b.reconstruct().squeeze())))
    return C.record(SCRIPT, quick, ours)


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT))

"""SPORCO's ``csc/implsden_grd_clr.py`` on csc: salt-and-pepper denoising with an ℓ1 data term.

The data of ``implsden_clr`` (colour monarch, 33% salt-and-pepper noise, padded by 8), coded by
``csc.ConvL1L1Grd``: ‖Σ d_m * x_m − s‖₁ + λ‖w ⊙ x‖₁ + (μ/2) Σ_m g_m ‖∇x_m‖² with three channel
impulses (ℓ1 weight 0, gradient weight 1: the lowpass part) before ``RGB:8x8x3x64`` (λ 3, μ 20,
ρ 40, 200 iterations, RelStopTol 5e-3). SPORCO's script runs on CuPy when it can; this port on
any torch device.

Expected against SPORCO (float64, the same iterates): codes 1e-10, objective 1e-12. The
reconstruction is SPORCO's, from x (``ConvL1L1Grd``'s ``result.reconstruct()``).
"""

import numpy as np

import csc
from examples.sporco import _common as C
from examples.sporco.gwnden_gry import pad
from examples.sporco.implsden_clr import noisy

SCRIPT = "implsden_grd_clr"
EXPECT = {"codes": 1e-10, "objective": 1e-12, "psnr": 1e-9}
NOTE = "ConvL1L1Grd, colour dictionary with impulses, per-kernel weights: the same iterates"


def run(quick=False, compare=False):
    img, imgn = noisy(quick)
    D0 = C.convdict("RGB:8x8x3x64")
    Di = np.zeros(D0.shape[0:2] + (3, 3))
    np.fill_diagonal(Di[0, 0], 1.0)
    D = np.concatenate((Di, D0), axis=3)
    w1, wg = np.ones(D.shape[-1]), np.zeros(D.shape[-1])
    w1[0:3], wg[0:3] = 0.0, 1.0
    opt = {"Verbose": False, "MaxMainIter": C.QUICK_ITERS if quick else 200, "RelStopTol": 5e-3, "AuxVarObj": False,
           "rho": 4e1, "RelaxParam": 1.8, "L1Weight": w1.reshape(1, 1, 1, 1, -1), "GradWeight": wg}
    solver = csc.ConvL1L1Grd(C.tensor(csc.from_sporco_layout(D, "dictionary")), 3e0, 2e1,
                             csc.L1L1GrdOptions.from_sporco(opt))
    with C.timed() as t:
        res = solver.solve(C.tensor(C.chw(pad(imgn))))
    imgd = C.crop(C.hwc(res.reconstruct()[0]))
    ours = C.outcome(res.codes, res.stats[0].objective[-1], C.psnr(img, imgd), t.elapsed, res.iterations[0],
                     noisy=imgn, denoised=imgd)
    print(f"Noisy image PSNR: {C.psnr(img, imgn):5.2f} dB")
    if compare:
        from sporco.admm import cbpdn

        b = cbpdn.ConvL1L1Grd(D, pad(imgn), 3e0, 2e1, opt=cbpdn.ConvL1L1Grd.Options(opt), dimK=0)
        return C.record(SCRIPT, quick, ours, C.sporco_solve(b, img, lambda b: C.crop(b.reconstruct().squeeze())))
    return C.record(SCRIPT, quick, ours)


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT))

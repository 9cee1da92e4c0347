"""SPORCO's ``csc/cbpdn_clr_cd.py`` on csc: a colour image with a colour dictionary.

argmin_x ½ Σ_c ‖Σ_m d_{c,m} * x_m − s_c‖² + λ Σ_m ‖x_m‖₁ (one map per kernel shared by the
channels) on the highpass part of a colour kodim23 crop, ``RGB:8x8x3x64``, λ 1e-1, 200
iterations, RelStopTol 5e-3.

Expected against SPORCO (float64, the same iterates): codes 1e-10, objective 1e-12.
"""

import numpy as np

import csc
from examples.sporco import _common as C

SCRIPT = "cbpdn_clr_cd"
EXPECT = {"codes": 1e-10, "objective": 1e-12, "psnr": 1e-9}
NOTE = "ConvBPDN, multi-channel dictionary (K, C, kh, kw): the same iterates"


def run(quick=False, compare=False):
    img = C.image("kodim23.png", scaled=True, idxexp=np.s_[160:416, 60:316])
    img = C.quick_crop(img) if quick else img
    sl, sh = C.tikhonov(img, 10, 16)
    D, lmbda = C.convdict("RGB:8x8x3x64"), 1e-1
    opt = {"Verbose": False, "MaxMainIter": C.QUICK_ITERS if quick else 200, "RelStopTol": 5e-3, "AuxVarObj": False}
    solver = csc.ConvBPDN(C.tensor(csc.from_sporco_layout(D, "dictionary")), lmbda, csc.CBPDNOptions.from_sporco(opt))
    with C.timed() as t:
        res = solver.solve(C.tensor(C.chw(sh)))  # (C, H, W) → codes (1, K, H, W)
    imgr = sl + C.hwc(res.reconstruct()[0])
    ours = C.outcome(res.codes, res.stats[0].objective[-1], C.psnr(img, imgr), t.elapsed, res.iterations[0],
                     original=img, reconstructed=imgr)
    if compare:
        from sporco.admm import cbpdn

        b = cbpdn.ConvBPDN(D, sh, lmbda, cbpdn.ConvBPDN.Options(opt))
        return C.record(SCRIPT, quick, ours, C.sporco_solve(b, img, lambda b: sl + b.reconstruct().squeeze()))
    return C.record(SCRIPT, quick, ours)


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT))

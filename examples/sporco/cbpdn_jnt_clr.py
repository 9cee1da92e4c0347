"""SPORCO's ``csc/cbpdn_jnt_clr.py`` on csc: joint sparsity over the colour channels.

argmin_x ½ Σ_c ‖Σ_m d_m * x_{c,m} − s_c‖² + λ Σ_c Σ_m ‖x_{c,m}‖₁ + μ ‖{x_{c,m}}‖_{2,1}
(``csc.ConvBPDNJoint``, μ 1e-2) on the highpass part of a colour kodim23 crop, ``G:8x8x64``, λ 1e-1, 200 iterations, RelStopTol
5e-3. SPORCO solves the three channels as one ADMM problem (one ρ, residuals summed, one
stopping test): ``coupling="sporco"`` gives its iterates (csc's default solves each channel
alone: the same minimiser, other iterates before convergence).

Expected against SPORCO (float64, the same iterates): codes 1e-10, objective 1e-12.
"""

import numpy as np

import csc
from examples.sporco import _common as C

SCRIPT = "cbpdn_jnt_clr"
EXPECT = {"codes": 1e-10, "objective": 1e-12, "psnr": 1e-9}
NOTE = "ConvBPDNJoint, coupling='sporco': the same iterates"


def run(quick=False, compare=False):
    img = C.image("kodim23.png", scaled=True, idxexp=np.s_[160:416, 60:316])
    img = C.quick_crop(img) if quick else img
    sl, sh = C.tikhonov(img, 10, 16)
    D, lmbda = C.convdict("G:8x8x64"), 1e-1
    opt = {"Verbose": False, "MaxMainIter": C.QUICK_ITERS if quick else 200, "RelStopTol": 5e-3, "AuxVarObj": False}
    mu, opts = 1e-2, csc.CBPDNJointOptions.from_sporco(opt, coupling="sporco")
    solver = csc.ConvBPDNJoint(C.tensor(csc.from_sporco_layout(D, "dictionary")), lmbda, mu, opts)
    with C.timed() as t:
        res = solver.solve(C.tensor(C.chw(sh))[None])  # (1, C, H, W) → codes (1, C, K, H, W)
    imgr = sl + C.hwc(res.reconstruct()[0])
    ours = C.outcome(res.codes, res.stats[0].objective[-1], C.psnr(img, imgr), t.elapsed, res.iterations.max(),
                     original=img, reconstructed=imgr)
    if compare:
        from sporco.admm import cbpdn

        b = cbpdn.ConvBPDNJoint(D, sh, lmbda, mu, cbpdn.ConvBPDNJoint.Options(opt), dimK=0)
        return C.record(SCRIPT, quick, ours, C.sporco_solve(b, img, lambda b: sl + b.reconstruct().squeeze()))
    return C.record(SCRIPT, quick, ours)


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT))

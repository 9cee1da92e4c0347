"""SPORCO's ``csc/cprjl1_gry.py`` on csc: CBPDN with an ℓ1-ball constraint.

argmin_x ½‖Σ_m d_m * x_m − s‖² such that Σ_m ‖x_m‖₁ ≤ γ (``csc.ConvBPDNProjL1``, γ 405) on the
highpass part of the kodim23 crop, ``G:12x12x36``, ρ₀ 3 with adaptive ρ, the objective on y,
250 iterations, RelStopTol 5e-3. SPORCO's ``LinSolveCheck`` (a diagnostic) is left out.

Expected against SPORCO (float64, the same iterates): codes 1e-10, objective 1e-12.
"""

import numpy as np

import csc
from examples.sporco import _common as C

SCRIPT = "cprjl1_gry"
EXPECT = {"codes": 1e-10, "objective": 1e-12, "psnr": 1e-9}
NOTE = "ConvBPDNProjL1: the same iterates"


def run(quick=False, compare=False):
    img = C.image("kodim23.png", scaled=True, gray=True, idxexp=np.s_[160:416, 60:316])
    img = C.quick_crop(img) if quick else img
    sl, sh = C.tikhonov(img, 10, 16)
    # quick: γ 3, inside the regime of the full size (at γ = 405 scaled by the area, 14.2, the
    # constraint turns inactive, ‖u‖ → 0 and SPORCO's normalised dual residual, 3e15 against
    # csc's 3e-8, sends ρ the other way after 12 iterations: a difference of the 0/0 limit)
    D, gamma = C.convdict("G:12x12x36"), 3.0 if quick else 4.05e2
    opt = {"Verbose": False, "MaxMainIter": C.QUICK_ITERS if quick else 250, "HighMemSolve": True, "RelStopTol": 5e-3,
           "AuxVarObj": True, "rho": 3e0, "AutoRho": {"Enabled": True}}
    solver = csc.ConvBPDNProjL1(C.tensor(csc.from_sporco_layout(D, "dictionary")), gamma,
                                csc.ProjL1Options.from_sporco(opt))
    with C.timed() as t:
        res = solver.solve(C.tensor(sh))
    imgr = sl + res.reconstruct()[0].numpy()
    ours = C.outcome(res.codes, res.stats[0].objective[-1], C.psnr(img, imgr), t.elapsed, res.iterations[0],
                     original=img, reconstructed=imgr)
    if compare:
        from sporco.admm import cbpdn

        b = cbpdn.ConvBPDNProjL1(D, sh, gamma, cbpdn.ConvBPDNProjL1.Options({**opt, "LinSolveCheck": False}))
        return C.record(SCRIPT, quick, ours, C.sporco_solve(b, img, lambda b: sl + b.reconstruct().squeeze()))
    return C.record(SCRIPT, quick, ours)


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT))

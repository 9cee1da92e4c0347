"""SPORCO's ``csc/cminl1_gry.py`` on csc: ℓ1 minimisation in an ℓ2 ball.

argmin_x Σ_m ‖x_m‖₁ such that ‖Σ_m d_m * x_m − s‖₂ ≤ ε (``csc.ConvMinL1InL2Ball``, ε 3.4) on the
highpass part of the kodim23 crop, ``G:12x12x36``, ρ 50 fixed, 200 iterations, RelStopTol 5e-3.
SPORCO's ``LinSolveCheck`` (a diagnostic) has no csc option and is left out.

Expected against SPORCO (float64, the same iterates): codes 1e-10, objective 1e-12.
"""

import numpy as np

import csc
from examples.sporco import _common as C

SCRIPT = "cminl1_gry"
EXPECT = {"codes": 1e-10, "objective": 1e-12, "psnr": 1e-9}
NOTE = "ConvMinL1InL2Ball: the same iterates"


def run(quick=False, compare=False):
    img = C.image("kodim23.png", scaled=True, gray=True, idxexp=np.s_[160:416, 60:316])
    img = C.quick_crop(img) if quick else img
    sl, sh = C.tikhonov(img, 10, 16)
    # quick: ε/‖s‖ as at full size (3.4/18.0): a smaller ε would leave x = 0 feasible
    D, epsilon = C.convdict("G:12x12x36"), 0.19 * np.linalg.norm(sh) if quick else 3.4e0
    opt = {"Verbose": False, "MaxMainIter": C.QUICK_ITERS if quick else 200, "HighMemSolve": True, "RelStopTol": 5e-3,
           "AuxVarObj": False, "rho": 50.0, "AutoRho": {"Enabled": False}}
    solver = csc.ConvMinL1InL2Ball(C.tensor(csc.from_sporco_layout(D, "dictionary")), epsilon,
                                   csc.MinL1InL2BallOptions.from_sporco(opt))
    with C.timed() as t:
        res = solver.solve(C.tensor(sh))
    imgr = sl + res.reconstruct()[0].numpy()  # from x, as SPORCO's
    ours = C.outcome(res.codes, res.stats[0].objective[-1], C.psnr(img, imgr), t.elapsed, res.iterations[0],
                     original=img, reconstructed=imgr)
    if compare:
        from sporco.admm import cbpdn

        b = cbpdn.ConvMinL1InL2Ball(D, sh, epsilon, cbpdn.ConvMinL1InL2Ball.Options({**opt, "LinSolveCheck": True}))
        return C.record(SCRIPT, quick, ours, C.sporco_solve(b, img, lambda b: sl + b.reconstruct().squeeze()))
    return C.record(SCRIPT, quick, ours)


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT))

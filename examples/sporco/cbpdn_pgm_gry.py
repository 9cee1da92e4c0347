"""SPORCO's ``csc/cbpdn_pgm_gry.py`` on csc: CBPDN by FISTA (SPORCO's ``pgm.cbpdn.ConvBPDN``).

The problem of ``cbpdn_gry`` (kodim23 crop, ``G:12x12x36``, λ 5e-2) by ``csc.ConvBPDNFISTA``:
L₀ = 1, standard backtracking (at most 15 steps), 250 iterations, RelStopTol 1e-4.

Expected against SPORCO (float64, the same iterates): codes 1e-10, objective 1e-12.
"""

import numpy as np

import csc
from examples.sporco import _common as C

SCRIPT = "cbpdn_pgm_gry"
EXPECT = {"codes": 1e-10, "objective": 1e-12, "psnr": 1e-9}
NOTE = "ConvBPDNFISTA, standard backtracking: the same iterates"


def options(quick):
    from sporco.pgm.backtrack import BacktrackStandard

    return {"Verbose": False, "MaxMainIter": C.QUICK_ITERS if quick else 250, "RelStopTol": 1e-4, "L": 1.0,
            "Backtrack": BacktrackStandard(maxiter=15)}


def run(quick=False, compare=False):
    img = C.image("kodim23.png", scaled=True, gray=True, idxexp=np.s_[160:416, 60:316])
    img = C.quick_crop(img) if quick else img
    sl, sh = C.tikhonov(img, 10, 16)
    D, lmbda = C.convdict("G:12x12x36"), 5e-2
    opts = csc.FISTAOptions.from_sporco(options(quick))  # L=1, backtrack="standard", backtrack_max_iter=15
    solver = csc.ConvBPDNFISTA(C.tensor(csc.from_sporco_layout(D, "dictionary")), lmbda, opts)
    with C.timed() as t:
        res = solver.solve(C.tensor(sh))
    imgr = sl + res.reconstruct()[0].numpy()
    ours = C.outcome(res.codes, res.stats[0].objective[-1], C.psnr(img, imgr), t.elapsed, res.iterations[0],
                     original=img, reconstructed=imgr)
    if compare:
        from sporco.pgm import cbpdn

        b = cbpdn.ConvBPDN(D, sh, lmbda, cbpdn.ConvBPDN.Options(options(quick)), dimK=0)  # its own Backtrack object
        return C.record(SCRIPT, quick, ours, C.sporco_solve(b, img, lambda b: sl + b.reconstruct().squeeze()))
    return C.record(SCRIPT, quick, ours)


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT))

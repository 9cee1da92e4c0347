"""SPORCO's ``csc/parcbpdn_gry.py`` on csc: CBPDN, the problem SPORCO's ``ParConvBPDN`` solves.

SPORCO's script solves CBPDN twice on the kodim23 crop (``G:12x12x216``, λ 5e-2, ρ fixed):
``admm.cbpdn.ConvBPDN`` (RelStopTol 5e-3) and ``admm.parcbpdn.ParConvBPDN`` (RelStopTol 1e-2,
α 2.5), its parallel ADMM over groups of kernels, whose iterates differ by design (another
splitting) while the minimiser is the same. csc's ``csc.ConvBPDN`` gives ``ConvBPDN``'s
iterates, so ParConvBPDN's solution on csc is ``csc.ConvBPDN``'s (run it to a tighter
``rel_stop_tol`` for a closer approach to the common minimiser); csc's batch and device
parallelism replace ParConvBPDN's processes.

Expected (float64): codes 1e-10 and objective 1e-12 against SPORCO's ``ConvBPDN`` (the same
iterates); against ``ParConvBPDN`` the objectives agree to its stopping tolerance (``par``).
"""

import numpy as np

import csc
from examples.sporco import _common as C

SCRIPT = "parcbpdn_gry"
EXPECT = {"codes": 1e-10, "objective": 1e-12, "psnr": 1e-9}
SAME_MINIMISER = True
NOTE = "csc.ConvBPDN is SPORCO's ConvBPDN to 1e-10; ParConvBPDN reaches the same minimiser by other iterates"


def run(quick=False, compare=False):
    img = C.image("kodim23.png", zoom=1.0, scaled=True, gray=True, idxexp=np.s_[160:416, 60:316])
    img = C.quick_crop(img) if quick else img
    sl, sh = C.tikhonov(img, 10, 16)
    D, lmbda, iters = C.convdict("G:12x12x216"), 5e-2, C.QUICK_ITERS if quick else 200
    opt = {"Verbose": False, "MaxMainIter": iters, "RelStopTol": 5e-3, "AuxVarObj": False, "AutoRho": {"Enabled": False}}
    solver = csc.ConvBPDN(C.tensor(csc.from_sporco_layout(D, "dictionary")), lmbda, csc.CBPDNOptions.from_sporco(opt))
    with C.timed() as t:
        res = solver.solve(C.tensor(sh))
    imgr = sl + res.reconstruct()[0].numpy()
    ours = C.outcome(res.codes, res.stats[0].objective[-1], C.psnr(img, imgr), t.elapsed, res.iterations[0],
                     original=img, reconstructed=imgr)
    if not compare:
        return C.record(SCRIPT, quick, ours)
    from sporco.admm import cbpdn, parcbpdn

    recon = lambda b: sl + b.reconstruct().squeeze()  # noqa: E731
    out = C.record(SCRIPT, quick, ours, C.sporco_solve(cbpdn.ConvBPDN(D, sh, lmbda, cbpdn.ConvBPDN.Options(opt), dimK=0),
                                                       img, recon))
    opt_par = {"Verbose": False, "MaxMainIter": iters, "RelStopTol": 1e-2, "AuxVarObj": False,
               "AutoRho": {"Enabled": False}, "alpha": 2.5}
    b_par = parcbpdn.ParConvBPDN(D, sh, lmbda, opt=parcbpdn.ParConvBPDN.Options(opt_par), dimK=0, nproc=1)
    return C.add_par(out, C.sporco_solve(b_par, img, recon))


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT))

"""SPORCO's ``csc/cbpdn_clr_pd.py`` on csc: colour CSC with a product dictionary.

The highpass part (Tikhonov λ 10) of a colour kodim23 crop coded by ``csc.ConvProdDictBPDN``
(SPORCO's ``admm.pdcsc.ConvProdDictBPDN``): the grey ``G:8x8x64`` kernels times a standard 3 × 6
colour dictionary B, λ 1e-1, 100 iterations, RelStopTol 5e-3. SPORCO's script runs on CuPy when it
can; this port on any torch device.

B: the script learns it with SPORCO's non-convolutional ``dictlrn.bpdndl.BPDNDictLearn`` (the
pixels' colours, B0 random with seed 12345, λ 1e-2, 100 iterations, fixed ρ), which csc does not
have: the port computes B exactly as the script does, with SPORCO, and gives the same B to csc
and to SPORCO's ``ConvProdDictBPDN`` (its time is in neither solve's). Only the convolutional
step is csc's.

Expected against SPORCO (float64, the same iterates): codes 1e-10, objective 1e-12.
"""

import numpy as np

import csc
from examples.sporco import _common as C

SCRIPT = "cbpdn_clr_pd"
EXPECT = {"codes": 1e-10, "objective": 1e-12, "psnr": 1e-9}
NOTE = "ConvProdDictBPDN with B from SPORCO's BPDNDictLearn (as the script): the same iterates"


def standard_dictionary(shc, J=6, lmbda=1e-2):
    """The script's B: SPORCO's ``BPDNDictLearn`` on the highpass pixels' colours (3 × J)."""
    from sporco.dictlrn import bpdndl

    S = shc.reshape((-1, shc.shape[-1])).T
    np.random.seed(12345)
    B0 = np.random.randn(S.shape[0], J)
    opt = bpdndl.BPDNDictLearn.Options({"Verbose": False, "MaxMainIter": 100,
                                        "BPDN": {"rho": 10.0 * lmbda, "AutoRho": {"Enabled": False}},
                                        "CMOD": {"rho": S.shape[1] / 3e2, "AutoRho": {"Enabled": False}}})
    return np.asarray(bpdndl.BPDNDictLearn(B0, S, lmbda, opt).solve())


def run(quick=False, compare=False):
    img = C.image("kodim23.png", scaled=True, idxexp=np.s_[160:416, 60:316])
    if quick:
        img = C.quick_crop(img)
    slc, shc = C.tikhonov(img, 10, 16)
    D, B = C.convdict("G:8x8x64"), standard_dictionary(shc)
    lmbda, iters = 1e-1, C.QUICK_ITERS if quick else 100
    opt = {"Verbose": False, "MaxMainIter": iters, "RelStopTol": 5e-3, "AuxVarObj": False}
    solver = csc.ConvProdDictBPDN(C.tensor(csc.from_sporco_layout(D, "dictionary")), C.tensor(B), lmbda,
                                  csc.CBPDNOptions.from_sporco(opt))
    with C.timed() as t:
        res = solver.solve(C.tensor(C.chw(shc)))
    imgr = slc + C.hwc(res.reconstruct()[0])
    ours = C.outcome(res.codes, res.stats[0].objective[-1], C.psnr(img, imgr), t.elapsed, res.iterations.max(),
                     original=img, reconstructed=imgr)
    if compare:
        from sporco.admm import pdcsc

        b = pdcsc.ConvProdDictBPDN(D, B, shc, lmbda, pdcsc.ConvProdDictBPDN.Options(opt), dimK=0)
        theirs = C.sporco_solve(b, img, lambda b: slc + b.reconstruct().squeeze())
        theirs["codes"] = np.transpose(b.Y, (3, 2, 4, 0, 1))  # (H, W, J, B, K) → (B, J, K, H, W)
        return C.record(SCRIPT, quick, ours, theirs)
    return C.record(SCRIPT, quick, ours)


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT))

"""SPORCO's ``csc/cbpdnin_gry.py`` on csc: single-channel CSC with lateral inhibition, no self inhibition.

The highpass part (Tikhonov λ 10) of a kodim23 crop coded by ``csc.ConvBPDNInhib`` with two noisy
copies of ``G:12x12x36`` (72 kernels; kernel m and m + 36 in group m: W_g = [I I]), a 12-sample
boxcar window, λ 5e-2, μ 5e-2, γ 0 (SPORCO's ``gamma=None``), 200 iterations, RelStopTol 5e-3.
SPORCO's script draws the copies' noise unseeded; the port seeds numpy with 12345 first.

Expected against SPORCO (float64, the same iterates): codes 1e-10, objective 1e-12.
"""

import numpy as np

import csc
from examples.sporco import _common as C
from examples.sporco.cbpdn_gry import data

SCRIPT = "cbpdnin_gry"
EXPECT = {"codes": 1e-10, "objective": 1e-12, "psnr": 1e-9}
NOTE = "ConvBPDNInhib: the same iterates"
#: the dictionary copies (the script appends noisy copies of G:12x12x36) and its options
COPIES, MU = 2, 5e-2


def dictionary(D, copies):
    """``copies`` copies of D, each plus 0.01 N(0, 1) noise (numpy seeded with 12345 first)."""
    np.random.seed(12345)
    return np.concatenate([D + 0.01 * np.random.randn(*D.shape) for _ in range(copies)], axis=-1)


def groups():
    """The script's W_g: kernel m with its copy m + 36."""
    return np.append(np.eye(36), np.eye(36), axis=-1)


def solve(script, Wg, copies, mu, quick, compare):
    img, sl, sh, D = data(quick)
    D = dictionary(D, copies)
    lmbda, iters = 5e-2, C.QUICK_ITERS if quick else 200
    opt = {"Verbose": False, "MaxMainIter": iters, "RelStopTol": 5e-3, "AuxVarObj": False}
    solver = csc.ConvBPDNInhib(C.tensor(csc.from_sporco_layout(D, "dictionary")), lmbda, mu, 0.0, Wg, 12, "boxcar",
                               csc.InhibOptions.from_sporco(opt))
    with C.timed() as t:
        res = solver.solve(C.tensor(sh))
    imgr = sl + res.reconstruct()[0].numpy()
    ours = C.outcome(res.codes, res.stats[0].objective[-1], C.psnr(img, imgr), t.elapsed, res.iterations.max(),
                     original=img, reconstructed=imgr)
    if compare:
        from sporco.admm import cbpdnin

        b = cbpdnin.ConvBPDNInhib(D, sh, Wg, 12, ("boxcar"), lmbda, mu, None, cbpdnin.ConvBPDNInhib.Options(opt),
                                  dimK=0)
        return C.record(script, quick, ours, C.sporco_solve(b, img, lambda b: sl + b.reconstruct().squeeze()))
    return C.record(script, quick, ours)


def run(quick=False, compare=False):
    return solve(SCRIPT, groups(), COPIES, MU, quick, compare)


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT))

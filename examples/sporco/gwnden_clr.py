"""SPORCO's ``csc/gwnden_clr.py`` on csc: removing Gaussian white noise from a colour image.

Colour monarch (half size) with noise σ 0.1; Tikhonov lowpass (λ 5); the padded highpass part
coded by ``csc.ConvBPDNJoint`` (grey ``G:8x8x128`` on the three channels, λ 1.5e-2, μ 2.7e-1,
ρ = 1000λ fixed, 250 iterations, RelStopTol 3e-3) with SPORCO's channel-dependent spatial ℓ1
weights (H, W, C, K) → ``l1_weight`` (1, C, K, H, W). SPORCO solves the channels as one problem:
``coupling="sporco"``. SPORCO's script runs on CuPy when it can; this port on any torch device.

Expected against SPORCO (float64, the same iterates): codes 1e-10, objective 1e-12.
"""

import numpy as np

import csc
from examples.sporco import _common as C
from examples.sporco.gwnden_gry import l1_weights, noisy_data, pad

SCRIPT = "gwnden_clr"
EXPECT = {"codes": 1e-10, "objective": 1e-12, "psnr": 1e-9}
NOTE = "ConvBPDNJoint, channel-dependent spatial l1 weights, coupling='sporco': the same iterates"


def run(quick=False, compare=False):
    img, imgn, imgnl, imgnh, imgnph = noisy_data(False, quick)
    D, lmbda, mu = C.convdict("G:8x8x128"), 1.5e-2, 2.7e-1
    W = l1_weights(D, imgnph)
    opt = {"Verbose": False, "MaxMainIter": C.QUICK_ITERS if quick else 250, "HighMemSolve": True, "RelStopTol": 3e-3,
           "AuxVarObj": False, "AutoRho": {"Enabled": False}, "rho": 1e3 * lmbda}
    opts = csc.CBPDNJointOptions.from_sporco({**opt, "L1Weight": W}, coupling="sporco")
    solver = csc.ConvBPDNJoint(C.tensor(csc.from_sporco_layout(D, "dictionary")), lmbda, mu, opts)
    with C.timed() as t:
        res = solver.solve(C.tensor(C.chw(pad(imgnh)))[None])
    imgd = np.clip(C.crop(C.hwc(res.reconstruct()[0])) + imgnl, 0, 1)
    ours = C.outcome(res.codes, res.stats[0].objective[-1], C.psnr(img, imgd), t.elapsed, res.iterations.max(),
                     noisy=imgn, denoised=imgd)
    print(f"Noisy image PSNR: {C.psnr(img, imgn):5.2f} dB")
    if compare:
        from sporco.admm import cbpdn

        b = cbpdn.ConvBPDNJoint(D, pad(imgnh), lmbda, mu, cbpdn.ConvBPDNJoint.Options({**opt, "L1Weight": W}), dimK=0)
        recon = lambda b: np.clip(C.crop(b.reconstruct().squeeze()) + imgnl, 0, 1)  # noqa: E731
        return C.record(SCRIPT, quick, ours, C.sporco_solve(b, img, recon))
    return C.record(SCRIPT, quick, ours)


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT))

"""SPORCO's ``csc/gwnden_gry.py`` on csc: removing Gaussian white noise from a greyscale image.

Monarch (half size) with noise σ 0.1; Tikhonov lowpass (λ 5); the padded highpass part coded by
``csc.ConvBPDN`` (``G:8x8x128``, λ 4.8e-2, ρ = 400λ fixed, 250 iterations, RelStopTol 3e-3)
with SPORCO's spatial ℓ1 weights: 1/max(|Σ d_m ⋆ s|², 1e-8), one map per kernel (K, H, W).

Expected against SPORCO (float64, the same iterates): codes 1e-10, objective 1e-12.
"""

import numpy as np

import csc
from examples.sporco import _common as C

SCRIPT = "gwnden_gry"
EXPECT = {"codes": 1e-10, "objective": 1e-12, "psnr": 1e-9}
NOTE = "ConvBPDN with spatial l1 weights (K, H, W): the same iterates"


def pad(x, n=8):
    return np.pad(x, ((n, n), (n, n)) + ((0, 0),) * (x.ndim - 2), mode="symmetric")


def noisy_data(gray, quick):
    """(img, imgn, lowpass, highpass of the padded noisy image) as the script makes them."""
    img = C.image("monarch.png", zoom=0.5, scaled=True, gray=gray, idxexp=np.s_[:, 160:672])
    img = C.quick_crop(img, 16) if quick else img
    np.random.seed(12345)
    imgn = img + np.random.normal(0.0, 0.1, img.shape)
    imgnl, imgnh = C.tikhonov(imgn, 5.0, 16)
    return img, imgn, imgnl, imgnh, C.tikhonov(pad(imgn), 5.0, 16)[1]


def l1_weights(D, imgnph):
    """SPORCO's weights: W = 1/max(|corr(d_m, s)|², 1e-8), (H, W[, C], K)."""
    from sporco import fft

    Dx = D if imgnph.ndim == 2 else D[..., np.newaxis, :]
    W = fft.irfftn(np.conj(fft.rfftn(Dx, imgnph.shape[0:2], (0, 1))) * fft.rfftn(imgnph[..., np.newaxis], None, (0, 1)),
                   imgnph.shape[0:2], (0, 1))
    return 1.0 / np.maximum(np.abs(W ** 2), 1e-8)


def run(quick=False, compare=False):
    img, imgn, imgnl, imgnh, imgnph = noisy_data(True, quick)
    D, lmbda = C.convdict("G:8x8x128"), 4.8e-2
    W = l1_weights(D, imgnph)
    opt = {"Verbose": False, "MaxMainIter": C.QUICK_ITERS if quick else 250, "HighMemSolve": True, "RelStopTol": 3e-3,
           "AuxVarObj": False, "AutoRho": {"Enabled": False}, "rho": 4e2 * lmbda}
    opts = csc.CBPDNOptions.from_sporco({**opt, "L1Weight": W})  # W (H, W, K) → l1_weight (K, H, W)
    solver = csc.ConvBPDN(C.tensor(csc.from_sporco_layout(D, "dictionary")), lmbda, opts)
    with C.timed() as t:
        res = solver.solve(C.tensor(pad(imgnh)))
    imgd = np.clip(C.crop(res.reconstruct()[0].numpy()) + imgnl, 0, 1)
    ours = C.outcome(res.codes, res.stats[0].objective[-1], C.psnr(img, imgd), t.elapsed, res.iterations[0],
                     noisy=imgn, denoised=imgd)
    print(f"Noisy image PSNR: {C.psnr(img, imgn):5.2f} dB")
    if compare:
        from sporco.admm import cbpdn

        b = cbpdn.ConvBPDN(D, pad(imgnh), lmbda, cbpdn.ConvBPDN.Options({**opt, "L1Weight": W}), dimK=0)
        recon = lambda b: np.clip(C.crop(b.reconstruct().squeeze()) + imgnl, 0, 1)  # noqa: E731
        return C.record(SCRIPT, quick, ours, C.sporco_solve(b, img, recon))
    return C.record(SCRIPT, quick, ours)


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT))

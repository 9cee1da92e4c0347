"""SPORCO's ``csc/implsden_clr.py`` on csc: removing salt-and-pepper noise from a colour image.

Colour monarch (half size), 33% of its pixels salt-and-pepper noise (``signal.spnoise``),
padded by 8. Step 1: ``csc.ConvBPDNGradReg`` with a colour dictionary of three channel impulses
(ℓ1 weight 0.33: the noise), three more impulses (ℓ1 weight 0, gradient weight 1: the lowpass
part) and ``RGB:8x8x3x64`` (λ 2.8e-2, μ 3e-1, 100 iterations, RelStopTol 5e-3). Step 2: the
ℓ1–ℓ1 problem ‖Σ d_m * x_m − (s − lowpass)‖₁ + λ‖x‖₁ (λ 3, ρ 10, 200 iterations) that SPORCO's
script writes as a ``ConvBPDNMaskDcpl`` subclass (``ConvRepL1L1``): ``csc.ConvL1L1Grd`` with
μ = 0 and SPORCO's ``ConvBPDNMaskDcpl`` options (its dual residual convention is csc's
``ConvBPDNMaskDcpl``'s: ``dual="plain"``).

Expected against SPORCO (float64, the same iterates): codes 1e-10, objective 1e-12 (both steps;
the record is step 2's).
"""

import numpy as np

import csc
from examples.sporco import _common as C
from examples.sporco.gwnden_gry import pad

SCRIPT = "implsden_clr"
EXPECT = {"codes": 1e-10, "objective": 1e-12, "psnr": 1e-9}
NOTE = "ConvBPDNGradReg (colour dictionary, per-kernel weights), then an l1-l1 ConvL1L1Grd (mu=0): the same iterates"


def noisy(quick):
    from sporco import signal

    img = C.image("monarch.png", zoom=0.5, scaled=True, idxexp=np.s_[:, 160:672])
    img = C.quick_crop(img, 16) if quick else img
    np.random.seed(12345)
    return img, signal.spnoise(img, 0.33)


def step1_problem():
    D0 = C.convdict("RGB:8x8x3x64")
    Di = np.zeros(D0.shape[0:2] + (3, 3))
    np.fill_diagonal(Di[0, 0], 1.0)
    D = np.concatenate((Di, Di, D0), axis=3)
    w1, wg = np.ones(D.shape[-1]), np.zeros(D.shape[-1])
    w1[0:3], w1[3:6], wg[3:6] = 0.33, 0.0, 1.0
    return D0, D, w1, wg


class L1L1Plain(csc.ConvL1L1Grd):
    """ConvL1L1Grd with ``ConvBPDNMaskDcpl``'s dual residual (SPORCO's script's ``ConvRepL1L1``)."""

    _dual = "plain"


def run(quick=False, compare=False):
    img, imgn = noisy(quick)
    D0, D, w1, wg = step1_problem()
    it1, it2 = (C.QUICK_ITERS, C.QUICK_ITERS) if quick else (100, 200)
    opt1 = {"Verbose": False, "MaxMainIter": it1, "RelStopTol": 5e-3, "AuxVarObj": False}
    opt2 = {"Verbose": False, "MaxMainIter": it2, "RelStopTol": 5e-3, "AuxVarObj": False, "rho": 1e1, "RelaxParam": 1.8}
    with C.timed() as t:
        opts1 = csc.GradRegOptions.from_sporco({**opt1, "L1Weight": w1.reshape(1, 1, 1, 1, -1), "GradWeight": wg})
        r1 = csc.ConvBPDNGradReg(C.tensor(csc.from_sporco_layout(D, "dictionary")), 2.8e-2, 3e-1, opts1).solve(
            C.tensor(C.chw(pad(imgn))))
        imglp = C.hwc(r1.codes[0, 3:6])  # the lowpass impulses' maps, one per channel
        opts2 = csc.L1L1GrdOptions.from_sporco(opt2)  # ConvBPDNMaskDcpl's defaults are ConvL1L1Grd's here
        res = L1L1Plain(C.tensor(csc.from_sporco_layout(D0, "dictionary")), 3.0, 0.0, opts2).solve(
            C.tensor(C.chw(pad(imgn) - imglp)))
    imgd = C.crop(C.hwc(res.reconstruct()[0]) + imglp)
    ours = C.outcome(res.codes, res.stats[0].objective[-1], C.psnr(img, imgd), t.elapsed, res.iterations[0],
                     noisy=imgn, denoised=imgd)
    print(f"Noisy image PSNR: {C.psnr(img, imgn):5.2f} dB")
    return C.record(SCRIPT, quick, ours, sporco(imgn, img, D0, D, w1, wg, opt1, opt2) if compare else None)


def sporco(imgn, img, D0, D, w1, wg, opt1, opt2):
    from sporco import prox as sp
    from sporco.admm import cbpdn

    class ConvRepL1L1(cbpdn.ConvBPDNMaskDcpl):  # SPORCO's script's class, as written there
        def ystep(self):
            AXU = self.AX + self.U
            Y0 = sp.prox_l1(self.block_sep0(AXU) - self.S, (1.0 / self.rho) * self.W)
            Y1 = sp.prox_l1(self.block_sep1(AXU), (self.lmbda / self.rho) * self.wl1)
            self.Y = self.block_cat(Y0, Y1)
            super(cbpdn.ConvBPDNMaskDcpl, self).ystep()

        def obfn_g0(self, Y0):
            return np.sum(np.abs(self.W * self.obfn_g0var()))

    with C.timed() as t:
        b1 = cbpdn.ConvBPDNGradReg(D, pad(imgn), 2.8e-2, 3e-1, cbpdn.ConvBPDNGradReg.Options(
            {**opt1, "L1Weight": w1.reshape(1, 1, 1, 1, -1), "GradWeight": wg}), dimK=0)
        X = b1.solve()
        imglp = X[..., 0, 3:6].squeeze()
        b = ConvRepL1L1(D0, pad(imgn) - imglp, 3.0, opt=ConvRepL1L1.Options(opt2), dimK=0)
    return C.sporco_solve(b, img, lambda b: C.crop(b.reconstruct().squeeze() + imglp), prep=t.elapsed)


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT))

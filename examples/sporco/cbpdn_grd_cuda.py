"""SPORCO's ``csc/cbpdn_grd_cuda.py`` on csc: CBPDN with gradient regularisation on a GPU.

The 512² barbara crop, not filtered: an impulse kernel before ``G:12x12x36``, its map free of
the ℓ1 term (``l1_weight`` 0) and smoothed (``grad_weight`` 1, 0 for the others), by
``csc.ConvBPDNGradReg`` (λ 1e-2, μ 0.5, ρ 0.5 fixed, 250 iterations, RelStopTol 5e-3). SPORCO's
script uses its CUDA extension when it finds a GPU; this port csc's device path
(``device="cuda"`` when torch sees a GPU, the CPU otherwise); ``compare=True`` runs SPORCO's
numpy ``ConvBPDNGradReg``.

Expected against SPORCO (float64, the same iterates): codes 1e-10, objective 1e-12.
"""

import numpy as np
import torch

import csc
from examples.sporco import _common as C

SCRIPT = "cbpdn_grd_cuda"
EXPECT = {"codes": 1e-10, "objective": 1e-12, "psnr": 1e-9}
NOTE = "ConvBPDNGradReg with an impulse kernel, csc's device path (CUDA when there is one): the same iterates"
DEVICE = "cuda" if torch.cuda.is_available() else None


def run(quick=False, compare=False):
    img = C.image("barbara.png", scaled=True, gray=True, idxexp=np.s_[10:522, 100:612])
    img = C.quick_crop(img) if quick else img
    Db = C.convdict("G:12x12x36")
    di = np.zeros(Db.shape[0:2] + (1,))
    di[0, 0] = 1
    D = np.concatenate((di, Db), axis=2)
    wl1, wgr = np.ones(D.shape[2]), np.zeros(D.shape[2])
    wl1[0], wgr[0] = 0.0, 1.0
    lmbda, mu = 1e-2, 5e-1
    opt = {"Verbose": False, "MaxMainIter": C.QUICK_ITERS if quick else 250, "HighMemSolve": True,
           "RelStopTol": 5e-3, "AuxVarObj": False, "AutoRho": {"Enabled": False}, "rho": 0.5,
           "L1Weight": wl1.reshape(1, 1, -1), "GradWeight": wgr}
    opts = csc.GradRegOptions.from_sporco(opt, device=DEVICE)
    solver = csc.ConvBPDNGradReg(C.tensor(csc.from_sporco_layout(D, "dictionary")), lmbda, mu, opts)
    with C.timed() as t:
        res = solver.solve(C.tensor(img))
        codes = res.codes.cpu()
    print(f"csc back end: {res.backend} on {res.codes.device}")
    imgr = res.reconstruct()[0].cpu().numpy()
    ours = C.outcome(codes, res.stats[0].objective[-1], C.psnr(img, imgr), t.elapsed, res.iterations[0],
                     original=img, reconstructed=imgr)
    if compare:
        from sporco.admm import cbpdn

        b = cbpdn.ConvBPDNGradReg(D, img, lmbda, mu, cbpdn.ConvBPDNGradReg.Options(opt))
        return C.record(SCRIPT, quick, ours, C.sporco_solve(b, img, lambda b: b.reconstruct().squeeze()))
    return C.record(SCRIPT, quick, ours)


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT))

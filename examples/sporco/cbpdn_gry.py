"""SPORCO's ``csc/cbpdn_gry.py`` on csc: single-channel CSC of a greyscale image.

argmin_x ½‖Σ_m d_m * x_m − s‖² + λ Σ_m ‖x_m‖₁ on the highpass part of a kodim23 crop
(Tikhonov filter λ 10), dictionary ``G:12x12x36``, λ 5e-2, 200 iterations, RelStopTol 5e-3.

Expected against SPORCO (float64, the same iterates): codes 1e-10, objective 1e-12.
"""

import numpy as np

import csc
from examples.sporco import _common as C

SCRIPT = "cbpdn_gry"
EXPECT = {"codes": 1e-10, "objective": 1e-12, "psnr": 1e-9}
NOTE = "ConvBPDN: the same iterates"


def data(quick):
    img = C.image("kodim23.png", scaled=True, gray=True, idxexp=np.s_[160:416, 60:316])
    if quick:
        img = C.quick_crop(img)
    sl, sh = C.tikhonov(img, 10, 16)
    return img, sl, sh, C.convdict("G:12x12x36")


def run(quick=False, compare=False):
    img, sl, sh, D = data(quick)
    lmbda, iters = 5e-2, C.QUICK_ITERS if quick else 200
    opts = csc.CBPDNOptions(max_iter=iters, rel_stop_tol=5e-3, objective_on_y=False)
    solver = csc.ConvBPDN(C.tensor(csc.from_sporco_layout(D, "dictionary")), lmbda, opts)
    with C.timed() as t:
        res = solver.solve(C.tensor(sh))
    imgr = sl + res.reconstruct()[0].numpy()
    ours = dict(codes=res.codes.numpy(), objective=float(res.stats[0].objective[-1]), psnr=C.psnr(img, imgr),
                time=t.elapsed, iterations=int(res.iterations[0]), images={"original": img, "reconstructed": imgr})
    theirs = sporco(D, sh, sl, img, lmbda, iters) if compare else None
    return C.record(SCRIPT, quick, ours, theirs)


def sporco(D, sh, sl, img, lmbda, iters):
    from sporco.admm import cbpdn

    opt = cbpdn.ConvBPDN.Options({"Verbose": False, "MaxMainIter": iters, "RelStopTol": 5e-3, "AuxVarObj": False})
    b = cbpdn.ConvBPDN(D, sh, lmbda, opt, dimK=0)
    with C.timed() as t:
        b.solve()
    return dict(codes=csc.from_sporco_layout(b.Y, "codes"), objective=float(b.getitstat().ObjFun[-1]),
                psnr=C.psnr(img, sl + b.reconstruct().squeeze()), time=t.elapsed, iterations=b.k)


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT))

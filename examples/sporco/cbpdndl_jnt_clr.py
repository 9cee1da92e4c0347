"""SPORCO's ``cdl/cbpdndl_jnt_clr.py`` on csc: colour dictionary learning with joint sparsity.

Three colour images (half size), Tikhonov highpass (λ 5); 64 random 8×8 kernels (seed 12345),
a grey dictionary shared by the channels. SPORCO's script assembles ``dictlrn.DictLearn`` from a
``ConvBPDNJoint`` coding step (λ 0.2, μ 0.1, ρ = 50λ + 0.5, adaptive every 10 iterations) and
the 'ism' ``ConvCnstrMOD`` (ρ = 10·3 images, adaptive every 10, Y0 the normalised D0, U0 = 0),
100 iterations; on csc ``csc.DictLearn(D0, λ, options, coding=csc.ConvBPDNJoint(...))`` with
``dmethod="ism"`` and ``DictUpdateOptions(zero_dual=True)`` (the script's U0 = 0).

Expected against SPORCO (float64, the same iterates): dictionary 1e-10, objective 1e-12.
"""

import numpy as np
import torch

import csc
from examples.sporco import _common as C

SCRIPT = "cbpdndl_jnt_clr"
EXPECT = {"codes": 1e-10, "objective": 1e-12, "psnr": 1e-9}
NOTE = "DictLearn with coding=ConvBPDNJoint, dmethod='ism', zero_dual: the same iterates (the dictionary compared)"
IMAGES = ("barbara.png", "kodim23.png", "monarch.png")
AUTO = {"Period": 10, "AutoScaling": False, "RsdlRatio": 10.0, "Scaling": 2.0, "RsdlTarget": 1.0}


def run(quick=False, compare=False):
    S = C.learner_images(IMAGES, 0.5, quick, gray=False)
    sl, sh = C.tikhonov(S, 5, 16)
    np.random.seed(12345)
    D0, lmbda, mu, iters = np.random.randn(8, 8, 64), 0.2, 0.1, C.QUICK_ITERS if quick else 100
    nimg = S.shape[-1]
    optx = {"Verbose": False, "MaxMainIter": 1, "rho": 50.0 * lmbda + 0.5, "AutoRho": AUTO}
    optd = {"Verbose": False, "MaxMainIter": 1, "rho": 10.0 * nimg, "AutoRho": AUTO}
    o = csc.DictLearnOptions.from_sporco({"MaxMainIter": iters, "CCMOD": optd}, dmethod="ism", dtype=torch.float64)
    o = o.replace(ccmod=o.ccmod.replace(zero_dual=True))  # the script's U0 = 0
    jopts = csc.CBPDNJointOptions.from_sporco(optx)
    Dc = C.tensor(csc.from_sporco_layout(D0, "dictionary"))
    with C.timed() as t:
        res = csc.DictLearn(Dc, lmbda, o, coding=csc.ConvBPDNJoint(Dc, lmbda, mu, jopts)).solve(
            C.tensor(csc.from_sporco_layout(sh, "images")))  # (H, W, C, B) → (B, C, H, W)
    ours = C.learnt(res, S, t.elapsed, sl)
    return C.record(SCRIPT, quick, ours, sporco(D0, sh, S, sl, lmbda, mu, iters, optx, optd) if compare else None)


def sporco(D0, sh, S, sl, lmbda, mu, iters, optx, optd):
    from sporco import cnvrep
    from sporco.admm import cbpdn, ccmod
    from sporco.dictlrn import dictlrn

    cri = cnvrep.CDU_ConvRepIndexing(D0.shape, sh)
    optd = ccmod.ConvCnstrMODOptions(optd, method="ism")
    D0n = cnvrep.Pcn(D0, D0.shape, cri.Nv, dimN=2, dimC=0, crp=True, zm=optd["ZeroMean"])
    optd.update({"Y0": cnvrep.zpad(cnvrep.stdformD(D0n, cri.Cd, cri.M), cri.Nv), "U0": np.zeros(cri.shpD)})
    xstep = cbpdn.ConvBPDNJoint(D0n, sh, lmbda, mu, cbpdn.ConvBPDNJoint.Options(optx))
    dstep = ccmod.ConvCnstrMOD(None, sh, D0.shape, optd, method="ism")
    d = dictlrn.DictLearn(xstep, dstep, dictlrn.DictLearn.Options({"Verbose": False, "MaxMainIter": iters}))
    with C.timed() as t:
        d.solve()
    return dict(codes=csc.from_sporco_layout(np.asarray(dstep.getdict()).squeeze(), "dictionary"),
                objective=float(d.getitstat().ObjFunX[-1]), psnr=C.psnr(S, xstep.reconstruct().squeeze() + sl),
                time=t.elapsed, iterations=iters)


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT), "learning")

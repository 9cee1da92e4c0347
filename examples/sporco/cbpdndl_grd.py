"""SPORCO's ``cdl/cbpdndl_grd.py`` on csc: dictionary learning with a gradient-regularised coding step.

Three greyscale images (half size), not filtered; 64 random 8×8 kernels (seed 12345) of which
the first is the one whose map takes the lowpass part (ℓ1 weight 0, gradient weight 1, 0 for
the others). SPORCO's script assembles ``dictlrn.DictLearn`` from a ``ConvBPDNGradReg`` coding
step (λ 0.1, μ 0.5, ρ = 20λ + 0.5, adaptive every 10 iterations) and a consensus
``ConvCnstrMOD`` (ρ = 5·3 images, adaptive every 10), 200 iterations; on csc this is
``csc.DictLearn(D0, λ, options, coding=csc.ConvBPDNGradReg(...))`` with ``dmethod="cns"``.

The script starts the consensus step with U0 = 0: ``DictUpdateOptions(zero_dual=True)``
(``SCRIPT_U0 = False`` compares SPORCO's default start, U0 = Y0/ρ, with csc's default instead).

Expected against SPORCO (float64, the same iterates): dictionary 1e-10, objective 1e-12.
"""

import numpy as np
import torch

import csc
from examples.sporco import _common as C

SCRIPT = "cbpdndl_grd"
EXPECT = {"codes": 1e-10, "objective": 1e-12, "psnr": 1e-9}
NOTE = "DictLearn with coding=ConvBPDNGradReg, dmethod='cns': the same iterates (the dictionary compared)"
IMAGES = ("barbara.png", "kodim23.png", "monarch.png")
AUTO = {"Period": 10, "AutoScaling": False, "RsdlRatio": 10.0, "Scaling": 2.0, "RsdlTarget": 1.0}


def options():
    """SPORCO's coding and dictionary-step option dicts (``L1Weight`` and ``GradWeight`` apart)."""
    lmbda, nimg = 0.1, len(IMAGES)
    optx = {"Verbose": False, "MaxMainIter": 1, "rho": 20.0 * lmbda + 0.5, "AutoRho": AUTO, "HighMemSolve": True,
            "AuxVarObj": False}
    optd = {"Verbose": False, "MaxMainIter": 1, "rho": 5.0 * nimg, "AutoRho": AUTO}
    return optx, optd


def run(quick=False, compare=False):
    S = C.learner_images(IMAGES, 0.5, quick)
    np.random.seed(12345)
    D0, lmbda, mu, iters = np.random.randn(8, 8, 64), 0.1, 0.5, C.QUICK_ITERS if quick else 200
    wl1, wgr = np.ones((1, 1, 1, 1, 64)), np.zeros(64)
    wl1[..., 0], wgr[0] = 0.0, 1.0
    optx, optd = options()
    Dc = C.tensor(csc.from_sporco_layout(D0, "dictionary"))
    coding = csc.ConvBPDNGradReg(Dc, lmbda, mu, csc.GradRegOptions.from_sporco({**optx, "L1Weight": wl1,
                                                                               "GradWeight": wgr}))
    opts = csc.DictLearnOptions.from_sporco({"MaxMainIter": iters, "CCMOD": optd}, dmethod="cns", dtype=torch.float64)
    opts = opts.replace(ccmod=opts.ccmod.replace(zero_dual=SCRIPT_U0))  # the script's U0 = 0
    with C.timed() as t:
        res = csc.DictLearn(Dc, lmbda, opts, coding=coding).solve(C.tensor(csc.from_sporco_layout(S, "images")))
    ours = C.learnt(res, S, t.elapsed)
    return C.record(SCRIPT, quick, ours, sporco(D0, S, lmbda, mu, iters, wl1, wgr) if compare else None)


#: SPORCO's script starts the consensus step with U0 = 0 (csc: ``zero_dual=True``); csc's learner
#: by default, as SPORCO's ConvBPDNDictLearn, with U0 = Y0/ρ (ConvCnstrMOD_Consensus' default):
#: ``SCRIPT_U0 = False`` compares both with the latter, True (the port) with the script's start
SCRIPT_U0 = True


def U0(cri):
    """The consensus step's initial U: the script's zeros, or None (SPORCO's default, Y0/ρ)."""
    return np.zeros(cri.shpD + (cri.K,)) if SCRIPT_U0 else None


def sporco(D0, S, lmbda, mu, iters, wl1, wgr):
    from sporco import cnvrep
    from sporco.admm import cbpdn, ccmod
    from sporco.dictlrn import dictlrn

    optx, optd = options()
    cri = cnvrep.CDU_ConvRepIndexing(D0.shape, S)
    optd = ccmod.ConvCnstrMODOptions(optd, method="cns")
    D0n = cnvrep.Pcn(D0, D0.shape, cri.Nv, dimN=2, dimC=0, crp=True, zm=optd["ZeroMean"])
    optd.update({"Y0": cnvrep.zpad(cnvrep.stdformD(D0n, cri.Cd, cri.M), cri.Nv), "U0": U0(cri)})
    xstep = cbpdn.ConvBPDNGradReg(D0n, S, lmbda, mu, cbpdn.ConvBPDNGradReg.Options(
        {**optx, "L1Weight": wl1, "GradWeight": wgr}))
    dstep = ccmod.ConvCnstrMOD(None, S, D0.shape, optd, method="cns")
    d = dictlrn.DictLearn(xstep, dstep, dictlrn.DictLearn.Options({"Verbose": False, "MaxMainIter": iters}))
    with C.timed() as t:
        d.solve()
    recon = xstep.reconstruct().squeeze()
    return dict(codes=csc.from_sporco_layout(np.asarray(dstep.getdict()).squeeze(), "dictionary"),
                objective=float(d.getitstat().ObjFunX[-1]), psnr=C.psnr(S, recon), time=t.elapsed, iterations=iters)


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT), "learning")

"""SPORCO's ``cdl/cbpdndl_md_gry.py`` on csc: dictionary learning with missing data.

Two greyscale images (quarter size), half of the pixels removed (``signal.rndmask``), ℓ2–TV
lowpass with the mask as weight (``csc.TVL2Denoise``); 32 random 8×8 kernels learnt twice on the
highpass part: without the mask (``csc.DictLearn``, ``dmethod="cns"``, λ 0.05, coding ρ = 50λ + 0.5,
dictionary ρ 100, accurate functional) and with it (SPORCO's ``ConvBPDNMaskDictLearn``: the
options by ``DictLearnOptions.from_sporco(..., masked=True)``, ``solve(images, mask=W)``: coding ρ
= 20λ + 0.5, dictionary ρ 0.2), 200 iterations each. The record is the masked learner's.

Expected against SPORCO (float64, the same iterates): dictionaries 1e-10, objectives 1e-12
(both learners; ``unmasked`` holds the first one's differences).
"""

import numpy as np
import torch

import csc
from examples.sporco import _common as C

SCRIPT = "cbpdndl_md_gry"
EXPECT = {"codes": 1e-10, "objective": 1e-12, "psnr": 1e-9}
NOTE = "TVL2Denoise, DictLearn 'cns' without and with a mask (from_sporco(masked=True)): the same iterates"


def options(iters, lmbda=0.05):
    opt1 = {"Verbose": False, "MaxMainIter": iters, "AccurateDFid": True, "CBPDN": {"rho": 50.0 * lmbda + 0.5},
            "CCMOD": {"rho": 1e2}}
    opt2 = {"Verbose": False, "MaxMainIter": iters, "AccurateDFid": True, "CBPDN": {"rho": 20.0 * lmbda + 0.5},
            "CCMOD": {"rho": 2e-1}}
    return opt1, opt2


def run(quick=False, compare=False):
    from sporco import signal

    S = C.learner_images(("barbara.png", "kodim23.png"), 0.25, quick)
    np.random.seed(12345)
    D0 = np.random.randn(8, 8, 32)
    W = signal.rndmask(S.shape[0:2] + (1,), 0.5, dtype=np.float64)
    Sw, iters, lmbda = W * S, C.QUICK_ITERS if quick else 200, 0.05
    opt1, opt2 = options(iters)
    Dc = C.tensor(csc.from_sporco_layout(D0, "dictionary"))
    with C.timed() as t:
        sl = C.hwc(csc.TVL2Denoise(0.1, csc.TVL2Options(max_iter=200, dfid_weight=C.tensor(W[..., 0]),
                                                        objective_on_y=False, auto_rho=True, coupling="sporco")).solve(
            C.tensor(C.chw(Sw))).x)  # SPORCO's (H, W, 2) array: the two images one problem, the mask on both
        sh = C.tensor(C.chw(Sw - sl))
        r1 = csc.DictLearn(Dc, lmbda, csc.DictLearnOptions.from_sporco(opt1, dmethod="cns", dtype=torch.float64)).solve(sh)
        o2 = csc.DictLearnOptions.from_sporco(opt2, dmethod="cns", masked=True, dtype=torch.float64)
        r2 = csc.DictLearn(Dc, lmbda, o2).solve(sh, mask=C.tensor(W[..., 0]))
    ours = C.learnt(r2, S, t.elapsed, sl)
    if not compare:
        return C.record(SCRIPT, quick, ours)
    theirs, d1 = sporco(D0, Sw, W, S, lmbda, opt1, opt2)
    out = C.record(SCRIPT, quick, ours, theirs)
    if compare:
        out["unmasked"] = {"codes": C.rel_diff(r1.dictionary, d1["codes"]),
                           "objective": abs(r1.stats.objective[-1] - d1["objective"]) / abs(d1["objective"])}
        print(f"{SCRIPT}: unmasked learner's differences: dictionary {out['unmasked']['codes']:.2e}, "
              f"objective {out['unmasked']['objective']:.2e}")
    return out


def sporco(D0, Sw, W, S, lmbda, opt1, opt2):
    from sporco.admm import tvl2
    from sporco.dictlrn import cbpdndl, cbpdndlmd

    with C.timed() as t:
        sl = tvl2.TVL2Denoise(Sw, 0.1, tvl2.TVL2Denoise.Options({"Verbose": False, "MaxMainIter": 200,
                                                                  "DFidWeight": W, "gEvalY": False,
                                                                  "AutoRho": {"Enabled": True}})).solve()
        sh = Sw - sl
        d1 = cbpdndl.ConvBPDNDictLearn(D0, sh, lmbda, cbpdndl.ConvBPDNDictLearn.Options(opt1, dmethod="cns"),
                                       dmethod="cns")
        first = C.sporco_learnt(d1, S, sl)
        d2 = cbpdndlmd.ConvBPDNMaskDictLearn(D0, sh, lmbda, W, cbpdndlmd.ConvBPDNMaskDictLearn.Options(
            opt2, dmethod="cns"), dmethod="cns")
    second = C.sporco_learnt(d2, S, sl, prep=t.elapsed - first["time"])
    return {**second, "time": second["time"] + first["time"]}, first


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT), "learning")

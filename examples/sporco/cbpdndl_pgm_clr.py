"""SPORCO's ``cdl/cbpdndl_pgm_clr.py`` on csc: colour dictionary learning by FISTA, multi-scale.

Three colour images (half size), Tikhonov highpass (λ 5); 96 random 16×16×3 kernels (seed 12345)
learnt as a multi-scale dictionary (SPORCO's ``DictSize`` ((8, 8, 3, 32), (12, 12, 3, 32),
(16, 16, 3, 32)): csc's ``dict_size``) by ``csc.DictLearn`` with ``xmethod="pgm"`` (the FISTA
coding step, L 36, standard backtracking γ_u 1.1) and ``dmethod="pgm"`` (L 50, standard
backtracking), λ 0.2, 200 iterations: SPORCO's ``ConvBPDNDictLearn(xmethod='pgm', dmethod='pgm')``.

Expected against SPORCO (float64, the same iterates): dictionary 1e-10, objective 1e-12.
"""

import numpy as np
import torch

import csc
from examples.sporco import _common as C

SCRIPT = "cbpdndl_pgm_clr"
EXPECT = {"codes": 1e-10, "objective": 1e-12, "psnr": 1e-9}
NOTE = "DictLearn, xmethod='pgm', dmethod='pgm', dict_size: the same iterates (the dictionary compared)"
IMAGES = ("barbara.png", "kodim23.png", "monarch.png")


def run(quick=False, compare=False):
    from sporco.pgm.backtrack import BacktrackStandard

    S = C.learner_images(IMAGES, 0.5, quick, size=C.QUICK, gray=False)
    sl, sh = C.tikhonov(S, 5, 16)
    np.random.seed(12345)
    D0, lmbda = np.random.randn(16, 16, 3, 96), 0.2
    dsz = ((8, 8, 3, 32), (12, 12, 3, 32), (16, 16, 3, 32))
    opt = {"Verbose": False, "MaxMainIter": C.QUICK_ITERS if quick else 200, "DictSize": dsz,
           "CBPDN": {"Backtrack": BacktrackStandard(gamma_u=1.1), "L": 36.0},
           "CCMOD": {"Backtrack": BacktrackStandard(), "L": 50.0}}
    opts = csc.DictLearnOptions.from_sporco(opt, dmethod="pgm", xmethod="pgm", dtype=torch.float64)
    learner = csc.DictLearn(C.tensor(csc.from_sporco_layout(D0, "dictionary")), lmbda, opts)
    with C.timed() as t:
        res = learner.solve(C.tensor(csc.from_sporco_layout(sh, "images")))  # (H, W, C, B) → (B, C, H, W)
    ours = C.learnt(res, S, t.elapsed, sl)
    if compare:
        from sporco.dictlrn import cbpdndl

        d = cbpdndl.ConvBPDNDictLearn(D0, sh, lmbda, cbpdndl.ConvBPDNDictLearn.Options(opt, xmethod="pgm",
                                                                                        dmethod="pgm"),
                                      xmethod="pgm", dmethod="pgm")
        return C.record(SCRIPT, quick, ours, C.sporco_learnt(d, S, sl))
    return C.record(SCRIPT, quick, ours)


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT), "learning")

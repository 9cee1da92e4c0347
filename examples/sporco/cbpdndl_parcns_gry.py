"""SPORCO's ``cdl/cbpdndl_parcns_gry.py`` on csc: dictionary learning, SPORCO's parallel consensus learner.

Five greyscale images (quarter size: 128²), Tikhonov highpass (λ 5); 64 random 8×8 kernels
(seed 12345) learnt by ``csc.DictLearn`` with ``dmethod="cns"``: SPORCO's
``dictlrn.prlcnscdl.ConvBPDNDictLearn_Consensus`` (λ 0.2, coding ρ = 50λ + 0.5, dictionary ρ 1,
zero-mean kernels, 200 iterations) runs the same iteration as ``ConvBPDNDictLearn`` with the
consensus dictionary update, its images' coding steps in parallel processes; csc batches them.

Expected against SPORCO (float64, the same iterates): dictionary 1e-10, objective 1e-12.
"""

import numpy as np
import torch

import csc
from examples.sporco import _common as C

SCRIPT = "cbpdndl_parcns_gry"
EXPECT = {"codes": 1e-10, "objective": 1e-12, "psnr": 1e-9}
NOTE = "DictLearn, dmethod='cns' is ConvBPDNDictLearn_Consensus: the same iterates (the dictionary compared)"
IMAGES = ("barbara.png", "kodim23.png", "monarch.png", "sail.png", "tulips.png")


def run(quick=False, compare=False):
    S = C.learner_images(IMAGES, 0.25, quick)
    sl, sh = C.tikhonov(S, 5, 16)
    np.random.seed(12345)
    D0, lmbda = np.random.randn(8, 8, 64), 0.2
    opt = {"Verbose": False, "MaxMainIter": C.QUICK_ITERS if quick else 200, "CBPDN": {"rho": 50.0 * lmbda + 0.5},
           "CCMOD": {"rho": 1.0, "ZeroMean": True}}
    # ConvBPDNDictLearn_Consensus evaluates its functional on y with the updated dictionary:
    # ConvBPDNDictLearn's AccurateDFid, csc's accurate_dfid
    opts = csc.DictLearnOptions.from_sporco(opt, dmethod="cns", dtype=torch.float64, accurate_dfid=True)
    learner = csc.DictLearn(C.tensor(csc.from_sporco_layout(D0, "dictionary")), lmbda, opts)
    with C.timed() as t:
        res = learner.solve(C.tensor(csc.from_sporco_layout(sh, "images")))  # (H, W, B) → (B, H, W)
    ours = C.learnt(res, S, t.elapsed, sl)
    if compare:
        from sporco.dictlrn import prlcnscdl

        d = prlcnscdl.ConvBPDNDictLearn_Consensus(D0, sh, lmbda, prlcnscdl.ConvBPDNDictLearn_Consensus.Options(opt),
                                                  nproc=1)
        return C.record(SCRIPT, quick, ours, C.sporco_learnt(d, S, sl))
    return C.record(SCRIPT, quick, ours)


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT), "learning")

"""SPORCO's ``cdl/onlinecdl_clr.py`` on csc: online convolutional dictionary learning.

Five colour images (quarter size), Tikhonov highpass (λ 5); 64 random 8×8×3 colour kernels (seed
12345) learnt by ``csc.OnlineDictLearn`` (SPORCO's ``OnlineConvBPDNDictLearn``: λ 0.2,
η = 10/(j + 20), coding ρ 5 adaptive, 50 coding iterations, RelStopTol 1e-7) over 50 steps,
each on one image drawn by ``np.random.randint`` after the seed (the script's sequence, shared
by both). SPORCO's script computes in float32 (``DataType``); the port in float64, both sides.
SPORCO's script prints no PSNR: the record's is NaN.

Expected against SPORCO (float64, the same iterates): dictionary 1e-10, objective 1e-12 (the
last coding step's).
"""

import numpy as np
import torch

import csc
from examples.sporco import _common as C

SCRIPT = "onlinecdl_clr"
EXPECT = {"codes": 1e-10, "objective": 1e-12}
NOTE = "OnlineDictLearn, colour dictionary: the same iterates (the dictionary compared)"
IMAGES = ("barbara.png", "kodim23.png", "monarch.png", "sail.png", "tulips.png")
GRAY, KERNELS, DEVICE, RELSTOP = False, (8, 8, 3, 64), None, 1e-7


def options(quick):
    return {"Verbose": False, "ZeroMean": False, "eta_a": 10.0, "eta_b": 20.0,
            "CBPDN": {"rho": 5.0, "AutoRho": {"Enabled": True}, "RelaxParam": 1.8, "RelStopTol": RELSTOP,
                      "MaxMainIter": C.QUICK_ITERS if quick else 50, "FastSolve": False}}


def run(quick=False, compare=False):
    S = C.learner_images(IMAGES, 0.25, quick, gray=GRAY)
    sl, sh = C.tikhonov(S, 5, 16)
    np.random.seed(12345)
    D0, lmbda, steps = np.random.randn(*KERNELS), 0.2, 3 if quick else 50
    order = [np.random.randint(0, sh.shape[-1]) for _ in range(steps)]
    opts = csc.OnlineDictLearnOptions.from_sporco(options(quick), dtype=torch.float64, device=DEVICE)
    learner = csc.OnlineDictLearn(C.tensor(csc.from_sporco_layout(D0, "dictionary")), lmbda, opts)
    images = C.tensor(csc.from_sporco_layout(sh, "images"))  # (B, [C,] H, W)
    with C.timed() as t:
        for j in order:
            learner.step(images[j:j + 1].to(learner.dictionary.device))
    ours = C.outcome(learner.dictionary.cpu(), learner.stats.objective[-1], None, t.elapsed, steps)
    if compare:
        from sporco.dictlrn import onlinecdl

        d = onlinecdl.OnlineConvBPDNDictLearn(D0, lmbda, onlinecdl.OnlineConvBPDNDictLearn.Options(options(quick)))
        with C.timed() as ts:
            for j in order:
                d.solve(sh[..., [j]])
        theirs = dict(codes=csc.from_sporco_layout(np.asarray(d.getdict()).squeeze(), "dictionary"),
                      objective=float(d.getitstat().ObjFun[-1]), psnr=float("nan"), time=ts.elapsed, iterations=steps)
        return C.record(SCRIPT, quick, ours, theirs)
    return C.record(SCRIPT, quick, ours)


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT), "learning")

"""SPORCO's ``cdl/onlinecdl_msk_gry.py`` on csc: online dictionary learning with a mask.

Five greyscale images (half size), Tikhonov highpass (λ 5), a quarter of the pixels removed
(``signal.rndmask``); 32 random 8×8 kernels learnt by ``csc.OnlineDictLearn`` with
``step(images, mask=W)`` (SPORCO's ``OnlineConvBPDNMaskDictLearn``: λ 0.1, η = 10/(j + 20),
coding by mask decoupling with ρ 3 fixed, 100 iterations, RelStopTol 1e-4) over 50 steps, each on
one image drawn as the script draws it. Float64 on both sides (the script's ``DataType`` is
float32). SPORCO's script prints no PSNR: the record's is NaN.

Expected against SPORCO (float64, the same iterates): dictionary 1e-10, objective 1e-12.
"""

import numpy as np
import torch

import csc
from examples.sporco import _common as C

SCRIPT = "onlinecdl_msk_gry"
EXPECT = {"codes": 1e-10, "objective": 1e-12}
NOTE = "OnlineDictLearn with a mask (mask decoupling): the same iterates (the dictionary compared)"
IMAGES = ("barbara.png", "kodim23.png", "monarch.png", "sail.png", "tulips.png")


def options(quick):
    return {"Verbose": False, "ZeroMean": False, "eta_a": 10.0, "eta_b": 20.0,
            "CBPDN": {"rho": 3.0, "AutoRho": {"Enabled": False}, "RelaxParam": 1.8, "RelStopTol": 1e-4,
                      "MaxMainIter": C.QUICK_ITERS if quick else 100, "FastSolve": False}}


def run(quick=False, compare=False):
    from sporco import signal

    S = C.learner_images(IMAGES, 0.5, quick)
    sl, sh = C.tikhonov(S, 5, 16)
    np.random.seed(12345)
    W = signal.rndmask(S.shape, 0.25, dtype=np.float64)
    shw = W * sh
    D0, lmbda, steps = np.random.randn(8, 8, 32), 0.1, 3 if quick else 50
    order = [np.random.randint(0, sh.shape[-1]) for _ in range(steps)]
    opts = csc.OnlineDictLearnOptions.from_sporco(options(quick), masked=True, dtype=torch.float64)
    learner = csc.OnlineDictLearn(C.tensor(csc.from_sporco_layout(D0, "dictionary")), lmbda, opts)
    images, masks = (C.tensor(csc.from_sporco_layout(a, "images")) for a in (shw, W))  # (B, H, W)
    with C.timed() as t:
        for j in order:
            learner.step(images[j:j + 1], mask=masks[j:j + 1])
    ours = C.outcome(learner.dictionary, learner.stats.objective[-1], None, t.elapsed, steps)
    if compare:
        from sporco.dictlrn import onlinecdl

        d = onlinecdl.OnlineConvBPDNMaskDictLearn(D0, lmbda, onlinecdl.OnlineConvBPDNMaskDictLearn.Options(
            options(quick)))
        with C.timed() as ts:
            for j in order:
                d.solve(shw[..., [j]], W[..., [j]])
        theirs = dict(codes=csc.from_sporco_layout(np.asarray(d.getdict()).squeeze(), "dictionary"),
                      objective=float(d.getitstat().ObjFun[-1]), psnr=float("nan"), time=ts.elapsed, iterations=steps)
        return C.record(SCRIPT, quick, ours, theirs)
    return C.record(SCRIPT, quick, ours)


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT), "learning")

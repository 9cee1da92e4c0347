"""SPORCO's ``csc/cbpdn_cuda.py`` on csc: CBPDN on a GPU.

SPORCO's script runs its CUDA extension (``sporco.cuda.cbpdn``) when it finds a GPU, its numpy
``ConvBPDN`` otherwise; csc's device path is the same ``csc.ConvBPDN`` with
``CBPDNOptions(device="cuda")`` (the ``torch.compile`` back end), used here when torch sees a
GPU, the CPU otherwise. The problem: highpass (Tikhonov λ 20) of a 512² barbara crop,
``G:12x12x36``, λ 1e-2, 250 iterations, RelStopTol 5e-3. ``compare=True`` runs SPORCO's numpy
``ConvBPDN`` with ``HighMemSolve`` off: SPORCO 0.2.2 with ``HighMemSolve=True`` and no ``rho``
caches its linear solve with ρ = 1 while iterating with ρ = 50λ + 1 (README, "Options"), so the
script's own numbers are those of that inconsistent iteration (objective 3% off at the quick
size); ``HighMemSolve`` changes nothing else.

Expected against SPORCO (float64, the same iterates): codes 1e-10, objective 1e-12 (on the GPU
too: the iterates are SPORCO's in float64 on every device).
"""

import numpy as np
import torch

import csc
from examples.sporco import _common as C

SCRIPT = "cbpdn_cuda"
EXPECT = {"codes": 1e-10, "objective": 1e-12, "psnr": 1e-9}
NOTE = ("ConvBPDN on csc's device path (CUDA when there is one): the same iterates as SPORCO's with "
        "HighMemSolve off (on, without rho, SPORCO 0.2.2 caches its solve at rho = 1)")
DEVICE = "cuda" if torch.cuda.is_available() else None


def run(quick=False, compare=False):
    img = C.image("barbara.png", scaled=True, gray=True, idxexp=np.s_[10:522, 100:612])
    img = C.quick_crop(img) if quick else img
    sl, sh = C.tikhonov(img, 20, 16)
    D, lmbda = C.convdict("G:12x12x36"), 1e-2
    opt = {"Verbose": False, "MaxMainIter": C.QUICK_ITERS if quick else 250, "HighMemSolve": True,
           "RelStopTol": 5e-3, "AuxVarObj": False}
    opts = csc.CBPDNOptions.from_sporco(opt, device=DEVICE)
    solver = csc.ConvBPDN(C.tensor(csc.from_sporco_layout(D, "dictionary")), lmbda, opts)
    with C.timed() as t:
        res = solver.solve(C.tensor(sh))
        codes = res.codes.cpu()  # the host copy is part of the time
    print(f"csc back end: {res.backend} on {res.codes.device}")
    imgr = sl + res.reconstruct()[0].cpu().numpy()
    ours = C.outcome(codes, res.stats[0].objective[-1], C.psnr(img, imgr), t.elapsed, res.iterations[0],
                     original=img, reconstructed=imgr)
    if compare:
        from sporco.admm import cbpdn

        b = cbpdn.ConvBPDN(D, sh, lmbda, cbpdn.ConvBPDN.Options({**opt, "HighMemSolve": False}))
        return C.record(SCRIPT, quick, ours, C.sporco_solve(b, img, lambda b: sl + b.reconstruct().squeeze()))
    return C.record(SCRIPT, quick, ours)


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT))

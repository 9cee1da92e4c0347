"""SPORCO's ``csc/cbpdn_ams_gry.py`` on csc: inpainting by additive mask simulation.

Half the pixels of a greyscale monarch removed, the image padded by 8; ℓ2–TV denoising with
the mask as weight gives the lowpass part (``csc.TVL2Denoise``), the masked highpass part is
coded by ``csc.AddMaskSim`` around ``csc.ConvBPDN`` (``G:8x8x128``, λ 2e-2, ρ = 50λ + 0.1 fixed,
RelStopTol 5e-3). SPORCO's script uses its CUDA extension when one is installed; this port
runs wherever torch does (``CBPDNOptions(device="cuda")``).

Expected against SPORCO (float64, the same iterates): codes 1e-10, objective 1e-12.
"""

import csc
from examples.sporco import _common as C

SCRIPT = "cbpdn_ams_gry"
EXPECT = {"codes": 1e-10, "objective": 1e-12, "psnr": 1e-9}
NOTE = "TVL2Denoise, then AddMaskSim(ConvBPDN): the same iterates"
GRAY, DICT = True, "G:8x8x128"


def options(lmbda, iters):
    """SPORCO's option dict of the script (``Verbose`` off)."""
    return {"Verbose": False, "MaxMainIter": iters, "HighMemSolve": True, "RelStopTol": 5e-3, "AuxVarObj": False,
            "RelaxParam": 1.8, "rho": 5e1 * lmbda + 1e-1, "AutoRho": {"Enabled": False, "StdResiduals": False}}


def run(quick=False, compare=False):
    img, msk, imgw, mskp, imgwp = C.masked_monarch(gray=GRAY, quick=quick)
    D, lmbda, iters = C.convdict(DICT), 2e-2, C.QUICK_ITERS if quick else 200
    with C.timed() as t:
        sl = C.tv_lowpass(imgwp, mskp, iters=iters)
        sh = mskp * (imgwp - sl)
        solver = csc.ConvBPDN(C.tensor(csc.from_sporco_layout(D, "dictionary")), lmbda,
                              csc.CBPDNOptions.from_sporco(options(lmbda, iters)))
        res = csc.AddMaskSim(solver).solve(C.tensor(C.chw(sh))[None], mask=C.tensor(C.chw(mskp))[None])
    imgr = C.crop(sl + C.hwc(res.reconstruct()[0]))
    ours = C.outcome(res.codes, res.stats[0].objective[-1], C.psnr(img, imgr), t.elapsed, res.iterations[0],
                     corrupted=imgw, reconstructed=imgr)
    print(f"Corrupted image PSNR: {C.psnr(img, imgw):5.2f} dB")
    return C.record(SCRIPT, quick, ours, sporco(D, imgwp, mskp, img, lmbda, iters) if compare else None)


def sporco(D, imgwp, mskp, img, lmbda, iters):
    from sporco.admm import cbpdn

    with C.timed() as t:
        sl = C.sporco_tv_lowpass(imgwp, mskp, iters=iters)
        sh = mskp * (imgwp - sl)
        ams = cbpdn.AddMaskSim(cbpdn.ConvBPDN, D, sh, mskp, lmbda, opt=cbpdn.ConvBPDN.Options(options(lmbda, iters)))
    return C.sporco_solve(ams, img, lambda b: C.crop(sl + b.reconstruct().squeeze()), prep=t.elapsed)


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT))

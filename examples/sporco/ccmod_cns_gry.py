"""SPORCO's ``cdl/ccmod_cns_gry.py`` on csc: the dictionary update by ADMM consensus.

The data and codes of ``ccmod_pgm_gry`` (five greyscale images, ``G:12x12x36``, ``csc.ConvBPDN``
λ 0.1, 100 iterations, ``coupling="sporco"``), then ``csc.ConvCnstrMODConsensus`` (SPORCO's
``admm.ccmod.ConvCnstrMOD_Consensus``: 100 iterations, ρ 10).

Compared: the dictionary (as ``codes``) and the final data fidelity (``objective``); the
script computes no PSNR.
Expected against SPORCO (float64, the same iterates): dictionary 1e-10, data fidelity 1e-12.
"""

import numpy as np

import csc
from examples.sporco import _common as C
from examples.sporco.ccmod_pgm_gry import codes, compare_updates

SCRIPT = "ccmod_cns_gry"
EXPECT = {"codes": 1e-10, "objective": 1e-12}
NOTE = "ConvBPDN (coupling='sporco') then ConvCnstrMODConsensus: the same iterates (the dictionary compared)"


def run(quick=False, compare=False):
    sh, D0, iters, Z, X, tz, tx = codes(quick, compare)
    opt = {"Verbose": False, "MaxMainIter": iters, "rho": 1e1}
    with C.timed() as t:
        res = csc.ConvCnstrMODConsensus(D0.shape[:2], csc.DictUpdateOptions.from_sporco(opt, dmethod="cns")).solve(
            Z, C.tensor(csc.from_sporco_layout(sh, "images")))
    ours = [(res.dictionary.numpy(), float(res.stats.data_fidelity[-1]), t.elapsed + tz)]
    theirs = None
    if compare:
        from sporco.admm import ccmod

        c = ccmod.ConvCnstrMOD_Consensus(X, sh, D0.shape, ccmod.ConvCnstrMOD_Consensus.Options(opt))
        with C.timed() as t:
            c.solve()
        theirs = [(csc.from_sporco_layout(np.asarray(c.getdict()).squeeze(), "dictionary"),
                   float(c.getitstat().DFid[-1]), t.elapsed + tx)]
    return compare_updates(SCRIPT, quick, ours, theirs, ("consensus",))


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT), "dictionary update")

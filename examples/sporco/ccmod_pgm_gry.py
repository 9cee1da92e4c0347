"""SPORCO's ``cdl/ccmod_pgm_gry.py`` on csc: the dictionary update by FISTA, three momenta.

Five greyscale images (quarter size: 128²), Tikhonov highpass (λ 5); their codes on
``G:12x12x36`` by ``csc.ConvBPDN`` (λ 0.1, 100 iterations; SPORCO solves the five images as
one problem: ``coupling="sporco"``), then ``csc.ConvCnstrMOD`` (SPORCO's ``pgm.ccmod.ConvCnstrMOD``:
100 iterations, L 50) three times: Nesterov momentum, ``MomentumLinear`` (``momentum="linear"``)
and ``MomentumGenLinear`` (``"genlinear"``).

SPORCO's codes are computed with ``HighMemSolve`` off: SPORCO 0.2.2's ``ConvBPDN`` with
``HighMemSolve=True`` and the default ρ caches its x-step factor before it sets ρ = 50λ + 1, so
until ρ first changes its x-step does not solve its system (``tests/problems/test_proddict.py``
shows it by SPORCO's own ``LinSolveCheck``); csc solves it, and gives SPORCO's
``HighMemSolve=False`` codes (1e-15; the script's setting: 0.87 apart after one iteration).

Compared: the three dictionaries (stacked, as ``codes``), the largest relative difference of
their final data fidelities (``objective``); the script computes no PSNR.
Expected against SPORCO (float64, the same iterates): dictionaries 1e-10, data fidelity 1e-12.
"""

import numpy as np

import csc
from examples.sporco import _common as C

SCRIPT = "ccmod_pgm_gry"
EXPECT = {"codes": 1e-10, "objective": 1e-12}
NOTE = "ConvBPDN (coupling='sporco') then ConvCnstrMOD, three momenta: the same iterates (the dictionaries compared)"
IMAGES = ("barbara.png", "kodim23.png", "monarch.png", "sail.png", "tulips.png")


def codes(quick, compare):
    """The script's data and codes: (sh, D0, lmbda, iters, csc's codes (B, K, H, W), SPORCO's
    X or None, the seconds of each)."""
    S = C.learner_images(IMAGES, 0.25, quick)
    sl, sh = C.tikhonov(S, 5, 16)
    D0, lmbda, iters = C.convdict("G:12x12x36"), 0.1, C.QUICK_ITERS if quick else 100
    opt = {"Verbose": False, "MaxMainIter": iters, "HighMemSolve": True}
    solver = csc.ConvBPDN(C.tensor(csc.from_sporco_layout(D0, "dictionary")), lmbda,
                          csc.CBPDNOptions.from_sporco(opt, coupling="sporco"))
    with C.timed() as t:
        Z = solver.solve(C.tensor(csc.from_sporco_layout(sh, "images"))).codes
    X, ts = None, 0.0
    if compare:
        from sporco.admm import cbpdn

        c = cbpdn.ConvBPDN(D0, sh, lmbda, cbpdn.ConvBPDN.Options({**opt, "HighMemSolve": False}))
        with C.timed() as t2:
            X = c.solve()
        ts = t2.elapsed
    return sh, D0, iters, Z, X, t.elapsed, ts


def compare_updates(script, quick, ours, theirs, names):
    """A record of several dictionary updates: ``ours``/``theirs`` lists of (dictionary, data
    fidelity, seconds); the dictionaries stacked, the largest fidelity difference."""
    def one(runs):
        return C.outcome(np.stack([r[0] for r in runs]), runs[0][1], None, sum(r[2] for r in runs), len(runs))

    out = C.record(script, quick, one(ours), None if theirs is None else dict(
        codes=np.stack([r[0] for r in theirs]), objective=theirs[0][1], psnr=float("nan"),
        time=sum(r[2] for r in theirs), iterations=len(theirs)))
    if theirs is not None:
        out["diff"]["objective"] = max(abs(a[1] - b[1]) / abs(b[1]) for a, b in zip(ours, theirs))
        for n, a, b in zip(names, ours, theirs):
            print(f"{script}: {n}: dictionary {C.rel_diff(a[0], b[0]):.1e}, data fidelity "
                  f"{abs(a[1] - b[1]) / abs(b[1]):.1e} (csc {a[1]:.6e})")
    return out


MOMENTA = ("MomentumNesterov", "MomentumLinear", "MomentumGenLinear")


def run(quick=False, compare=False):
    sh, D0, iters, Z, X, tz, tx = codes(quick, compare)
    Sc = C.tensor(csc.from_sporco_layout(sh, "images"))
    ours, theirs = [], [] if compare else None
    for name in MOMENTA:
        from sporco.pgm import momentum

        opt = {"Verbose": False, "MaxMainIter": iters, "L": 50, "Momentum": getattr(momentum, name)()}
        with C.timed() as t:
            res = csc.ConvCnstrMOD(D0.shape[:2], csc.DictUpdateOptions.from_sporco(opt)).solve(Z, Sc)
        ours.append((res.dictionary.numpy(), float(res.stats.data_fidelity[-1]), t.elapsed + tz / len(MOMENTA)))
        if compare:
            from sporco.pgm import ccmod

            c = ccmod.ConvCnstrMOD(X, sh, D0.shape, ccmod.ConvCnstrMOD.Options(opt))
            with C.timed() as t:
                c.solve()
            theirs.append((csc.from_sporco_layout(np.asarray(c.getdict()).squeeze(), "dictionary"),
                           float(c.getitstat().DFid[-1]), t.elapsed + tx / len(MOMENTA)))
    return compare_updates(SCRIPT, quick, ours, theirs, MOMENTA)


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT), "dictionary update")

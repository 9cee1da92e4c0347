"""SPORCO's ``csc/cbpdnin_wgt_gry.py`` on csc: single-channel CSC with weighted lateral inhibition.

As ``cbpdnin_gry`` with three noisy copies of ``G:12x12x36`` (108 kernels) and two grouping
schemes stacked: W_g = [[I I 0], [¼I 0 ¼I]] (kernel m with its first copy, weight 1, and with
its second, weight ¼), μ 5e-3. The copies' noise: numpy seeded with 12345 (the script's is
unseeded).

Expected against SPORCO (float64, the same iterates): codes 1e-10, objective 1e-12.
"""

import numpy as np

from examples.sporco import _common as C
from examples.sporco.cbpdnin_gry import solve

SCRIPT = "cbpdnin_wgt_gry"
EXPECT = {"codes": 1e-10, "objective": 1e-12, "psnr": 1e-9}
NOTE = "ConvBPDNInhib, weighted groups: the same iterates"


def groups():
    """The script's weighted W_g (72 × 108)."""
    I, O = np.eye(36), np.zeros((36, 36))
    return np.append(np.concatenate((I, I, O), axis=-1), 0.25 * np.concatenate((I, O, I), axis=-1), axis=0)


def run(quick=False, compare=False):
    return solve(SCRIPT, groups(), 3, 5e-3, quick, compare)


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT))

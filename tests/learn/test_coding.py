"""The learners' coding step is the solver's iteration with a joint coupling: for one image
it is exactly ConvBPDN, on both CPU back ends."""

import pytest
import torch

import csc
from csc.learn.coding import JointCBPDN

from ..backends_params import numba_param


@pytest.mark.parametrize("use_fused", [pytest.param(False, id="torch"), numba_param(True, id="numba")])
def test_one_image_joint_equals_convbpdn(use_fused):
    g = torch.Generator().manual_seed(3)
    D = torch.randn(6, 5, 5, generator=g, dtype=torch.float64)
    S = torch.randn(24, 20, generator=g, dtype=torch.float64)
    opts = csc.CBPDNOptions(max_iter=40, rel_stop_tol=1e-4, rho_period=3, backend="numba" if use_fused else "torch")
    ref = csc.ConvBPDN(D, 0.1, opts).solve(S)
    cb = JointCBPDN(S[None], 0.1, opts, 6, (5, 5), fused=use_fused)
    cb.set_dictionary(D)
    row = cb.iterate(opts.max_iter)
    assert cb.k == int(ref.iterations[0])
    assert float((cb.y[0] - ref.codes[0]).abs().max()) <= 1e-12 * float(ref.codes.abs().max())
    assert row["x_rho"] == pytest.approx(float(ref.stats[0].rho[-1]), rel=1e-12)
    assert row["objective"] == pytest.approx(float(ref.stats[0].objective[-1]), rel=1e-10)

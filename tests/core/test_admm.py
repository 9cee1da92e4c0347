"""The shared pieces of the ADMM iteration against closed forms and SPORCO's scalar rules:
residuals and tolerances, the adaptive-ρ factor, and the joint coupling."""

import math

import pytest
import torch

from csc.core.admm import PER_IMAGE, Coupling, residuals, rho_factor
from csc.core.options import CBPDNOptions


def _t(*v):
    return torch.tensor(v, dtype=torch.float64)


@pytest.mark.parametrize("std", [False, True])
def test_residuals_closed_form(std):
    o = CBPDNOptions(abs_stop_tol=1e-3, rel_stop_tol=1e-2, std_residuals=std)
    nx, ny, nu, nxy, nyy, rho, n = 3.0, 4.0, 0.5, 0.2, 0.1, 2.0, 100
    r, s, epri, edua = (float(v) for v in residuals(o, _t(nx, ny, nu, nxy, nyy).view(1, 5), _t(rho), n))
    rn, sn = max(nx, ny), rho * nu
    if std:
        want = (nxy, rho * nyy, math.sqrt(n) * 1e-3 + rn * 1e-2, math.sqrt(n) * 1e-3 + sn * 1e-2)
    else:
        want = (nxy / rn, rho * nyy / sn, math.sqrt(n) * 1e-3 / rn + 1e-2, math.sqrt(n) * 1e-3 / sn + 1e-2)
    assert (r, s, epri, edua) == pytest.approx(want, rel=1e-15)


def test_residuals_zero_norms_do_not_divide_by_zero():
    o = CBPDNOptions()
    out = residuals(o, torch.zeros(1, 5, dtype=torch.float64), _t(1.0), 10)
    assert all(bool(torch.isfinite(v).all()) for v in out)


def _sporco_factor(r, s, xi, mu, tau, auto):
    """SPORCO ``ADMM.update_rho``'s multiplier, scalar form."""
    if auto:
        rhomlt = math.sqrt(r / (s * xi) if r > s * xi else (s * xi) / r)
        rhomlt = min(rhomlt, tau)
    else:
        rhomlt = tau
    if r > xi * mu * s:
        return rhomlt
    if s > (mu / xi) * r:
        return 1.0 / rhomlt
    return 1.0


@pytest.mark.parametrize("auto", [True, False])
@pytest.mark.parametrize("r,s", [(1.0, 0.01), (0.01, 1.0), (0.5, 0.4), (3.0, 1e-4)])
def test_rho_factor_matches_sporco(auto, r, s):
    o = CBPDNOptions(auto_scaling=auto, rsdl_ratio=1.2, rho_scaling=1000.0)
    xi = 1.5
    f = rho_factor(o, 5, _t(r), _t(s), xi)
    assert float(f[0]) == pytest.approx(_sporco_factor(r, s, xi, 1.2, 1000.0, auto), rel=1e-15)


def test_rho_factor_period_and_first_iteration():
    o = CBPDNOptions(rho_period=3)
    assert rho_factor(o, 0, _t(1.0), _t(0.1), 1.0) is None       # never at k = 0
    assert rho_factor(o, 1, _t(1.0), _t(0.1), 1.0) is None       # (k + 1) % 3 != 0
    assert rho_factor(o, 2, _t(1.0), _t(0.1), 1.0) is not None
    assert rho_factor(CBPDNOptions(auto_rho=False), 2, _t(1.0), _t(0.1), 1.0) is None


def test_coupling_reduce_and_expand():
    sums = torch.arange(12, dtype=torch.float64).view(3, 4)
    assert torch.equal(PER_IMAGE.reduce(sums), sums)
    joint = Coupling(joint=True)
    assert torch.equal(joint.reduce(sums), sums.sum(0, keepdim=True))
    assert joint.expand(_t(2.0), 3).tolist() == [2.0, 2.0, 2.0]
    assert joint.variables(3, 10) == 30 and Coupling(joint=True, total_images=8).variables(3, 10) == 80
    assert PER_IMAGE.variables(3, 10) == 10
    doubled = Coupling(joint=True, all_reduce=lambda t: 2 * t)  # stands in for a sum over two ranks
    assert torch.equal(doubled.reduce(sums), 2 * sums.sum(0, keepdim=True))

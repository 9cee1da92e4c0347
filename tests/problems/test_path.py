"""λ paths (csc.problems.path.lambda_path): each warm-started solve reaches the cold solve's answer.

The time saved is a benchmark's to report (benchmarks/time_to_accuracy.py --path), not a test's.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from csc.core.options import CBPDNOptions, FISTAOptions
from csc.problems.path import lambda_path

LAMBDAS = [0.02, 0.01, 0.005]


def problem():
    g = torch.Generator().manual_seed(3)
    D = torch.randn(8, 6, 6, generator=g, dtype=torch.float64)
    D /= D.flatten(1).norm(dim=1).view(-1, 1, 1)
    S = torch.randn(1, 20, 20, generator=g, dtype=torch.float64) * 0.1
    return D, S


def final_objective(result) -> np.ndarray:
    return np.array([s.objective[-1] for s in result.stats])


@pytest.mark.parametrize("opts, obj_rtol, codes_rtol", [
    (CBPDNOptions(rel_stop_tol=1e-4, max_iter=3000), 1e-4, 1e-2),
    (FISTAOptions(rel_stop_tol=1e-12, max_iter=5000, L=20.0, backtrack="standard"), 1e-6, None),
], ids=["admm", "fista"])
def test_warm_path_matches_cold_solves(opts, obj_rtol, codes_rtol):
    D, S = problem()
    warm = lambda_path(D, S, LAMBDAS, opts)
    cold = lambda_path(D, S, LAMBDAS, opts, warm_start=False)
    assert warm.lmbdas == LAMBDAS and len(warm.results) == 3
    for w, c in zip(warm.results[1:], cold.results[1:]):
        fw, fc = final_objective(w), final_objective(c)
        np.testing.assert_allclose(fw, fc, rtol=obj_rtol)
        if codes_rtol is not None:
            assert float((w.codes - c.codes).norm() / c.codes.norm()) < codes_rtol
    # the first λ is a cold solve either way; later ones start nearer their solution
    torch.testing.assert_close(warm.results[0].codes, cold.results[0].codes, rtol=0, atol=0)
    assert sum(int(r.iterations.sum()) for r in warm.results) < sum(int(r.iterations.sum()) for r in cold.results)


def test_path_checks_lambdas():
    D, S = problem()
    with pytest.raises(ValueError, match="decreasing"):
        lambda_path(D, S, [0.01, 0.02])
    with pytest.raises(ValueError, match="lmbda"):
        lambda_path(D, S, [])
    with pytest.raises(TypeError, match="options"):
        lambda_path(D, S, [0.1], options=object())

"""The amortised warm start (csc.nn.warmstart, ConvBPDN.solve(warm_start=)).

References: a dense matrix A of the circular synthesis (built column by column from unit
maps) for the consistent dual; a tightly solved (rel_stop_tol 1e-13, tests/nn/helpers.py) float64 CBPDN for the
objective the warm solve must reach; each image solved alone for the batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import csc
from csc.core import ops
from csc.nn.warmstart import (UnrolledISTA, WarmStartOptions, WarmStartPredictor, dictionary_fingerprint,
                              fit_warm_start, load_warm_start, train_warm_start)
from csc.problems.cbpdn import WarmStart, consistent_dual

from .helpers import F64, tight, unit_dictionary

LMBDA = 0.1


def opts(tol: float, **kw) -> csc.CBPDNOptions:
    """ADMM options that converge on these problems (tests/nn/helpers.py: SPORCO's defaults
    oscillate at λ ≈ 0.1 here) stopping at relative residuals ``tol``."""
    return tight(rel_stop_tol=tol, **kw)


def smooth_images(n: int, H: int = 24, seed: int = 3) -> torch.Tensor:
    """Images with structure a dictionary codes sparsely: sums of a few random kernels' shifts."""
    g = torch.Generator().manual_seed(seed)
    D = unit_dictionary(4, 5, seed=0)
    y = torch.zeros(n, 4, H, H, dtype=F64)
    mask = torch.rand(y.shape, generator=g, dtype=F64) < 0.02
    y[mask] = torch.randn(int(mask.sum()), generator=g, dtype=F64)
    return ops.synthesis(D, y) + 0.05 * torch.randn(n, H, H, generator=g, dtype=F64)


def objective(D, S, y, lmbda=LMBDA):
    r = ops.synthesis(D, y) - S
    return 0.5 * r.square().sum((-2, -1)) + lmbda * y.abs().sum((1, 2, 3))


@pytest.fixture(scope="module")
def trained():
    D = unit_dictionary(4, 5, seed=0)
    solver = csc.ConvBPDN(D, LMBDA, opts(1e-4))
    pred, res = fit_warm_start(solver, smooth_images(8, seed=3), options=WarmStartOptions(steps=3, epochs=15),
                               generator=torch.Generator().manual_seed(0), preprocessing={"kind": "none"})
    return D, pred


class Oracle:
    """A warm start that returns given codes and ρ."""

    def __init__(self, y, rho):
        self.y, self.rho = y, rho

    def warm_start(self, images, dictionary, lmbda):
        return self.y, self.rho


def test_consistent_dual_is_the_dense_formula():
    D = unit_dictionary(2, 3, seed=4)
    g = torch.Generator().manual_seed(5)
    S, y = torch.randn(2, 8, 8, generator=g, dtype=F64), torch.randn(2, 2, 8, 8, generator=g, dtype=F64)
    eye = torch.eye(2 * 64, dtype=F64).reshape(-1, 2, 8, 8)
    A = ops.synthesis(D, eye).reshape(-1, 64).T.numpy()  # (64, 128): column j = synthesis of unit map j
    u = consistent_dual(D, S, y, 2.5)
    for i in range(2):
        want = A.T @ (S[i].reshape(-1).numpy() - A @ y[i].reshape(-1).numpy()) / 2.5
        np.testing.assert_allclose(u[i].reshape(-1).numpy(), want, rtol=1e-12, atol=1e-12)


def test_warm_start_from_the_solution_stops_at_once():
    """With y0 the solution and the consistent dual, ADMM is at its fixed point: the first x-step
    returns y0 (the dual's sign is the loop's convention), so it stops in one or two iterations."""
    D, S = unit_dictionary(4, 5, seed=0), smooth_images(2, seed=7)
    ref = csc.ConvBPDN(D, LMBDA, tight()).solve(S)
    assert int(ref.iterations.max()) < 5000
    solver = csc.ConvBPDN(D, LMBDA, opts(1e-4))
    warm = solver.solve(S, warm_start=Oracle(ref.codes, 3.0))
    assert int(warm.iterations.max()) <= 2
    torch.testing.assert_close(warm.codes, ref.codes, rtol=0, atol=1e-8)
    flipped = solver.solve(S, y0=ref.codes, u0=-consistent_dual(D, S, ref.codes, 3.0))  # the wrong sign
    assert int(flipped.iterations.min()) > 2


def test_warm_solve_reaches_the_cold_objective(trained):
    D, pred = trained
    assert isinstance(pred, WarmStart)
    assert pred.record["losses"][-1] < pred.record["losses"][0]
    S = smooth_images(3, seed=11)  # held out: not the training images
    tol = 1e-5
    fstar = objective(D, S, csc.ConvBPDN(D, LMBDA, tight()).solve(S).codes)
    solver = csc.ConvBPDN(D, LMBDA, opts(tol))
    cold, warm = solver.solve(S), solver.solve(S, warm_start=pred)
    for res in (cold, warm):
        gap = (objective(D, S, res.codes) - fstar) / fstar
        assert float(gap.abs().max()) < 10 * tol, gap  # the stopping test at tol: objective within ~tol
    assert int(warm.iterations.max()) < 5000


def test_warm_batch_is_each_image_alone(trained):
    D, pred = trained
    S = smooth_images(3, seed=13)
    solver = csc.ConvBPDN(D, LMBDA, opts(1e-4))
    batch = solver.solve(S, warm_start=pred)
    for i in range(3):
        alone = solver.solve(S[i:i + 1], warm_start=pred)
        torch.testing.assert_close(batch.codes[i:i + 1], alone.codes, rtol=1e-10, atol=1e-10)
        assert int(batch.iterations[i]) == int(alone.iterations[0])


def test_file_round_trip(trained, tmp_path):
    D, pred = trained
    path = pred.save(tmp_path / "ws.npz")
    back = load_warm_start(path, D.float(), LMBDA, preprocessing={"kind": "none"})  # float32 copy: same dictionary
    S = smooth_images(2, seed=17)
    torch.testing.assert_close(back.warm_start(S, D, LMBDA)[0], pred.warm_start(S, D, LMBDA)[0], rtol=0, atol=0)
    assert back.rho == pred.rho and back.options == pred.options and back.preprocessing == {"kind": "none"}
    assert back.metadata() == pred.metadata()
    with np.load(path, allow_pickle=False) as z:  # pickle-free
        assert set(z.files) == {"kernels", "log_step", "log_threshold", "metadata"}


def test_file_refused_for_another_dictionary_or_lambda(trained, tmp_path):
    D, pred = trained
    path = pred.save(tmp_path / "ws.npz")
    with pytest.raises(ValueError, match="another dictionary"):
        load_warm_start(path, unit_dictionary(4, 5, seed=9), LMBDA)
    with pytest.raises(ValueError, match="λ = 0.1, not 0.2"):
        load_warm_start(path, D, 0.2)
    with pytest.raises(ValueError, match="preprocessed"):
        load_warm_start(path, D, LMBDA, preprocessing={"kind": "highpass"})
    other = csc.ConvBPDN(unit_dictionary(4, 5, seed=9), LMBDA, opts(1e-3))
    with pytest.raises(ValueError, match="warm_start: the predictor was trained for another dictionary"):
        other.solve(smooth_images(1), warm_start=pred)
    with pytest.raises(ValueError, match="not 0.3"):
        csc.ConvBPDN(D, 0.3).solve(smooth_images(1), warm_start=pred)
    np.savez(tmp_path / "dict.npz", kernels=D.numpy())
    with pytest.raises(ValueError, match="not a csc warm-start file"):
        load_warm_start(tmp_path / "dict.npz", D, LMBDA)


def test_training_is_reproducible_from_the_generator():
    D = unit_dictionary(3, 5, seed=0)
    S = smooth_images(4, H=16, seed=5)
    Y = csc.ConvBPDN(D, LMBDA, opts(1e-3)).solve(S).codes
    wopts = WarmStartOptions(steps=2, epochs=3, batch_size=2)
    a, b = (train_warm_start(S, Y, D, LMBDA, 2.0, options=wopts, generator=torch.Generator().manual_seed(1))
            for _ in range(2))
    for name in ("kernels", "log_step", "log_threshold"):
        torch.testing.assert_close(getattr(a.model, name), getattr(b.model, name), rtol=0, atol=0)
    assert a.record["losses"] == b.record["losses"]


def test_untrained_predictor_is_ista():
    """At initialisation the predictor is T steps of ISTA with step 1/L (L on its 64×64 grid)."""
    D, S = unit_dictionary(3, 5, seed=0), smooth_images(2, H=64, seed=5)
    model = UnrolledISTA(D, LMBDA, steps=3)
    L = float(ops.gram_diagonal(ops.kernel_dft(D, (64, 64))).max())
    y = torch.zeros(2, 3, 64, 64, dtype=F64)
    for _ in range(3):
        grad = torch.fft.irfft2(ops.adjoint_dft(ops.kernel_dft(D, (64, 64)), torch.fft.rfft2(
            ops.synthesis(D, y) - S)), s=(64, 64))
        v = y - grad / L
        y = torch.sign(v) * torch.clamp(v.abs() - LMBDA / L, min=0)
    with torch.no_grad():
        torch.testing.assert_close(model(S), y, rtol=1e-10, atol=1e-12)


def test_bad_arguments(trained):
    D, pred = trained
    S = smooth_images(2)
    solver = csc.ConvBPDN(D, LMBDA)
    with pytest.raises(TypeError, match="warm_start: expected an object with a warm_start"):
        solver.solve(S, warm_start=object())
    with pytest.raises(ValueError, match="warm_start: give a warm start or y0/u0"):
        solver.solve(S, y0=torch.zeros(2, 4, 24, 24, dtype=F64), warm_start=pred)
    with pytest.raises(ValueError, match=r"warm_start's codes: expected shape \(2, 4, 24, 24\)"):
        solver.solve(S, warm_start=Oracle(torch.zeros(2, 3, 24, 24, dtype=F64), 1.0))
    with pytest.raises(ValueError, match="warm_start's rho"):
        solver.solve(S, warm_start=Oracle(torch.zeros(2, 4, 24, 24, dtype=F64), -1.0))
    colour = csc.ConvBPDN(torch.randn(4, 3, 5, 5, dtype=F64), LMBDA)
    with pytest.raises(ValueError, match="single-channel dictionary"):
        colour.solve(torch.randn(1, 3, 24, 24, dtype=F64), warm_start=pred)
    Y = torch.zeros(2, 4, 24, 24, dtype=F64)
    with pytest.raises(ValueError, match="codes: expected shape"):
        train_warm_start(S, Y[:, :3], D, LMBDA, 1.0)
    with pytest.raises(TypeError, match="generator"):
        train_warm_start(S, Y, D, LMBDA, 1.0, generator=0)
    with pytest.raises(ValueError, match="rho"):
        train_warm_start(S, Y, D, LMBDA, 0.0)
    with pytest.raises(ValueError, match="steps"):
        WarmStartOptions(steps=0)
    with pytest.raises(TypeError, match="options"):
        train_warm_start(S, Y, D, LMBDA, 1.0, options={"steps": 2})
    with pytest.raises(TypeError, match="solver"):
        fit_warm_start(object(), S)
    assert isinstance(pred, WarmStartPredictor) and dictionary_fingerprint(D) == dictionary_fingerprint(D.float())

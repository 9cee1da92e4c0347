"""The backward's block-Jacobi preconditioner against dense matrices: its blocks are the
blocks of M built column by column from the operator, so with one tile over the whole
image it is M⁻¹ itself; and PCG gives the dense solve's v in fewer iterations."""

from __future__ import annotations

import pytest
import torch

import csc
from csc.core import ops
from csc.nn.implicit import (CGOptions, L2Term, SpectralTerm, SupportNormalOperator, conjugate_gradient,
                             implicit_gradients, _preconditioner)
from csc.nn.precondition import BlockJacobi, kernel_correlations
from csc.nn.support import PatchOperator, Support

F64 = torch.float64


def _problem(K=4, C=None, H=14, W=12, k=5, density=0.15, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape = (K, k, k) if C is None else (K, C, k, k)
    D = torch.randn(shape, generator=g, dtype=F64)
    support = torch.rand((2, K, H, W), generator=g, dtype=F64) < density
    return D, support, g


def _dense(op, support):
    """M as a dense matrix over the support's coefficients (flat order), from the operator."""
    flat = support.flatten().nonzero().flatten()
    cols = []
    for f in flat:
        e = torch.zeros(support.numel(), dtype=F64)
        e[f] = 1
        cols.append(op(e.reshape(support.shape)).flatten()[flat])
    return torch.stack(cols, 1), flat


def _op(D, support, mu=0.0, term=None, ridge=0.0):
    H, W = support.shape[-2:]
    return SupportNormalOperator(ops.kernel_dft(D, (H, W)), (H, W), support, None, ridge, term, mu)


def test_kernel_correlations_are_the_circular_correlations():
    D, _, _ = _problem(K=3, k=4)
    for shape in ((6, 5), (20, 20)):  # the small grid wraps; the large one equals the image grid's
        table, grid = kernel_correlations(D, shape, 4)
        full = torch.fft.irfft2(ops.kernel_dft(D, shape).conj()[:, None] * ops.kernel_dft(D, shape)[None], s=shape)
        for di in range(-3, 4):
            for dj in range(-3, 4):
                assert torch.allclose(table[:, :, di % grid[0], dj % grid[1]], full[:, :, di % shape[0], dj % shape[1]],
                                      atol=1e-12)


@pytest.mark.parametrize("case", ["plain", "elastic", "gradreg", "multichannel", "wrap"])
def test_one_tile_over_the_image_is_the_exact_inverse(case):
    C = 3 if case == "multichannel" else None
    H, W = (6, 7) if case == "wrap" else (14, 12)
    D, support, g = _problem(C=C, H=H, W=W, density=0.06 if case != "wrap" else 0.1)
    term, mu, spectral, shift = None, 0.0, None, 1e-3
    if case == "elastic":
        term, mu, shift = L2Term(), 0.3, 0.3 + 1e-3
    if case == "gradreg":
        P = torch.rand((4, H, W // 2 + 1), generator=g, dtype=F64)
        term, mu, spectral, shift = SpectralTerm(P, (H, W)), 0.5, 0.5 * P, 1e-3
    op = _op(D, support, mu, term, ridge=1e-3)  # a ridge keeps the random support's M invertible
    M, flat = _dense(op, support)
    sup = Support(support, tile=max(H, W), max_block=10_000)
    pre = BlockJacobi(D, sup, max(H, W), shift=shift, spectral=spectral)
    # blocks are per image row: M is block diagonal over the two rows as well
    rhs = torch.randn(support.shape, generator=g, dtype=F64) * support
    z = sup.scatter(pre(sup.gather(rhs))).flatten()
    assert torch.allclose(z[flat], torch.linalg.solve(M, rhs.flatten()[flat]), rtol=1e-9, atol=1e-9)


def test_blocks_are_the_diagonal_blocks_of_m():
    D, support, g = _problem(H=16, W=16, density=0.3)
    op = _op(D, support, ridge=0.0)
    M, flat = _dense(op, support)
    sup = Support(support, tile=4, max_block=5)
    pre = BlockJacobi(D, sup, 4)
    # each block's members: M restricted to them is L Lᵀ (up to the jitter on the diagonal)
    for b in range(sup.members.shape[0]):
        mem = sup.members[b][sup.members[b] >= 0]
        idx = torch.searchsorted(flat, sup.flat[mem])
        inverse = pre.inverse[b, :len(mem), :len(mem)]
        assert torch.allclose(inverse @ M[idx][:, idx], torch.eye(len(mem), dtype=F64), atol=1e-8)
        assert len(mem) <= 5
        # one tile: all within 4×4 pixels of one row
        assert sup.row[mem].unique().numel() == 1
        assert (sup.i[mem] // 4).unique().numel() == 1 and (sup.j[mem] // 4).unique().numel() == 1
    # every support coefficient is in exactly one block
    got = sup.flat[sup.members[sup.members >= 0]].sort().values
    assert torch.equal(got, flat)


def test_pcg_gives_the_dense_solution_in_fewer_iterations():
    """The paper's kind of dictionary: smooth, coherent log-Gabor kernels at neighbouring pixels."""
    D = csc.load_dictionary("heterogeneous", dtype=F64)[::4]  # 36 kernels, 12×12
    g = torch.Generator().manual_seed(3)
    support = torch.rand((1, D.shape[0], 24, 24), generator=g, dtype=F64) < 0.01
    op = _op(D, support, ridge=0.0)
    M, flat = _dense(op, support)
    rhs = torch.randn(support.shape, generator=g, dtype=F64) * support
    exact = torch.linalg.solve(M, rhs.flatten()[flat])
    runs = {}
    sup = Support(support, 8, 64)
    for name in ("none", "block"):
        prec = _preconditioner(D, op, sup, CGOptions(preconditioner=name))
        v, it, done = conjugate_gradient(PatchOperator(D, sup, None, 0.0), sup.gather(rhs), None, 1e-11, 5000, 10, prec,
                                         sup.dot, sup.per_problem)
        assert bool(done.all()), name
        assert torch.allclose(sup.scatter(v).flatten()[flat], exact, rtol=1e-7, atol=1e-8 * exact.abs().max()), name
        runs[name] = int(it[0])
    assert runs["block"] < runs["none"] / 2, runs


def test_gradients_do_not_depend_on_the_preconditioner():
    D, _, g = _problem(K=3, H=12, W=12, k=4, seed=5)
    S = torch.randn((2, 12, 12), generator=g, dtype=F64)
    x = csc.ConvBPDN(D, 0.2, csc.CBPDNOptions(rel_stop_tol=1e-12, max_iter=5000)).solve(S).codes
    grad = torch.randn(x.shape, generator=g, dtype=F64)
    outs = [implicit_gradients(S, D, x, grad, l1_weight=1.0, mask=None, mu=0.0, needs=(True, True, True, False, False),
                               cg=CGOptions(preconditioner=name, operator=how, tol=1e-13))
            for name, how in (("none", "fft"), ("block", "patches"), ("block", "fft"))]
    for other in outs[1:]:
        for a, b in zip(outs[0][:3], other[:3]):
            assert torch.allclose(a, b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("bad", [dict(preconditioner="jacobi"), dict(tile=0), dict(max_block=1.5),
                                 dict(operator="dense")])
def test_bad_preconditioner_options(bad):
    with pytest.raises(ValueError, match="CGOptions." + next(iter(bad))):
        CGOptions(**bad)


def test_empty_support():
    D, support, _ = _problem()
    sup = Support(torch.zeros_like(support), 8, 64)
    assert sup.size == 0 and (BlockJacobi(D, sup, 8)(torch.zeros(0, dtype=F64)) == 0).all()


@pytest.mark.parametrize("case", ["plain", "mask", "multichannel", "elastic", "gradreg", "joint"])
def test_patch_operator_is_the_fft_operator(case):
    """M applied patch by patch on the compact support equals the FFT operator's M."""
    C = 3 if case == "multichannel" else None
    H, W = 13, 11
    D, support, g = _problem(C=C, H=H, W=W, density=0.2)
    weight2 = term = None
    mu, rows = 0.0, 1
    if case == "mask":
        weight2 = torch.rand((2, H, W), generator=g, dtype=F64) ** 2
    if case == "elastic":
        term, mu = L2Term(), 0.7
    if case == "gradreg":
        term, mu = SpectralTerm(torch.rand((1, H, W // 2 + 1), generator=g, dtype=F64), (H, W)), 0.4
    if case == "joint":  # the two rows are one image's two channels, coupled by the groups
        from csc.nn.implicit import GroupTerm
        xs = torch.randn(support.shape, generator=g, dtype=F64) * support
        term, mu, rows = GroupTerm(xs, 2, 0.5), 0.3, 2
    fft = SupportNormalOperator(ops.kernel_dft(D, (H, W)), (H, W), support, weight2, 0.01, term, mu)
    sup = Support(support, 4, 7, rows)
    patches = PatchOperator(D, sup, weight2, 0.01, term, mu)
    v = torch.randn(sup.size, generator=g, dtype=F64)
    assert torch.allclose(patches(v), sup.gather(fft(sup.scatter(v))), rtol=1e-11, atol=1e-12)
    assert torch.allclose(patches.synthesis(v), fft.synthesis(sup.scatter(v)), atol=1e-12)
    assert sup.n_problems == 2 // rows


def test_float32_inputs_reach_the_tolerance_in_the_true_residual():
    """CG in float64 (the default) for float32 inputs: the residual recomputed from the
    returned v, not only CG's recursive one, is below the float32 tolerance."""
    from csc.nn import BackwardRecord
    from csc.nn.functional import conv_sparse_code
    D = csc.load_dictionary("heterogeneous", dtype=torch.float32)[::3]
    S = torch.randn((1, 32, 32), generator=torch.Generator().manual_seed(2)) * 0.2
    record = BackwardRecord()
    Dp = D.clone().requires_grad_(True)
    codes = conv_sparse_code(S, Dp, 0.05, csc.CBPDNOptions(rel_stop_tol=1e-3, max_iter=3000), cg=CGOptions(),
                             record=record)
    codes.sum().backward()
    assert record.converged and float(record.relative_residual.max()) <= record.tol == 1e-5
    assert Dp.grad.dtype == torch.float32 and torch.isfinite(Dp.grad).all()

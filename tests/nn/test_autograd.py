"""What autograd users expect of conv_sparse_code: batches, float32, no_grad, saved memory,
host reads, the backward's record, CG options, and errors that name the argument."""

from __future__ import annotations

import io

import pytest
import torch

import csc
from csc.nn import BackwardRecord, CGOptions, ConvSparseCode, conv_sparse_code
from csc.runtime.sync import count_syncs

from .helpers import images, tight, unit_dictionary

K, H = 4, 16
F64 = torch.float64


def _grads(S, D, lmbda, options, G=None, **kw):
    leaves = [S.clone().requires_grad_(), D.clone().requires_grad_(),
              torch.tensor(lmbda, dtype=S.dtype, requires_grad=True)]
    codes = conv_sparse_code(*leaves, options, **kw)
    if G is None:
        G = torch.randn(codes.shape, generator=torch.Generator().manual_seed(1), dtype=F64).to(S.dtype)
    return codes.detach(), torch.autograd.grad((codes * G).sum(), leaves), G


def _assert_batch_equals_each_alone(S, D, options, **kw):
    """A batch's codes and gradients equal each image's alone (the dictionary's and λ's summed):
    the same CG per image, up to the FFTs' rounding (batched or not), amplified by
    cond(A_SᵀA_S) within the CG tolerance 1e-10: measured ≤ 2e-11."""
    codes, (gS, gD, gl), G = _grads(S, D, 0.3, options, **kw)
    alone = [_grads(S[i:i + 1], D, 0.3, options, G=G[i:i + 1], **kw) for i in range(S.shape[0])]
    assert torch.allclose(codes, torch.cat([a[0] for a in alone]), rtol=0, atol=1e-12)
    rel = lambda a, b: float((a - b).norm() / b.norm())  # noqa: E731
    for i in range(S.shape[0]):
        assert rel(gS[i], alone[i][1][0][0]) < 1e-9
    assert rel(gD, sum(a[1][1] for a in alone)) < 1e-9
    assert rel(gl, sum(a[1][2] for a in alone)) < 1e-9


def test_batch_gradients_equal_each_image_alone():
    S, D = images(3, H), unit_dictionary(K)
    S[1] *= 0.3  # different supports
    _assert_batch_equals_each_alone(S, D, tight())


def test_joint_batch_gradients_equal_each_image_alone():
    """Joint sparsity: each image's C channels are one CG problem; a batch's images are not."""
    g = torch.Generator().manual_seed(3)
    S, D = torch.randn(2, 3, H, H, generator=g, dtype=F64), unit_dictionary(K)
    S[1] *= 0.5
    _assert_batch_equals_each_alone(S, D, tight(csc.CBPDNJointOptions), mu=0.2)


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_float32_gradients_match_float64(backend):
    """float32 forward to rel_stop_tol 1e-6 and CG to its float32 default (1e-5): the same
    support as float64 and the gradients within 1e-4 of float64's (measured ~3e-5: float32
    rounding times the conditioning of A_SᵀA_S)."""
    S, D = images(2, H), unit_dictionary(K)
    c64, g64, G = _grads(S, D, 0.3, tight())
    opts = csc.CBPDNOptions(rel_stop_tol=1e-6, max_iter=5000, rsdl_target=1.0, rho_period=10, relax=1.0,
                            backend=backend)
    record = BackwardRecord()
    c32, g32, _ = _grads(S.float(), D.float(), 0.3, opts, G=G.float(), record=record)
    assert all(g.dtype == torch.float32 for g in g32)
    assert torch.equal(c32 != 0, c64 != 0)
    assert record.converged and record.tol == 1e-5
    for name, a, b in zip(("images", "dictionary", "lmbda"), g32, g64):
        err = float((a.double() - b).norm() / b.norm())
        assert err < 1e-4, f"{name}: {err:.2e}"


def test_no_grad_is_the_solve():
    S, D = images(2, H), unit_dictionary(K).requires_grad_()
    opts = tight()
    with torch.no_grad():
        codes = conv_sparse_code(S, D, 0.3, opts)
    assert codes.grad_fn is None and not codes.requires_grad
    assert torch.equal(codes, csc.ConvBPDN(D.detach(), 0.3, opts).solve(S).codes)


def test_saved_memory_does_not_depend_on_max_iter():
    """What the graph keeps for backward is the images, the kernels, the codes and λ: the same
    bytes after 20 or 400 forward iterations."""
    S, D = images(2, H), unit_dictionary(K)

    def saved_bytes(max_iter):
        total = []

        def pack(t):
            total.append(t.numel() * t.element_size())
            return t

        opts = csc.CBPDNOptions(rel_stop_tol=0.0, max_iter=max_iter, record_stats=False)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            codes = conv_sparse_code(S, D.clone().requires_grad_(), 0.3, opts, require_converged=False)
        codes.sum().backward()
        return sum(total)

    expected = (S.numel() + D.numel() + 2 * K * H * H + 1) * 8  # images, kernels, codes (n, K, H, W), λ
    assert saved_bytes(20) == saved_bytes(400) <= expected


def test_host_reads_once_per_check_interval():
    """The CG reads the device once per ``check_every`` iterations: 40 more iterations at
    check_every 10 are 4 more reads (tol tiny: it never stops early)."""
    S, D = images(2, H), unit_dictionary(K)
    codes, _, _ = _grads(S, D, 0.3, tight())

    def reads(max_iter):
        cg = CGOptions(tol=1e-300 ** 0.5, max_iter=max_iter, check_every=10, on_not_converged="ignore")
        leaves = [S.clone().requires_grad_(), D, torch.tensor(0.3, dtype=F64)]
        out = conv_sparse_code(*leaves, tight(), cg=cg)
        with count_syncs() as counter:
            out.sum().backward()
        return counter.by_site.get("cg.active", 0)

    assert reads(60) - reads(20) == 4


def test_record_and_warm_start():
    S, D = images(2, H), unit_dictionary(K)
    record = BackwardRecord()
    codes, _, G = _grads(S, D, 0.3, tight(), record=record)
    assert record.converged and record.ridge == 0.0 and record.tol == 1e-10
    assert record.support.tolist() == (codes != 0).flatten(1).sum(1).tolist()
    assert (record.iterations > 0).all() and (record.relative_residual < 1e-9).all()
    cold = record.iterations.clone()
    warm = BackwardRecord()
    cg = CGOptions(warm_start=True)
    _, g1, _ = _grads(S, D, 0.3, tight(), G=G, record=warm, cg=cg)
    _, g2, _ = _grads(S, D, 0.3, tight(), G=G, record=warm, cg=cg)  # starts from the first's adjoint
    assert (warm.iterations < cold).all()
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, rtol=1e-8, atol=1e-12)


def test_ridge_is_reported_and_biases_the_gradient():
    S, D = images(1, H), unit_dictionary(K)
    _, exact, G = _grads(S, D, 0.3, tight())
    record = BackwardRecord()
    _, ridged, _ = _grads(S, D, 0.3, tight(), G=G, record=record, cg=CGOptions(ridge=1e-2))
    assert record.ridge == 1e-2
    assert not torch.allclose(exact[0], ridged[0], rtol=1e-6)


def test_cg_not_converged_warns_or_raises():
    S, D = images(1, H), unit_dictionary(K)
    with pytest.warns(RuntimeWarning, match="did not reach CGOptions tol"):
        _grads(S, D, 0.3, tight(), cg=CGOptions(max_iter=2))
    with pytest.raises(RuntimeError, match="did not reach CGOptions tol"):
        _grads(S, D, 0.3, tight(), cg=CGOptions(max_iter=2, on_not_converged="raise"))


def test_unconverged_forward_raises_when_a_gradient_is_wanted():
    S, D = images(1, H), unit_dictionary(K).requires_grad_()
    opts = csc.CBPDNOptions(max_iter=5, rel_stop_tol=1e-12)
    with pytest.raises(RuntimeError, match=r"ConvBPDN solve stopped at options.max_iter=5 .*primal"):
        conv_sparse_code(S, D, 0.3, opts)
    codes = conv_sparse_code(S, D, 0.3, opts, require_converged=False)  # asked for: no error
    codes.sum().backward()
    with torch.no_grad():
        conv_sparse_code(S, D, 0.3, opts)  # no gradient wanted: no check


@pytest.mark.parametrize("options,name", [(csc.L1L1GrdOptions(max_iter=5), "ConvL1L1Grd")])
def test_problems_without_a_rule_refuse_requires_grad(options, name):
    S, D = images(1, H), unit_dictionary(K)
    with pytest.raises(NotImplementedError, match=f"{name} .*has no implicit gradient"):
        conv_sparse_code(S.requires_grad_(), D, 0.3, options, mu=0.1)
    codes = conv_sparse_code(S.detach(), D, 0.3, options, mu=0.1)  # the forward runs
    assert codes.shape[-3:] == (K, H, H) and codes.numel() == K * H * H


@pytest.mark.parametrize("call,exc,match", [
    (lambda S, D: conv_sparse_code(S, D, -0.1), ValueError, "lmbda"),
    (lambda S, D: conv_sparse_code(S, D.float(), 0.1), TypeError, "dictionary"),
    (lambda S, D: conv_sparse_code(S.numpy(), D, 0.1), TypeError, "images"),
    (lambda S, D: conv_sparse_code(S, D, 0.1, csc.CBPDNOptions(), mask=torch.ones(H, H)), ValueError, "mask"),
    (lambda S, D: conv_sparse_code(S, D, 0.1, csc.MaskDcplOptions(), mu=0.2), ValueError, "mu"),
    (lambda S, D: conv_sparse_code(S, D, 0.1, csc.CBPDNOptions(dtype=torch.float32)), ValueError, "options.dtype"),
    (lambda S, D: conv_sparse_code(S, D, 0.1, csc.DictLearnOptions()), TypeError, "options"),
    (lambda S, D: CGOptions(tol=2.0), ValueError, "CGOptions.tol"),
    (lambda S, D: CGOptions(max_iter=0), ValueError, "CGOptions.max_iter"),
    (lambda S, D: CGOptions(on_not_converged="maybe"), ValueError, "CGOptions.on_not_converged"),
    (lambda S, D: ConvSparseCode(D, 0.1, constraint="sphere"), ValueError, "constraint"),
    (lambda S, D: ConvSparseCode(D, 0.0, learn_lmbda=True), ValueError, "lmbda"),
    (lambda S, D: conv_sparse_code(S, D.unsqueeze(1).expand(-1, 3, -1, -1), 0.1), ValueError, "images: a dictionary of 3"),
    (lambda S, D: conv_sparse_code(S.requires_grad_(), D.unsqueeze(1), 0.1, None, mask=torch.ones(H, H)),
     NotImplementedError, "mask"),
])
def test_errors_name_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call(images(1, H), unit_dictionary(K))


def test_module_in_sequential_and_state_dict():
    S = images(2, H)
    layer = ConvSparseCode(unit_dictionary(K), 0.3, tight(), learn_lmbda=True)
    model = torch.nn.Sequential(layer, torch.nn.Flatten(), torch.nn.Linear(K * H * H, 3, dtype=F64))
    model(S).square().sum().backward()
    assert layer.dictionary.grad is not None and layer.log_lmbda.grad is not None
    assert layer.record.converged
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    other = torch.nn.Sequential(ConvSparseCode(torch.zeros(K, 5, 5, dtype=F64), 1.0, tight(), learn_lmbda=True),
                                torch.nn.Flatten(), torch.nn.Linear(K * H * H, 3, dtype=F64))
    other.load_state_dict(torch.load(io.BytesIO(buf.getvalue())))
    assert torch.equal(other[0].dictionary, layer.dictionary) and torch.allclose(other[0].lmbda, layer.lmbda)
    with torch.no_grad():
        assert torch.equal(other(S), model(S))


def test_module_constraints():
    D = 2.0 * unit_dictionary(K)
    proj = ConvSparseCode(D, 0.3, tight(), constraint="unit_norm")
    proj(images(1, H))  # projects before the solve
    assert torch.allclose(proj.dictionary.detach().flatten(1).norm(dim=1), torch.ones(K, dtype=F64))
    assert not proj.project_(atol=1e-12)  # already on the sphere: untouched
    ball = ConvSparseCode(0.5 * unit_dictionary(K), 0.3, tight(), constraint="unit_ball")
    assert not ball.project_()  # inside the ball
    norm = ConvSparseCode(D, 0.3, tight(), constraint="normalize")
    codes = norm(images(1, H))
    assert torch.equal(norm.dictionary, D)  # the parameter is free; the solve uses d / ‖d‖
    ref = conv_sparse_code(images(1, H), unit_dictionary(K), 0.3, tight())
    assert torch.allclose(codes, ref, rtol=0, atol=1e-10)
    codes.sum().backward()
    radial = (norm.dictionary.grad * D).flatten(1).sum(1)  # d/‖d‖ is scale-invariant
    assert torch.allclose(radial, torch.zeros(K, dtype=F64), atol=1e-9)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_cpu(dtype):
    S, D = images(2, H, dtype=dtype), unit_dictionary(K, dtype=dtype)
    opts = csc.CBPDNOptions(rel_stop_tol=1e-6 if dtype == torch.float32 else 1e-13, max_iter=5000,
                            rsdl_target=1.0, rho_period=10, relax=1.0, record_stats=False)
    c_cpu, g_cpu, G = _grads(S, D, 0.3, opts)
    c_gpu, g_gpu, _ = _grads(S.cuda(), D.cuda(), 0.3, opts, G=G.cuda())
    assert torch.equal(c_gpu.cpu() != 0, c_cpu != 0)
    for a, b in zip(g_gpu, g_cpu):
        assert a.device.type == "cuda"
        assert float((a.cpu() - b).norm() / b.norm()) < (1e-4 if dtype == torch.float32 else 1e-9)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_backward_peak_memory_does_not_depend_on_max_iter():
    """The backward's peak allocation above what the graph holds is the CG's few code-sized
    tensors, whatever the forward's iteration count (a first run warms the FFT plans)."""
    S, D = images(2, H).cuda(), unit_dictionary(K).cuda()

    def peak(max_iter):
        opts = csc.CBPDNOptions(rel_stop_tol=0.0, max_iter=max_iter, record_stats=False)
        codes = conv_sparse_code(S, D.clone().requires_grad_(), 0.3, opts, require_converged=False,
                                 cg=CGOptions(on_not_converged="ignore"))
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        codes.sum().backward()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base

    peak(20)
    assert peak(20) == peak(400)


def test_module_learns_kernel_weights():
    """learn_kernel_weights: w_k = exp(log w_k) reach the solve as the ℓ1 weights and get a gradient."""
    S, D = images(2, H), unit_dictionary(K)
    layer = ConvSparseCode(D, 0.3, tight(), learn_kernel_weights=True)
    assert torch.equal(layer.kernel_weights.detach(), torch.ones(K, dtype=F64))
    with torch.no_grad():
        layer.log_kernel_weight[1] = 1.0
    codes = layer(S)
    expect = csc.ConvBPDN(D, 0.3, tight(l1_weight=layer.kernel_weights.detach().numpy())).solve(S).codes
    assert torch.allclose(codes.detach(), expect, rtol=0, atol=1e-12)
    codes.square().sum().backward()
    assert layer.log_kernel_weight.grad is not None and bool(layer.log_kernel_weight.grad.ne(0).any())
    assert "log_kernel_weight" in layer.state_dict()

"""The CUDA path on a GPU (skipped without one; benchmarks/gpu/check.sh runs it first): the
compiled back end (Triton) against the CPU's torch loop in float64, the host reads per
iteration on the device, and the out-of-memory split with a budget too small for the batch."""

import pytest
import torch

import csc
from csc.backends.compiled import compile_available
from csc.runtime.memory import MemoryBudget
from csc.runtime.sync import count_syncs

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def _problem(n=3):
    g = torch.Generator().manual_seed(0)
    D = torch.randn(8, 6, 6, generator=g, dtype=torch.float64)
    D /= D.flatten(1).norm(dim=1).view(-1, 1, 1)
    scale = torch.tensor([1.0, 0.1, 3.0], dtype=torch.float64)[:n].view(-1, 1, 1)
    return D, torch.randn(n, 32, 32, generator=g, dtype=torch.float64) * scale


def test_auto_picks_the_compiled_back_end_on_cuda():
    from csc.backends.registry import select_backend

    want = "compiled" if compile_available(torch.device("cuda")) else "torch"
    assert select_backend("auto", torch.device("cuda")) == want


@pytest.mark.parametrize("backend", ["compiled", "torch"])
def test_cuda_equals_the_cpu_torch_loop(backend):
    if backend == "compiled" and not compile_available(torch.device("cuda")):
        pytest.skip("torch.compile cannot build CUDA kernels here (no triton)")
    D, S = _problem()
    kw = dict(max_iter=150, rel_stop_tol=2e-2, nonneg=True, no_boundary_cross=True)
    ref = csc.ConvBPDN(D, 0.05, csc.CBPDNOptions(backend="torch", **kw)).solve(S)
    got = csc.ConvBPDN(D, 0.05, csc.CBPDNOptions(backend=backend, device="cuda", **kw)).solve(S)
    assert got.iterations.tolist() == ref.iterations.tolist()
    err = (got.codes.cpu() - ref.codes).abs().max() / ref.codes.abs().max()
    assert err <= 1e-12
    for a, b in zip(ref.stats, got.stats):
        assert abs(a.objective - b.objective).max() <= 1e-12 * abs(a.objective).max()


def test_cuda_host_reads_per_sync_interval():
    D, S = _problem()
    counts = []
    for n in (20, 40):
        opts = csc.CBPDNOptions(max_iter=n, rel_stop_tol=0, record_stats=False, device="cuda", sync_interval=10)
        with count_syncs() as c:
            csc.ConvBPDN(D, 0.05, opts).solve(S)
        counts.append(c.total)
    assert counts[1] - counts[0] <= 2


def test_cuda_budget_split_equals_one_batch():
    D, S = _problem()
    kw = dict(max_iter=40, rel_stop_tol=1e-2, device="cuda", backend="torch")
    whole = csc.encode(S, D, 0.05, **kw)
    split = csc.encode(S, D, 0.05, memory=MemoryBudget(limit_bytes=1), **kw)
    assert torch.allclose(whole, split, rtol=0, atol=1e-13 * float(whole.abs().max()))

"""Passes over the coefficient maps and launches of one iteration, counted on the real code
(csc.backends.counting): the counter against closed forms, then the torch loop against the
compiled back end, whose maps are touched only by its FFTs and its three fused kernels."""

import pytest
import torch

from csc.backends.compiled import compile_available
from csc.backends.counting import _AtenCounter, count_iteration


def test_the_counter_counts_bytes_and_launches_of_aten_calls():
    a, b = torch.ones(100, dtype=torch.float64), torch.ones(100, dtype=torch.float64)
    with _AtenCounter(map_numel=100) as c:
        d = a + b          # reads 2, writes 1
        a.mul_(2.0)        # reads 1, writes 1
        torch.sub(a, b, out=d)  # reads 2, writes 1 (out= is not read)
        a.view(10, 10)     # a view: free
    assert c.launches == 3
    assert c.bytes == (3 + 2 + 3) * 100 * 8
    assert c.map_ops == {"add": 1, "mul_": 1, "sub": 1}


def test_torch_loop_iteration_is_counted():
    c = count_iteration("torch", n=2, K=4, H=16, W=16)
    assert c.compiled == {}
    assert c.ops["_fft_r2c"] == 1 and c.ops["_fft_c2r"] == 1
    assert c.map_passes > 20 and c.launches > 30  # one pass per elementwise op


@pytest.mark.skipif(not compile_available(torch.device("cpu")), reason="torch.compile cannot build CPU kernels here")
def test_compiled_iteration_touches_the_maps_only_in_its_ffts_and_three_kernels_and_bookkeeps_in_one():
    torch_loop = count_iteration("torch", n=2, K=4, H=16, W=16, sync_interval=10)
    compiled = count_iteration("compiled", n=2, K=4, H=16, W=16, sync_interval=10)
    assert set(compiled.compiled) == {"shift", "xstep", "ystep", "bookkeeping"}  # once each: no rescale/finish pass
    assert compiled.compiled["bookkeeping"]["bytes"] < 0.01 * compiled.map_passes * 2 * 4 * 16 * 16 * 8  # per image only
    assert compiled.map_ops == {"_fft_r2c": 1, "_fft_c2r": 1}
    assert all(k["kernels"] >= 1 and k["bytes"] > 0 for k in compiled.compiled.values())
    assert compiled.map_passes < 0.6 * torch_loop.map_passes
    assert compiled.launches < 0.4 * torch_loop.launches  # the bookkeeping is one kernel, not ~40 small ones

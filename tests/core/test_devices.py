"""The working device of a solve: the images' (unless ``options.device`` says otherwise), the
dictionary and the solver's other constants copied there once (csc.core.checks.working_device,
DeviceCopies). CPU tests of the rule and the cache (meta tensors stand for another device);
CUDA tests of the solvers with CPU/numpy dictionaries, weights and masks given CUDA images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import csc
from csc.core import cbpdn as cbpdn_module
from csc.core.checks import DeviceCopies, on_device, working_device
from csc.runtime.memory import MemoryBudget

CPU, META = torch.device("cpu"), torch.device("meta")
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture
def D():
    g = torch.Generator().manual_seed(3)
    d = torch.randn(4, 5, 5, generator=g, dtype=torch.float64)
    return d / d.flatten(1).norm(dim=1).reshape(-1, 1, 1)


@pytest.fixture
def S():
    return torch.randn(2, 16, 16, generator=torch.Generator().manual_seed(4), dtype=torch.float64)


# ------------------------------------------------------------------ the rule (CPU)
def test_working_device_images_then_dictionary():
    on_meta = torch.empty(2, 8, 8, device="meta")
    assert working_device(on_meta, None, CPU) == META  # a tensor's device wins over the dictionary's
    assert working_device(np.zeros((2, 8, 8)), None, META) == META  # an array has none: the dictionary's
    assert working_device([[0.0]], None, None) == CPU


def test_working_device_option_overrides():
    on_meta = torch.empty(2, 8, 8, device="meta")
    assert working_device(on_meta, "cpu", META) == CPU
    assert working_device(np.zeros((2, 8, 8)), torch.device("meta"), CPU) == META
    assert isinstance(working_device(on_meta, "cpu", META), torch.device)


# ------------------------------------------------------------------ moved once (CPU)
def test_on_device_copies_once_per_source():
    copies = DeviceCopies()
    t = torch.ones(3)
    assert on_device(copies, "d", t, CPU) is t and len(copies) == 0  # already there: no copy, nothing kept
    first = on_device(copies, "d", t, META)
    assert first.device == META and t.device == CPU
    assert on_device(copies, "d", t, META) is first and len(copies) == 1  # the second ask reuses it
    other = torch.ones(3)  # another source under the same name: a fresh copy
    assert on_device(copies, "d", other, META) is not first
    copies.clear()
    assert len(copies) == 0


@pytest.mark.parametrize("make", [
    lambda D: csc.ConvBPDN(D, 0.1),
    lambda D: csc.ConvBPDNMaskDcpl(D, 0.1),
    lambda D: csc.ConvElasticNet(D, 0.1, 0.5),
    lambda D: csc.ConvBPDNFISTA(D, 0.1),
], ids=["ConvBPDN", "MaskDcpl", "ElasticNet", "FISTA"])
def test_solver_keeps_one_copy_per_device(D, make):
    """The dictionary on another device is copied once and kept; ``solver.dictionary`` stays
    the tensor given; a new dictionary, or clear_device_copies(), makes a fresh copy."""
    solver = make(D)
    given = solver.dictionary
    if isinstance(solver, csc.ConvBPDNFISTA):
        get = lambda: on_device(solver._copies, "dictionary", solver.dictionary, META)  # noqa: E731
    else:
        get = lambda: solver._dictionary_on(META)  # noqa: E731
    first = get()
    assert first.device == META and get() is first
    assert solver.dictionary is given and given.device == CPU
    solver.clear_device_copies()
    assert get() is not first
    again = get()
    solver.dictionary = D.clone()
    assert get() is not again


def test_solve_reads_weights_once_and_uses_the_dictionary_given(D, S, monkeypatch):
    """Weights given as an array are checked and converted once per device and dtype, not per
    solve; a same-device solve uses the given dictionary itself (no copy)."""
    calls = []
    real = cbpdn_module.check_weights
    monkeypatch.setattr(cbpdn_module, "check_weights", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    solver = csc.ConvBPDN(D, 0.1, csc.CBPDNOptions(max_iter=5, l1_weight=np.array([1.0, 0.5, 2.0, 1.0])))
    r1 = solver.solve(S)
    r2 = solver.solve(S)
    assert calls == ["l1_weight"]
    assert torch.equal(r1.codes, r2.codes)
    assert r1.dictionary is solver.dictionary and r2.dictionary is solver.dictionary
    solver.options = csc.CBPDNOptions(max_iter=5, l1_weight=np.array([1.0, 1.0, 1.0, 1.0]))
    r3 = solver.solve(S)  # other options: their weights are read
    assert calls == ["l1_weight", "l1_weight"]
    assert not torch.equal(r3.codes, r1.codes)


def test_addmasksim_builds_its_dictionary_once(D, S):
    ams = csc.AddMaskSim(csc.ConvBPDN(D, 0.1, csc.CBPDNOptions(max_iter=10)))
    mask = np.ones((16, 16))
    mask[:3] = 0
    r1 = ams.solve(S, mask)
    extended = ams._copies.get("dictionary", ams.solver.dictionary, CPU, lambda: None)
    assert extended is not None and extended.shape[0] == D.shape[0] + 1
    r2 = ams.solve(S, torch.from_numpy(mask))
    assert ams._copies.get("dictionary", ams.solver.dictionary, CPU, lambda: None) is extended
    assert torch.equal(r1.codes, r2.codes)
    assert len(ams.solver._copies) == 0  # the wrapped solver's cache is its own, untouched


def test_solve_in_batches_keeps_array_batches_arrays(D, S, monkeypatch):
    """An array given to solve_in_batches is solved batch by batch as arrays (so each batch
    goes to the dictionary's device), with the one-batch result."""
    seen = []
    solver = csc.ConvBPDN(D, 0.1, csc.CBPDNOptions(max_iter=10, record_stats=False))
    real = solver.solve
    monkeypatch.setattr(solver, "solve", lambda images: seen.append(type(images)) or real(images))
    out = cbpdn_module.solve_in_batches(solver, S.numpy(), MemoryBudget(limit_bytes=1))  # one image a batch
    assert seen == [np.ndarray, np.ndarray]
    assert torch.allclose(out.codes, real(S).codes)


# ------------------------------------------------------------------ CUDA
def _rel(a, b):
    return float((a.cpu() - b.cpu()).norm() / max(float(b.norm()), 1e-300))


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("as_array", [False, True], ids=["tensor", "numpy"])
def test_cuda_images_cpu_dictionary(D, S, as_array):
    opts = csc.CBPDNOptions(max_iter=100, record_stats=False, l1_weight=np.array([1.0, 0.5, 2.0, 1.0]))
    solver = csc.ConvBPDN(D.numpy() if as_array else D, 0.1, opts)
    res = solver.solve(S.cuda())
    assert res.codes.is_cuda and res.dictionary.is_cuda and solver.dictionary.device.type == "cpu"
    cpu = csc.ConvBPDN(D, 0.1, opts).solve(S)
    assert res.iterations.cpu().tolist() == cpu.iterations.tolist()
    assert _rel(res.codes, cpu.codes) <= 1e-10
    copy = solver._dictionary_on(res.codes.device)
    assert solver.solve(S.cuda()).dictionary is copy  # the second solve reuses the copy
    assert res.dictionary is copy


@pytest.mark.cuda
@cuda
def test_cuda_option_device_still_wins(D, S):
    res = csc.ConvBPDN(D, 0.1, csc.CBPDNOptions(max_iter=20, device="cpu")).solve(S.cuda())
    assert res.codes.device.type == "cpu"
    on_gpu = csc.ConvBPDN(D, 0.1, csc.CBPDNOptions(max_iter=20, device="cuda")).solve(S.numpy())
    assert on_gpu.codes.is_cuda


@pytest.mark.cuda
@cuda
def test_cuda_array_images_follow_a_cuda_dictionary(D, S):
    res = csc.ConvBPDN(D.cuda(), 0.1, csc.CBPDNOptions(max_iter=20)).solve(S.numpy())
    assert res.codes.is_cuda


@pytest.mark.cuda
@cuda
def test_cuda_variants_with_cpu_constants(D, S):
    y0 = torch.zeros(2, 3, 4, 16, 16, dtype=torch.float64)
    joint = csc.ConvBPDNJoint(D, 0.1, 0.2, csc.CBPDNJointOptions(max_iter=50, l21_weight=np.ones(4)))
    C3 = torch.stack([S, 2 * S, -S], 1)
    res = joint.solve(C3.cuda(), y0=y0)  # y0 on the CPU too
    cpu = csc.ConvBPDNJoint(D, 0.1, 0.2, csc.CBPDNJointOptions(max_iter=50, l21_weight=np.ones(4))).solve(C3)
    assert res.codes.is_cuda and _rel(res.codes, cpu.codes) <= 1e-8
    fista = csc.ConvBPDNFISTA(D, 0.1, csc.FISTAOptions(max_iter=30))
    assert _rel(fista.solve(S.cuda()).codes, csc.ConvBPDNFISTA(D, 0.1, csc.FISTAOptions(max_iter=30)).solve(S).codes) \
        <= 1e-8


@pytest.mark.cuda
@cuda
def test_cuda_masks_follow_the_images(D, S):
    mask = np.ones((2, 16, 16))
    mask[:, 5:9, 5:9] = 0
    md = csc.ConvBPDNMaskDcpl(D, 0.1, csc.MaskDcplOptions(max_iter=50))
    res = md.solve(S.cuda(), mask=torch.from_numpy(mask))  # CPU mask, CUDA images
    cpu = csc.ConvBPDNMaskDcpl(D, 0.1, csc.MaskDcplOptions(max_iter=50)).solve(S, mask=mask)
    assert res.codes.is_cuda and _rel(res.codes, cpu.codes) <= 1e-8
    ams = csc.AddMaskSim(csc.ConvBPDN(D, 0.1, csc.CBPDNOptions(max_iter=50)))
    res = ams.solve(S.cuda(), mask)
    cpu = csc.AddMaskSim(csc.ConvBPDN(D, 0.1, csc.CBPDNOptions(max_iter=50))).solve(S, mask)
    assert res.codes.is_cuda and _rel(res.codes, cpu.codes) <= 1e-8

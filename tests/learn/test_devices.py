"""The learners' working device: the images' (unless ``options.device`` says otherwise), a CPU
or numpy initial dictionary and masks moved there (csc.core.checks.working_device). CPU tests
of the kept copy (meta tensors stand for another device); CUDA tests of batch, masked and
online learning given CUDA images, against the CPU runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import csc

META = torch.device("meta")
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _D0() -> torch.Tensor:
    return torch.randn(4, 5, 5, generator=torch.Generator().manual_seed(5), dtype=torch.float64)


def _S() -> torch.Tensor:
    return torch.randn(3, 16, 16, generator=torch.Generator().manual_seed(6), dtype=torch.float64)


def _mask() -> np.ndarray:
    m = np.ones((3, 16, 16))
    m[:, 4:8, 6:12] = 0
    return m


def _rel(a, b):
    return float((a.cpu() - b.cpu()).norm() / b.norm())


def test_batch_learner_keeps_one_initial_dictionary_per_device():
    learner = csc.DictLearn(_D0(), 0.1, csc.DictLearnOptions(max_iter=2))
    given = learner.initial_dictionary
    first = learner._initial_on(META)
    assert first.device == META and learner._initial_on(META) is first
    assert learner._initial_on(torch.device("cpu")) is given  # its own device: no copy
    assert learner.initial_dictionary is given
    r1, r2 = learner.solve(_S()), learner.solve(_S().numpy())  # arrays go to the dictionary's device
    assert torch.equal(r1.dictionary, r2.dictionary) and r1.dictionary.device.type == "cpu"


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("masked", [False, True], ids=["plain", "mask"])
def test_cuda_batch_learning_from_a_cpu_dictionary(masked):
    mask = _mask() if masked else None
    opts = csc.DictLearnOptions(max_iter=5)
    learner = csc.DictLearn(_D0().numpy(), 0.1, opts)
    res = learner.solve(_S().cuda(), mask)  # a numpy dictionary and mask, CUDA images
    cpu = csc.DictLearn(_D0(), 0.1, opts).solve(_S(), mask)
    assert res.dictionary.is_cuda and res.codes.is_cuda
    assert learner.initial_dictionary.device.type == "cpu"
    assert _rel(res.dictionary, cpu.dictionary) <= 1e-8 and _rel(res.codes, cpu.codes) <= 1e-8
    copy = learner._initial_on(res.dictionary.device)
    learner.solve(_S().cuda(), mask)
    assert learner._initial_on(res.dictionary.device) is copy  # the second run reuses it
    on_cpu = csc.DictLearn(_D0(), 0.1, csc.DictLearnOptions(max_iter=2, device="cpu")).solve(_S().cuda(), mask)
    assert on_cpu.dictionary.device.type == "cpu"  # options.device still wins


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("masked", [False, True], ids=["plain", "mask"])
def test_cuda_online_learning_from_a_cpu_dictionary(masked):
    S, mask = _S(), (torch.from_numpy(_mask()) if masked else None)
    gpu = csc.OnlineDictLearn(_D0(), 0.1)
    cpu = csc.OnlineDictLearn(_D0(), 0.1)
    for _ in range(2):
        gpu.step(S.cuda(), mask)  # the mask stays on the CPU
        cpu.step(S, mask)
    assert gpu.dictionary.is_cuda and gpu.initial_dictionary.device.type == "cpu"
    assert _rel(gpu.dictionary, cpu.dictionary) <= 1e-8

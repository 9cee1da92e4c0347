"""Batches sized to the device's memory and the out-of-memory split, forced on the CPU by an
injected memory budget and an injected out-of-memory error: the results equal the unsplit
ones (every image is its own problem), for csc.encode, csc.solve_in_batches and a code store."""

import json

import numpy as np
import pytest
import torch

import csc
from csc.problems.cbpdn import ConvBPDN, solve_in_batches
from csc.dictionary.io import save_dictionary
from csc.pipeline.store import EncodeSettings, encode_dataset
from csc.runtime.memory import MemoryBudget, batch_size, image_bytes, solve_split


def _problem(n=5):
    g = torch.Generator().manual_seed(0)
    D = torch.randn(6, 5, 5, generator=g, dtype=torch.float64)
    D /= D.flatten(1).norm(dim=1).view(-1, 1, 1)
    return D, torch.randn(n, 16, 16, generator=g, dtype=torch.float64)


class TinyDevice(MemoryBudget):
    """A device with room for two images' solves."""

    def free_bytes(self, device):
        return 2 * image_bytes((6, 16, 16), torch.float64)


def test_batch_size_from_the_budget():
    per = image_bytes((6, 16, 16), torch.float64)
    assert batch_size(10, per, TinyDevice(fraction=1.0), torch.device("cpu")) == 2
    assert batch_size(10, per, MemoryBudget(limit_bytes=3 * per + 1), torch.device("cpu")) == 3
    assert batch_size(10, per, MemoryBudget(limit_bytes=1), torch.device("cpu")) == 1
    with pytest.raises(ValueError, match="limit_bytes"):
        MemoryBudget(limit_bytes=0)


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_encode_in_budget_batches_equals_one_batch(backend):
    D, S = _problem()
    kw = dict(max_iter=30, rel_stop_tol=1e-2, backend=backend)
    whole = csc.encode(S, D, 0.05, memory=MemoryBudget(limit_bytes=1 << 40), **kw)
    split = csc.encode(S, D, 0.05, memory=TinyDevice(fraction=1.0), **kw)
    # not bit for bit: FFTW may plan differently for differently aligned batch buffers
    # (FFTW_UNALIGNED), which changes the last bits; 1e-13 of the largest code is rounding
    assert torch.allclose(whole, split, rtol=0, atol=1e-13 * float(whole.abs().max()))


def test_out_of_memory_splits_and_retries(monkeypatch):
    D, S = _problem(7)
    solver = ConvBPDN(D, 0.05, csc.CBPDNOptions(max_iter=30, rel_stop_tol=1e-2, backend="numba"))
    whole = solver.solve(S)
    real_solve, sizes, splits = ConvBPDN.solve, [], []

    def solve(self, images, y0=None, u0=None):
        sizes.append(images.shape[0])
        if images.shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return real_solve(self, images, y0, u0)

    monkeypatch.setattr(ConvBPDN, "solve", solve)
    got = solve_in_batches(solver, S, MemoryBudget(limit_bytes=1 << 40), on_split=lambda lo, hi: splits.append((lo, hi)))
    assert sizes[0] == 7 and splits[0] == (0, 7) and max(s for s in sizes[1:] if s <= 2) <= 2
    assert torch.equal(whole.iterations, got.iterations)
    for name in ("codes", "x", "u", "rho"):  # to rounding: FFTW plans depend on buffer alignment
        w, g = getattr(whole, name), getattr(got, name)
        assert torch.allclose(w, g, rtol=0, atol=1e-13 * float(w.abs().max()))
    for a, b in zip(whole.stats, got.stats):
        np.testing.assert_allclose(a.objective, b.objective, rtol=1e-13)


def test_a_single_image_that_does_not_fit_raises():
    def solve(lo, hi):
        raise torch.OutOfMemoryError("injected")

    with pytest.raises(torch.OutOfMemoryError):
        solve_split(solve, 3, 3)
    with pytest.raises(ValueError):  # other errors are not retried
        solve_split(lambda lo, hi: (_ for _ in ()).throw(ValueError("x")), 3, 3)


def test_store_bytes_do_not_depend_on_the_memory_budget(tmp_path):
    g = torch.Generator().manual_seed(0)
    D = torch.randn(4, 5, 5, generator=g)
    D /= D.flatten(1).norm(dim=1)[:, None, None]
    dict_file = str(save_dictionary(tmp_path / "dict.npz", D, {"name": "test"}))
    rng = np.random.default_rng(1)
    images, labels = rng.integers(0, 256, (9, 16, 16), dtype=np.uint8), rng.integers(0, 3, 9).astype(np.int64)
    st = EncodeSettings(dictionary=dict_file, lmbda=0.05, max_iter=15, shard_size=4, value_dtype="float16")
    encode_dataset(images, labels, tmp_path / "a", st, device="cpu")
    encode_dataset(images, labels, tmp_path / "b", st, device="cpu", memory=MemoryBudget(limit_bytes=1))
    files = sorted(p.name for p in (tmp_path / "a").glob("shard-*.npz"))
    assert len(files) == 3
    for name in files:  # the same shards up to rounding (FFTW plans depend on buffer alignment)
        a, b = np.load(tmp_path / "a" / name), np.load(tmp_path / "b" / name)
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            if np.issubdtype(a[key].dtype, np.floating):
                x, y = a[key].astype(np.float64), b[key].astype(np.float64)  # one float16 ulp, plus
                # the float32 solve's rounding (1e-6 of the largest value) before quantisation
                np.testing.assert_allclose(x, y, rtol=2.0 ** -10, atol=1e-6 * np.abs(y).max(), err_msg=key)
            elif key == "metadata":  # the same but for the content hash
                ma, mb = (json.loads(str(m[key])) for m in (a, b))
                ma.pop("sha256"), mb.pop("sha256")
                assert ma == mb
            else:
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_measured_image_bytes_is_the_slope_of_two_peaks():
    """What does not grow with the batch (dictionary DFT, plans) is left out: the bytes per
    image are the difference of the peaks of a 1- and a 3-image solve over 2."""
    from csc.runtime.memory import measured_image_bytes

    seen = []

    def solve(k):
        seen.append(k)
        return k

    def peak(device, run):  # a fixed 5,000 bytes plus 1,200 per image
        return 5000 + 1200 * run()

    assert measured_image_bytes(solve, torch.device("cpu"), peak=peak) == 1200
    assert seen == [1, 3]
    assert measured_image_bytes(solve, torch.device("cpu")) is None  # no allocator peak on the CPU
    assert measured_image_bytes(solve, torch.device("cpu"), peak=lambda d, r: 10 - r()) is None


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_measured_image_bytes_on_cuda_is_below_the_static_estimate():
    from csc.runtime.memory import measured_image_bytes

    D = torch.randn(8, 5, 5, dtype=torch.float64)
    S = torch.randn(3, 32, 32, dtype=torch.float64, device="cuda")
    solver = csc.ConvBPDN(D, 0.05, csc.CBPDNOptions(max_iter=2, record_stats=False))
    per = measured_image_bytes(lambda k: solver.solve(S[:k]), torch.device("cuda"))
    assert per is not None and 0 < per <= image_bytes((8, 32, 32), torch.float64)


def test_joint_solver_in_batches_equals_one_batch():
    """solve_in_batches with a problem whose solve() takes no warm start (joint sparsity)."""
    g = torch.Generator().manual_seed(5)
    D = torch.randn((4, 5, 5), generator=g, dtype=torch.float64)
    S = torch.randn((5, 3, 16, 16), generator=g, dtype=torch.float64)
    solver = csc.ConvBPDNJoint(D, 0.05, 0.02, csc.CBPDNJointOptions(max_iter=20))
    whole = solver.solve(S)
    got = solve_in_batches(solver, S, MemoryBudget(limit_bytes=2 * 3 * 4 * 16 * 16 * 8 * 6))
    assert got.codes.shape == whole.codes.shape == (5, 3, 4, 16, 16)
    assert torch.allclose(got.codes, whole.codes, rtol=0, atol=1e-13 * float(whole.codes.abs().max()))

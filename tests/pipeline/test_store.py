"""Sparse code store (csc.pipeline.store) and the datasets over it (csc.pipeline.datasets)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from csc.problems.cbpdn import ConvBPDN
from csc.cli.main import main
from csc.pipeline.datasets import PixelDataset, SparseCodeDataset
from csc.dictionary.io import save_dictionary
from csc.core.options import CBPDNOptions
from csc.science.prune import prune
from csc.pipeline.store import CodeStore, EncodeSettings, StoreError, encode_dataset, preprocess_images, verify_store

N, HW = 10, 16


@pytest.fixture(scope="module")
def dict_file(tmp_path_factory):
    g = torch.Generator().manual_seed(0)
    D = torch.randn(4, 5, 5, generator=g)
    D /= D.flatten(1).norm(dim=1)[:, None, None]
    return str(save_dictionary(tmp_path_factory.mktemp("d") / "dict.npz", D, {"name": "test"}))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (N, HW, HW), dtype=np.uint8), rng.integers(0, 3, N).astype(np.int64)


def _settings(dict_file, **kw):
    base = dict(dictionary=dict_file, lmbda=0.05, max_iter=15, rel_stop_tol=1e-3, shard_size=4,
                value_dtype="float32")
    base.update(kw)
    return EncodeSettings(**base)


def _reference(images, settings):
    """Codes of a direct solve, shard by shard (the store's batches)."""
    from csc.dictionary.io import load_dictionary

    D = load_dictionary(settings.dictionary, dtype=torch.float32, device="cpu")
    solver = ConvBPDN(D, settings.lmbda, CBPDNOptions(max_iter=settings.max_iter, rel_stop_tol=settings.rel_stop_tol,
                                                      record_stats=False, dtype=torch.float32, device="cpu"))
    S = settings.shard_size
    return torch.cat([solver.solve(preprocess_images(images[i:i + S], settings)).codes for i in range(0, len(images), S)])


@pytest.fixture(scope="module")
def store32(tmp_path_factory, dict_file, data):
    images, labels = data
    return encode_dataset(images, labels, tmp_path_factory.mktemp("s") / "s32", _settings(dict_file), device="cpu")


def test_roundtrip_float32_exact(store32, dict_file, data):
    images, labels = data
    ref = _reference(images, _settings(dict_file))
    assert len(store32) == N and store32.complete and len(store32.shards) == 3
    got = store32.dense()
    assert torch.equal(got, ref)
    assert (ref != 0).any() and (ref == 0).any()
    np.testing.assert_array_equal(store32.labels, labels)
    assert store32.get(7)[1] == labels[7]
    m = store32.manifest
    assert m["code_shape"] == [4, HW, HW] and m["coord_dtype"] == "uint16"
    assert m["dense_float32_bytes_per_image"] == 4 * HW * HW * 4
    assert m["bytes_per_image"] == pytest.approx(store32.nbytes() / N)
    assert len(m["dictionary_sha256"]) == 64 and all(len(e["sha256"]) == 64 for e in m["shards"])
    assert verify_store(store32.root) == []


def test_roundtrip_float16_within_rounding(tmp_path, dict_file, data):
    images, labels = data
    st = encode_dataset(images, labels, tmp_path / "s16", _settings(dict_file, value_dtype="float16"), device="cpu")
    ref = _reference(images, _settings(dict_file))
    got = st.dense()
    assert torch.equal(got, ref.half().float())  # exactly float16 rounding of each value
    nz = ref != 0
    assert torch.all((got[nz] - ref[nz]).abs() <= ref[nz].abs() * 2.0 ** -11 + 6e-8)
    with np.load(st.root / st.shards[0]["file"], allow_pickle=False) as z:
        assert z["values"].dtype == np.float16 and z["coords"].dtype == np.uint16


def test_killed_encoding_resumes_to_same_store(tmp_path, store32, dict_file, data):
    images, labels = data
    settings = _settings(dict_file)

    class Killed(Exception):
        pass

    def kill_after_first(i):
        if i == 0:
            raise Killed

    out = tmp_path / "resumed"
    with pytest.raises(Killed):
        encode_dataset(images, labels, out, settings, device="cpu", on_shard=kill_after_first)
    assert not CodeStore(out).complete
    assert any("incomplete" in p for p in verify_store(out))
    # the kill came after shard 0; also simulate one between a shard's write and the manifest's update
    (out / ".shard-00001.npz.123.tmp").write_bytes(b"half-written")
    resumed_shards = []
    encode_dataset(images, labels, out, settings, device="cpu", on_shard=resumed_shards.append)
    assert resumed_shards == [1, 2]  # shard 0 was kept, not re-encoded
    assert not list(out.glob(".*.tmp"))  # the stale temporary was removed
    st = CodeStore(out)
    assert verify_store(out) == []
    a = [(e["file"], e["sha256"], e["count"], e["start"]) for e in st.shards]
    b = [(e["file"], e["sha256"], e["count"], e["start"]) for e in store32.shards]
    assert a == b
    assert torch.equal(st.dense(), store32.dense())
    # a shard written but missing from the manifest (killed just before the manifest update) is adopted
    m = json.loads((out / "manifest.json").read_text())
    m["shards"] = m["shards"][:2]
    m["complete"] = False
    (out / "manifest.json").write_text(json.dumps(m))
    again = []
    encode_dataset(images, labels, out, settings, device="cpu", on_shard=again.append)
    assert again == [] and verify_store(out) == []


def _shard_bytes(root):
    return {p.name: p.read_bytes() for p in sorted(root.glob("shard-*.npz"))}


_ENCODE_SCRIPT = """
import sys, numpy as np
from csc.pipeline.store import EncodeSettings, encode_dataset
out, kill = sys.argv[1], sys.argv[2] == "kill"
rng = np.random.default_rng(5)
images, labels = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8), rng.integers(0, 10, 6)
settings = EncodeSettings(dictionary="heterogeneous", lmbda=0.1, max_iter=20, shard_size=2)
def hook(i):
    if kill and i == 0:
        sys.exit(3)
encode_dataset(images, labels, out, settings, device="cpu", on_shard=hook)
"""


def test_repeated_and_resumed_encodings_give_identical_bytes(tmp_path):
    """Two uninterrupted runs and a killed-and-resumed one, each in a process of its own,
    write the same shard bytes.

    144 kernels on 28×28 images: 112 896 coefficients per image, where FFTW's timing-based
    MEASURE planner would be the default; it may pick other plans in another process and
    change the codes by rounding. The store plans with ESTIMATE."""
    import subprocess
    import sys

    def run(out, mode="run"):
        return subprocess.run([sys.executable, "-c", _ENCODE_SCRIPT, str(tmp_path / out), mode],
                              capture_output=True, text=True, timeout=300)

    assert run("a").returncode == 0 and run("b").returncode == 0
    killed = run("c", "kill")
    assert killed.returncode == 3, killed.stderr
    assert len(_shard_bytes(tmp_path / "c")) == 1
    assert run("c").returncode == 0
    a = _shard_bytes(tmp_path / "a")
    assert len(a) == 3 and a == _shard_bytes(tmp_path / "b") == _shard_bytes(tmp_path / "c")
    assert all(verify_store(tmp_path / x) == [] for x in "abc")


def test_second_encoding_job_into_one_folder_is_refused(tmp_path, dict_file, data):
    """While one job encodes into a folder, another process asking for the same folder
    (here with another λ) is refused at once; the first job's store then verifies."""
    import subprocess
    import sys

    from matplotlib import image as mpimg

    images, labels = data
    folder = tmp_path / "images" / "a"
    folder.mkdir(parents=True)
    for i in range(2):
        mpimg.imsave(folder / f"{i}.png", images[i], cmap="gray")
    out = tmp_path / "store"
    second = []

    def start_second_job(i):
        if i == 0:
            second.append(subprocess.run(
                [sys.executable, "-m", "csc", "encode-dataset", "--dataset", "folder", "--root", str(folder.parent),
                 "--dictionary", dict_file, "--lmbda", "0.3", "--max-iter", "2", "--out", str(out), "--quiet"],
                capture_output=True, text=True, timeout=300))

    encode_dataset(images, labels, out, _settings(dict_file), device="cpu", on_shard=start_second_job)
    (res,) = second
    assert res.returncode == 2, res.stderr
    assert "another encoding job" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert verify_store(out) == []
    assert CodeStore(out).manifest["settings"]["lmbda"] == 0.05
    # once the first job has finished, the folder is free again (a resume finds nothing to do)
    again = []
    encode_dataset(images, labels, out, _settings(dict_file), device="cpu", on_shard=again.append)
    assert again == []


def test_failed_runs_leave_finished_shards_only(tmp_path, dict_file, data, monkeypatch):
    images, labels = data

    def fail(i):
        raise RuntimeError("disk on fire")

    out = tmp_path / "new" / "store"
    with pytest.raises(RuntimeError):
        encode_dataset(images[:2], labels[:2], out, _settings(dict_file, shard_size=1), device="cpu", on_shard=fail)
    assert (out / "shard-00000.npz").is_file()  # a finished shard is kept for the resume
    # a run that fails before finishing any shard leaves no folder behind
    import csc.problems.cbpdn

    def solve_fails(*a, **k):
        raise RuntimeError("out of memory")

    with monkeypatch.context() as m:
        m.setattr(csc.problems.cbpdn, "solve_in_batches", solve_fails)
        with pytest.raises(RuntimeError, match="out of memory"):
            encode_dataset(images[:2], labels[:2], tmp_path / "fails" / "s", _settings(dict_file), device="cpu")
    assert not (tmp_path / "fails").exists()
    # bad settings are found before any work, and leave nothing either
    with pytest.raises(ValueError, match="size"):
        encode_dataset(images[:2], labels[:2], tmp_path / "small" / "s", _settings(dict_file, size=3), device="cpu")
    assert not (tmp_path / "small").exists()


def test_store_begun_with_other_settings_and_no_shards_is_replaced(tmp_path, dict_file, data):
    images, labels = data
    out = tmp_path / "s"
    encode_dataset(images[:2], labels[:2], out, _settings(dict_file), device="cpu")
    m = json.loads((out / "manifest.json").read_text())
    m["shards"], m["complete"] = [], False
    for p in out.glob("shard-*.npz"):
        p.unlink()
    (out / "manifest.json").write_text(json.dumps(m))
    encode_dataset(images[:2], labels[:2], out, _settings(dict_file, lmbda=0.2), device="cpu")
    assert verify_store(out) == [] and CodeStore(out).manifest["settings"]["lmbda"] == 0.2


def test_other_settings_refused(tmp_path, dict_file, data):
    images, labels = data
    encode_dataset(images[:4], labels[:4], tmp_path / "s", _settings(dict_file), device="cpu")
    with pytest.raises(StoreError, match="other settings"):
        encode_dataset(images[:4], labels[:4], tmp_path / "s", _settings(dict_file, lmbda=0.2), device="cpu")


def _copy_store(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_corrupted_shard_detected(tmp_path, store32):
    # 1: bytes flipped inside the file
    bad = _copy_store(store32.root, tmp_path / "flipped")
    f = bad / "shard-00001.npz"
    raw = bytearray(f.read_bytes())
    for k in range(200, 260):
        raw[k] ^= 0xFF
    f.write_bytes(bytes(raw))
    problems = verify_store(bad)
    assert problems and "shard-00001" in problems[0]
    with pytest.raises(StoreError):
        CodeStore(bad).get(5)
    assert main(["store", "verify", str(bad)]) == 1
    assert main(["store", "verify", str(store32.root)]) == 0
    # 2: a valid npz whose values were altered
    bad2 = _copy_store(store32.root, tmp_path / "tampered")
    f = bad2 / "shard-00000.npz"
    with np.load(f, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["values"] = arrays["values"].copy()
    arrays["values"][0] *= 2
    np.savez(f, **arrays)
    assert any("checksum" in p for p in verify_store(bad2))
    # 3: a missing shard
    bad3 = _copy_store(store32.root, tmp_path / "missing")
    (bad3 / "shard-00002.npz").unlink()
    assert any("missing" in p for p in verify_store(bad3))


def test_sparse_code_dataset_transforms(store32):
    x0, y0 = store32.get(3)
    ds = SparseCodeDataset(store32, prune=0.25, relative=True)
    x, y = ds[3]
    assert y == y0 and x.shape == (4, HW, HW) and x.dtype == torch.float32
    assert torch.equal(x, prune(x0, 0.25, relative=True))
    x, _ = SparseCodeDataset(store32, prune=0.01, relative=False)[3]
    assert torch.equal(x, prune(x0, 0.01))
    ds = SparseCodeDataset(store32, size=8, normalise=(0.5, 0.25))
    x, _ = ds[3]
    assert x.shape == (4, 8, 8)
    from csc.pipeline.preprocess import resize

    torch.testing.assert_close(x, (resize(x0, 8) - 0.5) / 0.25)
    flip = SparseCodeDataset(store32, hflip=True, seed=3)
    flips = []
    for e in range(2):
        flip.set_epoch(e)
        flips.append([not torch.equal(flip[i][0], store32.get(i)[0]) for i in range(N)])
    assert any(flips[0]) and not all(flips[0]) and flips[0] != flips[1]
    for i in range(N):
        flip.set_epoch(1)
        a = flip[i][0]
        assert torch.equal(a, torch.flip(store32.get(i)[0], (-1,)) if flips[1][i] else store32.get(i)[0])
    assert ds.in_channels == 4 and ds.num_classes >= 1 and len(ds) == N


def test_pixel_dataset(data):
    images, labels = data
    ds = PixelDataset(images, labels, size=8)
    x, y = ds[2]
    assert x.shape == (1, 8, 8) and y == labels[2] and float(x.max()) <= 1.0
    assert PixelDataset(images, labels)[0][0].shape == (1, HW, HW)
    with pytest.raises(ValueError):
        PixelDataset(images[:, None], labels)

"""Data parallelism on torch.distributed (csc.runtime.distributed): 2 CPU processes, gloo, loopback.

One group of two spawned processes (torchrun's environment variables set by hand, so
``init_distributed`` reads them as under torchrun) runs the distributed encoding, online
learning and training once; the tests compare what it wrote with single-process runs.
A last test drives ``python -m torch.distributed.run --nproc_per_node 2 -m csc train``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

from csc.runtime import distributed as cdist

ROOT = Path(__file__).resolve().parents[2]
WORLD = 2
N_IMAGES, HW, SHARD = 10, 16, 3  # 4 shards: ranks get an unequal share (0, 2 and 1, 3)
LEARN_STEPS = 6

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="torch.distributed with gloo is not available")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _loopback_env() -> dict[str, str]:
    env = {"MASTER_ADDR": "127.0.0.1", "OMP_NUM_THREADS": "1"}
    if Path("/sys/class/net/lo").exists():
        env["GLOO_SOCKET_IFNAME"] = "lo"
    return env


# ------------------------------------------------------------------ shared inputs
def _dictionary_file(folder: Path) -> str:
    from csc.dictionary.io import save_dictionary

    g = torch.Generator().manual_seed(0)
    D = torch.randn(4, 5, 5, generator=g)
    D /= D.flatten(1).norm(dim=1)[:, None, None]
    return str(save_dictionary(folder / "dict.npz", D, {"name": "test"}))


def _images():
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (N_IMAGES, HW, HW), dtype=np.uint8), rng.integers(0, 3, N_IMAGES).astype(np.int64)


def _settings(dict_file: str):
    from csc.pipeline.store import EncodeSettings

    return EncodeSettings(dictionary=dict_file, lmbda=0.05, max_iter=15, rel_stop_tol=1e-3, shard_size=SHARD,
                          value_dtype="float32")


def _write_pngs(folder: Path, n: int = 4, size: int = 20) -> None:
    from matplotlib import image as mpimg

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(0)
    for i in range(n):
        img = rng.rand(size, size)
        img = (img + np.roll(img, 1, 0) + np.roll(img, 1, 1)) / 3
        mpimg.imsave(folder / f"im{i}.png", img, cmap="gray", vmin=0, vmax=1)


def _learn_args(folder: Path, out: Path, steps: int = LEARN_STEPS, extra=()) -> list[str]:
    return ["learn", "--images", str(folder), "--method", "online", "--lmbda", "0.1", "--steps", str(steps),
            "--out", str(out), "--crop", "12", "--batch-size", "3", "--kernels", "6", "--kernel-size", "5",
            "--cbpdn-iter", "20", "--eta-a", "1", "--dtype", "float64", "--device", "cpu", "--seed", "7",
            "--checkpoint-every", "3", "--quiet", *extra]


def _tiny_pixels(n: int, seed: int):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.uniform(0, 0.3, (n, 12, 12)).astype(np.float32)
    for i in range(n):
        x[i, 6:] += 0.7 * y[i]
        x[i, :6] += 0.7 * (1 - y[i])
    return x, y


def _pixel_sets():
    from csc.pipeline.datasets import PixelDataset

    x, y = _tiny_pixels(24, 0)
    xt, yt = _tiny_pixels(7, 1)  # odd: the ranks evaluate 4 and 3 test images
    return PixelDataset(x, y, hflip=True, seed=3), PixelDataset(xt, yt)


TRAIN_OPTS = dict(epochs=2, batch_size=8, seed=3, dropout=0.2, lr=1e-3, device="cpu", max_steps=2)


# ------------------------------------------------------------------ the spawned processes
def _worker(rank: int, port: int, tmp: str) -> None:
    os.environ.update(_loopback_env(), MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(WORLD), LOCAL_WORLD_SIZE=str(WORLD))
    torch.set_num_threads(1)
    tmp_path = Path(tmp)
    assert cdist.init_distributed("cpu", timeout=60) == torch.device("cpu")
    assert cdist.is_distributed() and dist.get_backend() == "gloo"
    assert (cdist.get_rank(), cdist.get_world_size(), cdist.get_local_rank()) == (rank, WORLD, rank)
    report: dict = {"rank": rank, "seconds": {}}
    try:
        for job in (_encode_job, _learn_job, _train_job):
            t0 = time.perf_counter()
            job(rank, tmp_path, report)
            report["seconds"][job.__name__] = time.perf_counter() - t0
    finally:
        (tmp_path / f"report{rank}.json").write_text(json.dumps(report))
        cdist.cleanup()


def _encode_job(rank: int, tmp_path: Path, report: dict) -> None:
    import shutil

    from csc.pipeline.store import MANIFEST, encode_dataset

    images, labels = _images()
    settings = _settings(str(tmp_path / "dict.npz"))
    out = tmp_path / "store2"
    first: list[int] = []
    st = encode_dataset(images, labels, out, settings, device="cpu", on_shard=first.append)
    assert st.complete and len(st) == N_IMAGES
    report["encoded"] = first
    # a killed run: shards 1 (rank 1's) and 2 (rank 0's) lost, shard 3 written but not yet
    # in the manifest
    killed = tmp_path / "store2_killed"
    if rank == 0:
        shutil.copytree(out, killed)
        for i in (1, 2):
            (killed / f"shard-0000{i}.npz").unlink()
        m = json.loads((killed / MANIFEST).read_text())
        m.update(shards=m["shards"][:1], complete=False)
        (killed / MANIFEST).write_text(json.dumps(m))
    cdist.barrier()
    again: list[int] = []
    encode_dataset(images, labels, killed, settings, device="cpu", on_shard=again.append)
    report["re_encoded"] = again


def _learn_job(rank: int, tmp_path: Path, report: dict) -> None:
    from csc.cli.main import main
    from csc.dictionary.io import load_dictionary
    from csc.learn.onlinecdl import ImageSampler, OnlineDictLearn, OnlineDictLearnOptions

    folder = tmp_path / "pngs"
    # the command line, as under torchrun (rank 0 writes the files)
    assert main(_learn_args(folder, tmp_path / "learn2.npz")) == 0
    # the API: a run stopped after its checkpoint at step 3, resumed to step 6; every rank
    # ends with the same dictionary
    g = torch.Generator().manual_seed(0)
    pool = torch.randn(4, 20, 20, generator=g, dtype=torch.float64)
    D0 = torch.randn(6, 5, 5, generator=g, dtype=torch.float64)
    opts = OnlineDictLearnOptions(eta_a=1.0, cbpdn=OnlineDictLearnOptions().cbpdn.replace(max_iter=20))
    mk = lambda: ImageSampler(pool, batch_size=3, crop=12, generator=torch.Generator().manual_seed(1))  # noqa: E731
    ck = tmp_path / "api.ckpt.npz"
    OnlineDictLearn(D0, 0.1, opts).fit(mk(), 3, checkpoint=ck, checkpoint_every=3)
    resumed = OnlineDictLearn(D0, 0.1, opts).fit(mk(), LEARN_STEPS, checkpoint=ck, checkpoint_every=3, resume=True)
    np.save(tmp_path / f"api_resumed{rank}.npy", resumed.dictionary.numpy())
    np.save(tmp_path / f"api_objective{rank}.npy", resumed.stats.objective)
    report["learn_cli_dictionary_written"] = (tmp_path / "learn2.npz").is_file()
    if rank == 0:
        report["learn_cli_steps"] = len(json.loads((tmp_path / "learn2.stats.json").read_text())["iteration"])
        assert load_dictionary(tmp_path / "learn2.npz").shape == (6, 5, 5)


def _train_job(rank: int, tmp_path: Path, report: dict) -> None:
    import hashlib

    from csc.classify.train import TrainOptions, train

    opts = TrainOptions(**TRAIN_OPTS)
    tr, te = _pixel_sets()
    part = train(tr, te, tmp_path / "train", opts, run={"encoding": "pixels"}, stop_after_epoch=1)
    report["train_part_history"] = [{k: v for k, v in r.items() if k != "seconds"} for r in part["epochs"]]
    tr, te = _pixel_sets()  # a new launch rebuilds everything and resumes from rank 0's checkpoint
    resumed = train(tr, te, tmp_path / "train", opts, run={"encoding": "pixels"})
    report["train_history"] = [{k: v for k, v in r.items() if k != "seconds"} for r in resumed["epochs"]]
    # every replica holds the same weights and optimizer moments (a rank that had missed the
    # checkpoint's optimizer state would drift away from the others)
    h = hashlib.sha256()
    for t in resumed["model"].state_dict().values():
        h.update(t.detach().numpy().tobytes())
    report["train_state_sha"] = h.hexdigest()


@pytest.fixture(scope="module")
def spawned(tmp_path_factory):
    """Run the 2-process group once; returns its folder and each rank's report."""
    import torch.multiprocessing as mp

    tmp = tmp_path_factory.mktemp("dist")
    # imports the children need, done once here (fork hands them over): torch._dynamo
    # (first optimizer), matplotlib (plots), DDP
    import matplotlib.pyplot  # noqa: F401
    import torch.nn.parallel  # noqa: F401
    import torch.utils.data.distributed  # noqa: F401

    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
    _dictionary_file(tmp)
    _write_pngs(tmp / "pngs")
    t0 = time.perf_counter()
    # fork: the children inherit the imported modules (spawn re-imports torch and csc in each,
    # ~5 s of CPU apiece); each child sets one intra-op thread before any work
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    ctx = mp.start_processes(_worker, args=(_free_port(), str(tmp)), nprocs=WORLD, join=False, start_method=method)
    deadline = time.monotonic() + 120
    try:
        while not ctx.join(timeout=1):
            if time.monotonic() > deadline:
                raise TimeoutError("the 2-process group did not finish within 120 s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
    reports = [json.loads((tmp / f"report{r}.json").read_text()) for r in range(WORLD)]
    return tmp, reports, time.perf_counter() - t0


def _single_thread(fn, *args, **kwargs):
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # as each spawned process (torchrun's default OMP_NUM_THREADS=1)
    try:
        return fn(*args, **kwargs)
    finally:
        torch.set_num_threads(n)


# ------------------------------------------------------------------ tests
def test_helpers_without_a_process_group():
    assert not cdist.is_distributed()
    assert (cdist.get_rank(), cdist.get_world_size(), cdist.is_main_process()) == (0, 1, True)
    assert cdist.init_distributed("cpu") == torch.device("cpu") and not dist.is_initialized()
    cdist.barrier()
    cdist.cleanup()
    t = torch.ones(3, dtype=torch.complex128)
    assert cdist.all_reduce_sum(t) is t
    assert cdist.all_gather_object({"a": 1}) == [{"a": 1}] and cdist.broadcast_object(5) == 5
    assert [cdist.rank_slice(5, r, 2) for r in range(2)] == [slice(0, 2), slice(2, 5)]
    from csc.learn.onlinecdl import OnlineDictLearn
    from csc.pipeline.store import encode_dataset

    with pytest.raises(ValueError, match="process group"):
        OnlineDictLearn(torch.randn(2, 3, 3), 0.1, distributed=True)
    with pytest.raises(ValueError, match="process group"):
        encode_dataset(np.zeros((1, 16, 16), np.uint8), [0], "unused", distributed=True)


def test_distributed_encoding_equals_single_process_store(spawned, tmp_path):
    """(a) 2 processes write the store 1 process writes: the same shard bytes, the same
    manifest apart from timings; a rerun after losing shards re-encodes only those."""
    from csc.pipeline.store import CodeStore, encode_dataset, verify_store

    tmp, reports, _ = spawned
    assert sorted(reports[0]["encoded"]) == [0, 2] and sorted(reports[1]["encoded"]) == [1, 3]
    assert reports[0]["re_encoded"] == [2] and reports[1]["re_encoded"] == [1]  # only the lost shards
    images, labels = _images()
    single = _single_thread(encode_dataset, images, labels, tmp_path / "store1", _settings(str(tmp / "dict.npz")),
                            device="cpu")
    two = tmp / "store2"
    assert verify_store(two) == []
    names = sorted(p.name for p in two.iterdir())
    assert names == sorted(p.name for p in single.root.iterdir())  # no temporary files left
    for e in single.shards:
        assert (two / e["file"]).read_bytes() == (single.root / e["file"]).read_bytes(), e["file"]

    def strip(m):
        m = {k: v for k, v in m.items() if k not in ("encode_seconds", "seconds_per_image")}
        m["shards"] = [{k: v for k, v in e.items() if k != "seconds"} for e in m["shards"]]
        return m

    m2 = CodeStore(two).manifest
    assert strip(m2) == strip(single.manifest) and m2["complete"]
    assert all(isinstance(e["seconds"], float) for e in m2["shards"])  # every rank's timings gathered
    assert torch.equal(CodeStore(two).dense(), single.dense())
    killed = tmp / "store2_killed"  # after the rerun
    assert verify_store(killed) == []
    for e in single.shards:
        assert (killed / e["file"]).read_bytes() == (single.root / e["file"]).read_bytes(), e["file"]


def test_distributed_online_learning_matches_single_process(spawned, tmp_path):
    """(b) Data-parallel online learning (global minibatch of 3 split 1 + 2) gives the
    single-process dictionary to ≤ 1e-10 relative in float64; checkpoint + resume works."""
    from csc.cli.main import main
    from csc.dictionary.io import load_dictionary
    from csc.learn.onlinecdl import ImageSampler, OnlineDictLearn, OnlineDictLearnOptions

    tmp, reports, _ = spawned
    assert reports[0]["learn_cli_steps"] == LEARN_STEPS
    # command line: 2 processes vs 1
    assert _single_thread(main, _learn_args(tmp / "pngs", tmp_path / "learn1.npz")) == 0
    d1, d2 = load_dictionary(tmp_path / "learn1.npz"), load_dictionary(tmp / "learn2.npz")
    assert d1.dtype == torch.float64 and not torch.equal(d1, d2 * 0)
    assert float((d2 - d1).norm() / d1.norm()) <= 1e-10
    s1 = json.loads((tmp_path / "learn1.stats.json").read_text())
    s2 = json.loads((tmp / "learn2.stats.json").read_text())
    assert s1["cbpdn_iterations"] == s2["cbpdn_iterations"]
    np.testing.assert_allclose(s2["objective"], s1["objective"], rtol=1e-10)
    # API, stopped at step 3 and resumed: the same on both ranks and as one process
    g = torch.Generator().manual_seed(0)
    pool = torch.randn(4, 20, 20, generator=g, dtype=torch.float64)
    D0 = torch.randn(6, 5, 5, generator=g, dtype=torch.float64)
    opts = OnlineDictLearnOptions(eta_a=1.0, cbpdn=OnlineDictLearnOptions().cbpdn.replace(max_iter=20))
    sampler = ImageSampler(pool, batch_size=3, crop=12, generator=torch.Generator().manual_seed(1))
    ref = _single_thread(OnlineDictLearn(D0, 0.1, opts).fit, sampler, LEARN_STEPS).dictionary.numpy()
    a0, a1 = np.load(tmp / "api_resumed0.npy"), np.load(tmp / "api_resumed1.npy")
    np.testing.assert_array_equal(a0, a1)
    np.testing.assert_array_equal(np.load(tmp / "api_objective0.npy"), np.load(tmp / "api_objective1.npy"))
    assert np.linalg.norm(a0 - ref) / np.linalg.norm(ref) <= 1e-10
    assert len(np.load(tmp / "api_objective0.npy")) == LEARN_STEPS


def test_distributed_training_resumes_from_checkpoint(spawned):
    """(c) DDP training on 2 processes: rank 0 writes the checkpoint and metrics; a run
    stopped after epoch 1 resumes from the checkpoint on every rank."""
    tmp, reports, _ = spawned
    r0, r1 = reports
    assert r0["train_state_sha"] == r1["train_state_sha"]  # the replicas agree after the resume
    assert r0["train_history"] == r1["train_history"] and len(r0["train_history"]) == 2
    assert r0["train_history"][:1] == r0["train_part_history"]  # epoch 1 from the checkpoint
    m = json.loads((tmp / "train" / "metrics.json").read_text())
    assert m["world_size"] == 2 and [e["epoch"] for e in m["epochs"]] == [1, 2]
    with np.load(tmp / "train" / "checkpoint.npz", allow_pickle=False) as z:
        assert json.loads(str(z["meta"][()]))["epoch"] == 1
    assert not list((tmp / "train").glob(".*.tmp"))


def test_torchrun_cli_train(tmp_path):
    """``torchrun --nproc_per_node 2 -m csc train`` on a code store (gloo, loopback)."""
    from csc.pipeline.store import encode_dataset

    tmp_path.joinpath("d").mkdir()
    images, labels = _images()
    store = encode_dataset(images, labels, tmp_path / "st", _settings(_dictionary_file(tmp_path / "d")),
                           device="cpu")
    env = dict(os.environ, **_loopback_env(), OPENBLAS_NUM_THREADS="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--nnodes", "1",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), "-m", "csc", "train",
           "--store", str(store.root), "--test-store", str(store.root), "--epochs", "1",
           "--batch-size", "4", "--max-steps", "1", "--device", "cpu", "--quiet", "--out", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("test accuracy") == 1  # rank 0 reports
    m = json.loads((out / "metrics.json").read_text())
    assert m["world_size"] == 2 and m["in_channels"] == 4 and [e["epoch"] for e in m["epochs"]] == [1]
    assert (out / "checkpoint.npz").is_file()

"""Bad files and bad output locations (issue 33): edited code stores, Ctrl-C, outputs the user
did not name. Each case asserts the error (type and what it names) and that nothing the user
did not name was written or changed."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import csc
from csc.cli.main import main
from csc.pipeline.datasets import SparseCodeDataset
from csc.pipeline.store import (CodeStore, EncodeSettings, StoreError, StoreFormatWarning, encode_dataset,
                                verify_store)
from csc.pipeline.store_format import _IDENTITY_V1, _digest, _savez_deterministic


# ----------------------------------------------------------------------------- stores
@pytest.fixture(scope="module")
def dict_file(tmp_path_factory) -> str:
    g = torch.Generator().manual_seed(0)
    D = torch.randn(3, 5, 5, generator=g)
    D /= D.flatten(1).norm(dim=1)[:, None, None]
    return str(csc.save_dictionary(tmp_path_factory.mktemp("d") / "dict.npz", D))


def _encode(root: Path, dict_file: str, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (6, 12, 12), dtype=np.uint8)
    encode_dataset(images, np.array([0, 1, 2, 0, 1, 2]), root,
                   EncodeSettings(dictionary=dict_file, max_iter=3, shard_size=2, value_dtype="float32"), device="cpu")
    return root


@pytest.fixture(scope="module")
def stores(tmp_path_factory, dict_file) -> tuple[Path, Path]:
    """Two three-shard stores of the same settings, of different images."""
    base = tmp_path_factory.mktemp("stores")
    return _encode(base / "a", dict_file, 0), _encode(base / "b", dict_file, 1)


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "store"
    shutil.copytree(src, dst)
    return dst


def _manifest(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text())


def _write_manifest(root: Path, m: dict) -> None:
    (root / "manifest.json").write_text(json.dumps(m))


def _reorder_entries(root: Path, other: Path) -> None:
    """Shard entries 0 and 1 swap their files and checksums (the images come back reordered)."""
    m = _manifest(root)
    e0, e1 = m["shards"][0], m["shards"][1]
    for k in ("file", "sha256", "nnz", "bytes"):
        e0[k], e1[k] = e1[k], e0[k]
    _write_manifest(root, m)


def _reorder_files(root: Path, other: Path) -> None:
    """Shard files 0 and 1 renamed into each other's place, their checksums swapped in the manifest."""
    (root / "shard-00000.npz").rename(root / "tmp.npz")
    (root / "shard-00001.npz").rename(root / "shard-00000.npz")
    (root / "tmp.npz").rename(root / "shard-00001.npz")
    m = _manifest(root)
    e0, e1 = m["shards"][0], m["shards"][1]
    e0["sha256"], e1["sha256"] = e1["sha256"], e0["sha256"]
    _write_manifest(root, m)


def _foreign_shard(root: Path, other: Path) -> None:
    """Shard 1 of another store (same settings, other images) grafted in with its entry."""
    shutil.copy(other / "shard-00001.npz", root / "shard-00001.npz")
    m = _manifest(root)
    m["shards"][1] = _manifest(other)["shards"][1]
    _write_manifest(root, m)


def _edit(**fields):
    def edit(root: Path, other: Path) -> None:
        m = _manifest(root)
        m.update(fields)
        _write_manifest(root, m)
    return edit


STORE_EDITS = [
    ("reordered-entries", _reorder_entries, "reordered"),
    ("reordered-files", _reorder_files, "reordered"),
    ("foreign-shard", _foreign_shard, "another store"),
    ("num_classes", _edit(num_classes=7), "num_classes"),
    ("kernels", _edit(kernels=[3, 7, 7]), "kernels"),
    ("value_dtype", _edit(value_dtype="float16"), "value_dtype"),
    ("num_shards", _edit(num_shards=2), "num_shards"),
]


@pytest.mark.parametrize("edit, text", [e[1:] for e in STORE_EDITS], ids=[e[0] for e in STORE_EDITS])
def test_edited_store_fails_verify_and_every_reader(tmp_path, stores, edit, text):
    root = _copy(stores[0], tmp_path)
    assert verify_store(root) == []
    edit(root, stores[1])
    problems = verify_store(root)
    assert problems and text in " ".join(problems), problems
    assert main(["store", "verify", str(root)]) == 1
    for check in (True, False):
        with pytest.raises(StoreError, match=text):
            CodeStore(root, check=check).dense()
    with pytest.raises(StoreError, match=text):
        SparseCodeDataset(root)


def test_edited_store_stops_csc_train_in_one_line(tmp_path, stores, capsys):
    root = _copy(stores[0], tmp_path)
    _reorder_entries(root, stores[1])
    argv = ["train", "--store", str(root), "--test-store", str(stores[0]), "--epochs", "1", "--batch-size", "2",
            "--max-steps", "1", "--device", "cpu", "--quiet", "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "reordered" in err and "shard-0000" in err
    assert not (tmp_path / "run").exists()


def _as_format_1(root: Path) -> None:
    """Rewrite a store as the previous format wrote it (digest over five fields, no header copy)."""
    m = _manifest(root)
    m["version"] = 1
    m["settings_digest"] = _digest({k: m.get(k) for k in _IDENTITY_V1})
    for e in m["shards"]:
        with np.load(root / e["file"], allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays["metadata"][()]))
        meta.pop("store")
        meta["settings_digest"] = m["settings_digest"]
        arrays["metadata"] = np.array(json.dumps(meta, sort_keys=True))
        with open(root / e["file"], "wb") as f:
            _savez_deterministic(f, arrays)
    _write_manifest(root, m)


def test_format_1_store_opens_with_a_warning_and_checks_its_shards(tmp_path, stores):
    root = _copy(stores[0], tmp_path)
    want = CodeStore(root).dense()
    _as_format_1(root)
    with pytest.warns(StoreFormatWarning, match="format version 1.*re-encode"):
        assert torch.equal(CodeStore(root).dense(), want)
    with pytest.warns(StoreFormatWarning):
        assert verify_store(root) == []
    _reorder_files(root, stores[1])  # the manifest is whole: the shards' own headers tell
    with pytest.warns(StoreFormatWarning), pytest.raises(StoreError, match="reordered"):
        CodeStore(root).dense()


def test_format_1_store_is_not_extended_by_encoding(tmp_path, stores, dict_file):
    root = _copy(stores[0], tmp_path)
    _as_format_1(root)
    before = {p.name: p.read_bytes() for p in root.iterdir()}
    with pytest.raises(StoreError, match="format version 1"):
        _encode(root, dict_file, 0)
    assert {p.name: p.read_bytes() for p in root.iterdir()} == before


def test_label_outside_num_classes_is_refused_by_the_reader(tmp_path, stores):
    root = _copy(stores[0], tmp_path)
    with np.load(root / "shard-00000.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["labels"] = np.array([-1, 1])
    with open(root / "shard-00000.npz", "wb") as f:
        _savez_deterministic(f, arrays)
    with pytest.raises(StoreError, match="labels -1..1 outside 0..2"):
        CodeStore(root, check=False).get(0)
    assert any("labels" in p for p in verify_store(root))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- Ctrl-C
#: ``csc`` in a subprocess that sends itself SIGINT right after its first checkpoint or shard
#: is written (the test patches the hook; the library has no test switch)
_SIGINT_CLI = """
import functools, os, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even when started in the background
interrupt = lambda *a, **k: os.kill(os.getpid(), signal.SIGINT)
def after(module, name):
    real = getattr(module, name)
    def wrapper(*a, **k):
        out = real(*a, **k)
        interrupt()
        return out
    setattr(module, name, wrapper)
import csc.pipeline.store, csc.classify.train
from csc.learn.dictlearn import DictLearn
csc.pipeline.store.encode_dataset = functools.partial(csc.pipeline.store.encode_dataset, on_shard=interrupt)
DictLearn.solve = functools.partialmethod(DictLearn.solve, on_checkpoint=interrupt)
after(csc.classify.train, "save_checkpoint")
from csc.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def _interrupted_run(argv: list[str], tmp_path: Path) -> str:
    """Run ``csc argv`` interrupted by SIGINT after its first checkpoint; its stderr."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]) + os.pathsep
               + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", _SIGINT_CLI, *argv], env=env, capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 130, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def _pngs(folder: Path, n: int, size: int) -> Path:
    from matplotlib import image as mpimg

    folder.mkdir(parents=True)
    rng = np.random.RandomState(0)
    for i in range(n):
        img = rng.rand(size, size)
        mpimg.imsave(folder / f"im{i}.png", (img + np.roll(img, 1, 0)) / 2, cmap="gray", vmin=0, vmax=1)
    return folder


def test_sigint_encode_dataset_keeps_its_shards_and_resumes_identically(tmp_path, dict_file):
    images = _pngs(tmp_path / "imgs" / "a", 3, 16).parent
    argv = lambda out: ["encode-dataset", "--dataset", "folder", "--root", str(images), "--dictionary", dict_file,
                        "--max-iter", "5", "--shard-size", "1", "--device", "cpu", "--quiet", "--out", str(out)]
    line = _interrupted_run(argv(tmp_path / "cut"), tmp_path)
    assert line.startswith("csc encode-dataset: interrupted") and "kept in" in line and "again to resume" in line
    assert [e["file"] for e in _manifest(tmp_path / "cut")["shards"]] == ["shard-00000.npz"]
    assert main(argv(tmp_path / "cut")) == 0 and main(argv(tmp_path / "ref")) == 0
    shards = sorted(p.name for p in (tmp_path / "ref").glob("shard-*.npz"))
    assert len(shards) == 3 and sorted(p.name for p in (tmp_path / "cut").glob("shard-*.npz")) == shards
    assert all(_sha(tmp_path / "cut" / s) == _sha(tmp_path / "ref" / s) for s in shards)
    assert verify_store(tmp_path / "cut") == []


def test_sigint_learn_keeps_its_checkpoint_and_resumes_identically(tmp_path):
    images = _pngs(tmp_path / "imgs", 2, 24)
    argv = lambda out, *extra: ["learn", "--images", str(images), "--lmbda", "0.1", "--steps", "4", "--out",
                                str(out), "--crop", "16", "--kernels", "4", "--kernel-size", "5", "--dtype",
                                "float64", "--device", "cpu", "--checkpoint-every", "2", "--seed", "3", "--quiet",
                                *extra]
    line = _interrupted_run(argv(tmp_path / "cut.npz"), tmp_path)
    assert line.startswith("csc learn: interrupted") and "cut.ckpt.npz" in line and "--resume" in line
    assert not (tmp_path / "cut.npz").exists()
    assert main(argv(tmp_path / "cut.npz", "--resume")) == 0 and main(argv(tmp_path / "ref.npz")) == 0
    assert torch.equal(csc.load_dictionary(tmp_path / "cut.npz"), csc.load_dictionary(tmp_path / "ref.npz"))


def test_sigint_train_keeps_its_checkpoint_and_resumes_identically(tmp_path, stores):
    argv = lambda out: ["train", "--store", str(stores[0]), "--test-store", str(stores[1]), "--epochs", "2",
                        "--batch-size", "3", "--device", "cpu", "--workers", "0", "--quiet", "--out", str(out)]
    line = _interrupted_run(argv(tmp_path / "cut"), tmp_path)
    assert line.startswith("csc train: interrupted") and "checkpoint.npz" in line and "again to resume" in line
    assert main(argv(tmp_path / "cut")) == 0 and main(argv(tmp_path / "ref")) == 0
    with np.load(tmp_path / "cut" / "checkpoint.npz") as a, np.load(tmp_path / "ref" / "checkpoint.npz") as b:
        assert a.files == b.files
        assert all(np.array_equal(a[k], b[k]) for k in a.files if k != "meta")
    rows = [[{k: v for k, v in r.items() if "seconds" not in k} for r in json.loads(
        (tmp_path / run / "metrics.json").read_text())["epochs"]] for run in ("cut", "ref")]
    assert rows[0] == rows[1] and len(rows[0]) == 2


# ------------------------------------------------------- outputs the user did not name
def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): _sha(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def _encode_argv(images: Path, dict_file: str, out, *extra) -> list[str]:
    return ["encode", *sorted(str(p) for p in images.glob("*.png")), "--dictionary", dict_file, "--lmbda", "0.1",
            "--max-iter", "3", "--device", "cpu", "--quiet", "--out", str(out), *extra]


def _fails_naming(argv, capsys, *texts) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and all(t in err for t in texts), err
    return err


def test_encode_refuses_an_empty_out(tmp_path, dict_file, capsys, monkeypatch):
    images = _pngs(tmp_path / "imgs", 2, 16)
    monkeypatch.chdir(tmp_path)
    before = _snapshot(tmp_path)
    _fails_naming(_encode_argv(images, dict_file, ""), capsys, "--out", "empty path")
    assert _snapshot(tmp_path) == before


def test_encode_does_not_rewrite_an_earlier_run_unless_asked(tmp_path, dict_file, capsys):
    images = _pngs(tmp_path / "imgs", 2, 16)
    out = tmp_path / "out"
    assert main(_encode_argv(images, dict_file, out)) == 0
    before = _snapshot(out)
    assert "results.json" in before and len(before) == 5
    _fails_naming(_encode_argv(images, dict_file, out, "--max-iter", "4"), capsys, "--out", str(out), "--overwrite")
    assert _snapshot(out) == before
    assert main(_encode_argv(images, dict_file, out, "--max-iter", "4", "--overwrite")) == 0
    assert json.loads((out / "results.json").read_text())["max_iter"] == 4


def test_encode_refuses_a_folder_holding_other_files(tmp_path, dict_file, capsys):
    images = _pngs(tmp_path / "imgs", 2, 16)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "im0.codes.npz").write_bytes(b"the user's own file")
    _fails_naming(_encode_argv(images, dict_file, out), capsys, "--out", "im0.codes.npz")
    assert (out / "im0.codes.npz").read_bytes() == b"the user's own file" and len(list(out.iterdir())) == 1


def test_encode_dataset_refuses_a_folder_holding_other_files_but_resumes_its_store(tmp_path, dict_file, capsys):
    images = _pngs(tmp_path / "imgs" / "a", 2, 16).parent
    argv = lambda out, *extra: ["encode-dataset", "--dataset", "folder", "--root", str(images), "--dictionary",
                                dict_file, "--max-iter", "3", "--device", "cpu", "--quiet", "--out", str(out), *extra]
    out = tmp_path / "notes"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    _fails_naming(argv(out), capsys, "--out", "notes.txt", "--overwrite")
    assert _snapshot(out) == {"notes.txt": _sha(out / "notes.txt")}
    _fails_naming(argv(""), capsys, "--out", "empty path")
    assert main(argv(out, "--overwrite")) == 0 and verify_store(out) == []
    store = tmp_path / "store"
    assert main(argv(store)) == 0
    before = _snapshot(store)
    assert main(argv(store)) == 0  # its own store: resumed (nothing to do), not refused
    assert {k: v for k, v in _snapshot(store).items() if k != "manifest.json"} == \
        {k: v for k, v in before.items() if k != "manifest.json"}


def test_encode_killed_between_images_leaves_no_unlisted_codes(tmp_path, dict_file, monkeypatch):
    """The codes file of an image is written only once results.json lists it."""
    from matplotlib import image as mpimg

    images = _pngs(tmp_path / "imgs", 3, 16)
    real, calls = mpimg.imsave, []

    def imsave(*a, **k):  # the second reconstruction: the process is stopped while writing it
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(mpimg, "imsave", imsave)
    out = tmp_path / "out"
    assert main(_encode_argv(images, dict_file, out)) == 130
    listed = {r["codes_file"] for r in json.loads((out / "results.json").read_text())["images"]}
    on_disk = {p.name for p in out.glob("*.codes.npz")}
    assert on_disk and on_disk <= listed and len(on_disk) == 2


def test_paper_table1_checks_every_option_before_writing(tmp_path, capsys):
    out = tmp_path / "t1"
    base = ["paper", "table1", "--out", str(out), "--dataset", "cifar10", "--root", str(tmp_path / "none"),
            "--train-count", "2", "--test-count", "2", "--quiet"]
    _fails_naming(base + ["--epochs", "0"], capsys, "--epochs")
    _fails_naming(base + ["--prune", "none", "2"], capsys, "--prune")
    _fails_naming(base + ["--normalise", "0.5", "0"], capsys, "--normalise")
    _fails_naming(base + ["--dictionaries", str(tmp_path / "nodict.npz")], capsys, "nodict.npz")
    _fails_naming(base, capsys, str(tmp_path / "none"))  # the dataset, before any folder is made
    _fails_naming(["paper", "table1", "--out", "", "--quiet"], capsys, "--out", "empty path")
    assert not out.exists()


# ------------------------------------------------------------ encode_dataset's inputs
_IMGS = np.random.default_rng(0).integers(0, 256, (3, 12, 12), dtype=np.uint8)
DATASET_CASES = [
    ("uint16-images", dict(images=_IMGS.astype(np.uint16) * 257), "images", "uint16"),
    ("int64-images", dict(images=_IMGS.astype(np.int64)), "images", "int64"),
    ("0-255-floats", dict(images=_IMGS.astype(np.float32)), "images", "[0, 1]"),
    ("nan-image", dict(images=np.full((3, 12, 12), np.nan, np.float32)), "images", "finite"),
    ("fractional-label", dict(labels=np.array([0, 1.5, 2])), "labels", "1.5"),
    ("label-minus-1", dict(labels=np.array([0, -1, 2])), "labels", "-1"),
    ("string-labels", dict(labels=np.array(["a", "b", "c"])), "labels", "integers"),
    ("duplicate-ids", dict(ids=[4, 5, 4]), "ids", "id 4"),
    ("negative-id", dict(ids=[0, -1, 2]), "ids", "-1"),
    ("fractional-id", dict(ids=[0, 1.5, 2]), "ids", "1.5"),
]


@pytest.mark.parametrize("change, arg, text", [c[1:] for c in DATASET_CASES], ids=[c[0] for c in DATASET_CASES])
def test_encode_dataset_refuses_inputs_it_would_code_wrongly(tmp_path, dict_file, change, arg, text):
    kw = dict(images=_IMGS, labels=np.array([0, 1, 2]), ids=None)
    kw.update(change)
    out = tmp_path / "store"
    with pytest.raises(ValueError) as info:
        encode_dataset(kw["images"], kw["labels"], out, EncodeSettings(dictionary=dict_file, max_iter=2),
                       ids=kw["ids"], device="cpu")
    assert str(info.value).startswith(f"{arg}:") and text in str(info.value)
    assert not out.exists()


def test_encode_dataset_takes_whole_float_labels_and_float_images_in_range(tmp_path, dict_file):
    st = encode_dataset(_IMGS / 255.0, np.array([0.0, 1.0, 2.0]), tmp_path / "s",
                        EncodeSettings(dictionary=dict_file, max_iter=2), device="cpu")
    assert st.labels.tolist() == [0, 1, 2] and st.labels.dtype == np.int64


def test_learn_does_not_replace_an_existing_out_file_unless_asked(tmp_path, capsys):
    images = _pngs(tmp_path / "imgs", 1, 24)
    out = tmp_path / "dict.npz"
    out.write_bytes(b"the user's dictionary")
    argv = ["learn", "--images", str(images), "--lmbda", "0.1", "--steps", "1", "--crop", "16", "--kernels", "2",
            "--kernel-size", "5", "--device", "cpu", "--checkpoint-every", "0", "--quiet", "--out", str(out)]
    _fails_naming(argv, capsys, "--out", str(out), "--overwrite")
    assert out.read_bytes() == b"the user's dictionary" and sorted(p.name for p in tmp_path.iterdir()) == \
        ["dict.npz", "imgs"]
    assert main(argv + ["--overwrite"]) == 0 and csc.load_dictionary(out).shape == (2, 5, 5)


def test_train_refuses_a_run_folder_holding_other_files(tmp_path, stores, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("keep me")
    argv = ["train", "--store", str(stores[0]), "--test-store", str(stores[1]), "--epochs", "1", "--batch-size", "3",
            "--max-steps", "1", "--device", "cpu", "--workers", "0", "--quiet", "--out", str(run)]
    _fails_naming(argv, capsys, "--out", "notes.txt", "--overwrite")
    assert _snapshot(run) == {"notes.txt": _sha(run / "notes.txt")}
    _fails_naming(argv[:-1] + [""], capsys, "--out", "empty path")
    assert main(argv + ["--overwrite"]) == 0 and (run / "checkpoint.npz").is_file()
    assert main(argv) == 2  # the notes are still there: without --overwrite still refused
    assert (run / "notes.txt").read_text() == "keep me"


def test_loggabor_does_not_replace_an_existing_out_file_unless_asked(tmp_path, capsys):
    out = tmp_path / "mine.npz"
    out.write_bytes(b"the user's file")
    argv = ["loggabor", "--preset", "heterogeneous", "--size", "8", "--out", str(out)]
    _fails_naming(argv, capsys, "--out", str(out), "--overwrite")
    assert out.read_bytes() == b"the user's file"
    assert main(argv + ["--overwrite"]) == 0 and csc.load_dictionary(out).shape[-1] == 8


def test_demo_refuses_a_folder_holding_other_files_and_reruns_over_its_own(tmp_path, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    argv = ["demo", "--quick", "--images", "camera", "--dictionaries", "heterogeneous", "--no-figure", "--quiet",
            "--out", str(out)]
    _fails_naming(argv, capsys, "--out", "notes.txt", "--overwrite")
    assert _snapshot(out) == {"notes.txt": _sha(out / "notes.txt")}
    (out / "notes.txt").unlink()
    assert main(argv) == 0 and (out / "demo.json").is_file()
    assert main(argv) == 0  # its own outputs: a rerun replaces them

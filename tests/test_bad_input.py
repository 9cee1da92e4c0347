"""Bad input across the API, the command line and files: a clear error naming the argument,
never a traceback from deep inside or a silently wrong answer.

Each case asserts the error type and that the message names what was wrong. The CLI cases
assert exit status 2 and one ``csc <command>: error: ...`` line naming the option.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import csc
from csc.cli.main import main
from csc.learn.options import DictUpdateOptions
from csc.learn.onlinecdl import ImageSampler
from csc.pipeline.preprocess import Preprocess, local_contrast_normalise, tikhonov_filter
from csc.pipeline.store import EncodeSettings, StoreError, encode_dataset, verify_store

G = torch.Generator().manual_seed(0)
D = torch.randn(4, 5, 5, generator=G, dtype=torch.float64)
S = torch.rand(2, 16, 16, generator=G, dtype=torch.float64)
RGB = np.random.default_rng(0).random((24, 24, 3))


def _solve(**kw):
    return lambda: csc.ConvBPDN(D, 0.1, csc.CBPDNOptions(max_iter=3, **kw)).solve(S)


# (id, call, error type, text the message must contain)
API_CASES = [
    # numbers given as strings or bools
    ("lmbda-str", lambda: csc.ConvBPDN(D, "0.05"), TypeError, "lmbda"),
    ("lmbda-bool", lambda: csc.ConvBPDN(D, True), TypeError, "lmbda"),
    ("lmbda-negative", lambda: csc.ConvBPDN(D, -1.0), ValueError, "lmbda"),
    ("lmbda-nan", lambda: csc.ConvBPDN(D, float("nan")), ValueError, "lmbda"),
    ("rho-str", lambda: csc.CBPDNOptions(rho="2"), TypeError, "rho"),
    ("rho-abc", lambda: csc.CBPDNOptions(rho="abc"), TypeError, "rho"),
    ("rho-negative", lambda: csc.CBPDNOptions(rho=-1.0), ValueError, "rho"),
    ("max_iter-bool", lambda: csc.CBPDNOptions(max_iter=True), TypeError, "max_iter"),
    ("max_iter-str", lambda: csc.CBPDNOptions(max_iter="10"), TypeError, "max_iter"),
    ("max_iter-negative", lambda: csc.CBPDNOptions(max_iter=-1), ValueError, "max_iter"),
    ("l1_weight-bool", lambda: csc.CBPDNOptions(l1_weight=True), TypeError, "l1_weight"),
    ("l1_weight-str", lambda: csc.CBPDNOptions(l1_weight="1"), TypeError, "l1_weight"),
    ("l1_weight-negative", lambda: csc.CBPDNOptions(l1_weight=-0.5), ValueError, "l1_weight"),
    ("l1_weight-shape", _solve(l1_weight=np.ones(3)), ValueError, "l1_weight"),
    ("l1_weight-array-negative", _solve(l1_weight=-np.ones(4)), ValueError, "l1_weight"),
    ("nonneg-int", lambda: csc.CBPDNOptions(nonneg=1), TypeError, "nonneg"),
    ("nonneg-str", lambda: csc.CBPDNOptions(nonneg="yes"), TypeError, "nonneg"),
    ("auto_rho-str", lambda: csc.CBPDNOptions(auto_rho="False"), TypeError, "auto_rho"),
    ("relax-str", lambda: csc.CBPDNOptions(relax="1.8"), TypeError, "relax"),
    ("relax-range", lambda: csc.CBPDNOptions(relax=2.0), ValueError, "relax"),
    ("rel_stop_tol-nan", lambda: csc.CBPDNOptions(rel_stop_tol=float("nan")), ValueError, "rel_stop_tol"),
    ("rsdl_ratio-below-1", lambda: csc.CBPDNOptions(rsdl_ratio=0.5), ValueError, "rsdl_ratio"),
    ("sync_interval-zero", lambda: csc.CBPDNOptions(sync_interval=0), ValueError, "sync_interval"),
    ("backend", lambda: csc.CBPDNOptions(backend="cuda"), ValueError, "backend"),
    ("dtype", lambda: csc.CBPDNOptions(dtype="int32"), ValueError, "dtype"),
    ("fftw_planner", lambda: csc.CBPDNOptions(fftw_planner="FAST"), ValueError, "fftw_planner"),
    ("device-bogus", lambda: csc.CBPDNOptions(device="bogus"), ValueError, "device"),
    ("device-type", lambda: csc.CBPDNOptions(device=3), TypeError, "device"),
    ("options-type", lambda: csc.ConvBPDN(D, 0.1, {"max_iter": 3}), TypeError, "options"),
    # SPORCO option dicts
    ("from_sporco-int", lambda: csc.CBPDNOptions.from_sporco(5), TypeError, "opt"),
    ("from_sporco-list", lambda: csc.CBPDNOptions.from_sporco([("MaxMainIter", 5)]), TypeError, "opt"),
    ("from_sporco-unknown", lambda: csc.CBPDNOptions.from_sporco({"MaxIter": 5}), ValueError, "MaxIter"),
    ("from_sporco-value-str", lambda: csc.CBPDNOptions.from_sporco({"MaxMainIter": "5"}), TypeError, "MaxMainIter"),
    ("from_sporco-autorho", lambda: csc.CBPDNOptions.from_sporco({"AutoRho": {"Scaling": "2"}}), TypeError,
     "AutoRho.Scaling"),
    ("from_sporco-Y0", lambda: csc.CBPDNOptions.from_sporco({"Y0": np.zeros(3)}), ValueError, "Y0"),
    ("dictlearn-from_sporco-int", lambda: csc.DictLearnOptions.from_sporco(5), TypeError, "opt"),
    ("online-from_sporco-int", lambda: csc.OnlineDictLearnOptions.from_sporco("x"), TypeError, "opt"),
    # images
    ("images-int", lambda: csc.ConvBPDN(D, 0.1).solve(np.ones((16, 16), dtype=np.int64)), TypeError, "images"),
    ("images-int-with-dtype", lambda: csc.ConvBPDN(D, 0.1, csc.CBPDNOptions(dtype=torch.float64)).solve(
        np.ones((16, 16), dtype=np.uint8)), TypeError, "images"),
    ("images-bool", lambda: csc.ConvBPDN(D, 0.1).solve(torch.ones(16, 16, dtype=torch.bool)), TypeError, "images"),
    ("images-complex", lambda: csc.ConvBPDN(D, 0.1).solve(torch.ones(16, 16, dtype=torch.complex128)), TypeError,
     "images"),
    ("images-nan", lambda: csc.ConvBPDN(D, 0.1).solve(torch.full((16, 16), float("nan"), dtype=torch.float64)),
     ValueError, "images"),
    ("images-1d", lambda: csc.ConvBPDN(D, 0.1).solve(torch.ones(16, dtype=torch.float64)), ValueError, "images"),
    ("images-empty", lambda: csc.ConvBPDN(D, 0.1).solve(torch.ones(0, 16, 16, dtype=torch.float64)), ValueError,
     "images"),
    ("images-smaller-than-kernels", lambda: csc.ConvBPDN(D, 0.1).solve(torch.ones(4, 4, dtype=torch.float64)),
     ValueError, "images"),
    ("images-channels-last", lambda: csc.ConvBPDN(D, 0.1).solve(RGB), ValueError, "channels-last"),
    ("images-dtype-mismatch", lambda: csc.ConvBPDN(D, 0.1).solve(S.float()), TypeError, "images"),
    ("images-object", lambda: csc.ConvBPDN(D, 0.1).solve(object()), TypeError, "images"),
    ("y0-shape", lambda: csc.ConvBPDN(D, 0.1, csc.CBPDNOptions(max_iter=2)).solve(S, y0=torch.zeros(2, 3, 16, 16)),
     ValueError, "y0"),
    ("images-overflow", lambda: csc.ConvBPDN(D.float(), 0.1, csc.CBPDNOptions(max_iter=5)).solve(
        torch.rand(16, 16, generator=torch.Generator().manual_seed(1)) * 3e38), ValueError, "overflow"),
    # dictionaries
    ("dictionary-sporco-layout", lambda: csc.ConvBPDN(torch.randn(12, 12, 36, dtype=torch.float64), 0.1),
     ValueError, "from_sporco_layout"),
    ("dictionary-2d", lambda: csc.ConvBPDN(torch.randn(5, 5, dtype=torch.float64), 0.1), ValueError, "dictionary"),
    ("dictionary-int", lambda: csc.ConvBPDN(np.ones((4, 5, 5), dtype=np.int32), 0.1), TypeError, "dictionary"),
    ("dictionary-nan", lambda: csc.ConvBPDN(D * float("nan"), 0.1), ValueError, "dictionary"),
    ("dictionary-empty", lambda: csc.ConvBPDN(torch.ones(0, 5, 5, dtype=torch.float64), 0.1), ValueError,
     "dictionary"),
    ("dictionary-multichannel-grey-images", lambda: csc.ConvBPDN(torch.ones(4, 3, 5, 5, dtype=torch.float64), 0.1).solve(
        S), ValueError, "channels"),
    ("dictlearn-multichannel-grey-images", lambda: csc.DictLearn(torch.rand(4, 3, 5, 5, dtype=torch.float64), 0.1,
                                                                 csc.DictLearnOptions(max_iter=1)).solve(S),
     ValueError, "(C, H, W) or (B, C, H, W)"),
    ("load_dictionary-None", lambda: csc.load_dictionary(None), TypeError, "dictionary"),
    ("load_dictionary-int", lambda: csc.load_dictionary(5), TypeError, "dictionary"),
    ("load_dictionary-unknown", lambda: csc.load_dictionary("no-such-dictionary"), FileNotFoundError,
     "no-such-dictionary"),
    ("load_dictionary-layout", lambda: csc.load_dictionary("heterogeneous", layout="matlab"), ValueError, "layout"),
    ("from_sporco_layout-int", lambda: csc.from_sporco_layout(5, "dictionary"), TypeError, "array"),
    ("from_sporco_layout-kind", lambda: csc.from_sporco_layout(np.ones((5, 5, 4)), "kernels"), ValueError, "kind"),
    ("save_dictionary-nan", lambda: csc.save_dictionary(Path(tempfile.gettempdir()) / "csc-never.npz",
                                                        D * float("nan")), ValueError, "kernels"),
    # learners
    ("dictlearn-int-images", lambda: csc.DictLearn(D, 0.1, csc.DictLearnOptions(max_iter=1)).solve(
        np.ones((2, 16, 16), dtype=np.int64)), TypeError, "images"),
    ("dictlearn-overflow", lambda: csc.DictLearn(D.float(), 0.1, csc.DictLearnOptions(max_iter=3)).solve(
        torch.rand(2, 16, 16, generator=torch.Generator().manual_seed(2)) * 3e38), ValueError, "overflow"),
    ("online-overflow", lambda: csc.OnlineDictLearn(D.float(), 0.1).fit(ImageSampler(
        torch.rand(2, 16, 16, generator=torch.Generator().manual_seed(2)) * 3e38), 2), ValueError, "overflow"),
    ("dictlearn-lmbda-str", lambda: csc.DictLearn(D, "0.1"), TypeError, "lmbda"),
    ("dictlearn-sporco-layout", lambda: csc.DictLearn(torch.randn(8, 8, 16, dtype=torch.float64), 0.1), ValueError,
     "from_sporco_layout"),
    ("dictlearn-channels-last", lambda: csc.DictLearn(D, 0.1, csc.DictLearnOptions(max_iter=1)).solve(RGB),
     ValueError, "channels-last"),
    ("dictlearn-max_iter-bool", lambda: csc.DictLearnOptions(max_iter=True), TypeError, "max_iter"),
    ("dictlearn-dmethod", lambda: csc.DictLearnOptions(dmethod="mod"), ValueError, "dmethod"),
    ("dictlearn-accurate_dfid-int", lambda: csc.DictLearnOptions(accurate_dfid=1), TypeError, "accurate_dfid"),
    ("ccmod-L-str", lambda: DictUpdateOptions(L="1"), TypeError, "L"),
    ("ccmod-zero_mean-int", lambda: DictUpdateOptions(zero_mean=1), TypeError, "zero_mean"),
    ("online-eta_a-negative", lambda: csc.OnlineDictLearnOptions(eta_a=-1.0), ValueError, "eta_a"),
    ("online-eta_b-str", lambda: csc.OnlineDictLearnOptions(eta_b="5"), TypeError, "eta_b"),
    ("online-device", lambda: csc.OnlineDictLearnOptions(device="tpu"), ValueError, "device"),
    # metrics, pruning, preprocessing
    ("psnr-channels-last", lambda: csc.psnr(RGB, RGB * 0.5), ValueError, "channels-last"),
    ("psnr-shapes", lambda: csc.psnr(np.ones((8, 8)), np.ones((8, 9))), ValueError, "shape"),
    ("psnr-int", lambda: csc.psnr(np.ones((8, 8), dtype=np.int64), np.ones((8, 8))), TypeError, "reference"),
    ("prune-relative-above-1", lambda: csc.prune(torch.rand(4, 8, 8), 1.5, relative=True), ValueError, "threshold"),
    ("sweep-relative-above-1", lambda: csc.pruning_sweep(torch.rand(1, 4, 16, 16, dtype=torch.float64), D, S[:1],
                                                          thresholds=[0.5, 2.0], relative=True), ValueError,
     "thresholds"),
    ("prune-negative", lambda: csc.prune(torch.rand(4, 8, 8), -0.1), ValueError, "threshold"),
    ("prune-str", lambda: csc.prune(torch.rand(4, 8, 8), "0.1"), TypeError, "threshold"),
    ("prune-relative-int", lambda: csc.prune(torch.rand(4, 8, 8), 0.1, relative=1), TypeError, "relative"),
    ("tikhonov-channels-last", lambda: tikhonov_filter(RGB, 5.0), ValueError, "channels-last"),
    ("lcn-channels-last", lambda: local_contrast_normalise(RGB), ValueError, "channels-last"),
    ("preprocess-kind", lambda: Preprocess("whiten"), ValueError, "whiten"),
    # stores
    ("settings-lmbda-str", lambda: EncodeSettings(lmbda="0.1"), TypeError, "lmbda"),
    ("settings-max_iter-zero", lambda: EncodeSettings(max_iter=0), ValueError, "max_iter"),
    ("settings-size-zero", lambda: EncodeSettings(size=0), ValueError, "size"),
    ("settings-dictionary-None", lambda: EncodeSettings(dictionary=None), TypeError, "dictionary"),
    ("settings-value_dtype", lambda: EncodeSettings(value_dtype="int8"), ValueError, "value_dtype"),
    ("codestore-missing", lambda: csc.CodeStore("/nonexistent/store"), StoreError, "manifest"),
    ("dataset-prune-above-1", lambda: csc.SparseCodeDataset(_tiny_store(), prune=1.5), ValueError, "prune"),
]


_STORE: list[Path] = []


def _tiny_store() -> Path:
    """A two-image store, made once (for the cases that need a valid store)."""
    if not _STORE:
        root = Path(tempfile.mkdtemp(prefix="csc-bad-input-"))
        path = root / "dict.npz"
        csc.save_dictionary(path, D.float())
        rng = np.random.default_rng(0)
        encode_dataset(rng.integers(0, 256, (2, 16, 16), dtype=np.uint8), np.array([0, 1]), root / "store",
                       EncodeSettings(dictionary=str(path), max_iter=3, shard_size=1), device="cpu")
        _STORE.append(root / "store")
    return _STORE[0]


@pytest.mark.parametrize("call, error, text", [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_api_bad_input(call, error, text):
    with pytest.raises(error) as info:
        call()
    assert text in str(info.value)


def test_requires_grad_inputs_give_the_detached_answer():
    Dg, Sg = D.clone().requires_grad_(True), S.clone().requires_grad_(True)
    opts = csc.CBPDNOptions(max_iter=10)
    got = csc.ConvBPDN(Dg, 0.1, opts).solve(Sg).codes
    want = csc.ConvBPDN(D, 0.1, opts).solve(S).codes
    assert not got.requires_grad
    assert torch.equal(got, want)


def test_verbose_is_said_not_silently_ignored():
    with pytest.warns(UserWarning, match="Verbose"):
        csc.FISTAOptions.from_sporco({"Verbose": True})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        csc.FISTAOptions.from_sporco({"Verbose": False})
        assert csc.CBPDNOptions.from_sporco({"Verbose": True}).verbose  # the ADMM solvers print the table


# ------------------------------------------------------------------------- manifests
def _copy_store(tmp_path) -> Path:
    dst = tmp_path / "store"
    shutil.copytree(_tiny_store(), dst)
    return dst


def _edit_manifest(root: Path, edit) -> None:
    m = json.loads((root / "manifest.json").read_text())
    edit(m)
    (root / "manifest.json").write_text(json.dumps(m))


MANIFEST_EDITS = [
    ("settings-lmbda", lambda m: m["settings"].update(lmbda=0.5), "settings_digest"),
    ("dictionary-hash", lambda m: m.update(dictionary_sha256="0" * 64), "settings_digest"),
    ("code-shape", lambda m: m.update(code_shape=[4, 8, 8]), "settings_digest"),
    ("shard-entry-removed", lambda m: m["shards"].pop(0), "missing"),
    ("no-shards", lambda m: m.pop("shards"), "shards"),
    ("shards-not-a-list", lambda m: m.update(shards="all"), "shards"),
    ("entry-garbage", lambda m: m["shards"].__setitem__(0, {"file": 3}), "malformed"),
]


@pytest.mark.parametrize("edit, text", [e[1:] for e in MANIFEST_EDITS], ids=[e[0] for e in MANIFEST_EDITS])
def test_edited_manifest_is_refused(tmp_path, edit, text):
    root = _copy_store(tmp_path)
    assert verify_store(root) == []
    _edit_manifest(root, edit)
    problems = verify_store(root)
    assert problems and text in " ".join(problems)
    with pytest.raises(StoreError, match=text):
        csc.CodeStore(root)


def test_garbage_manifest_is_refused(tmp_path):
    root = _copy_store(tmp_path)
    (root / "manifest.json").write_text("{not json")
    with pytest.raises(StoreError, match="manifest.json"):
        csc.CodeStore(root)


# ------------------------------------------------------------------- checkpoint files
@pytest.mark.parametrize("content", [b"", b"garbage" * 10, b"PK\x03\x04truncated"], ids=["empty", "garbage", "zip"])
def test_unreadable_checkpoints_are_named(tmp_path, content):
    from csc.classify.models import resnet18
    from csc.classify.train import load_checkpoint
    from csc.learn.dictlearn import load_checkpoint as load_learner_checkpoint

    path = tmp_path / "checkpoint.npz"
    path.write_bytes(content)
    for call in (lambda: load_checkpoint(path, resnet18(1, 2)), lambda: load_learner_checkpoint(path)):
        with pytest.raises(ValueError) as info:
            call()
        msg = str(info.value)
        assert str(path) in msg and "allow_pickle" not in msg and "pickle.load" not in msg


def test_pickled_file_is_refused_without_pickle_advice(tmp_path):
    path = tmp_path / "dict.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError) as info:
        csc.load_dictionary(path)
    msg = str(info.value)
    assert str(path) in msg and "never loads" in msg and "allow_pickle" not in msg and "pickle.load" not in msg


def test_truncated_training_checkpoint_stops_the_cli(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.npz").write_bytes(b"PK\x03\x04")
    store = str(_tiny_store())
    rc = main(["train", "--store", store, "--test-store", store, "--epochs", "1", "--batch-size", "2",
               "--device", "cpu", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "checkpoint" in err and len(err.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- CLI
def _builtin_encode(out, *extra):
    return ["encode", "builtin:camera", "--dictionary", "heterogeneous", "--lmbda", "0.1", "--crop", "24",
            "--max-iter", "2", "--out", str(out), "--quiet", *extra]


CLI_CASES = [
    ("encode-device-bogus", lambda t: _builtin_encode(t / "o", "--device", "bogus"), "--device"),
    ("encode-device-cuda", lambda t: _builtin_encode(t / "o", "--device", "cuda"), "cuda"),
    ("encode-crop-zero", lambda t: _builtin_encode(t / "o", "--crop", "0"), "--crop"),
    ("encode-crop-too-big", lambda t: _builtin_encode(t / "o", "--crop", "4000"), "--crop"),
    ("encode-max-iter-str", lambda t: _builtin_encode(t / "o", "--max-iter", "many"), "--max-iter"),
    ("encode-lmbda-negative", lambda t: _builtin_encode(t / "o", "--lmbda", "-1"), "--lmbda"),
    ("encode-no-such-image", lambda t: ["encode", str(t / "nope.png"), "--dictionary", "heterogeneous",
                                        "--lmbda", "0.1", "--out", str(t / "o")], "nope.png"),
    ("encode-no-such-dictionary", lambda t: _builtin_encode(t / "o", "--dictionary", "nope"), "nope"),
    ("encode-out-is-a-file", lambda t: _builtin_encode(_a_file(t)), "is a file"),
    ("learn-crop-zero", lambda t: ["learn", "--images", "builtin:camera", "--lmbda", "0.1", "--steps", "1",
                                   "--crop", "0", "--out", str(t / "d.npz")], "--crop"),
    ("learn-steps-zero", lambda t: ["learn", "--images", "builtin:camera", "--lmbda", "0.1", "--steps", "0",
                                    "--out", str(t / "d.npz")], "--steps"),
    ("learn-device-bogus", lambda t: ["learn", "--images", "builtin:camera", "--lmbda", "0.1", "--steps", "1",
                                      "--device", "bogus", "--out", str(t / "d.npz")], "--device"),
    ("learn-out-is-a-folder", lambda t: ["learn", "--images", "builtin:camera", "--lmbda", "0.1", "--steps", "1",
                                         "--crop", "32", "--out", str(t)], "is a folder"),
    ("encode-dataset-count-zero", lambda t: ["encode-dataset", "--dataset", "folder", "--root", str(t),
                                             "--count", "0", "--out", str(t / "s")], "--count"),
    ("encode-dataset-count-negative", lambda t: ["encode-dataset", "--dataset", "folder", "--root", str(t),
                                                 "--count", "-3", "--out", str(t / "s")], "--count"),
    ("encode-dataset-start-negative", lambda t: ["encode-dataset", "--dataset", "folder", "--root", str(t),
                                                 "--start", "-1", "--out", str(t / "s")], "--start"),
    ("encode-dataset-start-past-end", lambda t: ["encode-dataset", "--dataset", "folder", "--root", _folder(t),
                                                 "--start", "50", "--out", str(t / "s")], "--start"),
    ("encode-dataset-device-bogus", lambda t: ["encode-dataset", "--dataset", "folder", "--root", _folder(t),
                                               "--device", "bogus", "--out", str(t / "s")], "--device"),
    ("encode-dataset-size-too-small", lambda t: ["encode-dataset", "--dataset", "folder", "--root", _folder(t),
                                                 "--size", "4", "--out", str(t / "s")], "size"),
    ("train-prune-above-1", lambda t: ["train", "--store", str(_tiny_store()), "--test-store", str(_tiny_store()),
                                       "--prune", "1.5", "--out", str(t / "r")], "prune"),
    ("train-device-bogus", lambda t: ["train", "--store", str(_tiny_store()), "--test-store", str(_tiny_store()),
                                      "--device", "bogus", "--out", str(t / "r")], "--device"),
    ("train-epochs-zero", lambda t: ["train", "--pixels", "fashion-mnist", "--epochs", "0", "--out", str(t / "r")],
     "--epochs"),
    ("train-no-stores", lambda t: ["train", "--out", str(t / "r")], "--store"),
    ("demo-device-bogus", lambda t: ["demo", "--quick", "--device", "bogus", "--out", str(t / "d")], "device"),
    ("bench-iters-zero", lambda t: ["bench", "--iters", "0"], "--iters"),
    ("bench-device-bogus", lambda t: ["bench", "--device", "bogus"], "--device"),
    ("table-no-runs", lambda t: ["table", str(t)], "runs"),
    # round two (issue 33)
    ("learn-builtin-no-name", lambda t: ["learn", "--images", "builtin:", "--lmbda", "0.1", "--steps", "1",
                                         "--crop", "32", "--out", str(t / "d.npz")], "--images"),
    ("learn-builtin-comma", lambda t: ["learn", "--images", "builtin:,", "--lmbda", "0.1", "--steps", "1",
                                       "--crop", "32", "--out", str(t / "d.npz")], "camera"),
    ("learn-zero-mean-1x1", lambda t: ["learn", "--images", "builtin:camera", "--lmbda", "0.1", "--steps", "1",
                                       "--crop", "32", "--kernel-size", "1", "--zero-mean", "--out",
                                       str(t / "d.npz")], "--zero-mean"),
    ("train-normalise-nan", lambda t: _train_argv(t, "--normalise", "nan", "1"), "--normalise"),
    ("train-normalise-inf", lambda t: _train_argv(t, "--normalise", "0", "inf"), "--normalise"),
    ("train-normalise-std-zero", lambda t: _train_argv(t, "--normalise", "0", "0"), "--normalise"),
    ("train-normalise-std-negative", lambda t: _train_argv(t, "--normalise", "0", "-1"), "STD"),
    ("train-amp-on-cpu", lambda t: _train_argv(t, "--amp", "on"), "--amp on"),
]


def _train_argv(t: Path, *extra) -> list[str]:
    store = str(_tiny_store())
    return ["train", "--store", store, "--test-store", store, "--epochs", "1", "--batch-size", "2", "--device", "cpu",
            "--out", str(t / "r"), "--quiet", *extra]


def _a_file(t: Path) -> Path:
    p = t / "a-file"
    p.write_text("x")
    return p


def _folder(t: Path) -> str:
    """A folder of three 20×20 PNG images (an image-folder dataset)."""
    from matplotlib import image as mpimg

    root = t / "images"
    (root / "a").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        mpimg.imsave(root / "a" / f"{i}.png", rng.random((20, 20)), cmap="gray")
    return str(root)


@pytest.mark.parametrize("argv, text", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input(tmp_path, capsys, argv, text):
    before = sorted(p.name for p in tmp_path.iterdir())
    rc = main(argv(tmp_path))
    err = capsys.readouterr().err
    assert rc != 0
    assert text in err
    assert "Traceback" not in err
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith(("usage:", " "))]
    assert len(lines) == 1, err
    made = set(p.name for p in tmp_path.iterdir()) - set(before) - {"images", "a-file"}
    assert not made, f"left behind: {made}"


def test_store_verify_reports_a_missing_store(tmp_path, capsys):
    assert main(["store", "verify", str(tmp_path / "nothing")]) == 1
    assert "no manifest.json" in capsys.readouterr().out


# -------------------------------------------------------------- read-only outputs
@pytest.fixture
def readonly_dir(tmp_path) -> Path:
    """A folder this process cannot write into (chmod 555; as root, where chmod does not
    bind, a sysfs folder)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    candidates = [ro, Path("/sys/fs")]
    for c in candidates:
        try:
            fd, probe = tempfile.mkstemp(dir=c)
        except OSError:
            yield c
            ro.chmod(0o755)
            return
        os.close(fd)
        os.unlink(probe)
    ro.chmod(0o755)
    pytest.skip("no unwritable folder available to this process")


READONLY_COMMANDS = [
    ("encode", lambda ro: _builtin_encode(ro / "out"), "out"),
    ("loggabor", lambda ro: ["loggabor", "--out", str(ro / "d.npz")], "d.npz"),
    ("learn", lambda ro: ["learn", "--images", "builtin:camera", "--lmbda", "0.1", "--steps", "1", "--crop", "32",
                          "--out", str(ro / "d.npz"), "--quiet"], "d.npz"),
    ("encode-dataset", lambda ro: ["encode-dataset", "--dataset", "folder", "--root", _folder(Path(tempfile.mkdtemp())),
                                   "--max-iter", "2", "--out", str(ro / "store"), "--quiet"], "store"),
    ("train", lambda ro: ["train", "--store", str(_tiny_store()), "--test-store", str(_tiny_store()), "--epochs", "1",
                          "--batch-size", "2", "--device", "cpu", "--out", str(ro / "run"), "--quiet"], "run"),
    ("demo", lambda ro: ["demo", "--quick", "--no-figure", "--quiet", "--out", str(ro / "demo")], "demo"),
    ("table", lambda ro: ["table", str(_run_folder()), "--markdown", str(ro / "t.md")], "t.md"),
    ("bench", lambda ro: ["bench", "--size", "32", "--kernels", "4", "--ksize", "5", "--iters", "1", "--repeats", "1",
                          "--no-memory", "--json", str(ro / "b.json")], "b.json"),
]

_RUN: list[Path] = []


def _run_folder() -> Path:
    """A finished one-epoch training run folder."""
    if not _RUN:
        out = Path(tempfile.mkdtemp(prefix="csc-run-")) / "run"
        store = str(_tiny_store())
        assert main(["train", "--store", store, "--test-store", store, "--epochs", "1", "--batch-size", "2",
                     "--device", "cpu", "--out", str(out), "--quiet"]) == 0
        _RUN.append(out)
    return _RUN[0]


@pytest.mark.parametrize("argv, text", [c[1:] for c in READONLY_COMMANDS], ids=[c[0] for c in READONLY_COMMANDS])
def test_readonly_output_is_one_line_and_leaves_nothing(readonly_dir, capsys, argv, text):
    if argv is READONLY_COMMANDS[-1][1]:
        pytest.importorskip("sporco")
    args = argv(readonly_dir)
    capsys.readouterr()
    before = sorted(os.listdir(readonly_dir))
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and text in lines[0] and str(readonly_dir) in lines[0], err
    assert sorted(os.listdir(readonly_dir)) == before


# ===================================================== flags: strings are never read as true
# (translator, SPORCO dict builder, the name the message must give); every bool option of
# every SPORCO table goes through one check (csc.core.sporco_options.Flag)
_FLAG_NOT_BOOL = ["no", "False", "0", 1.5, None, 0]
SPORCO_FLAGS = [
    (csc.CBPDNOptions.from_sporco, lambda v: {"NonNegCoef": v}, "NonNegCoef"),
    (csc.CBPDNOptions.from_sporco, lambda v: {"NoBndryCross": v}, "NoBndryCross"),
    (csc.CBPDNOptions.from_sporco, lambda v: {"FastSolve": v}, "FastSolve"),
    (csc.CBPDNOptions.from_sporco, lambda v: {"AuxVarObj": v}, "AuxVarObj"),
    (csc.CBPDNOptions.from_sporco, lambda v: {"fEvalX": v}, "fEvalX"),
    (csc.CBPDNOptions.from_sporco, lambda v: {"gEvalY": v}, "gEvalY"),
    (csc.CBPDNOptions.from_sporco, lambda v: {"Verbose": v}, "Verbose"),
    (csc.CBPDNOptions.from_sporco, lambda v: {"StatusHeader": v}, "StatusHeader"),
    (csc.CBPDNOptions.from_sporco, lambda v: {"HighMemSolve": v}, "HighMemSolve"),
    (csc.CBPDNOptions.from_sporco, lambda v: {"ReturnX": v}, "ReturnX"),
    (csc.CBPDNOptions.from_sporco, lambda v: {"AutoRho": {"Enabled": v}}, "AutoRho.Enabled"),
    (csc.CBPDNOptions.from_sporco, lambda v: {"AutoRho": {"AutoScaling": v}}, "AutoRho.AutoScaling"),
    (csc.CBPDNOptions.from_sporco, lambda v: {"AutoRho": {"StdResiduals": v}}, "AutoRho.StdResiduals"),
    (csc.FISTAOptions.from_sporco, lambda v: {"Monotone": v}, "Monotone"),
    (csc.FISTAOptions.from_sporco, lambda v: {"AutoStop": {"Enabled": v}}, "AutoStop.Enabled"),
    (csc.FISTAOptions.from_sporco, lambda v: {"NonNegCoef": v}, "NonNegCoef"),
    (csc.FISTAOptions.from_sporco, lambda v: {"FastSolve": v}, "FastSolve"),
    (csc.GradRegOptions.from_sporco, lambda v: {"NonNegCoef": v}, "NonNegCoef"),
    (csc.DictLearnOptions.from_sporco, lambda v: {"AccurateDFid": v}, "AccurateDFid"),
    (csc.DictLearnOptions.from_sporco, lambda v: {"Verbose": v}, "Verbose"),
    (csc.DictLearnOptions.from_sporco, lambda v: {"CBPDN": {"NonNegCoef": v}}, "NonNegCoef"),
    (csc.DictLearnOptions.from_sporco, lambda v: {"CCMOD": {"Monotone": v}}, "CCMOD.Monotone"),
    (csc.DictLearnOptions.from_sporco, lambda v: {"CCMOD": {"FastSolve": v}}, "CCMOD.FastSolve"),
    (csc.DictLearnOptions.from_sporco, lambda v: {"CCMOD": {"AutoStop": {"Enabled": v}}}, "CCMOD.AutoStop.Enabled"),
    (csc.OnlineDictLearnOptions.from_sporco, lambda v: {"ZeroMean": v}, "ZeroMean"),
    (csc.OnlineDictLearnOptions.from_sporco, lambda v: {"CUDA_CBPDN": v}, "CUDA_CBPDN"),
]


@pytest.mark.parametrize("value", _FLAG_NOT_BOOL, ids=repr)
@pytest.mark.parametrize("translate, opt, name", SPORCO_FLAGS, ids=[f"{t.__qualname__.split('.')[0]}-{n}"
                                                                    for t, _, n in SPORCO_FLAGS])
def test_sporco_flags_refuse_anything_but_a_bool(translate, opt, name, value):
    with pytest.raises(TypeError, match=rf"{name}: expected True or False, got {value!r}".replace("(", r"\(")
                       .replace(".", r"\.")):
        translate(opt(value))


@pytest.mark.parametrize("name", ["ZeroMean", "AutoRho"])
def test_ccmod_flags_take_none_as_sporcos_default(name):
    opt = {"ZeroMean": None} if name == "ZeroMean" else {"AutoRho": {"Enabled": None}}
    o = csc.DictLearnOptions.from_sporco({"CCMOD": opt}, dmethod="cns")
    assert o.ccmod.zero_mean is False and o.ccmod.auto_rho is False
    with pytest.raises(TypeError, match=r"CCMOD\.ZeroMean: expected True or False, got 'no'"):
        csc.DictLearnOptions.from_sporco({"CCMOD": {"ZeroMean": "no"}})


def test_sporco_flags_take_numpy_bools():
    o = csc.CBPDNOptions.from_sporco({"NonNegCoef": np.bool_(True), "FastSolve": np.bool_(True)})
    assert o.nonneg is True and o.record_stats is False
    assert csc.DictLearnOptions.from_sporco({"AccurateDFid": np.True_}).accurate_dfid is True


# the API's keyword flags: one check (csc.core.checks.check_bool), a TypeError naming the keyword
def _learner_solve(**kw):
    def call(tmp):
        learner = csc.DictLearn(D, 0.1, csc.DictLearnOptions(max_iter=1))
        return learner.solve(S, checkpoint=tmp / "ck.npz", **kw)
    return call


KEYWORD_FLAGS = [
    ("lambda_path-warm_start", "warm_start",
     lambda v, tmp: csc.lambda_path(D, S, [0.2, 0.1], csc.CBPDNOptions(max_iter=2), warm_start=v)),
    ("CGOptions-warm_start", "CGOptions.warm_start", lambda v, tmp: csc.nn.CGOptions(warm_start=v)),
    ("DictLearn-resume", "resume", lambda v, tmp: _learner_solve(resume=v)(tmp)),
    ("DictLearn-progress", "progress", lambda v, tmp: _learner_solve(progress=v)(tmp)),
    ("OnlineDictLearn-resume", "resume",
     lambda v, tmp: csc.OnlineDictLearn(D, 0.1).fit(ImageSampler(S, batch_size=1), 1, checkpoint=tmp / "o.npz",
                                                   resume=v)),
    ("resize-antialias", "antialias", lambda v, tmp: csc.pipeline.preprocess.resize(S, 8, antialias=v)),
    ("builtin_photographs-colour", "colour", lambda v, tmp: csc.pipeline.sources.folders.builtin_photographs(colour=v)),
    ("ConvSparseCode-learn_lmbda", "learn_lmbda", lambda v, tmp: csc.nn.ConvSparseCode(D, 0.1, learn_lmbda=v)),
    ("TrainOptions-amp", "amp", lambda v, tmp: csc.classify.train.TrainOptions(amp=v)),
    ("resolve_distributed", "distributed",
     lambda v, tmp: csc.runtime.distributed.resolve_distributed(v)),
]


@pytest.mark.parametrize("value", ["no", "False", "0", 1.5], ids=repr)
@pytest.mark.parametrize("call, name", [c[1:][::-1] for c in KEYWORD_FLAGS], ids=[c[0] for c in KEYWORD_FLAGS])
def test_keyword_flags_refuse_anything_but_a_bool(tmp_path, call, name, value):
    with pytest.raises(TypeError, match=rf"^{name}: expected True(, False or None| or False), got {value!r}"):
        call(value, tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("call, name", [c[1:][::-1] for c in KEYWORD_FLAGS[:8]], ids=[c[0] for c in KEYWORD_FLAGS[:8]])
def test_keyword_flags_refuse_none_where_not_documented(tmp_path, call, name):
    with pytest.raises(TypeError, match=rf"^{name}: expected True or False, got None"):
        call(None, tmp_path)


# ============================================== data loss: a learner's checkpoint= over another file
def _batch_learn(ck, **kw):
    return csc.DictLearn(D, 0.1, csc.DictLearnOptions(max_iter=2)).solve(S, checkpoint=ck, checkpoint_every=1, **kw)


def _online_learn(ck, lmbda=0.1, **kw):
    return csc.OnlineDictLearn(D, lmbda).fit(ImageSampler(S, batch_size=1), 2, checkpoint=ck, checkpoint_every=1,
                                             **kw)


@pytest.mark.parametrize("learn", [_batch_learn, _online_learn], ids=["batch", "online"])
@pytest.mark.parametrize("content", [b"my thesis\n", None], ids=["text", "npz"])
def test_checkpoint_refuses_to_overwrite_another_file(tmp_path, learn, content):
    ck = tmp_path / "results.npz"
    if content is None:
        np.savez(ck, data=np.arange(5))
    else:
        ck.write_bytes(content)
    before = ck.read_bytes()
    with pytest.raises(FileExistsError, match=r"checkpoint: '.*results\.npz' exists and is not a checkpoint of this run"):
        learn(ck)
    assert ck.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["results.npz"]
    learn(ck, overwrite=True)  # asked for: replaced
    assert ck.read_bytes() != before


def test_checkpoint_refuses_another_runs_checkpoint(tmp_path):
    ck = tmp_path / "ck.npz"
    _online_learn(ck, lmbda=0.2)
    before = ck.read_bytes()
    with pytest.raises(FileExistsError, match=r"ck\.npz' exists and is not a checkpoint of this run.*lmbda"):
        _online_learn(ck, lmbda=0.1)
    assert ck.read_bytes() == before
    _online_learn(ck, lmbda=0.2)  # the same run's checkpoint: written again


@pytest.mark.parametrize("learn", [_batch_learn, _online_learn], ids=["batch", "online"])
def test_checkpoint_that_is_a_folder_is_refused(tmp_path, learn):
    with pytest.raises(IsADirectoryError, match=r"checkpoint: '.*' is a folder"):
        learn(tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("value", ["no", 1, None], ids=repr)
def test_overwrite_is_a_flag(tmp_path, value):
    with pytest.raises(TypeError, match=rf"^overwrite: expected True or False, got {value!r}"):
        _batch_learn(tmp_path / "ck.npz", overwrite=value)


# ============================================== data loss: csc encode with two images of one name
def test_encode_gives_same_named_images_their_own_files(tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(3)
    paths = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        p = tmp_path / folder / "photo.png"
        Image.fromarray((rng.random((20, 20)) * 255).astype(np.uint8)).save(p)
        paths.append(str(p))
    out = tmp_path / "o"
    rc = main(["encode", *paths, paths[0], "--dictionary", "heterogeneous", "--lmbda", "0.1", "--max-iter", "2",
               "--out", str(out), "--quiet", "--device", "cpu"])
    assert rc == 0
    rows = json.loads((out / "results.json").read_text())["images"]
    assert [r["name"] for r in rows] == ["photo", "photo-2", "photo-3"]
    files = [r["codes_file"] for r in rows]
    assert len(set(files)) == 3 and all((out / f).is_file() for f in files)
    assert len({r["reconstruction_file"] for r in rows}) == 3
    from csc.dictionary.io import load_codes

    codes = [load_codes(out / f)[0] for f in files]
    assert not np.array_equal(codes[0], codes[1])  # the first image's codes are not lost
    np.testing.assert_array_equal(codes[0], codes[2])  # the same file again: the same codes
    assert "photo-2" in capsys.readouterr().out


def test_encode_numbering_never_takes_a_given_name():
    from csc.cli.encode import unique_names

    assert unique_names(["photo", "photo", "photo-2"]) == ["photo", "photo-3", "photo-2"]
    assert unique_names(["camera", "camera"]) == ["camera", "camera-2"]
    assert unique_names(["a", "b"]) == ["a", "b"]


@pytest.mark.parametrize("method", ["batch", "online"])
def test_cli_learn_refuses_a_checkpoint_path_holding_another_file(tmp_path, capsys, method):
    ck = tmp_path / "notes.npz"
    ck.write_bytes(b"not a checkpoint")
    argv = ["learn", "--images", "builtin:camera", "--lmbda", "0.1", "--steps", "2", "--crop", "32",
            "--method", method, "--checkpoint", str(ck), "--checkpoint-every", "1", "--out", str(tmp_path / "d.npz"),
            "--quiet", "--device", "cpu"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("csc learn: error: checkpoint: ") and "notes.npz" in err[0]
    assert "--overwrite-checkpoint" in err[0]
    assert ck.read_bytes() == b"not a checkpoint" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.npz"]
    assert main([*argv, "--overwrite-checkpoint"]) == 0
    assert ck.read_bytes() != b"not a checkpoint"


MORE_KEYWORD_FLAGS = [
    ("KernelConstraint-zero_mean", "zero_mean",
     lambda v, tmp: csc.learn.constraints.KernelConstraint((3, 3), zero_mean=v)),
    ("project_kernels-nonneg", "nonneg",
     lambda v, tmp: csc.learn.constraints.project_kernels(D, (5, 5), nonneg=v)),
    ("OnlineDictLearnOptions.from_sporco-masked", "masked",
     lambda v, tmp: csc.OnlineDictLearnOptions.from_sporco({}, masked=v)),
    ("OnlineDictLearn-distributed", "distributed", lambda v, tmp: csc.OnlineDictLearn(D, 0.1, distributed=v)),
    ("ClassifierProtocol-hflip", "hflip", lambda v, tmp: csc.science.protocol.ClassifierProtocol(hflip=v)),
    ("list_image_files-recursive", "recursive",
     lambda v, tmp: csc.pipeline.sources.folders.list_image_files(tmp, recursive=v)),
    ("CodeStore-check", "check", lambda v, tmp: csc.pipeline.store.CodeStore(tmp, check=v)),
    ("ResNet18-zero_init_residual", "zero_init_residual",
     lambda v, tmp: csc.classify.models.ResNet18(zero_init_residual=v)),
]


@pytest.mark.parametrize("value", ["no", "False", 1.5], ids=repr)
@pytest.mark.parametrize("call, name", [c[1:][::-1] for c in MORE_KEYWORD_FLAGS],
                         ids=[c[0] for c in MORE_KEYWORD_FLAGS])
def test_more_keyword_flags_refuse_anything_but_a_bool(tmp_path, call, name, value):
    with pytest.raises(TypeError, match=rf"^{name}: expected True(, False or None| or False), got {value!r}"):
        call(value, tmp_path)
    assert not any(tmp_path.iterdir())


def test_dataset_hflip_is_a_flag():
    from csc.pipeline.datasets import PixelDataset

    with pytest.raises(TypeError, match=r"^hflip: expected True or False, got 'no'"):
        PixelDataset(torch.zeros(2, 8, 8), torch.zeros(2, dtype=torch.long), hflip="no")


@pytest.mark.parametrize("content", ["text", "npz"])
def test_training_checkpoint_path_holding_another_file_is_not_overwritten(tmp_path, capsys, content):
    out = tmp_path / "run"
    out.mkdir()
    ck = out / "checkpoint.npz"
    if content == "text":
        ck.write_bytes(b"my notes")
    else:
        np.savez(ck, data=np.arange(3))
    before = ck.read_bytes()
    store = str(_tiny_store())
    rc = main(["train", "--store", store, "--test-store", store, "--epochs", "1", "--batch-size", "2",
               "--device", "cpu", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "checkpoint" in err[0] and str(out) in err[0]
    assert ck.read_bytes() == before


# ============================================ round two (issue 33): API, learners, checkpoints
D32, S32 = D.float(), S.float()
NARROW = torch.rand(5, 16, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
D3 = torch.randn(4, 3, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)


def _sampler(**kw):
    return lambda: ImageSampler(S, **kw)


def _meta_tensor(shape):
    return torch.empty(*shape, device="meta", dtype=torch.float64)


def _fit(steps):
    return lambda: csc.OnlineDictLearn(D, 0.1).fit(ImageSampler(S), steps)


def _learner_kw(**kw):
    def call():
        ck = Path(tempfile.mkdtemp(prefix="csc-never-")) / "ck.npz"
        return csc.DictLearn(D, 0.1, csc.DictLearnOptions(max_iter=1)).solve(S, checkpoint=ck, **kw)
    return call


def _dictionary_file() -> Path:
    p = Path(tempfile.mkdtemp(prefix="csc-dict-")) / "d.npz"
    csc.save_dictionary(p, D)
    return p


API_CASES_2 = [
    # inputs that are not dense data: sparse, meta-device, object arrays
    ("images-sparse", lambda: csc.ConvBPDN(D, 0.1).solve(S.to_sparse()), TypeError, "images: expected a dense"),
    ("images-meta", lambda: csc.ConvBPDN(D, 0.1).solve(_meta_tensor((2, 16, 16))), TypeError, "images: a tensor on"),
    ("images-object", lambda: csc.ConvBPDN(D, 0.1).solve(np.array(S.numpy(), dtype=object)), TypeError,
     "images: expected numbers"),
    ("images-strings", lambda: csc.ConvBPDN(D, 0.1).solve(np.full((8, 8), "x")), TypeError, "images"),
    ("dictionary-sparse", lambda: csc.ConvBPDN(D.to_sparse(), 0.1), TypeError, "dictionary: expected a dense"),
    ("dictionary-meta", lambda: csc.ConvBPDN(_meta_tensor((4, 5, 5)), 0.1), TypeError, "dictionary: a tensor on"),
    ("dictionary-object", lambda: csc.ConvBPDN(D.numpy().astype(object), 0.1), TypeError, "dictionary"),
    ("fista-images-sparse", lambda: csc.ConvBPDNFISTA(D, 0.1).solve(S.to_sparse()), TypeError, "images"),
    ("dictlearn-images-meta", lambda: csc.DictLearn(D, 0.1).solve(_meta_tensor((2, 16, 16))), TypeError, "images"),
    ("sampler-images-object", lambda: ImageSampler(np.array(S.numpy(), dtype=object)), TypeError, "images"),
    ("psnr-sparse", lambda: csc.psnr(S[0].to_sparse(), S[0]), TypeError, "reference"),
    ("psnr-object", lambda: csc.psnr(S[0], np.array(S[0].numpy(), dtype=object)), TypeError, "test"),
    # scales whose squares overflow or underflow the dtype (silently wrong codes before)
    ("images-scale-1e19-f32", lambda: csc.ConvBPDN(D32, 0.1).solve(S32 * 1e19), ValueError, "images: values up to"),
    ("images-scale-1e-30-f32", lambda: csc.ConvBPDN(D32, 0.1).solve(S32 * 1e-30), ValueError, "too small"),
    ("images-scale-1e200-f64", lambda: csc.ConvBPDN(D, 0.1).solve(S * 1e200), ValueError, "float64"),
    ("dictionary-scale-1e19-f32", lambda: csc.ConvBPDN(D32 * 1e19, 0.1), ValueError, "dictionary: values up to"),
    ("dictionary-scale-1e18-f32", lambda: csc.ConvBPDN(D32 * 1e18, 0.1), ValueError, "overflow"),
    ("dictionary-scale-1e-25-f32", lambda: csc.ConvBPDN(D32 * 1e-25, 0.1), ValueError, "underflow"),
    ("fista-images-scale", lambda: csc.ConvBPDNFISTA(D32, 0.1).solve(S32 * 1e19), ValueError, "images"),
    ("fista-dictionary-scale", lambda: csc.ConvBPDNFISTA(D32 * 1e19, 0.1), ValueError, "dictionary"),
    ("variant-images-scale", lambda: csc.ConvElasticNet(D32, 0.1, 0.1).solve(S32 * 1e19), ValueError, "images"),
    ("dictlearn-images-scale", lambda: csc.DictLearn(D32, 0.1).solve(S32 * 1e19), ValueError, "images"),
    ("sampler-images-scale", lambda: ImageSampler(S32 * 1e19), ValueError, "images[0]"),
    ("encode-images-scale", lambda: csc.encode(S32 * 1e19, D32, 0.1), ValueError, "images"),
    # empty batches
    ("fista-empty-batch", lambda: csc.ConvBPDNFISTA(D, 0.1).solve(torch.zeros(0, 16, 16, dtype=torch.float64)),
     ValueError, "images: expected at least one image"),
    # a narrow (B, H, W) batch: the message says how to pass it
    ("narrow-batch", lambda: csc.ConvBPDN(D3, 0.1).solve(NARROW), ValueError, "images[:, None]"),
    # arguments of the wrong kind
    ("fista-AutoStop-True", lambda: csc.FISTAOptions.from_sporco({"AutoStop": True}), ValueError,
     "{'AutoStop': {'Enabled': True}}"),
    ("encode-memory-str", lambda: csc.encode(S, D, 0.1, memory="big"), TypeError, "memory"),
    ("encode-memory-int", lambda: csc.encode(S, D, 0.1, memory=2**30), TypeError, "MemoryBudget"),
    ("checkpoint_every-str", _learner_kw(checkpoint_every="1"), TypeError, "checkpoint_every"),
    ("checkpoint_every-float", _learner_kw(checkpoint_every=1.5), ValueError, "checkpoint_every"),
    ("checkpoint_every-negative", _learner_kw(checkpoint_every=-1), ValueError, "checkpoint_every"),
    ("callback-not-callable", _learner_kw(callback=3), TypeError, "callback"),
    ("on_checkpoint-not-callable", _learner_kw(on_checkpoint="x"), TypeError, "on_checkpoint"),
    ("checkpoint-int", lambda: csc.DictLearn(D, 0.1).solve(S, checkpoint=5, checkpoint_every=1), TypeError,
     "checkpoint"),
    ("online-checkpoint_every-str", lambda: csc.OnlineDictLearn(D, 0.1).fit(ImageSampler(S), 1, checkpoint="c.npz",
                                                                           checkpoint_every="1"),
     TypeError, "checkpoint_every"),
    ("online-steps-zero", _fit(0), ValueError, "steps"),
    ("online-steps-str", _fit("3"), TypeError, "steps"),
    ("online-steps-float", _fit(2.0), ValueError, "steps"),
    ("sampler-crop-str", _sampler(crop="8"), TypeError, "crop"),
    ("sampler-crop-float", _sampler(crop=8.0), TypeError, "crop"),
    ("sampler-crop-one", _sampler(crop=(8,)), TypeError, "crop"),
    ("sampler-crop-three", _sampler(crop=(8, 8, 8)), TypeError, "crop"),
    ("sampler-crop-zero", _sampler(crop=0), ValueError, "crop"),
    ("sampler-crop-negative", _sampler(crop=-1), ValueError, "crop"),
    ("sampler-crop-pair-zero", _sampler(crop=(0, 8)), ValueError, "crop"),
    ("sampler-crop-bool", _sampler(crop=True), TypeError, "crop"),
    ("sampler-crop-pair-str", _sampler(crop=[8, "8"]), TypeError, "crop"),
    ("sampler-crop-too-big", _sampler(crop=100), ValueError, "crop"),
    ("sampler-batch_size-str", _sampler(batch_size="2"), TypeError, "batch_size"),
    ("sampler-generator", _sampler(generator=5), TypeError, "generator"),
    ("zero-mean-1x1-batch", lambda: csc.DictLearn(torch.randn(4, 1, 1, dtype=torch.float64), 0.1, csc.DictLearnOptions(
        ccmod=DictUpdateOptions(zero_mean=True))), ValueError, "zero_mean"),
    ("zero-mean-1x1-online", lambda: csc.OnlineDictLearn(torch.randn(4, 1, 1, dtype=torch.float64), 0.1,
                                                         csc.OnlineDictLearnOptions(zero_mean=True)),
     ValueError, "zero_mean"),
    # SPORCO options: the option as written, ReturnVar
    ("maskdcpl-ReturnVar-X", lambda: csc.MaskDcplOptions.from_sporco({"ReturnVar": "X"}), ValueError, "ReturnVar"),
    ("l1l1grd-ReturnVar-X", lambda: csc.L1L1GrdOptions.from_sporco({"ReturnVar": "X"}), ValueError, "ReturnVar"),
    ("cbpdn-ReturnVar", lambda: csc.CBPDNOptions.from_sporco({"ReturnVar": "Y1"}), ValueError, "ReturnVar"),
    ("dictlearn-CBPDN.MaxMainIter", lambda: csc.DictLearnOptions.from_sporco({"CBPDN": {"MaxMainIter": -2}}),
     ValueError, "CBPDN.MaxMainIter"),
    ("dictlearn-CBPDN.RelaxParam", lambda: csc.DictLearnOptions.from_sporco({"CBPDN": {"RelaxParam": 5.0}}),
     ValueError, "CBPDN.RelaxParam"),
    ("online-CBPDN.rho", lambda: csc.OnlineDictLearnOptions.from_sporco({"CBPDN": {"rho": -1.0}}), ValueError,
     "CBPDN.rho"),
    ("dictlearn-CBPDN.AutoRho", lambda: csc.DictLearnOptions.from_sporco({"CBPDN": {"AutoRho": {"Scaling": "2"}}}),
     TypeError, "CBPDN.AutoRho.Scaling"),
    # dictionary files
    ("load_dictionary-dtype-int8", lambda: csc.load_dictionary(_dictionary_file(), dtype="int8"), ValueError,
     "dtype"),
    ("load_dictionary-dtype-int", lambda: csc.load_dictionary(_dictionary_file(), dtype=5), ValueError, "dtype"),
    ("load_dictionary-dtype-torch-int", lambda: csc.load_dictionary(_dictionary_file(), dtype=torch.int32),
     ValueError, "dtype"),
    ("load_dictionary-empty-string", lambda: csc.load_dictionary(""), FileNotFoundError, "empty string"),
    ("load_dictionary-folder", lambda: csc.load_dictionary(tempfile.gettempdir()), IsADirectoryError, "folder"),
    ("dictionary_metadata-folder", lambda: csc.dictionary_metadata(tempfile.gettempdir()), IsADirectoryError,
     "folder"),
    ("save_dictionary-metadata-object", lambda: csc.save_dictionary(
        Path(tempfile.mkdtemp()) / "d.npz", D, metadata={"made": object()}), TypeError, "metadata['made']"),
    ("save_dictionary-metadata-tensor", lambda: csc.save_dictionary(
        Path(tempfile.mkdtemp()) / "d.npz", D, metadata={"lmbda": torch.tensor(0.1)}), TypeError, "metadata['lmbda']"),
    ("save_dictionary-metadata-list", lambda: csc.save_dictionary(
        Path(tempfile.mkdtemp()) / "d.npz", D, metadata=[("a", 1)]), TypeError, "metadata"),
    ("save_dictionary-folder", lambda: csc.save_dictionary(tempfile.mkdtemp(), D), IsADirectoryError, "is a folder"),
    ("save_dictionary-empty-path", lambda: csc.save_dictionary("", D), ValueError, "path"),
    ("save_dictionary-path-int", lambda: csc.save_dictionary(5, D), TypeError, "path"),
    # metrics
    ("psnr-empty", lambda: csc.psnr(np.zeros((0, 8)), np.zeros((0, 8))), ValueError, "reference"),
    ("psnr-empty-batch", lambda: csc.psnr(torch.zeros(0, 8, 8), torch.zeros(0, 8, 8)), ValueError, "reference"),
    ("psnr-empty-1d", lambda: csc.psnr(torch.zeros(0), torch.zeros(0)), ValueError, "reference"),
]


@pytest.mark.parametrize("call, error, text", [c[1:] for c in API_CASES_2], ids=[c[0] for c in API_CASES_2])
def test_api_bad_input_round_two(call, error, text):
    with pytest.raises(error) as info:
        call()
    assert text in str(info.value)


def test_nothing_written_for_refused_dictionaries(tmp_path):
    for call in (lambda: csc.save_dictionary(tmp_path / "d.npz", D, metadata={"a": object()}),
                 lambda: csc.save_dictionary(tmp_path / "e.npz", D * float("nan"))):
        with pytest.raises((TypeError, ValueError)):
            call()
    assert not any(tmp_path.iterdir())


def test_moderate_scales_still_solve_as_float64():
    """The scale check refuses only what the dtype cannot square: images at 1e17 and a
    dictionary at 1e16 in float32 give float64's codes (to float32 rounding)."""
    opts = csc.CBPDNOptions(max_iter=30)
    for s, d, lm in ((1e17, 1.0, 0.1), (1.0, 1e16, 0.1), (1e-15, 1.0, 1e-16)):
        got = csc.ConvBPDN(D32 * d, lm, opts).solve(S32 * s).codes.double()
        want = csc.ConvBPDN(D * d, lm, opts).solve(S * s).codes
        assert float((got - want).abs().max() / want.abs().max()) < 1e-3


def test_narrow_batch_passes_as_the_message_says():
    got = csc.ConvBPDN(D3, 0.1, csc.CBPDNOptions(max_iter=3)).solve(NARROW[:, None]).codes
    want = csc.ConvBPDN(D3, 0.1, csc.CBPDNOptions(max_iter=3)).solve(NARROW[0]).codes
    assert got.shape[:2] == (5, 1) and torch.allclose(got[0, 0], want, atol=1e-12)


def test_joint_takes_cbpdn_options_as_documented():
    opts = csc.CBPDNOptions(max_iter=3, rel_stop_tol=1e-4)
    solver = csc.ConvBPDNJoint(D, 0.1, 0.05, opts)
    assert type(solver.options) is csc.CBPDNJointOptions
    assert (solver.options.max_iter, solver.options.rel_stop_tol) == (3, 1e-4)
    assert solver.solve(torch.rand(2, 3, 16, 16, dtype=torch.float64)).codes.shape == (2, 3, 4, 16, 16)


def test_sporco_option_objects_are_accepted():
    """Every SPORCO options class csc translates takes SPORCO's own default object (each
    option SPORCO's class defines)."""
    pytest.importorskip("sporco")
    from sporco.admm import cbpdn
    from sporco.dictlrn import cbpdndl, onlinecdl
    from sporco.pgm import cbpdn as pgm_cbpdn

    pairs = [(csc.CBPDNOptions, cbpdn.ConvBPDN), (csc.MaskDcplOptions, cbpdn.ConvBPDNMaskDcpl),
             (csc.L1L1GrdOptions, cbpdn.ConvL1L1Grd), (csc.GradRegOptions, cbpdn.ConvBPDNGradReg),
             (csc.CBPDNJointOptions, cbpdn.ConvBPDNJoint), (csc.FISTAOptions, pgm_cbpdn.ConvBPDN),
             (csc.DictLearnOptions, cbpdndl.ConvBPDNDictLearn),
             (csc.OnlineDictLearnOptions, onlinecdl.OnlineConvBPDNDictLearn)]
    for ours, theirs in pairs:
        assert isinstance(ours.from_sporco(theirs.Options()), ours)
    assert csc.MaskDcplOptions.from_sporco({"ReturnVar": "Y1"}).rho == 1.0


def test_psnr_of_identical_and_constant_images_is_explicit():
    assert float(csc.psnr(S[0], S[0])) == float("inf")  # as SPORCO: MSE 0
    c = torch.ones(8, 8, dtype=torch.float64)
    with pytest.warns(UserWarning, match="data_range"):
        assert float(csc.psnr(c, c * 0.5)) == float("-inf")
    with pytest.warns(UserWarning, match="constant"):
        assert np.isnan(float(csc.psnr(c, c)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(csc.psnr(c, c * 0.5, data_range=1.0)) == pytest.approx(10 * np.log10(4))
    sporco_metric = pytest.importorskip("sporco.metric")
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert sporco_metric.psnr(c.numpy(), c.numpy() * 0.5) == float("-inf")
        assert np.isnan(sporco_metric.psnr(c.numpy(), c.numpy()))


def test_shipped_name_is_the_shipped_dictionary(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shipped = csc.load_dictionary("heterogeneous")
    csc.save_dictionary(tmp_path / "heterogeneous.npz", D)
    (tmp_path / "heterogeneous.npz").rename(tmp_path / "heterogeneous")
    with pytest.warns(UserWarning, match=r"'\./heterogeneous'"):
        got = csc.load_dictionary("heterogeneous")
    assert torch.equal(got, shipped)
    assert torch.equal(csc.load_dictionary("./heterogeneous"), D)
    assert torch.equal(csc.load_dictionary(Path("heterogeneous")), D)


def test_out_of_memory_says_what_is_needed(monkeypatch):
    from csc.problems.cbpdn import ConvBPDN

    def fail(*a, **k):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: you "
                           "tried to allocate 167772160000 bytes.")

    monkeypatch.setattr(ConvBPDN, "_solve_prepared", fail)
    with pytest.raises(MemoryError, match=r"images: out of memory on cpu solving 2 image\(s\) of 16×16 with 4 "
                                          r"coefficient maps.*GiB.*fewer images"):
        csc.ConvBPDN(D, 0.1).solve(S)


def test_metrics_json_that_is_not_json_is_named(tmp_path):
    from csc.classify.train import aggregate_runs

    (tmp_path / "metrics.json").write_text("{broken")
    with pytest.raises(ValueError, match=r"metrics: '.*metrics\.json' is not valid JSON"):
        aggregate_runs([tmp_path])


# --------------------------------------------------- edited learner checkpoints
def _edit_npz(path: Path, edit, meta_key: str = "metadata") -> None:
    z = dict(np.load(path))
    meta = json.loads(str(z[meta_key][()]))
    edit(z, meta)
    z[meta_key] = np.array(json.dumps(meta))
    np.savez(path, **z)


LEARNER_EDITS = [
    ("step-negative", lambda z, m: m.update(step=-1), "step -1"),
    ("step-str", lambda z, m: m.update(step="2"), "step '2'"),
    ("step-missing", lambda z, m: m.pop("step"), "step None"),
    ("step-changed", lambda z, m: m.update(step=1), "does not match"),
    ("dictionary-nan", lambda z, m: z.__setitem__("dictionary", z["dictionary"] * np.nan), "NaN"),
    ("dictionary-shape", lambda z, m: z.__setitem__("dictionary", z["dictionary"][:2]), "'dictionary' is shape"),
    ("dictionary-missing", lambda z, m: z.pop("dictionary"), "'dictionary' is missing"),
    ("stats-truncated", lambda z, m: z.__setitem__("stats.objective", z["stats.objective"][:1]), "statistics rows"),
]


@pytest.mark.parametrize("learn", [_batch_learn, _online_learn], ids=["batch", "online"])
@pytest.mark.parametrize("edit, text", [e[1:] for e in LEARNER_EDITS], ids=[e[0] for e in LEARNER_EDITS])
def test_edited_learner_checkpoint_is_refused(tmp_path, learn, edit, text):
    ck = tmp_path / "ck.npz"
    learn(ck)
    _edit_npz(ck, edit)
    before = ck.read_bytes()
    with pytest.raises(ValueError) as info:
        learn(ck, resume=True)
    assert str(ck) in str(info.value) and text in str(info.value)
    assert ck.read_bytes() == before


def test_edited_batch_coding_state_is_refused(tmp_path):
    ck = tmp_path / "ck.npz"
    _batch_learn(ck)
    _edit_npz(ck, lambda z, m: z.__setitem__("x.y", z["x.y"][:1]))
    with pytest.raises(ValueError, match=r"'x\.y' is shape"):
        _batch_learn(ck, resume=True)


def test_resume_below_the_checkpoints_step_is_refused(tmp_path):
    ck = tmp_path / "ck.npz"
    _batch_learn(ck)  # 2 iterations
    with pytest.raises(ValueError, match=r"^max_iter: 1 is below the checkpoint's step 2"):
        csc.DictLearn(D, 0.1, csc.DictLearnOptions(max_iter=1)).solve(S, checkpoint=ck, checkpoint_every=1,
                                                                        resume=True)
    ck2 = tmp_path / "online.npz"
    _online_learn(ck2)  # 2 steps
    with pytest.raises(ValueError, match=r"^steps: 1 is below the checkpoint's step 2"):
        csc.OnlineDictLearn(D, 0.1).fit(ImageSampler(S, batch_size=1), 1, checkpoint=ck2, checkpoint_every=1,
                                        resume=True)
    assert len(_batch_learn(ck, resume=True).stats) == 2  # the same max_iter resumes (nothing left to do)


# --------------------------------------------------- edited training checkpoints
def _trained_run(tmp_path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(_run_folder(), out)
    return out


def _first(prefix: str):
    return lambda z: next(k for k in sorted(z) if k.startswith(prefix))


TRAINING_EDITS = [
    ("epoch-negative", lambda z, m: m.update(epoch=-1), "epoch -1"),
    ("epoch-missing", lambda z, m: m.pop("epoch"), "epoch None"),
    ("epoch-str", lambda z, m: m.update(epoch="0"), "epoch '0'"),
    ("epoch-history-mismatch", lambda z, m: m.update(history=[]), "history"),
    ("weights-nan", lambda z, m: z.__setitem__(_first("model/")(z), z[_first("model/")(z)] * np.nan), "NaN"),
    ("weight-missing", lambda z, m: z.pop(_first("model/")(z)), "does not hold this model"),
    ("weight-shape", lambda z, m: z.__setitem__(_first("model/")(z), z[_first("model/")(z)][:1]), "has shape"),
    ("optimizer-shape", lambda z, m: z.__setitem__(_first("optim/")(z), np.zeros(3, np.float32)), "optimizer"),
    ("param-groups-missing", lambda z, m: m.pop("param_groups"), "param_groups"),
]


@pytest.mark.parametrize("edit, text", [e[1:] for e in TRAINING_EDITS], ids=[e[0] for e in TRAINING_EDITS])
def test_edited_training_checkpoint_stops_the_cli(tmp_path, capsys, edit, text):
    out = _trained_run(tmp_path)
    ck = out / "checkpoint.npz"
    _edit_npz(ck, edit, meta_key="meta")
    before = ck.read_bytes()
    capsys.readouterr()
    store = str(_tiny_store())
    rc = main(["train", "--store", store, "--test-store", store, "--epochs", "2", "--batch-size", "2",
               "--device", "cpu", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and str(ck) in err[0] and text in err[0], err
    assert ck.read_bytes() == before


def test_training_resume_below_the_checkpoints_epochs_is_refused(tmp_path):
    from csc.classify.train import TrainOptions, train
    from csc.pipeline.datasets import SparseCodeDataset

    ds, out = SparseCodeDataset(_tiny_store()), tmp_path / "run"
    o = TrainOptions(epochs=2, batch_size=2, device="cpu", max_steps=1)
    train(ds, ds, out, o, run={"encoding": "x"})
    before = (out / "checkpoint.npz").read_bytes()
    with pytest.raises(ValueError, match=r"^epochs: 1 is below the 2 epochs of the checkpoint"):
        train(ds, ds, out, o.__class__(**{**o.__dict__, "epochs": 1}), run={"encoding": "x"})
    assert (out / "checkpoint.npz").read_bytes() == before


def test_amp_on_the_cpu_is_refused(tmp_path):
    from csc.classify.train import TrainOptions, train
    from csc.pipeline.datasets import SparseCodeDataset

    ds = SparseCodeDataset(_tiny_store())
    with pytest.raises(ValueError, match=r"^amp \(csc train --amp on\): mixed precision runs on CUDA only"):
        train(ds, ds, tmp_path / "run", TrainOptions(epochs=1, batch_size=2, device="cpu", amp=True))


@pytest.mark.parametrize("method", ["batch", "online"])
def test_cli_learn_resume_from_an_edited_checkpoint_is_one_line(tmp_path, capsys, method):
    ck = tmp_path / "ck.npz"
    argv = ["learn", "--images", "builtin:camera", "--lmbda", "0.1", "--steps", "2", "--crop", "32", "--kernels",
            "4", "--kernel-size", "4", "--method", method, "--checkpoint", str(ck), "--checkpoint-every", "1",
            "--out", str(tmp_path / "d.npz"), "--quiet", "--device", "cpu"]
    assert main(argv) == 0
    _edit_npz(ck, lambda z, m: m.update(step=-3))
    before = ck.read_bytes()
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "step -3" in err[0] and str(ck) in err[0], err
    assert ck.read_bytes() == before

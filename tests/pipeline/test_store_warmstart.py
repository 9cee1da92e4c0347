"""encode_dataset / csc encode-dataset with a warm start (EncodeSettings.warm_start, warm_start_train).

Reference: each image's CBPDN optimum F* from a tight float64 solve (rel_stop_tol 1e-7 with
the converging options of tests/nn/helpers.py); the warm store's codes must reach the cold
store's objective within the stopping tolerance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from csc.cli.main import main
from csc.core import ops
from csc.core.options import CBPDNOptions
from csc.dictionary.io import load_dictionary, save_dictionary
from csc.nn.warmstart import load_warm_start
from csc.pipeline.store import CodeStore, EncodeSettings, encode_dataset, preprocess_images, verify_store
from csc.pipeline.store_format import WARM_START_FILE
from csc.problems.cbpdn import ConvBPDN

N, HW, TOL, LMBDA = 6, 16, 1e-3, 0.05


@pytest.fixture(scope="module")
def dict_file(tmp_path_factory):
    g = torch.Generator().manual_seed(0)
    D = torch.randn(4, 5, 5, generator=g)
    D /= D.flatten(1).norm(dim=1)[:, None, None]
    return str(save_dictionary(tmp_path_factory.mktemp("d") / "dict.npz", D))


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).integers(0, 256, (N, HW, HW), dtype=np.uint8)


def settings(dict_file, **kw):
    return EncodeSettings(**{**dict(dictionary=dict_file, lmbda=LMBDA, max_iter=1000, rel_stop_tol=TOL, shard_size=3,
                                    value_dtype="float32"), **kw})


def objectives(store: CodeStore, images, st: EncodeSettings) -> torch.Tensor:
    """F of each image's stored codes, in float64."""
    D = load_dictionary(st.dictionary, dtype=torch.float64)
    S = preprocess_images(images, st, dtype=torch.float64)
    y = store.dense(dtype=torch.float64)
    return 0.5 * (ops.synthesis(D, y) - S).square().sum((1, 2)) + LMBDA * y.abs().sum((1, 2, 3))


@pytest.fixture(scope="module")
def fstar(dict_file, images):
    st = settings(dict_file)
    D = load_dictionary(dict_file, dtype=torch.float64)
    S = preprocess_images(images, st, dtype=torch.float64)
    opts = CBPDNOptions(rel_stop_tol=1e-7, max_iter=5000, rsdl_target=1.0, rho_period=10, relax=1.0,
                        record_stats=False)
    res = ConvBPDN(D, LMBDA, opts).solve(S)
    assert int(res.iterations.max()) < 5000
    y = res.codes
    return 0.5 * (ops.synthesis(D, y) - S).square().sum((1, 2)) + LMBDA * y.abs().sum((1, 2, 3))


@pytest.fixture(scope="module")
def stores(tmp_path_factory, dict_file, images):
    root = tmp_path_factory.mktemp("stores")
    labels = np.zeros(N, np.int64)
    cold = encode_dataset(images, labels, root / "cold", settings(dict_file), device="cpu")
    warm = encode_dataset(images, labels, root / "warm", settings(dict_file, warm_start_train=3), device="cpu")
    return cold, warm


def test_warm_store_reaches_the_cold_objective(stores, fstar, dict_file, images):
    cold, warm = stores
    st = settings(dict_file)
    Fc, Fw = objectives(cold, images, st), objectives(warm, images, st)
    assert float(((Fc - fstar) / fstar).abs().max()) < 10 * TOL  # the stopping test at TOL
    assert float(((Fw - fstar) / fstar).abs().max()) < 10 * TOL
    assert float(((Fw - Fc) / fstar).max()) < TOL  # warm no worse than cold beyond the tolerance
    assert verify_store(warm.root) == [] and warm.complete


def test_warm_store_records_its_predictor(stores, dict_file):
    cold, warm = stores
    assert "warm_start_train" not in cold.manifest["settings"]  # a cold store's settings (and digest) as before
    assert warm.manifest["settings"]["warm_start_train"] == 3
    rec = warm.manifest["warm_start_training"]
    assert rec["images"] == 3 and rec["code_seconds"] > 0 and rec["store_settings_digest"] == warm.manifest[
        "settings_digest"]
    pred = load_warm_start(warm.root / WARM_START_FILE, load_dictionary(dict_file), LMBDA,
                           preprocessing=settings(dict_file).preprocessing_record())
    assert pred.lmbda == LMBDA


def test_rerun_reuses_the_predictor_and_gives_the_same_store(stores, dict_file, images):
    _, warm = stores
    labels = np.zeros(N, np.int64)
    again = encode_dataset(images, labels, warm.root, settings(dict_file, warm_start_train=3), device="cpu")
    assert again.manifest["shards"] == warm.manifest["shards"]


def test_predictor_file_and_its_refusals(tmp_path, stores, dict_file, images):
    _, warm = stores
    labels = np.zeros(N, np.int64)
    path = str(warm.root / WARM_START_FILE)
    st = settings(dict_file, warm_start=path)
    other = encode_dataset(images, labels, tmp_path / "file", st, device="cpu")
    assert len(other.manifest["settings"]["warm_start_sha256"]) == 64
    assert [e["sha256"] for e in other.manifest["shards"]] == [e["sha256"] for e in warm.manifest["shards"]]
    with pytest.raises(ValueError, match="λ = 0.05, not 0.1"):
        encode_dataset(images, labels, tmp_path / "l", settings(dict_file, warm_start=path, lmbda=0.1), device="cpu")
    with pytest.raises(ValueError, match="preprocessed"):
        encode_dataset(images, labels, tmp_path / "p", settings(dict_file, warm_start=path, preprocess="none"),
                       device="cpu")
    with pytest.raises(ValueError, match="warm_start_train: give a predictor file"):
        settings(dict_file, warm_start=path, warm_start_train=3)
    with pytest.raises(ValueError, match="warm_start_train"):
        settings(dict_file, warm_start_train=-1)
    with pytest.raises(FileNotFoundError, match="warm_start"):
        encode_dataset(images, labels, tmp_path / "m", settings(dict_file, warm_start=str(tmp_path / "no.npz")),
                       device="cpu")


def test_cli_warm_start(tmp_path, stores, dict_file, capsys):
    from matplotlib import image as mpimg

    root = tmp_path / "imgs"
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(2):
            mpimg.imsave(root / c / f"{i}.png", rng.random((16, 16)), cmap="gray")
    base = ["encode-dataset", "--dataset", "folder", "--root", str(root), "--dictionary", dict_file, "--lmbda", "0.05",
            "--max-iter", "200", "--shard-size", "2", "--quiet"]
    assert main(base + ["--warm-start-train", "2", "--out", str(tmp_path / "s")]) == 0
    st = CodeStore(tmp_path / "s")
    assert st.manifest["settings"]["warm_start_train"] == 2 and (tmp_path / "s" / WARM_START_FILE).is_file()
    capsys.readouterr()
    assert main(base + ["--warm-start", "x.npz", "--warm-start-train", "2", "--out", str(tmp_path / "x")]) == 2
    assert "not allowed with" in capsys.readouterr().err
    assert main(base + ["--lmbda", "0.2", "--warm-start", str(tmp_path / "s" / WARM_START_FILE),
                        "--out", str(tmp_path / "y")]) == 2
    assert "not 0.2" in capsys.readouterr().err

"""Colour on the command line: csc loggabor --colour, encode --colour, learn --colour and
encode-dataset --colour (a code store of colour images), with their errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import csc
from csc.cli.main import main


@pytest.fixture(scope="module")
def colour_dict(tmp_path_factory):
    path = tmp_path_factory.mktemp("d") / "colour.npz"
    assert main(["loggabor", "--preset", "heterogeneous", "--size", "6", "--colour", "--out", str(path)]) == 0
    D = csc.load_dictionary(path)
    assert D.shape == (432, 3, 6, 6)
    assert csc.dictionary_metadata(path)["colour_axes"][:3] == ["L", "RG", "BY"]
    return path


def test_encode_colour(tmp_path, colour_dict, capsys):
    out = tmp_path / "enc"
    assert main(["encode", "builtin:astronaut", "--colour", "--dictionary", str(colour_dict), "--lmbda", "0.05",
                 "--crop", "32", "--max-iter", "5", "--out", str(out), "--quiet"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["colour"] and res["kernels"] == [432, 3, 6, 6] and res["images"][0]["psnr"] > 10
    codes, meta = csc.dictionary.io.load_codes(out / "astronaut.codes.npz")
    assert codes.shape == (432, 32, 32)
    from matplotlib import image as mpimg

    assert mpimg.imread(out / "astronaut.recon.png").shape[:2] == (32, 32)
    # a gray dictionary codes each channel on its own; a colour dictionary needs --colour
    assert main(["encode", "builtin:astronaut", "--colour", "--dictionary", "heterogeneous", "--lmbda", "0.05",
                 "--crop", "32", "--max-iter", "3", "--out", str(tmp_path / "g"), "--quiet"]) == 0
    assert csc.dictionary.io.load_codes(tmp_path / "g" / "astronaut.codes.npz")[0].shape == (3, 144, 32, 32)
    capsys.readouterr()
    assert main(["encode", "builtin:astronaut", "--dictionary", str(colour_dict), "--lmbda", "0.05",
                 "--crop", "32", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "--colour" in capsys.readouterr().err and not (tmp_path / "x").exists()


@pytest.mark.parametrize("dmethod", ["pgm", "ism"])
def test_learn_colour(tmp_path, dmethod):
    out = tmp_path / "d.npz"
    assert main(["learn", "--images", "builtin:astronaut,coffee", "--colour", "--kernels", "6", "--kernel-size", "5",
                 "--lmbda", "0.01", "--steps", "2", "--crop", "24", "--dmethod", dmethod, "--out", str(out),
                 "--quiet"]) == 0
    D = csc.load_dictionary(out)
    assert D.shape == (6, 3, 5, 5)
    assert torch.allclose(D.flatten(1).norm(dim=1), torch.ones(6), atol=1e-5)
    assert csc.dictionary_metadata(out)["colour"] is True
    assert csc.dictionary_metadata(out)["dmethod"] == dmethod


def test_encode_dataset_colour(tmp_path, colour_dict):
    from matplotlib import image as mpimg

    root = tmp_path / "imgs"
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(2):
            mpimg.imsave(root / c / f"{i}.png", rng.random((16, 16, 3)))
    store = tmp_path / "store"
    assert main(["encode-dataset", "--dataset", "folder", "--root", str(root), "--colour", "--dictionary",
                 str(colour_dict), "--max-iter", "3", "--shard-size", "2", "--out", str(store), "--quiet"]) == 0
    st = csc.CodeStore(store)
    assert st.manifest["settings"]["colour"] and st.code_shape == (432, 16, 16) and len(st) == 4
    assert csc.pipeline.store.verify_store(store) == []
    x, label = csc.SparseCodeDataset(store)[0]
    assert x.shape == (432, 16, 16)
    # a colour store needs a colour dictionary, and Fashion-MNIST is gray
    assert main(["encode-dataset", "--dataset", "folder", "--root", str(root), "--colour", "--max-iter", "2",
                 "--out", str(tmp_path / "s2"), "--quiet"]) == 2
    assert main(["encode-dataset", "--dataset", "fashion-mnist", "--colour", "--out", str(tmp_path / "s3")]) == 2


def test_encode_dataset_cifar10_colour(tmp_path, colour_dict):
    """csc encode-dataset --dataset cifar10 --colour on small files in the official format."""
    from ..pipeline.test_data import make_cifar, write_cifar

    write_cifar(tmp_path / "cifar", make_cifar(), "bin")
    store = tmp_path / "c10"
    assert main(["encode-dataset", "--dataset", "cifar10", "--root", str(tmp_path / "cifar"), "--split", "test",
                 "--count", "3", "--colour", "--dictionary", str(colour_dict), "--max-iter", "2",
                 "--out", str(store), "--quiet"]) == 0
    st = csc.CodeStore(store)
    assert st.code_shape == (432, 32, 32) and len(st) == 3 and st.manifest["settings"]["colour"]

"""Dictionary and code files: round trips, shipped dictionaries, corruption detection."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch

import csc
from csc.dictionary.io import load_codes, save_codes


def test_dictionary_round_trip(tmp_path):
    D = torch.randn(7, 5, 4, dtype=torch.float64)
    path = csc.save_dictionary(tmp_path / "d.npz", D, {"made_by": "test", "lmbda": 0.1})
    back = csc.load_dictionary(path)
    assert back.dtype == torch.float64 and torch.equal(back, D)
    meta = csc.dictionary_metadata(path)
    assert meta["made_by"] == "test" and meta["shape"] == [7, 5, 4] and len(meta["sha256"]) == 64
    with zipfile.ZipFile(path) as z:  # nothing pickled: plain .npy members only
        for name in z.namelist():
            header = z.read(name)[:128]
            assert b"'descr': '|O'" not in header


def test_dictionary_corruption_detected(tmp_path):
    D = torch.randn(3, 4, 4)
    path = csc.save_dictionary(tmp_path / "d.npz", D)
    with np.load(path) as z:
        kernels, meta = z["kernels"].copy(), z["metadata"]
    kernels[0, 0, 0] += 1.0
    np.savez(path, kernels=kernels, metadata=meta)
    with pytest.raises(ValueError, match="checksum"):
        csc.load_dictionary(path)
    path.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="is not readable"):
        csc.load_dictionary(path)
    with pytest.raises(FileNotFoundError, match="neither a file nor a shipped"):
        csc.load_dictionary(tmp_path / "missing.npz")


def test_sporco_layout_arrays(tmp_path):
    Dsp = np.random.RandomState(0).randn(6, 5, 9)  # (kh, kw, K)
    np.savez(tmp_path / "convdict.npz", **{"G:6x5x9": Dsp, "other": Dsp[..., :2]})
    D = csc.load_dictionary(tmp_path / "convdict.npz", key="G:6x5x9", layout="sporco")
    assert D.shape == (9, 6, 5)
    np.testing.assert_array_equal(D.numpy(), np.transpose(Dsp, (2, 0, 1)))
    with pytest.raises(ValueError, match="several arrays"):
        csc.load_dictionary(tmp_path / "convdict.npz")
    np.save(tmp_path / "d.npy", np.transpose(Dsp, (2, 0, 1)))
    assert torch.equal(csc.load_dictionary(tmp_path / "d.npy"), D)


def test_shipped_colour_dictionary_is_what_the_generator_makes():
    from csc.dictionary.colour import colour_loggabor_dictionary

    D = csc.load_dictionary("heterogeneous-colour")
    torch.testing.assert_close(D, colour_loggabor_dictionary("heterogeneous")[0], rtol=0, atol=1e-6)
    assert csc.shipped_dictionaries()["heterogeneous-colour"]["colour"] is True


@pytest.mark.parametrize("name", ["homogeneous", "heterogeneous"])
def test_shipped_loggabor_dictionaries(name):
    shipped = csc.shipped_dictionaries()
    assert name in shipped
    D = csc.load_dictionary(name)
    assert D.shape == (144, 12, 12) and D.dtype == torch.float32
    # the shipped file is what the generator makes today
    expected, _ = csc.loggabor_dictionary(name)
    torch.testing.assert_close(D, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(D.flatten(1).norm(dim=1), torch.ones(144), rtol=0, atol=1e-5)
    assert csc.dictionary_metadata(name)["sha256"] == shipped[name]["sha256"]


def test_codes_round_trip_and_sparsity(tmp_path):
    g = torch.Generator().manual_seed(0)
    codes = torch.randn(2, 5, 9, 11, generator=g) * (torch.rand(2, 5, 9, 11, generator=g) < 0.05)
    path = save_codes(tmp_path / "c.npz", codes, {"image": "x"})
    back, meta = load_codes(path)
    assert torch.equal(back, codes) and meta["image"] == "x" and meta["nnz"] == int((codes != 0).sum())
    with np.load(path) as z:
        assert z["values"].size == meta["nnz"]
        arrays = {k: z[k].copy() for k in z.files}
    arrays["index"][0] += 1
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="corrupt"):
        load_codes(path)


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "d.npz"

    def failing(f):
        f.write(b"partial")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        csc.dictionary.io.atomic_write(target, failing)
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_manifest_is_valid_json():
    from importlib import resources

    data = json.loads(resources.files("csc.dictionaries").joinpath("manifest.json").read_text())
    for name, entry in data["dictionaries"].items():
        assert {"file", "description", "command", "sha256"} <= set(entry), name


def test_every_shipped_dictionary_loads_and_matches_its_manifest():
    """Each manifest entry loads by name, its kernels hash to the manifest's sha256 (an
    independent check of the file's own checksum), and is K = 144 unit-norm 12×12 kernels
    (colour ones: 432 of 3×12×12); learned ones record how they were made and differ from
    their starting dictionary."""
    shipped = csc.shipped_dictionaries()
    assert {"homogeneous", "heterogeneous", "homogeneous-learned", "heterogeneous-learned",
            "homogeneous-batch-learned", "heterogeneous-batch-learned", "random-batch-learned"} <= set(shipped)
    for name, entry in shipped.items():
        D = csc.load_dictionary(name)
        assert tuple(D.shape) == ((432, 3, 12, 12) if entry.get("colour") else (144, 12, 12)), name
        assert csc.dictionary.io.sha256_of_array(D.numpy()) == entry["sha256"], name
        torch.testing.assert_close(D.flatten(1).norm(dim=1), torch.ones(D.shape[0], dtype=D.dtype), rtol=0, atol=1e-5)
        if entry.get("learned"):
            assert ("csc learn" in entry["command"] or "csc paper learn" in entry["command"]) and entry["data"], name
            init = name.removesuffix("-learned").removesuffix("-batch")
            if init in shipped:
                assert float((D - csc.load_dictionary(init).to(D.dtype)).norm()) > 1.0, name

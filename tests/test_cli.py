"""The csc command: encode writes codes, reconstructions and a JSON that agree with the API."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import csc
from csc.cli import main
from csc.io import load_codes


def test_encode_builtin_photograph(tmp_path, capsys):
    out = tmp_path / "enc"
    rc = main(["encode", "builtin:camera", "--dictionary", "heterogeneous", "--lmbda", "0.1",
               "--crop", "48", "--max-iter", "30", "--out", str(out), "--quiet", "--device", "cpu"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "camera" in printed and "PSNR" in printed
    summary = json.loads((out / "results.json").read_text())
    row = summary["images"][0]
    codes, meta = load_codes(out / row["codes_file"])
    assert codes.shape == (144, 48, 48) and meta["lmbda"] == 0.1
    assert (out / row["reconstruction_file"]).stat().st_size > 0
    # the same solve through the API
    img = csc.data.folders.builtin_photographs(["camera"]).images[0]
    r0, c0 = (img.shape[0] - 48) // 2, (img.shape[1] - 48) // 2
    s = torch.from_numpy(img[r0:r0 + 48, c0:c0 + 48]).float()
    low, high = csc.preprocess.tikhonov_filter(s, 5.0, 16)
    D = csc.load_dictionary("heterogeneous")
    res = csc.ConvBPDN(D, 0.1, csc.CBPDNOptions(max_iter=30, record_stats=False)).solve(high)
    torch.testing.assert_close(codes, res.codes[0], rtol=0, atol=0)
    assert row["sparseness"] == pytest.approx(float(csc.sparseness(res.codes)[0]))
    assert row["psnr"] == pytest.approx(float(csc.psnr(s, res.reconstruct()[0] + low)), rel=1e-6)
    assert row["nonzeros"] == int((res.codes != 0).sum())


def test_loggabor_command(tmp_path):
    path = tmp_path / "homog.npz"
    assert main(["loggabor", "--preset", "homogeneous", "--out", str(path)]) == 0
    D = csc.load_dictionary(path)
    expected, params = csc.loggabor_dictionary("homogeneous")
    torch.testing.assert_close(D, expected)
    np.testing.assert_allclose(csc.dictionary_metadata(path)["theta"], params.theta)


def test_errors_are_reported(tmp_path, capsys):
    rc = main(["encode", str(tmp_path / "nope.png"), "--dictionary", "heterogeneous", "--lmbda", "0.1",
               "--out", str(tmp_path), "--quiet"])
    assert rc == 2
    assert "nope.png" in capsys.readouterr().err
    rc = main(["encode", "builtin:camera", "--dictionary", "heterogeneous", "--lmbda", "-1",
               "--crop", "32", "--out", str(tmp_path), "--quiet"])
    assert rc == 2
    assert "lmbda" in capsys.readouterr().err

"""``csc demo``: files, keys, and numbers equal to a recomputation from the saved codes."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

import csc
from csc.science import demo
from csc.cli.main import main
from csc.pipeline.sources.folders import builtin_photographs
from csc.dictionary.io import load_codes


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _center_crop(img: np.ndarray, n: int) -> np.ndarray:
    top, left = int(round((img.shape[0] - n) / 2)), int(round((img.shape[1] - n) / 2))
    return img[top:top + n, left:left + n]


def _reconstruct(codes: np.ndarray, D: np.ndarray) -> np.ndarray:
    B, K, H, W = codes.shape
    pad = np.zeros((K, H, W))
    pad[:, : D.shape[1], : D.shape[2]] = D
    return np.real(np.fft.ifft2((np.fft.fft2(pad)[None] * np.fft.fft2(codes)).sum(axis=1)))


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["demo", "--quick", "--out", str(out), "--quiet", "--device", "cpu"])
    torch.set_num_threads(n)
    return rc, out, buf.getvalue()


def test_quick_demo_writes_files_with_expected_keys(quick_run):
    rc, out, printed = quick_run
    assert rc == 0
    summary = json.loads((out / "demo.json").read_text())
    assert {"config", "images", "dictionaries", "table", "seconds", "files", "environment"} <= set(summary)
    assert summary["images"] == list(demo.QUICK.images)
    cfg = summary["config"]
    assert cfg["crop"] == 32 and cfg["max_iter"] == 20 and cfg["lmbda"] == 0.01 and cfg["preprocess"] == "highpass"
    names = demo.available_dictionaries()
    assert list(summary["dictionaries"]) == names and {"homogeneous", "heterogeneous"} <= set(names)
    for name, entry in summary["dictionaries"].items():
        assert {"psnr", "psnr_paper", "sparseness", "nonzeros", "iterations", "median_psnr",
                "median_sparseness", "codes_file", "kernels", "seconds"} <= set(entry)
        assert len(entry["psnr"]) == 3 and (out / entry["codes_file"]).is_file()
        assert all(1 <= it <= 20 for it in entry["iterations"])
    png = (out / "demo.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "dictionary" in printed and "PSNR" in printed


def test_quick_demo_numbers_equal_recomputation_from_saved_codes(quick_run):
    rc, out, printed = quick_run
    summary = json.loads((out / "demo.json").read_text())
    photos = builtin_photographs(summary["images"])
    imgs = np.stack([_center_crop(im, 32) for im in photos.images]).astype(np.float32).astype(np.float64)
    low = csc.pipeline.preprocess.tikhonov_filter(torch.from_numpy(imgs).float(), 5.0, 16).lowpass.double().numpy()
    for name, entry in summary["dictionaries"].items():
        codes, meta = load_codes(out / entry["codes_file"])
        assert meta["dictionary"] == name and meta["images"] == summary["images"]
        x = codes.double().numpy()
        assert x.shape == (3, *entry["kernels"][:1], 32, 32)
        sparse = (x == 0).mean(axis=(1, 2, 3))
        np.testing.assert_array_equal(entry["sparseness"], sparse)
        np.testing.assert_array_equal(entry["nonzeros"], (x != 0).sum(axis=(1, 2, 3)))
        D = csc.load_dictionary(name, dtype=torch.float64).numpy()
        rec = _reconstruct(x, D) + low
        mse = ((imgs - rec) ** 2).mean(axis=(1, 2))
        rng = imgs.max(axis=(1, 2)) - imgs.min(axis=(1, 2))
        psnr = 10 * np.log10(rng**2 / mse)
        np.testing.assert_allclose(entry["psnr"], psnr, rtol=1e-5)
        np.testing.assert_allclose(entry["psnr_paper"], 20 * np.log10(imgs.max(axis=(1, 2))) - 10 * np.log10(mse),
                                   rtol=1e-5)
        assert entry["median_psnr"] == pytest.approx(np.median(psnr), rel=1e-5)
        assert entry["median_sparseness"] == pytest.approx(np.median(sparse), rel=1e-12)
        # the printed table row
        row = re.search(rf"^{re.escape(name)}\s+(\S+)\s+(\S+)\s+(\d+)", printed, re.M)
        assert row is not None, printed
        assert float(row.group(1)) == pytest.approx(np.median(psnr), abs=0.006)
        assert float(row.group(2)) == pytest.approx(np.median(sparse), abs=6e-6)


def test_run_demo_api_with_a_dictionary_file(tmp_path):
    rng = np.random.default_rng(1)
    D = rng.standard_normal((6, 5, 5))
    D /= np.sqrt((D**2).sum(axis=(1, 2), keepdims=True))
    path = csc.save_dictionary(tmp_path / "rand.npz", torch.from_numpy(D).float())
    cfg = demo.DemoConfig(crop=16, max_iter=5, images=("coins",), dictionaries=(str(path),),
                          preprocess="lcn", device="cpu")
    res = demo.run_demo(cfg, tmp_path / "o", progress=False)
    s = res.scores[str(path)]
    assert s.kernels == (6, 5, 5) and s.psnr.shape == (1,)
    # LCN: image = norm · Σ d ⊛ x + mean
    lcn = csc.pipeline.preprocess.local_contrast_normalise(res.images)
    rec = lcn.norm.double().numpy() * _reconstruct(res.codes[str(path)].double().numpy(), D.astype(np.float32)
                                                   .astype(np.float64)) + lcn.mean.double().numpy()
    ref = res.images.double().numpy()
    expect = 10 * np.log10((ref.max() - ref.min()) ** 2 / ((ref - rec) ** 2).mean())
    assert s.psnr[0] == pytest.approx(expect, rel=1e-5)
    assert (tmp_path / "o" / "demo.json").is_file() and (tmp_path / "o" / "demo.png").is_file()
    assert "coins" in demo.format_table(res) or str(path) in demo.format_table(res)


def test_learned_dictionaries_are_picked_up(monkeypatch):
    shipped = {"random-batch-learned": {}, "zz-other": {}, "heterogeneous-learned": {}, "homogeneous-learned": {},
               "heterogeneous": {}, "homogeneous": {}, "heterogeneous-batch-learned": {}, "homogeneous-batch-learned": {},
               "heterogeneous-colour": {"colour": True}}
    monkeypatch.setattr(demo, "shipped_dictionaries", lambda: shipped)
    assert demo.available_dictionaries() == [
        "homogeneous", "heterogeneous", "homogeneous-learned", "heterogeneous-learned", "homogeneous-batch-learned",
        "heterogeneous-batch-learned", "random-batch-learned", "zz-other"]


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--images", "lena"], "lena"),
        (["--crop", "600"], "smaller than 600"),
        (["--lmbda", "-1"], "lmbda"),
        (["--max-iter", "0"], "--max-iter"),
        (["--crop", "8"], "crop"),
        (["--dictionaries", "no-such-dictionary"], "no-such-dictionary"),
        (["--example", "moon"], "example"),
    ],
)
def test_errors_are_reported(tmp_path, capsys, argv, match):
    rc = main(["demo", "--quick", "--quiet", "--no-figure", "--out", str(tmp_path), *argv])
    assert rc == 2
    assert match in capsys.readouterr().err


def test_bad_preprocess_is_rejected_by_the_parser(capsys):
    assert main(["demo", "--preprocess", "none"]) == 2
    assert "--preprocess" in capsys.readouterr().err
    with pytest.raises(ValueError, match="preprocess"):
        demo.DemoConfig(preprocess="none").validate()
    assert demo.DemoConfig(preprocess="lcn").validate().lmbda == 0.05
    assert demo.DemoConfig().validate().lmbda == 0.01


def test_shipped_batch_learned_dictionaries_code_held_out_photographs_better():
    """The shipped batch-learned dictionaries were learned without camera and astronaut
    (dictionaries/manifest.json): on those, at the learning λ, they reconstruct better
    than their log-Gabor starting points (PSNR of the highpass part against its codes)."""
    from csc.science.demo import prepare_photographs

    for name in ("homogeneous-batch-learned", "heterogeneous-batch-learned"):
        learned_from = csc.dictionary_metadata(name)["image_names"]
        assert "camera" not in learned_from and "astronaut" not in learned_from
    _, signals, _, _, _ = prepare_photographs(["camera", "astronaut"], 64, "highpass")
    opts = csc.CBPDNOptions(max_iter=60, rel_stop_tol=0.0)
    for start in ("homogeneous", "heterogeneous"):
        psnr = {}
        for name in (start, f"{start}-batch-learned"):
            res = csc.ConvBPDN(csc.load_dictionary(name), 0.05, opts).solve(signals)
            err = (res.reconstruct() - signals).flatten(1).square().mean(1)
            psnr[name] = 10 * torch.log10(signals.flatten(1).square().mean(1) / err)
        assert bool((psnr[f"{start}-batch-learned"] > psnr[start] + 3.0).all()), psnr

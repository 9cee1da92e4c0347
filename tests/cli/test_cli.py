"""The csc command: encode writes codes, reconstructions and a JSON that agree with the API."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import csc
from csc.cli.main import main
from csc.dictionary.io import load_codes


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
    img = csc.pipeline.sources.folders.builtin_photographs(["camera"]).images[0]
    r0, c0 = (img.shape[0] - 48) // 2, (img.shape[1] - 48) // 2
    s = torch.from_numpy(img[r0:r0 + 48, c0:c0 + 48]).float()
    low, high = csc.pipeline.preprocess.tikhonov_filter(s, 5.0, 16)
    D = csc.load_dictionary("heterogeneous")
    res = csc.ConvBPDN(D, 0.1, csc.CBPDNOptions(max_iter=30, record_stats=False)).solve(high)
    torch.testing.assert_close(codes, res.codes[0], rtol=0, atol=0)
    assert row["sparseness"] == pytest.approx(float(csc.sparseness(res.codes)[0]))
    assert row["psnr"] == pytest.approx(float(csc.psnr(s, res.reconstruct()[0] + low)), rel=1e-6)
    assert row["nonzeros"] == int((res.codes != 0).sum())


def test_encode_boundary_mask(tmp_path):
    """``--boundary mask``: ConvBPDNMaskDcpl on the masked padding; codes on the padded grid,
    equal to the API's solve."""
    out = tmp_path / "enc"
    rc = main(["encode", "builtin:camera", "--dictionary", "heterogeneous", "--lmbda", "0.1", "--crop", "32",
               "--max-iter", "8", "--boundary", "mask", "--out", str(out), "--quiet", "--device", "cpu"])
    assert rc == 0
    summary = json.loads((out / "results.json").read_text())
    assert summary["boundary"] == "mask"
    codes, meta = load_codes(out / summary["images"][0]["codes_file"])
    D = csc.load_dictionary("heterogeneous")
    kh, kw = D.shape[-2:]
    assert codes.shape == (D.shape[0], 32 + kh - 1, 32 + kw - 1) and meta["boundary"] == "mask"
    img = csc.pipeline.sources.folders.builtin_photographs(["camera"]).images[0]
    r0, c0 = (img.shape[0] - 32) // 2, (img.shape[1] - 32) // 2
    s = torch.from_numpy(img[r0:r0 + 32, c0:c0 + 32]).float()
    _, high = csc.pipeline.preprocess.tikhonov_filter(s, 5.0, 16)
    opts = csc.MaskDcplOptions(max_iter=8, rho=50 * 0.1 + 0.1, record_stats=False)
    res = csc.ConvBPDNMaskDcpl(D, 0.1, opts).solve(high, boundary="mask")
    torch.testing.assert_close(codes, res.codes[0], rtol=0, atol=0)


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


def test_bench_command_tiny(tmp_path, capsys):
    """csc bench on a tiny problem: runs both libraries and writes the report."""
    pytest.importorskip("sporco")
    from sporco import fft as sp_fft

    # settings the run changes (threads 1, SPORCO's FFTW_MEASURE) and must give back
    planner, threads = sp_fft.pyfftw_planner_effort, torch.get_num_threads()
    sp_fft.pyfftw_planner_effort = "FFTW_ESTIMATE"
    torch.set_num_threads(2)
    out = tmp_path / "bench.json"
    try:
        rc = main(["bench", "--size", "32", "--kernels", "8", "--ksize", "5", "--iters", "3", "--repeats", "1",
                   "--warmup-iters", "1", "--threads", "1", "--no-memory", "--bandwidth-mb", "8",
                   "--json", str(out)])
        restored = (sp_fft.pyfftw_planner_effort, torch.get_num_threads())
    finally:
        sp_fft.pyfftw_planner_effort = planner
        torch.set_num_threads(threads)
    assert rc == 0
    assert restored == ("FFTW_ESTIMATE", 2)
    rep = json.loads(out.read_text())
    assert {"machine", "settings", "bandwidth", "mode", "results", "loadavg_start", "loadavg_end"} <= set(rep)
    assert {"cpu_model", "versions", "torch_threads", "csc_backend", "device_name"} <= set(rep["machine"])
    assert rep["mode"] == "single" and rep["settings"]["size"] == 32 and rep["settings"]["iters"] == 3
    assert [r["dtype"] for r in rep["results"]] == ["float32", "float64"]
    for r in rep["results"]:
        assert {"sporco", "csc", "ratio_best", "ratio_median", "codes_difference", "floor"} <= set(r)
        assert r["codes_difference"]["max_abs_diff_over_max_abs"] < 1e-3
        assert r["floor"]["bytes_per_iter"] > 0 and r["floor"]["csc_over_floor"] > 0


@pytest.mark.parametrize("problem", ["elastic-net", "grad-reg", "l1l1-grd", "mask-dcpl", "colour", "joint"])
def test_bench_command_other_problems(tmp_path, problem):
    """csc bench --problem: csc.ConvElasticNet / ConvBPDNGradReg / … / the colour problems
    beside SPORCO's class on a tiny problem, with the same codes."""
    pytest.importorskip("sporco")
    from sporco import fft as sp_fft

    planner, threads = sp_fft.pyfftw_planner_effort, torch.get_num_threads()
    sp_fft.pyfftw_planner_effort = "FFTW_ESTIMATE"
    out = tmp_path / "bench.json"
    try:
        rc = main(["bench", "--problem", problem, "--mu", "0.5", "--size", "32", "--kernels", "4", "--ksize", "5",
                   "--iters", "3", "--repeats", "1", "--warmup-iters", "1", "--threads", "1", "--no-memory",
                   "--bandwidth-mb", "0", "--dtypes", "float64", "--json", str(out)])
    finally:
        sp_fft.pyfftw_planner_effort = planner
        torch.set_num_threads(threads)
    assert rc == 0
    rep = json.loads(out.read_text())
    assert rep["settings"]["problem"] == problem and rep["settings"]["mu"] == 0.5
    assert rep["results"][0]["codes_difference"]["rel_l2_diff"] < 1e-10
    if problem in ("colour", "joint"):
        assert "kodim23" in rep["settings"]["image"]


def test_bench_command_without_sporco(monkeypatch, capsys):
    from csc.cli import bench

    monkeypatch.setattr(bench, "have_sporco", lambda: False)
    assert main(["bench", "--size", "32", "--no-memory"]) == 2
    assert "pip install sporco" in capsys.readouterr().err


def test_bench_command_without_the_checkout(monkeypatch, capsys, tmp_path):
    """csc installed without its repository checkout (no benchmarks/bench/ beside the package):
    ``csc bench`` stops with exit status 2 and one line saying where the harness is."""
    from csc.cli import bench

    monkeypatch.setattr(bench, "CHECKOUT", tmp_path)
    assert main(["bench", "--size", "32", "--no-memory"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "csc bench: error: the benchmark harness is not installed" in err
    assert str(tmp_path) in err and "benchmarks/bench/" in err


def test_bandwidth_floor_counts():
    from benchmarks.bench import admm_bytes_per_iteration, floor_report

    f = admm_bytes_per_iteration(1, 256, 256, 144, "float32", "fused")
    N = 144 * 256 * 256
    assert f["map_elements"] == N and 12.9 < f["passes"] < 13.2 and f["bytes"] == 4 * f["elements"]
    t = admm_bytes_per_iteration(1, 256, 256, 144, "float64", "torch")
    assert 47 < t["passes"] < 50 and t["itemsize"] == 8
    # batches add maps; the dictionary DFT is read once per image in both formulations
    assert admm_bytes_per_iteration(8, 64, 64, 16)["elements"] == 8 * admm_bytes_per_iteration(1, 64, 64, 16)["elements"]
    r = floor_report(1, 256, 256, 144, "float32", 10.0, {"csc": 52.9})
    assert r["floor_ms_per_iter"] == pytest.approx(f["bytes"] / 1e10 * 1e3)
    assert r["csc_over_floor"] == pytest.approx(52.9 / r["floor_ms_per_iter"])


def test_parser_does_not_import_the_bench_harness():
    """``import csc`` and building the ``csc`` parser leave the SPORCO comparison (the harness
    benchmarks.bench) and its dependencies unloaded; the harness is imported only when ``csc bench`` runs."""
    import subprocess
    import sys

    code = (
        "import importlib, json, sys\n"
        "import csc\n"
        "parser = importlib.import_module('csc.cli.main').build_parser()\n"
        "args = parser.parse_args(['bench', '--size', '32'])\n"
        "assert args.size == 32 and args.kernels == 144 and args.func.__module__ == 'csc.cli.bench'\n"
        "print(json.dumps([m for m in ('benchmarks', 'benchmarks.bench', 'sporco', 'pyfftw') if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_bench_subcommand_has_the_harness_options():
    """The ``csc bench`` sub-parser (csc.cli.bench_args) and the harness's own parser agree."""
    from benchmarks import bench
    from csc.cli.main import build_parser

    cli = vars(build_parser().parse_args(["bench"]))
    own = vars(bench.parse_args(["--threads", "1"]))
    own.pop("mem_child")
    assert cli.pop("threads") is None and own.pop("threads") == 1
    assert {k: cli[k] for k in own} == own

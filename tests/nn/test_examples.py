"""The layer's example and benchmark scripts in their quick modes (the full runs are in
benchmarks/results/nn/): they run, write their files, and their numbers make sense."""

from __future__ import annotations

import json

import torch

from benchmarks import nn_backward, nn_task_denoise


def test_task_driven_denoising_quick(tmp_path):
    report = nn_task_denoise.run(tmp_path, quick=True, log=lambda *_: None)
    assert (tmp_path / "task_denoise.png").stat().st_size > 0
    saved = json.loads((tmp_path / "task_denoise.json").read_text())
    assert saved["task_driven"]["test_psnr"] == report["task_driven"]["test_psnr"]
    # every dictionary denoises: better than the noisy input
    for key in ("initial", "unsupervised", "task_driven"):
        assert report[key]["test_psnr"] > report["noisy"]["test_psnr"] + 3, key
    assert len(report["task_driven"]["curve"]) == report["sizes"]["steps"] + 1


def test_backward_benchmark_quick(tmp_path):
    r = nn_backward.measure(24, 1, K=4, repeats=1, dtype=torch.float64)
    assert r["cg_iterations_mean"] >= 1 and 0 < r["support_fraction"] < 1
    assert r["forward_s"] > 0 and r["backward_s"] > 0
    assert nn_backward.main(["--quick", "--cases", "256x1", "--out", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "nn_backward_cpu_quick.json").read_text())
    assert saved["results"][0]["case"] == "32x1"

"""benchmarks/gpu/check.sh in its CPU mode (every section at tiny sizes), so that the GPU
check keeps working where CI has no GPU, and its promise that a failing section loses no
other section's figures."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GPU = ROOT / "benchmarks" / "gpu"
SECTIONS = ["environment", "parity", "throughput", "retiring", "dictlearn", "dataset", "classifier", "nn_layer",
            "cuda_tests"]


def _check_figures(report: dict, failed: str | None = None) -> None:
    """Every section present, in order, "ok" with plausible figures (cuda_tests skipped;
    ``failed`` recorded as an error)."""
    s = report["sections"]
    assert list(s) == SECTIONS and report["mode"] == "cpu"
    for name, e in s.items():
        assert e["seconds"] is not None and e["seconds"] >= 0, name
        if name == failed:
            assert e["status"] == "error" and "boom" in e["error"] and "boom" in e["traceback"]
        elif name == "cuda_tests":
            assert e["status"] == "skipped" and e["reason"] == "CPU mode: the test suite is the one running this"
        else:
            assert e["status"] == "ok", (name, e.get("error"), e.get("traceback"))
            assert e["figures"], name
    assert {"section": "cuda_tests", "what": "the section",
            "why": "CPU mode: the test suite is the one running this"} in report["skipped"]
    f = {n: e["figures"] for n, e in s.items()}
    if failed != "environment":
        assert f["environment"]["torch"] and isinstance(f["environment"]["compile_available"], bool)
        assert f["environment"]["auto_backend"] in ("numba", "torch")
    if failed != "parity":
        assert f["parity"]["reference"] == "cpu/numba"
        for b in ("torch", "compiled"):
            assert max(f["parity"][b][k] for k in ("codes", "u", "rho")) <= 1e-10 and f["parity"][b]["iterations_equal"]
    if failed != "throughput":
        rows = f["throughput"]["rows"]
        assert {r["backend"] for r in rows} == {"torch", "compiled"}
        assert f["throughput"]["passes_source"] in ("counted", "model")
        assert all(r["image_iterations_per_s"] > 0 and r["ratio_to_floor"] > 0 and r["first_solve_s"] > 0 for r in rows)
    if failed != "retiring":
        first = f["retiring"]["first"]
        assert 1 <= first["iterations_min"] <= first["iterations_median"] <= first["iterations_max"]
        assert first["seconds"] > 0 and first["recompiles"] >= 0
    if failed != "dictlearn":
        learners = [k for k, v in f["dictlearn"].items() if isinstance(v, dict)]
        assert {"batch_pgm", "batch_cns", "masked_pgm", "online", "online_masked"} <= set(learners)
        assert all(f["dictlearn"][k]["status"] == "ok" and f["dictlearn"][k]["seconds"] > 0 for k in learners)
    if failed != "dataset":
        assert f["dataset"]["images"] == 8 and f["dataset"]["images_per_s"] > 0
    if failed != "classifier":
        assert f["classifier"]["steps_per_s"] > 0 and f["classifier"]["input_shape"][0] == 144
    if failed != "nn_layer":
        row = f["nn_layer"]["24x1"]
        assert row["forward_s"] > 0 and row["backward_s"] > 0 and row["cg_iterations_mean"] >= 1


@pytest.mark.slow
def test_gpu_check_cpu_mode(tmp_path):
    """check.sh --cpu end to end: every section present and "ok" (cuda_tests skipped)."""
    out = tmp_path / "report.json"
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(["bash", str(GPU / "check.sh"), "--cpu", "--out", str(out)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    _check_figures(report)
    assert not list(tmp_path.glob("*.tmp"))  # written through a temporary file, replaced


@pytest.fixture
def driver(monkeypatch):
    spec = importlib.util.spec_from_file_location("gpu_check_under_test", GPU / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_gpu_check_failing_section_keeps_the_others(driver, monkeypatch, tmp_path):
    """A section that raises is recorded as "error" (its traceback's last lines); the
    sections before and after it still run and keep their figures."""
    def boom(ctx, figures):
        figures["partial"] = 1.0  # figures measured before the failure are kept
        raise RuntimeError("boom")

    monkeypatch.setitem(driver.SECTIONS, "retiring", boom)
    out = tmp_path / "report.json"
    assert driver.main(["--cpu", "--out", str(out)]) == 1  # a section failed
    report = json.loads(out.read_text())
    _check_figures(report, failed="retiring")
    assert report["sections"]["retiring"]["figures"] == {"partial": 1.0}

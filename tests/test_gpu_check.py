"""benchmarks/gpu/check.sh in its CPU mode (tiny sizes), so that the GPU check keeps working
where CI has no GPU: it runs and writes its JSON report."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_cpu_smoke(tmp_path):
    out = tmp_path / "report.json"
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu" / "check.sh"), "--cpu-smoke", "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    assert report["device"] == "cpu" and report["cpu_smoke"]
    assert {(r["dtype"], r["batch"]) for r in report["iterations"]} == {
        (d, b) for d in ("float32", "float64") for b in (1, 2)}
    assert all(r["image_iterations_per_s"] > 0 and r["ratio_to_floor"] > 0 for r in report["iterations"])
    assert report["dataset"]["images"] == 6 and report["dataset"]["images_per_s"] > 0

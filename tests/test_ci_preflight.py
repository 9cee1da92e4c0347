"""The CI preflight (.ci/preflight.py) fails, naming the package, when numba, SPORCO or
pyFFTW cannot be imported (each blocked in a subprocess through ``sys.modules``)."""

import subprocess
import sys
from pathlib import Path

import pytest

PREFLIGHT = Path(__file__).resolve().parents[1] / ".ci" / "preflight.py"


@pytest.mark.parametrize("name", ["numba", "sporco", "pyfftw"])
def test_preflight_names_a_missing_package(name):
    code = (f"import runpy, sys; sys.modules[{name!r}] = None; "
            f"runpy.run_path({str(PREFLIGHT)!r}, run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "CI preflight failed" in proc.stderr
    missing = [line for line in proc.stderr.splitlines() if line.startswith("  ")]
    assert [line.split()[0] for line in missing] == [name], proc.stderr

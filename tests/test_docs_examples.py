"""The docs' worked examples (``docs/examples/*.py``, not executed by the docs build) run in
their quick mode (``CSC_EXAMPLE_QUICK=1``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_quick_mode(path, tmp_path):
    env = {**os.environ, "CSC_EXAMPLE_QUICK": "1", "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "PSNR" in proc.stdout or proc.stdout.strip(), proc.stdout


def test_examples_exist():
    assert EXAMPLES, "docs/examples/ has no example"

"""The package as a user installs it: build the wheel, install it outside the checkout, run it.

``pip wheel --no-deps --no-build-isolation`` builds the wheel with this interpreter's
setuptools (nothing is downloaded); ``pip --python`` installs it into a fresh virtualenv,
whose ``csc --help`` and a tiny solve with a shipped dictionary run from a temporary working
directory (so the checkout's ``csc/`` cannot be imported by accident). The dependencies (torch,
numba …) come from this interpreter's environment, seen through a ``.pth`` line. ``python -m build`` (sdist and wheel, in
isolated environments) is the release command; it needs the package index, so it is not run
here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pip") is None or importlib.util.find_spec("setuptools") is None,
    reason="building the wheel needs pip and setuptools in this environment")


def _version() -> str:
    text = (ROOT / "csc" / "__init__.py").read_text()
    return next(line.split('"')[1] for line in text.splitlines() if line.startswith("__version__"))


def _run(cmd, cwd, env=None, timeout=240):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build-src")
    env = {**os.environ, "PIP_NO_INDEX": "1"}
    # setuptools builds in-tree, into build/ and csc_torch.egg-info/ (both git-ignored)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", str(out), str(ROOT)], cwd=build, env=env)
    wheels = list(out.glob("*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_name_metadata_and_dictionaries(wheel):
    # the distribution name is csc-torch (csc on the index is another project); the import name is csc
    assert wheel.name.startswith(f"csc_torch-{_version()}-"), wheel.name
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        entry = zf.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "Name: csc-torch" in meta and f"Version: {_version()}" in meta
    assert "Requires-Python: >=3.10" in meta and "Provides-Extra: docs" in meta
    assert "csc = csc.cli.main:main" in entry
    shipped = json.loads((ROOT / "dictionaries" / "manifest.json").read_text())
    files = {Path(n).name for n in names if n.startswith("csc/dictionaries/")}
    assert "manifest.json" in files
    npz = sorted(p.name for p in (ROOT / "dictionaries").glob("*.npz"))
    assert npz and set(npz) <= files, set(npz) - files
    assert shipped  # the manifest lists the dictionaries the wheel carries
    assert not any(n.startswith(("tests/", "benchmarks/", "notebooks/", "docs/")) for n in names)


def _fresh_venv(tmp_path: Path) -> tuple[Path, Path]:
    """A new virtualenv (no pip of its own) whose site-packages also sees this environment's
    (a ``.pth`` line), so the dependencies (torch, numba …) need no download; its python and
    its site-packages."""
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=tmp_path).stdout.strip())
    deps = _run([sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                cwd=tmp_path).stdout.strip()
    (site / "_deps.pth").write_text(deps + "\n")
    return python, site


def test_installed_wheel_runs_outside_the_checkout(wheel, tmp_path):
    """pip installs the wheel into a fresh virtualenv; its ``csc`` command and a tiny solve run
    from a folder outside the checkout, importing csc from the virtualenv."""
    python, site = _fresh_venv(tmp_path)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
          str(wheel)], cwd=cwd)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(CSC_CBPDN_BACKEND="torch", OMP_NUM_THREADS="1")
    help_text = _run([str(python.parent / "csc"), "--help"], cwd=cwd, env=env).stdout
    assert "encode" in help_text and "demo" in help_text
    script = (
        "import csc, torch\n"
        "assert csc.__file__.startswith(%r), csc.__file__\n"
        "D = csc.load_dictionary('heterogeneous')[:8]\n"
        "s = torch.rand(1, 24, 24, generator=torch.Generator().manual_seed(0))\n"
        "r = csc.ConvBPDN(D, 0.05, csc.CBPDNOptions(max_iter=10)).solve(s)\n"
        "print(sorted(csc.shipped_dictionaries()), tuple(r.codes.shape), r.backend)\n"
    ) % str(site)
    out = _run([str(python), "-c", script], cwd=cwd, env=env).stdout
    assert "heterogeneous" in out and "(1, 8, 24, 24)" in out, out

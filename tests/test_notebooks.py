"""Execute every figure notebook (notebooks/fig*.ipynb) and example (example_*.ipynb) in quick mode.

The notebooks run with ``CSC_NOTEBOOK_QUICK=1`` (small inputs, figures written to a
temporary folder) in a ``python3`` kernel (ipykernel, started with this interpreter). To keep
the file under a minute and a half on one core, the kernel is started once for the module and
its namespace is cleared (``%reset -f``) before each notebook, so each notebook runs from an
empty namespace but does not pay again for importing torch, scipy and csc. A cell that raises
fails the test; so does a notebook that runs past its time budget, or one that touches the
committed figures in notebooks/figures/. The stored notebooks must be free of outputs so that
the repository stays small.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (pip install -e '.[dev]')")
nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (pip install -e '.[dev]')")

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
FIGURES = sorted(NOTEBOOK_DIR.glob("fig*.ipynb"))
NOTEBOOKS = FIGURES + sorted(NOTEBOOK_DIR.glob("example_*.ipynb"))  # the figures, then worked examples
CELL_TIMEOUT = 60  # seconds for any one cell
NOTEBOOK_TIMEOUT = 90  # seconds for a whole notebook
RESET = "get_ipython().run_line_magic('reset', '-f')\nimport matplotlib.pyplot\nmatplotlib.pyplot.close('all')"


def test_every_figure_has_a_notebook():
    stems = [p.stem.split("_")[0] for p in FIGURES]
    assert stems == [f"fig{i}" for i in range(1, 8)], stems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} hold outputs; clear them before committing"


@pytest.fixture(scope="module")
def kernel():
    """A python3 kernel in quick mode, shared by the notebooks of this module."""
    from jupyter_client.manager import KernelManager

    env = dict(os.environ, CSC_NOTEBOOK_QUICK="1", MPLBACKEND="module://matplotlib_inline.backend_inline")
    env.setdefault("OMP_NUM_THREADS", "1")
    km = KernelManager(kernel_name="python3")

    def ensure():
        if not km.has_kernel or not km.is_alive():
            km.start_kernel(env=env, cwd=str(NOTEBOOK_DIR))
        return km

    yield ensure
    if km.has_kernel:
        km.shutdown_kernel(now=True)


def _committed_figures() -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (NOTEBOOK_DIR / "figures").glob("*.png")}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_quick_mode(path, kernel):
    before = _committed_figures()
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(RESET))
    deadline = time.monotonic() + NOTEBOOK_TIMEOUT

    def check_deadline(**_):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path.name} ran past its {NOTEBOOK_TIMEOUT} s budget")

    client = nbclient.NotebookClient(nb, km=kernel(), timeout=CELL_TIMEOUT, kernel_name="python3",
                                     on_cell_start=check_deadline)
    try:
        client.execute()  # raises CellExecutionError on the first failing cell
    finally:
        if client.kc is not None:
            client.kc.stop_channels()
    check_deadline()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    quick = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "quick=True" in quick, "the notebook did not run in quick mode"
    assert _committed_figures() == before, "quick mode must not write notebooks/figures/"

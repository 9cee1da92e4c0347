"""Execute the figure notebooks with nbclient, in full mode by default.

Full mode writes the figures to ``notebooks/figures/*.png`` (the committed ones); ``--quick``
runs the small test settings instead (figures go to a temporary folder). The notebooks in
the repository stay output-free: executed copies are written only with ``--executed DIR``.

    OMP_NUM_THREADS=1 .venv/bin/python notebooks/run_all.py              # every notebook, full mode
    OMP_NUM_THREADS=1 .venv/bin/python notebooks/run_all.py fig2 fig6    # some of them
    .venv/bin/python notebooks/run_all.py --quick                        # what the tests run

Needs the ``dev`` extra (nbclient, nbformat, ipykernel).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def notebooks(selection: list[str] | None = None) -> list[Path]:
    """The figure notebooks in order, optionally those whose name starts with one of ``selection``."""
    found = sorted(HERE.glob("fig*.ipynb"))
    if not selection:
        return found
    picked = [p for p in found if any(p.stem.startswith(s.removesuffix(".ipynb")) for s in selection)]
    missing = [s for s in selection if not any(p.stem.startswith(s.removesuffix(".ipynb")) for p in found)]
    if missing:
        raise SystemExit(f"no notebook matches {', '.join(missing)} (have {', '.join(p.stem for p in found)})")
    return picked


def execute(path: Path, quick: bool, cell_timeout: int | None = None, executed_dir: Path | None = None) -> float:
    """Run one notebook in a fresh python3 kernel; return its wall time in seconds."""
    import nbformat
    from nbclient import NotebookClient

    os.environ["CSC_NOTEBOOK_QUICK"] = "1" if quick else "0"  # the kernel inherits the environment
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(HERE)}})
    t0 = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - t0
    if executed_dir is not None:
        executed_dir.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, executed_dir / path.name)
    return seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="notebook name prefixes (default: all), e.g. fig2 fig6_pruning")
    ap.add_argument("--quick", action="store_true", help="quick mode (CSC_NOTEBOOK_QUICK=1), as the tests")
    ap.add_argument("--cell-timeout", type=int, default=None, help="seconds per cell (default: none)")
    ap.add_argument("--executed", type=Path, default=None, help="also write the executed notebooks here")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    total = 0.0
    for path in notebooks(args.names):
        print(f"{path.name} ({'quick' if args.quick else 'full'}) ...", flush=True)
        seconds = execute(path, args.quick, args.cell_timeout, args.executed)
        total += seconds
        print(f"  {seconds:.1f} s", flush=True)
    print(f"total {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

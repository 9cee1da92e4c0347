#!/usr/bin/env python
"""Speed and memory of csc.ConvBPDN against SPORCO's admm.cbpdn.ConvBPDN, same problem.

A thin wrapper: the comparison is the harness package beside this script,
:mod:`benchmarks.bench`, which ``csc bench`` imports from the checkout too.
``python benchmarks/compare_sporco.py ARGS``, ``python -m benchmarks.bench ARGS`` and
``csc bench ARGS`` are equivalent; ``--help`` lists the options and benchmarks/README.md
describes the method. The names of :mod:`benchmarks.bench` (problem, runners, machine
record, bandwidth floor) are re-exported here for older imports.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout: benchmarks.bench

from benchmarks.bench import *  # noqa: F401,F403,E402  (re-exported for scripts importing compare_sporco)
from benchmarks.bench import main  # noqa: F401,E402

if __name__ == "__main__":
    main()

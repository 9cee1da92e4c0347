#!/usr/bin/env python
"""Speed and memory of csc.ConvBPDN against SPORCO's admm.cbpdn.ConvBPDN, same problem.

A thin wrapper: the comparison lives in the package, :mod:`csc.cli.bench`, so that the
installed ``csc bench`` command runs the same code. ``python benchmarks/compare_sporco.py
ARGS`` and ``csc bench ARGS`` are equivalent; ``--help`` lists the options and
benchmarks/README.md describes the method. The names of :mod:`csc.cli.bench` (problem,
runners, machine record, bandwidth floor) are re-exported here for older imports.
"""

from __future__ import annotations

from csc.cli.bench import *  # noqa: F401,F403  (re-exported for scripts importing compare_sporco)
from csc.cli.bench import main  # noqa: F401

if __name__ == "__main__":
    main()

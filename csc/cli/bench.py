"""``csc bench [--size 256] [--iters 50] [--threads N] [--json FILE] [--peers ENGINE...] ...``: csc against SPORCO.

A thin entry point. The benchmark harness (the SPORCO comparison: problem, timed runs,
memory children, bandwidth floor, report, peers) is not part of the installed package: it
lives in the repository checkout, ``benchmarks/bench/``, beside the other benchmark scripts
and their results. This command finds that folder next to the ``csc`` package it was
imported from and imports ``benchmarks.bench`` from there only when it runs
(:func:`harness`); building the ``csc`` parser needs only the options
(:mod:`csc.cli.bench_args`). So ``csc bench`` works from a checkout (``pip install -e .``, or
``PYTHONPATH`` at the checkout); where csc is installed without one (a wheel) it stops with
exit status 2 and one line saying so. ``python benchmarks/compare_sporco.py ARGS`` and
``python -m benchmarks.bench ARGS`` (from the checkout's root) run the same comparison.
SPORCO (the ``dev`` extra) is needed too; without it the command says how to install it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from csc.cli.bench_args import SPORCO_MISSING, add_arguments, have_sporco

__all__ = ["HARNESS_MISSING", "HarnessMissing", "harness", "register", "run"]

#: the checkout the ``csc`` package was imported from (its parent folder)
CHECKOUT = Path(__file__).resolve().parents[2]

HARNESS_MISSING = ("the benchmark harness is not installed with csc: it is benchmarks/bench/ of the repository "
                   "checkout, and {checkout} has none. Run csc bench from a checkout (git clone, then "
                   "pip install -e '.[dev]'), or python benchmarks/compare_sporco.py there")


class HarnessMissing(RuntimeError):
    """csc runs without its repository checkout, so ``csc bench`` has no harness to run."""


def harness(checkout: Path | None = None):
    """The harness package ``benchmarks.bench`` of ``checkout`` (default :data:`CHECKOUT`, the
    one csc was imported from), imported on first use, the checkout put first on
    ``sys.path`` if needed. :class:`HarnessMissing` when the checkout has no
    ``benchmarks/bench/``, or when another ``benchmarks`` package is already imported in its place."""
    checkout = CHECKOUT if checkout is None else Path(checkout)
    init = checkout / "benchmarks" / "bench" / "__init__.py"
    if not init.is_file():
        raise HarnessMissing(HARNESS_MISSING.format(checkout=checkout))
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    module = importlib.import_module("benchmarks.bench")
    if Path(module.__file__).resolve() != init.resolve():
        raise HarnessMissing(f"another package named benchmarks.bench ({module.__file__}) hides the "
                             f"checkout's ({init})")
    return module


def register(sub) -> None:
    """``csc bench``: the options of the SPORCO comparison (the harness loads only when it runs)."""
    bn = sub.add_parser("bench", help="time csc against SPORCO on the standard problem (256² barbara, K = 144 "
                                      "12×12, λ = 0.05): ms/iteration, memory, bandwidth floor; needs sporco "
                                      "and the repository checkout (benchmarks/bench/)",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arguments(bn)
    bn.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The standard speed/memory comparison with SPORCO (``benchmarks.bench.run``); 2 with one
    line on stderr when the harness or SPORCO is missing."""
    from csc.runtime.outputs import prepare_file_parent

    try:
        bench = harness()
    except HarnessMissing as exc:
        print(f"csc bench: error: {exc}", file=sys.stderr)
        return 2
    if not have_sporco():
        print(f"csc bench: error: {SPORCO_MISSING}", file=sys.stderr)
        return 2
    bench.check_arguments(args)
    if args.json:
        prepare_file_parent(args.json, "--json")
    bench.run(args)
    return 0

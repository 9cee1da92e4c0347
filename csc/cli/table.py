"""``csc table RUN… [--markdown F] [--json F] [--curves F.png]``: Table 1 from training runs.

Aggregates the ``metrics.json`` of ``csc train`` run folders over seeds
(:func:`csc.classify.train.aggregate_runs`: mean and standard deviation per encoding and
pruning), prints the Markdown table, and writes it, the aggregate as JSON and Fig. 7-style
curves where asked (every output's folder checked writable first).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["register", "run"]


def register(sub) -> None:
    """``csc table``: aggregate training runs into Table 1."""
    tb = sub.add_parser("table", help="aggregate training runs over seeds into Table 1 (Markdown, JSON, curves)")
    tb.add_argument("runs", nargs="+", help="run folders")
    tb.add_argument("--metric", default="test_acc")
    tb.add_argument("--which", choices=["last", "best"], default="last")
    tb.add_argument("--markdown", default=None, help="write the table here")
    tb.add_argument("--json", default=None, help="write the aggregate here")
    tb.add_argument("--curves", default=None, help="write Fig. 7-style curves (PNG) here")
    tb.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Aggregate the run folders that hold ``metrics.json``; print and write the table."""
    from csc.classify.train import aggregate_runs, plot_runs, table_markdown
    from csc.dictionary.io import atomic_write
    from csc.runtime.outputs import prepare_file_parent

    runs = [Path(r) for r in args.runs if (Path(r) / "metrics.json").is_file()]
    if not runs:
        raise ValueError("runs: no run folders with metrics.json given")
    for opt in ("markdown", "json", "curves"):
        if getattr(args, opt):
            prepare_file_parent(getattr(args, opt), f"--{opt}")
    agg = aggregate_runs(runs, metric=args.metric, which=args.which)
    md = table_markdown(agg)
    print(md, end="")
    if args.markdown:
        atomic_write(args.markdown, lambda f: f.write(md.encode()))
    if args.json:
        slim = {**agg, "runs": [str(r) for r in runs]}
        atomic_write(args.json, lambda f: f.write(json.dumps(slim, indent=1).encode()))
    if args.curves:
        plot_runs(agg, args.curves)
    return 0

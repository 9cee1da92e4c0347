"""``csc demo [--quick] [--crop 128] [--lmbda L] [--max-iter 100] [--preprocess highpass|lcn] [--out out/demo]``.

The command-line front end of :func:`csc.science.demo.run_demo`: code the built-in
photographs with every shipped dictionary, print the table of median PSNR and sparseness
(:func:`csc.science.demo.format_table`), and write ``demo.json``, ``demo.png`` and
``codes/`` to ``--out``. Options left out keep the values of
:data:`csc.science.demo.DEFAULTS` (``--quick``: :data:`csc.science.demo.QUICK`).

The demo's library names (``run_demo``, ``DemoConfig``, ``prepare_photographs`` …) were in
this module until the demo moved to the science layer; reading them here
(``csc.cli.demo.run_demo``) still works, with a :class:`DeprecationWarning` naming
:mod:`csc.science.demo`, until csc 0.3 (:data:`csc._compat.REMOVAL`).
"""

from __future__ import annotations

import argparse

from csc.cli.argtypes import nonneg_float, positive_int

__all__ = ["register", "run"]


def register(sub) -> None:
    """``csc demo``: code the built-in photographs with every shipped dictionary."""
    m = sub.add_parser("demo", help="code the built-in photographs with every shipped dictionary; "
                                    "table, JSON and figure")
    m.add_argument("--lmbda", type=nonneg_float, default=None, help="λ for every dictionary (default 0.01 for highpass, 0.05 for lcn)")
    m.add_argument("--crop", type=positive_int, default=None, help="central square crop side (default 128)")
    m.add_argument("--max-iter", type=positive_int, default=None, help="ADMM iteration limit (default 100)")
    m.add_argument("--rel-stop-tol", type=nonneg_float, default=None, help="relative stopping tolerance (default 1e-3)")
    m.add_argument("--images", nargs="+", default=None, metavar="NAME",
                   help="subset of the built-in photographs (default all 11)")
    m.add_argument("--dictionaries", nargs="+", default=None, metavar="NAME",
                   help="dictionaries (default every shipped one: csc dictionaries)")
    m.add_argument("--preprocess", choices=["highpass", "lcn"], default=None,
                   help="Tikhonov highpass (SPORCO examples, default) or local contrast normalisation")
    m.add_argument("--example", default=None, help="photograph shown reconstructed (default camera)")
    m.add_argument("--out", default="out/demo", help="output folder (default out/demo); a rerun replaces the demo's "
                   "own files there (demo.json, demo.png, codes/), other files are refused unless --overwrite")
    m.add_argument("--overwrite", action="store_true", help="write into an --out folder holding other files")
    m.add_argument("--quick", action="store_true", help="three 32x32 crops, 20 iterations (seconds)")
    m.add_argument("--device", default=None, help="cpu, cuda, cuda:N or auto (default)")
    m.add_argument("--dtype", choices=["float32", "float64"], default=None)
    m.add_argument("--batch-size", type=positive_int, default=None, help="images per solve (default 4 on CPU, all on CUDA)")
    m.add_argument("--no-figure", action="store_true", help="do not draw demo.png")
    m.add_argument("--quiet", action="store_true", help="no progress bar")
    m.set_defaults(func=run)


#: what the demo writes into --out (a rerun replaces them)
DEMO_OUTPUTS = ("demo.json", "demo.png", "codes")


def run(args: argparse.Namespace) -> int:
    """Run the demo with the options given (the rest from the defaults); print its table."""
    from dataclasses import replace

    from csc.runtime.outputs import output_dir, refuse_foreign
    from csc.science.demo import DEFAULTS, QUICK, format_table, run_demo

    base = QUICK if args.quick else DEFAULTS
    changes = {k: v for k, v in {
        "lmbda": args.lmbda, "crop": args.crop, "max_iter": args.max_iter, "rel_stop_tol": args.rel_stop_tol,
        "images": tuple(args.images) if args.images else None,
        "dictionaries": tuple(args.dictionaries) if args.dictionaries else None,
        "preprocess": args.preprocess, "device": args.device, "dtype": args.dtype,
        "batch_size": args.batch_size, "example": args.example,
    }.items() if v is not None}
    cfg = replace(base, **changes)
    refuse_foreign(args.out, "--out", args.overwrite, lambda p: p.name in DEMO_OUTPUTS)
    with output_dir(args.out, "--out"):
        result = run_demo(cfg, args.out, progress=not args.quiet, figure=not args.no_figure)
    print(format_table(result))
    print(f"wrote demo.json{'' if args.no_figure else ', demo.png'} and codes/ to {args.out} "
          f"({result.seconds:.0f} s)")
    return 0


def __getattr__(name: str):
    """The demo's library names, read here as before the move: from :mod:`csc.science.demo`, with a warning."""
    import importlib

    from csc import _compat

    demo = importlib.import_module("csc.science.demo")
    if name not in demo.__all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    _compat.warn_moved(f"{__name__}.{name}", f"csc.science.demo.{name}")
    return getattr(demo, name)

"""``csc loggabor --preset homogeneous|heterogeneous --out FILE``: write a log-Gabor dictionary file.

The kernels are :func:`csc.loggabor_dictionary`'s (``--normalise``, ``--form``, ``--size``);
``--colour`` builds the colour dictionary of :mod:`csc.dictionary.colour` (each kernel in the
L, RG and BY opponent directions). The file's manifest records the parameters of every
kernel and the command that made it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from csc.cli.argtypes import positive_int

__all__ = ["register", "run"]


def register(sub) -> None:
    """``csc loggabor``: write a log-Gabor dictionary file."""
    g = sub.add_parser("loggabor", help="generate a log-Gabor dictionary file")
    g.add_argument("--preset", choices=["homogeneous", "heterogeneous"], default="heterogeneous")
    g.add_argument("--size", type=positive_int, default=12)
    g.add_argument("--normalise", choices=["unit", "authors"], default="unit")
    g.add_argument("--form", choices=["library", "paper"], default="library")
    g.add_argument("--name", default=None)
    g.add_argument("--colour", action="store_true",
                   help="a colour dictionary (3K, 3, size, size): each kernel in the L, RG and BY opponent directions")
    g.add_argument("--out", required=True)
    g.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    g.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the preset's kernels and save them with their parameters."""
    import torch

    from csc.dictionary.colour import colour_loggabor_dictionary
    from csc.dictionary.io import save_dictionary
    from csc.dictionary.loggabor import loggabor_dictionary
    from csc.runtime.outputs import claim_file

    claim_file(args.out, "--out", overwrite=args.overwrite)
    kernels, params = loggabor_dictionary(args.preset, size=args.size, normalise=args.normalise,
                                          dtype=torch.float32, form=args.form)
    colour_axes = None
    if args.colour:
        if args.normalise != "unit" or args.form != "library":
            raise ValueError("--colour: the colour dictionary is built from unit-norm library-form kernels")
        kernels, params, colour_axes = colour_loggabor_dictionary(args.preset, size=args.size)
    meta = {
        "name": args.name or args.preset, "made_by": "csc.loggabor_dictionary",
        "command": (f"csc loggabor --preset {args.preset} --size {args.size} --normalise {args.normalise} "
                    f"--form {args.form} --out {Path(args.out).name}"),
        "preset": args.preset, "size": args.size, "normalise": args.normalise, "form": args.form,
        "theta": params.theta.tolist(), "b_theta": params.b_theta.tolist(), "phase": params.phase.tolist(),
    }
    if colour_axes is not None:
        meta["command"] += " --colour"
        meta["colour_axes"] = list(colour_axes)
        meta["colour"] = ("each log-Gabor kernel (theta, b_theta, phase) times each opponent direction "
                          "L, RG, BY (csc.dictionary.colour), kernel outer, direction inner")
    path = save_dictionary(args.out, kernels, meta)
    print(f"wrote {kernels.shape[0]} kernels {'3x' if args.colour else ''}{args.size}x{args.size} ({args.preset}) to {path}")
    return 0

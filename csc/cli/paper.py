"""``csc paper``: the paper's experiments with the authors' settings (csc.science.protocol).

Every field of a protocol dataclass is an option of its subcommand (``--max-iter``,
``--eta-a`` …), with the authors' value as default; ``--crop none`` means whole images.
``csc paper learn`` runs :func:`csc.science.protocol.learn_online`, ``csc paper table1``
:func:`csc.classify.experiment.run_table1`; :func:`run` dispatches on the experiment.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

__all__ = ["add_protocol_options", "protocol_from_args", "register", "run"]


def _parse_optional(kind):
    def parse(text: str):
        return None if text.lower() == "none" else kind(text)

    parse.__name__ = kind.__name__
    return parse


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _argument(field: dataclasses.Field, hint) -> dict[str, Any]:
    """argparse keywords for one protocol field, from its type hint."""
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin is tuple:
        item = next(a for a in args if a is not Ellipsis)
        item_args = [a for a in typing.get_args(item) if a is not type(None)]
        kind = _parse_optional(item_args[0]) if item_args else item
        return {"type": kind, "nargs": "+" if Ellipsis in args else len(args)}
    if type(None) in args:  # int | None
        return {"type": _parse_optional(next(a for a in args if a is not type(None)))}
    return {"type": _bool if hint is bool else hint}


def add_protocol_options(parser: argparse.ArgumentParser, cls, prefix: str = "",
                         title: str = "authors' defaults") -> None:
    """One ``--<field>`` option per field of the dataclass ``cls`` (its defaults)."""
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(f"{cls.__name__} ({title})")
    for f in dataclasses.fields(cls):
        default = f.default
        group.add_argument(f"--{prefix}{f.name.replace('_', '-')}", dest=f"{prefix}{f.name}", default=default,
                           help=f"default {default!r}", **_argument(f, hints[f.name]))


def protocol_from_args(cls, args: argparse.Namespace, prefix: str = ""):
    """The dataclass ``cls`` made from the options :func:`add_protocol_options` added (lists as tuples)."""
    values = {}
    for f in dataclasses.fields(cls):
        v = getattr(args, f"{prefix}{f.name}")
        values[f.name] = tuple(v) if isinstance(v, list) else v
    try:
        return cls(**values)
    except (ValueError, TypeError) as exc:  # name the option the user wrote, not the field
        field, _, rest = str(exc).partition(": ")
        if field in values:
            raise type(exc)(f"--{prefix}{field.replace('_', '-')}: {rest}") from None
        raise


def run(args: argparse.Namespace) -> int:
    """Run the experiment ``csc paper`` was given (``learn`` or ``table1``)."""
    return {"learn": _learn, "table1": _table1}[args.experiment](args)


def _learn(args: argparse.Namespace) -> int:
    """``csc paper learn``: a post-learning dictionary by the authors' online protocol (resumable)."""
    from csc.cli.common import torch_dtype
    from csc.science.protocol import OnlineLearningProtocol, learn_online

    protocol = protocol_from_args(OnlineLearningProtocol, args)
    dtype = torch_dtype(args.dtype)
    path = learn_online(args.init, args.out, protocol, dtype=dtype, device=args.device,
                        checkpoint_every=args.checkpoint_every, progress=not args.quiet)
    print(f"wrote {path}")
    return 0


def _table1(args: argparse.Namespace) -> int:
    """``csc paper table1``: Table 1 as one resumable run (stores, trainings, aggregate)."""
    from csc.classify.experiment import Table1Plan, run_table1
    from csc.runtime.outputs import check_given
    from csc.science.protocol import ClassifierProtocol, EncodingProtocol

    plan = protocol_from_args(Table1Plan, args)
    run_table1(plan, check_given(args.out, "--out"), protocol_from_args(EncodingProtocol, args),
               protocol_from_args(ClassifierProtocol, args), progress=not args.quiet)
    print(f"wrote {args.out}/table1.md, table1.json and curves.png")
    return 0


def interrupted(args: argparse.Namespace) -> str:
    """What Ctrl-C left (:func:`csc.cli.main.main` prints it): both experiments resume."""
    if args.experiment == "learn":
        return f"the last checkpoint is kept next to {str(args.out)!r}; run the same command again to continue"
    return (f"the finished store shards and training epochs are kept in {str(args.out)!r}; run the same command "
            "again to continue")


def register(sub) -> None:
    """``csc paper learn`` and ``csc paper table1``, their options made from the protocol dataclasses."""
    from csc.cli.argtypes import positive_int
    from csc.science.protocol import OnlineLearningProtocol

    p = sub.add_parser("paper", help="the paper's experiments with the authors' settings (Fig. 2, post-learning "
                                     "dictionaries, Table 1)")
    ps = p.add_subparsers(dest="experiment", required=True)
    lr = ps.add_parser("learn", help="a post-learning dictionary: online CDL from a log-Gabor dictionary "
                                     "(resumable)")
    lr.add_argument("--init", required=True, help="starting dictionary (shipped name or file)")
    lr.add_argument("--out", required=True, help="dictionary file to write (.npz)")
    lr.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    lr.add_argument("--device", default=None)
    lr.add_argument("--checkpoint-every", type=positive_int, default=25)
    lr.add_argument("--quiet", action="store_true")
    add_protocol_options(lr, OnlineLearningProtocol)
    lr.set_defaults(func=run)
    from csc.classify.experiment import Table1Plan
    from csc.science.protocol import ClassifierProtocol, EncodingProtocol

    t1 = ps.add_parser("table1", help="Table 1: encode the dataset with each dictionary, train ResNet-18 on the "
                                      "codes and on pixels over seeds and pruning, aggregate (resumable)")
    t1.add_argument("--out", required=True, help="experiment folder (stores/, runs/, table1.md)")
    t1.add_argument("--quiet", action="store_true")
    add_protocol_options(t1, Table1Plan, title="what to run")
    for cls in (EncodingProtocol, ClassifierProtocol):
        add_protocol_options(t1, cls)
    t1.set_defaults(func=run)

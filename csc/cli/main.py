"""The ``csc`` command: the parser assembled from the command modules, and the dispatch.

Each command is a module of :mod:`csc.cli` with ``register(subparsers)`` (its sub-parser,
with ``func`` set to its ``run``) and ``run(args)`` (its exit status), listed in
:data:`COMMANDS` in the order of ``csc --help``:

    csc encode IMAGE... --dictionary NAME|FILE --lmbda L [--out DIR] ...   csc.cli.encode
    csc loggabor --preset heterogeneous --out FILE                         csc.cli.loggabor
    csc learn --images DIR|builtin --init NAME --lmbda L --steps N ...     csc.cli.learn
    csc bench [--size 256] [--iters 50] [--json FILE] ...  (needs SPORCO)   csc.cli.bench
    csc dictionaries                                                       csc.cli.dictionaries
    csc encode-dataset --dataset NAME --out STORE ...                      csc.cli.encode_dataset
    csc store verify STORE...                                              csc.cli.store
    csc train --store STORE --test-store STORE --out RUN ...               csc.cli.train
    csc table RUN... [--markdown F] ...                                    csc.cli.table
    csc demo [--quick] [--out out/demo] ...                                csc.cli.demo
    csc paper learn|table1 ...                                             csc.cli.paper

Number types shared by the commands are in :mod:`csc.cli.argtypes`, other shared helpers
in :mod:`csc.cli.common`. ``encode-dataset``, ``learn --method online`` and ``train`` run
data-parallel when started by ``torchrun`` (``torchrun --nproc_per_node N -m csc train ...``):
see :mod:`csc.runtime.distributed`. Rank 0 prints and writes the shared outputs.

Ctrl-C (SIGINT) stops any command with one line on stderr and exit status 130: what was
kept and how to go on, from the command module's ``interrupted(args)`` when it has one
(``encode-dataset``: the finished shards, rerun to resume; ``learn``: the checkpoint, rerun
with ``--resume``; ``train``: the run folder's checkpoint, rerun to resume).
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from csc.cli import (bench, demo, dictionaries, encode, encode_dataset, learn, loggabor, paper, store, table,
                     train)

__all__ = ["COMMANDS", "build_parser", "main"]

#: the command modules, in the order of ``csc --help``
COMMANDS = (encode, loggabor, learn, bench, dictionaries, encode_dataset, store, train, table, demo, paper)


def build_parser() -> argparse.ArgumentParser:
    """The ``csc`` command line: one sub-command per module of :data:`COMMANDS`."""
    p = argparse.ArgumentParser(prog="csc", description="Convolutional sparse coding on PyTorch.")
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``csc`` command; its exit status (2 for bad arguments or input, with one line
    on stderr naming the argument)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse's own errors (already printed) and --help
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"csc {args.command}: interrupted; {_interrupted(args)}", file=sys.stderr)
        return 130
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, KeyError) as exc:
        print(f"csc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a disk that filled up, a folder made read-only while running …
        where = f" {str(exc.filename)!r}" if exc.filename else ""
        print(f"csc {args.command}: error: cannot write or read{where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    finally:
        if getattr(args, "_owns_process_group", False):
            from csc.runtime.distributed import cleanup

            cleanup()


def _interrupted(args) -> str:
    """What an interrupted command kept and how to go on (its module's ``interrupted(args)``)."""
    note = getattr(sys.modules.get(getattr(args.func, "__module__", ""), None), "interrupted", None)
    try:
        return note(args) if note is not None else "it stopped before it finished"
    except Exception:  # the note must not turn Ctrl-C into a traceback
        return "it stopped before it finished"

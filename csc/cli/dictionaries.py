"""``csc dictionaries``: list the shipped dictionaries (name and description), by name.

The names are those :func:`csc.shipped_dictionaries` reads from ``csc/dictionaries``'s
manifest; any of them can be given where a command takes ``--dictionary NAME`` or ``--init NAME``.
"""

from __future__ import annotations

import argparse

__all__ = ["register", "run"]


def register(sub) -> None:
    """``csc dictionaries``: list the shipped dictionaries."""
    d = sub.add_parser("dictionaries", help="list the shipped dictionaries")
    d.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print one line per shipped dictionary."""
    from csc.dictionary.io import shipped_dictionaries

    for name, entry in sorted(shipped_dictionaries().items()):
        print(f"{name:<26} {entry.get('description', '')}")
    return 0

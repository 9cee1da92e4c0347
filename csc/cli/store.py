"""``csc store verify STORE...``: check code stores against their manifests.

Each store's manifest (every header field against its digest, entries in order) and shards
(present, loadable, bound to the store and their position by their own header, checksums,
counts, offsets, coordinate range, labels, completion) are checked by
:func:`csc.pipeline.store.verify_store`; the
command prints ``ok`` or the problems per store and exits 1 when any store has one.
"""

from __future__ import annotations

import argparse

__all__ = ["register", "run"]


def register(sub) -> None:
    """``csc store verify``: check code stores against their manifests."""
    st = sub.add_parser("store", help="code store utilities")
    st_sub = st.add_subparsers(dest="store_command", required=True)
    sv = st_sub.add_parser("verify", help="check a store's shards against its manifest checksums")
    sv.add_argument("stores", nargs="+")
    sv.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Verify every store of ``args.stores``; 1 when any has a problem, else 0."""
    from csc.pipeline.store import verify_store

    status = 0
    for root in args.stores:
        problems = verify_store(root)
        if problems:
            status = 1
            print(f"{root}: {len(problems)} problem(s)")
            for p in problems:
                print(f"  {p}")
        else:
            print(f"{root}: ok")
    return status

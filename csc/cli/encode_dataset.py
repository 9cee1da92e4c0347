"""``csc encode-dataset --dataset fashion-mnist|cifar10|folder --dictionary NAME --lmbda L --out STORE``.

Sparse-codes a dataset split (or ``--start``/``--count`` of it) into a sharded, checksummed,
resumable code store (:func:`csc.pipeline.store.encode_dataset`): rerunning the same command
keeps every shard that verifies and encodes the rest. ``--warm-start FILE`` or
``--warm-start-train N`` start every solve from a predicted code (:mod:`csc.nn.warmstart`). Under ``torchrun`` the shards are
split over the processes (:mod:`csc.runtime.distributed`); rank 0 prints the summary.
"""

from __future__ import annotations

import argparse

import numpy as np

from csc.cli.argtypes import nonneg_float, nonneg_int, positive_float, positive_int
from csc.cli.common import init_distributed

__all__ = ["register", "run"]


def register(sub) -> None:
    """``csc encode-dataset``: code a dataset into a resumable code store."""
    ed = sub.add_parser("encode-dataset", help="sparse-code a dataset into a sharded, resumable code store")
    ed.add_argument("--dataset", choices=["fashion-mnist", "cifar10", "folder"], required=True)
    ed.add_argument("--root", default=None, help="dataset folder (Fashion-MNIST default: the Debian package's)")
    ed.add_argument("--split", choices=["train", "test"], default="train")
    ed.add_argument("--start", type=nonneg_int, default=0, help="first image of the split to encode")
    ed.add_argument("--count", type=positive_int, default=None, help="number of images (default: all from --start)")
    ed.add_argument("--dictionary", default="heterogeneous", help="dictionary file or shipped name")
    ed.add_argument("--lmbda", type=nonneg_float, default=0.1)
    ed.add_argument("--max-iter", type=positive_int, default=100)
    ed.add_argument("--rel-stop-tol", type=nonneg_float, default=1e-2)
    ed.add_argument("--l1-weight", type=nonneg_float, default=1.0, help="scalar L1Weight (default 1)")
    ed.add_argument("--relax", type=positive_float, default=1.8, help="RelaxParam (default 1.8)")
    ed.add_argument("--rsdl-ratio", type=positive_float, default=1.2, help="AutoRho RsdlRatio (default 1.2)")
    ed.add_argument("--size", type=positive_int, default=None, help="bilinear resize to SIZE x SIZE before coding")
    ed.add_argument("--preprocess", choices=["highpass", "lcn", "none"], default="highpass")
    ed.add_argument("--value-dtype", choices=["float16", "float32"], default="float16")
    ed.add_argument("--colour", action="store_true",
                    help="code RGB images with a multi-channel (K, 3, kh, kw) dictionary (default: gray)")
    warm = ed.add_mutually_exclusive_group()
    warm.add_argument("--warm-start", default=None, metavar="FILE",
                      help="start every solve from this warm-start predictor's code (csc.nn.warmstart; trained for "
                           "the same dictionary, λ and preprocessing); the solves still run to --rel-stop-tol")
    warm.add_argument("--warm-start-train", type=nonneg_int, default=0, metavar="N",
                      help="train a warm-start predictor on the first N images (coded cold), keep it in the store "
                           "as warm-start.npz, and code every image warm (default 0: cold)")
    ed.add_argument("--shard-size", type=positive_int, default=256, help="images per shard (and per encoding batch)")
    ed.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    ed.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="solver dtype")
    ed.add_argument("--out", required=True, help="store folder (rerun the same command to resume); a folder "
                                                 "holding other files is refused unless --overwrite")
    ed.add_argument("--overwrite", action="store_true",
                    help="write the store into an --out folder that holds files other than a store's")
    ed.add_argument("--quiet", action="store_true")
    ed.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Encode the chosen images into the store ``args.out``; print its size and speed."""
    from csc.pipeline.store import EncodeSettings, encode_dataset
    from csc.runtime.distributed import get_world_size, is_main_process

    settings = EncodeSettings(
        dictionary=args.dictionary, lmbda=args.lmbda, max_iter=args.max_iter, rel_stop_tol=args.rel_stop_tol,
        size=args.size, preprocess=args.preprocess, value_dtype=args.value_dtype, shard_size=args.shard_size,
        solver_dtype=args.dtype, colour=args.colour, l1_weight=args.l1_weight, relax=args.relax,
        rsdl_ratio=args.rsdl_ratio, warm_start=args.warm_start, warm_start_train=args.warm_start_train,
    )
    if args.colour and args.dataset == "fashion-mnist":
        raise ValueError("--colour: Fashion-MNIST is gray; colour encoding takes cifar10 or a folder of colour images")
    from csc.pipeline.store_format import is_store_file
    from csc.runtime.outputs import refuse_foreign

    refuse_foreign(args.out, "--out", overwrite=args.overwrite, ours=is_store_file)
    device = init_distributed(args)
    images, labels, ids, source = _load_dataset(args)
    store = encode_dataset(images, labels, args.out, settings, ids=ids, source=source,
                           device=device, progress=not args.quiet)
    if not is_main_process():
        return 0
    m = store.manifest
    if get_world_size() > 1:
        print(f"encoded by {get_world_size()} processes")
    print(f"{m['num_images']} images in {len(store.shards)} shards at {args.out}: "
          f"{m['bytes_per_image']:.0f} bytes/image vs {m['dense_float32_bytes_per_image']} dense float32 "
          f"({m['compression_vs_dense_float32']:.0f}x smaller), {m['nnz_per_image']:.0f} nonzeros/image, "
          f"{m['seconds_per_image'] * 1000:.1f} ms/image encoding")
    return 0


def interrupted(args: argparse.Namespace) -> str:
    """What Ctrl-C left (:func:`csc.cli.main.main` prints it)."""
    from pathlib import Path

    if (Path(args.out) / "manifest.json").is_file():
        return f"the shards finished so far are kept in {args.out!r}; run the same command again to resume"
    return f"no shard was finished, nothing kept in {args.out!r}; run the same command again to start"


def _load_dataset(args: argparse.Namespace):
    """(images, labels, ids, source description) for ``csc encode-dataset``."""
    from csc.pipeline import sources as data

    if args.dataset == "fashion-mnist":
        ds = data.load_fashion_mnist(args.split, args.root)
        images, labels = ds.images, ds.labels
    elif args.dataset == "cifar10":
        if args.root is None:
            raise ValueError("--root: the CIFAR-10 folder or archive is required")
        ds = data.load_cifar10(args.root, args.split)
        images, labels = ds.images, ds.labels
    else:
        if args.root is None:
            raise ValueError("--root: the image folder is required")
        ds = data.load_image_folder(args.root)
        images, labels = ds.stack(), ds.labels
        if images.ndim == 4 and images.shape[-1] in (3, 4):
            images = np.ascontiguousarray(images[..., :3].transpose(0, 3, 1, 2))
    start = args.start
    if start >= len(labels):
        raise ValueError(f"--start: {start} is past the end of the {args.split} split ({len(labels)} images)")
    stop = len(labels) if args.count is None else min(len(labels), start + args.count)
    ids = np.arange(start, stop, dtype=np.int64)
    source = {"dataset": args.dataset, "split": args.split, "root": str(args.root) if args.root else None,
              "start": start, "count": int(stop - start)}
    return images[start:stop], labels[start:stop], ids, source

"""``csc train --store STORE --test-store STORE | --pixels fashion-mnist --out RUN``: train a ResNet-18.

On the codes of a store (:class:`csc.pipeline.datasets.SparseCodeDataset`, optionally pruned:
``--prune c``, relative to each image's largest coefficient unless ``--absolute``) or on
pixels (:class:`csc.pipeline.datasets.PixelDataset`); the training loop is
:func:`csc.classify.train.train`, which checkpoints the run folder and resumes from it.
Under ``torchrun`` the batches are split over the processes; rank 0 prints and writes.
"""

from __future__ import annotations

import argparse

from csc.cli.argtypes import finite_float, nonneg_float, nonneg_int, positive_float, positive_int, unit_interval
from csc.cli.common import init_distributed

__all__ = ["register", "run"]


def register(sub) -> None:
    """``csc train``: a ResNet-18 on a code store or on pixels."""
    tr = sub.add_parser("train", help="train a ResNet-18 on a code store (or on pixels); resumes from its checkpoint")
    tr.add_argument("--store", help="training code store")
    tr.add_argument("--test-store", help="test code store")
    tr.add_argument("--pixels", choices=["fashion-mnist"], default=None, help="pixel baseline on this dataset")
    tr.add_argument("--root", default=None, help="dataset folder for --pixels")
    tr.add_argument("--train-start", type=nonneg_int, default=0)
    tr.add_argument("--train-count", type=positive_int, default=None)
    tr.add_argument("--test-start", type=nonneg_int, default=0)
    tr.add_argument("--test-count", type=positive_int, default=None)
    tr.add_argument("--prune", type=nonneg_float, default=None, help="pruning threshold c (default none)")
    tr.add_argument("--absolute", action="store_true", help="prune |x| < c (default: |x| < c·max|x|)")
    tr.add_argument("--size", type=positive_int, default=None, help="resize inputs to SIZE x SIZE at load")
    tr.add_argument("--hflip", action="store_true", help="random horizontal flips")
    tr.add_argument("--normalise", type=finite_float, nargs=2, metavar=("MEAN", "STD"), default=None)
    tr.add_argument("--epochs", type=positive_int, default=100)
    tr.add_argument("--batch-size", type=positive_int, default=128)
    tr.add_argument("--lr", type=positive_float, default=2e-4)
    tr.add_argument("--beta1", type=unit_interval, default=0.9)
    tr.add_argument("--beta2", type=unit_interval, default=0.99)
    tr.add_argument("--eps", type=positive_float, default=1e-8)
    tr.add_argument("--weight-decay", type=nonneg_float, default=0.0)
    tr.add_argument("--schedule", choices=["constant", "onecycle"], default="constant",
                    help="learning rate: constant, or OneCycleLR with max lr --lr (the authors')")
    tr.add_argument("--eval-every", type=positive_int, default=1,
                    help="evaluate on the test set every N epochs and after the last (default 1)")
    tr.add_argument("--seed", type=nonneg_int, default=0)
    tr.add_argument("--stem", choices=["imagenet", "cifar"], default="imagenet")
    tr.add_argument("--dropout", type=unit_interval, default=0.0)
    tr.add_argument("--amp", choices=["auto", "on", "off"], default="auto", help="mixed precision (CUDA only)")
    tr.add_argument("--device", default="auto")
    tr.add_argument("--max-steps", type=positive_int, default=None, help="at most this many batches per epoch")
    tr.add_argument("--workers", type=nonneg_int, default=None,
                    help="DataLoader worker processes (default: auto, min(4, CPUs) on CUDA and 0 on the CPU)")
    tr.add_argument("--label", default=None, help="encoding name in tables (default: dictionary or 'pixels')")
    tr.add_argument("--out", required=True, help="run folder: metrics.csv/json, curves.png, checkpoint.npz (rerun "
                                                 "to resume); a folder holding other files is refused unless --overwrite")
    tr.add_argument("--overwrite", action="store_true", help="write the run into an --out folder holding other files")
    tr.add_argument("--quiet", action="store_true")
    tr.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train on the chosen datasets into the run folder ``args.out``; print the last test accuracy."""
    from csc.classify.train import TrainOptions, last_evaluated, train
    from csc.runtime.distributed import is_main_process

    from csc.runtime.outputs import refuse_foreign

    refuse_foreign(args.out, "--out", overwrite=args.overwrite, ours=_run_file)  # its own run: resumed
    device = init_distributed(args)
    if args.amp == "on" and device.type != "cuda":
        raise ValueError(f"--amp on: mixed precision runs on CUDA only, and this run is on {device}; "
                         "use --amp auto (on where CUDA is) or --amp off")
    train_set, test_set, encoding = _pixel_datasets(args) if args.pixels else _code_datasets(args)
    opts = TrainOptions(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, betas=(args.beta1, args.beta2), eps=args.eps,
        weight_decay=args.weight_decay, seed=args.seed, stem=args.stem, dropout=args.dropout,
        amp={"auto": None, "on": True, "off": False}[args.amp], device=str(device),
        max_steps=args.max_steps, num_workers=args.workers, schedule=args.schedule,
        eval_every=args.eval_every,
    )
    run_info = {"encoding": encoding, "pruning": args.prune or None,
                "relative": None if args.pixels else not args.absolute, "seed": args.seed}
    res = train(train_set, test_set, args.out, opts, run=run_info, progress=not args.quiet)
    last = last_evaluated(res["epochs"])
    if last is not None and is_main_process():
        print(f"{args.out}: epoch {last['epoch']}: test accuracy {last['test_acc']:.2f}% (loss {last['test_loss']:.4f})")
    return 0


def _run_file(path) -> bool:
    """One of a training run folder's own files (or a killed write's temporary file)."""
    name = path.name
    return name in ("checkpoint.npz", "metrics.csv", "metrics.json", "curves.png") or \
        (name.startswith(".") and name.endswith(".tmp"))


def interrupted(args: argparse.Namespace) -> str:
    """What Ctrl-C left (:func:`csc.cli.main.main` prints it)."""
    from pathlib import Path

    ckpt = Path(args.out) / "checkpoint.npz"
    if ckpt.is_file():
        return f"the last finished epoch is kept in {str(ckpt)!r}; run the same command again to resume from it"
    return "no epoch finished, no checkpoint kept; run the same command again to start"


def _normalise(args: argparse.Namespace):
    if args.normalise and args.normalise[1] <= 0:
        raise ValueError(f"--normalise: STD must be > 0, got {args.normalise[1]!r}")
    return tuple(args.normalise) if args.normalise else None


def _pixel_datasets(args: argparse.Namespace):
    """(training set, test set, encoding name) of ``--pixels fashion-mnist``: the chosen slices of each split."""
    from csc.pipeline import sources as data
    from csc.pipeline.datasets import PixelDataset

    norm = _normalise(args)
    tr, te = data.load_fashion_mnist("train", args.root), data.load_fashion_mnist("test", args.root)
    s0, n0 = args.train_start, args.train_count
    s1, n1 = args.test_start, args.test_count
    tr_sl = slice(s0, None if n0 is None else s0 + n0)
    te_sl = slice(s1, None if n1 is None else s1 + n1)
    for arg, start, n in (("--train-start", s0, len(tr.labels)), ("--test-start", s1, len(te.labels))):
        if start >= n:
            raise ValueError(f"{arg}: {start} is past the end of the split ({n} images)")
    train_set = PixelDataset(tr.images[tr_sl], tr.labels[tr_sl], size=args.size, hflip=args.hflip,
                             normalise=norm, seed=args.seed)
    test_set = PixelDataset(te.images[te_sl], te.labels[te_sl], size=args.size, normalise=norm)
    return train_set, test_set, args.label or "pixels"


def _code_datasets(args: argparse.Namespace):
    """(training set, test set, encoding name) of ``--store``/``--test-store``, checked to be encoded alike."""
    from csc.pipeline.datasets import SparseCodeDataset
    from csc.pipeline.store import check_same_encoding

    if not args.store or not args.test_store:
        raise ValueError("--store and --test-store are required (or --pixels fashion-mnist)")
    norm, relative = _normalise(args), not args.absolute
    train_set = SparseCodeDataset(args.store, prune=args.prune, relative=relative, size=args.size,
                                  hflip=args.hflip, normalise=norm, seed=args.seed)
    test_set = SparseCodeDataset(args.test_store, prune=args.prune, relative=relative, size=args.size,
                                 normalise=norm)
    check_same_encoding(train_set.store, test_set.store, "--test-store")
    return train_set, test_set, args.label or train_set.store.manifest["settings"]["dictionary"]

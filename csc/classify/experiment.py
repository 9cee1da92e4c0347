"""Table 1 as one resumable experiment: encode a dataset with each dictionary, train the
ResNet-18 on the codes (and on pixels) over seeds and pruning levels, aggregate.

The settings are the authors' (:class:`csc.science.protocol.EncodingProtocol` and
:class:`~csc.science.protocol.ClassifierProtocol`); :class:`Table1Plan` says what to run
(dataset, how many images, which dictionaries). Every step resumes: stores keep their
finished shards and training runs their last finished epoch, so calling
:func:`run_table1` again after an interruption continues where it stopped.

Layout of ``out``::

    stores/<dictionary>-<split>/     code stores (csc.pipeline.store)
    runs/<encoding>/<pruning>/seed<s>/   training runs (csc.classify.train)
    table1.md, table1.json, curves.png, plan.json
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from csc.science.protocol import ClassifierProtocol, EncodingProtocol
from csc.core.checks import check_bool, check_int

__all__ = ["Table1Plan", "run_table1", "load_split"]


@dataclass(frozen=True)
class Table1Plan:
    """What :func:`run_table1` runs.

    Attributes
    ----------
    dataset : {"fashion-mnist", "cifar10"}
    root : str or None
        Dataset folder (Fashion-MNIST: the Debian package's by default; CIFAR-10: required).
    dictionaries : tuple of str
        Shipped names or files, one encoding each.
    train_count, test_count : int or None
        First images of each split (None: the whole split).
    pixels : bool
        Also train the pixel baseline (grey images resized like the codes, same protocol).
    device : str
        Device of the encoding and of training (``"auto"``: CUDA when available).
    shard_size : int
        Images per store shard (and per encoding batch).
    eval_every : int
        Evaluate on the test split every that many epochs and after the last
        (``TrainOptions.eval_every``; 1: every epoch, like the authors).
    """

    dataset: str = "fashion-mnist"
    root: str | None = None
    dictionaries: tuple[str, ...] = ("homogeneous", "heterogeneous", "homogeneous-learned", "heterogeneous-learned")
    train_count: int | None = None
    test_count: int | None = None
    pixels: bool = True
    device: str = "auto"
    shard_size: int = 256
    eval_every: int = 1

    def __post_init__(self):
        object.__setattr__(self, "pixels", check_bool("pixels", self.pixels))
        if self.dataset not in ("fashion-mnist", "cifar10"):
            raise ValueError(f"dataset: expected 'fashion-mnist' or 'cifar10', got {self.dataset!r}")
        if self.dataset == "cifar10" and self.root is None:
            raise ValueError("root: the CIFAR-10 folder or archive is required")
        for name in ("train_count", "test_count"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 1):
                raise ValueError(f"{name}: expected a positive integer or None, got {v!r}")
        check_int("eval_every", self.eval_every, 1)


def load_split(plan: Table1Plan, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of the plan's first ``train_count``/``test_count`` images of ``split``;
    uint8, (N, H, W) for Fashion-MNIST and (N, 3, H, W) for CIFAR-10."""
    from csc.pipeline import sources

    ds = (sources.load_fashion_mnist(split, plan.root) if plan.dataset == "fashion-mnist"
          else sources.load_cifar10(plan.root, split))
    n = plan.train_count if split == "train" else plan.test_count
    n = len(ds.labels) if n is None else min(n, len(ds.labels))
    return np.asarray(ds.images[:n]), np.asarray(ds.labels[:n])


def _encode(plan: Table1Plan, enc: EncodingProtocol, dictionary: str, split: str, out: Path, progress: bool):
    from csc.pipeline.store import EncodeSettings, encode_dataset

    images, labels = load_split(plan, split)
    settings = EncodeSettings(dictionary=dictionary, lmbda=enc.lmbda, max_iter=enc.max_iter,
                              rel_stop_tol=enc.rel_stop_tol, size=images.shape[-1] * enc.upscale,
                              preprocess=enc.preprocess, l1_weight=enc.l1_weight, relax=enc.relax,
                              rsdl_ratio=enc.rsdl_ratio, shard_size=plan.shard_size)
    source = {"dataset": plan.dataset, "split": split, "root": plan.root, "start": 0, "count": int(len(labels))}
    return encode_dataset(images, labels, out, settings, source=source, device=plan.device, progress=progress)


def _pixel_sets(plan: Table1Plan, cls: ClassifierProtocol, seed: int):
    from csc.pipeline.datasets import PixelDataset
    from csc.pipeline.preprocess import to_grayscale

    sets = []
    for split in ("train", "test"):
        images, labels = load_split(plan, split)
        if images.ndim == 4:  # CIFAR-10: the grey images the codes are made from
            import torch

            images = to_grayscale(torch.from_numpy(images).float() / 255.0).numpy()
        sets.append(PixelDataset(images, labels, size=cls.size, hflip=cls.hflip and split == "train",
                                 normalise=cls.normalise, seed=seed))
    return sets


def _code_sets(stores: dict[str, Path], cls: ClassifierProtocol, prune, seed: int):
    from csc.pipeline.datasets import SparseCodeDataset

    return (SparseCodeDataset(stores["train"], prune=prune, size=cls.size, hflip=cls.hflip,
                              normalise=cls.normalise, seed=seed),
            SparseCodeDataset(stores["test"], prune=prune, size=cls.size, normalise=cls.normalise))


def _train_options(plan: Table1Plan, cls: ClassifierProtocol, seed: int):
    from csc.classify.train import TrainOptions
    from csc.runtime.device import resolve_device

    return TrainOptions(epochs=cls.epochs, batch_size=cls.batch_size, lr=cls.lr, betas=tuple(cls.betas),
                        weight_decay=cls.weight_decay, seed=seed, stem=cls.stem, dropout=cls.dropout,
                        schedule=cls.schedule, device=str(resolve_device(plan.device)),
                        eval_every=plan.eval_every)


def _runs(plan: Table1Plan, cls: ClassifierProtocol, stores: dict[str, dict[str, Path]]):
    """(run folder, run description, datasets factory) of every training run."""
    for seed in range(cls.seeds):
        if plan.pixels:
            yield Path("pixels", "none", f"seed{seed}"), {"encoding": "pixels", "pruning": None,
                                                         "relative": None, "seed": seed}, \
                lambda s=seed: _pixel_sets(plan, cls, s)
        for name, st in stores.items():
            for prune in cls.prune:
                label = Path(name).stem if Path(name).suffix == ".npz" else name
                yield Path(label, "none" if prune is None else f"{prune:g}", f"seed{seed}"), \
                    {"encoding": label, "pruning": prune, "relative": True, "seed": seed}, \
                    lambda s=seed, p=prune, st=st: _code_sets(st, cls, p, s)


def run_table1(plan: Table1Plan, out: str | Path, encoding: EncodingProtocol = EncodingProtocol(),
               classifier: ClassifierProtocol = ClassifierProtocol(), *, progress: bool = True,
               log: Callable[[str], None] = print) -> dict[str, Any]:
    """Encode, train and aggregate (module docstring); returns the aggregated table."""
    progress = check_bool("progress", progress)
    from csc.runtime.outputs import prepare_dir, remove_if_empty

    _check_inputs(plan, classifier)  # before anything is written: no late errors, no leftovers
    created = prepare_dir(out, "out")  # before Path(): an empty name is refused, not taken as "."
    out = Path(out)
    try:
        return _run_table1(plan, out, encoding, classifier, progress, log)
    except BaseException:
        if not any(out.glob("stores/*/shard-*.npz")):  # nothing finished: leave nothing behind
            (out / "plan.json").unlink(missing_ok=True)
            for leftover in ([out / "runs"], [out / "stores"], created):
                remove_if_empty(leftover)
        raise


def _check_inputs(plan: Table1Plan, classifier: ClassifierProtocol) -> None:
    """Every input that would otherwise fail late: the training options, the dictionaries and
    the dataset's splits."""
    from csc.dictionary.io import load_dictionary

    _train_options(plan, classifier, 0)
    for name in plan.dictionaries:
        load_dictionary(name)
    for split in ("train", "test"):
        load_split(plan, split)


def _run_table1(plan: Table1Plan, out: Path, encoding: EncodingProtocol, classifier: ClassifierProtocol,
                progress: bool, log: Callable[[str], None]) -> dict[str, Any]:
    from csc.classify.train import aggregate_runs, last_evaluated, plot_runs, table_markdown, train

    (out / "plan.json").write_text(json.dumps({"plan": asdict(plan), "encoding": asdict(encoding),
                                               "classifier": asdict(classifier)}, indent=2))
    stores: dict[str, dict[str, Path]] = {}
    for name in plan.dictionaries:
        label = Path(name).stem if Path(name).suffix == ".npz" else name
        stores[name] = {}
        for split in ("train", "test"):
            path = out / "stores" / f"{label}-{split}"
            store = _encode(plan, encoding, name, split, path, progress)
            stores[name][split] = path
            log(f"{label} {split}: {store.manifest['num_images']} images, "
                f"{store.manifest['nnz_per_image']:.0f} nonzeros/image")
    done = []
    for folder, run, make_sets in _runs(plan, classifier, stores):
        train_set, test_set = make_sets()
        res = train(train_set, test_set, out / "runs" / folder, _train_options(plan, classifier, run["seed"]),
                    run=run, progress=progress)
        last = last_evaluated(res["epochs"])
        log(f"{folder}: " + (f"test accuracy {last['test_acc']:.2f}% after {last['epoch']} epochs" if last else "-"))
        done.append(out / "runs" / folder)
    agg = aggregate_runs(done)
    (out / "table1.md").write_text(table_markdown(agg))
    (out / "table1.json").write_text(json.dumps(agg, indent=2, default=float))
    plot_runs(agg, out / "curves.png")
    return agg

"""PyTorch datasets for classification: sparse codes from a store, and raw pixels.

:class:`SparseCodeDataset` yields dense (K, H, W) float32 code tensors built from a
:class:`csc.pipeline.store.CodeStore`, with — in this order — pruning (absolute, or relative to
the image's largest |coefficient|, :func:`csc.science.prune.prune`), optional bilinear resize,
optional random horizontal flip and optional normalisation ``(x - mean) / std``.

:class:`PixelDataset` is the pixel baseline: the same transforms (no pruning) on the
grayscale images, yielding (1, H, W).

Random flips are reproducible and independent of worker processes and of the order in
which items are read: whether item ``i`` is flipped in epoch ``e`` is a function of
``(seed, e, i)`` only. Call :meth:`SparseCodeDataset.set_epoch` (or :meth:`PixelDataset.set_epoch`) at the start of every epoch (the training
loop in :mod:`csc.classify.train` does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from csc.core.checks import check_bool, host_array
from csc.dictionary.io import sha256_of_array
from csc.science.prune import check_threshold, prune as _prune
from csc.pipeline.store import CodeStore

__all__ = ["SparseCodeDataset", "PixelDataset"]


def _flip_decision(seed: int, epoch: int, index: int) -> bool:
    # SplitMix64-style hash of (seed, epoch, index): cheap, stateless, reproducible.
    z = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + index * 0x94D049BB133111EB + 0x632BE59BD9B4E019)
    z &= (1 << 64) - 1
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & ((1 << 64) - 1)
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & ((1 << 64) - 1)
    z ^= z >> 31
    return bool(z & 1)


class _Transforms:
    def __init__(self, size, hflip, normalise, seed):
        if size is not None and (int(size) != size or size < 1):
            raise ValueError(f"size: expected a positive integer or None, got {size!r}")
        if normalise is not None:
            mean, std = normalise
            if std <= 0:
                raise ValueError(f"normalise: std must be > 0, got {std!r}")
        self.size = None if size is None else int(size)
        self.hflip = check_bool("hflip", hflip)
        self.normalise = None if normalise is None else (float(normalise[0]), float(normalise[1]))
        self.seed = int(seed)
        self.epoch = 0

    def _transform_identity(self) -> dict:
        return {"size": self.size, "hflip": self.hflip, "normalise": self.normalise, "seed": self.seed}

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose random flips ``__getitem__`` applies."""
        self.epoch = int(epoch)

    def _apply(self, x: torch.Tensor, index: int) -> torch.Tensor:
        if self.size is not None and tuple(x.shape[-2:]) != (self.size, self.size):
            from csc.pipeline.preprocess import resize

            x = resize(x, self.size)
        if self.hflip and _flip_decision(self.seed, self.epoch, index):
            x = torch.flip(x, dims=(-1,))
        if self.normalise is not None:
            x = (x - self.normalise[0]) / self.normalise[1]
        return x.contiguous()


class SparseCodeDataset(_Transforms, Dataset):
    """Dense code tensors from a code store.

    Parameters
    ----------
    store : CodeStore or path
    prune : float or None
        Threshold c (None or 0: no pruning).
    relative : bool (default True)
        Prune ``|x| < c · max|x|`` per image (the paper's Table 1 columns c = 0.25 / 0.5);
        False prunes ``|x| < c``.
    size : int or None
        Bilinear resize of the code maps to size × size (authors' loader: 32).
    hflip : bool
        Random horizontal flip with probability 1/2 (reproducible, see module doc).
    normalise : (mean, std) or None
        Authors' code: (0.5, 0.225).
    seed : int
        Seed of the flips.
    indices : sequence of int, optional
        Use only these images of the store.

    Notes
    -----
    ``dataset[i]`` → (codes (K, H, W) float32, label int).
    """

    def __init__(self, store: CodeStore | str | Path, prune: float | None = None, relative: bool = True,
                 size: int | None = None, hflip: bool = False, normalise: tuple[float, float] | None = None,
                 seed: int = 0, indices: Sequence[int] | None = None):
        _Transforms.__init__(self, size, hflip, normalise, seed)
        self.store = store if isinstance(store, CodeStore) else CodeStore(store)
        self.relative = check_bool("relative", relative)
        if prune is not None:
            check_threshold("prune", prune, self.relative)
        self.prune = None if not prune else float(prune)
        self.indices = np.arange(len(self.store)) if indices is None else host_array(indices, np.int64)
        labels = self.store.labels
        self.labels = labels[self.indices]
        self.num_classes = max(self.store.num_classes, int(labels.max()) + 1 if labels.size else 0)
        self.in_channels = int(self.store.code_shape[0])

    def __len__(self) -> int:
        return int(self.indices.size)

    def identity(self) -> dict:
        """What the samples depend on (a training run's checkpoint records it): the store's
        digest, the images used, pruning and transforms."""
        return {"store": self.store.manifest["settings_digest"], "indices": sha256_of_array(self.indices),
                "prune": self.prune, "relative": self.relative, **self._transform_identity()}

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x, label = self.store.get(int(self.indices[i]))
        if self.prune is not None:
            x = _prune(x, self.prune, relative=self.relative)
        return self._apply(x, int(i)), label


class PixelDataset(_Transforms, Dataset):
    """Pixel baseline: grayscale images (N, H, W) (uint8 0–255 → [0, 1], or float), as (1, H, W).

    Same ``size``, ``hflip``, ``normalise`` and ``seed`` as :class:`SparseCodeDataset`.
    """

    def __init__(self, images, labels, size: int | None = None, hflip: bool = False,
                 normalise: tuple[float, float] | None = None, seed: int = 0):
        _Transforms.__init__(self, size, hflip, normalise, seed)
        x = images.detach().cpu() if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
        if x.ndim != 3:
            raise ValueError(f"images: expected (N, H, W) grayscale, got shape {tuple(x.shape)}")
        self.images = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        self.labels = host_array(labels).astype(np.int64)
        if self.labels.shape != (x.shape[0],):
            raise ValueError(f"labels: expected shape ({x.shape[0]},), got {self.labels.shape}")
        self.num_classes = int(self.labels.max()) + 1 if self.labels.size else 0
        self.in_channels = 1

    def __len__(self) -> int:
        return int(self.labels.size)

    def identity(self) -> dict:
        """What the samples depend on: a digest of the images and labels, and the transforms."""
        return {"pixels": sha256_of_array(self.images.numpy(), self.labels), **self._transform_identity()}

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self._apply(self.images[int(i)].unsqueeze(0), int(i)), int(self.labels[int(i)])

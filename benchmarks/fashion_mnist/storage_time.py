"""Storage and encoding-time figures for the code store (issue 5).

1. From the Fashion-MNIST stores written by encode.sh: bytes per image (shard files on
   disk) against dense float32, nonzeros per image, measured seconds per image, and the
   extrapolation to the full 60 000-image training set.
2. A CIFAR-10 proxy at 128×128 (CIFAR-10 itself cannot be downloaded here): random
   32×32 grayscale crops of scikit-image's bundled photographs, bilinearly upscaled to
   128×128 as in the paper, encoded with the same settings; measured per image and
   extrapolated to CIFAR-10's 50 000 training images.

Writes benchmarks/results/fashion_mnist_storage_time.json and prints a summary.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

import csc
from csc.pipeline.store import CodeStore, EncodeSettings, encode_dataset

ROOT = Path(__file__).resolve().parents[2]
STORES = ROOT / "benchmarks/fashion_mnist/stores"
OUT = ROOT / "benchmarks/results/fashion_mnist_storage_time.json"
N_FMNIST, N_CIFAR = 60_000, 50_000


def main() -> None:
    res: dict = {"threads": torch.get_num_threads(), "device": "cpu", "fashion_mnist": {}}
    for name in ("homogeneous", "heterogeneous"):
        st = CodeStore(STORES / f"{name}-train")
        m = st.manifest
        row = {k: m[k] for k in ("num_images", "bytes_per_image", "dense_float32_bytes_per_image",
                                  "compression_vs_dense_float32", "nnz_per_image", "seconds_per_image")}
        row["settings"] = m["settings"]
        row["full_train_set_bytes"] = row["bytes_per_image"] * N_FMNIST
        row["full_train_set_dense_float32_bytes"] = row["dense_float32_bytes_per_image"] * N_FMNIST
        row["full_train_set_hours"] = row["seconds_per_image"] * N_FMNIST / 3600
        res["fashion_mnist"][name] = row

    # CIFAR-10 proxy at 128×128
    from csc.pipeline.sources import builtin_photographs

    rng = np.random.default_rng(0)
    photos = builtin_photographs()
    crops = []
    for _ in range(int(os.environ.get("N_PROXY", 8))):
        img = photos.images[rng.integers(len(photos.images))]
        r, c = rng.integers(0, img.shape[0] - 32), rng.integers(0, img.shape[1] - 32)
        crops.append(img[r:r + 32, c:c + 32])
    crops = np.stack(crops).astype(np.float32)
    crops = crops / 255.0 if crops.max() > 1.5 else crops
    res["cifar10_proxy_128"] = {}
    # this experiment's coding settings, and the authors' (LCN, λ 0.01; 30 iterations here, not 250)
    for name, prep, lmbda in (("homogeneous", "highpass", 0.1), ("heterogeneous", "highpass", 0.1),
                              ("homogeneous", "lcn", 0.01), ("heterogeneous", "lcn", 0.01)):
        s = EncodeSettings(dictionary=name, lmbda=lmbda, max_iter=30, rel_stop_tol=1e-2, size=128,
                           value_dtype="float16", shard_size=len(crops), preprocess=prep)
        name = f"{name}/{prep}/lmbda{lmbda:g}"
        out = ROOT / "benchmarks/fashion_mnist/stores" / f"cifar-proxy-128-{name.replace('/', '-')}"
        t0 = time.perf_counter()
        st = encode_dataset(crops, np.zeros(len(crops), np.int64), out, s, device="cpu")
        wall = time.perf_counter() - t0
        m = st.manifest
        row = {k: m[k] for k in ("num_images", "bytes_per_image", "dense_float32_bytes_per_image",
                                  "compression_vs_dense_float32", "nnz_per_image", "seconds_per_image")}
        row["wall_seconds"] = wall
        row["cifar10_train_bytes"] = row["bytes_per_image"] * N_CIFAR
        row["cifar10_train_dense_float32_bytes"] = row["dense_float32_bytes_per_image"] * N_CIFAR
        row["cifar10_train_hours_this_cpu"] = row["seconds_per_image"] * N_CIFAR / 3600
        res["cifar10_proxy_128"][name] = row
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(res, indent=1))
    for part in ("fashion_mnist", "cifar10_proxy_128"):
        for name, r in res[part].items():
            print(f"{part:18} {name:30} {r['bytes_per_image']:9.0f} B/img vs {r['dense_float32_bytes_per_image']:9d} dense "
                  f"({r['compression_vs_dense_float32']:5.0f}x), nnz {r['nnz_per_image']:7.0f}, {r['seconds_per_image']:.3f} s/img")


if __name__ == "__main__":
    sys.exit(main())

"""Table 1's pixel baseline under the authors' classifier protocol, at a size this machine affords.

    python benchmarks/paper/table1_pixel_pilot.py [--train-count 3000] [--test-count 2000]
        [--epochs 4] [--batch-size 64] [--out out/table1_pixel_pilot]

``csc paper table1``'s pixel run alone (no encodings): ResNet-18 with the CIFAR stem,
Dropout2d 0.5, flips, Normalize(0.5, 0.225), Adam 2e-4 with weight decay 5e-2 and OneCycle,
on the first Fashion-MNIST images. The batch is smaller than the authors' 800 so that a few
thousand images still make ~50 steps per epoch (theirs: 62 on CIFAR-10's 50,000). It tells
how many images and epochs the 85% the issue asks of the pixel baseline needs, and what one
run costs; the metrics, curves and this plan go to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from csc.classify.experiment import Table1Plan, run_table1  # noqa: E402
from csc.science.protocol import ClassifierProtocol, EncodingProtocol  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-count", type=int, default=3000)
    p.add_argument("--test-count", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", default="out/table1_pixel_pilot")
    a = p.parse_args(argv)
    t = time.perf_counter()
    plan = Table1Plan(dictionaries=(), train_count=a.train_count, test_count=a.test_count, pixels=True, device="cpu")
    cls = ClassifierProtocol(epochs=a.epochs, batch_size=a.batch_size, seeds=1, prune=(None,))
    run_table1(plan, a.out, EncodingProtocol(), cls, progress=True)
    print(f"total {time.perf_counter() - t:.0f} s")


if __name__ == "__main__":
    main()

"""
Learn a small dictionary from photographs
=========================================

:class:`csc.DictLearn` (SPORCO's ``ConvBPDNDictLearn``) learns 16 kernels of 8×8 from random
64×64 crops of four built-in photographs, high-passed as for coding, starting from random
kernels: 100 outer iterations, each one CBPDN step and one dictionary step ('cns'), λ = 0.1.
The functional falls and the kernels turn into oriented edges and blobs (about 15 s).

Output of the full version on a 2-core CPU::

    functional: 58.71 → 17.32 after 100 iterations
    learned kernels: (16, 8, 8), norms 1.000–1.000

.. image:: /_static/gallery/dictionary_learning.png
   :alt: the random initial kernels, the learned kernels and the functional per iteration
"""

# sphinx_gallery_thumbnail_path = '_static/gallery/dictionary_learning.png'
import os

import matplotlib.pyplot as plt
import torch

import csc
from csc.learn.dictlearn import random_crops
from csc.pipeline.preprocess import tikhonov_filter
from csc.pipeline.sources import builtin_photographs

QUICK = os.environ.get("CSC_EXAMPLE_QUICK", "0") == "1"
generator = torch.Generator().manual_seed(0)

photos = builtin_photographs(["brick", "chelsea", "coffee", "grass"]).images  # gray, [0, 1]
crops = random_crops(photos, 32 if QUICK else 64, generator=generator).float()  # (4, 64, 64)
_, highpass = tikhonov_filter(crops, 5.0)  # learn on the high-pass part
D0 = torch.randn(16, 8, 8, generator=generator)  # random start (the learner normalises it)
opts = csc.DictLearnOptions(max_iter=5 if QUICK else 100, dmethod="cns", ccmod=csc.DictUpdateOptions(rho=10.0))
result = csc.DictLearn(D0, 0.1, opts).solve(highpass)
objective = result.stats.objective
norms = result.dictionary.flatten(1).norm(dim=1)
print(f"functional: {float(objective[0]):.2f} → {float(objective[-1]):.2f} after {result.iterations} iterations")
print(f"learned kernels: {tuple(result.dictionary.shape)}, norms {float(norms.min()):.3f}–{float(norms.max()):.3f}")

# %%
# The initial and learned kernels (:func:`csc.plot_dictionary`) and the functional.
fig, axes = plt.subplots(1, 3, figsize=(12, 4.4))
csc.plot_dictionary(axes[0], D0 / D0.flatten(1).norm(dim=1)[:, None, None])
axes[0].set_title("initial (random)")
csc.plot_dictionary(axes[1], result.dictionary)
axes[1].set_title(f"learned, {result.iterations} iterations")
axes[2].plot(objective)
axes[2].set_xlabel("iteration")
axes[2].set_ylabel("functional")
fig.tight_layout(pad=1.5)
if not QUICK and __name__ == "__main__":
    fig.savefig(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "_static", "gallery",
                             "dictionary_learning.png"), dpi=80)

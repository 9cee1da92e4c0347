"""
Code a photograph with the shipped log-Gabor dictionary
=======================================================

The README's example: the central 128×128 crop of scikit-image's ``camera``, split by
SPORCO's Tikhonov filter (λ = 5) into a low-pass part and the high-pass part that is coded,
:class:`csc.ConvBPDN` with the 144 shipped heterogeneous log-Gabor kernels at λ = 0.05, then
the reconstruction with the low-pass added back.

Output of the full version on a 2-core CPU (about 10 s after numba's first compilation)::

    codes (1, 144, 128, 128), 71 iterations (numba)
    nonzero coefficients: 0.16%, sparseness 0.9984
    PSNR 24.48 dB

.. image:: /_static/gallery/quickstart.png
   :alt: the photograph, its high-pass part, the reconstruction and the sparse code map
"""

# sphinx_gallery_thumbnail_path = '_static/gallery/quickstart.png'
import os

import matplotlib.pyplot as plt
import torch

import csc
from csc.pipeline.preprocess import center_crop, tikhonov_filter
from csc.pipeline.sources import builtin_photographs

QUICK = os.environ.get("CSC_EXAMPLE_QUICK", "0") == "1"
size = 48 if QUICK else 128

photo = center_crop(builtin_photographs(["camera"]).images[0], size).float()  # (128, 128) in [0, 1]
lowpass, highpass = tikhonov_filter(photo, 5.0)  # code the high-pass part, as SPORCO's examples
D = csc.load_dictionary("heterogeneous")  # (144, 12, 12) shipped log-Gabor kernels
opts = csc.CBPDNOptions(max_iter=20 if QUICK else 500, rel_stop_tol=5e-3)  # device="cuda" for a GPU
result = csc.ConvBPDN(D, lmbda=0.05, options=opts).solve(highpass[None])
recon = result.reconstruct()[0] + lowpass  # add the low-pass back
print(f"codes {tuple(result.codes.shape)}, {result.iterations[0]} iterations ({result.backend})")
print(f"nonzero coefficients: {(result.codes != 0).float().mean().item():.2%}, "
      f"sparseness {csc.sparseness(result.codes).item():.4f}")
print(f"PSNR {csc.psnr(photo, recon).item():.2f} dB")

# %%
# The figure: the photograph, what is coded, the reconstruction, and where the nonzero
# coefficients are (summed over the 144 kernels).
fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
panels = [(photo, "photograph"), (highpass, "high-pass (coded)"), (recon, "reconstruction"),
          (result.codes[0].abs().sum(0), "Σ_k |x_k|")]
for ax, (img, title) in zip(axes, panels):
    ax.imshow(img.cpu(), cmap="gray")
    ax.set_title(title)
    ax.axis("off")
fig.tight_layout()
if not QUICK and __name__ == "__main__":
    fig.savefig(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "_static", "gallery",
                             "quickstart.png"), dpi=80)

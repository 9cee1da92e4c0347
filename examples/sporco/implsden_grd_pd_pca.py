"""SPORCO's ``csc/implsden_grd_pd_pca.py`` on csc: removing salt-and-pepper noise from a
hyperspectral image with a product dictionary, joint sparsity and a gradient penalty.

As ``implsden_grd_pd_dct`` (its data, its stand-in for the quick mode, noise, kernels and
weights) with B the first 20 principal components of the noise-free spectra
(``sporco.linalg.pca(S, centre=False)``, as the script: a numpy SVD, not a learner) and
``csc.ConvProdDictL1L1GrdJoint`` (SPORCO's ``admm.pdcsc.ConvProdDictL1L1GrdJoint``: the ℓ2,1 norm
over the 20 pseudo-channels, ``L21Weight`` 0 on the impulse kernel), λ 4.2, μ 9.5.

Expected against SPORCO (float64, the same iterates): codes 1e-10, objective 1e-12.
"""

import csc
from examples.sporco import _common as C
from examples.sporco.implsden_grd_pd_dct import solve

SCRIPT = "implsden_grd_pd_pca"
EXPECT = {"codes": 1e-10, "objective": 1e-12, "psnr": 1e-9}
NOTE = "ConvProdDictL1L1GrdJoint with the script's PCA basis B: the same iterates"


def pca_basis(img):
    """The script's B: the first 20 columns of ``sporco.linalg.pca`` of the spectra, not centred."""
    from sporco.linalg import pca

    pcaB, _, _ = pca(img.reshape((-1, img.shape[-1])).T, centre=False)
    return pcaB[:, 0:20]


def run(quick=False, compare=False):
    return solve(SCRIPT, quick, compare, pca_basis, csc.ConvProdDictL1L1GrdJoint, "ConvProdDictL1L1GrdJoint",
                 4.2, 9.5, "L21Weight")


if __name__ == "__main__":
    C.report(C.main(run, SCRIPT))

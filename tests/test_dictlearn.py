"""Batch dictionary learner: SPORCO parity, constraints, checkpoints/resume, errors, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from csc import constraints
from csc.dictlearn import (
    KILL_ENV,
    SPORCO_DICTLEARN_STATS_NAMES,
    DictLearn,
    DictLearnOptions,
    DictUpdateOptions,
    load_checkpoint,
    random_crops,
)

from .conftest import central_crop, highpass, needs_sporco, sporco_image

LMBDA = 0.1
_CBPDN = {
    "rho": 50 * LMBDA + 1.0, "MaxMainIter": 1, "RelaxParam": 1.8, "AbsStopTol": 0.0, "RelStopTol": 1e-3,
    "AutoRho": {"Enabled": True, "Period": 10, "Scaling": 2.0, "RsdlRatio": 10.0, "RsdlTarget": 1.0,
                "AutoScaling": False, "StdResiduals": False},
    "L1Weight": 1.0, "NonNegCoef": False, "NoBndryCross": False, "AuxVarObj": False, "HighMemSolve": False,
}
_CCMOD = {
    "pgm": {"L": 10.0, "MaxMainIter": 1, "ZeroMean": False, "RelStopTol": 1e-3},
    "cns": {"rho": 5.0, "MaxMainIter": 1, "RelaxParam": 1.8, "ZeroMean": False, "AbsStopTol": 0.0,
            "RelStopTol": 1e-3, "AutoRho": {"Enabled": False, "Period": 10, "Scaling": 2.0, "RsdlRatio": 10.0,
                                            "RsdlTarget": 1.0, "AutoScaling": False, "StdResiduals": False}},
}


def _training_images(n=4, size=64):
    names = ["barbara.png", "kodim23.png", "monarch.png", "sail.png", "tulips.png"][:n]
    return np.stack([highpass(central_crop(sporco_image(nm), size, size)) for nm in names], -1)  # (H, W, B)


def _run_both(S, D0, sopt, dmethod):
    from sporco.dictlrn import cbpdndl

    sp = cbpdndl.ConvBPDNDictLearn(D0, S, LMBDA, cbpdndl.ConvBPDNDictLearn.Options(sopt, dmethod=dmethod),
                                   dmethod=dmethod)
    Ds = sp.solve().squeeze()
    opts = DictLearnOptions.from_sporco(sopt, dmethod=dmethod, dtype=torch.float64)
    res = DictLearn(torch.from_numpy(D0.transpose(2, 0, 1).copy()), LMBDA, opts).solve(
        torch.from_numpy(S.transpose(2, 0, 1).copy()))
    return Ds, sp.getitstat(), res


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


@needs_sporco
@pytest.mark.parametrize("dmethod", ["pgm", "cns"])
def test_parity_with_sporco(dmethod):
    """Issue 3: 4 images 64×64, K = 16 kernels 8×8, λ = 0.1, 30 outer iterations, every option given."""
    S = _training_images()
    D0 = np.random.RandomState(12345).randn(8, 8, 16)
    sopt = {"MaxMainIter": 30, "AccurateDFid": False, "Verbose": False, "CBPDN": _CBPDN, "CCMOD": _CCMOD[dmethod]}
    Ds, its, res = _run_both(S, D0, sopt, dmethod)
    Dc = res.dictionary.numpy().transpose(1, 2, 0)
    assert res.dictionary.shape == (16, 8, 8)
    assert np.linalg.norm(Dc - Ds) / np.linalg.norm(Ds) < 1e-8
    assert len(res.stats) == 30
    for name, sname in SPORCO_DICTLEARN_STATS_NAMES.items():
        if name in ("time", "constraint", "iteration") or not hasattr(its, sname):
            continue
        assert _rel(getattr(res.stats, name), getattr(its, sname)) < 1e-8, name
    assert np.max(res.stats.constraint) < 1e-12 and np.max(its.Cnstr) < 1e-12
    # the objective decreases overall
    assert res.stats.objective[-1] < 0.8 * res.stats.objective[0]


@needs_sporco
@pytest.mark.parametrize("dmethod", ["pgm", "cns"])
def test_parity_sporco_defaults_accurate_dfid_zero_mean(dmethod):
    """SPORCO's *effective* defaults (ρ = 1, L = 1), AccurateDFid and ZeroMean."""
    S = _training_images(2, 32)
    D0 = np.random.RandomState(3).randn(6, 6, 8)
    sopt = {"MaxMainIter": 6, "AccurateDFid": True, "CCMOD": {"ZeroMean": True}}
    Ds, its, res = _run_both(S, D0, sopt, dmethod)
    Dc = res.dictionary.numpy().transpose(1, 2, 0)
    assert np.linalg.norm(Dc - Ds) / np.linalg.norm(Ds) < 1e-8
    for name in ("objective", "data_fidelity", "l1", "x_rho"):
        assert _rel(getattr(res.stats, name), getattr(its, SPORCO_DICTLEARN_STATS_NAMES[name])) < 1e-8, name
    assert float(res.dictionary.sum((1, 2)).abs().max()) < 1e-12
    opts = DictLearnOptions.from_sporco(sopt, dmethod=dmethod)
    assert opts.ccmod.L is None and opts.ccmod.rho is None and opts.accurate_dfid


def test_constraints_projection():
    g = torch.Generator().manual_seed(0)
    G = torch.randn(5, 16, 16, generator=g, dtype=torch.float64)
    P = constraints.project_kernels(G, (4, 3))
    assert P.shape == (5, 4, 3)
    assert torch.allclose(P.square().sum((1, 2)), torch.ones(5, dtype=torch.float64))
    Pz = constraints.project_kernels(G, (4, 3), zero_mean=True)
    assert Pz.sum((1, 2)).abs().max() < 1e-12
    Pn = constraints.project_kernels(G, (4, 3), nonneg=True)
    assert (Pn >= 0).all() and torch.allclose(Pn.square().sum((1, 2)), torch.ones(5, dtype=torch.float64))
    Z = constraints.project_kernels(torch.zeros(2, 4, 4), (2, 2))
    assert (Z == 0).all()  # zero kernels stay zero
    with pytest.raises(ValueError, match="zero_mean, nonneg"):
        constraints.KernelConstraint((3, 3), zero_mean=True, nonneg=True)
    pad = constraints.zero_pad_kernels(P, (8, 8))
    assert pad.shape == (5, 8, 8) and torch.equal(pad[:, :4, :3], P) and pad[:, 4:].abs().sum() == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_float32_float64_nonneg_kernels(dtype):
    g = torch.Generator().manual_seed(1)
    S = torch.randn(3, 24, 24, generator=g).to(dtype)
    D0 = torch.randn(6, 5, 5, generator=g).to(dtype)
    opts = DictLearnOptions(max_iter=15, dmethod="cns", ccmod=DictUpdateOptions(nonneg=True))
    res = DictLearn(D0, 0.1, opts).solve(S)
    assert res.dictionary.dtype == dtype and res.codes.dtype == dtype
    assert (res.dictionary >= 0).all()
    assert torch.allclose(res.dictionary.square().sum((1, 2)), torch.ones(6, dtype=dtype), atol=1e-5)
    assert res.stats.objective[-1] < res.stats.objective[0]
    assert res.reconstruct().shape == (3, 24, 24)


def test_bad_input_errors():
    D = torch.randn(4, 5, 5, dtype=torch.float64)
    S = torch.randn(2, 16, 16, dtype=torch.float64)
    with pytest.raises(ValueError, match="lmbda"):
        DictLearn(D, -0.1)
    with pytest.raises(ValueError, match="images"):
        DictLearn(D, 0.1).solve(torch.randn(2, 4, 16, dtype=torch.float64))  # kernel larger than image
    bad = S.clone()
    bad[0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="images: expected finite"):
        DictLearn(D, 0.1).solve(bad)
    with pytest.raises(ValueError, match="dictionary"):
        DictLearn(torch.randn(4, 5, dtype=torch.float64), 0.1)
    with pytest.raises(ValueError, match="images"):
        DictLearn(D, 0.1).solve(torch.randn(2, 2, 16, 16, dtype=torch.float64))
    with pytest.raises(ValueError, match="dmethod"):
        DictLearnOptions(dmethod="ism")
    with pytest.raises(ValueError, match="CCMOD.Foo"):
        DictLearnOptions.from_sporco({"CCMOD": {"Foo": 1}})
    with pytest.raises(ValueError, match="Bar"):
        DictLearnOptions.from_sporco({"Bar": 1})
    with pytest.raises(ValueError, match="CCMOD.L"):
        DictLearnOptions.from_sporco({"CCMOD": {"L": 2.0}}, dmethod="cns")
    with pytest.raises(ValueError, match="size"):
        random_crops([torch.zeros(8, 8)], 9)


def test_checkpoint_resume_in_process(tmp_path):
    g = torch.Generator().manual_seed(2)
    S = torch.randn(2, 20, 20, generator=g, dtype=torch.float64)
    D0 = torch.randn(4, 4, 4, generator=g, dtype=torch.float64)
    for dmethod in ("pgm", "cns"):
        full = DictLearn(D0, 0.1, DictLearnOptions(max_iter=12, dmethod=dmethod)).solve(S)
        ck = tmp_path / f"{dmethod}.ckpt.npz"
        DictLearn(D0, 0.1, DictLearnOptions(max_iter=5, dmethod=dmethod)).solve(S, checkpoint=ck, checkpoint_every=5)
        arrays, meta = load_checkpoint(ck)
        assert meta["step"] == 5 and "metadata" not in arrays
        res = DictLearn(D0, 0.1, DictLearnOptions(max_iter=12, dmethod=dmethod)).solve(
            S, checkpoint=ck, checkpoint_every=5, resume=True)
        assert torch.equal(res.dictionary, full.dictionary)
        np.testing.assert_array_equal(res.stats.objective, full.stats.objective)
        with pytest.raises(ValueError, match="lmbda"):
            DictLearn(D0, 0.2, DictLearnOptions(max_iter=12, dmethod=dmethod)).solve(S, checkpoint=ck, resume=True)


def _write_pngs(folder: Path, n=3, size=40):
    from matplotlib import image as mpimg

    folder.mkdir()
    rng = np.random.RandomState(0)
    for i in range(n):
        img = rng.rand(size, size)
        img = (img + np.roll(img, 1, 0) + np.roll(img, 1, 1)) / 3
        mpimg.imsave(folder / f"im{i}.png", img, cmap="gray", vmin=0, vmax=1)


def _learn_args(folder, out, method, extra=()):
    return ["learn", "--images", str(folder), "--lmbda", "0.1", "--steps", "8", "--out", str(out),
            "--method", method, "--crop", "24", "--kernels", "6", "--kernel-size", "5", "--dtype", "float64",
            "--device", "cpu", "--checkpoint-every", "3", "--seed", "7", "--quiet", *extra]


def kill_and_resume(tmp_path, method, extra=()):
    """Run ``csc learn`` in a subprocess killed (SIGKILL) after its first checkpoint, resume
    it, and compare with an uninterrupted run."""
    from csc.cli import main
    from csc.io import load_dictionary

    folder = tmp_path / "imgs"
    _write_pngs(folder)
    out = tmp_path / "killed.npz"
    env = dict(os.environ, **{KILL_ENV: "1"})
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-m", "csc", *_learn_args(folder, out, method, extra)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    ckpt = tmp_path / "killed.ckpt.npz"
    _, meta = load_checkpoint(ckpt)
    assert meta["step"] == 3 and not out.exists()
    assert main(_learn_args(folder, out, method, (*extra, "--resume"))) == 0
    ref = tmp_path / "ref.npz"
    assert main(_learn_args(folder, ref, method, extra)) == 0
    assert torch.equal(load_dictionary(out), load_dictionary(ref))
    stats = json.loads((tmp_path / "killed.stats.json").read_text())
    assert stats["iteration"] == list(range(8))
    assert (tmp_path / "killed.objective.png").stat().st_size > 0
    return out


def test_cli_learn_killed_and_resumed(tmp_path):
    from csc.io import dictionary_metadata

    out = kill_and_resume(tmp_path, "batch", ("--dmethod", "cns"))
    meta = dictionary_metadata(out)
    assert meta["made_by"] == "csc learn" and meta["method"] == "batch" and meta["dmethod"] == "cns"
    assert meta["options"]["ccmod"]["relax"] == 1.8

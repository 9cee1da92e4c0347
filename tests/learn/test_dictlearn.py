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

from csc.learn import constraints
from csc.learn.dictlearn import (
    SPORCO_DICTLEARN_STATS_NAMES,
    DictLearn,
    DictLearnOptions,
    DictUpdateOptions,
    load_checkpoint,
    random_crops,
)

from ..backends_params import CPU_BACKENDS, needs_numba
from ..conftest import central_crop, highpass, needs_sporco, sporco_image


#: tests that choose the back ends themselves (not run once per back end)
_EXPLICIT_BACKEND = {"test_fused_matches_torch_loop", "test_fused_pgm_resume_bit_identical", "test_fused_independent_of_thread_count_and_float32",
                     "test_resume_across_back_ends", "test_backend_errors"}


def pytest_generate_tests(metafunc):
    if metafunc.function.__name__ not in _EXPLICIT_BACKEND:
        metafunc.parametrize("backend", CPU_BACKENDS, indirect=True)


@pytest.fixture(autouse=True)
def backend(request, monkeypatch):
    """Every test (but those of ``_EXPLICIT_BACKEND``) runs on each CPU back end: the
    torch loop and the fused numba kernels (``backend="auto"`` follows
    ``CSC_CBPDN_BACKEND``; subprocesses inherit it)."""
    param = getattr(request, "param", None)
    if param is not None:
        monkeypatch.setenv("CSC_CBPDN_BACKEND", param)
    return param

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
        DictLearnOptions(dmethod="cg")  # SPORCO's conjugate-gradient step is not offered
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


#: ``csc`` with the learners' ``on_checkpoint`` hook set to SIGKILL the process after the
#: first checkpoint (the test drives the hook; the library has no test switch)
_KILLED_CLI = """
import functools, os, signal, sys
from csc.learn.dictlearn import DictLearn
from csc.learn.onlinecdl import OnlineDictLearn
kill = lambda step: os.kill(os.getpid(), signal.SIGKILL)
DictLearn.solve = functools.partialmethod(DictLearn.solve, on_checkpoint=kill)
OnlineDictLearn.fit = functools.partialmethod(OnlineDictLearn.fit, on_checkpoint=kill)
from csc.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def kill_and_resume(tmp_path, method, extra=()):
    """Run ``csc learn`` in a subprocess killed (SIGKILL) after its first checkpoint, resume
    it, and compare with an uninterrupted run."""
    from csc.cli.main import main
    from csc.dictionary.io import load_dictionary

    folder = tmp_path / "imgs"
    _write_pngs(folder)
    out = tmp_path / "killed.npz"
    env = dict(os.environ)
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", _KILLED_CLI, *_learn_args(folder, out, method, extra)],
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
    from csc.dictionary.io import dictionary_metadata

    out = kill_and_resume(tmp_path, "batch", ("--dmethod", "cns"))
    meta = dictionary_metadata(out)
    assert meta["made_by"] == "csc learn" and meta["method"] == "batch" and meta["dmethod"] == "cns"
    assert meta["options"]["ccmod"]["relax"] == 1.8


# ------------------------------------------------------------------ fused back end
def _small_problem(seed=0, n=3, H=30, W=34, K=6, k=5):
    g = torch.Generator().manual_seed(seed)
    S = torch.randn(n, H, W, generator=g, dtype=torch.float64)
    S = torch.nn.functional.avg_pool2d(S.unsqueeze(1), 3, 1, 1).squeeze(1)
    return S, torch.randn(K, k, k, generator=g, dtype=torch.float64)


_FUSED_CASES = {
    "pgm": ("pgm", {}),
    "cns": ("cns", {}),
    "pgm-zero-mean-accurate": ("pgm", dict(accurate_dfid=True, ccmod=DictUpdateOptions(zero_mean=True, L=5.0))),
    "cns-auto-rho-2-iters": ("cns", dict(ccmod=DictUpdateOptions(auto_rho=True, rho_period=3, rho=3.0,
                                                                 max_iter=2))),
    "cns-no-relax-nonneg": ("cns", dict(ccmod=DictUpdateOptions(relax=1.0, nonneg=True))),
    "pgm-weights-on-y-constraints": ("pgm", dict(cbpdn_changes=dict(
        objective_on_y=True, l1_weight=torch.linspace(0.5, 1.5, 6, dtype=torch.float64), max_iter=2,
        nonneg=True, no_boundary_cross=True))),
    "cns-scalar-weight-no-relax": ("cns", dict(cbpdn_changes=dict(l1_weight=2.0, relax=1.0, rho_period=2))),
    # constraints without objective_on_y: the sparse step takes the nonzeros kernel's fallback
    "pgm-constraints": ("pgm", dict(cbpdn_changes=dict(nonneg=True, no_boundary_cross=True))),
}


def _learn(S, D0, dmethod, backend, max_iter=25, dtype=torch.float64, cbpdn_changes=None, **kw):
    from csc.learn.dictlearn import DICTLEARN_CBPDN_DEFAULTS

    cb = DICTLEARN_CBPDN_DEFAULTS.replace(backend=backend, **(cbpdn_changes or {}))
    opts = DictLearnOptions(max_iter=max_iter, dmethod=dmethod, cbpdn=cb, dtype=dtype, **kw)
    return DictLearn(D0, 0.1, opts).solve(S)


@needs_numba
@pytest.mark.parametrize("case,sparse", [(c, sp) for c in _FUSED_CASES
                                         for sp in (("dense", "sparse") if c.startswith("pgm") else ("dft",))])
def test_fused_matches_torch_loop(case, sparse, monkeypatch):
    """The two back ends agree to rounding on every option path of the learner; the
    fused 'pgm' step with rfft2 of the codes and with their nonzeros (spatial)."""
    import csc.learn.coding

    dmethod, kw = _FUSED_CASES[case]
    monkeypatch.setattr(csc.learn.coding, "SPARSE_RATIO", float("inf") if sparse == "sparse" else 0.0)
    S, D0 = _small_problem()
    a = _learn(S, D0, dmethod, "torch", **kw)
    calls = []
    residual = csc.learn.coding.JointCBPDN.residual
    monkeypatch.setattr(csc.learn.coding.JointCBPDN, "residual",
                        lambda self, *args: calls.append(1) or residual(self, *args))
    b = _learn(S, D0, dmethod, "numba", **kw)
    # the sparse parametrisation really takes the spatial path, except where the objective
    # on y leaves rfft2(y) at hand (then the step uses it)
    on_y = kw.get("cbpdn_changes", {}).get("objective_on_y", False)
    assert bool(calls) == (sparse == "sparse" and not on_y)
    assert float((a.dictionary - b.dictionary).norm() / a.dictionary.norm()) < 1e-10
    assert float((a.codes - b.codes).norm() / a.codes.norm()) < 1e-10
    for name in ("objective", "data_fidelity", "l1", "x_primal_residual", "x_dual_residual", "x_rho",
                 "d_primal_residual", "d_dual_residual", "d_rho", "d_residual"):
        ours, ref = getattr(b.stats, name), getattr(a.stats, name)
        if np.all(np.isnan(ref)):
            assert np.all(np.isnan(ours)), name
        else:
            np.testing.assert_allclose(ours, ref, rtol=1e-10, err_msg=name)


@needs_numba
@pytest.mark.parametrize("dmethod", ["pgm", "cns"])
def test_fused_independent_of_thread_count_and_float32(dmethod):
    S, D0 = _small_problem(seed=4)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = _learn(S, D0, dmethod, "numba", max_iter=12)
        torch.set_num_threads(2)
        b = _learn(S, D0, dmethod, "numba", max_iter=12)
    finally:
        torch.set_num_threads(old)
    assert torch.equal(a.dictionary, b.dictionary) and torch.equal(a.codes, b.codes)
    np.testing.assert_array_equal(a.stats.objective, b.stats.objective)
    c = _learn(S.float(), D0.float(), dmethod, "numba", max_iter=12, dtype=torch.float32)
    assert c.dictionary.dtype == torch.float32 and c.codes.dtype == torch.float32
    # float32 rounding: no worse than the torch loop's own float32 run (pgm ~1e-4, cns ~1e-6)
    t = _learn(S.float(), D0.float(), dmethod, "torch", max_iter=12, dtype=torch.float32)
    err = float((c.dictionary.double() - a.dictionary).norm() / a.dictionary.norm())
    err_torch = float((t.dictionary.double() - a.dictionary).norm() / a.dictionary.norm())
    assert err <= 3 * err_torch + 1e-12, (err, err_torch)


@needs_numba
@pytest.mark.parametrize("ratio", [0.0, float("inf")])
def test_fused_pgm_resume_bit_identical(tmp_path, monkeypatch, ratio):
    """Resuming the fused 'pgm' step (state: D, Ŷ and the spatial Y of the sparse step)
    repeats the uninterrupted run bit for bit, on the dense and on the sparse path."""
    import csc.learn.dictlearn

    monkeypatch.setattr(csc.learn.coding, "SPARSE_RATIO", ratio)
    monkeypatch.setenv("CSC_CBPDN_BACKEND", "numba")
    S, D0 = _small_problem(seed=6)
    opts = DictLearnOptions(max_iter=9, dmethod="pgm", accurate_dfid=True)
    full = DictLearn(D0, 0.1, opts).solve(S)
    ck = tmp_path / "pgm.ckpt.npz"
    DictLearn(D0, 0.1, opts.replace(max_iter=4)).solve(S, checkpoint=ck, checkpoint_every=4)
    res = DictLearn(D0, 0.1, opts).solve(S, checkpoint=ck, checkpoint_every=4, resume=True)
    assert torch.equal(res.dictionary, full.dictionary) and torch.equal(res.codes, full.codes)
    np.testing.assert_array_equal(res.stats.objective, full.stats.objective)
    np.testing.assert_array_equal(res.stats.d_residual, full.stats.d_residual)


@needs_numba
@pytest.mark.parametrize("dmethod", ["pgm", "cns"])
def test_resume_across_back_ends(tmp_path, monkeypatch, dmethod):
    """A checkpoint of one back end resumes on the other (``backend="auto"``, switched by
    ``CSC_CBPDN_BACKEND``; the 'cns' state is U on one and its DFT on the other)."""
    S, D0 = _small_problem(seed=5)
    full = DictLearn(D0, 0.1, DictLearnOptions(max_iter=10, dmethod=dmethod)).solve(S)
    for first, second in (("torch", "numba"), ("numba", "torch")):
        ck = tmp_path / f"{dmethod}-{first}.ckpt.npz"
        monkeypatch.setenv("CSC_CBPDN_BACKEND", first)
        DictLearn(D0, 0.1, DictLearnOptions(max_iter=5, dmethod=dmethod)).solve(S, checkpoint=ck, checkpoint_every=5)
        monkeypatch.setenv("CSC_CBPDN_BACKEND", second)
        res = DictLearn(D0, 0.1, DictLearnOptions(max_iter=10, dmethod=dmethod)).solve(
            S, checkpoint=ck, checkpoint_every=5, resume=True)
        assert len(res.stats) == 10
        assert float((res.dictionary - full.dictionary).norm() / full.dictionary.norm()) < 1e-10
        np.testing.assert_allclose(res.stats.objective, full.stats.objective, rtol=1e-10)


def test_backend_errors(monkeypatch):
    S, D0 = _small_problem(n=1)
    monkeypatch.setenv("CSC_CBPDN_BACKEND", "gpu")
    with pytest.raises(ValueError, match="CSC_CBPDN_BACKEND"):
        DictLearn(D0, 0.1, DictLearnOptions(max_iter=1)).solve(S)

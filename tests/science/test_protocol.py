"""The authors' protocols (csc.science.protocol) and ``csc paper``: the online protocol is
SPORCO's online learner with the authors' option dict; the CLI learns resumably; Table 1
runs end to end on a small Fashion-MNIST in the official format."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from csc.cli.main import main
from csc.dictionary.io import load_dictionary, save_dictionary
from csc.learn.onlinecdl import ImageSampler, OnlineDictLearn
from csc.science.protocol import OnlineLearningProtocol, _training_signals

from ..conftest import needs_sporco
from ..pipeline.test_data import write_fmnist


def _authors_sporco_options(p: OnlineLearningProtocol) -> dict:
    """The option dict of the authors' ``cbpdn_learning.learn`` call (``learn_from_img``)."""
    return {"Verbose": False, "eta_a": p.eta_a, "eta_b": p.eta_b, "DataType": np.float64,
            "CBPDN": {"rho": p.rho, "AutoRho": {"Enabled": False, "Period": 1, "Scaling": 1, "RsdlRatio": 1.05},
                      "RelaxParam": p.relax, "RelStopTol": p.rel_stop_tol, "MaxMainIter": p.max_iter,
                      "FastSolve": False, "DataType": np.float64, "AuxVarObj": False}}


@needs_sporco
def test_online_protocol_is_sporcos_learner_with_the_authors_options():
    from sporco.dictlrn import onlinecdl

    p = dataclasses.replace(OnlineLearningProtocol(), steps=3, crop=24, max_iter=40, images=("camera", "coins"))
    D0 = np.random.RandomState(3).randn(8, 8, 8)
    sampler = ImageSampler(_training_signals(p, torch.float64), crop=p.crop,
                           generator=torch.Generator().manual_seed(p.seed))
    sp = onlinecdl.OnlineConvBPDNDictLearn(D0, p.lmbda, onlinecdl.OnlineConvBPDNDictLearn.Options(
        _authors_sporco_options(p)), dimK=1)
    learner = OnlineDictLearn(torch.from_numpy(D0.transpose(2, 0, 1).copy()), p.lmbda,
                              p.learner_options(torch.float64))
    for i in range(p.steps):
        S = sampler.sample()
        Ds = sp.solve(np.ascontiguousarray(S.numpy().transpose(1, 2, 0))).squeeze()
        learner.step(S)
        Dc = learner.dictionary.numpy().transpose(1, 2, 0)
        assert np.linalg.norm(Dc - Ds) / np.linalg.norm(Ds) < 1e-8, i
    assert sp.itstat[-1].Rho == p.rho  # AutoRho off: ρ stays the authors' 10


def test_cli_paper_learn_records_the_protocol_and_resumes(tmp_path):
    init = save_dictionary(tmp_path / "init.npz", torch.randn(6, 7, 7, generator=torch.Generator().manual_seed(0)))
    out = tmp_path / "learned.npz"
    args = ["paper", "learn", "--init", str(init), "--out", str(out), "--steps", "2", "--crop", "24",
            "--max-iter", "5", "--images", "camera", "--checkpoint-every", "1", "--quiet"]
    assert main(args) == 0
    D, meta = load_dictionary(out), json.loads(str(np.load(out)["metadata"]))
    assert meta["protocol"]["steps"] == 2 and meta["protocol"]["eta_a"] == 100.0 and meta["protocol"]["rho"] == 10.0
    assert meta["protocol"]["images"] == ["camera"] and meta["method"] == "online"
    assert (tmp_path / "learned.stats.json").is_file() and (tmp_path / "learned.objective.png").is_file()
    assert main(args) == 0  # resumes from the finished checkpoint: the same dictionary
    assert torch.equal(load_dictionary(out), D)
    assert main(["paper", "learn", "--init", str(init), "--out", str(out), "--crop", "nonsense"]) == 2


def test_paper_table1_end_to_end_resumes(tmp_path):
    """Tiny Table 1 under the authors' protocol (sizes shrunk): stores coded with L1Weight 0.5,
    RelaxParam 1.8, RsdlRatio 1.05 and the ×2 upscale; pixel and code runs over pruning
    levels; a second call finds everything done and changes nothing."""
    root = tmp_path / "fmnist"
    write_fmnist(root, n_train=12, n_test=6)
    tiny = save_dictionary(tmp_path / "tiny.npz", torch.randn(4, 5, 5, generator=torch.Generator().manual_seed(1)))
    out = tmp_path / "t1"
    args = ["paper", "table1", "--out", str(out), "--root", str(root), "--dictionaries", str(tiny),
            "--train-count", "12", "--test-count", "6", "--max-iter", "3", "--shard-size", "8", "--device", "cpu",
            "--size", "16", "--epochs", "1", "--batch-size", "12", "--seeds", "1", "--prune", "none", "0.5",
            "--quiet"]
    assert main(args) == 0
    store = json.loads((out / "stores" / "tiny-train" / "manifest.json").read_text())
    s = store["settings"]
    assert (s["l1_weight"], s["relax"], s["rsdl_ratio"], s["lmbda"], s["preprocess"]) == (0.5, 1.8, 1.05, 0.01, "lcn")
    assert store["code_shape"] == [4, 56, 56] and store["num_images"] == 12  # 28 × 2
    table = (out / "table1.md").read_text()
    assert "pixels" in table and "tiny" in table
    runs = sorted(p.parent.relative_to(out / "runs").as_posix() for p in (out / "runs").rglob("metrics.json"))
    assert runs == ["pixels/none/seed0", "tiny/0.5/seed0", "tiny/none/seed0"]
    m = json.loads((out / "runs" / "tiny" / "none" / "seed0" / "metrics.json").read_text())
    assert m["options"]["schedule"] == "onecycle" and m["options"]["stem"] == "cifar"
    assert m["options"]["weight_decay"] == 0.05 and m["options"]["dropout"] == 0.5 and len(m["epochs"]) == 1
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")}
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")} == before  # nothing re-encoded or retrained


def test_shipped_post_learning_dictionaries_were_learned_the_authors_way():
    """The shipped homogeneous-learned / heterogeneous-learned come from ``csc paper learn``
    with the authors' protocol on the 9 training photographs; on the two held-out ones, at
    the protocol's λ and preprocessing, their CBPDN objective is below their start's."""
    import csc
    from csc.science.demo import prepare_photographs
    from csc.science.protocol import HELD_OUT_PHOTOGRAPHS

    p = OnlineLearningProtocol()
    _, signals, _, _, _ = prepare_photographs(list(HELD_OUT_PHOTOGRAPHS), 48, p.preprocess)
    opts = csc.CBPDNOptions(max_iter=40, rel_stop_tol=0.0)
    for start in ("homogeneous", "heterogeneous"):
        meta = csc.dictionary_metadata(f"{start}-learned")
        assert meta["made_by"] == "csc paper learn" and meta["init"] == start
        assert not set(meta["image_names"]) & set(HELD_OUT_PHOTOGRAPHS)
        assert {k: meta["protocol"][k] for k in ("steps", "lmbda", "max_iter", "rho", "eta_a", "eta_b")} == \
            {"steps": p.steps, "lmbda": p.lmbda, "max_iter": p.max_iter, "rho": p.rho, "eta_a": p.eta_a,
             "eta_b": p.eta_b}
        objective = {}
        for name in (start, f"{start}-learned"):
            res = csc.ConvBPDN(csc.load_dictionary(name), p.lmbda, opts).solve(signals)
            fid = 0.5 * (res.reconstruct() - signals).flatten(1).square().sum(1)
            objective[name] = fid + p.lmbda * res.codes.abs().flatten(1).sum(1)
        assert bool((objective[f"{start}-learned"] < objective[start]).all()), objective

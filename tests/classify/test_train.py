"""Training loop, pickle-free checkpoints, exact resume and Table 1 aggregation (csc.classify.train)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from csc.cli.main import main
from csc.pipeline.datasets import PixelDataset
from csc.classify import train as train_module
from csc.classify.train import (TrainOptions, aggregate_runs, load_checkpoint, plot_runs, resolve_num_workers,
                                table_markdown, train)
from csc.runtime.sync import count_syncs


def _tiny(n=24, seed=0):
    """Two separable classes of 12×12 images: bright top half vs bright bottom half
    (horizontal flips keep the class)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.uniform(0, 0.3, (n, 12, 12)).astype(np.float32)
    for i in range(n):
        if y[i]:
            x[i, 6:] += 0.7
        else:
            x[i, :6] += 0.7
    return x, y


OPTS = dict(batch_size=8, seed=3, dropout=0.2, lr=1e-3, device="cpu")


def _sets():
    x, y = _tiny()
    xt, yt = _tiny(8, seed=1)
    return PixelDataset(x, y, hflip=True, seed=3), PixelDataset(xt, yt)


def test_training_improves_loss(tmp_path):
    tr, te = _sets()
    res = train(tr, te, tmp_path / "run", TrainOptions(epochs=4, **OPTS), run={"encoding": "pixels", "seed": 3})
    h = res["epochs"]
    assert len(h) == 4 and h[-1]["train_loss"] < h[0]["train_loss"]
    for name in ("metrics.csv", "metrics.json", "curves.png", "checkpoint.npz"):
        assert (tmp_path / "run" / name).is_file()
    with np.load(tmp_path / "run" / "checkpoint.npz", allow_pickle=False) as z:  # pickle-free
        assert "model/conv1.weight" in z.files and any(k.startswith("optim/") for k in z.files)
    assert (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0].startswith("epoch,train_loss")


def test_resume_equals_uninterrupted(tmp_path):
    tr, te = _sets()
    full = train(tr, te, tmp_path / "full", TrainOptions(epochs=3, **OPTS))
    tr, te = _sets()
    part = train(tr, te, tmp_path / "part", TrainOptions(epochs=3, **OPTS), stop_after_epoch=1)
    assert len(part["epochs"]) == 1
    tr, te = _sets()  # a fresh process would rebuild everything
    resumed = train(tr, te, tmp_path / "part", TrainOptions(epochs=3, **OPTS))
    a, b = full["model"].state_dict(), resumed["model"].state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(full["epochs"]) == strip(resumed["epochs"])
    # the checkpoint restores the optimizer too
    model = full["model"]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    meta = load_checkpoint(tmp_path / "full" / "checkpoint.npz", model, opt)
    assert meta["epoch"] == 2 and opt.state_dict()["param_groups"][0]["betas"] == (0.9, 0.99)
    assert len(opt.state) == len(list(model.parameters()))
    # resuming with other options is refused
    with pytest.raises(ValueError, match="other options"):
        train(tr, te, tmp_path / "part", TrainOptions(epochs=4, **{**OPTS, "lr": 1e-4}))


def _fake_run(root, enc, pr, seed, accs):
    d = root / enc / str(pr) / f"seed{seed}"
    d.mkdir(parents=True)
    eps = [{"epoch": i + 1, "test_acc": a, "train_loss": 1.0} for i, a in enumerate(accs)]
    (d / "metrics.json").write_text(json.dumps({"run": {"encoding": enc, "pruning": pr, "seed": seed},
                                                "options": {"seed": seed}, "epochs": eps}))
    return d


def test_table_aggregates_over_seeds(tmp_path):
    dirs = [_fake_run(tmp_path, "heterogeneous", None, 0, [50, 70]), _fake_run(tmp_path, "heterogeneous", None, 1, [60, 74]),
            _fake_run(tmp_path, "heterogeneous", 0.25, 0, [40, 60]), _fake_run(tmp_path, "pixels", None, 0, [30, 65])]
    agg = aggregate_runs(dirs)
    rows = {(r["encoding"], r["pruning"]): r for r in agg["rows"]}
    r = rows[("heterogeneous", "none")]
    assert r["n"] == 2 and r["mean"] == pytest.approx(72) and r["std"] == pytest.approx(np.std([70, 74], ddof=1))
    assert rows[("heterogeneous", "c = 0.25")]["mean"] == 60
    assert aggregate_runs(dirs, which="best")["rows"][0]["mean"] == pytest.approx(72)
    md = table_markdown(agg)
    assert "| heterogeneous | 72.00 ± 2.83 (n=2) | 60.00 ± 0.00 (n=1) |" in md
    assert "| pixels | 65.00 ± 0.00 (n=1) | — |" in md
    plot_runs(agg, tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 1000
    assert main(["table", *map(str, dirs), "--markdown", str(tmp_path / "t.md"), "--json", str(tmp_path / "t.json")]) == 0
    assert (tmp_path / "t.md").read_text() == md
    assert json.loads((tmp_path / "t.json").read_text())["rows"][0]["n"] == 2


def test_cli_train_on_store(tmp_path):
    from csc.dictionary.io import save_dictionary
    from csc.pipeline.store import EncodeSettings, encode_dataset

    D = torch.randn(3, 4, 4)
    save_dictionary(tmp_path / "d.npz", D / D.flatten(1).norm(dim=1)[:, None, None])
    x, y = _tiny(12)
    s = EncodeSettings(dictionary=str(tmp_path / "d.npz"), lmbda=0.05, max_iter=5, shard_size=8)
    encode_dataset(x, y, tmp_path / "st", s, device="cpu")
    args = ["train", "--store", str(tmp_path / "st"), "--test-store", str(tmp_path / "st"), "--epochs", "1",
            "--batch-size", "4", "--max-steps", "2", "--prune", "0.25", "--device", "cpu", "--quiet"]
    assert main(args + ["--out", str(tmp_path / "run")]) == 0
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["in_channels"] == 3 and m["run"]["pruning"] == 0.25 and len(m["epochs"]) == 1
    assert main(args + ["--out", str(tmp_path / "run")]) == 0  # finished: resumes to nothing more


def test_cli_train_refuses_mismatched_stores_and_foreign_run_folders(tmp_path, capsys):
    """A test store coded with another dictionary is refused, and a run folder is not
    resumed with other stores (its checkpoint records the data it was trained on)."""
    from csc.dictionary.io import save_dictionary
    from csc.pipeline.store import EncodeSettings, encode_dataset

    x, y = _tiny(8)
    for name, seed in (("d1", 0), ("d2", 1)):
        D = torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(seed))
        save_dictionary(tmp_path / f"{name}.npz", D / D.flatten(1).norm(dim=1)[:, None, None])
        s = EncodeSettings(dictionary=str(tmp_path / f"{name}.npz"), lmbda=0.05, max_iter=3, shard_size=8)
        encode_dataset(x, y, tmp_path / name, s, device="cpu")
    encode_dataset(x[:4], y[:4], tmp_path / "d1-half", EncodeSettings(
        dictionary=str(tmp_path / "d1.npz"), lmbda=0.05, max_iter=3, shard_size=8), device="cpu")
    common = ["train", "--epochs", "1", "--batch-size", "4", "--max-steps", "1", "--device", "cpu", "--quiet"]
    rc = main(common + ["--store", str(tmp_path / "d1"), "--test-store", str(tmp_path / "d2"),
                        "--out", str(tmp_path / "r0")])
    err = capsys.readouterr().err
    assert rc == 2 and "--test-store" in err and "dictionary_sha256" in err
    assert not (tmp_path / "r0").exists()
    run = ["--test-store", str(tmp_path / "d1"), "--out", str(tmp_path / "r1")]
    assert main(common + ["--store", str(tmp_path / "d1")] + run) == 0
    rc = main(common + ["--epochs", "2", "--store", str(tmp_path / "d1-half")] + run)
    err = capsys.readouterr().err
    assert rc == 2 and "other data" in err


def test_onecycle_schedule_resumes_exactly(tmp_path):
    """The authors' OneCycleLR: the lr after each epoch is torch's OneCycleLR after that many
    steps (24 images, batch 8: 3 steps an epoch), and an interrupted run resumes to the
    same weights and history."""
    opts = TrainOptions(epochs=3, schedule="onecycle", weight_decay=5e-2, **OPTS)
    tr, te = _sets()
    full = train(tr, te, tmp_path / "full", opts)
    ref_opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=opts.lr)
    ref = torch.optim.lr_scheduler.OneCycleLR(ref_opt, max_lr=opts.lr, epochs=3, steps_per_epoch=3)
    expected = []
    for _ in range(3):
        for _ in range(3):
            ref_opt.step()
            ref.step()
        expected.append(ref_opt.param_groups[0]["lr"])
    assert [r["lr"] for r in full["epochs"]] == pytest.approx(expected, rel=1e-12)
    assert expected[0] > opts.lr / 25 * 1.5  # warming up: not the initial lr any more
    tr, te = _sets()
    train(tr, te, tmp_path / "part", opts, stop_after_epoch=2)
    tr, te = _sets()
    resumed = train(tr, te, tmp_path / "part", opts)
    a, b = full["model"].state_dict(), resumed["model"].state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(full["epochs"]) == strip(resumed["epochs"])
    with pytest.raises(ValueError, match="other options"):  # the schedule spans the epochs: they must match
        train(tr, te, tmp_path / "part", TrainOptions(**{**opts.__dict__, "epochs": 4}))


def test_eval_every_skips_test_epochs_and_changes_nothing_else(tmp_path):
    tr, te = _sets()
    every = train(tr, te, tmp_path / "every", TrainOptions(epochs=3, **OPTS))
    tr, te = _sets()
    part = train(tr, te, tmp_path / "sparse", TrainOptions(epochs=3, eval_every=2, **OPTS), stop_after_epoch=1)
    tr, te = _sets()  # resuming with another eval_every is allowed: it is not part of the run's identity
    sparse = train(tr, te, tmp_path / "sparse", TrainOptions(epochs=3, eval_every=2, **OPTS))
    assert part["epochs"][0]["test_acc"] is None
    assert [e["test_acc"] is None for e in sparse["epochs"]] == [True, False, False]  # epoch 2, and the last
    for a, b in zip(every["epochs"], sparse["epochs"]):  # evaluation does not change the training
        assert a["train_loss"] == b["train_loss"] and a["lr"] == b["lr"]
        if b["test_acc"] is not None:
            assert (a["test_acc"], a["test_loss"]) == (b["test_acc"], b["test_loss"])
    for k, v in every["model"].state_dict().items():
        assert torch.equal(v, sparse["model"].state_dict()[k]), k
    agg = aggregate_runs([tmp_path / "sparse"])
    assert agg["rows"][0]["values"] == [sparse["epochs"][-1]["test_acc"]]
    assert agg["rows"][0]["curves"][0][0] is None
    plot_runs(agg, tmp_path / "c.png")
    assert (tmp_path / "sparse" / "curves.png").is_file() and ",," in (tmp_path / "sparse" / "metrics.csv").read_text()
    with pytest.raises(ValueError, match="eval_every"):
        TrainOptions(eval_every=0)


def test_table_uses_the_last_evaluated_epoch(tmp_path):
    d = _fake_run(tmp_path, "heterogeneous", None, 0, [50, None, 70, None])  # interrupted after epoch 4
    agg = aggregate_runs([d])
    assert agg["rows"][0]["mean"] == 70 and aggregate_runs([d], which="best")["rows"][0]["mean"] == 70
    assert aggregate_runs([_fake_run(tmp_path, "homogeneous", None, 0, [None])])["rows"] == []


# --------------------------------------------------------------------- input pipeline
def test_num_workers_auto_resolves_by_device():
    assert TrainOptions().num_workers is None  # "auto"
    assert resolve_num_workers(None, "cpu") == 0
    assert resolve_num_workers(None, torch.device("cpu"), world=4) == 0
    auto = resolve_num_workers(None, torch.device("cuda"))  # a device name: no GPU needed
    assert 1 <= auto <= 4
    assert resolve_num_workers(None, "cuda:1", world=10 ** 6) == 1  # never below one worker on CUDA
    assert resolve_num_workers(0, "cuda") == 0 and resolve_num_workers(3, "cpu") == 3  # explicit numbers stand


@pytest.mark.parametrize("bad, err", [(-1, ValueError), (1.5, ValueError), ("2", TypeError), (True, TypeError)])
def test_num_workers_validated(bad, err):
    with pytest.raises(err, match="num_workers"):
        TrainOptions(num_workers=bad)


def test_num_workers_is_not_part_of_the_run_identity(tmp_path):
    """The auto default leaves TrainOptions.identity() (what a checkpoint must match) as it was,
    and worker processes do not change the run: a checkpoint of a run read in the training
    process resumes under the default and with a worker process, to the uninterrupted run."""
    ident = TrainOptions(**OPTS).identity()
    assert "num_workers" not in ident
    assert ident == TrainOptions(num_workers=0, **OPTS).identity() == TrainOptions(num_workers=3, **OPTS).identity()
    tr, te = _sets()
    full = train(tr, te, tmp_path / "full", TrainOptions(epochs=3, num_workers=0, **OPTS))
    tr, te = _sets()
    train(tr, te, tmp_path / "part", TrainOptions(epochs=3, num_workers=0, **OPTS), stop_after_epoch=1)
    tr, te = _sets()
    train(tr, te, tmp_path / "part", TrainOptions(epochs=3, **OPTS), stop_after_epoch=2)  # the default
    tr, te = _sets()
    resumed = train(tr, te, tmp_path / "part", TrainOptions(epochs=3, num_workers=1, **OPTS))
    assert resumed["num_workers"] == 1 and full["num_workers"] == 0
    for k, v in full["model"].state_dict().items():
        assert torch.equal(v, resumed["model"].state_dict()[k]), k
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(full["epochs"]) == strip(resumed["epochs"])


_HOST_READS = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__", "__index__")


def _step_loop_reads(monkeypatch, steps: int) -> tuple[list[str], int, list[float]]:
    """(host reads of any tensor while _train_steps runs ``steps`` steps of a small model,
    reads routed through to_host, the sums it returns)."""
    torch.manual_seed(0)
    x, y = torch.randn(40, 1, 4, 4), torch.randint(0, 3, (40,))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(),
                              torch.nn.Linear(8, 3))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)  # SGD reads nothing itself (Adam reads its CPU step count)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=steps)
    reads: list[str] = []
    with monkeypatch.context() as m:
        for name in _HOST_READS:
            real = getattr(torch.Tensor, name)
            m.setattr(torch.Tensor, name, lambda self, *a, _r=real, _n=name, **k: reads.append(_n) or _r(self, *a, **k))
        with count_syncs() as syncs:
            sums = train_module._train_steps(net, loader, opt, None, torch.device("cpu"), False, steps, sched)
    return reads, syncs.total, sums.tolist()


def test_step_loop_reads_the_host_at_most_once_per_step(monkeypatch):
    """The step loop reads nothing back per step (every read of a tensor's value on the host
    is counted: on CUDA each one waits for the GPU); the running sums stay on the device. The
    one read left is the DataLoader's draw of its base seed (a CPU tensor, once per epoch)."""
    one, synced1, _ = _step_loop_reads(monkeypatch, 1)
    five, synced5, (loss_sum, correct, seen) = _step_loop_reads(monkeypatch, 5)
    assert len(five) <= 5 and len(five) == len(one) <= 1, (one, five)  # not one more per step
    assert synced1 == synced5 == 0
    assert seen == 40 and 0 <= correct <= seen and loss_sum > 0


def test_an_epoch_reads_its_metrics_once(tmp_path):
    """train() reads the training and test sums once per epoch (csc.runtime.sync.to_host)."""
    tr, te = _sets()
    with count_syncs() as syncs:
        res = train(tr, te, tmp_path / "run", TrainOptions(epochs=2, eval_every=2, **OPTS))
    assert syncs.by_site == {"train.epoch": 2}
    assert res["epochs"][0]["test_acc"] is None and res["epochs"][1]["test_acc"] is not None


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_training_uses_workers_by_default(tmp_path):
    tr, te = _sets()
    res = train(tr, te, tmp_path / "run", TrainOptions(epochs=1, max_steps=2, **{**OPTS, "device": "cuda"}))
    assert res["num_workers"] == resolve_num_workers(None, "cuda") > 0
    assert res["epochs"][0]["train_loss"] > 0

"""Host synchronisations per iteration, counted on the CPU.

Every host read of the solvers goes through :func:`csc.runtime.sync.to_host`, which
:func:`csc.runtime.sync.count_syncs` counts (on CUDA each is a device synchronisation). The
count per iteration is the difference between two runs of different lengths that never
converge (rel_stop_tol 0), so the set-up's reads cancel. Independently, a dispatch mode
checks that one ADMM iteration (``ADMMLoop.step``) runs no data-dependent operation (a
tensor read as a Python number, ``nonzero``, boolean-mask indexing) that would read the
device without going through the counted path."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import csc
from csc.core.admm import ADMMLoop
from csc.runtime.sync import count_syncs

SYNCING_OPS = {"_local_scalar_dense", "nonzero", "masked_select", "item", "is_nonzero", "equal"}


class DataDependentOps(TorchDispatchMode):
    """Counts the aten operations that make the host wait for the device."""

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name.split("::")[-1]
        bool_index = name.startswith("index") and any(
            isinstance(a, torch.Tensor) and a.dtype == torch.bool
            for arg in args if isinstance(arg, (list, tuple)) for a in arg)
        if name in SYNCING_OPS or bool_index:
            self.seen.append(name)
        return func(*args, **(kwargs or {}))


def _problem(n=3):
    g = torch.Generator().manual_seed(0)
    D = torch.randn(6, 5, 5, generator=g, dtype=torch.float64)
    D /= D.flatten(1).norm(dim=1).view(-1, 1, 1)
    return D, torch.randn(n, 16, 16, generator=g, dtype=torch.float64)


def _count(iters, **kw):
    D, S = _problem()
    opts = csc.CBPDNOptions(max_iter=iters, rel_stop_tol=0, **kw)
    with count_syncs() as c:
        csc.ConvBPDN(D, 0.05, opts).solve(S)
    return c.total


@pytest.mark.parametrize("stats", [False, True])
@pytest.mark.parametrize("interval", [1, 10])
def test_convbpdn_one_host_read_per_sync_interval(stats, interval):
    kw = dict(backend="torch", record_stats=stats, sync_interval=interval)
    per_iter = (_count(40, **kw) - _count(20, **kw)) / 20
    assert per_iter <= 1 / interval


def test_one_iteration_runs_no_data_dependent_operation(monkeypatch):
    seen = []
    real_step = ADMMLoop.step

    def step(self, record=None):
        with DataDependentOps() as mode:
            out = real_step(self, record)
        seen.extend(mode.seen)
        return out

    monkeypatch.setattr(ADMMLoop, "step", step)
    D, S = _problem()
    for stats in (False, True):
        opts = csc.CBPDNOptions(max_iter=12, rel_stop_tol=2e-2, backend="torch", record_stats=stats,
                                sync_interval=5, nonneg=True, no_boundary_cross=True)
        csc.ConvBPDN(D, 0.05, opts).solve(S)
    assert seen == []


def test_statistics_with_a_sync_interval_equal_every_iteration():
    """Buffered statistics rows (sync_interval 7) are the rows read every iteration, and
    images that froze between reads get no rows for the iterations they did not run."""
    D, S = _problem()
    S = S * torch.tensor([1.0, 0.1, 3.0], dtype=torch.float64).view(3, 1, 1)
    base = dict(max_iter=150, rel_stop_tol=2e-2, backend="torch")
    a = csc.ConvBPDN(D, 0.05, csc.CBPDNOptions(sync_interval=1, **base)).solve(S)
    b = csc.ConvBPDN(D, 0.05, csc.CBPDNOptions(sync_interval=7, **base)).solve(S)
    assert a.iterations.tolist() == b.iterations.tolist()
    assert torch.equal(a.codes, b.codes)
    for sa, sb, it in zip(a.stats, b.stats, a.iterations.tolist()):
        assert len(sb.objective) == it
        for f in ("objective", "primal_residual", "dual_residual", "rho"):
            assert (getattr(sa, f) == getattr(sb, f)).all()


# ------------------------------------------------------------------ the learners
def _learn_syncs(dmethod, steps, accurate=False):
    from csc.learn.options import DICTLEARN_CBPDN_DEFAULTS, DictLearnOptions

    D0, S = _problem(2)
    opts = DictLearnOptions(max_iter=steps, dmethod=dmethod, accurate_dfid=accurate,
                            cbpdn=DICTLEARN_CBPDN_DEFAULTS.replace(backend="torch"))
    with count_syncs() as c:
        csc.DictLearn(D0, 0.05, opts).solve(S)
    return c.total


@pytest.mark.parametrize("dmethod", ["pgm", "cns"])
def test_batch_learner_one_host_read_per_outer_iteration(dmethod):
    """Coding step, dictionary step and their statistics: one read per outer iteration (the
    learner records SPORCO's statistics every iteration; ρ updates of the coding step and the
    stopping tests of one-iteration steps need no read)."""
    assert (_learn_syncs(dmethod, 12) - _learn_syncs(dmethod, 6)) / 6 <= 1


def _online(sync_interval, inner, rel_stop_tol, steps=3):
    from csc.learn.options import ONLINE_CBPDN_DEFAULTS, OnlineDictLearnOptions

    D0, S = _problem(2)
    opts = OnlineDictLearnOptions(cbpdn=ONLINE_CBPDN_DEFAULTS.replace(
        backend="torch", max_iter=inner, rel_stop_tol=rel_stop_tol, sync_interval=sync_interval))
    learner = csc.OnlineDictLearn(D0, 0.05, opts)
    learner.step(S)  # set-up reads
    with count_syncs() as c:
        rows = [learner.step(S) for _ in range(steps)]
    return c.total, rows, learner.dictionary


@pytest.mark.parametrize("interval", [1, 10])
def test_online_learner_host_reads(interval):
    """Per step: the inner solve's stopping test after each inner iteration but the last
    (sync_interval 1) or once per sync_interval iterations (its problem frozen on the device
    when it converges in between), and one read for the step's statistics."""
    inner = 40
    total, _, _ = _online(interval, inner, 0.0)
    tests = inner - 1 if interval == 1 else inner // interval  # reads of the stopping test per step
    assert total == 3 * (tests + 1)


def test_online_learner_frozen_at_convergence_equals_stopping_there():
    """Converging between two reads (sync_interval 7) gives the dictionary, statistics and
    inner iteration counts of stopping at once (sync_interval 1), bit for bit."""
    _, rows1, D1 = _online(1, 200, 2e-2)
    _, rows7, D7 = _online(7, 200, 2e-2)
    assert all(r["cbpdn_iterations"] < 200 for r in rows1)
    assert torch.equal(D1, D7)
    for a, b in zip(rows1, rows7):
        assert {k: v for k, v in a.items() if k != "time"} == {k: v for k, v in b.items() if k != "time"}

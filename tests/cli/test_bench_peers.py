"""``csc bench --peers`` (benchmarks/bench/peers.py): one report per engine, the bench JSON's top-level schema,
missing peers skipped."""

from __future__ import annotations

import json

import numpy as np

from benchmarks import bench
from benchmarks.bench import peers as bench_peers

from ..conftest import needs_sporco


@needs_sporco
def test_bench_peers_report(tmp_path, capsys):
    out = tmp_path / "peers.json"
    bench.main(["--peers", "csc-admm", "csc-fista", "sporco-pgm", "--size", "32", "--kernels", "4", "--ksize", "4",
                "--iters", "6", "--json", str(out)])
    rep = json.loads(out.read_text())
    assert {"machine", "settings", "started", "peers"} <= set(rep)
    eng = rep["peers"]["engines"]
    assert set(eng) == {"csc-admm", "csc-fista", "sporco-pgm"}
    for e in eng.values():
        assert len(e["time"]) == len(e["objective"]) == 6 and set(e["reached"]) == {"0.01", "0.001", "0.0001"}
    # FISTA on SPORCO's and csc's sides: the same iterates (same L), so the same objectives
    np.testing.assert_allclose(eng["csc-fista"]["objective"], eng["sporco-pgm"]["objective"], rtol=1e-10)


@needs_sporco
def test_peers_admm_objective_on_y_and_x():
    """csc's and SPORCO's ADMM measured at the same variable give the same objectives (parity),
    and y's differ from x's: the option reaches both engines."""
    s = np.random.RandomState(0).randn(24, 24)
    D = np.random.RandomState(1).randn(4, 5, 5)
    D /= np.sqrt((D ** 2).sum(axis=(1, 2), keepdims=True))
    L = bench_peers.lipschitz(D, s.shape)
    objs = {}
    for on in bench_peers.ON:
        for name in ("csc-admm", "sporco-admm"):
            objs[name, on] = bench_peers.run_engine(name, s, D, 0.1, 8, L, on=on)[1]
        np.testing.assert_allclose(objs["csc-admm", on], objs["sporco-admm", on], rtol=1e-10)
    assert np.abs(objs["csc-admm", "y"] - objs["csc-admm", "x"]).max() > 1e-3 * np.abs(objs["csc-admm", "x"]).max()
    # float32 engines: the same iterates up to float32 rounding (the float64 ones agree to 1e-10)
    f32 = {n: bench_peers.run_engine(n, s, D, 0.1, 8, L)[1] for n in ("csc-admm-f32", "sporco-admm-f32")}
    np.testing.assert_allclose(f32["csc-admm-f32"], f32["sporco-admm-f32"], rtol=1e-5)
    np.testing.assert_allclose(f32["csc-admm-f32"], objs["csc-admm", "y"], rtol=1e-5)


def test_time_to_levels():
    t = np.array([1.0, 2.0, 3.0])
    r = bench_peers.time_to(t, np.array([1.5, 1.001, 1.00001]), 1.0)
    assert r["0.01"] == {"time": 2.0, "iteration": 2} and r["0.0001"] == {"time": 3.0, "iteration": 3}
    assert bench_peers.time_to(t, np.array([2.0, 2.0, 2.0]), 1.0)["0.01"] is None

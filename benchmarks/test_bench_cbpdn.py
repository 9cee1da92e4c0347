"""pytest-benchmark suite: csc.ConvBPDN vs SPORCO's admm.cbpdn.ConvBPDN, per iteration.

Run from the repository root (not part of the default ``pytest`` run: testpaths is tests/)::

    python -m pytest benchmarks/ --benchmark-only
    python -m pytest benchmarks/ --benchmark-only -k "128 and float32"
    python -m pytest benchmarks/ --benchmark-only --benchmark-json benchmarks/results/bench.json

Each benchmark solves a fixed number of ADMM iterations (RelStopTol 0, AutoRho on,
statistics off: SPORCO ``FastSolve``, csc ``record_stats=False``) on the problem of
benchmarks/compare_sporco.py / ``csc bench`` (barbara highpass crop, seeded random
unit-norm 12×12 dictionary, K = 144, λ = 0.05), built by the same functions
(:mod:`benchmarks.bench`). csc runs on each of its back ends: on the CPU the fused numba
kernels (``backend="numba"``) and the torch loop (``backend="torch"``); on a GPU the torch
loop. The timed call is one solve; pytest-benchmark reports
seconds per solve (SIZES and BATCH_ITERS below give the iterations per solve), and
``extra_info`` in ``--benchmark-json`` holds the iterations, ``ms_per_iter_min``,
``ms_per_iter_median`` and ``image_iters_per_s_median``. Groups put csc and SPORCO on
the same problem side by side.

SPORCO's object construction runs in pedantic ``setup`` (untimed), as in the script; the
csc solve includes its own per-solve precomputation. One warm-up round each absorbs
FFTW_MEASURE planning (SPORCO's default planner, kept) and torch's plan caches.

Environment: ``CSC_BENCH_THREADS`` (default: every CPU available) threads for torch and
pyFFTW; ``CSC_BENCH_ROUNDS`` (default 3) timed rounds; ``CSC_BENCH_DEVICE`` extra csc
device (default: ``cuda`` when available); ``CSC_BENCH_BACKENDS`` (default
``numba,torch``) csc's CPU back ends; ``CSC_BENCH_SMOKE=1`` tiny problems, only to
check that the suite runs.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("sporco")
pytest.importorskip("pytest_benchmark")
torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout: benchmarks.bench
from benchmarks import bench as cs  # noqa: E402
from csc.backends import fused as _fused  # noqa: E402

SMOKE = os.environ.get("CSC_BENCH_SMOKE", "") not in ("", "0")
THREADS = int(os.environ.get("CSC_BENCH_THREADS", len(os.sched_getaffinity(0))))
ROUNDS = int(os.environ.get("CSC_BENCH_ROUNDS", 3))
LMBDA = 0.05
SEED = 12345
KERNELS, KSIZE = (8, 6) if SMOKE else (144, 12)
# (image side, iterations per timed solve)
SIZES = [(32, 3), (48, 2)] if SMOKE else [(128, 10), (256, 5)]
BATCH, BATCH_CROP, BATCH_ITERS = (3, 32, 2) if SMOKE else (8, 128, 5)
DTYPES = ["float32", "float64"]
_extra = os.environ.get("CSC_BENCH_DEVICE", "cuda" if torch.cuda.is_available() else "")
DEVICES = ["cpu"] + ([_extra] if _extra and _extra != "cpu" else [])
CPU_BACKENDS = [b.strip() for b in os.environ.get("CSC_BENCH_BACKENDS", "numba,torch").split(",") if b.strip()]


def _targets():
    """(device, back end) pairs csc is timed on: each CPU back end, the torch loop elsewhere."""
    out = []
    for dev in DEVICES:
        for be in (CPU_BACKENDS if dev == "cpu" else ["torch"]):
            marks = ([pytest.mark.skip(reason=f"numba: {_fused.unavailable_reason()}")]
                     if be == "numba" and not _fused.available() else [])
            out.append(pytest.param(dev, be, id=f"{dev}-{be}", marks=marks))
    return out


@pytest.fixture(scope="module", autouse=True)
def _threads_and_planner():
    """All cores for torch and pyFFTW; SPORCO's default FFTW_MEASURE planner (tests/
    conftest.py switches it to FFTW_ESTIMATE for the test suite)."""
    from sporco import fft as sp_fft

    saved = (sp_fft.pyfftw_threads, sp_fft.pyfftw_planner_effort, torch.get_num_threads())
    cs.configure_threads(THREADS, cs.PLANNER_EFFORT)
    yield
    sp_fft.pyfftw_threads, sp_fft.pyfftw_planner_effort = saved[:2]
    torch.set_num_threads(saved[2])


@functools.lru_cache(maxsize=None)
def _single(size: int):
    return cs.random_dictionary(KSIZE, KERNELS, SEED), cs.single_image(size)


@functools.lru_cache(maxsize=None)
def _batch():
    return cs.random_dictionary(KSIZE, KERNELS, SEED), cs.batch_images(BATCH_CROP, BATCH, SEED)[0]


def _per_iteration(benchmark, iters: int, images: int = 1) -> None:
    """Record iterations and ms per iteration (and image-iterations/s) in extra_info."""
    benchmark.extra_info.update(iterations=iters, images=images, threads=THREADS,
                                planner=cs.PLANNER_EFFORT)
    st = getattr(benchmark, "stats", None)
    if st is None:  # --benchmark-disable
        return
    st = st.stats
    benchmark.extra_info["ms_per_iter_min"] = 1e3 * st.min / iters
    benchmark.extra_info["ms_per_iter_median"] = 1e3 * st.median / iters
    benchmark.extra_info["image_iters_per_s_median"] = images * iters / st.median


def _size_params():
    return [pytest.param(size, it, id=f"{size}x{size}") for size, it in SIZES]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size,iters", _size_params())
def test_sporco(benchmark, size, iters, dtype):
    D, s = _single(size)
    Dd, sd = D.astype(dtype), s.astype(dtype)
    opt = cs.sporco_options(iters, dtype)
    benchmark.group = f"single {size}x{size} K={KERNELS} {KSIZE}x{KSIZE} {dtype}"

    def setup():  # construction untimed
        return (cs.sporco_construct(Dd, sd, LMBDA, opt),), {}

    def target(solver):
        solver.solve()
        return solver.k

    k = benchmark.pedantic(target, setup=setup, rounds=ROUNDS, warmup_rounds=1)
    assert k == iters
    _per_iteration(benchmark, iters)


@pytest.mark.parametrize("device,backend", _targets())
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size,iters", _size_params())
def test_csc(benchmark, size, iters, dtype, device, backend):
    D, s = _single(size)
    Dd = D.astype(dtype)
    S = cs.csc_images(s, dtype, device)
    opt = cs.sporco_options(iters, dtype)
    benchmark.group = f"single {size}x{size} K={KERNELS} {KSIZE}x{KSIZE} {dtype}"

    def setup():
        cs.sync(device)
        return (cs.csc_construct(Dd, LMBDA, opt, device, backend),), {}

    def target(solver):
        res = solver.solve(S)
        cs.sync(device)
        return res.iterations

    its = benchmark.pedantic(target, setup=setup, rounds=ROUNDS, warmup_rounds=1)
    assert int(its.min()) == int(its.max()) == iters
    _per_iteration(benchmark, iters)
    benchmark.extra_info["backend"] = backend


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_sporco_one_by_one(benchmark, dtype):
    """SPORCO on BATCH crops, one image at a time; each image's construction is timed too
    (a one-by-one pipeline builds a solver per image: ~1% of a solve at 128², K = 144)."""
    D, imgs = _batch()
    Dd, Sd = D.astype(dtype), imgs.astype(dtype)
    opt = cs.sporco_options(BATCH_ITERS, dtype)
    benchmark.group = f"batch {BATCH}x{BATCH_CROP}x{BATCH_CROP} K={KERNELS} {dtype}"

    def target():
        ks = []
        for s in Sd:
            solver = cs.sporco_construct(Dd, s, LMBDA, opt)
            solver.solve()
            ks.append(solver.k)
            del solver
        return ks

    ks = benchmark.pedantic(target, rounds=ROUNDS, warmup_rounds=1)
    assert ks == [BATCH_ITERS] * BATCH
    _per_iteration(benchmark, BATCH_ITERS, images=BATCH)


@pytest.mark.parametrize("device,backend", _targets())
@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_csc(benchmark, dtype, device, backend):
    """csc on the same BATCH crops as one (B, H, W) batch."""
    D, imgs = _batch()
    Dd = D.astype(dtype)
    S = cs.csc_images(imgs, dtype, device)
    opt = cs.sporco_options(BATCH_ITERS, dtype)
    benchmark.group = f"batch {BATCH}x{BATCH_CROP}x{BATCH_CROP} K={KERNELS} {dtype}"

    def target():
        res = cs.csc_construct(Dd, LMBDA, opt, device, backend).solve(S)
        cs.sync(device)
        return res.iterations

    its = benchmark.pedantic(target, rounds=ROUNDS, warmup_rounds=1)
    assert its.tolist() == [BATCH_ITERS] * BATCH
    _per_iteration(benchmark, BATCH_ITERS, images=BATCH)
    benchmark.extra_info["backend"] = backend

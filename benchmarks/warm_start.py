"""Amortised warm start: time and iterations to accuracy on a dataset case, warm against cold.

    python benchmarks/warm_start.py --out benchmarks/results/warmstart [--test 200 --size 128 ...]

The dataset case: ``--test`` held-out ``--size``² crops of SPORCO's example photographs
monarch, sail and tulips (grey, csc's Tikhonov highpass), coded with SPORCO's G:12x12x36
dictionary at λ ``--lmbda``; the predictor (:mod:`csc.nn.warmstart`) is trained on
``--train`` ``--train-size``² crops of other photographs (barbara, kodim23 and
scikit-image's camera, astronaut, coffee, chelsea), coded cold to ``--fit-tol``. Each
held-out image is then solved alone, one thread, cold (csc ADMM, SPORCO's defaults) and
warm (the same solver from the predicted code, the consistent dual and the training's ρ),
recording the objective on y at every iteration until the residuals fall below
``--ref-tol`` (or ``--iters``); F* per image is the lowest objective either run reached.
Times include the whole solve call (the prediction and the dual for the warm start); the
training's cost (coding the training crops, training) is reported and amortised over N
images. Writes ``warm_start.json``, ``warm_start.md`` and ``warm_start.png`` (``--report``
redraws them from the JSON). ``--encode`` also times ``encode_dataset`` warm against cold
(``encode_dataset.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bench import peers as bp  # noqa: E402

bp.single_thread()

import numpy as np  # noqa: E402
import torch  # noqa: E402

TRAIN_IMAGES = (("sporco", "barbara.png"), ("sporco", "kodim23.png"), ("skimage", "camera"), ("skimage", "astronaut"),
                ("skimage", "coffee"), ("skimage", "chelsea"))
TEST_IMAGES = (("sporco", "monarch.png"), ("sporco", "sail.png"), ("sporco", "tulips.png"))
LEVELS = (1e-3, 1e-4)


def photo(source: str, name: str) -> np.ndarray:
    """A grey photograph in [0, 1], float64."""
    if source == "sporco":
        from sporco import util

        return util.ExampleImages(scaled=True, gray=True).image(name).astype(np.float64)
    import skimage.color
    import skimage.data

    img = getattr(skimage.data, name)()
    img = skimage.color.rgb2gray(img) if img.ndim == 3 else img / 255.0
    return np.asarray(img, dtype=np.float64)


def crops(names, n: int, size: int, seed: int) -> np.ndarray:
    """n random size² crops, taken in turn from the photographs ``names`` (uniform positions)."""
    rng = np.random.default_rng(seed)
    imgs = [photo(*nm) for nm in names]
    out = []
    for i in range(n):
        im = imgs[i % len(imgs)]
        h, w = rng.integers(0, im.shape[0] - size + 1), rng.integers(0, im.shape[1] - size + 1)
        out.append(im[h:h + size, w:w + size])
    return np.stack(out)


def highpass(images: np.ndarray) -> torch.Tensor:
    from csc.pipeline.preprocess import Preprocess

    return Preprocess("highpass").forward(torch.from_numpy(images))[0]


def dictionary() -> torch.Tensor:
    from sporco import util

    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(util.convdicts()["G:12x12x36"], -1, 0), dtype=np.float64))


class Given:
    """A warm start handing over a prediction made (and timed) outside the solve."""

    def __init__(self, y, rho):
        self.y, self.rho = y, rho

    def warm_start(self, images, dictionary, lmbda):
        return self.y, self.rho


def trace(solver, s: torch.Tensor, predictor=None) -> dict:
    """One image's solve: per-iteration objective (on y) and wall time since the call, the
    iterations at which SPORCO's stopping test at 1e-3 and 1e-4 would have stopped it."""
    t0 = time.perf_counter()
    warm = None
    if predictor is not None:
        y0, rho = predictor.warm_start(s[None], solver.dictionary, solver.lmbda)
        warm = Given(y0, rho)
    res = solver.solve(s[None], warm_start=warm)
    wall = time.perf_counter() - t0
    st = res.stats[0]
    times = np.asarray(st.time) + (wall - float(st.time[-1]))  # the whole call: prediction, dual, set-up
    out = {"time": times.tolist(), "objective": np.asarray(st.objective).tolist(), "wall": wall}
    for tol in LEVELS:
        hit = np.flatnonzero((st.primal_residual < tol) & (st.dual_residual < tol))
        out[f"stop_{tol:g}"] = None if hit.size == 0 else {"iteration": int(hit[0] + 1), "time": float(times[hit[0]]),
                                                         "objective": float(st.objective[hit[0]])}
    return out


def run(a) -> dict:
    import csc
    from csc.nn.warmstart import WarmStartOptions, fit_warm_start, load_warm_start

    D = dictionary()
    rec = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "loadavg_start": os.getloadavg(),
           "cpu_count": os.cpu_count(), "threads": 1, "args": vars(a),
           "note": "the machine's 2 cores were shared with other jobs (load average recorded): iteration "
                   "counts are the reliable measure, times are indicative"}
    train = highpass(crops(TRAIN_IMAGES, a.train, a.train_size, seed=0))
    test = highpass(crops(TEST_IMAGES, a.test, a.size, seed=1))
    fit_solver = csc.ConvBPDN(D, a.lmbda, csc.CBPDNOptions(rel_stop_tol=a.fit_tol, max_iter=500, record_stats=False))
    wopts = WarmStartOptions(steps=a.steps, epochs=a.epochs, batch_size=a.batch_size, learning_rate=a.lr)
    saved = Path(a.out) / "predictor.npz"  # a rerun reuses the trained predictor (its record holds the costs)
    if saved.is_file():
        pred = load_warm_start(saved, D, a.lmbda, preprocessing={"kind": "highpass"})
    else:
        pred, _ = fit_warm_start(fit_solver, train, options=wopts, generator=torch.Generator().manual_seed(0),
                                 preprocessing={"kind": "highpass"}, progress=True)
        pred.save(saved)
    rec["training"] = dict(pred.record, rho=pred.rho)
    print(f"training: coded {a.train} crops in {pred.record['code_seconds']:.1f} s, trained in "
          f"{pred.record['train_seconds']:.1f} s; loss {pred.record['losses'][0]:.3f} → {pred.record['losses'][-1]:.3f}",
          flush=True)
    solver = csc.ConvBPDN(D, a.lmbda, csc.CBPDNOptions(rel_stop_tol=a.ref_tol, max_iter=a.iters, objective_on_y=True))
    rec["images"] = []
    trace(solver, test[0]), trace(solver, test[0], pred)  # warm-up: kernels compiled, FFT plans made
    for i in range(a.test):
        cold, warm = trace(solver, test[i]), trace(solver, test[i], pred)
        rec["images"].append({"cold": cold, "warm": warm})
        if i % 10 == 9 or i + 1 == a.test:
            rec["loadavg_end"] = os.getloadavg()
            _save(Path(a.out) / "warm_start.json", rec)  # partial results survive an interrupted run
            print(f"image {i}: cold {len(cold['time'])} it, warm {len(warm['time'])} it", flush=True)
    return rec


def _save(path: Path, rec: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rec, indent=1, default=float))
    os.replace(tmp, path)


def peers(rec: dict, a) -> None:
    """SPORCO's ADMM and PGM (``benchmarks/bench/peers.py``, one thread) on the first ``a.peers``
    held-out crops, as many iterations as csc's runs, and csc cold and warm again beside them
    (the same load), recorded in ``rec["peers"]``."""
    import csc
    from csc.nn.warmstart import load_warm_start

    Dt = dictionary()
    D = Dt.numpy()
    test = highpass(crops(TEST_IMAGES, a.peers, a.size, seed=1))
    pred = load_warm_start(Path(a.out) / "predictor.npz", Dt, a.lmbda, preprocessing={"kind": "highpass"})
    rec["peers"] = {"csc-admm (cold)": [], "csc-admm-warm": []}
    for i in range(a.peers):
        n = len(rec["images"][i]["cold"]["objective"])
        solver = csc.ConvBPDN(Dt, a.lmbda, csc.CBPDNOptions(rel_stop_tol=0.0, max_iter=n, objective_on_y=True))
        trace(solver, test[i]), trace(solver, test[i], pred)  # warm-up
        rec["peers"]["csc-admm (cold)"].append(trace(solver, test[i]))
        rec["peers"]["csc-admm-warm"].append(trace(solver, test[i], pred))
    test = test.numpy()
    L = bp.lipschitz(D, test.shape[1:])
    for name in ("sporco-admm", "sporco-pgm"):
        runs = []
        for i in range(a.peers):
            n = len(rec["images"][i]["cold"]["objective"])
            tm, obj = bp.run_engine(name, np.ascontiguousarray(test[i]), D, a.lmbda, n, L)
            runs.append({"time": tm.tolist(), "objective": obj.tolist()})
        rec["peers"][name] = runs
        print(f"{name}: {a.peers} images", flush=True)


def peer_table(rec: dict) -> list[str]:
    """Time to each level summed over the peers' images, every engine, and csc warm's ratio."""
    if "peers" not in rec:
        return []
    m = len(next(iter(rec["peers"].values())))
    imgs = rec["images"][:m]
    fstar = [min(min(r["cold"]["objective"]), min(r["warm"]["objective"]),
                 *(min(rec["peers"][p][i]["objective"]) for p in rec["peers"])) for i, r in enumerate(imgs)]
    n_all = len(rec["images"])
    train = rec["training"]["code_seconds"] + rec["training"]["train_seconds"]
    engines = rec["peers"]
    lines = ["", f"## Peers on the first {m} crops, run side by side (csc again, beside SPORCO; time to level "
                 f"summed over them; warm + training: the training's {train:.0f} s amortised over the {n_all} "
                 f"images, i.e. {train / n_all:.2f} s per image)",
             "", "| engine | to 1e-3 | to 1e-4 | ratio to csc warm + training, 1e-3 | 1e-4 |", "|---|---|---|---|---|"]
    totals = {}
    for name, runs in engines.items():
        tot = []
        for lv in LEVELS:
            hits = [bp.time_to(np.asarray(r["time"]), np.asarray(r["objective"]), fs, (lv,))[f"{lv:g}"]
                    for r, fs in zip(runs, fstar)]
            tot.append(None if any(h is None for h in hits) else sum(h["time"] for h in hits))
        totals[name] = tot
    ref = [None if t is None else t + train * m / n_all for t in totals["csc-admm-warm"]]
    for name, tot in totals.items():
        cells = ["not reached by all" if t is None else f"{t:.1f} s" for t in tot]
        ratios = ["—" if t is None or r is None else f"{t / r:.2f}×" for t, r in zip(tot, ref)]
        lines.append(f"| {name} | {' | '.join(cells)} | {' | '.join(ratios)} |")
    return lines


def encode_lines(path: Path) -> list[str]:
    """The ``--encode`` run's summary (encode_dataset.json), when there is one."""
    if not path.is_file():
        return []
    e = json.loads(path.read_text())
    c, w = e["runs"]["cold"], e["runs"]["warm"]
    tr = w["training"] or {}
    q = e["warm_minus_cold_relative_quantiles"]
    return ["", f"## encode_dataset, cold against warm ({e['images']} {e['size']}² crops, rel_stop_tol "
                f"{e['rel_stop_tol']}, float32, warm_start_train {e['warm_start_train']})", "",
            f"Load average {e['loadavg_start']} → {e['loadavg_end']}: the times are indicative only.", "",
            f"- cold: {c['seconds']:.0f} s, {c['images_per_second']:.2f} images/s",
            f"- warm: {w['seconds']:.0f} s, {w['images_per_second']:.2f} images/s, of which coding the "
            f"training images cold {tr.get('code_seconds', 0):.0f} s and training {tr.get('train_seconds', 0):.0f} s",
            "- final objectives, (F_warm − F_cold)/F_cold per image: " + ", ".join(f"{k} {v:.1e}" for k, v in q.items())]


def summarise(rec: dict) -> dict:
    """Per engine: iterations and seconds to each level (median, mean; total seconds over the
    images), the stopping test's iterations and final objectives, and the amortised totals."""
    imgs = rec["images"]
    fstar = [min(min(r["cold"]["objective"]), min(r["warm"]["objective"])) for r in imgs]
    train_s = rec["training"]["code_seconds"] + rec["training"]["train_seconds"]
    out = {"images": len(imgs), "training_seconds": train_s}
    for eng in ("cold", "warm"):
        e = {}
        for lv in LEVELS:
            hits = [bp.time_to(np.asarray(r[eng]["time"]), np.asarray(r[eng]["objective"]), fs, (lv,))[f"{lv:g}"]
                    for r, fs in zip(imgs, fstar)]
            its = np.array([np.nan if h is None else h["iteration"] for h in hits])
            secs = np.array([np.nan if h is None else h["time"] for h in hits])
            e[f"{lv:g}"] = {"median_iterations": float(np.nanmedian(its)), "mean_iterations": float(np.nanmean(its)),
                            "not_reached": int(np.isnan(its).sum()), "total_seconds": float(np.nansum(secs))}
            stops = [r[eng][f"stop_{lv:g}"] for r in imgs]
            ok = [s for s in stops if s is not None]
            gaps = np.array([(s["objective"] - fs) / fs for s, fs in zip(stops, fstar) if s is not None])
            e[f"stop_{lv:g}"] = {"median_iterations": float(np.median([s["iteration"] for s in ok])) if ok else None,
                                 "total_seconds": float(sum(s["time"] for s in ok)), "not_stopped": len(stops) - len(ok),
                                 "relative_gap_quantiles": np.quantile(gaps, [0, 0.5, 0.9, 1]).tolist() if ok else None}
        out[eng] = e
    return out


def report(rec: dict, out: Path) -> None:
    s = summarise(rec)
    rec["summary"] = s
    n, T = s["images"], s["training_seconds"]
    lines = [f"# Amortised warm start: {n} held-out crops", "",
             f"Started {rec['started']}; load average {rec['loadavg_start']} → {rec.get('loadavg_end')} on "
             f"{rec['cpu_count']} CPUs, one thread. {rec['note']}. F* per image is the lowest objective either "
             f"run reached in {rec['args']['iters']} iterations (the figure's drop at the last iteration is that "
             "minimum, not a convergence).", "",
             f"Predictor: {rec['args']['steps']} unrolled ISTA steps, trained on {rec['args']['train']} "
             f"{rec['args']['train_size']}² crops of other photographs (coding {rec['training']['code_seconds']:.1f} s, "
             f"training {rec['training']['train_seconds']:.1f} s, loss {rec['training']['losses'][0]:.3f} → "
             f"{rec['training']['losses'][-1]:.3f}, ρ₀ {rec['training']['rho']:.3g}).", "",
             "| level | cold median it | warm median it | it ratio cold/warm | cold s (all images) | warm s | "
             "warm s + training | time ratio (amortised) |", "|---|---|---|---|---|---|---|---|"]
    for key, what in [(f"{lv:g}", f"F ≤ (1 + {lv:g}) F*") for lv in LEVELS] + \
            [(f"stop_{lv:g}", f"stopping test at {lv:g}") for lv in LEVELS]:
        c, w = s["cold"][key], s["warm"][key]
        ci, wi = c["median_iterations"], w["median_iterations"]
        ratio = "—" if not ci or not wi else f"{ci / wi:.2f}×"
        if key.startswith("stop"):  # images whose run stopped within the iterations
            ci = f"{ci} ({n - c['not_stopped']} of {n} stopped)"
            wi = f"{wi} ({n - w['not_stopped']} of {n} stopped)"
        lines.append(f"| {what} | {ci} | {wi} | {ratio} | {c['total_seconds']:.1f} | {w['total_seconds']:.1f} | "
                     f"{w['total_seconds'] + T:.1f} | {c['total_seconds'] / (w['total_seconds'] + T):.2f}× |")
    for lv in LEVELS:
        saved = (s["cold"][f"{lv:g}"]["total_seconds"] - s["warm"][f"{lv:g}"]["total_seconds"]) / n
        even = f"the training pays back after {T / saved:.0f} images" if saved > 0 else "the training never pays back"
        lines.append(f"\nTo {lv:g}: warm saves {saved:.3f} s per image (cold − warm, mean over the images); {even}.")
    lines += ["", "Final objectives at the stopping test, (F − F*)/F* quantiles 0, 0.5, 0.9, 1:"]
    for eng in ("cold", "warm"):
        for lv in LEVELS:
            q = s[eng][f"stop_{lv:g}"]["relative_gap_quantiles"]
            lines.append(f"- {eng}, {lv:g}: {q and ', '.join(f'{v:.2e}' for v in q)}")
    lines += peer_table(rec) + encode_lines(out / "encode_dataset.json")
    (out / "warm_start.md").write_text("\n".join(lines) + "\n")
    _save(out / "warm_start.json", rec)
    print("\n".join(lines))
    _plot(rec, out / "warm_start.png")


def _plot(rec: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    imgs = rec["images"]
    fstar = [min(min(r["cold"]["objective"]), min(r["warm"]["objective"])) for r in imgs]
    for eng, colour in (("cold", "C0"), ("warm", "C1")):
        L = max(len(r[eng]["objective"]) for r in imgs)
        rel = np.full((len(imgs), L), np.nan)
        for i, (r, fs) in enumerate(zip(imgs, fstar)):
            v = np.maximum((np.asarray(r[eng]["objective"]) - fs) / fs, 1e-12)
            rel[i, :len(v)] = v
        med = np.nanmedian(rel, 0)
        lo, hi = np.nanquantile(rel, 0.1, 0), np.nanquantile(rel, 0.9, 0)
        axes[0].semilogy(np.arange(1, L + 1), med, colour, label=f"{eng} (median, 10–90%)")
        axes[0].fill_between(np.arange(1, L + 1), lo, hi, color=colour, alpha=0.2)
        stops = [r[eng]["stop_0.001"]["iteration"] for r in imgs if r[eng]["stop_0.001"]]
        axes[1].hist(stops, bins=30, alpha=0.6, color=colour, label=eng)
    for lv in LEVELS:
        axes[0].axhline(lv, color="0.7", lw=0.5)
    axes[0].set(xlabel="iteration", ylabel="(F − F*)/F*", title="held-out crops")
    axes[1].set(xlabel="iterations to the stopping test at 1e-3", ylabel="images")
    axes[0].legend()
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(png, dpi=90)


def encode_benchmark(a) -> dict:
    """``encode_dataset`` cold against warm (``warm_start_train``: the predictor trained on the
    first images inside the timed run) on the same uint8 crops and settings: images per second,
    and each image's final objective F (float64, from the stored float32 codes)."""
    import shutil
    import tempfile

    from csc.core import ops
    from csc.dictionary.io import save_dictionary
    from csc.pipeline.store import EncodeSettings, encode_dataset, preprocess_images

    D = dictionary()
    imgs = np.round(crops(TEST_IMAGES, a.encode_images, a.encode_size, seed=2) * 255).astype(np.uint8)
    labels = np.zeros(len(imgs), np.int64)
    rec = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "loadavg_start": os.getloadavg(), "threads": 1,
           "images": len(imgs), "size": a.encode_size, "warm_start_train": a.encode_train, "lmbda": a.lmbda,
           "rel_stop_tol": a.encode_tol, "max_iter": 500, "shard_size": a.encode_shard, "runs": {}}
    tmp = Path(tempfile.mkdtemp(prefix="csc-warm-encode-"))
    try:
        dfile = str(save_dictionary(tmp / "G12x12x36.npz", D))
        for name, train in (("cold", 0), ("warm", a.encode_train)):
            st = EncodeSettings(dictionary=dfile, lmbda=a.lmbda, max_iter=500, rel_stop_tol=a.encode_tol,
                                value_dtype="float32", shard_size=a.encode_shard, warm_start_train=train)
            t0 = time.perf_counter()
            store = encode_dataset(imgs, labels, tmp / name, st, device="cpu")
            seconds = time.perf_counter() - t0
            S = preprocess_images(imgs, st, dtype=torch.float64)
            y = store.dense(dtype=torch.float64)
            F = 0.5 * (ops.synthesis(D, y) - S).square().sum((1, 2)) + a.lmbda * y.abs().sum((1, 2, 3))
            rec["runs"][name] = {"seconds": seconds, "images_per_second": len(imgs) / seconds,
                                 "objective": F.tolist(), "training": store.manifest.get("warm_start_training")}
            print(f"encode {name}: {seconds:.1f} s, {len(imgs) / seconds:.2f} images/s", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    Fc, Fw = np.asarray(rec["runs"]["cold"]["objective"]), np.asarray(rec["runs"]["warm"]["objective"])
    rel = (Fw - Fc) / Fc
    rec["warm_minus_cold_relative_quantiles"] = dict(zip(("min", "10%", "50%", "90%", "max"),
                                                         np.quantile(rel, [0, 0.1, 0.5, 0.9, 1]).tolist()))
    rec["loadavg_end"] = os.getloadavg()
    return rec


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/results/warmstart")
    p.add_argument("--test", type=int, default=200)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--train", type=int, default=64)
    p.add_argument("--train-size", type=int, default=48)
    p.add_argument("--lmbda", type=float, default=0.05)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--fit-tol", type=float, default=1e-3)
    p.add_argument("--ref-tol", type=float, default=1e-5)
    p.add_argument("--iters", type=int, default=160)
    p.add_argument("--report", action="store_true")
    p.add_argument("--peers", type=int, default=0,
                   help="add SPORCO's ADMM and PGM on the first PEERS crops to an existing warm_start.json")
    p.add_argument("--encode", action="store_true", help="only the encode_dataset benchmark (encode_dataset.json)")
    p.add_argument("--encode-images", type=int, default=192)
    p.add_argument("--encode-size", type=int, default=64)
    p.add_argument("--encode-train", type=int, default=64)
    p.add_argument("--encode-shard", type=int, default=64)
    p.add_argument("--encode-tol", type=float, default=1e-3)
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.encode:
        rec = encode_benchmark(a)
        _save(out / "encode_dataset.json", rec)
        print(json.dumps({k: v for k, v in rec.items() if k != "runs"}, indent=1, default=float))
        return
    rec = json.loads((out / "warm_start.json").read_text()) if a.report or a.peers else run(a)
    if a.peers:
        peers(rec, a)
    report(rec, out)


if __name__ == "__main__":
    main()

"""Measured comparison with the paper's findings on the built-in photographs.

For every available shipped dictionary (``csc.science.demo.available_dictionaries()``: the two
log-Gabor ones now, the learned ones when they are added to ``dictionaries/``) at the
same λ: sparseness and PSNR of each photograph's codes (paper Fig. 2d), and pruning
curves (Fig. 6a) with absolute thresholds ``linspace(0.001, 0.5, 6)`` and relative ones
0.25 / 0.5 (``|x| < c·max|x|``, the authors' classifier).

    # one configuration → benchmarks/results/paper_comparison_<tag>.json and .png
    python benchmarks/paper_comparison.py --preprocess lcn --lmbda 0.05 --crop 256 --max-iter 100
    python benchmarks/paper_comparison.py --preprocess highpass --lmbda 0.01 --crop 256 --max-iter 100
    # the authors' Fig. 2 settings (csc.science.protocol.Fig2Protocol: LCN, 256² crops, λ 1e-3 and
    # 1e-2, 100 iterations, RelStopTol 1e-4), their kernel normalisation for the log-Gabor
    # dictionaries, and the post-learning dictionaries learned their way (csc paper learn)
    python benchmarks/paper_comparison.py --authors
    # the Markdown summary over every paper_comparison_*.json present (--replot: redraw PNGs)
    python benchmarks/paper_comparison.py --report

Paired statistics over photographs: Wilcoxon signed-rank test (scipy) of the per-image
differences between two dictionaries (the paper, with 1145 unpaired images, used
Mann–Whitney U; the same photographs are coded by every dictionary here, so the paired
test is the right one).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

import csc  # noqa: E402
from csc.science.demo import DemoConfig, available_dictionaries, plot_metric_distribution, run_demo  # noqa: E402
from csc.science.sweep import DEFAULT_THRESHOLDS, PruningSweep, plot_pruning_curves, pruning_sweep  # noqa: E402

RESULTS = ROOT / "results"
RELATIVE = (0.25, 0.5)


def _wilcoxon(a, b) -> dict:
    from scipy.stats import wilcoxon

    a, b = np.asarray(a, float), np.asarray(b, float)
    d = a - b
    out = {"median_difference": float(np.median(d)), "n_first_greater": int((d > 0).sum()), "n": int(d.size)}
    try:
        out["p"] = float(wilcoxon(a, b).pvalue) if np.any(d != 0) else 1.0
    except ValueError:
        out["p"] = None
    return out


AUTHORS_DICTS = ROOT / "paper" / "dicts" / "authors"
AUTHORS_POST = ("homogeneous-learned", "heterogeneous-learned")  # shipped, learned by `csc paper learn`


def authors_dictionaries() -> list[str]:
    """The log-Gabor dictionaries with the authors' kernel normalisation (median removed,
    max |.| = 1), written under benchmarks/paper/dicts/authors/ (file stems homogeneous and
    heterogeneous, so the comparisons pair them), then the post-learning ones."""
    from csc.dictionary.loggabor import loggabor_dictionary

    AUTHORS_DICTS.mkdir(parents=True, exist_ok=True)
    out = []
    for preset in ("homogeneous", "heterogeneous"):
        path = AUTHORS_DICTS / f"{preset}.npz"
        if not path.is_file():
            D, _ = loggabor_dictionary(preset, size=12, normalise="authors")
            csc.save_dictionary(path, D, {"name": preset, "normalise": "authors", "preset": preset})
        out.append(str(path))
    return out + list(AUTHORS_POST)


def run_authors(args) -> list[Path]:
    """One configuration per λ of the authors' Fig. 2 protocol."""
    from csc.science.protocol import Fig2Protocol

    p = Fig2Protocol()
    paths = []
    for lmbda in (args.authors_lmbdas or p.lmbdas):
        a = replace_args(args, preprocess=p.preprocess, lmbda=lmbda, crop=p.crop, max_iter=p.max_iter,
                         rel_stop_tol=p.rel_stop_tol, dictionaries=args.dictionaries or authors_dictionaries(),
                         tag=args.tag or f"authors_lmbda{lmbda:g}")
        paths.append(run(a))
    return paths


def replace_args(args, **changes):
    d = dict(vars(args))
    d.update(changes)
    return argparse.Namespace(**d)


def _distribution_statistics(codes: torch.Tensor, D: torch.Tensor) -> dict:
    """Per photograph, Fig. 4's and Fig. 5's fits: the magnitude family with the lowest BIC
    and the exponential decay b; the orientation model with the lowest BIC and the two
    double von Mises means (degrees). Kernel orientations from ``csc.fit_kernel_params``
    (exact for log-Gabor kernels, modulo 180°)."""
    from csc.science.analysis import batch_coefficient_statistics, batch_orientation_statistics

    theta = csc.fit_kernel_params(D.double()).theta
    distinct = np.unique(np.round(np.degrees(theta) * 2) % 360).size  # log-Gabor grids: 12 or 72 orientations
    mags = batch_coefficient_statistics(codes)
    oris = batch_orientation_statistics(codes, theta, bins=distinct if distinct <= 72 else 36)
    return {"fig4": {"best_family": [m.best_family for m in mags], "exponential_b": [float(m.b) for m in mags]},
            "fig5": {"best_model": [o.best_model for o in oris],
                     "mu_degrees": [[c.mu_degrees for c in o.components] for o in oris],
                     "kappa": [[c.kappa for c in o.components] for o in oris]}}


def run(args) -> Path:
    torch.set_num_threads(args.threads)
    tag = args.tag or f"{args.preprocess}_lmbda{args.lmbda:g}_crop{args.crop}"
    cfg = DemoConfig(lmbda=args.lmbda, crop=args.crop, max_iter=args.max_iter, preprocess=args.preprocess,
                     rel_stop_tol=args.rel_stop_tol,
                     images=tuple(args.images) if args.images else None, device=args.device,
                     dictionaries=tuple(args.dictionaries) if args.dictionaries else None)
    t0 = time.perf_counter()
    res = run_demo(cfg, None, progress=not args.quiet, figure=False,
                   log=lambda m: print(m, flush=True))
    from csc.science.demo import prepare_photographs

    images, _, _, scale, offset = prepare_photographs(res.names, cfg.crop, cfg.preprocess)
    report = {
        "settings": {**{k: v for k, v in vars(args).items() if k not in ("report",)}, "tag": tag,
                     "thresholds_absolute": list(DEFAULT_THRESHOLDS), "thresholds_relative": list(RELATIVE)},
        "images": list(res.names),
        "encode_seconds": time.perf_counter() - t0,
        "dictionaries": {},
    }
    sweeps_abs, sweeps_rel = {}, {}
    for name, s in res.scores.items():
        label = Path(name).stem if str(name).endswith(".npz") else name  # files: their stem pairs them by name
        codes, D = res.codes[name], res.dictionaries[name]
        sa = pruning_sweep(codes, D, images, DEFAULT_THRESHOLDS, lowpass=offset, scale=scale, names=res.names,
                           label=label)
        sr = pruning_sweep(codes, D, images, RELATIVE, relative=True, lowpass=offset, scale=scale,
                           names=res.names, label=label)
        sweeps_abs[label], sweeps_rel[label] = sa, sr
        report["dictionaries"][label] = {
            **s.to_dict(),
            **_distribution_statistics(codes, D),
            "max_abs_coefficient": [float(v) for v in codes.abs().amax(dim=(1, 2, 3))],
            "pruning_absolute": sa.to_dict(),
            "pruning_relative": sr.to_dict(),
        }
        print(f"{label}: pruned medians PSNR {np.round(sa.median_psnr, 2).tolist()} "
              f"sparseness {np.round(sa.median_sparseness, 5).tolist()}", flush=True)
    cmp = heterogeneous_vs_homogeneous(report["dictionaries"])
    if cmp:
        report["heterogeneous_vs_homogeneous"] = cmp
    report["total_seconds"] = time.perf_counter() - t0
    RESULTS.mkdir(parents=True, exist_ok=True)
    jpath = RESULTS / f"paper_comparison_{tag}.json"
    jpath.write_text(json.dumps(report, indent=2))
    _figure(res, sweeps_abs, sweeps_rel, RESULTS / f"paper_comparison_{tag}.png")
    print(f"wrote {jpath} and .png ({report['total_seconds']:.0f} s)")
    return jpath


def heterogeneous_vs_homogeneous(d: dict) -> dict | None:
    """Paired tests of the heterogeneous against the homogeneous dictionary from their JSON
    records (per photograph sparseness, PSNR and pruning sweeps); None without both."""
    if "homogeneous" not in d or "heterogeneous" not in d:
        return None
    he, ho = d["heterogeneous"], d["homogeneous"]
    cmp = {"sparseness_heterogeneous_minus_homogeneous": _wilcoxon(he["sparseness"], ho["sparseness"]),
           "psnr_heterogeneous_minus_homogeneous": _wilcoxon(he["psnr"], ho["psnr"]),
           "pruning_absolute": [], "pruning_relative": []}
    for key in ("pruning_absolute", "pruning_relative"):
        sw = {k: _sweep_from_dict(d[k][key]) for k in ("heterogeneous", "homogeneous")}
        for i, c in enumerate(sw["heterogeneous"].thresholds):
            cmp[key].append({
                "threshold": float(c),
                "psnr_drop_heterogeneous_minus_homogeneous": _wilcoxon(sw["heterogeneous"].psnr_drop[i],
                                                                       sw["homogeneous"].psnr_drop[i]),
                "psnr_heterogeneous_minus_homogeneous": _wilcoxon(sw["heterogeneous"].psnr[i], sw["homogeneous"].psnr[i]),
                "median_psnr_drop": {k: float(np.median(v.psnr_drop[i])) for k, v in sw.items()},
            })
    return cmp


def _sweep_from_dict(d: dict) -> PruningSweep:
    return PruningSweep(
        thresholds=np.asarray(d["thresholds"], float), relative=d["relative"],
        sparseness=np.asarray(d["sparseness"], float), psnr=np.asarray(d["psnr"], float),
        unpruned_sparseness=np.asarray(d["unpruned_sparseness"], float),
        unpruned_psnr=np.asarray(d["unpruned_psnr"], float), metric=d["metric"], names=tuple(d["names"]),
        label=d["label"])


def replot(jpath: Path) -> Path:
    """Redraw a configuration's PNG from its JSON."""
    r = json.loads(Path(jpath).read_text())
    st = r["settings"]
    d = r["dictionaries"]
    path = Path(jpath).with_suffix(".png")
    _draw({k: np.asarray(v["sparseness"]) for k, v in d.items()}, {k: np.asarray(v["psnr"]) for k, v in d.items()},
          {k: _sweep_from_dict(v["pruning_absolute"]) for k, v in d.items()},
          {k: _sweep_from_dict(v["pruning_relative"]) for k, v in d.items()},
          f"{len(r['images'])} built-in photographs, central {st['crop']}x{st['crop']}, {st['preprocess']}, "
          f"λ = {st['lmbda']:g}, ≤ {st['max_iter']} ADMM iterations", path)
    return path


def _figure(res, sweeps_abs, sweeps_rel, path: Path) -> None:
    cfg = res.config
    _draw({k: v.sparseness for k, v in res.scores.items()}, {k: v.psnr for k, v in res.scores.items()},
          sweeps_abs, sweeps_rel,
          f"{len(res.names)} built-in photographs, central {cfg.crop}x{cfg.crop}, {cfg.preprocess}, "
          f"λ = {cfg.lmbda:g}, ≤ {cfg.max_iter} ADMM iterations", path)


def _draw(sparse, psnr, sweeps_abs, sweeps_rel, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axs = plt.subplots(2, 2, figsize=(12, 9), layout="constrained")
    plot_metric_distribution(axs[0, 0], sparse, "sparseness (fraction of zeros)")
    axs[0, 0].set_title("sparseness per photograph (no pruning)")
    plot_metric_distribution(axs[0, 1], psnr, "PSNR (dB)")
    axs[0, 1].set_title("PSNR per photograph (no pruning)")
    plot_pruning_curves(axs[1, 0], sweeps_abs, xscale="logit")
    plot_pruning_curves(axs[1, 1], sweeps_rel, xscale="logit")
    fig.suptitle(title)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fmt_p(d) -> str:
    p = d.get("p")
    return "n/a" if p is None else (f"{p:.2g}")


HELD_OUT = ("camera", "astronaut")  # not used by csc learn for the shipped learned dictionaries
LEARNED_SUFFIXES = ("-learned", "-batch-learned")  # the paper's post-learning ones; csc's batch-learned ones


def _learned_findings(r: dict) -> list[str]:
    """Findings about the learned dictionaries (paper §3.1): learning raises PSNR and
    sparseness; after learning all dictionaries perform alike."""
    d = r["dictionaries"]
    names = r["images"]
    if not any(k.endswith("-learned") for k in d):
        return []
    held = [i for i, n in enumerate(names) if n in HELD_OUT]
    lines = ["", "Findings about the learned dictionaries (per photograph: learned minus start; "
                 f"held out = {', '.join(names[i] for i in held)}):", "",
             "| pair | PSNR Δ held out (dB) | sparseness Δ held out | PSNR Δ all 11: median, count > 0, p | "
             "sparseness Δ all 11: median, count > 0, p |", "|---|---|---|---|---|"]

    def row(a, b):
        pa, pb = np.asarray(d[a]["psnr"]), np.asarray(d[b]["psnr"])
        sa, sb = np.asarray(d[a]["sparseness"]), np.asarray(d[b]["sparseness"])
        wp, ws = _wilcoxon(pa, pb), _wilcoxon(sa, sb)
        hp = ", ".join(f"{v:+.2f}" for v in (pa - pb)[held])
        hs = ", ".join(f"{v:+.5f}" for v in (sa - sb)[held])
        return (f"| {a} − {b} | {hp} | {hs} | {wp['median_difference']:+.2f}, {wp['n_first_greater']}/{wp['n']}, "
                f"{_fmt_p(wp)} | {ws['median_difference']:+.5f}, {ws['n_first_greater']}/{ws['n']}, {_fmt_p(ws)} |")

    pairs = [(f"{st}{sfx}", st) for sfx in LEARNED_SUFFIXES for st in ("homogeneous", "heterogeneous")]
    for sfx in LEARNED_SUFFIXES:
        pairs += [(f"heterogeneous{sfx}", f"homogeneous{sfx}"), (f"heterogeneous{sfx}", f"random{sfx}"),
                  (f"homogeneous{sfx}", f"random{sfx}")]
    for a, b in pairs:
        if a in d and b in d:
            lines.append(row(a, b))
    learned = [k for k in d if k.endswith("-learned")]
    med_p = {k: d[k]["median_psnr"] for k in learned}
    med_s = {k: d[k]["median_sparseness"] for k in learned}
    starts = [(a, b) for a, b in pairs[:4] if a in d and b in d]

    def med(pair, key):
        return float(np.median(np.asarray(d[pair[0]][key]) - np.asarray(d[pair[1]][key])))

    up_p = {pair[0]: med(pair, "psnr") > 0 for pair in starts}
    up_s = {pair[0]: med(pair, "sparseness") > 0 for pair in starts}

    def verdict(flags):
        return "holds" if all(flags.values()) else ("does not hold" if not any(flags.values()) else
                                                    "holds for " + ", ".join(k for k, v in flags.items() if v) + " only")

    lines += ["", f"- *Learning raises PSNR* (paper: p < 0.001 for both): **{verdict(up_p)}** here "
                  "(median over all 11 photographs; the held-out photographs are in the table).",
              f"- *Learning raises sparseness* (paper: p < 0.001 for both): **{verdict(up_s)}** here.",
              f"- *After learning all dictionaries perform alike* (paper: p = 0.18–0.99): median PSNR of the learned "
              f"dictionaries spans {min(med_p.values()):.2f}–{max(med_p.values()):.2f} dB and median sparseness "
              f"{min(med_s.values()):.5f}–{max(med_s.values()):.5f}, against a gap of "
              f"{abs(d['heterogeneous']['median_psnr'] - d['homogeneous']['median_psnr']):.2f} dB between the two "
              "dictionaries before learning (pairwise rows above: differences of a fraction of a dB, some "
              "consistent in sign over photographs)."]
    return lines


def _cardinal_distance(mu: float) -> float:
    """Degrees from ``mu`` (orientation, degrees) to the nearest of 0° and 90°."""
    m = mu % 90.0
    return min(m, 90.0 - m)


def _distribution_findings(r: dict) -> list[str]:
    """Fig. 4 (magnitudes: exponential decay, BIC) and Fig. 5 (orientations: double von
    Mises peaking at the cardinals, BIC), per dictionary, over the photographs."""
    d = {k: v for k, v in r["dictionaries"].items() if "fig4" in v}
    if not d:
        return []
    lines = ["", "Coefficient distributions (Fig. 4, 5), per dictionary over the photographs:", "",
             "| dictionary | lowest-BIC magnitude family (count) | median exponential b | lowest-BIC orientation "
             "model (count) | median distance of the two von Mises means to 0°/90° |", "|---|---|---|---|---|"]
    verdict4, verdict5 = {}, {}
    for name, v in d.items():
        fam, mod = v["fig4"]["best_family"], v["fig5"]["best_model"]
        cnt = lambda xs: ", ".join(f"{k} {xs.count(k)}" for k in sorted(set(xs), key=xs.count, reverse=True))  # noqa: E731
        dist = [max(_cardinal_distance(m) for m in mus) for mus in v["fig5"]["mu_degrees"]]
        lines.append(f"| {name} | {cnt(fam)} | {np.median(v['fig4']['exponential_b']):.3g} | {cnt(mod)} | "
                     f"{np.median(dist):.1f}° |")
        verdict4[name] = fam.count("exponential") > len(fam) / 2
        verdict5[name] = mod.count("double_von_mises") > len(mod) / 2 and np.median(dist) < 10

    def say(flags):
        yes = [k for k, f in flags.items() if f]
        return "holds" if len(yes) == len(flags) else ("does not hold" if not yes else "holds for " + ", ".join(yes) + " only")

    return lines + ["", f"- *Coefficient magnitudes decay exponentially, the exponential having the lowest BIC* "
                        f"(Fig. 4a, b): **{say(verdict4)}** here (majority of photographs).",
                    f"- *Orientations follow a double von Mises distribution peaking at the cardinal orientations* "
                    f"(Fig. 5a, b): **{say(verdict5)}** here (double von Mises lowest BIC on most photographs and "
                    "both means within 10° of 0°/90°)."]


def _configurations(files: list[Path]) -> list[tuple[str, list[Path], dict]]:
    """(title, files, record) per configuration: the authors' settings first, each λ's parts
    (``authors_pre_lmbda<λ>``: log-Gabor dictionaries, ``authors_<other>_lmbda<λ>``: the
    post-learning ones, coded in separate runs with the same settings and photographs) merged
    into one record; then csc's earlier settings."""
    authors: dict[str, list[Path]] = {}
    others = []
    for f in files:
        tag = f.stem.removeprefix("paper_comparison_")
        if tag.startswith("authors_") and tag.count("_") >= 2:  # authors_<part>_lmbda<λ>
            authors.setdefault(tag.rsplit("_", 1)[1], []).append(f)
        else:
            others.append(f)
    out = []
    for key in sorted(authors, key=lambda k: -float(k.removeprefix("lmbda"))):
        parts = sorted(authors[key], key=lambda f: ("_pre_" not in f.stem, f.stem))  # pre first
        recs = [json.loads(f.read_text()) for f in parts]
        r = recs[0]
        for extra in recs[1:]:
            if extra["images"] != r["images"] or extra["settings"]["lmbda"] != r["settings"]["lmbda"]:
                raise ValueError(f"{extra['settings']['tag']}: other photographs or λ than {r['settings']['tag']}")
            r["dictionaries"].update(extra["dictionaries"])
            r["total_seconds"] += extra["total_seconds"]
        r["dictionaries"] = {(Path(k).stem if k.endswith(".npz") else k): v for k, v in r["dictionaries"].items()}
        r["heterogeneous_vs_homogeneous"] = heterogeneous_vs_homogeneous(r["dictionaries"])
        out.append(("Authors' settings", parts, r))
    for f in others:
        out.append(("csc's earlier settings (kept for comparison)", [f], json.loads(f.read_text())))
    return out


def report() -> Path:
    files = sorted(RESULTS.glob("paper_comparison_*.json"))
    if not files:
        raise SystemExit("no benchmarks/results/paper_comparison_*.json: run a configuration first")
    lines = ["# Paper comparison on the built-in photographs", "",
             "Generated by `python benchmarks/paper_comparison.py --report` from the JSON files next to this one.",
             "Photographs: the 11 natural photographs bundled with scikit-image (`csc.pipeline.sources.folders."
             "builtin_photographs`), gray, central crop. Every dictionary coded at the same λ. PSNR: "
             "`csc.psnr` (SPORCO's form) in image space. Paired tests over photographs: Wilcoxon "
             "signed-rank (p), with the count of photographs where heterogeneous > homogeneous.", ""]
    header = len(lines)
    for title, parts, r in _configurations(files):
        st = r["settings"]
        names = ", ".join(f"`{f.name}`, `{f.with_suffix('.png').name}`" for f in parts)
        lines += [f"## {title}: {st['preprocess']}, λ = {st['lmbda']:g}, crop {st['crop']}, ≤ {st['max_iter']} "
                  f"iterations, RelStopTol {st.get('rel_stop_tol', 1e-3):g}",
                  "", f"Files: {names}. Encoding and sweeps took "
                      f"{r['total_seconds']:.0f} s ({st['threads']} thread(s), shared machine).", "",
                  "| dictionary | median PSNR (dB) | median sparseness | median max abs x | median iterations |",
                  "|---|---|---|---|---|"]
        for name, d in r["dictionaries"].items():
            lines.append(f"| {name} | {d['median_psnr']:.2f} | {d['median_sparseness']:.5f} | "
                         f"{np.median(d['max_abs_coefficient']):.3g} | {int(np.median(d['iterations']))} |")
        lines += ["", "Pruning, median PSNR (dB) / median sparseness at each threshold:", "",
                  "| dictionary | " + " | ".join(
                      [f"c = {c:.3g}" for c in st["thresholds_absolute"]]
                      + [f"c = {c:g}·max" for c in st["thresholds_relative"]]) + " |",
                  "|---|" + "---|" * (len(st["thresholds_absolute"]) + len(st["thresholds_relative"]))]
        for name, d in r["dictionaries"].items():
            cells = [f"{p:.2f} / {s:.4f}" for p, s in zip(d["pruning_absolute"]["median_psnr"],
                                                         d["pruning_absolute"]["median_sparseness"])]
            cells += [f"{p:.2f} / {s:.4f}" for p, s in zip(d["pruning_relative"]["median_psnr"],
                                                          d["pruning_relative"]["median_sparseness"])]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        cmp = r.get("heterogeneous_vs_homogeneous")
        if cmp:
            n = cmp["sparseness_heterogeneous_minus_homogeneous"]["n"]
            sp, ps = cmp["sparseness_heterogeneous_minus_homogeneous"], cmp["psnr_heterogeneous_minus_homogeneous"]
            sparser = sp["median_difference"] > 0
            lower = ps["median_difference"] < 0
            lines += ["", "Findings (heterogeneous vs homogeneous, before learning):", "",
                      f"- *Heterogeneous is sparser* (paper: yes, p < 0.001): **{'holds' if sparser else 'does not hold'}"
                      f"** here — median difference {sp['median_difference']:+.5f}, heterogeneous sparser on "
                      f"{sp['n_first_greater']}/{n} photographs, p = {_fmt_p(sp)}.",
                      f"- *Heterogeneous has lower PSNR* (paper: yes, p < 0.001): **{'holds' if lower else 'does not hold'}"
                      f"** here — median difference {ps['median_difference']:+.2f} dB, heterogeneous higher on "
                      f"{ps['n_first_greater']}/{n} photographs, p = {_fmt_p(ps)}."]
            rows = []
            for key, label in (("pruning_absolute", "c"), ("pruning_relative", "c·max")):
                for e in cmp[key]:
                    dd = e["psnr_drop_heterogeneous_minus_homogeneous"]
                    rows.append(f"| {e['threshold']:.3g} ({label}) | {e['median_psnr_drop']['homogeneous']:+.2f} | "
                                f"{e['median_psnr_drop']['heterogeneous']:+.2f} | {dd['n_first_greater']}/{dd['n']} | "
                                f"{_fmt_p(dd)} |")
            hi = [e for e in cmp["pruning_absolute"] if e["threshold"] > 0.3]
            resilient = all(e["psnr_drop_heterogeneous_minus_homogeneous"]["median_difference"] > 0 for e in hi)
            signif = all((e["psnr_drop_heterogeneous_minus_homogeneous"]["p"] or 1) < 0.05 for e in hi)
            lines += [f"- *Heterogeneous is more resilient to pruning* (paper: PSNR loss smaller, p < 0.05 for "
                      f"c > 0.3): **{'holds' if resilient else 'does not hold'}** here for the absolute cut-offs "
                      f"c > 0.3 (median PSNR loss smaller for heterogeneous at every such c: {resilient}; "
                      f"difference significant, p < 0.05, at every such c: {signif}). PSNR loss = PSNR(pruned) − PSNR(unpruned), per photograph:",
                      "", "| threshold | median loss, homogeneous (dB) | median loss, heterogeneous (dB) | "
                          "photographs where heterogeneous loses less | p |", "|---|---|---|---|---|", *rows]
        lines += _distribution_findings(r)
        lines += _learned_findings(r)
        lines.append("")
    lines += ["## Reading", "",
              "- **The authors' settings reproduce the paper's pre-learning claims.** With their kernel "
              "normalisation (median removed, max |·| = 1, so ℓ2 norms 1.5–3.9 and a λ that weighs each kernel "
              "differently), LCN, 256² crops and their λ, the heterogeneous dictionary is sparser *and* has the "
              "lower PSNR on 11/11 photographs at λ = 1e-2 (10/11 at 1e-3), and it loses less PSNR under absolute "
              "pruning — the three claims of Fig. 2d and Fig. 6a. csc's earlier configurations (unit-norm "
              "kernels, sections below) found the heterogeneous PSNR higher: the kernel normalisation, not the "
              "solver, decides that claim.",
              "- **Learning the authors' way does not keep the kernels log-Gabor.** The post-learning "
              "dictionaries (`csc paper learn`, the authors' online protocol) fit log-Gabor kernels with a median "
              "relative residual of 0.81 (heterogeneous start) and 0.95 (homogeneous start), against 0 before "
              "learning; their fitted θ₀ moves little (median 2.4–2.7°). The authors' own learned dictionaries "
              "(`dictionary_learned*.npz` in their repository) have median residuals 0.81 and 0.82 "
              "(`paper_kernel_fits.md`). Learning raises PSNR by ≈ 20 dB here (the paper: modestly); the two "
              "learned dictionaries end within 0.4–0.7 dB of each other. The authors' own learned dictionaries, "
              "coded here with the same settings (rows `authors-learned-from-*`, λ = 1e-2; files from their "
              "repository, not shipped), also gain ≈ 13–15 dB over the log-Gabor ones (50.3 and 49.7 dB), with "
              "about the same sparseness: the large gain is not an artefact of csc's learner.",
              "- **Fig. 4/5 statistics**: the lowest-BIC family among six maximum-likelihood fits is a "
              "two-parameter generalisation of the exponential (gamma, Weibull), not the exponential itself; the "
              "double von Mises wins for the homogeneous dictionary's 72 orientations, while the heterogeneous "
              "dictionary's 12 orientations give a histogram the uniform model fits best.", "",
              "## Caveats", "",
              "- 11 photographs (scikit-image), not the paper's 1145 Figshare images: p-values from 11 pairs "
              "cannot go below ≈ 0.001 and the photographs are not a sample of one scene distribution.",
              "- csc's earlier settings use unit-ℓ2 kernels (csc's default); the authors' settings use the "
              "authors' normalisation, which changes the effective λ per kernel.",
              "- The ADMM iteration limit stops most solves before the relative tolerance 1e-3 is met; PSNR "
              "is then within ≈ 0.1–0.3 dB of its 300-iteration value and sparseness still rises slowly "
              "(camera 128²: +0.001–0.003 from 100 to 300 iterations).",
              "- Absolute thresholds only mean the same thing as in the paper when the codes have the same "
              "scale: with the highpass of [0, 1] images the coefficients are ≈ 10–15× smaller than with LCN "
              "(median max |x| 0.31 vs 4.3 homogeneous, 1.2 vs 14 heterogeneous), so from c ≈ 0.2 on every "
              "coefficient of the homogeneous dictionary is gone and its curve measures the lowpass alone. "
              "The LCN run (the authors' preprocessing and λ) is the one comparable with the paper's Fig. 6.",
              "- Relative pruning (c·max|x|) reverses the resilience result: the heterogeneous codes have a "
              "much larger maximum (a few very large coefficients of its narrow-bandwidth kernels), so the "
              "same fraction of the maximum removes more of them.",
              "- The post-learning dictionaries were learned on 64² crops of LCN images (not whitened, not "
              "masked): `benchmarks/paper/README.md` lists what differs from the authors' runs.",
              "- The learned dictionaries were learned by `csc learn` from 9 of the 11 photographs "
              "(`dictionaries/manifest.json`); only camera and astronaut are held out, so the learned-"
              "dictionary findings are given on those 2 (no test is possible with 2 pairs) and, separately, "
              "on all 11 (optimistic for the learned dictionaries). They were learned at λ = 0.05 on the "
              "highpass of crops: the LCN configuration codes a different signal than the one they learned.",
              "- The learned dictionaries gain 15–20 dB of PSNR over the log-Gabor ones, far more than in the "
              "paper. The log-Gabor kernels share one radial frequency and have no DC component, so "
              "structure at other scales stays in the residual whatever the codes; learning (without "
              "csc's optional zero-mean constraint) gives kernels of several scales and some mean, and with "
              "≈ 0.9 nonzeros per pixel (sparseness ≈ 0.9937 of 144 maps) the learned dictionaries come close "
              "to a complete representation of the crops. The paper's learned dictionaries (its own code, "
              "1145 larger images, authors' kernel normalisation) were not reproduced kernel for kernel.", ""]
    i, j = lines.index("## Reading"), lines.index("## Caveats")
    lines[header:header] = lines[i:j]  # the reading first, after the header
    del lines[i + (j - i):j + (j - i)]
    out = RESULTS / "paper_comparison.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preprocess", choices=["highpass", "lcn"], default="lcn")
    p.add_argument("--lmbda", type=float, default=0.05)
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--max-iter", type=int, default=100)
    p.add_argument("--rel-stop-tol", type=float, default=1e-3)
    p.add_argument("--authors", action="store_true",
                   help="the authors' Fig. 2 settings, one run per λ (their kernel normalisation, post-learning "
                        "dictionaries learned their way)")
    p.add_argument("--authors-lmbdas", type=float, nargs="+", default=None, help="with --authors: these λ only")
    p.add_argument("--images", nargs="+", default=None)
    p.add_argument("--dictionaries", nargs="+", default=None, help=f"default: {available_dictionaries()}")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--tag", default=None, help="file name suffix (default from the settings)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--replot", action="store_true", help="only redraw the PNGs from the JSON files")
    p.add_argument("--report", action="store_true", help="only write paper_comparison.md from the JSON files")
    args = p.parse_args(argv)
    if args.report:
        report()
        return 0
    if args.replot:
        for f in sorted(RESULTS.glob("paper_comparison_*.json")):
            print(f"wrote {replot(f)}")
        return 0
    if args.authors:
        run_authors(args)
        return 0
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

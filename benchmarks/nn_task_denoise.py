r"""Task-driven dictionary learning through :mod:`csc.nn`: denoising PSNR against the
unsupervised learner, on held-out photographs.

The pipeline is SPORCO's CBPDN denoising (``examples/scripts/csc/cbpdn_gry.py`` without its
learning): a noisy image n = s + σε is split by :func:`csc.tikhonov_filter` into a low-pass
part and a high-pass part h; h is coded by CBPDN; the estimate is low + Σ_k d_k * x*(h)_k.
Three dictionaries are compared on photographs that no learner saw, each with its own λ:

- **initial**: random unit-norm kernels (λ picked on the training crops from a grid);
- **unsupervised**: :class:`csc.DictLearn` (SPORCO's ``ConvBPDNDictLearn``) on the clean
  training crops' high-pass part, from the initial kernels (λ picked as above);
- **task-driven**: :class:`csc.nn.ConvSparseCode` from the unsupervised dictionary and λ,
  then Adam on the denoising loss ‖low + Σ_k d_k * x*(h)_k − s‖² through the CBPDN solution
  (implicit gradients), learning the kernels (unit norm) and log λ.

Writes ``task_denoise.json`` (every PSNR, the curve, timings, the command) and
``task_denoise.png`` (test PSNR per step against the baselines; a test image denoised by
each) under ``--out``. ``--quick`` runs tiny sizes in seconds (the test suite runs it).

    python benchmarks/nn_task_denoise.py --out benchmarks/results/nn
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

import csc
from csc.core.ops import synthesis
from csc.nn import CGOptions, ConvSparseCode
from csc.pipeline.preprocess import center_crop, resize, tikhonov_filter
from csc.pipeline.sources.folders import builtin_photographs

TRAIN = ("astronaut", "camera", "coffee", "chelsea", "rocket")
TEST = ("clock", "coins", "moon", "brick")
LAMBDAS = (0.05, 0.1, 0.2, 0.3, 0.5)

#: the forward's options: tight enough for the implicit gradient (README, "PyTorch layer")
SOLVE = dict(rel_stop_tol=1e-4, max_iter=3000, rsdl_target=1.0, rho_period=10, record_stats=False)


def _sizes(quick: bool) -> dict:
    if quick:
        return dict(K=4, k=5, crop=24, batch=2, test=32, steps=2, every=1, dl_iter=3, scale=0.25)
    return dict(K=24, k=8, crop=48, batch=8, test=128, steps=60, every=5, dl_iter=100, scale=0.5)


def _photos(names, scale: float) -> list[torch.Tensor]:
    """Gray photographs in [0, 1], float64, shrunk by ``scale``."""
    out = []
    for img in builtin_photographs(names).images:
        t = torch.as_tensor(img, dtype=torch.float64)
        out.append(resize(t, (max(8, round(t.shape[0] * scale)), max(8, round(t.shape[1] * scale)))))
    return out


def _noisy(clean: torch.Tensor, sigma: float, g: torch.Generator) -> torch.Tensor:
    return clean + sigma * torch.randn(clean.shape, generator=g, dtype=clean.dtype)


def _denoise(D: torch.Tensor, lmbda, noisy: torch.Tensor, layer: ConvSparseCode | None = None) -> torch.Tensor:
    """low + Σ_k d_k * x*(high)_k, through ``layer`` when given (differentiable) or csc.ConvBPDN."""
    low, high = tikhonov_filter(noisy, 5.0)
    if layer is not None:
        return low + synthesis(layer.kernels(), layer(high))
    codes = csc.ConvBPDN(D, float(lmbda), csc.CBPDNOptions(**SOLVE)).solve(high).codes
    return low + synthesis(D, codes.reshape(high.shape[0], D.shape[0], *high.shape[-2:]))


def _psnr(clean: torch.Tensor, est: torch.Tensor) -> float:
    """Mean PSNR over the images, data range 1 (the photographs' scale)."""
    return float(csc.psnr(clean, est.detach(), data_range=1.0).mean())


def _pick_lambda(D, clean, noisy) -> tuple[float, dict]:
    """The grid's λ with the best training PSNR, and every λ's."""
    scores = {lam: _psnr(clean, _denoise(D, lam, noisy)) for lam in LAMBDAS}
    return max(scores, key=scores.get), scores


def _unsupervised(D0, clean_train, lmbda: float, iters: int) -> torch.Tensor:
    """csc.DictLearn (SPORCO's ConvBPDNDictLearn) on the clean crops' high-pass part."""
    _, high = tikhonov_filter(clean_train, 5.0)
    opts = csc.DictLearnOptions(max_iter=iters)
    return csc.DictLearn(D0, lmbda, opts).solve(high).dictionary


def _train(D, lmbda, photos, test_clean, test_noisy, z: dict, sigma: float, g: torch.Generator, log):
    """Adam through the layer; the test PSNR every ``every`` steps."""
    opts = csc.CBPDNOptions(**SOLVE)
    layer = ConvSparseCode(D, lmbda, opts, learn_lmbda=True, constraint="unit_norm", cg=CGOptions(tol=1e-6))
    optim = torch.optim.Adam(layer.parameters(), lr=2e-3)
    curve, cg_iters, t0 = [], [], time.perf_counter()
    for step in range(z["steps"] + 1):
        if step % z["every"] == 0 or step == z["steps"]:
            with torch.no_grad():
                curve.append((step, _psnr(test_clean, _denoise(layer.kernels(), layer.lmbda, test_noisy, layer)),
                              float(layer.lmbda.detach())))
            log(f"step {step}: test PSNR {curve[-1][1]:.3f} dB, λ {curve[-1][2]:.4f}")
        if step == z["steps"]:
            break
        clean = csc.learn.dictlearn.random_crops(photos, z["crop"], generator=g, per_image=1)[: z["batch"]]
        optim.zero_grad()
        loss = (_denoise(None, None, _noisy(clean, sigma, g), layer) - clean).square().mean()
        loss.backward()
        optim.step()
        layer.project_()
        cg_iters.append(float(layer.record.iterations.double().mean()))
    return layer, curve, dict(seconds=time.perf_counter() - t0, mean_cg_iterations=sum(cg_iters) / len(cg_iters))


def _figure(path: Path, report: dict, images: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(12, 6.5))
    ax = fig.add_subplot(2, 1, 1)
    steps, ps, _ = zip(*report["task_driven"]["curve"])
    ax.plot(steps, ps, "o-", label="task-driven (csc.nn, implicit gradients)")
    for key, style in (("unsupervised", "--"), ("initial", ":"), ("noisy", "-.")):
        ax.axhline(report[key]["test_psnr"], ls=style, color="k" if key == "unsupervised" else "gray",
                   label=f"{key}: {report[key]['test_psnr']:.2f} dB")
    ax.set_xlabel("Adam step")
    ax.set_ylabel("test PSNR (dB)")
    ax.legend(fontsize=8)
    ax.set_title(f"denoising σ={report['sigma']}, held-out photographs {', '.join(TEST)}")
    for i, (name, img) in enumerate(images.items()):
        a = fig.add_subplot(2, len(images), len(images) + i + 1)
        a.imshow(img.numpy(), cmap="gray", vmin=0, vmax=1)
        a.set_title(name, fontsize=9)
        a.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(out: Path, quick: bool = False, sigma: float = 0.1, seed: int = 0, log=print) -> dict:
    """The whole comparison; returns the report (also written to ``out``)."""
    torch.manual_seed(seed)
    z, g = _sizes(quick), torch.Generator().manual_seed(seed)
    train_photos = _photos(TRAIN, z["scale"])
    test_clean = torch.stack([center_crop(p, z["test"]) for p in _photos(TEST, z["scale"])])
    test_noisy = _noisy(test_clean, sigma, g)
    clean_train = csc.learn.dictlearn.random_crops(train_photos, z["crop"], generator=g, per_image=2)
    noisy_train = _noisy(clean_train, sigma, g)
    D0 = torch.randn(z["K"], z["k"], z["k"], generator=g, dtype=torch.float64)
    D0 = D0 / D0.flatten(1).norm(dim=1).reshape(-1, 1, 1)
    lam0, grid0 = _pick_lambda(D0, clean_train, noisy_train)
    t0 = time.perf_counter()
    D_u = _unsupervised(D0, clean_train, lam0, z["dl_iter"])
    t_u = time.perf_counter() - t0
    lam_u, grid_u = _pick_lambda(D_u, clean_train, noisy_train)
    log(f"unsupervised: λ {lam_u}, {t_u:.1f} s")
    layer, curve, timing = _train(D_u, lam_u, train_photos, test_clean, test_noisy, z, sigma, g, log)
    with torch.no_grad():
        est = {"initial": _denoise(D0, lam0, test_noisy), "unsupervised": _denoise(D_u, lam_u, test_noisy),
               "task-driven": _denoise(layer.kernels(), layer.lmbda, test_noisy, layer)}
    report = dict(
        command=" ".join([Path(sys.argv[0]).name] + sys.argv[1:]) if __name__ == "__main__" else "run()",
        sizes=z, sigma=sigma, seed=seed, train=TRAIN, test=TEST, forward_options=SOLVE,
        noisy=dict(test_psnr=_psnr(test_clean, test_noisy)),
        initial=dict(lmbda=lam0, train_psnr_by_lambda=grid0, test_psnr=_psnr(test_clean, est["initial"])),
        unsupervised=dict(lmbda=lam_u, train_psnr_by_lambda=grid_u, seconds=t_u,
                          test_psnr=_psnr(test_clean, est["unsupervised"])),
        task_driven=dict(lmbda=float(layer.lmbda.detach()), curve=curve, test_psnr=_psnr(test_clean, est["task-driven"]),
                         **timing),
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "task_denoise.json").write_text(json.dumps(report, indent=1) + "\n")
    images = {"clean": test_clean[0], f"noisy {report['noisy']['test_psnr']:.1f} dB": test_noisy[0].clamp(0, 1)}
    for key, e in est.items():
        images[f"{key} {_psnr(test_clean[:1], e[:1]):.1f} dB"] = e[0].clamp(0, 1)
    _figure(out / "task_denoise.png", report, images)
    return report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/nn"))
    p.add_argument("--quick", action="store_true", help="tiny sizes, seconds (the test suite's run)")
    p.add_argument("--sigma", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if not (a.sigma > 0 and math.isfinite(a.sigma)):
        p.error(f"--sigma: expected a finite number > 0, got {a.sigma}")
    r = run(a.out, a.quick, a.sigma, a.seed)
    print(json.dumps({k: r[k]["test_psnr"] for k in ("noisy", "initial", "unsupervised", "task_driven")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

r"""The demo job: sparse-code the built-in photographs with every shipped dictionary.

:func:`run_demo` takes the natural photographs bundled with scikit-image
(:func:`csc.pipeline.sources.folders.builtin_photographs`), crops their central ``crop × crop``
square (gray, [0, 1]), preprocesses them (``"highpass"``: code the highpass of SPORCO's
``tikhonov_filter(img, 5, 16)`` and add the lowpass back, as SPORCO's examples;
``"lcn"``: local contrast normalisation as the authors' code, reconstruction
``norm · r + mean``), encodes them with every shipped dictionary
(:func:`csc.shipped_dictionaries`: the log-Gabor ones, and learned ones when they are
installed) at the same λ, and measures per image the PSNR of the reconstruction in
image space (SPORCO's form, and the paper's eq. 6) and the sparseness of the codes.

It writes to ``out``: ``demo.json`` (settings, per image and median metrics per
dictionary), ``demo.png`` (:func:`plot_demo`) and the codes of each dictionary
(``codes/<name>.codes.npz``, :func:`csc.dictionary.io.save_codes`, shape (B, K, H, W)).
``csc demo`` (:mod:`csc.cli.demo`) is the command-line front end; :func:`format_table` is
the table it prints. :func:`plot_metric_distribution` and :func:`prepare_photographs` serve
the notebooks and ``benchmarks/paper_comparison.py`` too.

Defaults (λ = 0.01 for the highpass, 0.05 for LCN (:data:`DEFAULT_LMBDA`), 128 × 128
crops, at most 100 ADMM iterations) are chosen so that the whole job runs in a few
minutes on two CPU cores; see :data:`DEFAULTS`. PSNR is within ≈ 0.1 dB of its
300-iteration value after 100 iterations; sparseness still rises a little after that
(≈ +0.002 on camera at λ = 0.01), so use ``max_iter`` ≥ 300 for final numbers.
"""

from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from csc.core.checks import check_bool
from csc.core.options import CBPDNOptions
from csc.problems.cbpdn import ConvBPDN
from csc.dictionary.io import dictionary_metadata, load_dictionary, save_codes, shipped_dictionaries
from csc.dictionary.tile import plot_dictionary
from csc.pipeline.preprocess import check_preprocess_kind
from csc.runtime.device import resolve_device
from csc.science.metrics import psnr, psnr_paper, sparseness
from csc.science.sweep import dictionary_color

__all__ = [
    "DEFAULTS",
    "DEFAULT_LMBDA",
    "QUICK",
    "DICTIONARY_ORDER",
    "DemoConfig",
    "DemoResult",
    "DictionaryScores",
    "available_dictionaries",
    "format_table",
    "plot_demo",
    "plot_dictionary",
    "plot_metric_distribution",
    "prepare_photographs",
    "run_demo",
]

#: Preferred order of the shipped dictionaries: the paper's four (before and after learning,
#: the post-learning ones learned the authors' way), then csc's batch-learned ones; others
#: follow by name.
DICTIONARY_ORDER: tuple[str, ...] = (
    "homogeneous",
    "heterogeneous",
    "homogeneous-learned",
    "heterogeneous-learned",
    "homogeneous-batch-learned",
    "heterogeneous-batch-learned",
    "random-batch-learned",
)


#: Default λ per preprocessing. The paper's λ = 0.05 was set for contrast-normalised
#: images (std ≈ 0.6–0.9 on the photographs); the Tikhonov highpass of a [0, 1] image is
#: about 8× smaller (std ≈ 0.07–0.11), and at λ = 0.05 its codes add only ≈ 2.3 dB over
#: the lowpass alone (camera 128², 24.1 vs 21.8 dB, sparseness 0.998), so the highpass
#: default is 0.01 (26.4–28.3 dB, sparseness 0.995–0.997 after 300 iterations).
DEFAULT_LMBDA: dict[str, float] = {"highpass": 0.01, "lcn": 0.05}
#: The preprocessings the demo offers (those with a default λ).
DEMO_PREPROCESS: tuple[str, ...] = tuple(DEFAULT_LMBDA)


@dataclass(frozen=True)
class DemoConfig:
    """Settings of :func:`run_demo`.

    Attributes
    ----------
    lmbda : float or None
        λ of CBPDN, the same for every dictionary. None: :data:`DEFAULT_LMBDA` for the
        preprocessing (0.01 for the highpass of [0, 1] images, 0.05 for LCN as the paper).
    crop : int
        Side of the central square crop of every photograph.
    max_iter : int
        ADMM iteration limit (SPORCO's ``MaxMainIter``).
    rel_stop_tol : float
        Relative stopping tolerance.
    images : tuple of str or None
        Photograph names (default: all of ``BUILTIN_PHOTOGRAPH_NAMES``).
    dictionaries : tuple of str or None
        Shipped names or files (default: every shipped dictionary).
    preprocess : {"highpass", "lcn"}
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
    dtype : {"float32", "float64"}
    batch_size : int or None
        Images per solver call (None: 4 on CPU, all on CUDA). Results do not depend on it:
        each image of a batch is solved as if alone.
    example : str or None
        The photograph whose reconstructions the figure shows (default: ``camera`` if
        coded, else the first).
    """

    lmbda: float | None = None
    crop: int = 128
    max_iter: int = 100
    rel_stop_tol: float = 1e-3
    images: tuple[str, ...] | None = None
    dictionaries: tuple[str, ...] | None = None
    preprocess: str = "highpass"
    device: str = "auto"
    dtype: str = "float32"
    batch_size: int | None = None
    example: str | None = None

    def validate(self) -> "DemoConfig":
        """Return the settings with λ resolved, raising ``ValueError`` for an invalid one."""
        from csc.pipeline.sources.folders import BUILTIN_PHOTOGRAPH_NAMES

        check_preprocess_kind("preprocess", self.preprocess, DEMO_PREPROCESS)
        if self.lmbda is None:
            return replace(self, lmbda=DEFAULT_LMBDA[self.preprocess]).validate()
        if isinstance(self.lmbda, bool) or not (isinstance(self.lmbda, (int, float)) and math.isfinite(self.lmbda) and self.lmbda > 0):
            raise ValueError(f"lmbda: expected a finite value > 0, got {self.lmbda!r}")
        if isinstance(self.crop, bool) or not isinstance(self.crop, int) or self.crop < 16:
            raise ValueError(f"crop: expected an integer >= 16 (kernels are 12x12), got {self.crop!r}")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, int) or self.max_iter < 1:
            raise ValueError(f"max_iter: expected a positive integer, got {self.max_iter!r}")
        if not (math.isfinite(self.rel_stop_tol) and self.rel_stop_tol >= 0):
            raise ValueError(f"rel_stop_tol: expected a finite value >= 0, got {self.rel_stop_tol!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype: expected 'float32' or 'float64', got {self.dtype!r}")
        if self.batch_size is not None and (isinstance(self.batch_size, bool) or self.batch_size < 1):
            raise ValueError(f"batch_size: expected a positive integer, got {self.batch_size!r}")
        if self.images is not None:
            if len(self.images) == 0:
                raise ValueError("images: expected at least one photograph name")
            bad = [n for n in self.images if n not in BUILTIN_PHOTOGRAPH_NAMES]
            if bad:
                raise ValueError(f"images: unknown photograph(s) {', '.join(map(repr, bad))}; "
                                 f"choose from {', '.join(BUILTIN_PHOTOGRAPH_NAMES)}")
            if len(set(self.images)) != len(self.images):
                raise ValueError(f"images: names repeated in {list(self.images)}")
        if self.dictionaries is not None and len(self.dictionaries) == 0:
            raise ValueError("dictionaries: expected at least one dictionary")
        if self.example is not None and self.example not in self.image_names():
            raise ValueError(f"example: {self.example!r} is not among the coded images {list(self.image_names())}")
        return self

    def image_names(self) -> tuple[str, ...]:
        from csc.pipeline.sources.folders import BUILTIN_PHOTOGRAPH_NAMES

        return tuple(self.images) if self.images is not None else BUILTIN_PHOTOGRAPH_NAMES


#: The default settings (``csc demo`` without options).
DEFAULTS = DemoConfig()

#: ``--quick``: three 32 × 32 crops and 20 iterations (seconds; for tests).
QUICK = DemoConfig(crop=32, max_iter=20, images=("camera", "astronaut", "grass"))


@dataclass(frozen=True)
class DictionaryScores:
    """One dictionary's results over the photographs (per-image arrays in image order)."""

    name: str
    kernels: tuple[int, int, int]
    psnr: np.ndarray
    psnr_paper: np.ndarray
    sparseness: np.ndarray
    nonzeros: np.ndarray
    iterations: np.ndarray
    seconds: float
    codes_file: str | None = None
    description: str = ""
    learned: bool | None = None

    @property
    def median_psnr(self) -> float:
        return float(np.median(self.psnr))

    @property
    def median_sparseness(self) -> float:
        return float(np.median(self.sparseness))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "learned": self.learned,
            "kernels": list(self.kernels),
            "median_psnr": self.median_psnr,
            "median_psnr_paper": float(np.median(self.psnr_paper)),
            "median_sparseness": self.median_sparseness,
            "psnr": [float(v) for v in self.psnr],
            "psnr_paper": [float(v) for v in self.psnr_paper],
            "sparseness": [float(v) for v in self.sparseness],
            "nonzeros": [int(v) for v in self.nonzeros],
            "iterations": [int(v) for v in self.iterations],
            "seconds": self.seconds,
            "codes_file": self.codes_file,
        }


@dataclass
class DemoResult:
    """What :func:`run_demo` computed.

    ``images`` are the cropped gray originals (B, H, W), ``signals`` what was coded,
    ``codes[name]`` the codes (B, K, H, W) and ``reconstructions[name]`` the images
    rebuilt from them (B, H, W), all on the CPU.
    """

    config: DemoConfig
    names: tuple[str, ...]
    images: torch.Tensor
    signals: torch.Tensor
    scores: dict[str, DictionaryScores]
    dictionaries: dict[str, torch.Tensor] = field(repr=False)
    codes: dict[str, torch.Tensor] = field(repr=False)
    reconstructions: dict[str, torch.Tensor] = field(repr=False)
    seconds: float = 0.0
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        cfg = asdict(self.config)
        cfg["images"] = list(self.names)
        cfg["dictionaries"] = list(self.scores)
        return {
            "config": cfg,
            "images": list(self.names),
            "dictionaries": {k: v.to_dict() for k, v in self.scores.items()},
            "table": [
                {"dictionary": k, "median_psnr": v.median_psnr, "median_sparseness": v.median_sparseness}
                for k, v in self.scores.items()
            ],
            "seconds": self.seconds,
            "files": dict(self.files),
            "environment": {
                "torch": torch.__version__,
                "python": platform.python_version(),
                "threads": torch.get_num_threads(),
            },
        }


def available_dictionaries() -> list[str]:
    """Shipped gray dictionary names in the paper's order, then any others by name (the demo
    codes gray photographs: colour dictionaries are left out)."""
    names = [n for n, e in shipped_dictionaries().items() if not e.get("colour")]
    known = [n for n in DICTIONARY_ORDER if n in names]
    return known + sorted(n for n in names if n not in DICTIONARY_ORDER)


def prepare_photographs(names: Sequence[str], crop: int, preprocess: str = "highpass",
                        dtype: torch.dtype = torch.float32, device=None):
    """Central ``crop`` × ``crop`` crops of built-in photographs and what to code.

    Returns
    -------
    images : (B, crop, crop) tensor
        Gray originals in [0, 1].
    signals : (B, crop, crop) tensor
        The highpass part, or the contrast-normalised images.
    back : callable
        Maps reconstructions of ``signals`` (B, crop, crop) to image space.
    scale, offset : tensors or None
        ``back(r) = scale · r + offset`` (scale None for the highpass): the
        :class:`~csc.pipeline.preprocess.PreprocessState` of ``Preprocess(preprocess)``.
    """
    from csc.pipeline.sources.folders import builtin_photographs
    from csc.pipeline.preprocess import Preprocess, center_crop, check_preprocess_kind

    pre = Preprocess(check_preprocess_kind("preprocess", preprocess, DEMO_PREPROCESS))

    photos = builtin_photographs(tuple(names))
    crops = []
    for n, img in zip(photos.names, photos.images):
        if min(img.shape) < crop:
            raise ValueError(f"crop: {n} is {img.shape[0]}x{img.shape[1]}, smaller than {crop}")
        crops.append(center_crop(torch.from_numpy(img), crop))
    images = torch.stack(crops).to(dtype=dtype, device=device)
    signals, state = pre.forward(images)
    return images, signals, state.inverse, state.scale, state.offset


def run_demo(
    config: DemoConfig | None = None,
    out: str | Path | None = None,
    *,
    progress: bool = True,
    figure: bool = True,
    log: Callable[[str], None] | None = None,
) -> DemoResult:
    """Encode the built-in photographs with every dictionary; write JSON, figure and codes.

    Parameters
    ----------
    config : DemoConfig, optional
        Settings (default :data:`DEFAULTS`).
    out : str or Path, optional
        Output folder for ``demo.json``, ``demo.png`` and ``codes/``; nothing is written
        when None.
    progress : bool
        Show a tqdm progress bar (images coded, over all dictionaries).
    figure : bool
        Write ``demo.png`` (needs matplotlib).
    log : callable, optional
        Receives one-line messages.

    Returns
    -------
    DemoResult
    """
    progress = check_bool("progress", progress)
    figure = check_bool("figure", figure)
    from tqdm import tqdm

    cfg = (config or DEFAULTS).validate()
    t_start = time.perf_counter()
    device = resolve_device(cfg.device)
    dtype = torch.float64 if cfg.dtype == "float64" else torch.float32
    names = cfg.image_names()
    dict_names, dicts = _demo_dictionaries(cfg, dtype, device)
    manifest = shipped_dictionaries()
    images, signals, back, _, _ = prepare_photographs(names, cfg.crop, cfg.preprocess, dtype, device)
    B = len(names)
    bs = cfg.batch_size or (B if device.type == "cuda" else 4)
    opts = CBPDNOptions(max_iter=cfg.max_iter, rel_stop_tol=cfg.rel_stop_tol, record_stats=False,
                        dtype=dtype, device=device)
    out_dir = Path(out) if out is not None else None
    if out_dir is not None:
        (out_dir / "codes").mkdir(parents=True, exist_ok=True)

    scores: dict[str, DictionaryScores] = {}
    all_codes: dict[str, torch.Tensor] = {}
    recons: dict[str, torch.Tensor] = {}
    bar = tqdm(total=B * len(dict_names), desc="csc demo", unit="image", disable=not progress)
    try:
        for dn in dict_names:
            D = dicts[dn]
            C, its, seconds, res = _code_in_batches(ConvBPDN(D, cfg.lmbda, opts), signals, bs, bar, dn, device)
            rec = back(res.reconstruct(C.to(device))).cpu()
            codes_file = _save_demo_codes(out_dir, dn, C, names, cfg) if out_dir is not None else None
            scores[dn] = _dictionary_scores(dn, D, images.cpu(), rec, C, its, seconds, codes_file,
                                            manifest.get(dn, {}))
            all_codes[dn], recons[dn] = C, rec
            if log is not None:
                log(f"{dn}: median PSNR {scores[dn].median_psnr:.2f} dB, median sparseness "
                    f"{scores[dn].median_sparseness:.5f} ({seconds:.1f} s)")
    finally:
        bar.close()

    result = DemoResult(
        config=cfg, names=tuple(names), images=images.cpu(), signals=signals.cpu(), scores=scores,
        dictionaries={k: v.cpu() for k, v in dicts.items()}, codes=all_codes, reconstructions=recons,
    )
    if out_dir is not None:
        _write_demo_files(result, out_dir, figure, t_start)
    result.seconds = time.perf_counter() - t_start
    return result


def _demo_dictionaries(cfg: DemoConfig, dtype: torch.dtype, device: torch.device):
    """(names, {name: dictionary on ``device``}) to compare: ``cfg.dictionaries``, default every shipped one."""
    dict_names = list(cfg.dictionaries) if cfg.dictionaries is not None else available_dictionaries()
    if not dict_names:
        raise ValueError("dictionaries: none shipped and none given")
    return dict_names, {dn: load_dictionary(dn, dtype=dtype, device=device) for dn in dict_names}


def _dictionary_scores(dn: str, D: torch.Tensor, images: torch.Tensor, rec: torch.Tensor, C: torch.Tensor,
                       its: torch.Tensor, seconds: float, codes_file: str | None,
                       entry: dict[str, Any]) -> DictionaryScores:
    """Per-image PSNR, sparseness, nonzeros and iterations of one dictionary's codes."""
    return DictionaryScores(
        name=dn, kernels=tuple(D.shape), psnr=psnr(images, rec).numpy(),
        psnr_paper=psnr_paper(images, rec).numpy(), sparseness=sparseness(C).numpy(),
        nonzeros=(C != 0).sum(dim=(1, 2, 3)).numpy(), iterations=its.numpy(),
        seconds=seconds, codes_file=codes_file, description=entry.get("description", ""),
        learned=entry.get("learned"),
    )


def _code_in_batches(solver: ConvBPDN, signals: torch.Tensor, bs: int, bar, dn: str, device: torch.device):
    """Code ``signals`` ``bs`` at a time: (codes on the CPU, iterations, seconds, the last batch's result)."""
    B = signals.shape[0]
    codes, its = [], []
    t0 = time.perf_counter()
    for s in range(0, B, bs):
        bar.set_postfix_str(dn)
        res = solver.solve(signals[s : s + bs])
        codes.append(res.codes.cpu())
        its.append(res.iterations.cpu())
        bar.update(min(bs, B - s))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return torch.cat(codes), torch.cat(its), time.perf_counter() - t0, res


def _save_demo_codes(out_dir: Path, dn: str, C: torch.Tensor, names: Sequence[str], cfg: DemoConfig) -> str:
    """Write dictionary ``dn``'s codes under ``out_dir/codes/``; returns the file, relative to ``out_dir``."""
    codes_file = f"codes/{_safe(dn)}.codes.npz"
    meta = dictionary_metadata(dn)
    save_codes(out_dir / codes_file, C, {
        "dictionary": dn, "dictionary_sha256": meta.get("sha256"), "images": list(names),
        "lmbda": cfg.lmbda, "crop": cfg.crop, "preprocess": cfg.preprocess,
        "max_iter": cfg.max_iter, "rel_stop_tol": cfg.rel_stop_tol,
    })
    return codes_file


def _write_demo_files(result: DemoResult, out_dir: Path, figure: bool, t_start: float) -> None:
    """Write ``demo.png`` (when ``figure``) and ``demo.json`` into ``out_dir``; record them in ``result.files``."""
    if figure:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        fig = plot_demo(result)
        fig.savefig(out_dir / "demo.png", dpi=110)
        plt.close(fig)
        result.files["figure"] = "demo.png"
    result.files["json"] = "demo.json"
    result.files["codes"] = {k: v.codes_file for k, v in result.scores.items()}
    result.seconds = time.perf_counter() - t_start
    (out_dir / "demo.json").write_text(json.dumps(result.to_dict(), indent=2))


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in Path(name).name)


def format_table(result: DemoResult) -> str:
    """The console table: median PSNR and sparseness per dictionary."""
    cfg = result.config
    lines = [
        f"{len(result.names)} photographs, central {cfg.crop}x{cfg.crop}, {cfg.preprocess}, "
        f"lambda = {cfg.lmbda:g}, max {cfg.max_iter} iterations",
    ]
    w = max([24] + [len(str(dn)) for dn in result.scores])
    lines.append(f"{'dictionary':<{w}} {'PSNR dB':>8} {'sparseness':>10} {'nonzeros':>9} {'iters':>6} {'s':>7}")
    for dn, s in result.scores.items():
        lines.append(f"{dn:<{w}} {s.median_psnr:8.2f} {s.median_sparseness:10.5f} "
                     f"{int(np.median(s.nonzeros)):9d} {int(np.median(s.iterations)):6d} {s.seconds:7.1f}")
    lines.append("(medians over photographs; PSNR as sporco.metric.psnr on the image in [0, 1])")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- plots


def plot_metric_distribution(ax, values: dict[str, np.ndarray], ylabel: str, names: Sequence[str] | None = None):
    """Per-image values of each dictionary (dots), their median (bar) and the pairing of
    images across dictionaries (grey lines)."""
    keys = list(values)
    if not keys:
        raise ValueError("values: expected at least one dictionary")
    arr = np.vstack([np.asarray(values[k], dtype=float) for k in keys])
    for b in range(arr.shape[1]):
        ax.plot(range(len(keys)), arr[:, b], color="0.75", lw=0.7, zorder=1)
    for i, k in enumerate(keys):
        color = dictionary_color(k, i)
        jitter = np.linspace(-0.08, 0.08, arr.shape[1]) if arr.shape[1] > 1 else np.zeros(1)
        ax.scatter(i + jitter, arr[i], s=14, color=color, zorder=2)
        med = np.median(arr[i])
        ax.hlines(med, i - 0.25, i + 0.25, colors=color, linestyles="--", lw=2, zorder=3)
        ax.annotate(f"{med:.4g}", (i + 0.27, med), fontsize=7, va="center", color=color)
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels(keys, rotation=15, fontsize=8)
    ax.set_xlim(-0.5, len(keys) - 0.2)
    ax.set_ylabel(ylabel)
    ax.grid(True, axis="y", alpha=0.3)
    return ax


def plot_demo(result: DemoResult):
    """The demo figure: dictionaries, sparseness and PSNR per dictionary, one reconstruction."""
    import matplotlib.pyplot as plt

    keys = list(result.scores)
    nd = len(keys)
    ncols = max(nd + 1, 2)
    fig = plt.figure(figsize=(3.0 * ncols, 9.6), layout="constrained")
    top, mid, bottom = fig.subfigures(3, 1, height_ratios=[1.0, 1.0, 1.0])
    axs = top.subplots(1, nd, squeeze=False)[0]
    for i, k in enumerate(keys):
        plot_dictionary(axs[i], result.dictionaries[k], title=f"{k} ({result.dictionaries[k].shape[0]} kernels)")
    top.suptitle("dictionaries", fontsize=10)
    a1, a2 = mid.subplots(1, 2)
    plot_metric_distribution(a1, {k: result.scores[k].sparseness for k in keys}, "sparseness (fraction of zeros)")
    a1.set_title("sparseness per photograph", fontsize=9)
    plot_metric_distribution(a2, {k: result.scores[k].psnr for k in keys}, "PSNR (dB)")
    a2.set_title("PSNR per photograph", fontsize=9)
    cfg = result.config
    mid.suptitle(f"{len(result.names)} photographs, {cfg.crop}x{cfg.crop}, {cfg.preprocess}, "
                 f"λ = {cfg.lmbda:g}, ≤ {cfg.max_iter} iterations", fontsize=10)
    ex = cfg.example or ("camera" if "camera" in result.names else result.names[0])
    b = result.names.index(ex)
    axr = bottom.subplots(1, nd + 1, squeeze=False)[0]
    axr[0].imshow(result.images[b].numpy(), cmap="gray", vmin=0, vmax=1)
    axr[0].set_title(f"{ex} (original)", fontsize=9)
    for i, k in enumerate(keys):
        s = result.scores[k]
        axr[i + 1].imshow(result.reconstructions[k][b].clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
        axr[i + 1].set_title(f"{k}: {s.psnr[b]:.2f} dB, sparseness {s.sparseness[b]:.4f}", fontsize=8)
    for a in axr:
        a.set_xticks([])
        a.set_yticks([])
    bottom.suptitle("reconstructions", fontsize=10)
    return fig

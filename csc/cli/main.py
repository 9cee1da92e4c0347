"""The ``csc`` command: thin sub-commands over the public API.

    csc encode IMAGE... --dictionary NAME|FILE --lmbda L [--out DIR] ...
    csc loggabor --preset heterogeneous --out FILE
    csc dictionaries
    csc bench [--size 256] [--iters 50] [--threads N] [--json FILE] ...   (needs SPORCO and the checkout)

``IMAGE`` is a file path or ``builtin:NAME`` for a photograph shipped with scikit-image
(``builtin:camera``, ``builtin:astronaut``, …; ``builtin:all`` for every one).

``encode-dataset``, ``learn --method online`` and ``train`` run data-parallel when started
by ``torchrun`` (``torchrun --nproc_per_node N -m csc train ...``): see
:mod:`csc.runtime.distributed`. Rank 0 prints and writes the shared outputs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from csc.cli import bench, demo
from csc.cli.argtypes import nonneg_float, nonneg_int, positive_float, positive_int, unit_interval
from csc.core.cbpdn import ConvBPDN
from csc.dictionary.io import dictionary_metadata, load_dictionary, save_codes, save_dictionary, sha256_of_array, shipped_dictionaries
from csc.core.options import CBPDNOptions
from csc.pipeline.preprocess import Preprocess
from csc.core.checks import check_image_size
from csc.dictionary.io import atomic_write
from csc.runtime.device import resolve_device
from csc.runtime.outputs import output_dir, prepare_file_parent

__all__ = ["main", "EncodedImage"]


@dataclass(frozen=True)
class EncodedImage:
    """One row of ``csc encode``'s results (written to ``results.json``)."""

    name: str
    height: int
    width: int
    psnr: float
    sparseness: float
    nonzeros: int
    iterations: int
    seconds: float
    codes_file: str
    reconstruction_file: str


def _load_images(specs: Sequence[str], crop: int | None, colour: bool = False) -> list[tuple[str, np.ndarray]]:
    """(name, image) for each spec: gray (H, W), or RGB (3, H, W) with ``colour``; centre-cropped."""
    from csc.pipeline.sources.folders import BUILTIN_PHOTOGRAPH_NAMES, builtin_photographs, read_image

    out: list[tuple[str, np.ndarray]] = []
    for spec in specs:
        if spec.startswith("builtin:"):
            name = spec.split(":", 1)[1]
            names = BUILTIN_PHOTOGRAPH_NAMES if name == "all" else (name,)
            photos = builtin_photographs(names, colour=colour)
            out.extend(zip(photos.names, photos.images))
        else:
            out.append((Path(spec).stem, read_image(spec, colour=colour)))
    if crop is not None:
        cropped = []
        for name, img in out:
            H, W = img.shape[-2:]
            if min(H, W) < crop:
                raise ValueError(f"--crop: {name} is {H}×{W}, smaller than {crop}")
            r0, c0 = (H - crop) // 2, (W - crop) // 2
            cropped.append((name, img[..., r0:r0 + crop, c0:c0 + crop]))
        out = cropped
    return out


def _check_colour_dictionary(D: torch.Tensor, colour: bool, arg: str) -> None:
    """--colour takes a multi-channel (K, 3, kh, kw) dictionary (or a single-channel one, each
    channel then coded on its own); gray images take a single-channel one."""
    if D.ndim == 4 and not colour:
        raise ValueError(f"{arg}: a multi-channel dictionary {tuple(D.shape)} needs colour images: add --colour")
    if D.ndim == 4 and D.shape[1] != 3:
        raise ValueError(f"{arg}: --colour images have 3 channels, the dictionary {tuple(D.shape)} has {D.shape[1]}")


def _init_distributed(args: argparse.Namespace) -> torch.device:
    """Join torchrun's process group when there is one (WORLD_SIZE > 1); this process's device.
    A group initialised here is left again when the command ends (:func:`main`)."""
    import torch.distributed as tdist

    from csc.runtime.distributed import init_distributed

    before = tdist.is_available() and tdist.is_initialized()
    device = init_distributed(args.device, arg="--device")
    args._owns_process_group = not before and tdist.is_available() and tdist.is_initialized()
    return device


def _encode_one(name: str, img: np.ndarray, solver: ConvBPDN, pre: Preprocess, out: Path,
                args: argparse.Namespace, dsha: str, dtype: torch.dtype, device: torch.device) -> "EncodedImage":
    """Code one image for ``csc encode``; write its codes and reconstruction."""
    from matplotlib import image as mpimg

    from csc.science.metrics import psnr, sparseness

    s = torch.from_numpy(img).to(dtype=dtype, device=device)
    signal, state = pre.forward(s)
    t0 = time.perf_counter()
    H, W = img.shape[-2:]
    res = solver.solve(signal) if args.boundary == "periodic" else solver.solve(signal, boundary=args.boundary)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    # gray: codes (1, K, H, W); colour with a multi-channel dictionary: (1, K, H, W) and a
    # (1, 3, H, W) reconstruction; colour with a single-channel one: (3, K, H, W), each channel alone;
    # "mask": codes on the padded grid, the reconstruction cropped back
    recon = pre.inverse(res.reconstruct()[..., :H, :W].reshape(s.shape), state)
    codes = res.codes if res.codes.shape[0] > 1 else res.codes[:1]
    codes_file = out / f"{name}.codes.npz"
    save_codes(codes_file, (codes if codes.shape[0] > 1 else codes[0]).float(), {
        "image": name, "lmbda": args.lmbda, "preprocess": args.preprocess,
        "dictionary": str(args.dictionary), "dictionary_sha256": dsha,
        "max_iter": args.max_iter, "rel_stop_tol": args.rel_stop_tol, "boundary": args.boundary,
    })
    recon_file = out / f"{name}.recon.png"
    rec = recon.clamp(0, 1).cpu().numpy()
    if rec.ndim == 3:  # colour (3, H, W)
        mpimg.imsave(recon_file, np.ascontiguousarray(np.moveaxis(rec, 0, -1)))
    else:
        mpimg.imsave(recon_file, rec, cmap="gray", vmin=0, vmax=1)
    return EncodedImage(
        name=name, height=img.shape[-2], width=img.shape[-1],
        psnr=float(psnr(s.reshape(-1, s.shape[-1]), recon.reshape(-1, s.shape[-1]))),  # over all channels
        sparseness=float(sparseness(codes.reshape(-1, *codes.shape[-3:])).mean()),
        nonzeros=int((codes != 0).sum()), iterations=int(res.iterations[0]), seconds=seconds,
        codes_file=codes_file.name, reconstruction_file=recon_file.name,
    )


def _encode_solver(D: torch.Tensor, args: argparse.Namespace, dtype: torch.dtype, device: torch.device):
    """``csc encode``'s solver: ConvBPDN (periodic boundaries), or for ``--boundary mask``
    ConvBPDNMaskDcpl on the masked padding, with ρ = 50λ + 0.1 fixed (SPORCO's examples)."""
    common = dict(max_iter=args.max_iter, rel_stop_tol=args.rel_stop_tol, record_stats=False, dtype=dtype,
                  device=device)
    if args.boundary == "periodic":
        return ConvBPDN(D, args.lmbda, CBPDNOptions(**common))
    from csc.core.maskdcpl import ConvBPDNMaskDcpl
    from csc.core.options import MaskDcplOptions

    return ConvBPDNMaskDcpl(D, args.lmbda, MaskDcplOptions(rho=50.0 * args.lmbda + 0.1, **common))


def cmd_encode(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    device = resolve_device(args.device, arg="--device")
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    D = load_dictionary(args.dictionary, dtype=dtype, device=device)
    meta = dictionary_metadata(args.dictionary)
    _check_colour_dictionary(D, args.colour, "--dictionary")
    solver = _encode_solver(D, args, dtype, device)
    images = _load_images(args.images, args.crop, args.colour)
    for name, img in images:  # every image is checked before anything is written
        check_image_size(f"images: {name}", *img.shape[-2:], D.shape[-2:])
    pre = Preprocess(args.preprocess)
    summary = {
        "dictionary": str(args.dictionary), "kernels": list(D.shape), "lmbda": args.lmbda,
        "preprocess": args.preprocess, "max_iter": args.max_iter, "rel_stop_tol": args.rel_stop_tol,
        "boundary": args.boundary, "device": str(device), "dtype": args.dtype, "colour": bool(args.colour),
        "images": [],
    }
    dsha = meta.get("sha256") or sha256_of_array(D.cpu().numpy())
    rows: list[EncodedImage] = []
    with output_dir(args.out, "--out") as out:
        for name, img in tqdm(images, desc="encode", unit="image", disable=args.quiet):
            rows.append(_encode_one(name, img, solver, pre, out, args, dsha, dtype, device))
            summary["images"] = [asdict(r) for r in rows]  # results.json always lists every code file
            atomic_write(out / "results.json", lambda f: f.write(json.dumps(summary, indent=2).encode()))
    print(f"{'image':<12} {'size':>9} {'PSNR dB':>8} {'sparseness':>10} {'nonzeros':>9} {'iters':>6} {'s':>7}")
    for r in rows:
        print(f"{r.name:<12} {f'{r.height}x{r.width}':>9} {r.psnr:8.2f} {r.sparseness:10.5f} "
              f"{r.nonzeros:9d} {r.iterations:6d} {r.seconds:7.2f}")
    print(f"wrote {len(rows)} code files, reconstructions and results.json to {args.out}")
    return 0


def cmd_loggabor(args: argparse.Namespace) -> int:
    from csc.dictionary.colour import colour_loggabor_dictionary
    from csc.dictionary.loggabor import loggabor_dictionary

    prepare_file_parent(args.out, "--out")
    kernels, params = loggabor_dictionary(args.preset, size=args.size, normalise=args.normalise,
                                          dtype=torch.float32, form=args.form)
    colour_axes = None
    if args.colour:
        if args.normalise != "unit" or args.form != "library":
            raise ValueError("--colour: the colour dictionary is built from unit-norm library-form kernels")
        kernels, params, colour_axes = colour_loggabor_dictionary(args.preset, size=args.size)
    meta = {
        "name": args.name or args.preset, "made_by": "csc.loggabor_dictionary",
        "command": (f"csc loggabor --preset {args.preset} --size {args.size} --normalise {args.normalise} "
                    f"--form {args.form} --out {Path(args.out).name}"),
        "preset": args.preset, "size": args.size, "normalise": args.normalise, "form": args.form,
        "theta": params.theta.tolist(), "b_theta": params.b_theta.tolist(), "phase": params.phase.tolist(),
    }
    if colour_axes is not None:
        meta["command"] += " --colour"
        meta["colour_axes"] = list(colour_axes)
        meta["colour"] = ("each log-Gabor kernel (theta, b_theta, phase) times each opponent direction "
                          "L, RG, BY (csc.dictionary.colour), kernel outer, direction inner")
    path = save_dictionary(args.out, kernels, meta)
    print(f"wrote {kernels.shape[0]} kernels {'3x' if args.colour else ''}{args.size}x{args.size} ({args.preset}) to {path}")
    return 0


def cmd_dictionaries(args: argparse.Namespace) -> int:
    for name, entry in sorted(shipped_dictionaries().items()):
        print(f"{name:<26} {entry.get('description', '')}")
    return 0


# --------------------------------------------------------------- dataset stores (issue 5)
def _load_dataset(args: argparse.Namespace):
    """(images, labels, ids, source description) for ``csc encode-dataset``."""
    from csc.pipeline import sources as data

    if args.dataset == "fashion-mnist":
        ds = data.load_fashion_mnist(args.split, args.root)
        images, labels = ds.images, ds.labels
    elif args.dataset == "cifar10":
        if args.root is None:
            raise ValueError("--root: the CIFAR-10 folder or archive is required")
        ds = data.load_cifar10(args.root, args.split)
        images, labels = ds.images, ds.labels
    else:
        if args.root is None:
            raise ValueError("--root: the image folder is required")
        ds = data.load_image_folder(args.root)
        images, labels = ds.stack(), ds.labels
        if images.ndim == 4 and images.shape[-1] in (3, 4):
            images = np.ascontiguousarray(images[..., :3].transpose(0, 3, 1, 2))
    start = args.start
    if start >= len(labels):
        raise ValueError(f"--start: {start} is past the end of the {args.split} split ({len(labels)} images)")
    stop = len(labels) if args.count is None else min(len(labels), start + args.count)
    ids = np.arange(start, stop, dtype=np.int64)
    source = {"dataset": args.dataset, "split": args.split, "root": str(args.root) if args.root else None,
              "start": start, "count": int(stop - start)}
    return images[start:stop], labels[start:stop], ids, source


def cmd_encode_dataset(args: argparse.Namespace) -> int:
    from csc.runtime.distributed import get_world_size, is_main_process
    from csc.pipeline.store import EncodeSettings, encode_dataset

    settings = EncodeSettings(
        dictionary=args.dictionary, lmbda=args.lmbda, max_iter=args.max_iter, rel_stop_tol=args.rel_stop_tol,
        size=args.size, preprocess=args.preprocess, value_dtype=args.value_dtype, shard_size=args.shard_size,
        solver_dtype=args.dtype, colour=args.colour, l1_weight=args.l1_weight, relax=args.relax,
        rsdl_ratio=args.rsdl_ratio,
    )
    if args.colour and args.dataset == "fashion-mnist":
        raise ValueError("--colour: Fashion-MNIST is gray; colour encoding takes cifar10 or a folder of colour images")
    device = _init_distributed(args)
    images, labels, ids, source = _load_dataset(args)
    store = encode_dataset(images, labels, args.out, settings, ids=ids, source=source,
                           device=device, progress=not args.quiet)
    if not is_main_process():
        return 0
    m = store.manifest
    if get_world_size() > 1:
        print(f"encoded by {get_world_size()} processes")
    print(f"{m['num_images']} images in {len(store.shards)} shards at {args.out}: "
          f"{m['bytes_per_image']:.0f} bytes/image vs {m['dense_float32_bytes_per_image']} dense float32 "
          f"({m['compression_vs_dense_float32']:.0f}x smaller), {m['nnz_per_image']:.0f} nonzeros/image, "
          f"{m['seconds_per_image'] * 1000:.1f} ms/image encoding")
    return 0


def cmd_store_verify(args: argparse.Namespace) -> int:
    from csc.pipeline.store import verify_store

    status = 0
    for root in args.stores:
        problems = verify_store(root)
        if problems:
            status = 1
            print(f"{root}: {len(problems)} problem(s)")
            for p in problems:
                print(f"  {p}")
        else:
            print(f"{root}: ok")
    return status


def cmd_train(args: argparse.Namespace) -> int:
    from csc.pipeline.datasets import PixelDataset, SparseCodeDataset
    from csc.pipeline.store import check_same_encoding
    from csc.runtime.distributed import is_main_process
    from csc.classify.train import TrainOptions, last_evaluated, train

    device = _init_distributed(args)
    norm = tuple(args.normalise) if args.normalise else None
    if args.pixels:
        from csc.pipeline import sources as data

        tr, te = data.load_fashion_mnist("train", args.root), data.load_fashion_mnist("test", args.root)
        s0, n0 = args.train_start, args.train_count
        s1, n1 = args.test_start, args.test_count
        tr_sl = slice(s0, None if n0 is None else s0 + n0)
        te_sl = slice(s1, None if n1 is None else s1 + n1)
        for arg, start, n in (("--train-start", s0, len(tr.labels)), ("--test-start", s1, len(te.labels))):
            if start >= n:
                raise ValueError(f"{arg}: {start} is past the end of the split ({n} images)")
        train_set = PixelDataset(tr.images[tr_sl], tr.labels[tr_sl], size=args.size, hflip=args.hflip,
                                 normalise=norm, seed=args.seed)
        test_set = PixelDataset(te.images[te_sl], te.labels[te_sl], size=args.size, normalise=norm)
        encoding = args.label or "pixels"
    else:
        if not args.store or not args.test_store:
            raise ValueError("--store and --test-store are required (or --pixels fashion-mnist)")
        relative = not args.absolute
        train_set = SparseCodeDataset(args.store, prune=args.prune, relative=relative, size=args.size,
                                      hflip=args.hflip, normalise=norm, seed=args.seed)
        test_set = SparseCodeDataset(args.test_store, prune=args.prune, relative=relative, size=args.size,
                                     normalise=norm)
        check_same_encoding(train_set.store, test_set.store, "--test-store")
        encoding = args.label or train_set.store.manifest["settings"]["dictionary"]
    opts = TrainOptions(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, betas=(args.beta1, args.beta2), eps=args.eps,
        weight_decay=args.weight_decay, seed=args.seed, stem=args.stem, dropout=args.dropout,
        amp={"auto": None, "on": True, "off": False}[args.amp], device=str(device),
        max_steps=args.max_steps, num_workers=args.workers, schedule=args.schedule,
        eval_every=args.eval_every,
    )
    run = {"encoding": encoding, "pruning": args.prune or None, "relative": None if args.pixels else not args.absolute,
           "seed": args.seed}
    res = train(train_set, test_set, args.out, opts, run=run, progress=not args.quiet)
    last = last_evaluated(res["epochs"])
    if last is not None and is_main_process():
        print(f"{args.out}: epoch {last['epoch']}: test accuracy {last['test_acc']:.2f}% (loss {last['test_loss']:.4f})")
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    from csc.classify.train import aggregate_runs, plot_runs, table_markdown

    runs = [Path(r) for r in args.runs if (Path(r) / "metrics.json").is_file()]
    if not runs:
        raise ValueError("runs: no run folders with metrics.json given")
    for opt in ("markdown", "json", "curves"):
        if getattr(args, opt):
            prepare_file_parent(getattr(args, opt), f"--{opt}")
    agg = aggregate_runs(runs, metric=args.metric, which=args.which)
    md = table_markdown(agg)
    print(md, end="")
    if args.markdown:
        atomic_write(args.markdown, lambda f: f.write(md.encode()))
    if args.json:
        slim = {**agg, "runs": [str(r) for r in runs]}
        atomic_write(args.json, lambda f: f.write(json.dumps(slim, indent=1).encode()))
    if args.curves:
        plot_runs(agg, args.curves)
    return 0


def _learn_images(spec: str, colour: bool = False) -> list[tuple[str, np.ndarray]]:
    """``builtin`` (every built-in photograph), ``builtin:a,b`` or a folder of images; gray,
    or RGB (3, H, W) with ``colour``."""
    from csc.pipeline.sources.folders import builtin_photographs, list_image_files, read_image

    if spec == "builtin" or spec.startswith("builtin:"):
        names = None if spec == "builtin" else [n for n in spec.split(":", 1)[1].split(",") if n]
        photos = builtin_photographs(names, colour=colour)
        return list(zip(photos.names, photos.images))
    files = list_image_files(spec, recursive=False)
    if not files:
        raise FileNotFoundError(f"--images: no image files in {spec!r}")
    return [(f.stem, read_image(f, colour=colour)) for f in files]


def cmd_learn(args: argparse.Namespace) -> int:
    from csc.learn.dictlearn import DICTLEARN_CBPDN_DEFAULTS, DictLearn, DictLearnOptions, DictUpdateOptions, plot_objective, random_crops
    from csc.runtime.distributed import get_world_size, is_main_process
    from csc.learn.onlinecdl import ONLINE_CBPDN_DEFAULTS, ImageSampler, OnlineDictLearn, OnlineDictLearnOptions

    device = _init_distributed(args)
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    if args.steps < 1:
        raise ValueError(f"--steps: expected >= 1, got {args.steps}")
    world = get_world_size()
    if world > 1 and args.method != "online":
        raise ValueError(f"--method {args.method}: only the online learner runs data-parallel; "
                         "use --method online under torchrun, or run the batch learner in one process")
    if world > 1 and args.batch_size < world:
        raise ValueError(f"--batch-size {args.batch_size}: the global minibatch must have at least one image "
                         f"per process ({world})")
    named = _learn_images(args.images, args.colour)
    pre = Preprocess(args.preprocess)
    signals = []
    for name, img in named:
        s = torch.from_numpy(img).to(torch.float64)
        signals.append(pre.forward(s)[0].to(dtype))
    g = torch.Generator().manual_seed(args.seed)
    if args.init == "random":
        shape = (args.kernels,) + ((3,) if args.colour else ()) + (args.kernel_size, args.kernel_size)
        D0 = torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)
        init_desc = f"random normal (seed {args.seed}), {args.kernels} kernels {'3x' if args.colour else ''}" \
                    f"{args.kernel_size}x{args.kernel_size}"
    else:
        D0 = load_dictionary(args.init, dtype=dtype)
        init_desc = str(args.init)
    _check_colour_dictionary(D0, args.colour, "--init")
    D0 = D0.to(device)
    out = Path(args.out)
    ckpt = Path(args.checkpoint) if args.checkpoint else out.with_name(out.stem + ".ckpt.npz")
    prepare_file_parent(out, "--out")  # before learning, not after an hour of it
    if args.checkpoint:
        prepare_file_parent(ckpt, "--checkpoint")
    every = args.checkpoint_every
    common = dict(checkpoint=ckpt if (every or args.resume) else None, checkpoint_every=every,
                  resume=args.resume, progress=not args.quiet)
    cbpdn_extra = {} if args.cbpdn_iter is None else {"max_iter": args.cbpdn_iter}
    if args.method == "batch":
        if args.crop:
            S = random_crops(signals, args.crop, g)
        else:
            if len({tuple(s.shape) for s in signals}) > 1:
                raise ValueError("--crop: the images differ in size; give a crop size for the batch learner")
            S = torch.stack(signals)
        opts = DictLearnOptions(max_iter=args.steps, dmethod=args.dmethod, dtype=dtype, device=device,
                                cbpdn=DICTLEARN_CBPDN_DEFAULTS.replace(**cbpdn_extra),
                                ccmod=DictUpdateOptions(zero_mean=args.zero_mean, nonneg=args.nonneg,
                                                        L=args.pgm_L, rho=args.cns_rho))
        result = DictLearn(D0, args.lmbda, opts).solve(S.to(device), **common)
        D, stats, options_json = result.dictionary, result.stats, opts.to_json()
    else:
        sampler = ImageSampler(signals, batch_size=args.batch_size, crop=args.crop, generator=g)
        opts = OnlineDictLearnOptions(eta_a=args.eta_a, eta_b=args.eta_b, zero_mean=args.zero_mean,
                                      nonneg=args.nonneg, dtype=dtype, device=device,
                                      cbpdn=ONLINE_CBPDN_DEFAULTS.replace(**cbpdn_extra))
        result = OnlineDictLearn(D0, args.lmbda, opts).fit(sampler, args.steps, **common)
        D, stats = result.dictionary, result.stats
        if not is_main_process():  # rank 0 writes the dictionary, statistics and plot
            return 0
        from csc.learn.dictlearn import _jsonable

        options_json = _jsonable(opts)
    meta = {
        "name": out.stem, "made_by": "csc learn", "method": args.method, "lmbda": args.lmbda,
        "steps": args.steps, "images": args.images, "image_names": [n for n, _ in named],
        "preprocess": args.preprocess, "crop": args.crop, "batch_size": args.batch_size, "seed": args.seed,
        "colour": bool(args.colour),
        "init": init_desc, "dtype": args.dtype, "options": options_json,
        "final_objective": float(stats.objective[-1]) if len(stats) else None,
    }
    if args.method == "batch":
        meta["dmethod"] = args.dmethod
    path = save_dictionary(out, D.detach().cpu(), meta)
    stats_path = out.with_name(out.stem + ".stats.json")
    stats_path.write_text(json.dumps(stats.to_dict()))
    plot_path = plot_objective(stats, out.with_name(out.stem + ".objective.png"),
                               title=f"csc learn ({args.method}), λ = {args.lmbda}")
    print(f"wrote {D.shape[0]} kernels {'x'.join(map(str, D.shape[1:]))} to {path}; statistics {stats_path.name}, "
          f"plot {plot_path.name}; final objective {meta['final_objective']:.6g}")
    return 0


def _add_encode(sub) -> None:
    """``csc encode``: sparse-code image files with one dictionary."""
    e = sub.add_parser("encode", help="sparse-code images and write codes, reconstructions and metrics")
    e.add_argument("images", nargs="+", help="image files, or builtin:NAME / builtin:all")
    e.add_argument("--dictionary", required=True, help="dictionary file or shipped name (csc dictionaries)")
    e.add_argument("--lmbda", type=nonneg_float, required=True, help="regularisation weight λ")
    e.add_argument("--out", default="out/encode", help="output folder (default out/encode)")
    e.add_argument("--max-iter", type=positive_int, default=200)
    e.add_argument("--rel-stop-tol", type=nonneg_float, default=1e-3)
    e.add_argument("--preprocess", choices=["highpass", "lcn", "none"], default="highpass",
                   help="code the Tikhonov highpass (SPORCO examples, default), the local-contrast-"
                        "normalised image (authors' code) or the raw image")
    e.add_argument("--crop", type=positive_int, default=None, help="central square crop of this side")
    e.add_argument("--colour", action="store_true",
                   help="code RGB images: with a (K, 3, kh, kw) dictionary one map per kernel for the three "
                        "channels; with a (K, kh, kw) one each channel on its own (preprocessing per channel)")
    e.add_argument("--boundary", choices=["periodic", "mask"], default="periodic",
                   help="periodic: circular convolution (default); mask: pad by the kernel size - 1 and mask "
                        "the padding (ConvBPDNMaskDcpl), codes on the padded grid, no wrap-around")
    e.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    e.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=cmd_encode)


def _add_loggabor(sub) -> None:
    """``csc loggabor``: write a log-Gabor dictionary file."""
    g = sub.add_parser("loggabor", help="generate a log-Gabor dictionary file")
    g.add_argument("--preset", choices=["homogeneous", "heterogeneous"], default="heterogeneous")
    g.add_argument("--size", type=positive_int, default=12)
    g.add_argument("--normalise", choices=["unit", "authors"], default="unit")
    g.add_argument("--form", choices=["library", "paper"], default="library")
    g.add_argument("--name", default=None)
    g.add_argument("--colour", action="store_true",
                   help="a colour dictionary (3K, 3, size, size): each kernel in the L, RG and BY opponent directions")
    g.add_argument("--out", required=True)
    g.set_defaults(func=cmd_loggabor)


def _add_learn(sub) -> None:
    """``csc learn``: batch or online dictionary learning, with checkpoints."""
    lr = sub.add_parser("learn", help="learn a convolutional dictionary (batch or online), with checkpoints")
    lr.add_argument("--images", required=True, help="builtin, builtin:NAME[,NAME...] or a folder of images")
    lr.add_argument("--init", default="random", help="initial dictionary: a file / shipped name, or random")
    lr.add_argument("--lmbda", type=nonneg_float, required=True, help="regularisation weight λ")
    lr.add_argument("--steps", type=positive_int, required=True, help="outer iterations (batch) or minibatch steps (online)")
    lr.add_argument("--out", required=True, help="dictionary file to write (.npz)")
    lr.add_argument("--resume", action="store_true", help="continue from the checkpoint when there is one")
    lr.add_argument("--method", choices=["batch", "online"], default="batch")
    lr.add_argument("--dmethod", choices=["pgm", "cns"], default="pgm", help="batch learner's dictionary step")
    lr.add_argument("--crop", type=positive_int, default=None, help="random square crops of this side")
    lr.add_argument("--preprocess", choices=["highpass", "lcn", "none"], default="highpass")
    lr.add_argument("--colour", action="store_true",
                    help="learn a multi-channel (K, 3, kh, kw) dictionary from RGB images (preprocessing per channel)")
    lr.add_argument("--batch-size", type=positive_int, default=1, help="online learner: images per step")
    lr.add_argument("--checkpoint", default=None, help="checkpoint file (default OUT stem + .ckpt.npz)")
    lr.add_argument("--checkpoint-every", type=nonneg_int, default=100, help="steps between checkpoints (0: none)")
    lr.add_argument("--seed", type=nonneg_int, default=0, help="seed of the generator for crops and random init")
    lr.add_argument("--kernels", type=positive_int, default=64, help="random init: number of kernels")
    lr.add_argument("--kernel-size", type=positive_int, default=8, help="random init: kernel side")
    lr.add_argument("--zero-mean", action="store_true", help="zero-mean kernels")
    lr.add_argument("--nonneg", action="store_true", help="non-negative kernels")
    lr.add_argument("--eta-a", type=positive_float, default=10.0, help="online step size a/(i + b): a")
    lr.add_argument("--eta-b", type=positive_float, default=5.0, help="online step size a/(i + b): b")
    lr.add_argument("--pgm-L", type=positive_float, default=None, help="batch 'pgm': inverse step L (default 1)")
    lr.add_argument("--cns-rho", type=positive_float, default=None, help="batch 'cns': penalty ρ (default 1)")
    lr.add_argument("--cbpdn-iter", type=positive_int, default=None,
                    help="coding iterations per step (default 1 batch, 100 online)")
    lr.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    lr.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    lr.add_argument("--quiet", action="store_true", help="no progress bar")
    lr.set_defaults(func=cmd_learn)


def _add_dictionaries(sub) -> None:
    """``csc dictionaries``: list the shipped dictionaries."""
    d = sub.add_parser("dictionaries", help="list the shipped dictionaries")
    d.set_defaults(func=cmd_dictionaries)


def _add_encode_dataset(sub) -> None:
    """``csc encode-dataset``: code a dataset into a resumable code store."""
    ed = sub.add_parser("encode-dataset", help="sparse-code a dataset into a sharded, resumable code store")
    ed.add_argument("--dataset", choices=["fashion-mnist", "cifar10", "folder"], required=True)
    ed.add_argument("--root", default=None, help="dataset folder (Fashion-MNIST default: the Debian package's)")
    ed.add_argument("--split", choices=["train", "test"], default="train")
    ed.add_argument("--start", type=nonneg_int, default=0, help="first image of the split to encode")
    ed.add_argument("--count", type=positive_int, default=None, help="number of images (default: all from --start)")
    ed.add_argument("--dictionary", default="heterogeneous", help="dictionary file or shipped name")
    ed.add_argument("--lmbda", type=nonneg_float, default=0.1)
    ed.add_argument("--max-iter", type=positive_int, default=100)
    ed.add_argument("--rel-stop-tol", type=nonneg_float, default=1e-2)
    ed.add_argument("--l1-weight", type=nonneg_float, default=1.0, help="scalar L1Weight (default 1)")
    ed.add_argument("--relax", type=positive_float, default=1.8, help="RelaxParam (default 1.8)")
    ed.add_argument("--rsdl-ratio", type=positive_float, default=1.2, help="AutoRho RsdlRatio (default 1.2)")
    ed.add_argument("--size", type=positive_int, default=None, help="bilinear resize to SIZE x SIZE before coding")
    ed.add_argument("--preprocess", choices=["highpass", "lcn", "none"], default="highpass")
    ed.add_argument("--value-dtype", choices=["float16", "float32"], default="float16")
    ed.add_argument("--colour", action="store_true",
                    help="code RGB images with a multi-channel (K, 3, kh, kw) dictionary (default: gray)")
    ed.add_argument("--shard-size", type=positive_int, default=256, help="images per shard (and per encoding batch)")
    ed.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    ed.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="solver dtype")
    ed.add_argument("--out", required=True, help="store folder (rerun the same command to resume)")
    ed.add_argument("--quiet", action="store_true")
    ed.set_defaults(func=cmd_encode_dataset)


def _add_store(sub) -> None:
    """``csc store verify``: check code stores against their manifests."""
    st = sub.add_parser("store", help="code store utilities")
    st_sub = st.add_subparsers(dest="store_command", required=True)
    sv = st_sub.add_parser("verify", help="check a store's shards against its manifest checksums")
    sv.add_argument("stores", nargs="+")
    sv.set_defaults(func=cmd_store_verify)


def _add_train(sub) -> None:
    """``csc train``: a ResNet-18 on a code store or on pixels."""
    tr = sub.add_parser("train", help="train a ResNet-18 on a code store (or on pixels); resumes from its checkpoint")
    tr.add_argument("--store", help="training code store")
    tr.add_argument("--test-store", help="test code store")
    tr.add_argument("--pixels", choices=["fashion-mnist"], default=None, help="pixel baseline on this dataset")
    tr.add_argument("--root", default=None, help="dataset folder for --pixels")
    tr.add_argument("--train-start", type=nonneg_int, default=0)
    tr.add_argument("--train-count", type=positive_int, default=None)
    tr.add_argument("--test-start", type=nonneg_int, default=0)
    tr.add_argument("--test-count", type=positive_int, default=None)
    tr.add_argument("--prune", type=nonneg_float, default=None, help="pruning threshold c (default none)")
    tr.add_argument("--absolute", action="store_true", help="prune |x| < c (default: |x| < c·max|x|)")
    tr.add_argument("--size", type=positive_int, default=None, help="resize inputs to SIZE x SIZE at load")
    tr.add_argument("--hflip", action="store_true", help="random horizontal flips")
    tr.add_argument("--normalise", type=float, nargs=2, metavar=("MEAN", "STD"), default=None)
    tr.add_argument("--epochs", type=positive_int, default=100)
    tr.add_argument("--batch-size", type=positive_int, default=128)
    tr.add_argument("--lr", type=positive_float, default=2e-4)
    tr.add_argument("--beta1", type=unit_interval, default=0.9)
    tr.add_argument("--beta2", type=unit_interval, default=0.99)
    tr.add_argument("--eps", type=positive_float, default=1e-8)
    tr.add_argument("--weight-decay", type=nonneg_float, default=0.0)
    tr.add_argument("--schedule", choices=["constant", "onecycle"], default="constant",
                    help="learning rate: constant, or OneCycleLR with max lr --lr (the authors')")
    tr.add_argument("--eval-every", type=positive_int, default=1,
                    help="evaluate on the test set every N epochs and after the last (default 1)")
    tr.add_argument("--seed", type=nonneg_int, default=0)
    tr.add_argument("--stem", choices=["imagenet", "cifar"], default="imagenet")
    tr.add_argument("--dropout", type=unit_interval, default=0.0)
    tr.add_argument("--amp", choices=["auto", "on", "off"], default="auto", help="mixed precision (CUDA only)")
    tr.add_argument("--device", default="auto")
    tr.add_argument("--max-steps", type=positive_int, default=None, help="at most this many batches per epoch")
    tr.add_argument("--workers", type=nonneg_int, default=None,
                    help="DataLoader worker processes (default: auto, min(4, CPUs) on CUDA and 0 on the CPU)")
    tr.add_argument("--label", default=None, help="encoding name in tables (default: dictionary or 'pixels')")
    tr.add_argument("--out", required=True, help="run folder: metrics.csv/json, curves.png, checkpoint.npz")
    tr.add_argument("--quiet", action="store_true")
    tr.set_defaults(func=cmd_train)


def _add_table(sub) -> None:
    """``csc table``: aggregate training runs into Table 1."""
    tb = sub.add_parser("table", help="aggregate training runs over seeds into Table 1 (Markdown, JSON, curves)")
    tb.add_argument("runs", nargs="+", help="run folders")
    tb.add_argument("--metric", default="test_acc")
    tb.add_argument("--which", choices=["last", "best"], default="last")
    tb.add_argument("--markdown", default=None, help="write the table here")
    tb.add_argument("--json", default=None, help="write the aggregate here")
    tb.add_argument("--curves", default=None, help="write Fig. 7-style curves (PNG) here")
    tb.set_defaults(func=cmd_table)


def build_parser() -> argparse.ArgumentParser:
    """The ``csc`` command line: one subcommand per ``_add_*`` helper."""
    p = argparse.ArgumentParser(prog="csc", description="Convolutional sparse coding on PyTorch.")
    sub = p.add_subparsers(dest="command", required=True)
    _add_encode(sub)
    _add_loggabor(sub)
    _add_learn(sub)
    bench.register(sub)
    _add_dictionaries(sub)
    _add_encode_dataset(sub)
    _add_store(sub)
    _add_train(sub)
    _add_table(sub)
    demo.register(sub)
    from csc.cli.paper import add_paper

    add_paper(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``csc`` command; its exit status (2 for bad arguments or input, with one line
    on stderr naming the argument)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse's own errors (already printed) and --help
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError, KeyError) as exc:
        print(f"csc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a disk that filled up, a folder made read-only while running …
        where = f" {str(exc.filename)!r}" if exc.filename else ""
        print(f"csc {args.command}: error: cannot write or read{where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    finally:
        if getattr(args, "_owns_process_group", False):
            from csc.runtime.distributed import cleanup

            cleanup()

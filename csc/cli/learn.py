"""``csc learn --images DIR|builtin[:NAME,...] --init FILE|NAME|random --lmbda L --steps N --out FILE``.

Learns a convolutional dictionary from preprocessed images, with the batch learner
(:class:`csc.DictLearn`, ``--method batch``, dictionary step ``--dmethod pgm|cns|ism``) or the
online one (:class:`csc.OnlineDictLearn`, ``--method online``, data-parallel under
``torchrun``), checkpointing every ``--checkpoint-every`` steps and resuming with
``--resume``. Writes the dictionary (``OUT``, with a manifest naming the images, the
options and the final objective), its statistics (``OUT-stem.stats.json``) and the
objective's plot (``OUT-stem.objective.png``). Every output's folder is checked writable
before learning starts.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from csc.cli.argtypes import nonneg_float, nonneg_int, positive_float, positive_int
from csc.cli.common import check_colour_dictionary, init_distributed, torch_dtype

__all__ = ["register", "run"]


def register(sub) -> None:
    """``csc learn``: batch or online dictionary learning, with checkpoints."""
    lr = sub.add_parser("learn", help="learn a convolutional dictionary (batch or online), with checkpoints")
    lr.add_argument("--images", required=True, help="builtin, builtin:NAME[,NAME...] or a folder of images")
    lr.add_argument("--init", default="random", help="initial dictionary: a file / shipped name, or random")
    lr.add_argument("--lmbda", type=nonneg_float, required=True, help="regularisation weight λ")
    lr.add_argument("--steps", type=positive_int, required=True, help="outer iterations (batch) or minibatch steps (online)")
    lr.add_argument("--out", required=True, help="dictionary file to write (.npz)")
    lr.add_argument("--resume", action="store_true", help="continue from the checkpoint when there is one")
    lr.add_argument("--overwrite", action="store_true",
                    help="replace an existing --out file (refused by default, unless --resume)")
    lr.add_argument("--overwrite-checkpoint", action="store_true",
                    help="replace a checkpoint file that is not a checkpoint of this run (refused by default)")
    lr.add_argument("--method", choices=["batch", "online"], default="batch")
    lr.add_argument("--dmethod", choices=["pgm", "cns", "ism"], default="pgm", help="batch learner's dictionary step")
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
    lr.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Learn the dictionary; rank 0 writes it with its statistics and objective plot."""
    from csc.dictionary.io import save_dictionary
    from csc.learn.dictlearn import plot_objective
    from csc.runtime.distributed import get_world_size, is_main_process
    from csc.runtime.outputs import claim_file, prepare_file_parent

    device = init_distributed(args)
    dtype = torch_dtype(args.dtype)
    _check_world(args, get_world_size())
    named = _learn_images(args.images, args.colour)
    signals = _signals(named, args.preprocess, dtype)
    g = torch.Generator().manual_seed(args.seed)
    D0, init_desc = _initial_dictionary(args, g, dtype)
    D0 = D0.to(device)
    out = Path(args.out)
    ckpt = _checkpoint_path(args)
    claim_file(args.out, "--out", overwrite=args.overwrite or args.resume)  # before learning, not after an hour
    if args.checkpoint:
        prepare_file_parent(ckpt, "--checkpoint")
    every = args.checkpoint_every
    common = dict(checkpoint=ckpt if (every or args.resume) else None, checkpoint_every=every,
                  resume=args.resume, progress=not args.quiet, overwrite=args.overwrite_checkpoint)
    learn = _learn_batch if args.method == "batch" else _learn_online
    D, stats, options_json = learn(args, D0, signals, g, dtype, device, common)
    if not is_main_process():  # rank 0 writes the dictionary, statistics and plot
        return 0
    meta = _dictionary_meta(args, out, named, init_desc, options_json, stats)
    path = save_dictionary(out, D.detach().cpu(), meta)
    stats_path = out.with_name(out.stem + ".stats.json")
    stats_path.write_text(json.dumps(stats.to_dict()))
    plot_path = plot_objective(stats, out.with_name(out.stem + ".objective.png"),
                               title=f"csc learn ({args.method}), λ = {args.lmbda}")
    print(f"wrote {D.shape[0]} kernels {'x'.join(map(str, D.shape[1:]))} to {path}; statistics {stats_path.name}, "
          f"plot {plot_path.name}; final objective {meta['final_objective']:.6g}")
    return 0


def _checkpoint_path(args: argparse.Namespace) -> Path:
    """``--checkpoint``, default OUT's stem + ``.ckpt.npz``."""
    out = Path(args.out)
    return Path(args.checkpoint) if args.checkpoint else out.with_name(out.stem + ".ckpt.npz")


def interrupted(args: argparse.Namespace) -> str:
    """What Ctrl-C left (:func:`csc.cli.main.main` prints it)."""
    ckpt = _checkpoint_path(args)
    if args.checkpoint_every and ckpt.is_file():
        return f"the last checkpoint is kept in {str(ckpt)!r}; run the same command with --resume to continue"
    return "no checkpoint was written (see --checkpoint-every); run the same command again to start over"


def _check_world(args: argparse.Namespace, world: int) -> None:
    """ValueError unless the steps and, under torchrun, the method and minibatch suit ``world`` processes."""
    if args.steps < 1:
        raise ValueError(f"--steps: expected >= 1, got {args.steps}")
    if args.zero_mean and args.init == "random" and args.kernel_size == 1:
        raise ValueError("--zero-mean: a 1×1 kernel of zero mean is zero (the dictionary would be all zero); "
                         "use --kernel-size 2 or more, or leave --zero-mean off")
    if world > 1 and args.method != "online":
        raise ValueError(f"--method {args.method}: only the online learner runs data-parallel; "
                         "use --method online under torchrun, or run the batch learner in one process")
    if world > 1 and args.batch_size < world:
        raise ValueError(f"--batch-size {args.batch_size}: the global minibatch must have at least one image "
                         f"per process ({world})")


def _learn_images(spec: str, colour: bool = False) -> list[tuple[str, np.ndarray]]:
    """``builtin`` (every built-in photograph), ``builtin:a,b`` or a folder of images; gray,
    or RGB (3, H, W) with ``colour``."""
    from csc.pipeline.sources.folders import (BUILTIN_PHOTOGRAPH_NAMES, builtin_photographs, list_image_files,
                                              read_image)

    if spec == "builtin" or spec.startswith("builtin:"):
        names = None if spec == "builtin" else [n for n in spec.split(":", 1)[1].split(",") if n]
        if names == []:
            raise ValueError(f"--images: {spec!r} names no photograph; give builtin (all of them) or "
                             f"builtin:NAME[,NAME...] of {', '.join(BUILTIN_PHOTOGRAPH_NAMES)}")
        photos = builtin_photographs(names, colour=colour)
        return list(zip(photos.names, photos.images))
    files = list_image_files(spec, recursive=False)
    if not files:
        raise FileNotFoundError(f"--images: no image files in {spec!r}")
    return [(f.stem, read_image(f, colour=colour)) for f in files]


def _signals(named: list[tuple[str, np.ndarray]], preprocess: str, dtype: torch.dtype) -> list[torch.Tensor]:
    """Each image preprocessed (in float64), then cast to the learning dtype."""
    from csc.pipeline.preprocess import Preprocess

    pre = Preprocess(preprocess)
    return [pre.forward(torch.from_numpy(img).to(torch.float64))[0].to(dtype) for _, img in named]


def _initial_dictionary(args: argparse.Namespace, g: torch.Generator, dtype: torch.dtype):
    """(D0, description): seeded Gaussian kernels for ``--init random``, else the named file or
    shipped dictionary; checked against ``--colour``."""
    from csc.dictionary.io import load_dictionary

    if args.init == "random":
        shape = (args.kernels,) + ((3,) if args.colour else ()) + (args.kernel_size, args.kernel_size)
        D0 = torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)
        init_desc = f"random normal (seed {args.seed}), {args.kernels} kernels {'3x' if args.colour else ''}" \
                    f"{args.kernel_size}x{args.kernel_size}"
    else:
        D0 = load_dictionary(args.init, dtype=dtype)
        init_desc = str(args.init)
    check_colour_dictionary(D0, args.colour, "--init")
    return D0, init_desc


def _learn_batch(args, D0, signals, g, dtype, device, common):
    """``--method batch``: :class:`csc.DictLearn` on the crops (or the equal-sized images);
    (dictionary, statistics, options as JSON)."""
    from csc.learn.dictlearn import (DICTLEARN_CBPDN_DEFAULTS, DictLearn, DictLearnOptions, DictUpdateOptions,
                                     random_crops)

    if args.crop:
        S = random_crops(signals, args.crop, g)
    else:
        if len({tuple(s.shape) for s in signals}) > 1:
            raise ValueError("--crop: the images differ in size; give a crop size for the batch learner")
        S = torch.stack(signals)
    opts = DictLearnOptions(max_iter=args.steps, dmethod=args.dmethod, dtype=dtype, device=device,
                            cbpdn=DICTLEARN_CBPDN_DEFAULTS.replace(**_cbpdn_extra(args)),
                            ccmod=DictUpdateOptions(zero_mean=args.zero_mean, nonneg=args.nonneg,
                                                    L=args.pgm_L, rho=args.cns_rho))
    result = DictLearn(D0, args.lmbda, opts).solve(S.to(device), **common)
    return result.dictionary, result.stats, opts.to_json()


def _learn_online(args, D0, signals, g, dtype, device, common):
    """``--method online``: :class:`csc.OnlineDictLearn` over minibatches of the images (random
    crops with ``--crop``); (dictionary, statistics, options as JSON)."""
    from csc.learn.dictlearn import _jsonable
    from csc.learn.onlinecdl import ONLINE_CBPDN_DEFAULTS, ImageSampler, OnlineDictLearn, OnlineDictLearnOptions

    sampler = ImageSampler(signals, batch_size=args.batch_size, crop=args.crop, generator=g)
    opts = OnlineDictLearnOptions(eta_a=args.eta_a, eta_b=args.eta_b, zero_mean=args.zero_mean,
                                  nonneg=args.nonneg, dtype=dtype, device=device,
                                  cbpdn=ONLINE_CBPDN_DEFAULTS.replace(**_cbpdn_extra(args)))
    result = OnlineDictLearn(D0, args.lmbda, opts).fit(sampler, args.steps, **common)
    return result.dictionary, result.stats, _jsonable(opts)


def _cbpdn_extra(args: argparse.Namespace) -> dict:
    """The coding options ``--cbpdn-iter`` changes (none when it is not given)."""
    return {} if args.cbpdn_iter is None else {"max_iter": args.cbpdn_iter}


def _dictionary_meta(args: argparse.Namespace, out: Path, named, init_desc: str, options_json, stats) -> dict:
    """The manifest of the learned dictionary: how it was learned, from what, and its final objective."""
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
    return meta

"""The ``csc`` command: thin sub-commands over the public API.

    csc encode IMAGE... --dictionary NAME|FILE --lmbda L [--out DIR] ...
    csc loggabor --preset heterogeneous --out FILE
    csc dictionaries

``IMAGE`` is a file path or ``builtin:NAME`` for a photograph shipped with scikit-image
(``builtin:camera``, ``builtin:astronaut``, …; ``builtin:all`` for every one).
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

from .cbpdn import ConvBPDN
from .io import dictionary_metadata, load_dictionary, save_codes, save_dictionary, sha256_of_array, shipped_dictionaries
from .options import CBPDNOptions

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


def _load_images(specs: Sequence[str], crop: int | None) -> list[tuple[str, np.ndarray]]:
    from .data.folders import BUILTIN_PHOTOGRAPH_NAMES, builtin_photographs, read_gray_image

    out: list[tuple[str, np.ndarray]] = []
    for spec in specs:
        if spec.startswith("builtin:"):
            name = spec.split(":", 1)[1]
            names = BUILTIN_PHOTOGRAPH_NAMES if name == "all" else (name,)
            photos = builtin_photographs(names)
            out.extend(zip(photos.names, photos.images))
        else:
            out.append((Path(spec).stem, read_gray_image(spec)))
    if crop is not None:
        cropped = []
        for name, img in out:
            if min(img.shape) < crop:
                raise ValueError(f"--crop: {name} is {img.shape[0]}×{img.shape[1]}, smaller than {crop}")
            r0, c0 = (img.shape[0] - crop) // 2, (img.shape[1] - crop) // 2
            cropped.append((name, img[r0:r0 + crop, c0:c0 + crop]))
        out = cropped
    return out


def _split(img: torch.Tensor, how: str):
    """Preprocess one image: returns (signal to code, function mapping a coded
    reconstruction back to image space)."""
    from . import preprocess

    if how == "highpass":
        low, high = preprocess.tikhonov_filter(img, 5.0, 16)
        return high, lambda r: r + low
    if how == "lcn":
        res = preprocess.local_contrast_normalise(img)
        return res.normalised, lambda r: res.norm * r + res.mean
    return img, lambda r: r


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def cmd_encode(args: argparse.Namespace) -> int:
    from matplotlib import image as mpimg
    from tqdm import tqdm

    from .metrics import psnr, sparseness

    device = _device(args.device)
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    D = load_dictionary(args.dictionary, dtype=dtype, device=device)
    meta = dictionary_metadata(args.dictionary)
    opts = CBPDNOptions(max_iter=args.max_iter, rel_stop_tol=args.rel_stop_tol, record_stats=False,
                        dtype=dtype, device=device)
    solver = ConvBPDN(D, args.lmbda, opts)
    images = _load_images(args.images, args.crop)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[EncodedImage] = []
    for name, img in tqdm(images, desc="encode", unit="image", disable=args.quiet):
        s = torch.from_numpy(img).to(dtype=dtype, device=device)
        signal, back = _split(s, args.preprocess)
        t0 = time.perf_counter()
        res = solver.solve(signal)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        recon = back(res.reconstruct()[0])
        codes = res.codes
        codes_file = out / f"{name}.codes.npz"
        save_codes(codes_file, codes[0].float(), {
            "image": name, "lmbda": args.lmbda, "preprocess": args.preprocess,
            "dictionary": str(args.dictionary), "dictionary_sha256": meta.get("sha256") or sha256_of_array(D.cpu().numpy()),
            "max_iter": args.max_iter, "rel_stop_tol": args.rel_stop_tol,
        })
        recon_file = out / f"{name}.recon.png"
        mpimg.imsave(recon_file, recon.clamp(0, 1).cpu().numpy(), cmap="gray", vmin=0, vmax=1)
        rows.append(EncodedImage(
            name=name, height=img.shape[0], width=img.shape[1],
            psnr=float(psnr(s, recon)), sparseness=float(sparseness(codes)[0]),
            nonzeros=int((codes != 0).sum()), iterations=int(res.iterations[0]), seconds=seconds,
            codes_file=codes_file.name, reconstruction_file=recon_file.name,
        ))
    summary = {
        "dictionary": str(args.dictionary), "kernels": list(D.shape), "lmbda": args.lmbda,
        "preprocess": args.preprocess, "max_iter": args.max_iter, "rel_stop_tol": args.rel_stop_tol,
        "device": str(device), "dtype": args.dtype, "images": [asdict(r) for r in rows],
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    print(f"{'image':<12} {'size':>9} {'PSNR dB':>8} {'sparseness':>10} {'nonzeros':>9} {'iters':>6} {'s':>7}")
    for r in rows:
        print(f"{r.name:<12} {f'{r.height}x{r.width}':>9} {r.psnr:8.2f} {r.sparseness:10.5f} "
              f"{r.nonzeros:9d} {r.iterations:6d} {r.seconds:7.2f}")
    print(f"wrote {len(rows)} code files, reconstructions and results.json to {out}")
    return 0


def cmd_loggabor(args: argparse.Namespace) -> int:
    from .loggabor import loggabor_dictionary

    kernels, params = loggabor_dictionary(args.preset, size=args.size, normalise=args.normalise,
                                          dtype=torch.float32, form=args.form)
    meta = {
        "name": args.name or args.preset, "made_by": "csc.loggabor_dictionary",
        "command": (f"csc loggabor --preset {args.preset} --size {args.size} --normalise {args.normalise} "
                    f"--form {args.form} --out {Path(args.out).name}"),
        "preset": args.preset, "size": args.size, "normalise": args.normalise, "form": args.form,
        "theta": params.theta.tolist(), "b_theta": params.b_theta.tolist(), "phase": params.phase.tolist(),
    }
    path = save_dictionary(args.out, kernels, meta)
    print(f"wrote {kernels.shape[0]} kernels {args.size}x{args.size} ({args.preset}) to {path}")
    return 0


def cmd_dictionaries(args: argparse.Namespace) -> int:
    for name, entry in sorted(shipped_dictionaries().items()):
        print(f"{name:<26} {entry.get('description', '')}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="csc", description="Convolutional sparse coding on PyTorch.")
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("encode", help="sparse-code images and write codes, reconstructions and metrics")
    e.add_argument("images", nargs="+", help="image files, or builtin:NAME / builtin:all")
    e.add_argument("--dictionary", required=True, help="dictionary file or shipped name (csc dictionaries)")
    e.add_argument("--lmbda", type=float, required=True, help="regularisation weight λ")
    e.add_argument("--out", default="out/encode", help="output folder (default out/encode)")
    e.add_argument("--max-iter", type=int, default=200)
    e.add_argument("--rel-stop-tol", type=float, default=1e-3)
    e.add_argument("--preprocess", choices=["highpass", "lcn", "none"], default="highpass",
                   help="code the Tikhonov highpass (SPORCO examples, default), the local-contrast-"
                        "normalised image (authors' code) or the raw image")
    e.add_argument("--crop", type=int, default=None, help="central square crop of this side")
    e.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    e.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=cmd_encode)

    g = sub.add_parser("loggabor", help="generate a log-Gabor dictionary file")
    g.add_argument("--preset", choices=["homogeneous", "heterogeneous"], default="heterogeneous")
    g.add_argument("--size", type=int, default=12)
    g.add_argument("--normalise", choices=["unit", "authors"], default="unit")
    g.add_argument("--form", choices=["library", "paper"], default="library")
    g.add_argument("--name", default=None)
    g.add_argument("--out", required=True)
    g.set_defaults(func=cmd_loggabor)

    d = sub.add_parser("dictionaries", help="list the shipped dictionaries")
    d.set_defaults(func=cmd_dictionaries)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError, KeyError) as exc:
        print(f"csc {args.command}: error: {exc}", file=sys.stderr)
        return 2

"""``csc encode IMAGE… --dictionary NAME|FILE --lmbda L [--out DIR] ...``: sparse-code image files.

``IMAGE`` is a file path or ``builtin:NAME`` for a photograph shipped with scikit-image
(``builtin:camera``, ``builtin:astronaut``, …; ``builtin:all`` for every one). Every image is
checked against the dictionary before anything is written; then each one is coded, listed
in ``results.json`` (rewritten atomically) and only then are its codes (``NAME.codes.npz``)
and reconstruction (``NAME.recon.png``) written (each atomically), so the folder never holds
codes that ``results.json`` does not list (a run killed in between leaves one listed image
whose files are missing). An ``--out`` folder that already holds files (an earlier run's
included) is refused unless ``--overwrite`` (:func:`csc.runtime.outputs.claim_dir`); an empty
``--out`` is refused. ``NAME`` is the file's stem (``a/photo.png``: ``photo``); names that repeat
(``a/photo.png b/photo.png``, or one image given twice) get ``-2``, ``-3`` … in command-line
order (``photo``, ``photo-2``), so every image gets its own files and none is overwritten
(:func:`unique_names`). ``--colour`` codes RGB images, ``--boundary mask`` the masked padding
(:class:`csc.ConvBPDNMaskDcpl`) instead of periodic boundaries.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from csc.cli.argtypes import nonneg_float, positive_int
from csc.cli.common import check_colour_dictionary, torch_dtype

__all__ = ["EncodedImage", "register", "run", "unique_names"]


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


def register(sub) -> None:
    """``csc encode``: sparse-code image files with one dictionary."""
    e = sub.add_parser("encode", help="sparse-code images and write codes, reconstructions and metrics")
    e.add_argument("images", nargs="+",
                   help="image files, or builtin:NAME / builtin:all; each writes NAME.codes.npz and NAME.recon.png, "
                        "NAME the file's stem, repeated names numbered in order (photo, photo-2, ...)")
    e.add_argument("--dictionary", required=True, help="dictionary file or shipped name (csc dictionaries)")
    e.add_argument("--lmbda", type=nonneg_float, required=True, help="regularisation weight λ")
    e.add_argument("--out", default="out/encode",
                   help="output folder (default out/encode); a folder that already holds files is refused "
                        "unless --overwrite")
    e.add_argument("--overwrite", action="store_true",
                   help="write into an --out folder that already holds files (those of the same name are replaced)")
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
    e.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Code every image of ``args.images``; write codes, reconstructions and ``results.json``."""
    from tqdm import tqdm

    from csc.core.checks import check_image_size
    from csc.dictionary.io import atomic_write, dictionary_metadata, load_dictionary, sha256_of_array
    from csc.pipeline.preprocess import Preprocess
    from csc.runtime.device import resolve_device
    from csc.runtime.outputs import output_dir

    device = resolve_device(args.device, arg="--device")
    dtype = torch_dtype(args.dtype)
    D = load_dictionary(args.dictionary, dtype=dtype, device=device)
    meta = dictionary_metadata(args.dictionary)
    check_colour_dictionary(D, args.colour, "--dictionary")
    solver = _solver(D, args, dtype, device)
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
    with output_dir(args.out, "--out", overwrite=args.overwrite) as out:
        for name, img in tqdm(images, desc="encode", unit="image", disable=args.quiet):
            row, write_files = _encode_one(name, img, solver, pre, out, args, dsha, dtype, device)
            rows.append(row)
            summary["images"] = [asdict(r) for r in rows]  # listed before its files are written: the
            atomic_write(out / "results.json", lambda f: f.write(json.dumps(summary, indent=2).encode()))
            write_files()  # folder never holds a codes file that results.json does not list
    _print_rows(rows)
    print(f"wrote {len(rows)} code files, reconstructions and results.json to {args.out}")
    return 0


def _print_rows(rows: Sequence[EncodedImage]) -> None:
    """The console table of ``csc encode``: one line per image."""
    print(f"{'image':<12} {'size':>9} {'PSNR dB':>8} {'sparseness':>10} {'nonzeros':>9} {'iters':>6} {'s':>7}")
    for r in rows:
        print(f"{r.name:<12} {f'{r.height}x{r.width}':>9} {r.psnr:8.2f} {r.sparseness:10.5f} "
              f"{r.nonzeros:9d} {r.iterations:6d} {r.seconds:7.2f}")


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
    return list(zip(unique_names([name for name, _ in out]), (img for _, img in out)))


def unique_names(names: Sequence[str]) -> list[str]:
    """``names`` made unique, in order: the first of each name kept, a repeat given the
    first free ``-2``, ``-3`` … (``["photo", "photo", "photo-2"]`` → ``["photo", "photo-3",
    "photo-2"]``: a name given later is never taken). The output files of ``csc encode``
    are named by these, so two images never share a codes file."""
    taken = set(names)
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        new = name
        if name in seen:
            i = 2
            while f"{name}-{i}" in taken:
                i += 1
            new = f"{name}-{i}"
            taken.add(new)
        seen.add(new)
        out.append(new)
    return out


def _solver(D: torch.Tensor, args: argparse.Namespace, dtype: torch.dtype, device: torch.device):
    """``csc encode``'s solver: ConvBPDN (periodic boundaries), or for ``--boundary mask``
    ConvBPDNMaskDcpl on the masked padding, with ρ = 50λ + 0.1 fixed (SPORCO's examples)."""
    import csc

    common = dict(max_iter=args.max_iter, rel_stop_tol=args.rel_stop_tol, record_stats=False, dtype=dtype,
                  device=device)
    if args.boundary == "periodic":
        return csc.ConvBPDN(D, args.lmbda, csc.CBPDNOptions(**common))
    return csc.ConvBPDNMaskDcpl(D, args.lmbda, csc.MaskDcplOptions(rho=50.0 * args.lmbda + 0.1, **common))


def _encode_one(name: str, img: np.ndarray, solver, pre, out: Path, args: argparse.Namespace, dsha: str,
                dtype: torch.dtype, device: torch.device):
    """Code one image for ``csc encode``: its results row, and the function that writes its
    codes and reconstruction (each atomically)."""
    from matplotlib import image as mpimg

    from csc.dictionary.io import atomic_write, save_codes
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
    # from the codes written beside it (a masked result would otherwise use its split's x, as SPORCO's)
    recon = pre.inverse(res.reconstruct(res.codes)[..., :H, :W].reshape(s.shape), state)
    codes = res.codes if res.codes.shape[0] > 1 else res.codes[:1]
    codes_file, recon_file = out / f"{name}.codes.npz", out / f"{name}.recon.png"
    codes_meta = {"image": name, "lmbda": args.lmbda, "preprocess": args.preprocess,
                  "dictionary": str(args.dictionary), "dictionary_sha256": dsha,
                  "max_iter": args.max_iter, "rel_stop_tol": args.rel_stop_tol, "boundary": args.boundary}
    rec = recon.clamp(0, 1).cpu().numpy()

    def write_files() -> None:
        save_codes(codes_file, (codes if codes.shape[0] > 1 else codes[0]).float(), codes_meta)
        if rec.ndim == 3:  # colour (3, H, W)
            png = lambda f: mpimg.imsave(f, np.ascontiguousarray(np.moveaxis(rec, 0, -1)), format="png")
        else:
            png = lambda f: mpimg.imsave(f, rec, cmap="gray", vmin=0, vmax=1, format="png")
        atomic_write(recon_file, png)

    return EncodedImage(
        name=name, height=img.shape[-2], width=img.shape[-1],
        psnr=float(psnr(s.reshape(-1, s.shape[-1]), recon.reshape(-1, s.shape[-1]))),  # over all channels
        sparseness=float(sparseness(codes.reshape(-1, *codes.shape[-3:])).mean()),
        nonzeros=int((codes != 0).sum()), iterations=int(res.iterations[0]), seconds=seconds,
        codes_file=codes_file.name, reconstruction_file=recon_file.name,
    ), write_files

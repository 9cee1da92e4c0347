"""Images from folders, and the natural photographs bundled with scikit-image.

* :func:`load_image_folder` — a folder with one sub-folder per class, as torchvision's
  ``ImageFolder``: class names are the sorted sub-folder names, label ``i`` is
  ``class_names[i]``, files are found recursively and sorted, and only common image
  extensions are read (:data:`IMG_EXTENSIONS`, case-insensitive).
* :func:`load_images` — every image in one folder (e.g. the paper's 1145 natural
  images from Figshare, DOI 10.6084/m9.figshare.24167265, downloaded by the user).
* :func:`builtin_photographs` — the natural photographs shipped inside scikit-image
  (``skimage.data``), gray, float64 in [0, 1]; no network needed.

Files are decoded with ``skimage.io.imread`` (imageio/Pillow underneath).
"""

from __future__ import annotations

from csc.core.checks import check_bool
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .fashion_mnist import DatasetFormatError, DatasetNotFoundError

__all__ = [
    "BUILTIN_PHOTOGRAPH_NAMES",
    "IMG_EXTENSIONS",
    "ImageFolder",
    "Photographs",
    "builtin_photographs",
    "list_image_files",
    "load_image_folder",
    "load_images",
    "read_gray_image",
]

#: Extensions read by the folder loaders (torchvision's ``IMG_EXTENSIONS``).
IMG_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

#: Natural photographs in ``skimage.data`` that load without network access:
#: scenes and objects (astronaut, camera, chelsea the cat, clock, coffee, coins, moon,
#: rocket) and close-up texture photographs (brick, grass, gravel). Synthetic,
#: microscopy, astronomy and text images are left out; ``cat`` is the same picture as
#: ``chelsea``.
BUILTIN_PHOTOGRAPH_NAMES: tuple[str, ...] = (
    "astronaut",
    "brick",
    "camera",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "moon",
    "rocket",
)


@dataclass(frozen=True)
class ImageFolder:
    """Images of a class-per-sub-folder dataset.

    Attributes
    ----------
    images : list of np.ndarray
        Decoded images as stored (usually uint8; (H, W) gray or (H, W, 3|4) colour),
        in the order of ``paths``.
    labels : np.ndarray, int64, shape (N,)
        Index into ``class_names``.
    class_names : tuple of str
        Sorted sub-folder names.
    paths : tuple of Path
    """

    images: list[np.ndarray]
    labels: np.ndarray
    class_names: tuple[str, ...]
    paths: tuple[Path, ...]

    def __len__(self) -> int:
        return len(self.images)

    def stack(self) -> np.ndarray:
        """Return the images as one array (N, …); all must have the same shape and dtype."""
        return _stack(self.images, self.paths)


@dataclass(frozen=True)
class Photographs:
    """Named gray photographs.

    Attributes
    ----------
    names : tuple of str
    images : list of np.ndarray
        float64 (H, W) in [0, 1]; sizes differ between photographs.
    """

    names: tuple[str, ...]
    images: list[np.ndarray] = field(repr=False)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, name: str) -> np.ndarray:
        """Return the photograph called ``name``."""
        try:
            return self.images[self.names.index(name)]
        except ValueError:
            raise KeyError(f"no photograph named {name!r}; have {', '.join(self.names)}") from None


def _stack(images: list[np.ndarray], paths: Sequence[Path]) -> np.ndarray:
    if not images:
        raise ValueError("no images to stack")
    ref = images[0]
    for im, p in zip(images, paths):
        if im.shape != ref.shape or im.dtype != ref.dtype:
            raise ValueError(
                f"cannot stack: {p} is {im.dtype} {im.shape} but {paths[0]} is {ref.dtype} {ref.shape}; "
                "resize/crop them first"
            )
    return np.stack(images)


def _is_image(name: str, extensions: Sequence[str]) -> bool:
    return name.lower().endswith(tuple(e.lower() for e in extensions))


def list_image_files(
    folder: str | Path, extensions: Sequence[str] = IMG_EXTENSIONS, recursive: bool = True
) -> list[Path]:
    """Sorted image files in ``folder`` (recursively by default, following symlinks).

    Hidden files (names starting with ``.``) are skipped.
    """
    recursive = check_bool("recursive", recursive)
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetNotFoundError(f"image folder {folder} does not exist or is not a folder")
    out: list[Path] = []
    if recursive:
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
            dirnames.sort()
            for f in sorted(filenames):
                if not f.startswith(".") and _is_image(f, extensions):
                    out.append(Path(dirpath) / f)
    else:
        out = [p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".") and _is_image(p.name, extensions)]
    return sorted(out)


def _imread(path: Path) -> np.ndarray:
    from skimage import io

    try:
        img = io.imread(path)
    except Exception as exc:  # decoders raise many types
        raise DatasetFormatError(f"{path}: cannot decode image ({type(exc).__name__}: {exc})") from exc
    img = np.asarray(img)
    if img.ndim not in (2, 3) or img.size == 0:
        raise DatasetFormatError(f"{path}: expected a 2-D gray or colour image, got shape {img.shape}")
    return img


def _gray_float(img: np.ndarray) -> np.ndarray:
    """Gray float64 in [0, 1]: rgb2gray for colour (alpha dropped), img_as_float for gray."""
    from skimage.color import rgb2gray
    from skimage.util import img_as_float

    img = np.asarray(img)
    if img.ndim == 3:
        img = rgb2gray(img[..., :3])
    return np.ascontiguousarray(img_as_float(img), dtype=np.float64)


def _colour_float(img: np.ndarray) -> np.ndarray:
    """Colour float64 (3, H, W) in [0, 1], channels first: RGB (alpha dropped); a gray image
    has its one channel three times."""
    from skimage.util import img_as_float

    img = np.asarray(img)
    img = np.repeat(img[..., None], 3, -1) if img.ndim == 2 else img[..., :3]
    return np.ascontiguousarray(np.moveaxis(img_as_float(img), -1, 0), dtype=np.float64)


def read_gray_image(path: str | Path) -> np.ndarray:
    """Read one image file as gray float64 (H, W) in [0, 1] (as :func:`builtin_photographs`)."""
    return read_image(path)


def read_image(path: str | Path, colour: bool = False) -> np.ndarray:
    """Read one image file as gray float64 (H, W), or with ``colour`` RGB (3, H, W), in [0, 1]."""
    colour = check_bool("colour", colour)
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"image: no such file {str(path)!r}")
    img = _imread(path)
    return _colour_float(img) if colour else _gray_float(img)


def load_images(
    folder: str | Path, extensions: Sequence[str] = IMG_EXTENSIONS, recursive: bool = False
) -> tuple[list[np.ndarray], list[Path]]:
    """Read every image in one folder.

    Parameters
    ----------
    folder : str or Path
    extensions : sequence of str, optional
        Case-insensitive file-name endings to read (default :data:`IMG_EXTENSIONS`).
    recursive : bool, optional (default False)
        Also read sub-folders.

    Returns
    -------
    images : list of np.ndarray
        As decoded (usually uint8).
    paths : list of Path
        Sorted, matching ``images``.
    """
    recursive = check_bool("recursive", recursive)
    paths = list_image_files(folder, extensions, recursive=recursive)
    if not paths:
        raise DatasetNotFoundError(f"no images ({', '.join(extensions)}) in {folder}")
    return [_imread(p) for p in paths], paths


def load_image_folder(root: str | Path, extensions: Sequence[str] = IMG_EXTENSIONS) -> ImageFolder:
    """Load a dataset laid out as ``root/<class name>/<image files>``.

    Parameters
    ----------
    root : str or Path
        One sub-folder per class; images may sit in nested folders below it.
    extensions : sequence of str, optional
        Case-insensitive file-name endings to read (default :data:`IMG_EXTENSIONS`).

    Returns
    -------
    ImageFolder
        Images sorted by class, then by path.

    Raises
    ------
    DatasetNotFoundError
        ``root`` missing, without class sub-folders, or a class without images.
    DatasetFormatError
        A file cannot be decoded.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetNotFoundError(f"image folder {root} does not exist or is not a folder")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise DatasetNotFoundError(f"{root} has no class sub-folders (expected root/<class>/<image>)")
    images: list[np.ndarray] = []
    labels: list[int] = []
    paths: list[Path] = []
    for i, c in enumerate(classes):
        files = list_image_files(root / c, extensions)
        if not files:
            raise DatasetNotFoundError(f"class folder {root / c} holds no images ({', '.join(extensions)})")
        for p in files:
            images.append(_imread(p))
            labels.append(i)
            paths.append(p)
    return ImageFolder(
        images=images,
        labels=np.asarray(labels, dtype=np.int64),
        class_names=tuple(classes),
        paths=tuple(paths),
    )


def builtin_photographs(names: Sequence[str] | None = None, colour: bool = False) -> Photographs:
    """Natural photographs bundled with scikit-image, gray float64 in [0, 1].

    Colour photographs are converted with ``skimage.color.rgb2gray`` (weights 0.2125,
    0.7154, 0.0721); gray ones with ``skimage.util.img_as_float`` (uint8 / 255). With
    ``colour`` every photograph is RGB (3, H, W), channels first (a gray one has its
    channel three times).

    Parameters
    ----------
    names : sequence of str, optional
        Which photographs (default all of :data:`BUILTIN_PHOTOGRAPH_NAMES`, in that
        order). Other ``skimage.data`` images are refused.

    Returns
    -------
    Photographs
        ``names`` and ``images`` (sizes differ: e.g. camera 512×512, coffee 400×600).
    """
    colour = check_bool("colour", colour)
    import skimage.data

    if names is None:
        names = BUILTIN_PHOTOGRAPH_NAMES
    elif isinstance(names, str):
        names = (names,)
    names = tuple(names)
    unknown = [n for n in names if n not in BUILTIN_PHOTOGRAPH_NAMES]
    if unknown:
        raise ValueError(
            f"names: {', '.join(map(repr, unknown))} not among the built-in photographs "
            f"({', '.join(BUILTIN_PHOTOGRAPH_NAMES)})"
        )
    images = []
    for n in names:
        img = getattr(skimage.data, n)()
        images.append(_colour_float(img) if colour else _gray_float(img))
    return Photographs(names=names, images=images)

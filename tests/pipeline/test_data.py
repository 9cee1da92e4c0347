"""Dataset loaders on small files written by the tests in each official format."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest

from csc.pipeline.sources.cifar10 import CIFAR10_CLASSES, load_cifar10
from csc.pipeline.sources.fashion_mnist import (
    DEFAULT_FASHION_MNIST_DIR,
    FASHION_MNIST_CLASSES,
    DatasetFormatError,
    DatasetNotFoundError,
    load_fashion_mnist,
    read_idx,
)
from csc.pipeline.sources.folders import (
    BUILTIN_PHOTOGRAPH_NAMES,
    builtin_photographs,
    load_image_folder,
    load_images,
)

# ----------------------------------------------------------------------- IDX helpers


def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    """Serialise ``arr`` as an IDX file: 0x0000, type code, ndim, big-endian dims, data."""
    dt = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    head = struct.pack(">HBB", 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + np.ascontiguousarray(arr, dtype=dt).tobytes()


def write_fmnist(folder: Path, n_train=7, n_test=5, gz=True, style="official", seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        imgs = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        lbls = rng.integers(0, 10, size=n, dtype=np.uint8)
        for kind, idx, arr in (("images", 3, imgs), ("labels", 1, lbls)):
            name = f"{prefix}-{kind}-idx{idx}-ubyte" if style == "official" else f"{prefix}-{kind}.idx{idx}-ubyte"
            data = idx_bytes(arr)
            if gz:
                (folder / (name + ".gz")).write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
        out[prefix] = (imgs, lbls)
    return out


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("style", ["official", "dotted"])
def test_fashion_mnist_roundtrip(tmp_path, gz, style):
    ref = write_fmnist(tmp_path, gz=gz, style=style)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        ds = load_fashion_mnist(split, root=tmp_path)
        imgs, lbls = ref[prefix]
        assert ds.images.dtype == np.uint8 and ds.images.shape == imgs.shape
        assert ds.labels.dtype == np.int64
        np.testing.assert_array_equal(ds.images, imgs)
        np.testing.assert_array_equal(ds.labels, lbls)
        assert ds.class_names == FASHION_MNIST_CLASSES and len(ds.class_names) == 10
        assert ds.split == split and len(ds) == imgs.shape[0]


def test_read_idx_dtypes_and_gzip_detected_by_content(tmp_path):
    a = np.arange(24, dtype=np.int32).reshape(2, 3, 4) - 5
    p = tmp_path / "x.idx"  # no .gz in the name, but gzip content
    p.write_bytes(gzip.compress(idx_bytes(a, 0x0C)))
    out = read_idx(p)
    assert out.dtype == np.int32 and out.dtype.isnative
    np.testing.assert_array_equal(out, a)
    f = np.linspace(-1, 1, 6).reshape(2, 3)
    (tmp_path / "f").write_bytes(idx_bytes(f, 0x0E))
    np.testing.assert_array_equal(read_idx(tmp_path / "f"), f)


def test_fashion_mnist_missing_folder_and_file(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="apt-get install -y dataset-fashion-mnist"):
        load_fashion_mnist(root=tmp_path / "nope")
    write_fmnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    load_fashion_mnist("train", root=tmp_path)
    with pytest.raises(DatasetNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_fashion_mnist("test", root=tmp_path)
    assert issubclass(DatasetNotFoundError, FileNotFoundError)
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist("val", root=tmp_path)


def test_fashion_mnist_corrupt_files(tmp_path):
    write_fmnist(tmp_path, gz=False)
    img = tmp_path / "train-images-idx3-ubyte"
    good = img.read_bytes()
    # truncated data
    img.write_bytes(good[:-100])
    with pytest.raises(DatasetFormatError, match=r"train-images-idx3-ubyte.*truncated"):
        load_fashion_mnist("train", root=tmp_path)
    # trailing data
    img.write_bytes(good + b"\0")
    with pytest.raises(DatasetFormatError, match="trailing"):
        load_fashion_mnist("train", root=tmp_path)
    # bad magic
    img.write_bytes(b"\x01\x02" + good[2:])
    with pytest.raises(DatasetFormatError, match="magic"):
        load_fashion_mnist("train", root=tmp_path)
    # unknown type code
    img.write_bytes(good[:2] + b"\x07" + good[3:])
    with pytest.raises(DatasetFormatError, match="type code"):
        load_fashion_mnist("train", root=tmp_path)
    # truncated header
    img.write_bytes(good[:10])
    with pytest.raises(DatasetFormatError, match="header"):
        load_fashion_mnist("train", root=tmp_path)
    # wrong image size
    img.write_bytes(idx_bytes(np.zeros((7, 27, 28), np.uint8)))
    with pytest.raises(DatasetFormatError, match=r"\(N, 28, 28\)"):
        load_fashion_mnist("train", root=tmp_path)
    # label count mismatch
    img.write_bytes(idx_bytes(np.zeros((6, 28, 28), np.uint8)))
    with pytest.raises(DatasetFormatError, match="6 images"):
        load_fashion_mnist("train", root=tmp_path)
    # label out of range
    img.write_bytes(good)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.full(7, 10, np.uint8)))
    with pytest.raises(DatasetFormatError, match="out of range"):
        load_fashion_mnist("train", root=tmp_path)


def test_fashion_mnist_corrupt_gzip(tmp_path):
    write_fmnist(tmp_path, gz=True)
    p = tmp_path / "t10k-images-idx3-ubyte.gz"
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetFormatError, match=r"t10k-images-idx3-ubyte\.gz.*gzip"):
        load_fashion_mnist("test", root=tmp_path)


@pytest.mark.skipif(not DEFAULT_FASHION_MNIST_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist():
    tr = load_fashion_mnist("train")
    te = load_fashion_mnist("test")
    assert tr.images.shape == (60000, 28, 28) and te.images.shape == (10000, 28, 28)
    assert tr.images.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(tr.labels, minlength=10), np.full(10, 6000))
    np.testing.assert_array_equal(np.bincount(te.labels, minlength=10), np.full(10, 1000))
    assert tr.labels[:3].tolist() == [9, 0, 0]  # the dataset's first images: ankle boot, T-shirts


# --------------------------------------------------------------------- CIFAR helpers

N_PER_BATCH = 3


def make_cifar(seed=0):
    rng = np.random.default_rng(seed)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        imgs = rng.integers(0, 256, size=(N_PER_BATCH, 3, 32, 32), dtype=np.uint8)
        lbls = rng.integers(0, 10, size=N_PER_BATCH).astype(np.uint8)
        batches[name] = (imgs, lbls)
    return batches


def bin_bytes(imgs, lbls) -> bytes:
    rec = np.concatenate([lbls[:, None], imgs.reshape(len(lbls), -1)], axis=1).astype(np.uint8)
    return rec.tobytes()


def py_bytes(imgs, lbls, protocol=2) -> bytes:
    d = {
        b"batch_label": b"training batch 1 of 5",
        b"labels": [int(x) for x in lbls],
        b"data": imgs.reshape(len(lbls), -1),
        b"filenames": [b"img_%d.png" % i for i in range(len(lbls))],
    }
    return pickle.dumps(d, protocol=protocol)


def write_cifar(folder: Path, batches, fmt="bin", protocol=2):
    folder.mkdir(parents=True, exist_ok=True)
    for name, (imgs, lbls) in batches.items():
        if fmt == "bin":
            (folder / f"{name}.bin").write_bytes(bin_bytes(imgs, lbls))
        else:
            (folder / name).write_bytes(py_bytes(imgs, lbls, protocol))


def check_cifar(ds, batches, split):
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    imgs = np.concatenate([batches[n][0] for n in names])
    lbls = np.concatenate([batches[n][1] for n in names])
    assert ds.images.dtype == np.uint8 and ds.images.shape == (len(names) * N_PER_BATCH, 3, 32, 32)
    assert ds.labels.dtype == np.int64
    np.testing.assert_array_equal(ds.images, imgs)
    np.testing.assert_array_equal(ds.labels, lbls)
    assert ds.class_names == CIFAR10_CLASSES and ds.split == split


def test_cifar_binary_layout_is_channel_major():
    # one record, pixel (c, y, x) stored at 1 + 1024 c + 32 y + x
    imgs = np.zeros((1, 3, 32, 32), np.uint8)
    imgs[0, 2, 5, 7] = 200
    data = bin_bytes(imgs, np.array([4], np.uint8))
    assert data[0] == 4 and data[1 + 1024 * 2 + 32 * 5 + 7] == 200


@pytest.mark.parametrize("sub", ["", "cifar-10-batches-bin"])
def test_cifar_binary(tmp_path, sub):
    b = make_cifar()
    write_cifar(tmp_path / sub if sub else tmp_path, b, "bin")
    for split in ("train", "test"):
        check_cifar(load_cifar10(tmp_path, split), b, split)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_python(tmp_path, protocol):
    b = make_cifar(1)
    write_cifar(tmp_path / "cifar-10-batches-py", b, "py", protocol)
    for split in ("train", "test"):
        check_cifar(load_cifar10(tmp_path, split), b, split)


def test_cifar_python_old_numpy_module_names(tmp_path):
    # pickles written with numpy 1.x (as the official archive) name numpy.core.multiarray
    b = make_cifar(3)
    write_cifar(tmp_path, b, "py", protocol=2)
    p = tmp_path / "test_batch"
    data = p.read_bytes()
    if b"numpy._core" in data:
        p.write_bytes(data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    assert b"numpy.core.multiarray" in p.read_bytes()
    check_cifar(load_cifar10(tmp_path, "test"), b, "test")


def _tar(path: Path, folder: Path, arcname: str):
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname=arcname)


@pytest.mark.parametrize("fmt", ["bin", "py"])
def test_cifar_tar_gz(tmp_path, fmt):
    b = make_cifar(2)
    sub = "cifar-10-batches-bin" if fmt == "bin" else "cifar-10-batches-py"
    write_cifar(tmp_path / "src" / sub, b, fmt)
    archive_name = "cifar-10-binary.tar.gz" if fmt == "bin" else "cifar-10-python.tar.gz"
    dl = tmp_path / "dl"
    dl.mkdir()
    _tar(dl / archive_name, tmp_path / "src" / sub, sub)
    check_cifar(load_cifar10(dl, "train"), b, "train")  # folder holding the archive
    check_cifar(load_cifar10(dl / archive_name, "test"), b, "test")  # the archive itself
    assert not (dl / sub).exists()  # nothing extracted


def test_cifar_missing(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load_cifar10(tmp_path / "nope")
    with pytest.raises(DatasetNotFoundError, match="no CIFAR-10 train batches"):
        load_cifar10(tmp_path)
    write_cifar(tmp_path, make_cifar(), "bin")
    (tmp_path / "data_batch_3.bin").unlink()
    with pytest.raises(DatasetNotFoundError, match="data_batch_3.bin"):
        load_cifar10(tmp_path, "train")
    load_cifar10(tmp_path, "test")
    with pytest.raises(ValueError, match="split"):
        load_cifar10(tmp_path, "valid")


def test_cifar_corrupt_binary(tmp_path):
    write_cifar(tmp_path, make_cifar(), "bin")
    p = tmp_path / "test_batch.bin"
    data = p.read_bytes()
    p.write_bytes(data[:-5])
    with pytest.raises(DatasetFormatError, match=r"test_batch\.bin.*3073-byte records"):
        load_cifar10(tmp_path, "test")
    p.write_bytes(b"")
    with pytest.raises(DatasetFormatError, match="empty"):
        load_cifar10(tmp_path, "test")
    bad = bytearray(data)
    bad[0] = 10
    p.write_bytes(bytes(bad))
    with pytest.raises(DatasetFormatError, match="out of range"):
        load_cifar10(tmp_path, "test")


def test_cifar_corrupt_pickle(tmp_path):
    write_cifar(tmp_path, make_cifar(), "py")
    p = tmp_path / "test_batch"
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetFormatError, match=r"test_batch.*(corrupt|truncated)"):
        load_cifar10(tmp_path, "test")
    p.write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(DatasetFormatError, match=r"\(N, 3072\)"):
        load_cifar10(tmp_path, "test")
    p.write_bytes(pickle.dumps({b"labels": [0]}))
    with pytest.raises(DatasetFormatError, match="'data'"):
        load_cifar10(tmp_path, "test")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_cifar_pickle_is_restricted(tmp_path):
    write_cifar(tmp_path, make_cifar(), "py")
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": _Evil(), b"labels": []}, protocol=2))
    with pytest.raises(DatasetFormatError, match=r"(posix|os)\.system.*not allowed"):
        load_cifar10(tmp_path, "test")
    # a codec other than latin-1 through _codecs.encode is refused too
    evil = b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x06\x00\x00\x00base64\x86R."
    (tmp_path / "test_batch").write_bytes(evil)
    with pytest.raises(DatasetFormatError, match="not allowed"):
        load_cifar10(tmp_path, "test")


def test_cifar_corrupt_archive(tmp_path):
    b = make_cifar()
    write_cifar(tmp_path / "src" / "cifar-10-batches-bin", b, "bin")
    arch = tmp_path / "cifar-10-binary.tar.gz"
    _tar(arch, tmp_path / "src" / "cifar-10-batches-bin", "cifar-10-batches-bin")
    data = arch.read_bytes()
    arch.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetFormatError, match="cifar-10-binary.tar.gz.*(corrupt|truncated)"):
        load_cifar10(arch, "train")


# --------------------------------------------------------------------------- folders


def test_image_folder(tmp_path):
    from skimage import io as skio

    rng = np.random.default_rng(0)
    written = {}
    for cls, n in (("dog", 2), ("cat", 3)):
        (tmp_path / cls / "nested").mkdir(parents=True)
        for i in range(n):
            img = rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
            sub = "nested/" if i == 0 else ""
            p = tmp_path / cls / f"{sub}im{i}.PNG"
            skio.imsave(p, img, check_contrast=False)
            written[p] = (img, cls)
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    ds = load_image_folder(tmp_path)
    assert ds.class_names == ("cat", "dog")
    assert len(ds) == 5 and ds.labels.tolist() == [0, 0, 0, 1, 1]
    for img, lab, p in zip(ds.images, ds.labels, ds.paths):
        ref, cls = written[p]
        np.testing.assert_array_equal(img, ref)
        assert ds.class_names[lab] == cls
    assert ds.stack().shape == (5, 6, 5, 3)

    imgs, paths = load_images(tmp_path / "cat")
    assert len(imgs) == 2 and [p.name for p in paths] == ["im1.PNG", "im2.PNG"]
    imgs, paths = load_images(tmp_path / "cat", recursive=True)
    assert len(imgs) == 3


def test_image_folder_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError):
        load_image_folder(tmp_path / "nope")
    with pytest.raises(DatasetNotFoundError, match="no class sub-folders"):
        load_image_folder(tmp_path)
    (tmp_path / "a").mkdir()
    with pytest.raises(DatasetNotFoundError, match="holds no images"):
        load_image_folder(tmp_path)
    (tmp_path / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DatasetFormatError, match="broken.png"):
        load_image_folder(tmp_path)


def test_builtin_photographs():
    ph = builtin_photographs(["camera", "coffee", "astronaut"])
    assert ph.names == ("camera", "coffee", "astronaut")
    from skimage import color, data

    np.testing.assert_allclose(ph["camera"], data.camera() / 255.0)
    np.testing.assert_allclose(ph["coffee"], color.rgb2gray(data.coffee()))
    for im in ph.images:
        assert im.dtype == np.float64 and im.ndim == 2
        assert 0.0 <= im.min() and im.max() <= 1.0
    assert ph.images[1].shape == (400, 600)
    with pytest.raises(ValueError, match="not among"):
        builtin_photographs(["horse"])
    with pytest.raises(KeyError):
        ph["rocket"]


def test_builtin_photographs_all_load():
    ph = builtin_photographs()
    assert ph.names == BUILTIN_PHOTOGRAPH_NAMES and len(ph) == len(BUILTIN_PHOTOGRAPH_NAMES)
    assert all(min(im.shape) >= 256 for im in ph.images)

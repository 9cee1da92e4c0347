"""Dataset loaders: Fashion-MNIST (IDX), CIFAR-10 (official archives), image folders and
the natural photographs bundled with scikit-image."""

from .cifar10 import CIFAR10, CIFAR10_CLASSES, load_cifar10
from .fashion_mnist import (
    DEFAULT_FASHION_MNIST_DIR,
    FASHION_MNIST_CLASSES,
    DatasetFormatError,
    DatasetNotFoundError,
    FashionMNIST,
    load_fashion_mnist,
    read_idx,
)
from .folders import (
    BUILTIN_PHOTOGRAPH_NAMES,
    IMG_EXTENSIONS,
    ImageFolder,
    Photographs,
    builtin_photographs,
    load_image_folder,
    load_images,
    read_gray_image,
    read_image,
)

__all__ = [
    "BUILTIN_PHOTOGRAPH_NAMES",
    "CIFAR10",
    "CIFAR10_CLASSES",
    "DEFAULT_FASHION_MNIST_DIR",
    "DatasetFormatError",
    "DatasetNotFoundError",
    "FASHION_MNIST_CLASSES",
    "FashionMNIST",
    "IMG_EXTENSIONS",
    "ImageFolder",
    "Photographs",
    "builtin_photographs",
    "load_cifar10",
    "load_fashion_mnist",
    "load_image_folder",
    "load_images",
    "read_gray_image",
    "read_image",
    "read_idx",
]

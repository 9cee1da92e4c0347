"""Dataset loaders (Fashion-MNIST, CIFAR-10, image folders, built-in photographs)."""

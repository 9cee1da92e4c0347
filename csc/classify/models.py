"""ResNet-18 classifier, layer for layer as torchvision's ``resnet18``.

torchvision has no CPU build on the package index available to this project, so the
network is defined here. Module names, layer order, shapes and weight initialisation
follow ``torchvision.models.resnet`` exactly, so a ``state_dict`` saved from
torchvision's ``resnet18`` (with the same ``in_channels``/``num_classes``) loads into
:class:`ResNet18` and vice versa.

Two additions serve the classifier on sparse codes of §2.5 and Table 1 of the paper
(Ladret, Casanova & Perrinet, "Kernel heterogeneity improves sparseness of natural
images representations"):

* ``in_channels`` — the first convolution takes the K = 144 code channels instead of
  3 colour channels; nothing else changes (the paper's text).
* ``stem="cifar"`` — a 3×3, stride-1, padding-1 first convolution and no max-pool, as
  in the authors' published code for 32×32 inputs; ``dropout`` adds ``Dropout2d``
  after ``layer4`` (before the global average pool), also as in the authors' code
  (they used p = 0.5; the default here is 0, i.e. torchvision's network).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

__all__ = ["BasicBlock", "ResNet18", "resnet18"]

Stem = Literal["imagenet", "cifar"]


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3×3 convolution, padding 1, no bias (torchvision's ``conv3x3``)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1×1 convolution, no bias (torchvision's ``conv1x1``)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with a residual connection (torchvision's ``BasicBlock``).

    Parameters
    ----------
    inplanes : int
        Input channels.
    planes : int
        Output channels of both convolutions.
    stride : int, optional
        Stride of the first convolution (and of ``downsample``).
    downsample : nn.Module or None, optional
        Applied to the identity branch when the shape changes (1×1 conv + BN).
    """

    expansion: int = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet18(nn.Module):
    """ResNet-18 (He et al. 2016) as torchvision's ``resnet18``, with a configurable stem.

    Parameters
    ----------
    in_channels : int, optional (default 3)
        Channels of the input (144 for the paper's sparse codes).
    num_classes : int, optional (default 1000)
        Outputs of the final linear layer (10 for CIFAR-10 / Fashion-MNIST).
    stem : {"imagenet", "cifar"}, optional (default "imagenet")
        ``"imagenet"``: 7×7 conv, stride 2, padding 3, then 3×3 max-pool stride 2
        padding 1 (torchvision). ``"cifar"``: 3×3 conv, stride 1, padding 1 and no
        max-pool (``maxpool`` is then ``nn.Identity``); the authors' code.
    dropout : float, optional (default 0.0)
        Probability of ``nn.Dropout2d`` applied to the ``layer4`` feature maps before
        the global average pool (authors' code: 0.5). 0 gives torchvision's network.
    zero_init_residual : bool, optional (default False)
        Initialise the last BatchNorm weight of every block to zero (torchvision's
        option of the same name).

    Notes
    -----
    Initialisation is torchvision's: ``kaiming_normal_(mode="fan_out",
    nonlinearity="relu")`` for every convolution, BatchNorm weight 1 and bias 0, and
    PyTorch's default initialisation for ``fc``. ``state_dict`` keys are torchvision's
    (``conv1.weight``, ``bn1.running_mean``, ``layer1.0.conv1.weight``,
    ``layer2.0.downsample.0.weight``, ``fc.bias``, …); ``dropout`` adds no parameters.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1000,
        stem: Stem = "imagenet",
        dropout: float = 0.0,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        from csc.core.checks import check_bool

        zero_init_residual = check_bool("zero_init_residual", zero_init_residual)
        if int(in_channels) != in_channels or in_channels < 1:
            raise ValueError(f"in_channels: expected a positive integer, got {in_channels!r}")
        if int(num_classes) != num_classes or num_classes < 1:
            raise ValueError(f"num_classes: expected a positive integer, got {num_classes!r}")
        if stem not in ("imagenet", "cifar"):
            raise ValueError(f"stem: expected 'imagenet' or 'cifar', got {stem!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        self.in_channels = int(in_channels)
        self.num_classes = int(num_classes)
        self.stem: Stem = stem
        self.inplanes = 64

        if stem == "imagenet":
            self.conv1 = nn.Conv2d(self.in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        else:
            self.conv1 = nn.Conv2d(self.in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        if stem == "imagenet":
            self.maxpool: nn.Module = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        else:
            self.maxpool = nn.Identity()
        self.layer1 = self._make_layer(64, 2)
        self.layer2 = self._make_layer(128, 2, stride=2)
        self.layer3 = self._make_layer(256, 2, stride=2)
        self.layer4 = self._make_layer(512, 2, stride=2)
        self.dropout: nn.Module = nn.Dropout2d(float(dropout)) if dropout > 0 else nn.Identity()
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * BasicBlock.expansion, self.num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    nn.init.constant_(m.bn2.weight, 0)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * BasicBlock.expansion:
            downsample = nn.Sequential(
                _conv1x1(self.inplanes, planes * BasicBlock.expansion, stride),
                nn.BatchNorm2d(planes * BasicBlock.expansion),
            )
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * BasicBlock.expansion
        for _ in range(1, blocks):
            layers.append(BasicBlock(self.inplanes, planes))
        return nn.Sequential(*layers)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the pooled 512-dimensional features, shape (B, 512)."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"x: expected shape (B, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.avgpool(self.dropout(x))
        return torch.flatten(x, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class logits, shape (B, num_classes), for input (B, in_channels, H, W)."""
        return self.fc(self.forward_features(x))


def resnet18(*args: Any, **kwargs: Any) -> ResNet18:
    """Build a :class:`ResNet18`; mirrors ``torchvision.models.resnet18``.

    Takes the arguments of :class:`ResNet18` (``in_channels``, ``num_classes``,
    ``stem``, ``dropout``, ``zero_init_residual``), with the same defaults.
    """
    return ResNet18(*args, **kwargs)

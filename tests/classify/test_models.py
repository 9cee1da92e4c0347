"""ResNet-18: torchvision's architecture, parameter names, counts, shapes and init."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from csc.classify.models import BasicBlock, ResNet18, resnet18

TORCHVISION_RESNET18_PARAMS = 11_689_512  # sum(p.numel() for p in torchvision.models.resnet18().parameters())


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def expected_state_dict_keys() -> list[str]:
    """torchvision resnet18 state_dict keys, in order (122 entries)."""

    def bn(p: str) -> list[str]:
        return [f"{p}.{s}" for s in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]

    keys = ["conv1.weight", *bn("bn1")]
    for layer in range(1, 5):
        for block in range(2):
            p = f"layer{layer}.{block}"
            keys += [f"{p}.conv1.weight", *bn(f"{p}.bn1"), f"{p}.conv2.weight", *bn(f"{p}.bn2")]
            if layer > 1 and block == 0:
                keys += [f"{p}.downsample.0.weight", *bn(f"{p}.downsample.1")]
    return keys + ["fc.weight", "fc.bias"]


def test_parameter_count_matches_torchvision():
    assert n_params(resnet18()) == TORCHVISION_RESNET18_PARAMS


def test_parameter_count_144_channels():
    m3 = ResNet18(in_channels=3)
    m144 = ResNet18(in_channels=144)
    per_input_channel = m3.conv1.weight.numel() // 3  # 64 * 7 * 7
    assert m144.conv1.weight.shape == (64, 144, 7, 7)
    assert n_params(m144) == TORCHVISION_RESNET18_PARAMS + (144 - 3) * per_input_channel
    # CIFAR stem, 10 classes: only conv1 and fc differ from torchvision's network
    c = ResNet18(in_channels=144, num_classes=10, stem="cifar")
    expected = (
        TORCHVISION_RESNET18_PARAMS
        - m3.conv1.weight.numel()
        + c.conv1.weight.numel()
        - (m3.fc.weight.numel() + m3.fc.bias.numel())
        + (512 * 10 + 10)
    )
    assert c.conv1.weight.shape == (64, 144, 3, 3)
    assert n_params(c) == expected


@pytest.mark.parametrize("stem", ["imagenet", "cifar"])
def test_state_dict_keys_match_torchvision(stem):
    keys = list(ResNet18(in_channels=144, num_classes=10, stem=stem, dropout=0.5).state_dict())
    assert keys == expected_state_dict_keys()
    assert len(keys) == 122


def test_architecture_details():
    m = resnet18()
    assert (m.conv1.kernel_size, m.conv1.stride, m.conv1.padding, m.conv1.bias) == ((7, 7), (2, 2), (3, 3), None)
    assert isinstance(m.maxpool, nn.MaxPool2d)
    assert (m.maxpool.kernel_size, m.maxpool.stride, m.maxpool.padding) == (3, 2, 1)
    c = resnet18(stem="cifar")
    assert (c.conv1.kernel_size, c.conv1.stride, c.conv1.padding) == ((3, 3), (1, 1), (1, 1))
    assert isinstance(c.maxpool, nn.Identity)
    for name, layer in (("layer1", m.layer1), ("layer2", m.layer2), ("layer3", m.layer3), ("layer4", m.layer4)):
        assert len(layer) == 2 and all(isinstance(b, BasicBlock) for b in layer)
        first = layer[0]
        if name == "layer1":
            assert first.downsample is None and first.conv1.stride == (1, 1)
        else:
            assert first.conv1.stride == (2, 2)
            ds = first.downsample
            assert isinstance(ds[0], nn.Conv2d) and ds[0].kernel_size == (1, 1) and ds[0].stride == (2, 2)
            assert ds[0].bias is None and isinstance(ds[1], nn.BatchNorm2d)
        assert layer[1].downsample is None
    assert isinstance(m.avgpool, nn.AdaptiveAvgPool2d) and m.fc.in_features == 512
    assert all(mod.bias is None for mod in m.modules() if isinstance(mod, nn.Conv2d))


# layer4 spatial size: imagenet stem halves 5 times, cifar stem 3 times (ceil)
LAYER4 = {
    "imagenet": {28: 1, 32: 1, 64: 2, 128: 4},
    "cifar": {28: 4, 32: 4, 64: 8, 128: 16},
}


@pytest.mark.parametrize("stem", ["imagenet", "cifar"])
@pytest.mark.parametrize("size", [28, 32, 64, 128])
def test_output_shapes(stem, size):
    torch.manual_seed(0)
    m = ResNet18(in_channels=5, num_classes=10, stem=stem).eval()
    seen = {}

    def hook(mod, inp, out):
        seen["l4"] = out.shape  # returns None: output unchanged

    m.layer4.register_forward_hook(hook)
    x = torch.randn(2, 5, size, size)
    with torch.no_grad():
        y = m(x)
        f = m.forward_features(x)
    assert y.shape == (2, 10) and f.shape == (2, 512)
    s = LAYER4[stem][size]
    assert seen["l4"] == (2, 512, s, s)
    assert torch.isfinite(y).all()


def test_init_like_torchvision():
    torch.manual_seed(0)
    m = resnet18(in_channels=144)
    for name, mod in m.named_modules():
        if isinstance(mod, nn.Conv2d):
            fan_out = mod.out_channels * mod.kernel_size[0] * mod.kernel_size[1]
            std = (2.0 / fan_out) ** 0.5  # kaiming_normal_, mode fan_out, relu gain
            assert abs(mod.weight.std().item() / std - 1) < 0.1, name
        elif isinstance(mod, nn.BatchNorm2d):
            assert torch.all(mod.weight == 1) and torch.all(mod.bias == 0), name
    # fc keeps nn.Linear's default init: U(-1/sqrt(512), 1/sqrt(512))
    assert m.fc.weight.abs().max() <= 512**-0.5
    z = resnet18(zero_init_residual=True)
    for block in z.modules():
        if isinstance(block, BasicBlock):
            assert torch.all(block.bn2.weight == 0) and torch.all(block.bn1.weight == 1)


def test_dropout_and_state_dict_roundtrip():
    torch.manual_seed(0)
    m = ResNet18(in_channels=4, num_classes=3, stem="cifar", dropout=0.5)
    assert isinstance(m.dropout, nn.Dropout2d) and m.dropout.p == 0.5
    assert isinstance(ResNet18().dropout, nn.Identity)
    x = torch.randn(3, 4, 16, 16)
    m.eval()
    with torch.no_grad():
        y1, y2 = m(x), m(x)
    torch.testing.assert_close(y1, y2)
    m.train()
    with torch.no_grad():
        assert not torch.allclose(m(x), m(x))
    other = ResNet18(in_channels=4, num_classes=3, stem="cifar")
    other.load_state_dict(m.state_dict(), strict=True)
    other.eval()
    m.eval()
    with torch.no_grad():
        torch.testing.assert_close(other(x), m(x))


def test_backward_and_errors():
    m = ResNet18(in_channels=2, num_classes=4, stem="cifar")
    loss = nn.functional.cross_entropy(m(torch.randn(2, 2, 8, 8)), torch.tensor([0, 3]))
    loss.backward()
    assert m.conv1.weight.grad is not None and m.fc.weight.grad is not None
    with pytest.raises(ValueError, match="stem"):
        ResNet18(stem="tiny")
    with pytest.raises(ValueError, match="dropout"):
        ResNet18(dropout=1.0)
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        m(torch.randn(2, 3, 8, 8))

"""csc.runtime.device.resolve_device: the one device resolution, and its callers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from csc.runtime.device import resolve_device

HAVE_CUDA = torch.cuda.is_available()


def test_auto_and_none():
    want = torch.device("cuda" if HAVE_CUDA else "cpu")
    assert resolve_device("auto") == want
    assert resolve_device(None) == want
    assert resolve_device() == want


def test_cpu_and_devices_pass_through():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert isinstance(resolve_device("cpu"), torch.device)


@pytest.mark.parametrize("bad", ["bogus", "", "gpu", "cuda:x"])
def test_bogus_names_name_the_argument(bad):
    with pytest.raises(ValueError, match=r"^device: .* is not a device"):
        resolve_device(bad)
    with pytest.raises(ValueError, match=r"^--device: "):
        resolve_device(bad, arg="--device")


def test_other_device_types_and_values():
    with pytest.raises(ValueError, match="device: 'meta' is not supported"):
        resolve_device("meta")
    with pytest.raises(TypeError, match="device: expected a device name"):
        resolve_device(0)


@pytest.mark.skipif(HAVE_CUDA, reason="CUDA is available")
@pytest.mark.parametrize("name", ["cuda", "cuda:0", torch.device("cuda")])
def test_cuda_without_cuda(name):
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device(name)


@pytest.mark.skipif(not HAVE_CUDA, reason="needs CUDA")
@pytest.mark.cuda
def test_cuda_devices():
    assert resolve_device("cuda").type == "cuda"
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    n = torch.cuda.device_count()
    with pytest.raises(ValueError, match=f"only {n} CUDA device"):
        resolve_device(f"cuda:{n}")


def test_callers_use_it(tmp_path):
    """The demo, the store, training and torchrun's device all reject a bogus name the same way."""
    from csc.science.demo import DemoConfig, run_demo
    from csc.pipeline.store import EncodeSettings, encode_dataset
    from csc.runtime.distributed import device_for_rank

    with pytest.raises(ValueError, match="device: 'bogus' is not a device"):
        device_for_rank("bogus")
    assert device_for_rank("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="device: 'bogus' is not a device"):
        run_demo(DemoConfig(device="bogus", crop=32, max_iter=1), progress=False, figure=False)
    with pytest.raises(ValueError, match="device: 'bogus' is not a device"):
        encode_dataset(np.zeros((2, 8, 8), np.uint8), np.zeros(2), tmp_path / "s", EncodeSettings(), device="bogus")
    import csc.classify.train as train
    import csc.cli.demo as demo_command
    import csc.cli.main as cli_main
    import csc.science.demo as demo
    for mod in (train, demo, demo_command, cli_main):
        assert not hasattr(mod, "_device"), mod.__name__

"""Device resolution: the one place that turns a user's device name into a ``torch.device``."""

from __future__ import annotations

import torch

__all__ = ["DEVICE_CHOICES", "resolve_device"]

#: What a device may be given as (the command line's ``--device`` help).
DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def resolve_device(name: str | torch.device | None = "auto", *, arg: str = "device") -> torch.device:
    """The ``torch.device`` for ``name``.

    ``"auto"`` or None: CUDA when available, else the CPU. ``"cpu"``, ``"cuda"``,
    ``"cuda:N"`` or a ``torch.device`` of type cpu/cuda: that device, after checking
    that CUDA is available and that a given index names a visible GPU.

    Raises
    ------
    ValueError
        Naming ``arg``, for a name that is not a device, a device type other than cpu
        or cuda, or a CUDA device when no (such) GPU is visible.
    TypeError
        Naming ``arg``, for a value that is neither a string, a ``torch.device`` nor None.
    """
    if name is None or (isinstance(name, str) and name.strip().lower() == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(name, torch.device):
        dev = name
    elif isinstance(name, str):
        try:
            dev = torch.device(name.strip())
        except (RuntimeError, ValueError) as exc:
            raise ValueError(f"{arg}: {name!r} is not a device (expected {DEVICE_CHOICES})") from exc
    else:
        raise TypeError(f"{arg}: expected a device name ({DEVICE_CHOICES}) or a torch.device, "
                        f"got {type(name).__name__}")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"{arg}: {str(name)!r} is not supported (expected {DEVICE_CHOICES})")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{arg}: {str(name)!r} asked for but CUDA is not available "
                             "(no GPU visible, or torch built without CUDA); use 'cpu' or 'auto'")
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise ValueError(f"{arg}: {str(name)!r} asked for but only {n} CUDA device(s) are visible")
    return dev

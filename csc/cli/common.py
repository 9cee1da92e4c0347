"""Helpers that several ``csc`` commands share (the number types are in :mod:`csc.cli.argtypes`).

:func:`torch_dtype` reads ``--dtype``, :func:`check_colour_dictionary` checks a dictionary
against ``--colour``, and :func:`init_distributed` joins torchrun's process group for the
data-parallel commands (``encode-dataset``, ``learn --method online``, ``train``);
:func:`csc.cli.main.main` leaves a group joined here when the command ends.
"""

from __future__ import annotations

import argparse

import torch

__all__ = ["check_colour_dictionary", "init_distributed", "torch_dtype"]


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype of a ``--dtype`` choice (``float32`` or ``float64``)."""
    return torch.float64 if name == "float64" else torch.float32


def check_colour_dictionary(D: torch.Tensor, colour: bool, arg: str) -> None:
    """--colour takes a multi-channel (K, 3, kh, kw) dictionary (or a single-channel one, each
    channel then coded on its own); gray images take a single-channel one. ValueError naming
    ``arg`` otherwise."""
    if D.ndim == 4 and not colour:
        raise ValueError(f"{arg}: a multi-channel dictionary {tuple(D.shape)} needs colour images: add --colour")
    if D.ndim == 4 and D.shape[1] != 3:
        raise ValueError(f"{arg}: --colour images have 3 channels, the dictionary {tuple(D.shape)} has {D.shape[1]}")


def init_distributed(args: argparse.Namespace) -> torch.device:
    """Join torchrun's process group when there is one (WORLD_SIZE > 1); this process's device
    (``args.device``). A group initialised here is left again when the command ends
    (:func:`csc.cli.main.main` reads ``args._owns_process_group``)."""
    import torch.distributed as tdist

    from csc.runtime.distributed import init_distributed as _join

    before = tdist.is_available() and tdist.is_initialized()
    device = _join(args.device, arg="--device")
    args._owns_process_group = not before and tdist.is_available() and tdist.is_initialized()
    return device

"""Host synchronisation points of the solvers, routed through one function so they can be counted.

On CUDA every read of a device value on the host (``bool(t)``, ``float(t)``, ``t.item()``,
``t.tolist()``, ``t.cpu()``) waits for the GPU to finish the queued work. The ADMM loop and
the learners make such reads only through :func:`to_host`, which counts them when a
:class:`SyncCounter` is active (:func:`count_syncs`). The tests use it to check that an
iteration without statistics makes at most one host read per ``sync_interval`` iterations,
on the CPU, where the same code runs (a CPU tensor's read is counted all the same).
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import Iterator

import torch

__all__ = ["SyncCounter", "count_syncs", "to_host", "host_bool"]


@dataclass
class SyncCounter:
    """Host reads counted while active: ``total``, and per call site name in ``by_site``."""

    total: int = 0
    by_site: dict[str, int] = field(default_factory=dict)

    def hit(self, site: str) -> None:
        self.total += 1
        self.by_site[site] = self.by_site.get(site, 0) + 1


_local = threading.local()


@contextlib.contextmanager
def count_syncs() -> Iterator[SyncCounter]:
    """Count the host synchronisations of this thread inside the ``with`` block."""
    counter = SyncCounter()
    prev = getattr(_local, "counter", None)
    _local.counter = counter
    try:
        yield counter
    finally:
        _local.counter = prev


def to_host(t: torch.Tensor, site: str) -> torch.Tensor:
    """``t`` on the CPU: the one device-to-host read of its call site (counted)."""
    counter = getattr(_local, "counter", None)
    if counter is not None:
        counter.hit(site)
    return t.detach().cpu()


def host_bool(t: torch.Tensor, site: str) -> bool:
    """``bool(t)`` of a one-element device tensor, through :func:`to_host`."""
    return bool(to_host(t, site))

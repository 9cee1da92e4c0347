"""Runtime: device resolution (:mod:`csc.runtime.device`) and torch.distributed helpers."""

import importlib as _importlib


def __getattr__(name: str):
    """Submodules load on first use (``csc.runtime.<module>`` after ``import csc``)."""
    try:
        return _importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None

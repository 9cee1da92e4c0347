"""Dictionaries: the log-Gabor generator and pickle-free dictionary and code files (shipped files: ``csc.dictionaries``)."""

import importlib as _importlib


def __getattr__(name: str):
    """Submodules load on first use (``csc.dictionary.<module>`` after ``import csc``)."""
    try:
        return _importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None

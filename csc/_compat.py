"""Old import paths of csc's modules, kept working (deprecated) after the package moved into layers.

Before the layered layout csc's modules sat side by side (``csc.cbpdn``, ``csc.dictlearn``,
``csc.data`` …). :data:`MOVED` maps each old name to its new home; the finder below makes
``import csc.dictlearn`` (and ``from csc.data import builtin_photographs``) return the new
module object itself, so there is exactly one copy of every module. Each old name is
deprecated: importing it (or reading ``csc.dictlearn`` …) emits a :class:`DeprecationWarning`
that names the new module and :data:`REMOVAL`, when the old names go.

``csc.bench`` (the SPORCO comparison harness) is not among them: the harness left the package
for the repository's ``benchmarks/bench/`` (``csc bench`` imports it from there), so the old
name has nothing in the package to point to and no longer imports.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

#: old module name → new module name
MOVED: dict[str, str] = {
    "csc._checks": "csc.core.checks",
    "csc.options": "csc.core.options",
    "csc.ops": "csc.core.ops",
    "csc.cbpdn": "csc.problems.cbpdn",
    "csc.core.cbpdn": "csc.problems.cbpdn",
    "csc.core.joint": "csc.problems.joint",
    "csc.core.maskdcpl": "csc.problems.maskdcpl",
    "csc.core.variants": "csc.problems.variants",
    "csc.core.ams": "csc.problems.ams",
    "csc.core.path": "csc.problems.path",
    "csc.sporco_compat": "csc.core.sporco",
    "csc._fused": "csc.backends.fused",
    "csc._kernels": "csc.backends.kernels",
    "csc._dl_kernels": "csc.backends.dl_kernels",
    "csc.constraints": "csc.learn.constraints",
    "csc.dictlearn": "csc.learn.dictlearn",
    "csc.onlinecdl": "csc.learn.onlinecdl",
    "csc.loggabor": "csc.dictionary.loggabor",
    "csc.io": "csc.dictionary.io",
    "csc.data": "csc.pipeline.sources",
    "csc.preprocess": "csc.pipeline.preprocess",
    "csc.store": "csc.pipeline.store",
    "csc.datasets": "csc.pipeline.datasets",
    "csc.models": "csc.classify.models",
    "csc.train": "csc.classify.train",
    "csc.metrics": "csc.science.metrics",
    "csc.prune": "csc.science.prune",
    "csc.sweep": "csc.science.sweep",
    "csc.analysis": "csc.science.analysis",
    "csc.distributed": "csc.runtime.distributed",
    "csc.demo": "csc.science.demo",
}


#: when the old names of :data:`MOVED` stop working
REMOVAL = "csc 0.3 (not before 2027-03-07)"


def warn_moved(old: str, new: str, stacklevel: int = 2) -> None:
    """Emit the :class:`DeprecationWarning` of the old module name ``old`` (now ``new``);
    ``stacklevel`` as in :func:`warnings.warn`, counted from the caller of this function."""
    warnings.warn(
        f"{old} is deprecated, import {new} instead; the old name will be removed in {REMOVAL}",
        DeprecationWarning,
        stacklevel=stacklevel + 1,
    )


def new_name(fullname: str) -> str | None:
    """The new name of an old module name (or of a submodule of an old package), else None."""
    if fullname in MOVED:
        return MOVED[fullname]
    head, _, tail = fullname.rpartition(".")
    while head:
        if head in MOVED:
            return MOVED[head] + fullname[len(head):]
        head, _, _ = head.rpartition(".")
    return None


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        # stacklevel 2: the import machinery's own frames (importlib._bootstrap) are skipped by
        # warnings, so the warning points at the ``import`` statement that used the old name
        warn_moved(spec.name, self.target, stacklevel=2)
        return importlib.import_module(self.target)

    def exec_module(self, module) -> None:  # already executed under its new name
        pass


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        new = new_name(fullname)
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(new))


def install() -> None:
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


def lazy_submodules(package: str):
    """A module ``__getattr__`` for ``package`` that imports its submodules on first use
    (``csc.science.analysis`` after a bare ``import csc``)."""

    def __getattr__(name: str):
        try:
            return importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{package}.{name}":
                raise
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None

    return __getattr__

"""Command line: ``csc COMMAND`` (the parser and commands: :mod:`csc.cli.main`; the
benchmark harness :mod:`csc.cli.bench` loads only for ``csc bench``)."""

from csc import _compat

__getattr__ = _compat.lazy_submodules(__name__)

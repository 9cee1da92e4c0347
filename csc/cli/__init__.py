"""The ``csc`` command line. :mod:`csc.cli.main` assembles the parser from one module per
command (``register(subparsers)``, ``run(args)``: :mod:`csc.cli.encode`, :mod:`csc.cli.learn`,
:mod:`csc.cli.demo` …) and dispatches; the commands hold no library logic. ``csc bench``
(:mod:`csc.cli.bench`) imports the benchmark harness from the repository checkout's
``benchmarks/bench/`` only when it runs."""

from csc import _compat

__getattr__ = _compat.lazy_submodules(__name__)

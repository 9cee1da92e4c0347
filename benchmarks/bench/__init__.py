"""Speed and memory of csc.ConvBPDN against SPORCO's admm.cbpdn.ConvBPDN, same problem.

The comparison behind ``csc bench`` (:mod:`csc.cli.bench`, which imports this package from
the repository checkout when the command runs) and ``benchmarks/compare_sporco.py`` (a thin
wrapper of :func:`main`), and the helpers the other benchmark scripts share. It is not part
of the installed package: it lives in the checkout's ``benchmarks/``, one module per part:

- :mod:`.problem` — the problem (:func:`single_image`, :func:`batch_images`,
  :func:`random_dictionary`, :func:`sporco_options`, the ``--problem`` table :data:`PROBLEMS`);
- :mod:`.runners` — one timed solve of each library (:func:`time_sporco`, :func:`time_csc`)
  and the comparison of their codes (:func:`code_difference`);
- :mod:`.memory` — peak memory in fresh child processes (:func:`measure_memory`);
- :mod:`.machine` — the machine record of every benchmark JSON (:func:`machine_info`) and
  :func:`write_json`;
- :mod:`.floor` — the memory-bandwidth floor of an ADMM iteration
  (:func:`admm_bytes_per_iteration`, :func:`memory_bandwidth`, :func:`floor_report`);
- :mod:`.modes` — single-image and batch mode (:func:`run_single`, :func:`run_batch`);
- :mod:`.report` — the console table (:func:`print_table`);
- :mod:`.command` — options checked, the report assembled and written (:func:`run`, :func:`main`);
- :mod:`.peers` — time to accuracy of csc and its peers (``csc bench --peers``,
  ``benchmarks/time_to_accuracy.py``).

Every public name of these modules is importable from the package itself
(``from benchmarks.bench import machine_info``). Needs SPORCO (the ``dev`` extra:
``pip install sporco``) for everything but the machine record and the floor.

Single-image mode (default): one natural image (SPORCO's bundled barbara, central
``--size`` crop, highpass part of ``sporco.signal.tikhonov_filter(img, 5.0, 16)``) and a
seeded random unit-norm dictionary of ``--kernels`` kernels of ``--ksize``², solved by
both libraries with identical options (SPORCO's defaults, AutoRho on, ``RelStopTol`` 0 so
that both run exactly ``--iters`` iterations, statistics off: SPORCO ``FastSolve``, csc
``record_stats=False``). Reports milliseconds per ADMM iteration (total solve time /
iterations, best and median of ``--repeats`` timed runs after one warm-up run each),
peak memory of each (measured in fresh child processes, see :func:`.memory._mem_child`), the
difference between the two codes and csc's time against the memory-bandwidth floor.

``--problem mask-dcpl`` compares csc.ConvBPDNMaskDcpl with SPORCO's on a random 0/1 mask
(:func:`bench_mask`, 30% missing). ``--problem elastic-net``, ``grad-reg`` or ``l1l1-grd`` (with ``--mu``) compares
csc.ConvElasticNet, csc.ConvBPDNGradReg or csc.ConvL1L1Grd with SPORCO's class of the same
name, on the same problem and option dict (whose unstated options take each class's own
defaults: for ``l1l1-grd`` ρ₀ = 1 and AutoRho's period 10, multiplier 2, ratio 10).

Batch mode (``--batch B``): B different ``--crop``² crops of barbara; csc solves them as
one batch, SPORCO one by one. Reports image-iterations per second of each.

Run ``csc bench --help``, ``python -m benchmarks.bench --help`` (from the checkout's root) or
``python benchmarks/compare_sporco.py --help`` for the options (declared in
:mod:`csc.cli.bench_args`, so that building the ``csc`` parser does not import this package).
"""

from csc.cli.bench_args import SPORCO_MISSING, add_arguments, have_sporco

from . import command, floor, machine, memory, modes, peers, problem, report, runners
from .command import *  # noqa: F401,F403
from .floor import *  # noqa: F401,F403
from .machine import *  # noqa: F401,F403
from .memory import *  # noqa: F401,F403
from .modes import *  # noqa: F401,F403
from .problem import *  # noqa: F401,F403
from .report import *  # noqa: F401,F403
from .runners import *  # noqa: F401,F403

__all__ = ["SPORCO_MISSING", "add_arguments", "have_sporco", *command.__all__, *floor.__all__, *machine.__all__,
           *memory.__all__, *modes.__all__, *problem.__all__, *report.__all__, *runners.__all__]

#!/usr/bin/env bash
# The GPU check: a thin wrapper around benchmarks/gpu/gpu_check.py, which runs, in order,
# environment, parity, throughput, retiring, dictlearn, dataset, classifier, nn_layer and cuda_tests
# (the CUDA tests, last, in a subprocess with their own timeout), each in its own
# try/except with its own time budget, and rewrites the whole JSON report after every
# section (benchmarks/results/gpu/gpu_check_<device type>.json; a failed section loses
# no figure). Within 7 minutes on one H100. gpu_check.py's docstring describes the sections.
#
#   bash benchmarks/gpu/check.sh              # on a CUDA machine
#   bash benchmarks/gpu/check.sh --cpu        # every section on the CPU at tiny sizes (the
#                                             # test suite runs this; --cpu-smoke is an alias)
#   PYTHON=.venv/bin/python bash benchmarks/gpu/check.sh
# Further arguments go to gpu_check.py (--out FILE, --budget throughput=120, --skip ...).
# Exit status 1 when a section failed (the report is written all the same).
set -uo pipefail
cd "$(dirname "$0")/../.."
exec "${PYTHON:-python}" benchmarks/gpu/gpu_check.py "$@"

#!/usr/bin/env bash
# The paper's post-learning dictionaries, the authors' way (csc.science.protocol.OnlineLearningProtocol):
# online CDL from each log-Gabor dictionary, 800 single-image steps. Resumable: rerun to continue.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} NUMBA_NUM_THREADS=${NUMBA_NUM_THREADS:-1}
for init in ${INITS:-heterogeneous homogeneous}; do
  $PY -m csc paper learn --init $init --out benchmarks/paper/learned/$init-online.npz --quiet "$@"
done

#!/usr/bin/env bash
# The paper's Fig. 2 claims under the authors' settings (benchmarks/paper_comparison.py --authors):
# the log-Gabor dictionaries with the authors' normalisation (part "pre"), then the post-learning
# dictionaries (part "post"); the report merges the two parts of each λ.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} NUMBA_NUM_THREADS=${NUMBA_NUM_THREADS:-1}
A=benchmarks/paper/dicts/authors
for part in ${PARTS:-pre post}; do
  for lmbda in 0.01 0.001; do
    if [ $part = pre ]; then D="$A/homogeneous.npz $A/heterogeneous.npz"; else D="homogeneous-learned heterogeneous-learned"; fi
    $PY benchmarks/paper_comparison.py --authors --authors-lmbdas $lmbda --threads 1 --quiet \
        --dictionaries $D --tag authors_${part}_lmbda$lmbda
  done
done
$PY benchmarks/paper_comparison.py --report

#!/usr/bin/env bash
# Encode the reduced Fashion-MNIST setting (see benchmarks/fashion_mnist/README.md) into
# code stores under benchmarks/fashion_mnist/stores/ (not committed: regenerate with this).
# Rerunning resumes: finished shards are verified and kept.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # 2 shared cores: one thread per process avoids oversubscription
OUT=benchmarks/fashion_mnist/stores
N_TRAIN=${N_TRAIN:-800}
N_TEST=${N_TEST:-400}
COMMON="--dataset fashion-mnist --lmbda 0.1 --max-iter 30 --rel-stop-tol 1e-2 --preprocess highpass
        --value-dtype float16 --shard-size 200 --device auto --quiet"
for dict in ${DICTS:-homogeneous heterogeneous homogeneous-batch-learned heterogeneous-batch-learned}; do
  $PY -m csc encode-dataset $COMMON --dictionary $dict --split train --count $N_TRAIN --out $OUT/$dict-train
  $PY -m csc encode-dataset $COMMON --dictionary $dict --split test --count $N_TEST --out $OUT/$dict-test
done
$PY -m csc store verify $OUT/*-train $OUT/*-test

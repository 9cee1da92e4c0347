#!/usr/bin/env bash
# Train every Table 1 configuration of the reduced Fashion-MNIST experiment (README.md here):
# pixel baseline, homogeneous and heterogeneous codes × pruning none / 0.25 / 0.5 (relative
# to each code's max), seeds 0 and 1; then aggregate into benchmarks/results/.
# Waits for the code stores that encode.sh writes. Rerunning resumes every run from its
# checkpoint (finished runs are skipped).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # 2 shared cores: one thread per process avoids oversubscription
STORES=benchmarks/fashion_mnist/stores
RUNS=benchmarks/fashion_mnist/runs
RES=benchmarks/results
N_TRAIN=${N_TRAIN:-800}
N_TEST=${N_TEST:-400}
TRAIN="--epochs 5 --batch-size 32 --size 16 --stem imagenet --device auto --quiet"
SEEDS="0 1"
wait_store() { until [ -f "$1/manifest.json" ] && grep -q '"complete": true' "$1/manifest.json"; do sleep 20; done; }
for seed in $SEEDS; do
  $PY -m csc train --pixels fashion-mnist --train-count $N_TRAIN --test-count $N_TEST $TRAIN --seed $seed \
      --out $RUNS/pixels/none/seed$seed
done
for dict in ${DICTS:-homogeneous heterogeneous homogeneous-batch-learned heterogeneous-batch-learned}; do
  wait_store $STORES/$dict-train; wait_store $STORES/$dict-test
  for prune in none 0.25 0.5; do
    P=""; [ "$prune" != none ] && P="--prune $prune"
    for seed in $SEEDS; do
      $PY -m csc train --store $STORES/$dict-train --test-store $STORES/$dict-test $P $TRAIN --seed $seed \
          --out $RUNS/$dict/$prune/seed$seed
    done
  done
done
mkdir -p $RES
$PY -m csc table $RUNS/*/*/seed* --markdown $RES/fashion_mnist_table1.md --json $RES/fashion_mnist_table1.json \
    --curves $RES/fashion_mnist_curves.png

#!/usr/bin/env bash
# The GPU check, in order: the CUDA tests, the iteration throughput (256², K = 144, float32
# and float64, batches 1, 8, 32: image-iterations/s and the ratio to the copy-bandwidth floor),
# a synthetic dataset encoding (10,000 images of 64², K = 144, 200 iterations: images/s).
# Writes benchmarks/results/gpu_check_<device>.json (device name, versions, numbers).
# Within 6 minutes on an H100/H200.
#
#   bash benchmarks/gpu/check.sh              # on a CUDA machine
#   bash benchmarks/gpu/check.sh --cpu-smoke  # tiny sizes on the CPU (the test suite runs this)
#   PYTHON=.venv/bin/python bash benchmarks/gpu/check.sh
# Further arguments go to benchmarks/gpu/gpu_check.py (--out FILE, --batches 1 8, ...).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-python}"
SMOKE=0
for a in "$@"; do [ "$a" = "--cpu-smoke" ] && SMOKE=1; done

echo "== 1/3 CUDA tests"
if [ "$SMOKE" = 1 ]; then
    echo "(cpu smoke: skipped; the test suite is the one running this)"
else
    "$PY" -m pytest -q -p no:cacheprovider tests/backends/test_cuda.py tests/backends/test_compiled.py \
        tests/core/test_host_syncs.py tests/core/test_batching.py
fi

echo "== 2/3 and 3/3: iteration throughput, dataset encoding"
"$PY" benchmarks/gpu/gpu_check.py "$@"

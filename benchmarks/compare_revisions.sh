#!/usr/bin/env bash
# Speed of two revisions of csc side by side, each as a ratio against SPORCO measured in
# the same run: `csc bench` (256², K = 144, float32 and float64) and bench_dictlearn.py,
# alternating old and new so that machine noise hits both alike.
#   bash benchmarks/compare_revisions.sh OLD_REV [OUT_DIR] [ROUNDS]
# OLD_REV is checked out in a temporary worktree and imported through PYTHONPATH from the
# same virtualenv; the working tree is the new revision. JSON records go to OUT_DIR.
set -euo pipefail
old_rev="$1"; out="${2:-benchmarks/results/core_refactor}"; rounds="${3:-2}"
root="$(cd "$(dirname "$0")/.." && pwd)"
old="$(mktemp -d)/old"
git -C "$root" worktree add -q --detach "$old" "$old_rev"
trap 'git -C "$root" worktree remove --force "$old"' EXIT
mkdir -p "$out"
for r in $(seq 1 "$rounds"); do
  for side in old new; do
    src="$root"; [ "$side" = old ] && src="$old"
    (cd "$src" && PYTHONPATH="$src" python -m csc bench --size 256 --iters 20 --repeats 3 --no-memory \
        --threads 2 --json "$root/$out/bench_${side}_$r.json" > /dev/null)
    (cd "$src" && PYTHONPATH="$src" python "$src/benchmarks/bench_dictlearn.py" --iters 50 --threads 2 \
        --json "$root/$out/dictlearn_${side}_$r.json" > /dev/null)
  done
done
python "$root/benchmarks/summarise_revisions.py" "$out"

#!/usr/bin/env bash
# Create a virtualenv (default .venv) with csc and its test dependencies.
# torch==2.13.0 is pinned first: on these machines it resolves to the local CPU build,
# whereas an unpinned torch pulls gigabytes of CUDA packages. On a GPU machine install
# the CUDA build of torch you want first, then run this script.
set -euo pipefail
venv="${1:-.venv}"
python3 -m venv "$venv"
. "$venv/bin/activate"
python -m pip install -q --upgrade pip
python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[dev]"

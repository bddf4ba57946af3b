#!/usr/bin/env bash
# Creates .venv (if missing) and installs the package with its test extras, on the CPU build of torch.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# The constraints file pins the CPU wheel of torch; an unpinned torch would pull a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet -c constraints-cpu.txt -e ".[dev]"

#!/usr/bin/env bash
# The README's main job: set up, then pretrain a small GPT-2 on The Verdict (a few minutes on 2 CPU cores),
# print a sample and where the plots are. Extra arguments go to `gpt2-scratch pretrain`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
# Use the local copy of the corpus when the project's shared data sits beside the repository; otherwise the
# package downloads it from its public source (sha256-checked, cached).
if [ -d ../shared/data ]; then export GPT2_SCRATCH_DATA_DIR="$(cd ../shared/data && pwd)"; fi
exec .venv/bin/gpt2-scratch pretrain --preset tiny --epochs 20 --lr 1e-3 --out runs/verdict "$@"

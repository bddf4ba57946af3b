#!/usr/bin/env bash
# The README's test command: set up, then run the whole suite offline (there is no Hugging Face Hub here).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
exec .venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 "$@"

#!/usr/bin/env bash
# The README's test command: set up, then run the suite offline (there is no Hugging Face Hub here).
#   scripts/test.sh [PYTEST ARGS]                 the whole suite on the lock (requirements/lock.txt)
#   scripts/test.sh minimum|latest [PYTEST ARGS]  the core subset (-m core: modeling, generation, ecosystem, remote
#                                                 code) on every dependency's declared minimum, or on the newest
#                                                 releases the declared ranges allow today
set -euo pipefail
cd "$(dirname "$0")/.."
set_name=lock
case "${1:-}" in minimum|latest) set_name="$1"; shift ;; esac
bash scripts/setup.sh "$set_name"
export HF_HUB_OFFLINE=1
if [ "$set_name" = lock ]; then
    exec .venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 "$@"
fi
venv=".venv-$set_name"
"$venv/bin/python" -c 'import torch, transformers; print(f"{transformers.__version__=} {torch.__version__=}")'
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider -m core "$@"

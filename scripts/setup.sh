#!/usr/bin/env bash
# Creates a virtual environment and installs the package with its test extras, from one of three package sets:
#   scripts/setup.sh          .venv          requirements/lock.txt: the tested set (README commands, CI's full suite)
#   scripts/setup.sh minimum  .venv-minimum  requirements/minimum.txt: every dependency at its declared lower bound
#   scripts/setup.sh latest   .venv-latest   the newest releases the declared ranges allow, resolved now
# torch stays at the CPU wheel in all three (see scripts/lock.sh). Refresh the two files with scripts/lock.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
set_name="${1:-lock}"
case "$set_name" in
    lock) venv=.venv; requirements=(-r requirements/lock.txt) ;;
    minimum) venv=.venv-minimum; requirements=(-r requirements/minimum.txt) ;;
    latest) venv=.venv-latest; requirements=(--upgrade --upgrade-strategy eager torch==2.13.0 -e ".[dev]") ;;
    *) echo "usage: scripts/setup.sh [lock|minimum|latest]" >&2; exit 2 ;;
esac
python3 -m venv "$venv"
pip_install() {  # pip's exit status counts; only this machine's notes about missing local indexes are dropped
    "$venv/bin/python" -m pip install --quiet "$@" 2> >(grep -v "^WARNING: Location 'file:" >&2)
}
pip_install --upgrade pip
pip_install "${requirements[@]}"
pip_install --no-deps -e .
"$venv/bin/python" -m pip check

#!/usr/bin/env bash
# Regenerates the two pinned sets from pyproject.toml (needs `uv`: pip install uv):
#   requirements/lock.txt     every package at the newest release the declared ranges allow: what the README
#                             commands and CI install;
#   requirements/minimum.txt  every direct dependency at its declared lower bound (the rest resolved around them):
#                             what CI's minimum-versions job installs, so that a lower bound is a tested claim.
# torch is held at the CPU wheel this project's machines carry (torch==2.13.0; a newer or plain torch is a multi-GB
# CUDA build); the pin drops the "+cpu" label so that elsewhere pip takes the platform's default build.
set -euo pipefail
cd "$(dirname "$0")/.."
torch_pin="$(mktemp)"; lower_bounds="$(mktemp)"
trap 'rm -f "$torch_pin" "$lower_bounds"' EXIT
echo "torch==2.13.0+cpu" > "$torch_pin"
compile() {  # compile OUTPUT [extra uv arguments]
    local out="$1"; shift
    uv pip compile pyproject.toml --extra dev --python-version 3.11 --find-links /opt/wheels --override "$torch_pin" \
        --no-header --no-annotate --quiet "$@" -o "$out"
    sed -i 's/^torch==\(.*\)+cpu$/torch==\1/' "$out"
}
compile requirements/lock.txt --upgrade
# Each ">=X" of [project] dependencies and the dev extra becomes "==X".
python3 - "$lower_bounds" <<'PY'
import re, sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
pins = []
for requirement in project["dependencies"] + project["optional-dependencies"]["dev"]:
    name, lower = re.match(r"([A-Za-z0-9_.-]+)\s*>=\s*([^,;\s]+)", requirement).groups()
    pins.append(f"{name}=={lower}\n")
open(sys.argv[1], "w").writelines(pins)
PY
compile requirements/minimum.txt --constraint "$lower_bounds"
echo "wrote requirements/lock.txt and requirements/minimum.txt"

#!/usr/bin/env bash
# The main job: run notebooks/quickstart.ipynb as a container job on the local engine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/jupyter containerize run notebooks/quickstart.ipynb "$@"

#!/usr/bin/env bash
# The whole test suite, against the real engine (integration tests fail, never skip, without one).
set -euo pipefail
cd "$(dirname "$0")/.."
JC_SETUP_TEST=1 bash scripts/setup.sh
# Static checks first (configured in pyproject.toml; their caches live under .venv): seconds, not minutes.
.venv/bin/ruff check
.venv/bin/mypy
if [ -f labextension/package.json ] && [ -x scripts/test-labextension.sh ]; then
  bash scripts/test-labextension.sh
fi
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"

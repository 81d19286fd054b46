#!/usr/bin/env bash
# The labextension's type check and TypeScript unit tests (the panel's state logic), with JupyterLab's own jlpm.
set -euo pipefail
cd "$(dirname "$0")/../labextension"
PATH="$PWD/../.venv/bin:$PATH"
jlpm install --immutable >/dev/null 2>&1 || jlpm install
echo "tsc and jest with Node $(node --version) from $(command -v node)"
jlpm typecheck   # the sources and the tests, with tsconfig.json's checks; writes nothing
jlpm test

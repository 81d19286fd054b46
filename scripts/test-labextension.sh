#!/usr/bin/env bash
# The labextension's TypeScript unit tests (the panel's state logic), with JupyterLab's own jlpm.
set -euo pipefail
cd "$(dirname "$0")/../labextension"
PATH="$PWD/../.venv/bin:$PATH"
jlpm install --immutable >/dev/null 2>&1 || jlpm install
echo "jest with Node $(node --version) from $(command -v node)"
jlpm test

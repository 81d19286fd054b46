#!/usr/bin/env bash
# Start two loopback registries (Debian's docker-registry, distribution 2.8) unless they answer:
#   127.0.0.1:${JC_REGISTRY_PORT:-5000}       no auth
#   127.0.0.1:${JC_REGISTRY_AUTH_PORT:-5001}  htpasswd auth, user ${JC_REGISTRY_USER:-jc}, password ${JC_REGISTRY_PASSWORD:-jc-secret}
# Idempotent; as root installs docker-registry and apache2-utils (htpasswd) when missing.
# Loopback registries are trusted as insecure by the engine, so no TLS is needed.
set -euo pipefail
PORT=${JC_REGISTRY_PORT:-5000}
AUTH_PORT=${JC_REGISTRY_AUTH_PORT:-5001}
USER_NAME=${JC_REGISTRY_USER:-jc}
PASSWORD=${JC_REGISTRY_PASSWORD:-jc-secret}
STATE=${JC_REGISTRY_STATE:-/var/lib/jupyter-containerize/registry}

answers() {  # port, expected HTTP codes (regex)
  python3 - "$1" "$2" <<'PY' 2>/dev/null
import re, sys, urllib.request, urllib.error
port, want = sys.argv[1], sys.argv[2]
try:
    code = urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=3).status
except urllib.error.HTTPError as e:
    code = e.code
except Exception:
    sys.exit(1)
sys.exit(0 if re.fullmatch(want, str(code)) else 1)
PY
}

if ! command -v docker-registry >/dev/null 2>&1 || ! command -v htpasswd >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "docker-registry/htpasswd are missing; as root: apt-get install docker-registry apache2-utils" >&2
    exit 1
  fi
  echo "Installing Debian's docker-registry and apache2-utils …"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry apache2-utils >/dev/null
fi

start() {  # name, port, auth(0|1)
  local name=$1 port=$2 auth=$3 dir="$STATE/$1"
  if answers "$port" '200|401'; then return 0; fi
  mkdir -p "$dir/data"
  {
    echo "version: 0.1"
    echo "log: {level: warn}"
    echo "storage:"
    echo "  filesystem: {rootdirectory: $dir/data}"
    echo "  delete: {enabled: true}"
    echo "http:"
    echo "  addr: 127.0.0.1:$port"
    if [ "$auth" = 1 ]; then
      htpasswd -Bbn "$USER_NAME" "$PASSWORD" >"$dir/htpasswd"
      echo "auth:"
      echo "  htpasswd: {realm: jupyter-containerize, path: $dir/htpasswd}"
    fi
  } >"$dir/config.yml"
  echo "Starting docker-registry $name on 127.0.0.1:$port (log: $dir/registry.log) …"
  setsid nohup docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 </dev/null &
  for _ in $(seq 1 30); do
    if answers "$port" '200|401'; then return 0; fi
    sleep 0.5
  done
  echo "docker-registry $name did not answer on 127.0.0.1:$port; see $dir/registry.log:" >&2
  tail -20 "$dir/registry.log" >&2
  return 1
}

start plain "$PORT" 0
start auth "$AUTH_PORT" 1
echo "registries up: 127.0.0.1:$PORT (no auth), 127.0.0.1:$AUTH_PORT (htpasswd)"

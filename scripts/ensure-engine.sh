#!/usr/bin/env bash
# Make sure a Docker engine answers. As root on Debian/Ubuntu, install docker.io and
# start dockerd when none does; otherwise say how to get one. Exit 1 if none answers.
set -euo pipefail

engine_answers() { docker info >/dev/null 2>&1 || python3 - <<'PY' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(3); s.connect("/var/run/docker.sock")
s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n"); sys.exit(0 if b"OK" in s.recv(1024) else 1)
PY
}

if engine_answers; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "No Docker engine answers. Start one (as root: apt-get install docker.io && dockerd &) or set DOCKER_HOST." >&2
  exit 1
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "Installing Debian's docker.io …"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
log=/var/log/jupyter-containerize-dockerd.log
echo "Starting dockerd (log: $log) …"
setsid nohup dockerd >"$log" 2>&1 </dev/null &
for _ in $(seq 1 60); do
  if engine_answers; then echo "dockerd is up."; exit 0; fi
  sleep 1
done
echo "dockerd did not come up within 60 s; see $log:" >&2
tail -20 "$log" >&2
exit 1

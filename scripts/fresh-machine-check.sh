#!/usr/bin/env bash
# Try the README on fresh Debian machines: a stock Debian root made from Debian's packages
# (python3, git, curl, ca-certificates and nothing else), a clean clone of this repository's
# HEAD, and the README's main command run there as a new user would.
#
#   scripts/fresh-machine-check.sh                 # bookworm: the quickstart, then the wheel without Node
#   scripts/fresh-machine-check.sh --all           # bookworm and trixie
#   scripts/fresh-machine-check.sh --suite trixie --command './scripts/test.sh -x'
#
# bookworm runs its own dockerd inside the machine (docker in docker). trixie's Docker 26
# cannot attach bridge networks when nested here, so that machine uses this host's engine
# through its socket, on the host's network, with the clone at the same path inside and out
# (the jobs' bind mounts then resolve on the host). Exit status: that of the first failing run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
suites=(bookworm)
# The README's main command; then, on this machine that has no Node, a wheel of the clone installs
# into a plain venv with its prebuilt labextension enabled.
command='./scripts/quickstart.sh \
  && if command -v node; then echo "Node is on this machine: the check needs one without" >&2; exit 1; fi \
  && .venv/bin/uv build -q --wheel -o /tmp/dist . && python3 -m venv /tmp/wheel-venv \
  && /tmp/wheel-venv/bin/pip install -q /tmp/dist/*.whl \
  && /tmp/wheel-venv/bin/jupyter labextension list 2>&1 | tee /dev/stderr | grep -q "jupyter-containerize v.*enabled.*OK"'
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --all) suites=(bookworm trixie) ;;
    --suite) suites=("$2"); shift ;;
    --command) command="$2"; shift ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "Unknown option $1: use --all, --suite NAME, --command CMD or --keep." >&2; exit 2 ;;
  esac
  shift
done
for suite in "${suites[@]}"; do
  case "$suite" in bookworm|trixie) ;; *) echo "Unknown suite $suite: use bookworm or trixie." >&2; exit 2 ;; esac
done
if [[ " ${suites[*]} " == *" trixie "* ]] && ps -eo stat=,comm= | awk '$1 !~ /^Z/ && ($2 == "slurmctld" || $2 == "slurmd") {f=1} END {exit !f}'; then
  echo "Slurm runs on this host, and the trixie machine shares this host's network (its tests start their own):" \
       "stop it first (pkill -x slurmctld; pkill -x slurmd)." >&2
  exit 2
fi
if [ "$(id -u)" != 0 ]; then
  echo "The fresh-machine check needs root (debootstrap and a privileged engine)." >&2
  exit 2
fi

bash scripts/ensure-engine.sh
command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
PATH="$PATH:/usr/sbin"

mirror() {
  local uri
  uri=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -1 | awk '{print $2}')
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  echo "${uri:-http://deb.debian.org/debian}"
}

# A stock Debian of that release, as an image (made once; ~1 min).
stock_image() {
  local suite=$1 image="jupyter-containerize/fresh-debian:$1" tmp
  if ! docker image inspect "$image" >/dev/null 2>&1; then
    echo "Making a stock Debian $suite root with debootstrap (once) …"
    tmp=$(mktemp -d /var/tmp/jc-fresh-root.XXXXXX)
    debootstrap --variant=minbase --include=python3,git,ca-certificates,curl "$suite" "$tmp/root" "$(mirror)" \
      >"$tmp.log" 2>&1 || { tail -20 "$tmp.log" >&2; rm -rf "$tmp" "$tmp.log"; return 1; }
    tar --numeric-owner -C "$tmp/root" -c . | docker import - "$image" >/dev/null
    rm -rf "$tmp" "$tmp.log"
  fi
  echo "$image"
}

# Every capability of this machine's bounding set but those the engine refuses to grant here.
cap_flags() {
  local mask names
  mask=$(awk '/^CapBnd/ {print $2}' /proc/self/status)
  names=$(python3 - "$mask" <<'PY'
import sys
mask = int(sys.argv[1], 16)
caps = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
        "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
        "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
        "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
        "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ"]
skip = {"SYS_RESOURCE"}   # refused on these VMs; BPF, PERFMON, CHECKPOINT_RESTORE are past this list
print(" ".join(f"--cap-add={c}" for i, c in enumerate(caps) if mask >> i & 1 and c not in skip))
PY
)
  echo "$names"
}

run_suite() {
  local suite=$1 image work clone rc=0
  image=$(stock_image "$suite" | tail -1)
  work=$(mktemp -d /var/tmp/jc-fresh-"$suite".XXXXXX)
  clone="$work/jupyter-containerize"
  git clone -q --no-local "$ROOT" "$clone"
  echo "== fresh Debian $suite: $command (clone of $(git -C "$clone" rev-parse --short HEAD) in $clone)"
  local ca=() engine=() name="jc-fresh-$suite-$$"
  if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    # This machine's trust (a TLS-intercepting proxy re-signs PyPI and npm): the fresh machine's too.
    ca=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/host-ca.crt:ro
        -e PIP_CERT=/etc/ssl/certs/host-ca.crt -e SSL_CERT_FILE=/etc/ssl/certs/host-ca.crt
        -e NODE_EXTRA_CA_CERTS=/etc/ssl/certs/host-ca.crt)
  fi
  if [ "$suite" = bookworm ]; then
    mkdir -p "$work/docker"
    engine=(-v "$work/docker:/var/lib/docker" -v "$clone:/src/jupyter-containerize" -w /src/jupyter-containerize)
  else
    # Temporary files too (pytest's tmp_path holds job outputs that the host's engine bind-mounts).
    mkdir -p "$work/tmp"
    engine=(--network host -v /var/run/docker.sock:/var/run/docker.sock -v "$work:$work" -w "$clone"
            -e TMPDIR="$work/tmp")
  fi
  # shellcheck disable=SC2046
  # --init: a real machine's init reaps what exits (a stopped dockerd is no zombie there).
  docker run --rm --init --name "$name" $(cap_flags) \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    --device-cgroup-rule 'a *:* rwm' -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
    "${ca[@]}" "${engine[@]}" -e CI="${CI:-}" \
    "$image" bash -lc "$command" || rc=$?
  echo "== fresh Debian $suite: exit $rc"
  if [ "$keep" = 0 ]; then rm -rf "$work"; else echo "kept $work"; fi
  return "$rc"
}

status=0
for suite in "${suites[@]}"; do
  run_suite "$suite" || { [ "$status" != 0 ] || status=$?; }
done
exit "$status"

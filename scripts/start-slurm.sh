#!/usr/bin/env bash
# Start a one-node Slurm cluster (munged, slurmctld, slurmd; Debian's slurm-wlm 22.05) unless
# one answers already. Idempotent; as root installs slurm-wlm and munge when missing and writes
# /etc/slurm/slurm.conf + cgroup.conf (only when they are absent or were written by this script).
set -euo pipefail
STATE=${JC_SLURM_STATE:-/var/lib/jupyter-containerize/slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by jupyter-containerize scripts/start-slurm.sh"

node_ready() { sinfo -h -N -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated|completing)'; }

if command -v sinfo >/dev/null 2>&1 && node_ready; then echo "slurm is up."; exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "No Slurm cluster answers; starting one needs root (apt-get install slurm-wlm munge)." >&2
  exit 1
fi
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  echo "Installing Debian's slurm-wlm and munge …"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

# munge: a key readable only by the munge user, then the daemon as that user.
install -d -o munge -g munge -m 700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  setsid runuser -u munge -- /usr/sbin/munged </dev/null >/dev/null 2>&1 || true
  for _ in $(seq 1 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.5; done
fi

mkdir -p "$STATE/state" "$STATE/spool" "$STATE/log"
HOST=$(hostname -s)
if [ ! -f "$CONF" ] || grep -qF "$MARK" "$CONF"; then
  read -r CPUS MEM < <(awk -v c="$(nproc)" '/MemTotal/ {printf "%d %d\n", c, $2/1024*0.9}' /proc/meminfo)
  cat >"$CONF" <<CONF
$MARK
ClusterName=jc
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=600
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
  printf '%s\nCgroupPlugin=cgroup/v1\n' "$MARK" >/etc/slurm/cgroup.conf
fi

pgrep -x slurmctld >/dev/null || setsid /usr/sbin/slurmctld </dev/null >/dev/null 2>&1
for _ in $(seq 1 30); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.5; done
pgrep -x slurmd >/dev/null || setsid /usr/sbin/slurmd </dev/null >/dev/null 2>&1
for _ in $(seq 1 60); do
  if node_ready; then echo "slurm is up: $(sinfo -h -N -o '%N %T %c CPUs %m MiB')"; exit 0; fi
  # A node left down/drained by an earlier run comes back when asked.
  scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true
  sleep 1
done
echo "Slurm did not come up; see $STATE/log/:" >&2
tail -n 5 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
exit 1

#!/usr/bin/env bash
# Starts (or stops) a one-node Slurm cluster from Debian packages: `bash .ci/slurm-up.sh up|down|status`.
# Needs root. Verified recipe from shared/guide/slurm-and-chromium.md section 1; used by .ci/run and
# `make test-cluster` (the sweep test, tests/integration/cluster.rs).
set -euo pipefail
CONF=/etc/slurm/slurm.conf
STATE=/var/spool/slurm-ci; LOGD=/var/log/slurm-ci; PIDD=/run/slurm-ci

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
stop_pid() {
  alive "$1" || { rm -f "$1"; return 0; }
  local p; p=$(cat "$1"); kill "$p" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$p" 2>/dev/null || true; rm -f "$1"
}
stop_slurm() { stop_pid "$PIDD/slurmd.pid"; stop_pid "$PIDD/slurmctld.pid"; }

up() {
  command -v slurmctld >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
  }
  install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
  install -d -o munge -g munge -m 0755 /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
      || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
  fi
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  local host nodeline; host=$(hostname -s)
  nodeline=$(slurmd -C | head -1)
  install -d -m 0755 /etc/slurm "$STATE/ctld" "$STATE/d" "$LOGD" "$PIDD"
  cat > "$CONF.new" <<CONF
ClusterName=ci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$PIDD/slurmctld.pid
SlurmdPidFile=$PIDD/slurmd.pid
SlurmctldLogFile=$LOGD/slurmctld.log
SlurmdLogFile=$LOGD/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
JobRequeue=1
MinJobAge=600
KillWait=2
$nodeline NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=ci Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  if cmp -s "$CONF.new" "$CONF"; then rm "$CONF.new"; else mv "$CONF.new" "$CONF"; stop_slurm; fi
  alive "$PIDD/slurmctld.pid" || slurmctld
  alive "$PIDD/slurmd.pid"    || slurmd
  local deadline=$(( $(date +%s) + 60 )) st=
  while [ "$(date +%s)" -lt "$deadline" ]; do
    st=$(timeout 5 sinfo -h -N -n "$host" -o %t 2>/dev/null || true)
    case "$st" in idle|mix|alloc) echo "slurm up: node $host $st"; return 0;; esac
    sleep 0.2
  done
  echo "slurm did not come up (node state '$st')" >&2; tail -n 20 "$LOGD"/*.log >&2; return 1
}

case "${1:-up}" in
  up) up ;;
  down) stop_slurm; stop_pid /run/munge/munged.pid ;;
  status) sinfo; squeue ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac

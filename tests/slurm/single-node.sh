#!/usr/bin/env bash
# A single-node Slurm on this machine (Debian's slurm-wlm and munge; slurmctld and slurmd as root, no cgroup
# plugins), for tests/slurm.rs. Usage: single-node.sh start DIR | stop DIR. `start` writes DIR/slurm.conf, starts
# munged (if none runs), slurmctld and slurmd, and waits until the node is idle; prints `SLURM_CONF=...` on success.
set -euo pipefail
cmd="${1:?start|stop}"; dir="${2:?DIR}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
conf="$dir/slurm.conf"
host="$(hostname -s)"
case "$cmd" in
  start)
    mkdir -p "$dir/state" "$dir/spool" /run/munge
    cat > "$conf" <<CONF
ClusterName=vqclip-test
SlurmctldHost=$host
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SlurmUser=root
SlurmdUser=root
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmdSpoolDir=$dir/spool
StateSaveLocation=$dir/state
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
NodeName=$host CPUs=$(nproc) RealMemory=4000 State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
    if ! pgrep -x munged >/dev/null; then
      chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
      munged --force >/dev/null 2>&1 || su -s /bin/sh munge -c "munged" || { echo "cannot start munged" >&2; exit 1; }
    fi
    export SLURM_CONF="$conf"
    slurmctld -f "$conf" || { tail -20 "$dir/slurmctld.log" >&2; exit 1; }
    slurmd -f "$conf" || { tail -20 "$dir/slurmd.log" >&2; exit 1; }
    for _ in $(seq 1 60); do
      state="$(sinfo -h -o %t 2>/dev/null | head -1 || true)"
      case "$state" in idle*|mix*|alloc*) echo "SLURM_CONF=$conf"; exit 0 ;; esac
      sleep 0.5
    done
    echo "the node did not come up (state '${state:-none}')" >&2
    tail -20 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
    exit 1 ;;
  stop)
    for p in slurmd slurmctld; do
      [ -f "$dir/$p.pid" ] && kill "$(cat "$dir/$p.pid")" 2>/dev/null || true
    done
    sleep 1 ;;
  *) echo "usage: single-node.sh start|stop DIR" >&2; exit 2 ;;
esac

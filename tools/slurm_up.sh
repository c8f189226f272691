#!/bin/bash
# Bring up a single-node SLURM (slurmctld + slurmd + munge) on localhost, for laptops and CI.
#
#   bash tools/slurm_up.sh [STATE_DIR]        (default: $HPC_VDM_SLURM_DIR or ~/.cache/hpc_vdm/slurm)
#   export SLURM_CONF=STATE_DIR/etc/slurm.conf PATH=STATE_DIR/bin:$PATH   (the script prints this line)
#
# No systemd needed: munged and the daemons run from STATE_DIR with their own key, sockets, PID files and
# logs. Installs the Debian packages when missing (root or sudo). Idempotent: a second call only checks;
# a changed slurm.conf restarts the daemons. `sacct` is answered by a small stand-in (STATE_DIR/bin/sacct)
# that reads `scontrol show job` and the job-completion log, which is what submitit needs.
# Tear down with tools/slurm_down.sh (stops daemons by PID file, never by name).
set -euo pipefail

STATE=${1:-${HPC_VDM_SLURM_DIR:-$HOME/.cache/hpc_vdm/slurm}}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$STATE"/{etc,log,run,spool,state,munge,bin,jobs}
STATE=$(cd "$STATE" && pwd)
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"

# --- packages ------------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
   || ! command -v sbatch >/dev/null; then
  echo "slurm_up: installing slurmctld slurmd slurm-client munge" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null || true
  $SUDO apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi

# --- munge ---------------------------------------------------------------------------------------
SOCK=$STATE/munge/munge.socket
chmod 700 "$STATE/munge"
if [ ! -s "$STATE/munge/munge.key" ]; then
  dd if=/dev/urandom bs=1024 count=1 of="$STATE/munge/munge.key" status=none
  chmod 400 "$STATE/munge/munge.key"
fi
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if ! alive "$STATE/munge/munged.pid"; then
  rm -f "$SOCK"
  munged --force --key-file="$STATE/munge/munge.key" --socket="$SOCK" --pid-file="$STATE/munge/munged.pid" \
         --log-file="$STATE/log/munged.log" --seed-file="$STATE/munge/munge.seed"
fi
for _ in $(seq 50); do munge -n -S "$SOCK" 2>/dev/null | unmunge -S "$SOCK" >/dev/null 2>&1 && break; sleep 0.1; done

# --- slurm.conf ----------------------------------------------------------------------------------
CPUS=$(getconf _NPROCESSORS_ONLN)  # not nproc: it obeys OMP_NUM_THREADS
MEM_MB=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
CONF=$STATE/etc/slurm.conf
NEW=$(cat <<CONF
# written by tools/slurm_up.sh
ClusterName=localcluster
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCK,cred_expire=20
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/log/jobcomp.txt
MailProg=/bin/true
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
ReturnToService=2
KillWait=10
MinJobAge=300
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
)
CHANGED=0
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$NEW" ]; then echo "$NEW" > "$CONF"; CHANGED=1; fi
export SLURM_CONF=$CONF

stop() { if alive "$1"; then kill "$(cat "$1")"; for _ in $(seq 150); do alive "$1" || break; sleep 0.1; done; fi; }
if [ $CHANGED = 1 ]; then stop "$STATE/run/slurmd.pid"; stop "$STATE/run/slurmctld.pid"; fi

# --- the sacct stand-in --------------------------------------------------------------------------
install -m 755 "$HERE/slurm/sacct" "$STATE/bin/sacct"

# --- daemons -------------------------------------------------------------------------------------
alive "$STATE/run/slurmctld.pid" || slurmctld -f "$CONF"
alive "$STATE/run/slurmd.pid" || slurmd -f "$CONF" -N localhost
for i in $(seq 100); do
  st=$(sinfo -h -N -n localhost -o %t 2>/dev/null || true)
  case "$st" in
    idle*|mix*|alloc*) break ;;
    down*|drain*|unk*) scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true ;;
  esac
  sleep 0.2
done
st=$(sinfo -h -N -n localhost -o %t 2>/dev/null || true)
case "$st" in idle*|mix*|alloc*) ;; *) echo "slurm_up: node not ready (state '$st'); see $STATE/log" >&2; exit 1 ;; esac
echo "export SLURM_CONF=$CONF PATH=$STATE/bin:\$PATH"

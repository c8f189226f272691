#!/bin/bash
# Stop the localhost SLURM of tools/slurm_up.sh: cancel this user's jobs, stop daemons by PID file only.
#   bash tools/slurm_down.sh [STATE_DIR] [--purge]     (--purge also wipes state, logs and spool)
set -uo pipefail
STATE=${HPC_VDM_SLURM_DIR:-$HOME/.cache/hpc_vdm/slurm}; PURGE=0
for a in "$@"; do case "$a" in --purge) PURGE=1 ;; *) STATE=$a ;; esac; done
[ -d "$STATE" ] || { echo "slurm_down: no state dir $STATE" >&2; exit 0; }
export SLURM_CONF=$STATE/etc/slurm.conf

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if alive "$STATE/run/slurmctld.pid"; then
  scancel -u "$(id -un)" 2>/dev/null || true
  for _ in $(seq 60); do [ -z "$(squeue -h -u "$(id -un)" 2>/dev/null)" ] && break; sleep 0.5; done
fi
stop() {  # TERM, then KILL after 15 s; only the PID in the file, and only if it is the expected program
  local pidfile=$1 name=$2 pid
  alive "$pidfile" || return 0
  pid=$(cat "$pidfile")
  [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = "$name" ] || { echo "slurm_down: pid $pid is not $name; left alone" >&2; return 0; }
  kill "$pid"
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}
stop "$STATE/run/slurmd.pid" slurmd
stop "$STATE/run/slurmctld.pid" slurmctld
stop "$STATE/munge/munged.pid" munged
if [ $PURGE = 1 ]; then rm -rf "$STATE"/{state,spool,log,run,jobs}; fi
if [ $PURGE = 1 ]; then echo "slurm_down: stopped and purged $STATE"; else echo "slurm_down: stopped"; fi

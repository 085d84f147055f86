#!/usr/bin/env bash
# Stop the single-node test cluster started by start.sh: cancel its jobs, then stop slurmd, slurmctld,
# slurmdbd, MariaDB and (if start.sh started it) munged. The base directory (state, accounting database,
# logs) is kept so that job ids keep counting up; `stop.sh [BASE_DIR] --purge` deletes it as well.
set -euo pipefail
purge=0
args=()
for arg in "$@"; do
    if [[ $arg == --purge ]]; then purge=1; else args+=("$arg"); fi
done
source "$(dirname "$0")/common.sh" "${args[0]:-}"

[[ $(id -u) -eq 0 ]] || die "run as root (sudo $0)"
if [[ ! -d $BASE ]]; then
    log "nothing to stop: $BASE does not exist"
    exit 0
fi
lock_base

# Jobs left running would keep their slurmstepd and user processes alive after slurmd stops.
if ctld_ok && [[ -n $(squeue -h -o %i 2>/dev/null) ]]; then
    log "cancelling the cluster's jobs"
    scancel --partition=debug 2>/dev/null || true
    for _ in $(seq 75); do
        [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break
        sleep 0.2
    done
fi

# slurmctld first flushes its accounting records to slurmdbd, which needs MariaDB.
stop_daemons slurmd slurmctld
stop_daemons slurmdbd
# Only a munged started by start.sh has its pid file here; a system munged is left alone.
stop_daemons mariadb munged

# tests/slurm_cluster.py marks a cluster started by test sessions; it is stopped now.
rm -f "$BASE/clients/started-by-tests"

if ((purge)); then
    log "deleting $BASE"
    rm -rf "$BASE"
fi
log "stopped"

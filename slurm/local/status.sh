#!/usr/bin/env bash
# Report the single-node test cluster's daemons, node and queue. Exit 0 when healthy (jobs can run and
# sacct answers), 1 otherwise. Usage: status.sh [BASE_DIR]
set -uo pipefail
source "$(dirname "$0")/common.sh" "${1:-}"

yes_no() { if "$@"; then echo up; else echo DOWN; fi; }

echo "base:      $BASE"
echo "SLURM_CONF=$SLURM_CONF"
echo "munged:    $(yes_no munge_ok)"
echo "mariadb:   $(yes_no mysql_ok)"
echo "slurmdbd:  $(yes_no dbd_ok)"
echo "slurmctld: $(yes_no ctld_ok)"
echo "slurmd:    $(yes_no pid_alive "$BASE/run/slurmd.pid")"
echo "node:      $HOST $(node_state)"
echo "sacct:     $(yes_no sacct_ok)"
if ctld_ok; then
    squeue -o "%.8i %.9P %.20j %.8T %.10M %R"
fi
if healthy; then
    echo "healthy"
    exit 0
fi
echo "NOT healthy (logs: $BASE/log/)"
exit 1

#!/usr/bin/env bash
# Report the single-node test cluster's daemons, node and queue. Exit 0 when healthy (jobs can run and
# sacct answers), 1 otherwise. Usage: status.sh [BASE_DIR]
set -uo pipefail
source "$(dirname "$0")/common.sh" "${1:-}"

up_down() { if "$@"; then echo up; else echo DOWN; fi; }

echo "base:      $BASE"
echo "SLURM_CONF=$SLURM_CONF"
echo "munged:    $(up_down munge_ok)"
echo "mariadb:   $(up_down mysql_ok)"
echo "slurmdbd:  $(up_down dbd_ok)"
echo "slurmctld: $(up_down ctld_ok)"
echo "slurmd:    $(up_down pid_alive "$BASE/run/slurmd.pid")"
# Clients retry for ~10 s against a missing daemon: only ask the ones that are up.
if ctld_ok; then
    echo "node:      $HOST $(node_state)"
    squeue -o "%.8i %.9P %.20j %.8T %.10M %R"
fi
if dbd_ok; then
    echo "sacct:     $(up_down sacct_ok)"
fi
if healthy; then
    echo "healthy"
    exit 0
fi
echo "NOT healthy (logs: $BASE/log/)"
exit 1

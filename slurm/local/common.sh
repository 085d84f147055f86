# Shared settings and checks of the single-node test cluster; sourced by start.sh, stop.sh, status.sh.
# Usage in a script: source "$(dirname "$0")/common.sh" "${1:-}"
# shellcheck shell=bash

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BASE=${1:-${VRL_SLURM_BASE:-/tmp/vrl-slurm}}
BASE=$(realpath -m "$BASE")
CLUSTER=vrl
ACCOUNT=vrl
HOST=$(hostname -s)
# slurmctld, slurmd and slurmdbd listen on PORT, PORT+1, PORT+2 (Slurm's defaults are 6817-6819).
PORT=${VRL_SLURM_PORT:-6817}
CTLD_PORT=$PORT
SLURMD_PORT=$((PORT + 1))
DBD_PORT=$((PORT + 2))
# Declared CPUs: more than the real cores so that a 4-task array and a 4-task job fit at once.
CPUS=${VRL_SLURM_CPUS:-8}
# munge stays on its default socket: sacctmgr and some clients ignore a custom one.
MUNGE_SOCKET=/run/munge/munge.socket.2
MYSQL_SOCKET=$BASE/mysql/mysqld.sock

export SLURM_CONF=$BASE/etc/slurm.conf

log() { echo "[slurm-local] $*" >&2; }

die() {
    log "ERROR: $*"
    log "logs: $BASE/log/; stop what did start with: $HERE/stop.sh $BASE"
    exit 1
}

# pid_alive PIDFILE: the process named in PIDFILE exists.
pid_alive() {
    [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

munge_ok() { munge -n --socket="$MUNGE_SOCKET" 2>/dev/null | unmunge --socket="$MUNGE_SOCKET" >/dev/null 2>&1; }

mysql_ok() { mariadb-admin --no-defaults --socket="$MYSQL_SOCKET" -uroot ping >/dev/null 2>&1; }

# Slurm clients retry for 60 s when SLURM_CONF does not exist: check it first.
conf_ok() { [[ -f $SLURM_CONF ]]; }

dbd_ok() { conf_ok && pid_alive "$BASE/run/slurmdbd.pid" && sacctmgr -n list cluster >/dev/null 2>&1; }

ctld_ok() { conf_ok && scontrol ping 2>/dev/null | grep -q "is UP"; }

# node_state: the node's state as sinfo prints it (idle, mixed, allocated, down*, drained, ...).
node_state() { sinfo -h -n "$HOST" -o %T 2>/dev/null | head -n1; }

sacct_ok() { sacct -n -X -S now >/dev/null 2>&1; }

# healthy: every daemon answers, the node accepts jobs and sacct works.
healthy() {
    munge_ok && mysql_ok && dbd_ok && ctld_ok || return 1
    pid_alive "$BASE/run/slurmd.pid" || return 1
    case $(node_state) in
        idle | mixed | allocated | completing) ;;
        *) return 1 ;;
    esac
    sacct_ok
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.2 s until it succeeds.
wait_for() {
    local timeout=$1 what=$2
    shift 2
    local deadline=$((SECONDS + timeout))
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
    log "$what: ok"
}

# stop_daemons NAME...: TERM the daemons named by $BASE/run/NAME.pid together, KILL what is left after 15 s.
stop_daemons() {
    local name pidfile pids=()
    for name in "$@"; do
        pidfile=$BASE/run/$name.pid
        if pid_alive "$pidfile"; then
            pids+=("$(cat "$pidfile")")
            log "stopping $name (pid ${pids[-1]})"
            kill "${pids[-1]}" 2>/dev/null || true
        fi
        rm -f "$pidfile"
    done
    ((${#pids[@]})) || return 0
    local pid alive
    for _ in $(seq 75); do
        alive=()
        for pid in "${pids[@]}"; do
            if kill -0 "$pid" 2>/dev/null; then alive+=("$pid"); fi
        done
        ((${#alive[@]})) || return 0
        sleep 0.2
    done
    log "still running after 15 s, SIGKILL: ${alive[*]}"
    kill -9 "${alive[@]}" 2>/dev/null || true
}

# lock_base: hold $BASE/.lock until the script exits, so that concurrent start/stop calls (two test
# sessions on one machine) run one after the other.
lock_base() {
    mkdir -p "$BASE"
    exec 9>"$BASE/.lock"
    flock -w 300 9 || die "another start.sh/stop.sh holds $BASE/.lock for 300 s"
}

# show_logs: the end of every daemon log and of the daemons' own stderr, for failure reports.
show_logs() {
    local f
    for f in "$BASE"/log/*.log "$BASE"/log/*.out; do
        [[ -s $f ]] || continue
        echo "===== $f (last 30 lines) =====" >&2
        tail -n 30 "$f" >&2
    done
}

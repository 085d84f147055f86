#!/usr/bin/env bash
# Start the single-node test cluster (munged, MariaDB, slurmdbd, slurmctld, slurmd) under a private base
# directory, default /tmp/vrl-slurm or $VRL_SLURM_BASE. Idempotent: a healthy cluster is left alone, a
# partly running one gets its missing daemons. Progress goes to stderr; stdout is only the line
#   export SLURM_CONF=<base>/etc/slurm.conf
# so that `eval "$(slurm/local/start.sh)"` prepares the calling shell. Runs as root (no systemd needed).
set -euo pipefail
source "$(dirname "$0")/common.sh" "${1:-}"

[[ $(id -u) -eq 0 ]] || die "run as root (sudo $0): the daemons run as root and munge uses /run/munge"
for bin in munged slurmctld slurmd slurmdbd sacctmgr mariadbd mariadb-install-db; do
    command -v "$bin" >/dev/null || die "$bin not found: run $HERE/install.sh first"
done

# render TEMPLATE OUT: fill @NAME@ placeholders; prints "changed" when OUT's content changed.
render() {
    local mem_mb real_cpus tmp
    mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
    real_cpus=$(nproc)
    tmp=$(mktemp "$2.XXXXXX")
    sed -e "s|@BASE@|$BASE|g" -e "s|@CLUSTER@|$CLUSTER|g" -e "s|@HOST@|$HOST|g" \
        -e "s|@CTLD_PORT@|$CTLD_PORT|g" -e "s|@SLURMD_PORT@|$SLURMD_PORT|g" -e "s|@DBD_PORT@|$DBD_PORT|g" \
        -e "s|@CPUS@|$CPUS|g" -e "s|@REAL_CPUS@|$real_cpus|g" -e "s|@MEM_MB@|$mem_mb|g" "$1" >"$tmp"
    chmod 600 "$tmp"
    if cmp -s "$tmp" "$2"; then
        rm -f "$tmp"
    else
        mv -f "$tmp" "$2"
        echo changed
    fi
}

# spawn LOGNAME COMMAND...: start COMMAND in its own session, detached from the caller's stdio (a caller
# capturing our output, a test, must not wait for the daemons) and without the lock's fd 9 (a daemon
# holding it would block every later start.sh).
spawn() {
    local logname=$1
    shift
    setsid "$@" </dev/null >>"$BASE/log/$logname.out" 2>&1 9>&- &
}

start_munge() {
    if munge_ok; then
        log "munged: already answering on $MUNGE_SOCKET"
        return
    fi
    local key=$BASE/munge/munge.key
    if [[ ! -s $key ]]; then
        log "creating munge key $key"
        dd if=/dev/urandom of="$key" bs=1 count=1024 status=none
        chmod 400 "$key"
    fi
    mkdir -p -m 0755 /run/munge
    rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
    spawn munged munged --key-file="$key" --pid-file="$BASE/run/munged.pid" \
        --log-file="$BASE/log/munged.log" --seed-file="$BASE/munge/munged.seed" --socket="$MUNGE_SOCKET"
    wait_for 10 munged munge_ok || {
        show_logs
        die "munged does not answer"
    }
}

start_mysql() {
    if mysql_ok; then
        log "mariadb: already running"
        return
    fi
    if [[ ! -d $BASE/mysql/data/mysql ]]; then
        log "initialising MariaDB data directory (first start only)"
        mariadb-install-db --no-defaults --datadir="$BASE/mysql/data" --user=root \
            --auth-root-authentication-method=socket --skip-test-db >"$BASE/log/mariadb-install.txt" 2>&1 ||
            {
                cat "$BASE/log/mariadb-install.txt" >&2
                die "mariadb-install-db failed"
            }
    fi
    spawn mariadb mariadbd --no-defaults --datadir="$BASE/mysql/data" --socket="$MYSQL_SOCKET" \
        --pid-file="$BASE/run/mariadb.pid" --log-error="$BASE/log/mariadb.log" --skip-networking \
        --user=root --innodb-buffer-pool-size=256M --innodb-lock-wait-timeout=900 --innodb-log-file-size=64M
    wait_for 30 mariadb mysql_ok || {
        show_logs
        die "MariaDB does not answer on $MYSQL_SOCKET"
    }
}

start_dbd() {
    if dbd_ok; then
        log "slurmdbd: already running"
        return
    fi
    stop_daemons slurmdbd
    MYSQL_UNIX_PORT=$MYSQL_SOCKET spawn slurmdbd slurmdbd
    wait_for 30 slurmdbd dbd_ok || {
        show_logs
        die "slurmdbd does not answer"
    }
    # Register the cluster, an account and the calling users (sacctmgr -i: no prompt). Idempotent.
    sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER" ||
        sacctmgr -i add cluster "$CLUSTER" >&2
    sacctmgr -n -P list account format=account | grep -qx "$ACCOUNT" ||
        sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" Description="vrl tests" Organization=vrl >&2
    local user
    for user in root ${SUDO_USER:-}; do
        sacctmgr -n -P list assoc user="$user" account="$ACCOUNT" format=user | grep -qx "$user" ||
            sacctmgr -i add user "$user" Account="$ACCOUNT" Cluster="$CLUSTER" >&2
    done
}

start_ctld() {
    if ctld_ok; then
        log "slurmctld: already running"
        return
    fi
    stop_daemons slurmctld
    spawn slurmctld slurmctld
    wait_for 30 slurmctld ctld_ok || {
        show_logs
        die "slurmctld does not answer"
    }
}

start_slurmd() {
    if pid_alive "$BASE/run/slurmd.pid"; then
        log "slurmd: already running"
        return
    fi
    spawn slurmd slurmd
    wait_for 10 slurmd pid_alive "$BASE/run/slurmd.pid" || {
        show_logs
        die "slurmd did not start"
    }
}

node_ready() {
    case $(node_state) in
        idle | mixed | allocated | completing) return 0 ;;
        down* | drain* | fail*)
            # A node that was down when slurmctld last saved state stays down: resume it.
            scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true
            return 1
            ;;
        *) return 1 ;;
    esac
}

main() {
    lock_base
    mkdir -p "$BASE"/{etc,state,spool,log,run,munge,mysql}
    chmod 700 "$BASE/munge"
    local changed
    changed=$(render "$HERE/slurm.conf.in" "$SLURM_CONF")$(render "$HERE/slurmdbd.conf.in" "$BASE/etc/slurmdbd.conf")
    if [[ -z $changed ]] && healthy; then
        log "cluster already running and healthy (base $BASE)"
    else
        if [[ -n $changed ]]; then
            # A changed config needs the Slurm daemons restarted; the state directory survives.
            stop_daemons slurmd slurmctld slurmdbd
        fi
        local t0=$SECONDS
        start_munge
        start_mysql
        start_dbd
        start_ctld
        start_slurmd
        wait_for 60 "node $HOST ready" node_ready || {
            sinfo -N -l >&2 || true
            show_logs
            die "node $HOST did not become idle"
        }
        wait_for 30 sacct sacct_ok || {
            show_logs
            die "sacct does not answer"
        }
        log "cluster up in $((SECONDS - t0)) s (base $BASE)"
    fi
    echo "export SLURM_CONF=$SLURM_CONF" >"$BASE/env.sh"
    echo "export SLURM_CONF=$SLURM_CONF"
}

main

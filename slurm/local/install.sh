#!/usr/bin/env bash
# Install the Debian packages of the single-node test cluster: Slurm (controller, node daemon, clients),
# slurmdbd with MariaDB (so that `sacct` works) and munge (authentication).
# Idempotent: when everything is installed it is one dpkg-query call and exits.
set -euo pipefail

PACKAGES=(slurm-wlm slurmdbd munge mariadb-server)

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [[ "$status" == "installed" ]] || missing+=("$pkg")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    SUDO=(sudo -n)
fi
echo "[slurm-local] installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Another process may hold the dpkg lock (other installs on a shared machine): wait for it.
"${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq
# policy-rc.d exit 101 keeps the packages' init scripts from starting system-wide daemons on install:
# start.sh runs private instances instead.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod +x "$policy"
    created_policy=1
fi
trap '[[ $created_policy -eq 1 ]] && "${SUDO[@]}" rm -f "$policy"' EXIT
"${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"

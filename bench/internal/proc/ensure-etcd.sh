#!/usr/bin/env bash
# Installs etcd (Debian's etcd-server package) when it is missing, for the
# benchmark's etcd baseline. The benchmark starts its own private etcd on
# loopback ports with a temporary data dir; this script keeps the package's
# service from starting where it can. Idempotent.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

if have etcd; then
	echo "ensure-etcd: $(etcd --version 2>/dev/null | head -n1)"
	exit 0
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	if have sudo; then
		SUDO=(sudo)
	else
		echo "ensure-etcd: etcd missing and not root (no sudo); install Debian's etcd-server" >&2
		exit 1
	fi
fi
if ! have apt-get; then
	echo "ensure-etcd: etcd missing and apt-get not available; install etcd yourself" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
added_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
	"${SUDO[@]}" chmod 0755 "$policy"
	added_policy=1
fi
cleanup() {
	if [ "$added_policy" -eq 1 ]; then
		"${SUDO[@]}" rm -f "$policy"
	fi
}
trap cleanup EXIT
echo "ensure-etcd: installing etcd-server"
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold etcd-server
have etcd || { echo "ensure-etcd: etcd still missing after install" >&2; exit 1; }
echo "ensure-etcd: $(etcd --version 2>/dev/null | head -n1)"

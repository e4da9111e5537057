#!/usr/bin/env bash
# usage: ensure-debian.sh NAME "COMMAND..." PACKAGE...
# Installs Debian's PACKAGEs when any COMMAND is missing from PATH, keeping
# the packages' services from starting where it can: the tests start their
# own processes and never use a system service. Idempotent: does nothing
# when every COMMAND is already on PATH. NAME prefixes its messages.
set -euo pipefail

if [ "$#" -lt 3 ]; then
	echo 'usage: ensure-debian.sh NAME "COMMAND..." PACKAGE...' >&2
	exit 2
fi
name=$1 commands=$2
shift 2

have() { command -v "$1" >/dev/null 2>&1; }

missing=0
for c in $commands; do have "$c" || missing=1; done
[ "$missing" -eq 0 ] && exit 0

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	if have sudo; then
		SUDO=(sudo)
	else
		echo "$name: $commands missing and not root (no sudo); install Debian's $*" >&2
		exit 1
	fi
fi
if ! have apt-get; then
	echo "$name: $commands missing and apt-get not available; install $* yourself" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# policy-rc.d exiting 101 tells invoke-rc.d not to start services during the
# install. Only add one if none exists, and remove only the one we added.
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

echo "$name: installing $*"
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"

for c in $commands; do
	if ! have "$c"; then
		echo "$name: $c still missing after install" >&2
		exit 1
	fi
done

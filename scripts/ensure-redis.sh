#!/usr/bin/env bash
# Installs redis-server and redis-cli (Debian's redis-server and redis-tools
# packages) when either is missing. The integration tests start their own
# private redis-server processes; they never use a system service, so this
# script keeps the package's service from starting where it can.
# Idempotent: does nothing when both binaries are already on PATH.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

if have redis-server && have redis-cli; then
	echo "ensure-redis: $(redis-server --version | head -n1)"
	exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	if have sudo; then
		SUDO=(sudo)
	else
		echo "ensure-redis: redis-server/redis-cli missing and not root (no sudo); install Debian's redis-server and redis-tools" >&2
		exit 1
	fi
fi
if ! have apt-get; then
	echo "ensure-redis: redis-server/redis-cli missing and apt-get not available; install redis-server yourself" >&2
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

echo "ensure-redis: installing redis-server and redis-tools"
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
	redis-server redis-tools

for b in redis-server redis-cli; do
	if ! have "$b"; then
		echo "ensure-redis: $b still missing after install" >&2
		exit 1
	fi
done
echo "ensure-redis: $(redis-server --version | head -n1)"

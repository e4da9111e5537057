#!/usr/bin/env bash
# Installs redis-server and redis-cli (Debian's redis-server and redis-tools)
# when either is missing. The integration tests start their own private
# redis-server processes on free loopback ports.
set -euo pipefail
bash "$(dirname "$0")/ensure-debian.sh" ensure-redis "redis-server redis-cli" redis-server redis-tools
echo "ensure-redis: $(redis-server --version | head -n1)"

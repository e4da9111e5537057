#!/usr/bin/env bash
# Installs Debian's chromium when it is missing, for the browser test of the
# operations page (e2e/). Idempotent: does nothing when chromium is on PATH.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

if have chromium; then
	echo "ensure-chromium: $(chromium --version 2>/dev/null | head -n1)"
	exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	if have sudo; then
		SUDO=(sudo)
	else
		echo "ensure-chromium: chromium missing and not root (no sudo); install Debian's chromium" >&2
		exit 1
	fi
fi
if ! have apt-get; then
	echo "ensure-chromium: chromium missing and apt-get not available; install chromium yourself" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium
echo "ensure-chromium: $(chromium --version 2>/dev/null | head -n1)"

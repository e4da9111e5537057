#!/usr/bin/env bash
# Installs Debian's chromium when it is missing, for the browser test of the
# operations page (e2e/).
set -euo pipefail
bash "$(dirname "$0")/ensure-debian.sh" ensure-chromium chromium chromium
echo "ensure-chromium: $(chromium --version 2>/dev/null | head -n1)"

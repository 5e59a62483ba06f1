#!/usr/bin/env bash
# ctest's entry for the browser test: installs playwright-core from the
# committed lock file when it is missing (npm ci), then runs the test named
# by its argument (default dashboard.test.mjs).
set -euo pipefail
cd "$(dirname "$0")"
for tool in node npm "${CHROMIUM:-/usr/bin/chromium}"; do
  command -v "$tool" >/dev/null || { echo "browser test needs $tool (make test installs it)" >&2; exit 1; }
done
if [ ! -f node_modules/playwright-core/package.json ]; then
  npm ci --no-audit --no-fund
fi
exec node "${1:-dashboard.test.mjs}"

#!/usr/bin/env bash
# Install onnxruntime-web for the page of step 9 (web/): exactly the version pinned in web/package-lock.json.
#
#   bash .ci/install-web.sh
#
# Idempotent: when web/node_modules already holds the pinned version it only prints it.
# Needs npm (it comes with Node.js); it downloads from the npm registry only.
# --ignore-scripts: onnxruntime-web needs no install script, and none may run here.
set -euo pipefail
cd "$(dirname "$0")/../web"

pinned=$(node -p "require('./package-lock.json').packages['node_modules/onnxruntime-web'].version" 2>/dev/null || true)
installed=$(node -p "require('./node_modules/onnxruntime-web/package.json').version" 2>/dev/null || true)
if [ -n "$pinned" ] && [ "$pinned" = "$installed" ]; then
  echo "onnxruntime-web $installed"
  exit 0
fi

command -v npm >/dev/null || { echo "install-web.sh: npm is missing; install Node.js 18 or later (it brings npm)" >&2; exit 1; }
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
echo "onnxruntime-web $(node -p "require('./node_modules/onnxruntime-web/package.json').version")"

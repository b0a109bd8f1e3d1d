#!/usr/bin/env bash
# Install onnxruntime-web for the page of step 9 (web/): exactly the version pinned in web/package-lock.json.
#
#   bash .ci/install-web.sh
#
# Idempotent: when web/node_modules already holds the pinned version it only prints it.
# npm comes with Node.js; where it is missing, Debian's package is installed (root or sudo).
# --ignore-scripts: onnxruntime-web needs no install script, and none may run here.
set -euo pipefail
cd "$(dirname "$0")/../web"

pinned=$(node -p "require('./package-lock.json').packages['node_modules/onnxruntime-web'].version" 2>/dev/null || true)
installed=$(node -p "require('./node_modules/onnxruntime-web/package.json').version" 2>/dev/null || true)
if [ -n "$pinned" ] && [ "$pinned" = "$installed" ]; then
  echo "onnxruntime-web $installed"
  exit 0
fi

if ! command -v npm >/dev/null; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-web.sh: npm is missing; install Node.js (with npm), or run as root" >&2; exit 1; }
    SUDO=sudo
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
echo "onnxruntime-web $(node -p "require('./node_modules/onnxruntime-web/package.json').version")"

#!/usr/bin/env bash
# Install Debian's Chromium and ChromeDriver for the browser tests (tests/test_recorder_browser.py),
# and strace, which the recorder's load test (tests/test_recorder_load.py) runs the server under
# to see every file it writes.
#
#   bash .ci/install-browser.sh
#
# Idempotent: when all are installed already it only prints their versions.
# The tests drive the system Chromium through Playwright (executable_path), because
# Playwright's own browser download needs a host that CI and the lab VMs cannot reach.
set -euo pipefail

versions() {
  # Debian's chromium wrapper script prints a harmless shell warning on stderr; hide it.
  chromium --version 2>/dev/null
  chromedriver --version 2>/dev/null
  strace -V | head -n 1
}

if command -v chromium >/dev/null && command -v chromedriver >/dev/null && command -v strace >/dev/null; then
  versions
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-browser.sh: run as root, or install sudo" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium chromium-driver strace >/dev/null
versions

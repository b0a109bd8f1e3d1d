#!/usr/bin/env bash
# The ARM64 check's set-up (tests/test_device_arm64.py): qemu-user, an arm64 Debian chroot, and inside it
# the aarch64 onnxruntime and numpy wheels pinned to the versions of this machine's Python, so both sides of
# the comparison run the same onnxruntime. Needs root (or sudo). ~7 min on 2 cores the first time, then seconds.
#   bash .ci/install-arm64.sh            # with the venv active; ARM64_ROOT sets where the chroot lives
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
ORT=$("$PYTHON" -c 'import onnxruntime; print(onnxruntime.__version__)')
NUMPY=$("$PYTHON" -c 'import numpy; print(numpy.__version__)')
AS_ROOT=()
[ "$(id -u)" = 0 ] || AS_ROOT=(sudo --preserve-env=ARM64_ROOT)
echo "arm64 chroot with onnxruntime==$ORT numpy==$NUMPY (as on this machine)"
"${AS_ROOT[@]}" env PKGS="onnxruntime==$ORT numpy==$NUMPY" PYTHON="$(command -v "$PYTHON")" bash .ci/arm64/build.sh

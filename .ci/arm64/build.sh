#!/usr/bin/env bash
# Build an arm64 (aarch64) Debian chroot with onnxruntime + numpy, run under qemu-user (binfmt).
# Usage: sudo bash build.sh [ROOT]     (default ROOT=$ARM64_ROOT or ~/.cache/arm64-chroot)
# Idempotent: each step is skipped when its result is already there.
# .ci/install-arm64.sh calls it with PKGS pinned to the venv's versions. The wheels are installed by the
# HOST's pip (PYTHON, default python3), asking PyPI for aarch64 wheels: pip under emulation took ~12 min.
set -euo pipefail
ROOT=${1:-${ARM64_ROOT:-$HOME/.cache/arm64-chroot}}
SUITE=$(. /etc/os-release && echo "$VERSION_CODENAME")   # same suite as the host
SOURCES=/etc/apt/sources.list.d/debian.sources            # same mirror(s) as the host's apt
PKGS=${PKGS:-"onnxruntime numpy"}   # e.g. PKGS="onnxruntime==1.32.0 numpy" to match the host
PYTHON=${PYTHON:-python3}
t() { echo "[$(date +%T)] $*"; }

# 1. host tools
if ! command -v qemu-aarch64-static >/dev/null || ! command -v mmdebstrap >/dev/null; then
  t "apt: qemu-user-static binfmt-support mmdebstrap arch-test"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    qemu-user-static binfmt-support mmdebstrap arch-test
fi

# 2. binfmt_misc registration for aarch64 only (no systemd here, so do it by hand)
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64
arch-test arm64

# 3. arm64 rootfs with python3 only (both debootstrap stages; the second runs under qemu via binfmt)
if [ ! -x "$ROOT/usr/bin/python3" ]; then
  t "mmdebstrap $SUITE arm64 -> $ROOT"
  mmdebstrap --mode=root --variant=minbase --architectures=arm64 --include=python3 \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
    "$SUITE" "$ROOT" "$SOURCES"
fi

# 4. the aarch64 wheels, installed by the host's pip into the chroot's /usr/local (on Debian's sys.path)
PYVER=$(cd "$ROOT/usr/lib" && ls -d python3.* | grep -E '^python3\.[0-9]+$' | sort -V | tail -1 | sed 's/^python//')
SITE="$ROOT/usr/local/lib/python$PYVER/dist-packages"
mkdir -p "$ROOT/opt/ortvenv/bin"
ln -sf /usr/bin/python3 "$ROOT/opt/ortvenv/bin/python"   # the name run.sh calls
WANT=$(printf '%s\n' $PKGS | grep '==' | sort | tr '\n' ' ' || true)
HAVE_CHECK="import importlib.metadata as m, sys; want=sys.argv[1].split(); sys.exit(any(m.version(w.split('==')[0]) != w.split('==')[1] for w in want))"
if ! ARM64_ROOT="$ROOT" bash "$(dirname "$0")/run.sh" -- -c "import onnxruntime, numpy; $HAVE_CHECK" "$WANT" 2>/dev/null; then
  t "host pip: $PKGS for aarch64 cp${PYVER/./} -> $SITE"
  rm -rf "$SITE.new"
  "$PYTHON" -m pip install -q --no-compile --no-warn-script-location --only-binary=:all: --target "$SITE.new" \
    --implementation cp --python-version "$PYVER" --abi "cp${PYVER/./}" --abi abi3 --abi none \
    --platform manylinux_2_28_aarch64 --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64 \
    --platform linux_aarch64 --platform any $PKGS
  rm -rf "$SITE" && mv "$SITE.new" "$SITE"
fi
t "done"; du -sh "$ROOT"

#!/usr/bin/env bash
# Build an arm64 (aarch64) Debian chroot with onnxruntime + numpy, run under qemu-user (binfmt).
# (From the lab's shared tools; .ci/install-arm64.sh calls it with the versions pinned to the venv's.)
# Usage: sudo bash build.sh [ROOT]     (default ROOT=$ARM64_ROOT or ~/.cache/arm64-chroot)
# Idempotent: each step is skipped when its result is already there.
set -euo pipefail
ROOT=${1:-${ARM64_ROOT:-$HOME/.cache/arm64-chroot}}
SUITE=$(. /etc/os-release && echo "$VERSION_CODENAME")   # same suite as the host
SOURCES=/etc/apt/sources.list.d/debian.sources            # same mirror(s) as the host's apt
PKGS=${PKGS:-"onnxruntime numpy"}   # e.g. PKGS="onnxruntime==1.32.0 numpy" to match the host
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

# 3. arm64 rootfs (both debootstrap stages; second stage runs under qemu via binfmt)
if [ ! -x "$ROOT/usr/bin/python3" ]; then
  t "mmdebstrap $SUITE arm64 -> $ROOT"
  mmdebstrap --mode=root --variant=minbase --architectures=arm64 \
    --include=python3,python3-venv,python3-pip,ca-certificates \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
    "$SUITE" "$ROOT" "$SOURCES"
fi

# 4. the host's extra CA certificates and DNS, so pip inside reaches the same index
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
  mkdir -p "$ROOT/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
  chroot "$ROOT" update-ca-certificates >/dev/null
fi
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"

# 5. the host's pip configuration (files; env vars are passed in step 6; index dirs bind-mounted ro)
for f in /etc/pip.conf /etc/xdg/pip/pip.conf /etc/xdg/pip/constraints.txt /root/.config/pip/pip.conf; do
  [ -f "$f" ] && install -D -m 0644 "$f" "$ROOT$f"
done
LOCAL_DIRS=""
# local folders that the host's pip configuration names (file:// indexes, find-links) are bound in read-only
for d in $(pip config list 2>/dev/null | grep -oE "(file://)?/[^' ]+" | sed 's|^file://||; s|/simple/*$||' | sort -u); do
  [ -d "$d" ] && mkdir -p "$ROOT$d" && LOCAL_DIRS="$LOCAL_DIRS $d"
done

# 6. venv + pip install inside the chroot, in a private mount namespace (mounts vanish on exit)
# Pinned versions (name==X) must be the ones installed: a chroot from an older run is brought up to date.
WANT=$(printf '%s\n' $PKGS | grep '==' | sort | tr '\n' ' ' || true)
HAVE_CHECK="import importlib.metadata as m, sys; want=sys.argv[1].split(); sys.exit(any(m.version(w.split('==')[0]) != w.split('==')[1] for w in want))"
if [ ! -x "$ROOT/opt/ortvenv/bin/python" ] || ! ARM64_ROOT="$ROOT" "$(dirname "$0")/run.sh" -- -c "$HAVE_CHECK" "$WANT" 2>/dev/null; then
  t "venv + pip install $PKGS (inside arm64 chroot)"
  unshare --mount --propagation private env ROOT="$ROOT" LOCAL_DIRS="$LOCAL_DIRS" PKGS="$PKGS" sh -ec '
    mount -t proc proc "$ROOT/proc"
    mount --rbind /sys "$ROOT/sys"
    mount --rbind /dev "$ROOT/dev"
    for d in $LOCAL_DIRS; do mount --bind -o ro "$d" "$ROOT$d"; done
    chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 \
      PIP_DEFAULT_TIMEOUT="${PIP_DEFAULT_TIMEOUT:-180}" PIP_DISABLE_PIP_VERSION_CHECK=1 \
      PIP_CERT=/etc/ssl/certs/ca-certificates.crt ${PIP_FIND_LINKS:+PIP_FIND_LINKS=$PIP_FIND_LINKS} \
      sh -ec "[ -x /opt/ortvenv/bin/python ] || python3 -m venv /opt/ortvenv
              /opt/ortvenv/bin/pip install --no-compile --only-binary=:all: $PKGS"
  '
fi
t "done"; du -sh "$ROOT"

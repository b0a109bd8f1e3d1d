#!/usr/bin/env bash
# Install a font with CJK punctuation for the Netron pictures and tests (whisper_lab/explore/).
#
#   bash .ci/install-fonts.sh
#
# Netron writes tensor shapes between the angle brackets U+3008/U+3009 (〈1×80×3000〉).
# Debian's default fonts (DejaVu, Liberation) lack them, so headless Chromium draws
# empty boxes instead; WenQuanYi Micro Hei (fonts-wqy-microhei, about 5 MB) has them.
# Idempotent: when such a font is installed already it only says so.
set -euo pipefail

if [ -z "$(fc-list ':charset=3008' 2>/dev/null)" ]; then
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)  # without root, sudo must be there (the error says so if not)
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null
fi
fc-list ':charset=3008' family | sort -u

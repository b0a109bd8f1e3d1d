#!/usr/bin/env bash
# Install the lab's Python packages into the active Python environment.
#
#   bash install.sh          # what the lab scripts need
#   bash install.sh --test   # plus what the tests need: Debian's Chromium, a CJK font, onnxruntime-web for web/
#
# PyTorch first: on Linux, PyPI's torch wheel is the CUDA build (about 6 GB with its
# NVIDIA libraries). The lab runs on CPU-only VMs, so we ask PyTorch's CPU index for
# the ~1 GB CPU build; where that index is out of reach, pip takes torch from the
# usual index instead.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python}
command -v "$PYTHON" >/dev/null || PYTHON=python3

req=requirements.txt
[ "${1:-}" = "--test" ] && req=requirements-test.txt

if ! "$PYTHON" -c "import torch" 2>/dev/null; then
  "$PYTHON" -m pip install --retries 0 --timeout 20 "torch>=2.6,<2.14" \
      --index-url https://download.pytorch.org/whl/cpu \
    || echo "install.sh: PyTorch's CPU index is out of reach; taking torch from the default index" >&2
fi
"$PYTHON" -m pip install -r "$req"

if [ "$req" = requirements-test.txt ]; then
  # The recorder's end-to-end test and the Netron tests drive a real Chromium (Debian packages, needs root or sudo).
  bash .ci/install-browser.sh \
    || echo "install.sh: could not install chromium; the browser tests will fail until it is installed" >&2
  # Netron draws tensor shapes between CJK angle brackets; Debian's default fonts lack them.
  bash .ci/install-fonts.sh \
    || echo "install.sh: could not install fonts-wqy-microhei; Netron's pictures will show boxes for 〈 〉" >&2
  # Step 9's page runs the one-file model with onnxruntime-web, from npm (pinned by web/package-lock.json).
  bash .ci/install-web.sh \
    || echo "install.sh: could not install onnxruntime-web; step 9's browser test will fail until it is" >&2
fi

"""Where the lab keeps what it builds once and reuses: converted weights, test speech, certificates.

$WHISPER_LAB_CACHE if set, else $XDG_CACHE_HOME/whisper-onnx-lab, else
~/.cache/whisper-onnx-lab. Every part of the lab may write here, so the location
lives below all of them.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """Where converted checkpoints live: $WHISPER_LAB_CACHE, else ~/.cache/whisper-onnx-lab."""
    if os.environ.get("WHISPER_LAB_CACHE"):
        return Path(os.environ["WHISPER_LAB_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "whisper-onnx-lab"

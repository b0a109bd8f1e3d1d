"""Shared test helpers: paths, the Python that runs the lab, and real speech to test with."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
JFK = REPO / "samples" / "jfk.wav"  # 11 s of public-domain speech, 16 kHz mono 16-bit
JFK_TEXT = ("And so my fellow Americans, ask not what your country can do for you, "
            "ask what you can do for your country.")
PYTHON = sys.executable  # the scripts run under the same interpreter (and venv) as the tests

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@pytest.fixture(scope="session")
def jfk_int16() -> np.ndarray:
    samples, sample_rate = sf.read(JFK, dtype="int16")
    assert sample_rate == 16_000 and samples.ndim == 1
    return samples

"""Hostile uploads to the save path: long audio in a small file, a header that hides the length, odd headers.

Each save runs in a fresh Python process that reports how far its peak memory
rose above where it stood before the save: the kernel's high-water mark (VmHWM),
reset just before the save (Linux: "5" into /proc/self/clear_refs), so a decoder
that briefly holds gigabytes cannot hide between two samples.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import soundfile as sf
from conftest import PYTHON, REPO
from recorder_hostile_audio import hide_flac_length, jfk_file, long_flac, many_channels_wav

from whisper_lab.recorder.recording import MAX_SECONDS, SAVE_MEMORY_MB

SAVE_IN_FRESH_PROCESS = """
import json, sys
import numpy, soundfile, soxr  # imported before the baseline: their code is not the save's memory
from whisper_lab.errors import LabError
from whisper_lab.recorder.recording import save_recording

def status_kb(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))

with open("/proc/self/clear_refs", "w") as clear:
    clear.write("5")  # the high-water mark starts again from the memory in use now
before = status_kb("VmRSS")
try:
    outcome = "saved: " + save_recording(sys.argv[1], sys.argv[2]).status()
except LabError as exc:
    outcome = f"refused: {exc}"
print(json.dumps({"outcome": outcome, "grown_mb": (status_kb("VmHWM") - before) / 1024}))
"""


def save_in_fresh_process(upload: Path, target: Path) -> tuple[str, float]:
    """Save `upload` as the page would; returns (what happened, peak memory growth in MB)."""
    result = subprocess.run([PYTHON, "-c", SAVE_IN_FRESH_PROCESS, str(upload), str(target)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"\n{upload.name} ({upload.stat().st_size / 1e6:.1f} MB): {report['outcome']}  "
          f"[peak memory +{report['grown_mb']:.0f} MB]")
    return report["outcome"], report["grown_mb"]


@pytest.fixture(scope="module")
def half_hour_flac(tmp_path_factory) -> Path:
    # 30 min of 48 kHz stereo: a few MB as FLAC, 690 MB as the float samples a decoder makes.
    return long_flac(tmp_path_factory.mktemp("hostile") / "half-hour.flac", minutes=30)


def test_a_long_recording_in_a_small_file_is_refused_from_its_header(half_hour_flac, tmp_path):
    target = tmp_path / "speech.wav"
    outcome, grown_mb = save_in_fresh_process(half_hour_flac, target)
    assert outcome.startswith("refused: the recording is 1800 s long, over the limit of 300 s"), outcome
    # Refused from the header: the samples were never decoded.
    assert grown_mb < 16, f"refusing {half_hour_flac.name} took {grown_mb:.0f} MB"
    assert not target.exists()


def test_a_header_that_hides_the_length_is_cut_off_at_the_limit(half_hour_flac, tmp_path):
    hidden = hide_flac_length(half_hour_flac, tmp_path / "no-length.flac")
    assert sf.info(hidden).frames > 10**15, "libsndfile should report an unknown length"
    target = tmp_path / "speech.wav"
    outcome, grown_mb = save_in_fresh_process(hidden, target)
    assert outcome.startswith(f"refused: the recording is over the limit of {MAX_SECONDS} s"), outcome
    assert grown_mb < SAVE_MEMORY_MB, f"decoding {hidden.name} up to the limit took {grown_mb:.0f} MB"
    assert not target.exists()


def test_the_longest_recording_allowed_is_saved_in_bounded_memory(tmp_path):
    # Just under the limit, at a browser's 48 kHz stereo: 115 MB of float samples if decoded at once.
    upload = jfk_file(tmp_path / "long-take.wav", rate=48_000, channels=2, seconds=MAX_SECONDS - 1)
    target = tmp_path / "speech.wav"
    outcome, grown_mb = save_in_fresh_process(upload, target)
    assert outcome.startswith(f"saved: Saved speech.wav: {MAX_SECONDS - 1}.0 s"), outcome
    assert "the browser sent 48000 Hz stereo" in outcome
    assert grown_mb < SAVE_MEMORY_MB, f"saving {MAX_SECONDS - 1} s took {grown_mb:.0f} MB"
    info = sf.info(target)
    assert (info.samplerate, info.channels, info.frames) == (16_000, 1, (MAX_SECONDS - 1) * 16_000)


@pytest.mark.parametrize("case, message", [
    ("64 channels", "the recording has 64 channels; the recorder takes mono or stereo (up to 8 channels)"),
    ("1 MHz sample rate", "the recording's sample rate is 1000000 Hz; the recorder takes 8000 to 192000 Hz"),
    ("2 kHz sample rate", "the recording's sample rate is 2000 Hz; the recorder takes 8000 to 192000 Hz"),
])
def test_headers_no_browser_sends_are_refused_before_decoding(case, message, tmp_path):
    upload = {
        "64 channels": lambda: many_channels_wav(tmp_path / "many.wav", channels=64),
        "1 MHz sample rate": lambda: jfk_file(tmp_path / "fast.wav", rate=1_000_000, channels=1, seconds=2),
        "2 kHz sample rate": lambda: jfk_file(tmp_path / "slow.wav", rate=2_000, channels=1),
    }[case]()
    target = tmp_path / "speech.wav"
    outcome, _ = save_in_fresh_process(upload, target)
    assert outcome == f"refused: {message}; upload a recording from a microphone or a common audio file", outcome
    assert not target.exists()

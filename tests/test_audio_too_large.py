"""Audio too large for memory: refused from its header in one line, or read a block at a time.

A WAV header may declare 2 billion frames (35 hours at 16 kHz) on a sparse 4 GB
file that costs nothing on disk; read at once that is an 8 GiB float array. The
scripts run here under an address-space limit (RLIMIT_AS) far below that, so an
allocation of the whole file would fail with numpy's MemoryError traceback.
"""

from __future__ import annotations

import resource
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO, assert_one_line_error

from whisper_lab.audio.loading import MAX_AUDIO_HOURS, SAMPLE_RATE, load_audio, read_mono_16k
from whisper_lab.audio.log_mel import ContentLogMel, content_log_mel, log_mel_spectrogram
from whisper_lab.audio.speech_data import JFK
from whisper_lab.errors import LabError

ADDRESS_SPACE = 6 * 2**30  # the VM of the report: 6 GB; the scripts themselves need 2-3 GB of address space


def sparse_wav(path, frames: int = 2_000_000_000, rate: int = SAMPLE_RATE) -> None:
    """A 16-bit mono PCM header declaring `frames`, and a file that long, sparse (no disk blocks)."""
    data = frames * 2
    header = b"RIFF" + struct.pack("<I", min(36 + data, 2**32 - 1)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    header += b"data" + struct.pack("<I", min(data, 2**32 - 1))
    with open(path, "wb") as file:
        file.write(header)
        file.truncate(len(header) + data)


def run_limited(*args: str):
    """A script run under the address-space limit, as `python <script> args`."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600, preexec_fn=limit)  # fmt: skip


@pytest.mark.parametrize("script, flag", [("02-whisper-huggingface.py", "--audio"),
                                          ("03-export-encoder-decoder.py", "--transcribe"),
                                          ("05-export-end-to-end.py", "--transcribe")])  # fmt: skip
def test_a_header_of_35_hours_is_refused_before_allocating(tmp_path, script, flag):
    path = tmp_path / "lecture.wav"
    sparse_wav(path)
    # --output-dir: nothing may be exported or built into the repository for this
    extra = [] if script.startswith("02") else ["--output-dir", str(tmp_path / "models")]
    result = run_limited(script, flag, str(path), *extra)
    line = assert_one_line_error(result, "lecture.wav", "34.7 hours", f"limit of {MAX_AUDIO_HOURS} hours")
    assert "MemoryError" not in result.stderr, line
    assert not (tmp_path / "models").exists()


def test_the_limit_is_in_the_help():
    for script in ("02-whisper-huggingface.py", "03-export-encoder-decoder.py"):
        result = subprocess.run([sys.executable, script, "--help"], cwd=REPO, capture_output=True, text=True)
        assert f"up to {MAX_AUDIO_HOURS} hours" in " ".join(result.stdout.split())


def test_a_header_without_frames_cannot_read_past_the_limit(tmp_path):
    """FLAC may leave the length out of its header: the count of frames read decides, block by block."""
    path = tmp_path / "long.wav"
    sf.write(path, np.tile(load_audio(JFK.path), 4), SAMPLE_RATE, subtype="PCM_16")
    with pytest.raises(LabError, match="over the limit"):
        read_mono_16k(path, max_seconds=30)
    assert len(read_mono_16k(path, max_seconds=60)) == 4 * 176_000


@pytest.mark.parametrize("rate, channels", [(44_100, 2), (48_000, 1), (8_000, 6), (16_000, 2)])
def test_block_reading_gives_the_numbers_of_reading_at_once(tmp_path, rate, channels):
    import soxr

    rng = np.random.default_rng(rate + channels)
    samples = (0.3 * rng.standard_normal((rate * 9 + 17, channels))).astype(np.float32)  # several blocks
    path = tmp_path / "noise.wav"
    sf.write(path, samples, rate, subtype="FLOAT")
    mono = samples.mean(axis=1)
    at_once = soxr.resample(mono, rate, SAMPLE_RATE) if rate != SAMPLE_RATE else mono
    np.testing.assert_array_equal(read_mono_16k(path), at_once)


def test_content_log_mel_by_blocks_is_the_log_mel_at_once():
    """Three blocks of 60 s, edges included (the reflection at the start, the zeros after the end)."""
    audio = np.tile(load_audio(JFK.path), 17)[:2_900_123]  # 181 s
    for clip in (audio, audio[:161], audio[:1000]):
        at_once = log_mel_spectrogram(np.pad(clip, (0, 400)), pad_to=None)[:, : len(clip) // 160]
        np.testing.assert_allclose(content_log_mel(clip), at_once, rtol=0, atol=1e-6)


def test_window_by_window_log_mel_is_the_whole_log_mel():
    """03 computes each window's log-mel when it reaches it, on the whole recording's loudness scale."""
    audio = np.tile(load_audio(JFK.path), 14)[:2_400_017]  # 150 s
    whole, lazy = content_log_mel(audio), ContentLogMel(audio)
    assert lazy.shape == whole.shape
    for first, last in [(0, 3000), (2999, 5999), (12000, 15000), (14000, 17000), (15000, 15000)]:
        np.testing.assert_allclose(lazy[:, first:last], whole[:, first:last], rtol=0, atol=1e-6)


def test_a_file_name_that_is_not_utf8(tmp_path):
    """A name from another system's encoding (bytes 0xff 0xfe) opens like any other."""
    import os

    name = os.fsencode(str(tmp_path)) + b"/\xff\xfe.wav"
    with open(name, "wb") as file:
        file.write(Path(JFK.path).read_bytes())
    assert len(load_audio(os.fsdecode(name))) == 176_000


def test_loading_never_redirects_stderr(tmp_path):
    """Not audio is refused without pointing the process's stderr elsewhere, even for a moment:
    another thread's messages (Gradio's, in the recorder) must all come through."""
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(np.random.default_rng(0).bytes(200_000))
    notes = tmp_path / "notes.mp3"
    notes.write_text("lecture notes, not audio\n" * 50)
    program = textwrap.dedent(f"""
        import os, sys, threading, time
        sys.path.insert(0, {str(REPO)!r})
        from whisper_lab.audio.loading import load_audio
        from whisper_lab.errors import LabError
        done, written = threading.Event(), []
        def ticker():
            while not done.is_set():
                os.write(2, b"tick\\n")
                written.append(1)
                time.sleep(0.0002)
        thread = threading.Thread(target=ticker)
        thread.start()
        for _ in range(100):
            for path in ({str(junk)!r}, {str(notes)!r}):
                try:
                    load_audio(path)
                except LabError:
                    pass
        done.set()
        thread.join()
        print(len(written))
    """)
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines.count("tick") == int(result.stdout), set(lines) - {"tick"}
    assert set(lines) <= {"tick"}  # and no decoder noise ("Note: Illegal Audio-MPEG-Header")

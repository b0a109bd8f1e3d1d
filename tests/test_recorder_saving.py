"""The recorder's save path, fed real speech in every shape a browser sends, and every refusal."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from conftest import PYTHON, REPO
from recorder_hostile_audio import jfk_file, truncated

from whisper_lab.audio import log_mel
from whisper_lab.audio.speech_data import JFK
from whisper_lab.errors import LabError
from whisper_lab.recorder.mel_figure import N_FRAMES, N_MELS, encoder_input, plot_encoder_input
from whisper_lab.recorder.recording import KEEP_COPIES, MAX_SECONDS, save_recording

JFK_WAV = JFK.path  # 11 s of speech, 16 kHz mono int16
JFK_SECONDS = 11.0


def as_float(int16: np.ndarray) -> np.ndarray:
    return int16.astype(np.float32) / 32768


def at_rate(int16: np.ndarray, rate: int) -> np.ndarray:
    """JFK resampled to a browser's rate, as float32 in [-1, 1]."""
    return soxr.resample(as_float(int16), 16_000, rate).astype(np.float32)


def stereo(left: np.ndarray) -> np.ndarray:
    # Right at half the level of left: a correct mix-down averages to 0.75 x left,
    # while keeping only one channel would give 1.0 or 0.5.
    return np.stack([left, 0.5 * left], axis=1)


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, -1, 32767 / 32768) * 32768).astype(np.int16)


def write_file(path: Path, samples: np.ndarray, rate: int, subtype: str) -> Path:
    sf.write(path, samples, rate, subtype=subtype)
    return path


def shapes(tmp: Path, jfk: np.ndarray) -> dict[str, tuple[object, float]]:
    """name -> (what the browser hands over, expected level relative to the original)."""
    s44, s48 = at_rate(jfk, 44_100), at_rate(jfk, 48_000)
    return {
        "tuple 44.1 kHz stereo int16": ((44_100, to_int16(stereo(s44))), 0.75),
        "tuple 48 kHz stereo int16": ((48_000, to_int16(stereo(s48))), 0.75),
        "tuple 48 kHz mono float32": ((48_000, s48), 1.0),
        "tuple 44.1 kHz stereo float32": ((44_100, stereo(s44)), 0.75),
        "file 48 kHz stereo float": (str(write_file(tmp / "f48.wav", stereo(s48), 48_000, "FLOAT")), 0.75),
        "file 44.1 kHz stereo int16": (str(write_file(tmp / "i44.wav", stereo(s44), 44_100, "PCM_16")), 0.75),
        "file 16 kHz mono int16 (already right)": (str(JFK_WAV), 1.0),
    }


@pytest.mark.parametrize("name", [
    "tuple 44.1 kHz stereo int16",
    "tuple 48 kHz stereo int16",
    "tuple 48 kHz mono float32",
    "tuple 44.1 kHz stereo float32",
    "file 48 kHz stereo float",
    "file 44.1 kHz stereo int16",
    "file 16 kHz mono int16 (already right)",
])
def test_every_browser_shape_becomes_16k_mono_pcm16_with_the_same_speech(name, tmp_path, jfk_int16):
    value, level = shapes(tmp_path, jfk_int16)[name]
    target = tmp_path / "out" / "speech.wav"

    saved = save_recording(value, target)

    info = sf.info(target)
    assert (info.samplerate, info.channels, info.format, info.subtype) == (16_000, 1, "WAV", "PCM_16")
    assert info.frames == pytest.approx(JFK_SECONDS * 16_000, abs=2)
    written, _ = sf.read(target, dtype="float32")
    original = as_float(jfk_int16)
    n = min(len(written), len(original))
    # The same speech, in time: resampling there and back leaves the waveform almost unchanged.
    correlation = np.corrcoef(written[:n], original[:n])[0, 1]
    assert correlation > 0.995, f"{name}: correlation with the original only {correlation:.4f}"
    # Channels are averaged, not picked: the level says which.
    ratio = np.sqrt(np.mean(written[:n] ** 2) / np.mean(original[:n] ** 2))
    assert ratio == pytest.approx(level, rel=0.02)
    # The status line reports what was written and what came in.
    assert saved.seconds == pytest.approx(JFK_SECONDS, abs=0.01)
    assert saved.peak_dbfs == pytest.approx(20 * np.log10(np.abs(written).max()), abs=0.05)
    status = saved.status()
    assert status.startswith("Saved speech.wav: 11.0 s, 16000 Hz mono 16-bit PCM")
    expected_source = f"{value[0] if isinstance(value, tuple) else sf.info(value).samplerate} Hz"
    assert expected_source in status
    assert ("stereo" in status) == (level == 0.75)
    assert list(target.parent.iterdir()) == [target], "a temporary file was left behind"


def refusal_cases(jfk: np.ndarray, tmp: Path) -> dict[str, tuple[object, str]]:
    not_audio = tmp / "notes.wav"
    not_audio.write_text("these are lecture notes, not audio")
    junk_mp3 = tmp / "junk.mp3"
    junk_mp3.write_bytes(np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    header_only = write_file(tmp / "header-only.wav", np.zeros((0, 2), np.int16), 48_000, "PCM_16")
    cut_off = truncated(jfk_file(tmp / "whole.flac", rate=48_000, channels=2), tmp / "cut-off.flac")
    over_limit = np.tile(as_float(jfk), int(MAX_SECONDS // JFK_SECONDS) + 1)  # 308 s of real speech
    return {
        "nothing recorded": (None, "no recording yet"),
        "zero samples": ((48_000, np.zeros((0, 2), np.int16)), "is empty"),
        "a file with a header and no samples": (str(header_only), "is empty"),
        "a few milliseconds": ((48_000, to_int16(at_rate(jfk, 48_000)[:2000])), "is empty"),
        "digital silence, stereo int16": ((48_000, np.zeros((3 * 48_000, 2), np.int16)), "is silent"),
        "a muted microphone (-60 dBFS)": ((44_100, at_rate(jfk, 44_100) * 10 ** (-60 / 20) / 0.8), "is silent"),
        f"over {MAX_SECONDS} s": ((16_000, over_limit), f"over the limit of {MAX_SECONDS} s"),
        "not an audio file": (str(not_audio), "notes.wav: cannot read it as audio"),
        "random bytes named .mp3": (str(junk_mp3), "junk.mp3: cannot read it as audio"),
        "a FLAC file cut off half-way": (str(cut_off), r"cut-off.flac: the audio is damaged after \d"),
        "a file that is gone": (str(tmp / "deleted.wav"), "no such file"),
    }


@pytest.mark.parametrize("case", [
    "nothing recorded", "zero samples", "a few milliseconds", "digital silence, stereo int16",
    "a muted microphone (-60 dBFS)", f"over {MAX_SECONDS} s", "not an audio file", "a file that is gone",
    "random bytes named .mp3", "a FLAC file cut off half-way", "a file with a header and no samples",
])
def test_refusals_say_why_and_leave_the_previous_file_alone(case, tmp_path, jfk_int16):
    value, message = refusal_cases(jfk_int16, tmp_path)[case]
    out = tmp_path / "out"
    out.mkdir()
    target = out / "speech.wav"
    target.write_bytes(JFK_WAV.read_bytes())  # an earlier good recording

    with pytest.raises(LabError, match=message):
        save_recording(value, target)

    assert target.read_bytes() == JFK_WAV.read_bytes()
    assert list(out.iterdir()) == [target], "a refusal left a file behind"


def test_a_recording_just_under_the_limit_is_saved(tmp_path, jfk_int16):
    seconds = MAX_SECONDS - 1
    speech = np.resize(as_float(jfk_int16), seconds * 16_000)
    saved = save_recording((16_000, speech), tmp_path / "long.wav")
    assert sf.info(saved.path).duration == pytest.approx(seconds)


def test_the_private_copies_stay_bounded_over_a_class(tmp_path, jfk_int16):
    copies = tmp_path / "saved"
    copies.mkdir()
    saves = [save_recording((16_000, jfk_int16[: 16_000 * (1 + i % 3)]), tmp_path / "speech.wav", copy_folder=copies)
             for i in range(KEEP_COPIES + 7)]  # fmt: skip
    left = sorted(copies.iterdir())
    assert len(left) == KEEP_COPIES
    assert all(s.copy.exists() for s in saves[-KEEP_COPIES:])  # the newest pages can still download theirs
    assert not any(s.copy.exists() for s in saves[:7])
    assert (tmp_path / "speech.wav").read_bytes() == saves[-1].copy.read_bytes()


def test_clipping_and_quiet_speech_are_pointed_out(tmp_path, jfk_int16):
    loud = to_int16(np.clip(as_float(jfk_int16) * 4, -1, 1))
    assert "clipped" in save_recording((16_000, loud), tmp_path / "a.wav").status()
    quiet = to_int16(as_float(jfk_int16) / 40)
    assert "quiet" in save_recording((16_000, quiet), tmp_path / "b.wav").status()
    normal = save_recording(str(JFK_WAV), tmp_path / "c.wav").status()
    assert "clipped" not in normal and "quiet" not in normal


def test_the_first_save_needs_no_jit_compiler(tmp_path):
    # The first resample is the one a student waits for. librosa's can take seconds
    # (it warms up numba's JIT compiler); soxr is compiled ahead of time.
    code = f"""
import sys, numpy as np, soundfile as sf
from whisper_lab.recorder.recording import save_recording
x, sr = sf.read({str(JFK_WAV)!r}, dtype="float32")
stereo48 = np.stack([np.interp(np.arange(len(x) * 3) / 3, np.arange(len(x)), x)] * 2, axis=1)
save_recording((48000, stereo48), {str(tmp_path / "first.wav")!r})
print(sorted(m for m in ("librosa", "numba", "torch", "resampy") if m in sys.modules))
"""
    loaded = subprocess.run([PYTHON, "-c", code], cwd=REPO, check=True, capture_output=True, text=True).stdout
    assert loaded.strip() == "[]"
    assert sf.info(tmp_path / "first.wav").samplerate == 16_000


def test_encoder_input_figure_is_80_by_3000_with_the_padding_visible(jfk_int16):
    features = encoder_input(as_float(jfk_int16))
    assert features.shape == (N_MELS, N_FRAMES) == (80, 3000)
    speech, padding = features[:, :1090], features[:, 1110:]  # 11 s = frame 1100
    # The figure is what 03's ONNX encoder is fed: the log-mel of the speech, then zeros.
    assert np.array_equal(features, log_mel.encoder_input(as_float(jfk_int16)))
    assert np.ptp(padding) == 0 and padding[0, 0] == 0.0
    assert speech.std() > 0.2 and speech.max() > padding.max() + 1.0

    image = plot_encoder_input(features, speech_seconds=JFK_SECONDS)
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    assert image.shape[1] >= 800 and image.std() > 20

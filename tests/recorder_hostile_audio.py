"""Audio files a careless or hostile user could upload to the recorder, built from real speech.

The dangerous ones are small on disk and huge once decoded: FLAC stores long
stretches of near-silence in a few bytes per block, so an hour of 48 kHz stereo
fits in a few MB and decodes to gigabytes of float samples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from whisper_lab.audio.speech_data import JFK


def jfk_int16() -> np.ndarray:
    samples, rate = sf.read(JFK.path, dtype="int16")
    assert rate == 16_000 and samples.ndim == 1
    return samples


def long_flac(path: Path, minutes: int, rate: int = 48_000, channels: int = 2) -> Path:
    """`minutes` of near-silence with a faint click every second: tiny as FLAC, huge decoded."""
    minute = np.zeros((rate * 60, channels), np.int16)
    minute[::rate] = 100  # not digital silence all the way through, so no decoder can shortcut it
    # Written a minute at a time: building the file must not take the memory it is meant to test.
    with sf.SoundFile(path, "w", rate, channels, subtype="PCM_16", format="FLAC", compression_level=0) as out:
        for _ in range(minutes):
            out.write(minute)
    return path


def hide_flac_length(source: Path, target: Path) -> Path:
    """A copy of a FLAC file whose header says "length unknown" (total samples = 0).

    The FLAC format allows this (a live stream's encoder cannot know the length),
    so the header cannot be the only guard: whoever decodes must stop by itself.
    """
    data = bytearray(source.read_bytes())
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0, "STREAMINFO must be the first metadata block"
    # STREAMINFO starts at byte 8; its 36-bit sample count is the low 4 bits of byte 21 and bytes 22-25.
    data[21] &= 0xF0
    data[22:26] = bytes(4)
    target.write_bytes(data)
    return target


def many_channels_wav(path: Path, channels: int = 64) -> Path:
    """One second of JFK copied onto `channels` channels: a header a browser never sends."""
    speech = jfk_int16()[:16_000]
    sf.write(path, np.repeat(speech[:, None], channels, axis=1), 16_000, subtype="PCM_16")
    return path


def jfk_file(path: Path, rate: int, channels: int, seconds: float | None = None,
             subtype: str = "PCM_16") -> Path:
    """JFK's sentence (or its first `seconds`, or repeated up to them) at a browser's rate and channel count."""
    import soxr

    speech = jfk_int16().astype(np.float32) / 32768
    if seconds is not None:
        speech = np.resize(speech, int(seconds * 16_000))
    speech = soxr.resample(speech, 16_000, rate).astype(np.float32)
    if channels > 1:
        speech = np.repeat(speech[:, None], channels, axis=1)
    sf.write(path, speech, rate, subtype=subtype)
    return path


def truncated(source: Path, target: Path, keep: float = 0.5) -> Path:
    """The first part of a file, as an interrupted upload or a broken download leaves it."""
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return target

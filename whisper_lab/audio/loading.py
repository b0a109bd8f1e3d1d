"""Audio in the shape Whisper was trained on: 16 kHz, mono, float32 in [-1, 1].

Whisper's feature extractor assumes 16 000 samples per second: fed 48 kHz audio
unchanged, it would hear speech three times too slow. Browsers record at 44.1 or
48 kHz, often in stereo, so every file goes through `load_audio`:

1. read with soundfile (libsndfile: wav, flac, ogg, mp3, ...), as float32;
2. average the channels to mono;
3. resample to 16 kHz with soxr (fast and high quality, also behind librosa);
4. refuse what would only make Whisper hallucinate: no samples, silence, or
   NaN / infinite values (a damaged float WAV).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from pathlib import Path

import numpy as np

from ..errors import LabError
from .log_mel import CHUNK_SECONDS, SAMPLE_RATE  # Whisper's window: 30 s at 16 kHz

READABLE_FORMATS = "wav, flac, ogg, mp3"
# Quieter than this everywhere (peak below -50 dBFS) is silence, or a muted microphone:
# even soft speech peaks above -30 dBFS on a working microphone.
SILENCE_DBFS = -50.0
MIN_SECONDS = 0.1


def to_mono_16k(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mix to mono and resample to 16 kHz; integer PCM is scaled to [-1, 1]."""
    import soxr

    samples = np.asarray(samples)
    if np.issubdtype(samples.dtype, np.integer):
        samples = samples.astype(np.float32) / float(np.iinfo(samples.dtype).max + 1)
    samples = samples.astype(np.float32, copy=False)
    if samples.ndim == 2:  # (frames, channels)
        samples = samples.mean(axis=1)
    if sample_rate != SAMPLE_RATE:
        samples = soxr.resample(samples, sample_rate, SAMPLE_RATE)
    return np.ascontiguousarray(samples, dtype=np.float32)


def _check_path(path: Path) -> None:
    """A file we can open, or a one-line reason: missing, a folder, a dangling or looping symbolic link."""
    try:
        path.stat()  # follows symbolic links, and says why it cannot
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LabError(f"{path}: a loop of symbolic links (it leads back to itself, never to a file); "
                           "point it at an audio file") from exc  # fmt: skip
        if path.is_symlink():
            raise LabError(f"{path}: a symbolic link to {os.readlink(path)}, which does not exist") from exc
        if exc.errno == errno.ENOENT:
            raise LabError(f"{path}: no such file") from exc
        raise LabError(f"{path}: cannot open it ({exc.strerror})") from exc
    if not path.is_file():
        raise LabError(f"{path}: not a file")


@contextlib.contextmanager
def _native_stderr_silenced():
    """Hide what C libraries print on stderr meanwhile (mpg123's "Note: Illegal Audio-MPEG-Header"
    lines for a file that is not audio): we say what went wrong ourselves, in one line."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def read_audio_file(path: str | Path) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 (frames, channels) with its sample rate; one-line errors."""
    import soundfile as sf

    path = Path(path)
    _check_path(path)
    try:
        with _native_stderr_silenced():
            samples, sample_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        # libsndfile's own message for a file it cannot parse is "File does not exist or is
        # not a regular file", which misleads: the file is there, it is just not audio
        raise LabError(f"{path}: cannot read it as audio: not audio in a format we read ({READABLE_FORMATS}), "
                       "or a damaged file") from exc  # fmt: skip
    check_finite(samples, str(path))
    return samples, sample_rate


def check_finite(samples: np.ndarray, what: str = "the audio") -> None:
    """Refuse NaN or infinite samples: a broken file or a bug upstream, not sound.

    Whisper's log-mel of such audio is garbage (one +inf sample makes every other
    frame the floor of an 80 dB range), and the decoder loops on it for minutes.
    """
    bad = int(np.count_nonzero(~np.isfinite(samples)))
    if bad:
        raise LabError(f"{what} holds {bad} NaN or infinite sample{'s' if bad > 1 else ''}: the file is damaged "
                       "(or was written by a program with a bug); export or record it again")  # fmt: skip


def check_speech_like(samples: np.ndarray, what: str = "the audio") -> None:
    """Refuse empty, broken (NaN, infinite) or all-silent audio, which Whisper would 'transcribe' into invented text."""
    check_finite(samples, what)
    if samples.size < MIN_SECONDS * SAMPLE_RATE:
        raise LabError(f"{what} is empty (shorter than {MIN_SECONDS} s); record or choose a file with speech")
    level = peak_dbfs(samples)
    if level < SILENCE_DBFS:
        raise LabError(f"{what} is silent (peak {level:.0f} dBFS); check the microphone and record again")


def long_audio_note(audio: np.ndarray) -> str | None:
    """A heads-up for audio longer than Whisper's 30 s window, which is read window by window."""
    seconds = len(audio) / SAMPLE_RATE
    if seconds <= CHUNK_SECONDS:
        return None
    return (f"{seconds:.0f} s of audio: Whisper reads it in {CHUNK_SECONDS} s windows, "
            f"about {int(seconds // CHUNK_SECONDS) + 1} of them ...")


def load_audio(path: str | Path) -> np.ndarray:
    """Load any readable audio file as 16 kHz mono float32, refusing empty or silent audio."""
    samples, sample_rate = read_audio_file(path)
    audio = to_mono_16k(samples, sample_rate)
    check_speech_like(audio, what=str(path))
    return audio


def peak_dbfs(samples: np.ndarray) -> float:
    """Loudest sample in dB relative to full scale: 0 dBFS is the largest value a file can hold."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    return 20 * np.log10(peak) if peak > 0 else float("-inf")


def check_max_duration(seconds: float, max_seconds: float, what: str = "the audio") -> None:
    """Refuse audio longer than `max_seconds`, before spending time and memory on it."""
    if seconds > max_seconds:
        raise LabError(f"{what} is {seconds:.0f} s long, over the limit of {max_seconds:.0f} s; "
                       "record a shorter clip")


def write_wav_16k(samples: np.ndarray, target: str | Path) -> None:
    """Write 16 kHz mono float samples as a 16-bit PCM WAV, atomically (temp file + rename).

    16-bit PCM is what Whisper's own recordings were stored as and what every tool
    reads. Values beyond [-1, 1] (a resampler can overshoot a little on loud audio)
    are clipped rather than left to wrap around into loud clicks.
    """
    import soundfile as sf

    from ..files import atomic_file

    samples = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    with atomic_file(target) as tmp:
        # The temporary name ends in .tmp, so say the format instead of letting soundfile guess.
        sf.write(str(tmp), samples, SAMPLE_RATE, format="WAV", subtype="PCM_16")

"""Audio in the shape Whisper was trained on: 16 kHz, mono, float32 in [-1, 1].

Whisper's feature extractor assumes 16 000 samples per second: fed 48 kHz audio
unchanged, it would hear speech three times too slow. Browsers record at 44.1 or
48 kHz, often in stereo, so every file goes through `load_audio`:

1. look at the header first: refuse a file that is not audio, has no channels
   or a rate no recording has, or is longer than MAX_AUDIO_HOURS, before
   decoding anything (a 4 GB WAV whose header says 37 hours is one line, not an
   8 GiB allocation);
2. read with soundfile (libsndfile: wav, flac, ogg, mp3, ...) a block at a time,
   as float32, averaging the channels to mono;
3. resample each block to 16 kHz with soxr's streaming resampler (the same
   numbers as resampling the whole file at once), into one array sized from
   the header: memory is the 16 kHz result (230 MB an hour) and one block;
4. refuse what would only make Whisper hallucinate: no samples, silence, or
   NaN / infinite values (a damaged float WAV).
"""

from __future__ import annotations

import errno
import math
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
# The longest file the scripts read. An hour of 16 kHz float32 is 230 MB, and 03 keeps its
# log-mel beside it (115 MB); 3 hours holds any lecture and fits the lab's VM many times over.
MAX_AUDIO_HOURS = 3
MAX_AUDIO_SECONDS = MAX_AUDIO_HOURS * 3600
LENGTH_LIMIT_HELP = (f"Audio files of up to {MAX_AUDIO_HOURS} hours are read (a block at a time, "
                     f"{MAX_AUDIO_HOURS * 3600 * SAMPLE_RATE * 4 / 1e9:.1f} GB at most as 16 kHz samples); "
                     "longer ones are refused from their header, before any decoding: cut them into parts.")
BLOCK_FRAMES = 1 << 16  # 1.4 s at 48 kHz; 2 MB per block even at 8 channels of float32
# What recordings have: 1 to a few channels (64 is more than any studio file), 1 kHz to 768 kHz.
MAX_CHANNELS, MIN_RATE, MAX_RATE = 64, 1_000, 768_000
UNKNOWN_FRAMES = sys.maxsize  # libsndfile's frame count when the header does not know the length
# The first bytes of the formats libsndfile reads. Anything else is refused without asking it:
# for a file it does not recognize it tries mpg123 last, which prints "Note: Illegal
# Audio-MPEG-Header" lines on the process's stderr, and stderr is shared with every thread.
_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"BW64", b"FORM", b"fLaC", b"OggS", b"ID3", b".snd", b"caff", b"riff")


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


def _not_audio(path: Path) -> LabError:
    # libsndfile's own message for a file it cannot parse is "File does not exist or is
    # not a regular file", which misleads: the file is there, it is just not audio
    return LabError(f"{path}: cannot read it as audio: not audio in a format we read ({READABLE_FORMATS}), "
                    "or a damaged file")  # fmt: skip


def _looks_like_audio(head: bytes) -> bool:
    """The file starts as a format libsndfile reads: a container's tag, or an MPEG audio frame."""
    mpeg_frame = len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0
    return head.startswith(_MAGIC) or mpeg_frame


def _open_audio(path: Path):
    """A soundfile.SoundFile on `path`, or a one-line reason why it cannot be one."""
    import soundfile as sf

    _check_path(path)
    try:
        with open(path, "rb") as file:
            head = file.read(12)
    except OSError as exc:
        raise LabError(f"{path}: cannot open it ({exc.strerror})") from exc
    if not _looks_like_audio(head):
        raise _not_audio(path)
    try:
        # bytes: a name that is not valid UTF-8 (made on another system) opens as it is on disk
        return sf.SoundFile(os.fsencode(path))
    except (sf.LibsndfileError, RuntimeError, ValueError, OverflowError) as exc:
        raise _not_audio(path) from exc


def _check_header(path: Path, channels: int, rate: int, frames: int, max_seconds: float) -> None:
    """Refuse from the header alone, before any decoding: no channels, an impossible rate, too long."""
    if not 1 <= channels <= MAX_CHANNELS:
        raise LabError(f"{path}: its header says {channels} channels; audio has 1 to {MAX_CHANNELS} "
                       "(the file is damaged, or not a recording)")  # fmt: skip
    if not MIN_RATE <= rate <= MAX_RATE:
        raise LabError(f"{path}: its header says {rate} samples per second; recordings have "
                       f"{MIN_RATE} to {MAX_RATE} (the file is damaged, or not a recording)")  # fmt: skip
    if frames != UNKNOWN_FRAMES and frames / rate > max_seconds:
        raise _too_long(path, f"{frames / rate / 3600:.1f} hours long by its header", max_seconds)


def _too_long(path: Path, how_long: str, max_seconds: float) -> LabError:
    return LabError(f"{path} is {how_long}, over the limit of {max_seconds / 3600:g} hours; "
                    "cut it into shorter parts (e.g. ffmpeg -i IN -f segment -segment_time 3600 part%d.wav)")


def read_mono_16k(path: str | Path, max_seconds: float = MAX_AUDIO_SECONDS) -> np.ndarray:
    """Any readable audio file as 16 kHz mono float32, a block at a time (see the module's steps 1-3).

    Memory: the result (allocated once, from the header's length) and one block,
    whatever the file's rate, channels or format.
    """
    import soundfile as sf
    import soxr

    path = Path(path)
    with _open_audio(path) as audio_file:
        rate, channels, frames = audio_file.samplerate, audio_file.channels, audio_file.frames
        _check_header(path, channels, rate, frames, max_seconds)
        max_frames = math.floor(max_seconds * rate)
        expected = frames if frames != UNKNOWN_FRAMES else max_frames
        resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32") if rate != SAMPLE_RATE else None
        result = np.empty(math.ceil(expected * SAMPLE_RATE / rate) + BLOCK_FRAMES, dtype=np.float32)
        block = np.empty((BLOCK_FRAMES, channels), dtype=np.float32)
        read = written = 0
        while True:
            try:
                got = audio_file.read(BLOCK_FRAMES, dtype="float32", always_2d=True, out=block)
            except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
                raise LabError(f"{path}: the audio is damaged after {read / rate:.1f} s; "
                               "export or record it again") from exc  # fmt: skip
            read += len(got)
            if read > max_frames:  # the header did not know the length, or lied about it
                raise _too_long(path, "longer than its header said", max_seconds)
            check_finite(got, str(path))
            mono = got[:, 0] if channels == 1 else got.mean(axis=1)
            last = len(got) == 0
            mono16k = resampler.resample_chunk(mono, last=last) if resampler else mono
            if written + len(mono16k) > len(result):  # more than the header said: grow once, to the limit
                result = np.concatenate([result[:written], np.empty(math.ceil(max_seconds * SAMPLE_RATE)
                                                                    + BLOCK_FRAMES - written, np.float32)])
            result[written : written + len(mono16k)] = mono16k
            written += len(mono16k)
            if last:
                break
    # A view: the pages of `result` past `written` were never touched, so they cost no memory.
    return result[:written]


def check_finite(samples: np.ndarray, what: str = "the audio") -> None:
    """Refuse NaN or infinite samples: a broken file or a bug upstream, not sound.

    Whisper's log-mel of such audio is garbage (one +inf sample makes every other
    frame the floor of an 80 dB range), and the decoder loops on it for minutes.
    """
    if samples.size == 0 or np.isfinite(samples.max()) and np.isfinite(samples.min()):
        return  # NaN and infinities show in the extremes: no temporary array the size of the audio
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


def load_audio(path: str | Path, max_seconds: float = MAX_AUDIO_SECONDS) -> np.ndarray:
    """Load any readable audio file as 16 kHz mono float32 in bounded memory, refusing empty or silent
    audio and files over `max_seconds` (MAX_AUDIO_HOURS)."""
    audio = read_mono_16k(path, max_seconds)
    check_speech_like(audio, what=str(path))
    return audio


def peak_dbfs(samples: np.ndarray) -> float:
    """Loudest sample in dB relative to full scale: 0 dBFS is the largest value a file can hold."""
    # the extremes, not np.abs(samples): that would be a copy as large as the recording
    peak = max(abs(float(samples.max())), abs(float(samples.min()))) if samples.size else 0.0
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

"""An uploaded audio file, read in bounded memory: the header is checked first, then the samples block by block.

A file's size says little about what it decodes to. FLAC (or Ogg, or MP3) stores
near-silence in a few bytes, so a 2 MB upload can hold hours of 48 kHz stereo:
gigabytes once decoded to float samples at once. Anyone who can reach the page
can send such a file, so reading an upload is:

1. open it and read only its header: refuse a channel count or a sample rate
   no microphone produces, and a length over the limit, before any decoding;
2. decode a block at a time (64 Ki frames), mixing each block to mono and
   resampling it to 16 kHz as it comes (soxr's streaming resampler), counting
   frames as we go. A header may say "length unknown" (FLAC and Ogg allow it
   for live streams) or simply lie, so the count, not the header, decides
   where to stop: one frame past the limit and the upload is refused;
3. keep only the 16 kHz mono result, at most MAX_SECONDS of it.

Memory is then the block (a few MB at most), the resampler's state, and the
16 kHz result (19 MB for 5 minutes), whatever was uploaded.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio.loading import READABLE_FORMATS, SAMPLE_RATE, check_max_duration
from ..errors import LabError

BLOCK_FRAMES = 1 << 16  # 1.4 s at 48 kHz; 2 MB per block even at 8 channels of float32
# What microphones and audio files from them have: mono or stereo, maybe a surround
# mix, at 8 kHz (telephone) up to 192 kHz (studio). Anything else is not a recording.
MAX_CHANNELS = 8
MIN_RATE, MAX_RATE = 8_000, 192_000
# libsndfile's answer when the header does not know the length (its largest frame count).
UNKNOWN_FRAMES = sys.maxsize
NOT_A_RECORDING = "upload a recording from a microphone or a common audio file"


@dataclass(frozen=True)
class ReceivedAudio:
    """What the browser sent, already at 16 kHz mono, and what it was before."""

    audio: np.ndarray  # 16 kHz mono float32
    source_rate: int
    source_channels: int
    clipped_fraction: float  # share of samples at full scale, measured before resampling smooths them


def _open(path: Path):
    import soundfile as sf

    if not path.exists():
        raise LabError(f"{path.name}: no such file")
    if not path.is_file():
        raise LabError(f"{path.name}: not a file")
    try:
        return sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        # Not libsndfile's reason: for junk named .mp3 it says "File does not exist", which misleads.
        raise LabError(f"{path.name}: cannot read it as audio ({READABLE_FORMATS}); {NOT_A_RECORDING}") from exc


def check_header(channels: int, sample_rate: int, frames: int, max_seconds: float, what: str) -> None:
    """Refuse from the header alone: a shape no microphone records, or a length over the limit."""
    if not 1 <= channels <= MAX_CHANNELS:
        raise LabError(f"{what} has {channels} channels; the recorder takes mono or stereo "
                       f"(up to {MAX_CHANNELS} channels); {NOT_A_RECORDING}")
    if not MIN_RATE <= sample_rate <= MAX_RATE:
        raise LabError(f"{what}'s sample rate is {sample_rate} Hz; the recorder takes "
                       f"{MIN_RATE} to {MAX_RATE} Hz; {NOT_A_RECORDING}")
    if frames != UNKNOWN_FRAMES:
        check_max_duration(frames / sample_rate, max_seconds, what=what)


def over_the_limit(max_seconds: float, what: str) -> LabError:
    return LabError(f"{what} is over the limit of {max_seconds:.0f} s; record a shorter clip")


def decode_upload(path: str | Path, max_seconds: float, full_scale: float,
                  what: str = "the recording") -> ReceivedAudio:
    """Decode an audio file to 16 kHz mono float32, refusing it as early as its header allows."""
    import soundfile as sf
    import soxr

    path = Path(path)
    with _open(path) as upload:
        rate, channels = upload.samplerate, upload.channels
        check_header(channels, rate, upload.frames, max_seconds, what)

        max_frames = math.floor(max_seconds * rate)
        resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32") if rate != SAMPLE_RATE else None
        # Room for the longest result allowed. np.empty only reserves address space:
        # the kernel provides the pages as they are written, so a short clip costs little.
        result = np.empty(math.ceil(max_seconds * SAMPLE_RATE) + BLOCK_FRAMES, dtype=np.float32)
        block = np.empty((BLOCK_FRAMES, channels), dtype=np.float32)
        frames = written = clipped = 0
        while True:
            try:
                got = upload.read(BLOCK_FRAMES, dtype="float32", always_2d=True, out=block)
            except (sf.LibsndfileError, RuntimeError) as exc:
                # A cut-off or corrupted upload: libsndfile gives up in the middle of the file.
                raise LabError(f"{path.name}: the audio is damaged after {frames / rate:.1f} s; "
                               "upload the file again, or record instead") from exc
            frames += len(got)
            if frames > max_frames:
                raise over_the_limit(max_seconds, what)
            last = len(got) == 0
            clipped += int(np.count_nonzero(np.abs(got) >= full_scale))
            mono = got.mean(axis=1)  # average the channels, as a speaker would mix them
            mono16k = resampler.resample_chunk(mono, last=last) if resampler else mono
            result[written:written + len(mono16k)] = mono16k
            written += len(mono16k)
            if last:
                break
    # A view, not a copy: the pages of `result` past `written` were never touched, so they cost nothing.
    return ReceivedAudio(audio=result[:written], source_rate=rate, source_channels=channels,
                         clipped_fraction=clipped / max(frames * channels, 1))

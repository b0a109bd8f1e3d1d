"""Script 01's save path: whatever the browser sent becomes the speech.wav that Whisper wants.

A browser hands us audio in its own shape: usually 44.1 or 48 kHz, sometimes
stereo, as 16-bit integers or as floats, either as a (sample_rate, array) pair
or as a file it uploaded. Whisper wants 16 kHz mono (see audio.py), so saving is:

1. take the audio as it came, and refuse nothing-at-all or over-long recordings;
   a file is judged by its header first and decoded block by block, so no
   upload can make the save hold more than a few copies of 5 minutes of
   16 kHz audio (upload_reading.py);
2. mix to mono and resample to 16 kHz (soxr: fast from the very first call);
3. refuse empty or silent audio, which Whisper would "transcribe" into invented text;
4. write a 16-bit PCM WAV atomically, so script 02 never reads a half-written file.
   On the page, each save first writes a copy of its own in the recorder's
   private folder and then copies that onto speech.wav: two students saving at
   the same moment leave one complete recording or the other, and each page's
   download and figure show its own recording, whoever saved last.

Every refusal is a LabError whose message the page shows as it is; nothing is
written then, and an earlier speech.wav stays as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..audio.loading import (
    SAMPLE_RATE,
    check_max_duration,
    check_speech_like,
    peak_dbfs,
    to_mono_16k,
    write_wav_16k,
)
from ..errors import LabError
from ..files import atomic_file
from .upload_reading import ReceivedAudio, decode_upload

# Five minutes is far more than a lab exercise needs, and keeps a forgotten
# recording from filling the VM's memory or disk.
MAX_SECONDS = 5 * 60
# Each save's own copy stays downloadable from its page; a class saving all afternoon would
# otherwise fill the disk (at most 9.6 MB per 5-minute save), so only the newest copies stay.
KEEP_COPIES = 20
# The most memory one save may take above what the server already holds, whatever
# was uploaded: 5 min at 16 kHz mono float32 is 19 MB, and the save path holds at
# most three arrays that size at once (the samples, a temporary for the level
# checks, the clipped copy being written), plus one decoding block.
SAVE_MEMORY_MB = 64
# A sample at (or within 0.1 % of) full scale may have been cut off: the wave wanted to go
# higher than the file can hold. A few such samples are inaudible and harmless (browsers'
# automatic gain control produces them); one in a thousand means audible distortion.
FULL_SCALE = 0.999
CLIPPED_FRACTION = 1e-3
# Speech that peaks below this is hard for Whisper; it still works, but say so.
QUIET_DBFS = -30.0

NO_RECORDING = ("no recording yet: click Record, speak, click Stop "
                "(or upload an audio file), then Save Recording")
EMPTY_RECORDING = "the recording is empty: record again and speak before clicking Stop"


def _clipped_fraction(samples: np.ndarray) -> float:
    if samples.size == 0:
        return 0.0
    full = float(np.iinfo(samples.dtype).max) if np.issubdtype(samples.dtype, np.integer) else 1.0
    return float(np.mean(np.abs(samples.astype(np.float64)) >= FULL_SCALE * full))


def _received_array(sample_rate: object, samples: object, max_seconds: float) -> ReceivedAudio:
    """A (sample_rate, array) pair: already in memory, so only its length needs a limit."""
    samples = np.asarray(samples)
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise LabError(f"the recording has an invalid sample rate: {sample_rate!r}")
    if samples.ndim not in (1, 2) or not (np.issubdtype(samples.dtype, np.integer)
                                          or np.issubdtype(samples.dtype, np.floating)):
        raise LabError(f"the recording is not audio samples (array of {samples.dtype}, "
                       f"shape {samples.shape})")
    if samples.shape[0] == 0:
        raise LabError(EMPTY_RECORDING)
    check_max_duration(samples.shape[0] / sample_rate, max_seconds, what="the recording")
    return ReceivedAudio(audio=to_mono_16k(samples, int(sample_rate)), source_rate=int(sample_rate),
                         source_channels=1 if samples.ndim == 1 else samples.shape[1],
                         clipped_fraction=_clipped_fraction(samples))


def receive(value: object, max_seconds: float = MAX_SECONDS) -> ReceivedAudio:
    """Accept what gr.Audio passes: None, a (sample_rate, array) tuple, or a file path."""
    if value is None:
        raise LabError(NO_RECORDING)
    if isinstance(value, (str, Path)):
        received = decode_upload(value, max_seconds, full_scale=FULL_SCALE)
        if received.audio.size == 0:
            raise LabError(EMPTY_RECORDING)
        return received
    if isinstance(value, tuple) and len(value) == 2:
        return _received_array(*value, max_seconds)
    raise LabError(f"the recording came in a form this app does not know: {type(value).__name__}")


def _channel_name(channels: int) -> str:
    return {1: "mono", 2: "stereo"}.get(channels, f"{channels} channels")


@dataclass(frozen=True)
class SavedRecording:
    path: Path  # where it was saved (--output)
    copy: Path  # this save's own copy, which no later save replaces (the path itself without a copy folder)
    seconds: float
    peak_dbfs: float
    clipped_fraction: float
    source_rate: int
    source_channels: int

    def status(self) -> str:
        """One line for the page: what was written, what came in, and how loud it is."""
        line = (f"Saved {self.path.name}: {self.seconds:.1f} s, {SAMPLE_RATE} Hz mono 16-bit PCM "
                f"(the browser sent {self.source_rate} Hz {_channel_name(self.source_channels)}), "
                f"peak {self.peak_dbfs:.1f} dBFS")
        if self.clipped_fraction > CLIPPED_FRACTION:
            line += (f" - clipped ({100 * self.clipped_fraction:.1f} % of samples at full scale): "
                     "move back from the microphone or lower its gain")
        elif self.peak_dbfs < QUIET_DBFS:
            line += " - quiet: speak closer to the microphone"
        return line + "."


def check_output_path(output: str | Path) -> Path:
    """Find out at start, not at the first Save, whether we may write a WAV file there."""
    given, output = output, Path(output).expanduser().resolve()
    if output.suffix.lower() != ".wav":
        raise LabError(f"--output {given}: the recorder writes WAV files; give a name ending in .wav")
    if output.is_dir():
        raise LabError(f"--output {given} is a folder; give a file name such as speech.wav")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LabError(f"--output {given}: cannot create its folder ({exc.strerror})") from exc
    if not os.access(output.parent, os.W_OK):
        raise LabError(f"--output {given}: the folder {output.parent} is not writable")
    return output


@contextlib.contextmanager
def _explain_write_errors(target: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise LabError(f"cannot write {target}: {exc.strerror or exc}; check the folder exists "
                       "and is writable, or choose another --output") from exc


def _drop_old_copies(copy_folder: Path, keep: Path) -> None:
    """Remove all but the KEEP_COPIES newest saves' sub-folders (never `keep`, this save's)."""
    def age(folder: Path) -> float:
        try:
            return folder.stat().st_mtime
        except FileNotFoundError:  # another save removed it just now
            return 0.0

    folders = sorted((f for f in copy_folder.iterdir() if f.is_dir() and f != keep), key=age, reverse=True)
    for old in folders[KEEP_COPIES - 1:]:
        shutil.rmtree(old, ignore_errors=True)


def save_recording(value: object, target: str | Path, max_seconds: float = MAX_SECONDS,
                   copy_folder: Path | None = None) -> SavedRecording:
    """Convert the browser's audio to 16 kHz mono 16-bit PCM and write it to `target`.

    With `copy_folder`, the file is written there first (in a new sub-folder: one per
    save) and then copied onto `target`.
    """
    received = receive(value, max_seconds)
    audio = received.audio
    check_speech_like(audio, what="the recording")

    target = Path(target)
    with _explain_write_errors(target if copy_folder is None else copy_folder):
        copy = target if copy_folder is None else Path(tempfile.mkdtemp(dir=copy_folder)) / target.name
        write_wav_16k(audio, copy)
    if copy != target:
        # Atomically, like write_wav_16k: a reader sees the old file or the new one, never a mix.
        with _explain_write_errors(target), atomic_file(target) as tmp:
            shutil.copyfile(copy, tmp)
        _drop_old_copies(copy_folder, keep=copy.parent)
    return SavedRecording(
        path=target,
        copy=copy,
        seconds=len(audio) / SAMPLE_RATE,
        peak_dbfs=min(peak_dbfs(audio), 0.0),  # what the file holds: at most full scale
        clipped_fraction=received.clipped_fraction,
        source_rate=received.source_rate,
        source_channels=received.source_channels,
    )

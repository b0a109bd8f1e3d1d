"""Peak memory of `03 --transcribe --precision int8` on recordings of different lengths, side by side.

    python benchmarks/long_audio_memory.py                       # 10 and 60 minutes
    python benchmarks/long_audio_memory.py --minutes 10 60 120 --output-dir whisper_model_dir

The recordings are real speech (samples/jfk.wav and the LibriVox readings of
Debian's pocketsphinx-testdata) laid end to end with half a second of silence
between clips, written as 16 kHz 16-bit WAV. Each run is its own process; its peak
resident memory is the kernel's count for that child (wait4's ru_maxrss). The audio
itself is 230 MB an hour as float32, its log-mel 115 MB: the rest should not grow.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from whisper_lab.audio.loading import SAMPLE_RATE, load_audio, write_wav_16k  # noqa: E402
from whisper_lab.audio.speech_data import english_test_set  # noqa: E402


def speech_clips() -> list[np.ndarray]:
    clips = [load_audio(u.path) for u in english_test_set(11)]  # JFK, 5 LibriVox sentences, 5 "cards"
    gap = np.zeros(SAMPLE_RATE // 2, dtype=np.float32)
    return [np.concatenate([c, gap]) for c in clips]


def recording(minutes: int, folder: Path, clips: list[np.ndarray]) -> Path:
    n = minutes * 60 * SAMPLE_RATE
    audio = np.empty(n, dtype=np.float32)
    at, i = 0, 0
    while at < n:
        clip = clips[i % len(clips)][: n - at]
        audio[at : at + len(clip)] = clip
        at, i = at + len(clip), i + 1
    path = folder / f"speech_{minutes}min.wav"
    write_wav_16k(audio, path)
    return path


def peak_rss(args: list[str]) -> tuple[int, float, int, str]:
    """(peak RSS in bytes, seconds, exit code, last stderr line) of one run."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, cwd=REPO)
        _, status, usage = os.wait4(process.pid, 0)
        err.seek(0)
        last = (err.read().decode(errors="replace").strip().splitlines() or [""])[-1]
    return usage.ru_maxrss * 1024, time.perf_counter() - start, os.waitstatus_to_exitcode(status), last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, nargs="+", default=[10, 60])
    parser.add_argument("--output-dir", type=Path, default=REPO / "whisper_model_dir")
    args = parser.parse_args()
    flags = sorted({f for f in ("avx2", "avx512_vnni", "amx_int8") if f in Path("/proc/cpuinfo").read_text()})
    print(f"CPU flags: {' '.join(flags)}; 03 --transcribe --precision int8, one process per recording")
    clips = speech_clips()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            path = recording(minutes, Path(tmp), clips)
            command = [sys.executable, "03-export-encoder-decoder.py", "--precision", "int8",
                       "--output-dir", str(args.output_dir), "--transcribe", str(path)]  # fmt: skip
            rss, seconds, code, last = peak_rss(command)
            rows.append((minutes, rss, seconds, code))
            print(f"{minutes:4d} min  peak RSS {rss / 2**20:7.0f} MiB  {seconds:6.0f} s  exit {code}  "
                  f"({last[:80]})", flush=True)  # fmt: skip
    base = rows[0]
    for minutes, rss, seconds, _ in rows[1:]:
        print(f"{minutes} min / {base[0]} min: peak RSS x{rss / base[1]:.2f}, time x{seconds / base[2]:.2f}")


if __name__ == "__main__":
    main()

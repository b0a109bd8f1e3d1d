"""Peak memory and load time of the device program, small-board options against onnxruntime's defaults.

Each measurement is a fresh process running whisper_device.py (runner.py) on
the clip, as the board would: memory a process once took rarely goes back to
the system, so two configurations in one process would add up. The figure is
the program's own VmHWM (peak resident set: the RAM actually used, Python and
the libraries included), after loading and after transcribing. The two
configurations take turns, so a busy machine slows both alike.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

from ..errors import LabError
from ..tables import markdown_table

CLIP_SECONDS = 30.0
CONFIGS = {"small-board": [], "default": ["--default-options"]}


def thirty_second_clip(target: Path) -> Path:
    """A full 30 s window of real speech: the sample speech, then LibriVox sentences, cut at 30 s."""
    from ..audio.loading import SAMPLE_RATE, load_audio, write_wav_16k
    from ..audio.speech_data import JFK, librivox_utterances

    import numpy as np

    gap = np.zeros(SAMPLE_RATE // 2, dtype=np.float32)
    pieces = [load_audio(JFK.path), gap]
    for utterance in librivox_utterances():
        pieces += [load_audio(utterance.path), gap]
    audio = np.concatenate(pieces)
    if len(audio) < CLIP_SECONDS * SAMPLE_RATE:
        raise LabError(f"the speech clips add up to {len(audio) / SAMPLE_RATE:.0f} s only, fewer than 30")
    write_wav_16k(audio[: int(CLIP_SECONDS * SAMPLE_RATE)], target)
    return target


def run_runner(runner: Path, model: Path, wav: Path, extra: list[str], threads: int | None = None) -> dict:
    """One fresh process of the device program; its JSON line (tokens, text, load time, peaks)."""
    args = [sys.executable, str(runner), str(model), str(wav), "--json", *extra]
    if threads:
        args += ["--threads", str(threads)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=1800)
    if done.returncode:
        raise LabError(f"{runner.name} failed on {model.name}: {done.stderr.strip()[-300:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def side_by_side(runner: Path, models: list[Path], wav: Path, rounds: int = 3, threads: int | None = None) -> dict:
    """(model name, config) -> the runs' results, configurations alternating who goes first."""
    results: dict[tuple[str, str], list[dict]] = {}
    for round_index in range(rounds):
        for model in models:
            order = list(CONFIGS) if round_index % 2 == 0 else list(reversed(CONFIGS))
            for config in order:
                print(f"round {round_index + 1}/{rounds}: {model.name}, {config} options ...", file=sys.stderr, flush=True)
                results.setdefault((model.name, config), []).append(
                    run_runner(runner, model, wav, CONFIGS[config], threads))
    return results


def table(results: dict) -> str:
    rows = []
    for (name, config), runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in ("loaded_mb", "peak_mb", "load_seconds", "run_seconds")}
        base = {k: statistics.median(r[k] for r in results[(name, "default")]) for k in med}
        same = "yes" if all(r["tokens"] == results[(name, "default")][0]["tokens"] for r in runs) else "NO"
        rows.append((name, config, f"{med['loaded_mb']:.0f}", f"{med['peak_mb']:.0f}",
                     f"{med['peak_mb'] / base['peak_mb']:.2f}", f"{med['load_seconds']:.2f}",
                     f"{med['load_seconds'] / base['load_seconds']:.2f}",
                     f"{med['run_seconds'] / base['run_seconds']:.2f}", same))  # fmt: skip
    first = next(iter(results.values()))[0]
    header = ("model", "options", "MB after load", "peak MB", "peak vs default", "load s", "load vs default",
              "transcribe time vs default", "same tokens")  # fmt: skip
    return (markdown_table(header, rows, align="llrrrrrrl") +
            f"\n\nmedian of {len(next(iter(results.values())))} runs each, each a fresh process; peak = VmHWM "
            f"(Python + onnxruntime + model); onnxruntime {first['onnxruntime']}, numpy {first['numpy']}; "
            f"cpu: {first['cpu']}; {first['audio_seconds']:.0f} s clip")  # fmt: skip

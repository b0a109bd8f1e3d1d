"""Measuring backends side by side: speed, accuracy and memory, by rules that make the numbers mean something.

Speed. A shared 2-core VM is noisy: another program, a thermal limit, the
page cache, all change timings by tens of percent from one minute to the next.
So we never compare numbers taken at different times. All backends are loaded
in one process and take turns, round after round, each round in a rotated
order (so no backend always runs right after the same neighbour); every backend
runs once untimed first (first calls allocate buffers and warm caches). We
report medians, which one disturbed round cannot drag, and speed-ups as the
median of per-round ratios to HF PyTorch: both numbers of a ratio come from the
same minute. A short pause between turns lets the thread pools of the previous
runtime go idle (they spin on the cores for a moment after their work ends).
And we count how much CPU *other* processes used meanwhile, so a report can
say when its machine was busy.

Accuracy. Word error rate (wer.py: Whisper's English normalizer + jiwer) of
every backend on the same real utterances (speech_data.english_test_set),
also taken in turns, so the seconds each backend spent on the whole set are a
second, longer speed measurement.

Memory. Each backend in a fresh child process (memory_probe.py), one after the
other, never while timing.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..audio.speech_data import Utterance
from ..errors import LabError
from .backends import Backend, Timing

PAUSE_SECONDS = 0.2
PROBE_TIMEOUT = 900  # seconds for one memory probe: loading + two transcriptions take 5-10 s
REPO_ROOT = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def rotation(names: list[str], round_index: int) -> list[str]:
    """Round 0: a b c; round 1: b c a; round 2: c a b; ..."""
    k = round_index % len(names)
    return names[k:] + names[:k]


# --- what else is running ------------------------------------------------------------------------


@dataclass
class CpuShare:
    """CPU time that other processes (and the hypervisor) took while we measured."""

    wall: float  # seconds
    cores: int
    others: float  # CPU seconds used by other processes
    steal: float  # CPU seconds the hypervisor gave to other VMs

    @property
    def others_fraction(self) -> float:
        return (self.others + self.steal) / max(self.wall * self.cores, 1e-9)


def _system_cpu() -> tuple[float, float] | None:
    """(busy, steal) CPU seconds of the whole machine since boot, from /proc/stat (Linux only)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


class CpuWatch:
    """with CpuWatch() as watch: ...  then watch.share: how busy the rest of the machine was."""

    def __enter__(self) -> "CpuWatch":
        self.share: CpuShare | None = None
        self._start = (time.perf_counter(), _system_cpu(), os.times())
        return self

    def __exit__(self, *exc) -> None:
        wall0, system0, own0 = self._start
        system1, own1 = _system_cpu(), os.times()
        if system0 is None or system1 is None:
            return
        own = (own1.user - own0.user) + (own1.system - own0.system)
        busy = system1[0] - system0[0]
        self.share = CpuShare(wall=time.perf_counter() - wall0, cores=os.cpu_count() or 1,
                              others=max(busy - own, 0.0), steal=system1[1] - system0[1])  # fmt: skip


# --- speed ---------------------------------------------------------------------------------------


@dataclass
class SpeedResult:
    backend: str
    timings: list[Timing] = field(default_factory=list)  # one per round
    text: str = ""

    @property
    def total(self) -> float:
        return statistics.median(t.total for t in self.timings)

    @property
    def encoder_per_window(self) -> float:
        return statistics.median(t.encoder_per_window for t in self.timings)

    @property
    def decoder_per_step(self) -> float:
        return statistics.median(t.decoder_per_step for t in self.timings)

    @property
    def steps(self) -> int:
        return self.timings[-1].steps


def _pause() -> None:
    gc.collect()  # not during a timed call
    time.sleep(PAUSE_SECONDS)


def measure_speed(backends: dict[str, Backend], audio: np.ndarray, repeats: int) -> tuple[dict[str, SpeedResult], CpuShare | None]:
    """Whole transcriptions of one clip, `repeats` rounds of every backend in turn, after one warm-up each."""
    names = list(backends)
    results = {name: SpeedResult(name) for name in names}
    for name in names:
        _pause()
        results[name].text = backends[name].transcribe(audio)
    with CpuWatch() as watch:
        for r in range(repeats):
            for name in rotation(names, r):
                _pause()
                text, timing = backends[name].timed_transcribe(audio)
                results[name].timings.append(timing)
                results[name].text = text
            log(f"  round {r + 1}/{repeats}: " + ", ".join(f"{n} {results[n].timings[-1].total:.2f} s" for n in names))
    return results, watch.share


def speedup(results: dict[str, SpeedResult], name: str, reference: str) -> tuple[float, float, float]:
    """Median, lowest and highest per-round ratio reference time / backend time (2.0 = twice as fast)."""
    ratios = [ref.total / own.total for ref, own in zip(results[reference].timings, results[name].timings)]
    return statistics.median(ratios), min(ratios), max(ratios)


# --- accuracy ------------------------------------------------------------------------------------


@dataclass
class AccuracyResult:
    backend: str
    hypotheses: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    wer: float = float("nan")
    words: int = 0  # reference words, after normalization

    @property
    def errors(self) -> int:
        return round(self.wer * self.words)

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds)


def measure_accuracy(backends: dict[str, Backend], utterances: list[Utterance]) -> tuple[dict[str, AccuracyResult], CpuShare | None]:
    """Every backend transcribes every utterance, in turns; then the corpus WER of each."""
    from ..audio.loading import load_audio
    from .wer import word_count, word_error_rate

    names = list(backends)
    results = {name: AccuracyResult(name) for name in names}
    references = [u.text for u in utterances]
    with CpuWatch() as watch:
        for i, utterance in enumerate(utterances):
            audio = load_audio(utterance.path)
            for name in rotation(names, i):
                gc.collect()
                start = time.perf_counter()
                text = backends[name].transcribe(audio)
                results[name].seconds.append(time.perf_counter() - start)
                results[name].hypotheses.append(text)
            if (i + 1) % 5 == 0 or i + 1 == len(utterances):
                log(f"  {i + 1}/{len(utterances)} utterances")
    words = sum(word_count(r) for r in references)
    for result in results.values():
        result.wer = word_error_rate(references, result.hypotheses)
        result.words = words
    return results, watch.share


# --- memory --------------------------------------------------------------------------------------


@dataclass
class MemoryResult:
    backend: str
    start_mb: float  # Python + numpy + audio libraries, before the backend's own imports
    loaded_mb: float  # peak after importing and loading the backend
    peak_mb: float  # peak after loading and transcribing the clip twice
    load_seconds: float


def measure_memory(name: str, model_dir: Path, model: str, threads: int, audio_path: Path) -> MemoryResult | str:
    """Peak RSS of one backend in its own process; a string says why it was skipped."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "whisper_lab.compare.memory_probe", name, "--model-dir", str(model_dir),
               "--model", model, "--threads", str(threads), "--audio", str(audio_path)]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"measuring the memory of {name} took over {PROBE_TIMEOUT} s; is the machine overloaded?") from exc
    lines = done.stdout.strip().splitlines()
    try:
        report = json.loads(lines[-1])
    except (IndexError, ValueError):
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise LabError(f"measuring the memory of {name} failed: {last}") from None
    if "unavailable" in report:
        return report["unavailable"]
    if "error" in report:
        raise LabError(f"measuring the memory of {name}: {report['error']}")
    return MemoryResult(name, report["start_mb"], report["loaded_mb"], report["peak_mb"], report["load_seconds"])


def measure_memories(names: list[str], model_dir: Path, model: str, threads: int, audio_path: Path,
                     on_result: Callable[[str, MemoryResult | str], None] | None = None) -> dict[str, MemoryResult | str]:  # fmt: skip
    results = {}
    for name in names:
        results[name] = measure_memory(name, model_dir, model, threads, audio_path)
        if on_result:
            on_result(name, results[name])
    return results

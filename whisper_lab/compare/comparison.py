"""The whole comparison that `04-compare-models.py` runs by default, in the order that keeps it honest.

1. check that script 03's files are there (we do not export here: 03 does that, and says so);
2. sizes and structure of every file, as stored and as ONNX Runtime runs it;
3. the test utterances (downloaded once from Debian, see speech_data.py);
4. peak memory, one backend per child process, before anything big is loaded here;
5. all backends loaded into this process, then speed in interleaved rounds, and
   the machine's float32 and int8 matrix-product speed (throughput.py);
6. accuracy on the test set, in turns as well.

Everything lands in a `Comparison`, which report.py turns into tables and plots.
"""

from __future__ import annotations

import datetime
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..audio.speech_data import ALL, JFK, Utterance, english_test_set
from ..errors import LabError
from ..export.graph_stats import GraphStats, graph_stats, runtime_graph_stats
from ..onnx_files import PRECISIONS, onnx_pair, tokenizer_file
from .backends import BACKENDS, Backend, BackendUnavailable, load_backend
from .throughput import Throughput, measure_throughput
from .benchmark import (
    AccuracyResult,
    CpuShare,
    MemoryResult,
    SpeedResult,
    log,
    measure_accuracy,
    measure_memories,  # fmt: skip
    measure_speed,
)

MIN_WER_UTTERANCES = 20  # fewer, and one misheard word moves the WER by more than the targets allow


@dataclass
class Settings:
    model_dir: Path
    model: str = "openai/whisper-base"
    model_name: str = "whisper-base"
    backends: tuple[str, ...] = BACKENDS
    utterances: int | str = 30  # or speech_data.ALL: the large set
    repeats: int = 5
    threads: int = 2
    clip: Utterance = JFK
    command: str = ""


@dataclass
class Comparison:
    settings: Settings
    started: datetime.datetime
    files: dict[str, dict[str, GraphStats]] = field(default_factory=dict)  # precision -> part -> stats
    runtime: dict[str, dict[str, GraphStats]] = field(default_factory=dict)  # as ONNX Runtime runs them
    memory: dict[str, MemoryResult] = field(default_factory=dict)
    speed: dict[str, SpeedResult] = field(default_factory=dict)
    speed_cpu: CpuShare | None = None
    clip_seconds: float = 0.0
    utterances: list[Utterance] = field(default_factory=list)
    accuracy: dict[str, AccuracyResult] = field(default_factory=dict)
    accuracy_cpu: CpuShare | None = None
    throughput: Throughput | None = None  # float32 and int8 matrix-product speed of this machine
    skipped: dict[str, str] = field(default_factory=dict)  # backend -> why
    environment: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0  # the whole run, until the report is written


def onnx_precisions(backends: tuple[str, ...]) -> list[str]:
    """fp32 always (sizes are shown relative to it), plus the precisions of the chosen ONNX backends."""
    wanted = {b.removeprefix("onnx-") for b in backends if b.startswith("onnx-")}
    return [p for p in PRECISIONS if p == "fp32" or p in wanted]


def check_exported(model_dir: Path, model_name: str, precisions: list[str]) -> None:
    run_03 = f"run: python 03-export-encoder-decoder.py --precision all --output-dir {model_dir}"
    if not model_dir.is_dir():
        raise LabError(f"{model_dir}: no such folder; export the models first ({run_03})")
    missing = [f.name for p in precisions for f in onnx_pair(model_dir, model_name, p) if not f.is_file()]
    if not tokenizer_file(model_dir, model_name).is_file():
        missing.append(tokenizer_file(model_dir, model_name).name)
    if missing:
        raise LabError(f"{model_dir} lacks {', '.join(missing)}; export them first ({run_03})")


def environment(threads: int) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    cpu = platform.processor() or platform.machine()
    flags = ""
    try:
        info = Path("/proc/cpuinfo").read_text()
        cpu = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), cpu)
        flags = next((line.split(":", 1)[1] for line in info.splitlines() if line.startswith("flags")), "")
    except OSError:
        pass
    # The instructions that decide int8 and fp16 speed: VNNI = int8 dot products, AVX512-FP16 = float16 math
    features = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_int8")
                if f" {f} " in f" {flags} "]  # fmt: skip
    packages = {}
    for package in ("onnxruntime", "torch", "transformers", "ctranslate2", "faster-whisper", "numpy"):
        try:
            packages[package] = version(package)
        except PackageNotFoundError:
            packages[package] = "not installed"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "cpu features": " ".join(features) or "unknown",
        "threads": str(threads),
        "python": platform.python_version(),
        "load average at start (1, 5, 15 min)": " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a",
        **packages,
    }


def run_comparison(settings: Settings) -> Comparison:
    from ..audio.loading import SAMPLE_RATE, load_audio

    precisions = onnx_precisions(settings.backends)
    check_exported(settings.model_dir, settings.model_name, precisions)
    if settings.utterances != ALL and settings.utterances < 1 or settings.repeats < 1 or settings.threads < 1:
        raise LabError(f"--utterances (or {ALL!r}), --repeats and --threads must be at least 1")
    start = time.perf_counter()
    result = Comparison(settings, started=datetime.datetime.now().astimezone(), environment=environment(settings.threads))

    stage = time.perf_counter()

    def done() -> None:
        nonlocal stage
        log(f"  done in {time.perf_counter() - stage:.0f} s")
        stage = time.perf_counter()

    log("[1/5] sizes and structure of the ONNX files ...")
    for precision in precisions:
        pair = onnx_pair(settings.model_dir, settings.model_name, precision)
        result.files[precision] = {"encoder": graph_stats(pair.encoder), "decoder": graph_stats(pair.decoder)}
        result.runtime[precision] = {"encoder": runtime_graph_stats(pair.encoder),
                                     "decoder": runtime_graph_stats(pair.decoder)}  # fmt: skip
    done()

    size = "the large set of" if settings.utterances == ALL else settings.utterances
    log(f"[2/5] the test set: {size} English utterances with reference transcripts ...")
    result.utterances = english_test_set(settings.utterances)
    clip = load_audio(settings.clip.path)
    result.clip_seconds = len(clip) / SAMPLE_RATE
    done()

    log("[3/5] peak memory, each backend alone in a fresh process ...")

    def show(name: str, outcome) -> None:
        if isinstance(outcome, str):
            log(f"  {name}: skipped: {outcome}")
        else:
            log(f"  {name}: peak {outcome.peak_mb:.0f} MB (after loading {outcome.loaded_mb:.0f} MB)")

    memories = measure_memories(list(settings.backends), settings.model_dir, settings.model, settings.threads,
                                settings.clip.path, on_result=show)  # fmt: skip
    result.skipped = {name: why for name, why in memories.items() if isinstance(why, str)}
    result.memory = {name: m for name, m in memories.items() if not isinstance(m, str)}
    done()

    log("[4/5] speed: loading the backends into one process ...")
    backends: dict[str, Backend] = {}
    for name in settings.backends:
        if name in result.skipped:
            continue
        try:
            backends[name] = load_backend(name, settings.model_dir, settings.model, settings.threads)
        except BackendUnavailable as exc:  # normally the memory probe has found this already
            result.skipped[name] = str(exc)
    log(f"  {settings.repeats} interleaved rounds on {settings.clip.path.name} ({result.clip_seconds:.1f} s) ...")
    result.speed, result.speed_cpu = measure_speed(backends, clip, settings.repeats)
    if any(name.startswith("onnx-") for name in backends):
        log("  the machine's float32 and int8 matrix-product speed (ONNX Runtime, same threads) ...")
        result.throughput = measure_throughput(settings.threads)
    done()

    log(f"[5/5] accuracy: {len(result.utterances)} utterances x {len(backends)} backends ...")
    result.accuracy, result.accuracy_cpu = measure_accuracy(backends, result.utterances)
    done()
    result.seconds = time.perf_counter() - start
    return result


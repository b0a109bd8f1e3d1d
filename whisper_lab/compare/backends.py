"""The five ways this lab transcribes, behind one interface, each with a stopwatch on its two halves.

    hf-fp32              Hugging Face transformers on PyTorch, float32: script 02's path, the reference
    onnx-fp32            our exported encoder + decoder in ONNX Runtime (script 03's files), float32
    onnx-fp16            the same graphs in float16
    onnx-int8            the same graphs, dynamically quantized to int8
    faster-whisper-int8  CTranslate2 on the same weights, int8: an outside reference (optional)

Every backend decodes greedily (one best token at a time, no beam search, no
temperature fallback: `--no-fallback` in 02 and 03), English, no timestamps for
clips up to 30 s, so the comparison is between runtimes and precisions, not
decoding strategies. (transformers' no-speech check alone would run the encoder
a second time per window, which is not what this table is about.) Each backend
keeps its own front end: Hugging Face's feature extractor for hf-fp32, the
zero-padded log-mel of audio/log_mel.py for the ONNX ones.

Besides the whole transcription we time its two halves, from inside:
  encoder  the seconds spent in the encoder (one call per 30 s window);
  decoder  the seconds spent in decoder calls, per decoder step, where a step
           produces one token (the last one produces <|endoftext|>).
The stopwatches wrap the real calls (a PyTorch forward hook, the OnnxWhisper
methods, faster-whisper's calls into CTranslate2); nothing else changes.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import LabError
from ..transcribe.options import DecodingOptions

BACKENDS = ("hf-fp32", "onnx-fp32", "onnx-fp16", "onnx-int8", "faster-whisper-int8")
LABELS = {
    "hf-fp32": "HF PyTorch fp32",
    "onnx-fp32": "ONNX fp32",
    "onnx-fp16": "ONNX fp16",
    "onnx-int8": "ONNX int8",
    "faster-whisper-int8": "faster-whisper int8",
}
REFERENCE = "hf-fp32"
PLAIN_GREEDY = DecodingOptions.plain_greedy()
OPTIONAL_INSTALL = "pip install -r requirements-bench.txt"


class BackendUnavailable(LabError):
    """An optional backend whose package is not installed: skipped, with this message."""


@dataclass
class Timing:
    """One transcription, timed."""

    total: float  # seconds, audio array in -> text out
    encoder: float  # seconds in the encoder
    windows: int  # encoder calls (30 s windows)
    decoder: float  # seconds in decoder calls
    steps: int  # decoder steps = tokens produced, <|endoftext|> included

    @property
    def encoder_per_window(self) -> float:
        return self.encoder / max(self.windows, 1)

    @property
    def decoder_per_step(self) -> float:
        return self.decoder / max(self.steps, 1)


class PhaseClock:
    """Adds up the time spent in named phases ("encoder", "decoder") and how often each ran."""

    def __init__(self):
        self.seconds: Counter = Counter()
        self.calls: Counter = Counter()
        self._started: dict[str, float] = {}

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()

    def start(self, phase: str) -> None:
        self._started[phase] = time.perf_counter()

    def stop(self, phase: str, calls: int = 1) -> None:
        self.seconds[phase] += time.perf_counter() - self._started.pop(phase)
        self.calls[phase] += calls

    def wrap(self, phase: str, function, count_calls=None):
        """`function` with a stopwatch around it; `count_calls(result)` says how many steps one call made."""

        def timed(*args, **kwargs):
            self.start(phase)
            result = function(*args, **kwargs)
            self.stop(phase, count_calls(result) if count_calls else 1)
            return result

        return timed


class Backend:
    name: str = ""

    def __init__(self):
        self.clock = PhaseClock()

    @property
    def label(self) -> str:
        return LABELS[self.name]

    def transcribe(self, audio: np.ndarray) -> str:
        raise NotImplementedError

    def timed_transcribe(self, audio: np.ndarray) -> tuple[str, Timing]:
        self.clock.reset()
        start = time.perf_counter()
        text = self.transcribe(audio)
        total = time.perf_counter() - start
        c = self.clock
        return text, Timing(total, c.seconds["encoder"], c.calls["encoder"], c.seconds["decoder"], c.calls["decoder"])


class HFBackend(Backend):
    """Script 02's path: WhisperForConditionalGeneration.generate() on PyTorch, float32."""

    name = "hf-fp32"

    def __init__(self, source, threads: int):
        super().__init__()
        import torch

        from ..transcribe.hf_whisper import HFWhisper

        torch.set_num_threads(threads)
        self.whisper = HFWhisper.load(source)
        # generate() runs the encoder once per window, then calls the whole model once per token
        # with the encoder output passed in: so hooks on the encoder and on the model's forward
        # time exactly the two halves.
        model = self.whisper.model
        encoder = model.get_encoder()
        encoder.register_forward_pre_hook(lambda *_: self.clock.start("encoder"))
        encoder.register_forward_hook(lambda *_: self.clock.stop("encoder"))
        model.register_forward_pre_hook(lambda *_: self.clock.start("decoder"))
        model.register_forward_hook(lambda *_: self.clock.stop("decoder"))

    def transcribe(self, audio: np.ndarray) -> str:
        return self.whisper.transcribe(audio, options=PLAIN_GREEDY)


class OnnxBackend(Backend):
    """Script 03's files through onnx_whisper.OnnxWhisper: numpy, ONNX Runtime and a tokenizer."""

    def __init__(self, model_dir: Path, model_name: str, precision: str, threads: int):
        super().__init__()
        from ..transcribe.onnx_whisper import load_onnx_whisper

        self.name = f"onnx-{precision}"
        self.whisper = load_onnx_whisper(model_dir, model_name, precision, threads=threads)
        # instance attributes shadow the methods, so decode_window's self.encode(...) is timed
        self.whisper.encode = self.clock.wrap("encoder", self.whisper.encode)
        self.whisper.decoder_step = self.clock.wrap("decoder", self.whisper.decoder_step)

    def transcribe(self, audio: np.ndarray) -> str:
        return self.whisper.transcribe(audio, options=PLAIN_GREEDY)


class _TimedGenerate:
    """Stands in front of a ctranslate2.models.Whisper: times generate(), passes everything else through."""

    def __init__(self, model, clock: PhaseClock):
        self._model = model
        # CTranslate2 decodes the whole window in C++: one call; steps = tokens out + <|endoftext|>
        self.generate = clock.wrap("decoder", model.generate,
                                   count_calls=lambda results: sum(len(r.sequences_ids[0]) + 1 for r in results))  # fmt: skip

    def __getattr__(self, name):
        return getattr(self._model, name)


class FasterWhisperBackend(Backend):
    """faster-whisper on the packaged weights, quantized to int8 by CTranslate2 at load."""

    name = "faster-whisper-int8"

    def __init__(self, threads: int):
        super().__init__()
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise BackendUnavailable(f"faster-whisper is not installed ({OPTIONAL_INSTALL})") from exc
        from ..weights.faster_whisper_model import ctranslate2_model_dir

        self.model = WhisperModel(str(ctranslate2_model_dir()), device="cpu", compute_type="int8",
                                  cpu_threads=threads, num_workers=1)  # fmt: skip
        self.model.encode = self.clock.wrap("encoder", self.model.encode)
        self.model.model = _TimedGenerate(self.model.model, self.clock)

    def transcribe(self, audio: np.ndarray) -> str:
        from ..audio.log_mel import N_SAMPLES

        segments, _ = self.model.transcribe(
            audio, language="en", task="transcribe",
            beam_size=1, best_of=1, temperature=0.0,  # greedy, like the others; no fallback
            condition_on_previous_text=False, without_timestamps=len(audio) <= N_SAMPLES,
            vad_filter=False,  # no Silero VAD cutting the audio: the others get the whole clip
            # don't drop segments it judges silent or repetitive: the others have no such filters
            no_speech_threshold=None, log_prob_threshold=None, compression_ratio_threshold=None,
        )  # fmt: skip
        return " ".join(segment.text.strip() for segment in segments).strip()  # segments is lazy: this decodes


def load_backend(name: str, model_dir: Path, model: str, threads: int) -> Backend:
    """Load one backend by name; BackendUnavailable for a missing optional package."""
    from ..weights.model_source import model_name, resolve_model

    if name == "hf-fp32":
        return HFBackend(resolve_model(model), threads)
    if name.startswith("onnx-"):
        return OnnxBackend(model_dir, model_name(model), name.removeprefix("onnx-"), threads)
    if name == "faster-whisper-int8":
        return FasterWhisperBackend(threads)
    raise LabError(f"unknown backend {name!r}; choose from: {', '.join(BACKENDS)}")

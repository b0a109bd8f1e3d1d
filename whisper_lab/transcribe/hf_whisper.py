"""Transcribe with Hugging Face transformers: the reference every ONNX export is held to.

Whisper sees audio through a 30 s window: the feature extractor turns up to
480 000 samples into an 80 x 3000 log-mel spectrogram (padding shorter clips
with silence), the encoder reads the whole window at once, and the decoder
writes text one token at a time, starting from the prompt
`<|startoftranscript|> <|en|> <|transcribe|>`.

Longer audio is cut into windows by `generate()` itself ("sequential long-form"
decoding): it predicts timestamp tokens, and the next window starts where the
last complete segment ended, so no words fall into the gap between windows.
Without timestamps it would have to cut blindly every 30 s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..audio.loading import SAMPLE_RATE
from ..audio.log_mel import N_SAMPLES  # one 30 s window
from ..errors import LabError
from ..weights.model_source import ModelSource, quiet_transformers
from .languages import language_token_id

TASKS = ("transcribe", "translate")


@dataclass
class HFWhisper:
    model: object  # WhisperForConditionalGeneration, float32, eval mode
    processor: object  # WhisperProcessor: feature extractor + tokenizer
    source: ModelSource

    @classmethod
    def load(cls, source: ModelSource, attn_implementation: str = "sdpa") -> "HFWhisper":
        import torch
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        quiet_transformers()
        try:
            processor = WhisperProcessor.from_pretrained(source.path)
            # Checkpoints saved in float16 would load as float16, which is slow on a CPU.
            model = WhisperForConditionalGeneration.from_pretrained(
                source.path, dtype=torch.float32, attn_implementation=attn_implementation
            )
        except Exception as exc:  # OSError, ValueError, and safetensors' or tokenizers' own plain Exceptions
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise LabError(f"cannot load the model from {source.path} ({first_line}); {source.repair}") from exc
        return cls(model=model.eval(), processor=processor, source=source)

    def language_id(self, language: str) -> int:
        from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE

        return language_token_id(language, self.model.generation_config.lang_to_id, TO_LANGUAGE_CODE)

    def features(self, audio: np.ndarray):
        """Log-mel features; longer than 30 s keeps every frame (plus an attention mask) for long-form."""
        fe = self.processor.feature_extractor
        if len(audio) <= N_SAMPLES:
            return fe(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        return fe(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt",
                  truncation=False, padding="longest", return_attention_mask=True)  # fmt: skip

    def generate_tokens(self, audio: np.ndarray, language: str = "en", task: str = "transcribe") -> list[int]:
        """Greedy decoding (temperature 0, like the ONNX decoder) of one clip; returns the token ids."""
        import torch

        if task not in TASKS:
            raise LabError(f"unknown task {task!r}; use one of: {', '.join(TASKS)}")
        self.language_id(language)  # validate before the expensive part
        inputs = self.features(audio)
        long_form = len(audio) > N_SAMPLES
        with torch.inference_mode():
            tokens = self.model.generate(
                **inputs, language=language, task=task,
                # long-form needs timestamps to know where to start the next window
                return_timestamps=long_form, condition_on_prev_tokens=False,
            )  # fmt: skip
        return tokens[0].tolist()

    def transcribe(self, audio: np.ndarray, language: str = "en", task: str = "transcribe") -> str:
        tokens = self.generate_tokens(audio, language=language, task=task)
        return self.processor.tokenizer.decode(tokens, skip_special_tokens=True).strip()

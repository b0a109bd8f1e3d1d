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

import re
from dataclasses import dataclass

import numpy as np

from ..audio.log_mel import N_FRAMES, N_SAMPLES, SAMPLE_RATE  # one 30 s window
from ..errors import LabError
from ..weights.model_source import ModelSource, quiet_transformers
from .languages import check_english_only, language_token_id
from .options import MIN_SPEECH_SECONDS, DecodingOptions
from .segments import NO_SPEECH_NOTE, TOO_SHORT_NOTE, Segment, Transcript, has_words
from .timing import Word

TASKS = ("transcribe", "translate")
HF_COMPRESSION_RATIO_THRESHOLD = 1.35
REPEAT_MIN_WORDS = 4  # a segment of this many words said word for word before is the model repeating itself


def heard_segments(segments: list[Segment], seconds: float) -> list[Segment]:
    """The segments the audio can hold: none that starts after the last sample, none that repeats
    earlier text word for word (at least REPEAT_MIN_WORDS words), and no end past the audio's end.

    generate()'s last window of a long recording is mostly padding; whisper-base sometimes fills
    it with earlier lines again, timed after the audio has ended (a 53 s reading got a segment at
    52.96 --> 62.24 of 20 repeated words).
    """
    kept, said = [], ""
    for segment in segments:
        words = " ".join(re.findall(r"[\w']+", segment.text.lower()))  # the words, without case or punctuation
        if segment.start >= seconds or (len(words.split()) >= REPEAT_MIN_WORDS and f" {words} " in f" {said} "):
            continue
        segment.end = min(segment.end, seconds)
        kept.append(segment)
        said += " " + words
    return kept


@dataclass
class HFWhisper:
    model: object  # WhisperForConditionalGeneration, float32, eval mode
    processor: object  # WhisperProcessor: feature extractor + tokenizer
    source: ModelSource

    @classmethod
    def load(cls, source: ModelSource, attn_implementation: str = "sdpa") -> HFWhisper:
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

    @property
    def multilingual(self) -> bool:
        """False for the English-only (.en) models: no language or task token in their prompt."""
        generation = self.model.generation_config
        return bool(getattr(generation, "is_multilingual", True) and getattr(generation, "lang_to_id", None))

    def language_id(self, language: str) -> int | None:
        """The language token of `language`; None for an English-only model (after checking it is English)."""
        from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE

        if not self.multilingual:
            check_english_only(language, "transcribe", self.source.name)
            return None
        return language_token_id(language, self.model.generation_config.lang_to_id, TO_LANGUAGE_CODE)

    def prompt_tokens(self, language: str, task: str, timestamps: bool) -> list[int]:
        """<|startoftranscript|> <|en|> <|transcribe|> [<|notimestamps|>]; .en models: no language, no task."""
        generation = self.model.generation_config
        prompt = [self.model.config.decoder_start_token_id]
        if self.multilingual:
            prompt += [self.language_id(language), generation.task_to_id[task]]
        else:
            check_english_only(language, task, self.source.name)
        return prompt if timestamps else prompt + [generation.no_timestamps_token_id]

    def features(self, audio: np.ndarray, attention_mask: bool = False):
        """Log-mel features; longer than 30 s keeps every frame (plus an attention mask) for long-form.
        `attention_mask` also for a short clip: which frames hold audio, what word timestamps need."""
        fe = self.processor.feature_extractor
        if len(audio) <= N_SAMPLES:
            return fe(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt", return_attention_mask=attention_mask)
        return fe(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt",
                  truncation=False, padding="longest", return_attention_mask=True)  # fmt: skip

    def generate_kwargs(self, options: DecodingOptions, timestamps: bool) -> dict:
        """transformers' own names for our decoding options: generate() implements every safeguard itself."""
        kwargs = {"return_timestamps": timestamps, "condition_on_prev_tokens": options.condition_on_previous_text}
        if options.beam_size:
            kwargs["num_beams"] = options.beam_size
        if options.safeguarded:
            kwargs.update(
                temperature=options.temperatures,
                # transformers measures the ratio on the token ids' bytes, not on the text as OpenAI
                # does: the same loops score lower there, and its documented equivalent of 2.4 is 1.35
                compression_ratio_threshold=HF_COMPRESSION_RATIO_THRESHOLD,
                logprob_threshold=options.logprob_threshold,
                no_speech_threshold=options.no_speech_threshold,
            )  # fmt: skip
        return kwargs

    def generate_tokens(self, audio: np.ndarray | None = None, language: str = "en", task: str = "transcribe",
                        options: DecodingOptions | None = None, input_features=None) -> list[int]:  # fmt: skip
        """Token ids of one clip (plain greedy by default, like the ONNX decode_window); `input_features`
        instead of audio feeds the model given features, e.g. the ONNX path's (audio/log_mel.py)."""
        return self._generate(audio, language, task, options or DecodingOptions.plain_greedy(), input_features)[0]

    def _generate(self, audio, language, task, options: DecodingOptions, input_features=None, token_times=False):
        import torch

        if task not in TASKS:
            raise LabError(f"unknown task {task!r}; use one of: {', '.join(TASKS)}")
        self.language_id(language)  # validate before the expensive part
        if not self.multilingual:
            check_english_only(language, task, self.source.name)
        inputs = self.features(audio, token_times) if input_features is None else {"input_features": torch.as_tensor(input_features)}
        long_form = inputs["input_features"].shape[-1] > N_FRAMES
        # long-form needs timestamps to know where to start the next window
        kwargs = self.generate_kwargs(options, timestamps=long_form or options.timestamps)
        if kwargs["return_timestamps"]:
            kwargs["return_segments"] = True
        if token_times:  # transformers' own word timing: each token's time from the alignment heads (DTW)
            kwargs["return_token_timestamps"] = True
        torch.manual_seed(options.seed)  # sampling at a temperature above 0: same audio, same text
        with torch.inference_mode():
            # an English-only model refuses a language or task: it has a single one
            language_task = {"language": language, "task": task} if self.multilingual else {}
            out = self.model.generate(**inputs, **language_task, **kwargs)
        if isinstance(out, dict) and "segments" in out:  # with segments
            return out["sequences"][0].tolist(), out["segments"][0]
        if isinstance(out, dict):  # token times of one window without timestamps: as one segment
            tokens, times = out["sequences"][0], out["token_timestamps"][0]
            return tokens.tolist(), [{"start": 0.0, "end": len(audio) / SAMPLE_RATE, "tokens": tokens,
                                      "token_timestamps": times}]  # fmt: skip
        return out[0].tolist(), None

    def transcript(self, audio: np.ndarray, language: str = "en", task: str = "transcribe",
                   options: DecodingOptions | None = None) -> Transcript:  # fmt: skip
        """A whole clip with the safeguards of `options` (default: OpenAI's), as the ONNX path returns it."""
        options = options or DecodingOptions()
        if len(audio) < MIN_SPEECH_SECONDS * SAMPLE_RATE:
            return Transcript.empty(TOO_SHORT_NOTE)
        tokens, hf_segments = self._generate(audio, language, task, options)
        decode = self.processor.tokenizer.decode
        text = decode(tokens, skip_special_tokens=True).strip()
        if not has_words(text):
            return Transcript.empty(NO_SPEECH_NOTE)
        if hf_segments is None:
            segments = [Segment(0.0, len(audio) / SAMPLE_RATE, text, tokens)] if text else []
        else:
            segments = [Segment(float(s["start"]), float(s["end"]), decode(s["tokens"], skip_special_tokens=True).strip(),
                                s["tokens"].tolist()) for s in hf_segments]  # fmt: skip
            segments = [s for s in segments if s.text]
            heard = heard_segments(segments, len(audio) / SAMPLE_RATE)
            if len(heard) < len(segments):  # the text without what was dropped
                segments, text = heard, " ".join(s.text for s in heard)
                if not has_words(text):
                    return Transcript.empty(NO_SPEECH_NOTE)
        return Transcript(text, segments)

    def transcribe(self, audio: np.ndarray, language: str = "en", task: str = "transcribe",
                   options: DecodingOptions | None = None) -> str:  # fmt: skip
        return self.transcript(audio, language, task, options).text


    # --- word timestamps (02 --word-timestamps) ---------------------------------------------------

    def word_transcript(self, audio: np.ndarray, language: str = "en", task: str = "transcribe",
                        options: DecodingOptions | None = None) -> Transcript:  # fmt: skip
        """`transcript` with a time for every word, from transformers' own token timestamps.

        generate(return_token_timestamps=True) reads the alignment heads' cross-attention
        with dynamic time warping and gives each token the time at which the next one
        starts; the pipeline's return_timestamps="word" turns those into words, and so do
        we, with its own grouping of tokens into words and punctuation. Decoded with timestamp
        tokens, as OpenAI's transcribe() always is: without them transformers has no time
        for the first token of a window.
        """
        from dataclasses import replace

        from transformers.models.whisper.tokenization_whisper import _combine_tokens_into_words

        options = replace(options or DecodingOptions(), timestamps=True, word_timestamps=True)
        if len(audio) < MIN_SPEECH_SECONDS * SAMPLE_RATE:
            return Transcript.empty(TOO_SHORT_NOTE)
        tokens, hf_segments = self._generate(audio, language, task, options, token_times=True)
        tokenizer = self.processor.tokenizer
        text = tokenizer.decode(tokens, skip_special_tokens=True).strip()
        if not has_words(text):
            return Transcript.empty(NO_SPEECH_NOTE)
        eot = tokenizer.eos_token_id
        segments = []
        for hf in hf_segments:
            ids, times = hf["tokens"].tolist(), hf["token_timestamps"].tolist()
            segment_text = tokenizer.decode(ids, skip_special_tokens=True).strip()
            if not segment_text:
                continue
            segment = Segment(float(hf["start"]), float(hf["end"]), segment_text, ids)
            text_positions = [i for i, t in enumerate(ids) if t < eot]
            words, _, indices = _combine_tokens_into_words(tokenizer, [ids[i] for i in text_positions],
                                                           self.word_language(language))  # fmt: skip
            for word, positions in zip(words, indices):
                first, last = text_positions[positions[0]], text_positions[positions[-1]]
                start = times[first - 1] if first > 0 else float(hf["start"])  # a token ends where the next starts
                segment.words.append(Word(word, round(start, 2), round(times[last], 2), None,
                                          [ids[text_positions[p]] for p in positions]))  # fmt: skip
            segments.append(segment)
        heard = heard_segments(segments, len(audio) / SAMPLE_RATE)
        if len(heard) < len(segments):
            segments, text = heard, " ".join(s.text for s in heard)
        for segment in segments:  # words of a kept segment end with the audio too
            segment.words = [w for w in segment.words if w.start < segment.end]
            for word in segment.words:
                word.end = min(word.end, segment.end)
        if not has_words(text):
            return Transcript.empty(NO_SPEECH_NOTE)
        return Transcript(text, segments)

    def word_language(self, language: str) -> str:
        """transformers' language name ("english") for its word grouping (no spaces in Chinese, ...)."""
        from transformers.models.whisper.tokenization_whisper import LANGUAGES, TO_LANGUAGE_CODE

        return LANGUAGES.get(TO_LANGUAGE_CODE.get(language.lower(), language.lower()), "english")

"""Transcribe with the exported ONNX pair: numpy + ONNX Runtime + a tokenizer file, nothing else.

No PyTorch, no transformers model: what the next lab can run on a small device.
All the numbers the loop needs (special tokens, language ids, sizes) are read
from the ONNX metadata written by export/onnx_export.py (see onnx_files.py).

Greedy decoding of one 30 s window:

    prompt  <|startoftranscript|> <|en|> <|transcribe|> <|notimestamps|>
    step 0  decoder(prompt, empty cache)      -> logits of the next token, cache of 4
    step k  decoder(last token, cache of k+3) -> logits, cache of k+4
            pick the most likely allowed token; stop at <|endoftext|>

Audio longer than 30 s is decoded window after window with timestamp tokens
(<|0.00|> ... <|30.00|>, one per 20 ms): the model marks where each sentence
ends, and the next window starts right after the last complete sentence, as
OpenAI's `transcribe()` does. Cutting blindly every 30 s would split words.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio.loading import SAMPLE_RATE
from ..audio.log_mel import N_FRAMES, N_SAMPLES, log_mel_spectrogram
from ..errors import LabError
from ..onnx_files import EXPORT_VERSION, onnx_pair
from .languages import language_token_id

TASKS = ("transcribe", "translate")
FRAMES_PER_TOKEN_STEP = 2  # the encoder halves 3000 mel frames to 1500 positions; a timestamp step is 20 ms


@dataclass
class WhisperSpec:
    """The numbers a decoding loop needs, from the ONNX metadata."""

    n_layer: int
    n_head: int
    d_model: int
    n_text_ctx: int
    n_mels: int
    sot: int
    eot: int
    transcribe: int
    translate: int
    no_timestamps: int
    timestamp_begin: int
    max_initial_timestamp_index: int
    suppress_tokens: list[int]
    begin_suppress_tokens: list[int]
    lang_to_id: dict[str, int]
    language_names: dict[str, str]
    tokenizer_file: str
    precision: str

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> "WhisperSpec":
        try:
            ints = {k: int(meta[k]) for k in ("n_layer", "n_head", "d_model", "n_text_ctx", "n_mels", "sot", "eot", "transcribe",
                                              "translate", "no_timestamps", "timestamp_begin",
                                              "max_initial_timestamp_index")}  # fmt: skip
            lists = {k: json.loads(meta[k]) for k in ("suppress_tokens", "begin_suppress_tokens",
                                                      "lang_to_id", "language_names")}  # fmt: skip
            spec = cls(**ints, **lists, tokenizer_file=meta["tokenizer_file"], precision=meta["precision"])
        except (KeyError, ValueError) as exc:
            raise LabError(f"the ONNX file lacks whisper-onnx-lab metadata ({exc}); export it with "
                           "03-export-encoder-decoder.py") from exc  # fmt: skip
        if meta.get("export_version") != EXPORT_VERSION:
            raise LabError(f"the {spec.precision} ONNX files come from an older version of this lab (export "
                           f"{meta.get('export_version')}, now {EXPORT_VERSION}); export them again: "
                           f"python 03-export-encoder-decoder.py --precision {spec.precision} --force")  # fmt: skip
        return spec


_ARENA_REGISTERED = False


def _register_cpu_arena() -> None:
    """One CPU memory arena for every session of this process, growing by exactly what is asked for.

    ONNX Runtime keeps the memory of a run's intermediate tensors in an arena and
    reuses it next time, which is faster than asking the system every time. Its
    default arena grows in powers of two and each session has its own: our int8
    encoder's attention matrices (8 heads x 1500 x 1500 floats = 72 MB each) then
    leave it at ~540 MB peak for a clip. Growing by the requested size
    (kSameAsRequested) and sharing one arena between encoder and decoder brings
    that to ~355 MB with the same speed; no arena at all also gives ~350 MB but
    was 3-19% slower for int8 here (the big buffers come fresh from the system
    on every run). Measured side by side on the 11 s sample + 2 LibriVox clips,
    2 threads: arena 1.99 s / 537 MB, no arena 2.17 s / 352 MB, this 1.96 s / 358 MB.
    """
    global _ARENA_REGISTERED
    if _ARENA_REGISTERED:
        return
    import onnxruntime as ort

    cpu = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    ort.create_and_register_allocator(cpu, ort.OrtArenaCfg({"arena_extend_strategy": 1}))  # 1 = kSameAsRequested
    _ARENA_REGISTERED = True


def _session(path: Path, threads: int | None):
    import onnxruntime as ort

    if not path.is_file():
        raise LabError(f"{path}: no such ONNX file; export it with 03-export-encoder-decoder.py")
    _register_cpu_arena()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    options.add_session_config_entry("session.use_env_allocators", "1")  # the shared arena above
    # The memory pattern pre-plans one block for all tensors of a run with fixed shapes: faster
    # for the encoder by a few %, but it adds ~150 MB, and the decoder's shapes change every step.
    options.enable_mem_pattern = False
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for broken files
        raise LabError(f"{path}: ONNX Runtime cannot load it ({str(exc).splitlines()[0][:200]}); "
                       "export it again with --force") from exc  # fmt: skip


class OnnxWhisper:
    def __init__(self, encoder_path: Path, decoder_path: Path, threads: int | None = None):
        from tokenizers import Tokenizer

        self.encoder = _session(Path(encoder_path), threads)
        self.decoder = _session(Path(decoder_path), threads)
        self.spec = WhisperSpec.from_metadata(self.decoder.get_modelmeta().custom_metadata_map)
        tokenizer_path = Path(decoder_path).parent / self.spec.tokenizer_file
        if not tokenizer_path.is_file():
            raise LabError(f"{tokenizer_path} is missing; export again with 03-export-encoder-decoder.py --force")
        try:
            self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        except Exception as exc:  # tokenizers raises a plain Exception for a truncated file
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
            raise LabError(f"{tokenizer_path} is damaged ({reason}); run 03-export-encoder-decoder.py "
                           f"--output-dir {tokenizer_path.parent} again to rewrite it") from exc  # fmt: skip

    # --- the two graphs ------------------------------------------------------------------------

    def encode(self, mel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(batch, n_mels, 3000) log-mel -> every decoder layer's cross-attention keys and values:
        cross_k (n_layer, batch, head, head_dim, 1500), cross_v (n_layer, batch, head, 1500, head_dim)."""
        cross_k, cross_v = self.encoder.run(None, {"mel": mel.astype(np.float32)})
        return cross_k, cross_v

    def empty_cache(self, batch: int = 1) -> np.ndarray:
        """A self-attention cache holding no tokens yet: (n_layer, batch, head, 0, head_dim)."""
        s = self.spec
        return np.zeros((s.n_layer, batch, s.n_head, 0, s.d_model // s.n_head), dtype=np.float32)

    def decoder_step(self, tokens, self_k, self_v, cross_k, cross_v):
        """One decoder call -> (logits (batch, n, vocab), new self_k list, new self_v list).

        The graph takes one tensor per layer; self_k[i] of a stacked numpy array is a view,
        so feeding layer by layer copies nothing.
        """
        feeds = {"tokens": np.asarray(tokens, dtype=np.int64)}
        for kind, tensors in (("self_k", self_k), ("self_v", self_v), ("cross_k", cross_k), ("cross_v", cross_v)):
            feeds.update({f"{kind}_{i}": tensors[i] for i in range(self.spec.n_layer)})
        logits, *caches = self.decoder.run(None, feeds)
        n = self.spec.n_layer
        return logits, caches[:n], caches[n:]

    # --- decoding ------------------------------------------------------------------------------

    def prompt(self, language: str, task: str, timestamps: bool) -> list[int]:
        if task not in TASKS:
            raise LabError(f"unknown task {task!r}; use one of: {', '.join(TASKS)}")
        s = self.spec
        tokens = [s.sot, language_token_id(language, s.lang_to_id, s.language_names), getattr(s, task)]
        return tokens if timestamps else tokens + [s.no_timestamps]

    def _allowed(self, logits: np.ndarray, generated: list[int], timestamps: bool) -> np.ndarray:
        """Mask the tokens that may not come next (logits of one position, float32, modified in place)."""
        s = self.spec
        logits[s.suppress_tokens] = -np.inf  # symbols Whisper was trained never to emit
        if not generated:
            logits[s.begin_suppress_tokens] = -np.inf  # no empty transcript, no leading blank
        if not timestamps:
            logits[s.timestamp_begin :] = -np.inf
            return logits
        logits[s.no_timestamps] = -np.inf
        # Timestamps come in pairs (end of one segment, start of the next) and never go back.
        last_was_ts = len(generated) >= 1 and generated[-1] >= s.timestamp_begin
        penultimate_was_ts = len(generated) < 2 or generated[-2] >= s.timestamp_begin
        if last_was_ts:
            if penultimate_was_ts:
                logits[s.timestamp_begin :] = -np.inf  # a pair just closed: text must follow
            else:
                logits[: s.eot] = -np.inf  # a segment just ended: another timestamp or <|endoftext|>
        stamps = [t for t in generated if t >= s.timestamp_begin]
        if stamps:
            floor = stamps[-1] if last_was_ts and not penultimate_was_ts else stamps[-1] + 1
            logits[s.timestamp_begin : floor] = -np.inf
        else:  # the window must start with a timestamp, and not too late
            logits[: s.timestamp_begin] = -np.inf
            logits[s.timestamp_begin + s.max_initial_timestamp_index + 1 :] = -np.inf
        # If all timestamps together are likelier than any single text token, take a timestamp.
        logprobs = logits - np.logaddexp.reduce(logits[np.isfinite(logits)])
        if np.logaddexp.reduce(logprobs[s.timestamp_begin :]) > logprobs[: s.timestamp_begin].max():
            logits[: s.timestamp_begin] = -np.inf
        return logits

    def decode_window(self, mel: np.ndarray, prompt: list[int], timestamps: bool) -> list[int]:
        """Greedy tokens (without the prompt, without <|endoftext|>) for one 30 s log-mel window."""
        cross_k, cross_v = self.encode(mel[None])
        self_k = self_v = self.empty_cache()
        feed, generated = prompt, []
        max_new = self.spec.n_text_ctx // 2 - len(prompt)  # as OpenAI: half the context for the text
        for _ in range(max_new):
            logits, self_k, self_v = self.decoder_step([feed], self_k, self_v, cross_k, cross_v)
            next_token = int(np.argmax(self._allowed(logits[0, -1].astype(np.float32), generated, timestamps)))
            if next_token == self.spec.eot:
                break
            generated.append(next_token)
            feed = [next_token]
        return generated

    def text(self, tokens: list[int]) -> str:
        return self.tokenizer.decode([t for t in tokens if t < self.spec.eot]).strip()

    def transcribe_tokens(self, audio: np.ndarray, language: str = "en", task: str = "transcribe") -> list[int]:
        """Text tokens of a whole clip: one window up to 30 s, timestamp-guided windows beyond."""
        if len(audio) <= N_SAMPLES:
            mel = log_mel_spectrogram(audio, self.spec.n_mels)
            return self.decode_window(mel, self.prompt(language, task, timestamps=False), timestamps=False)

        prompt = self.prompt(language, task, timestamps=True)
        # 30 s of silence after the end, so the last window is as long as any other
        mel = log_mel_spectrogram(np.pad(audio, (0, N_SAMPLES)), self.spec.n_mels, pad_to=None)
        content_frames = len(audio) // (SAMPLE_RATE // 100)
        tokens, seek = [], 0
        while seek < content_frames:
            window = content_frames - seek if content_frames - seek < N_FRAMES else N_FRAMES
            generated = self.decode_window(mel[:, seek : seek + N_FRAMES], prompt, timestamps=True)
            kept, advance = self._complete_segments(generated, window)
            tokens += kept
            seek += advance
        return tokens

    def _complete_segments(self, generated: list[int], window_frames: int) -> tuple[list[int], int]:
        """Keep the finished segments of a window; say how many mel frames to move on.

        A segment is `<|t0|> text <|t1|>`; two timestamps in a row close one segment and
        open the next. If the window ends inside a segment (its closing timestamp never
        came), that unfinished text is dropped and decoded again from the next window,
        which starts where the last complete segment ended.
        """
        begin = self.spec.timestamp_begin
        is_ts = [t >= begin for t in generated]
        pair_ends = [i for i in range(1, len(generated)) if is_ts[i - 1] and is_ts[i]]
        speech_ended = is_ts[-2:] == [False, True]  # closed by a lone timestamp: nothing unfinished
        if speech_ended or not pair_ends:
            return generated, window_frames
        cut = pair_ends[-1]
        frames = (generated[cut - 1] - begin) * FRAMES_PER_TOKEN_STEP
        if frames <= 0:  # no progress possible from this window: keep it all and move on
            return generated, window_frames
        return generated[:cut], frames

    def transcribe(self, audio: np.ndarray, language: str = "en", task: str = "transcribe") -> str:
        return self.text(self.transcribe_tokens(audio, language, task))


def load_onnx_whisper(output_dir: Path, model_name: str, precision: str, threads: int | None = None) -> OnnxWhisper:
    pair = onnx_pair(Path(output_dir), model_name, precision)
    return OnnxWhisper(pair.encoder, pair.decoder, threads=threads or int(os.environ.get("WHISPER_LAB_THREADS", 0)) or None)

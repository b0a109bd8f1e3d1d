"""Transcribe with the exported ONNX pair: numpy + ONNX Runtime + a tokenizer file, nothing else.

No PyTorch, no transformers model: what the next lab can run on a small device.
All the numbers the loop needs (special tokens, language ids, sizes) are read
from the ONNX metadata written by export/onnx_export.py (see onnx_files.py).

Greedy decoding of one 30 s window (`decode_window`):

    prompt  <|startoftranscript|> <|en|> <|transcribe|> <|notimestamps|>
    step 0  decoder(prompt, empty cache)      -> logits of the next token, cache of 4
    step k  decoder(last token, cache of k+3) -> logits, cache of k+4
            pick the most likely allowed token (logit_rules.py); stop at <|endoftext|>

`transcript()` adds what OpenAI's `transcribe()` does around that loop: the
temperature fallback and the no-speech check (safeguards.py), beam search as an
option (beam_search.py), and, beyond 30 s, windows that start where the last
complete sentence ended, with the text so far as a prompt (segments.py).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import LabError
from ..onnx_files import (
    ALIGNMENT_OUTPUT,
    EXPORT_VERSION,
    attention_decoder_file,
    check_interface,
    decoder_interface,
    decoder_output_names,
    encoder_interface,
    onnx_pair,
    threads_from_environment,
)
from .decoders import Decoded, Window, sample_or_greedy
from .languages import check_english_only, language_token_id
from .logit_rules import TokenIds
from .options import DecodingOptions
from .segments import Transcript, transcribe_audio

TASKS = ("transcribe", "translate")


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
    model_name: str = "the model"
    multilingual: bool = True  # False: an English-only (.en) model, whose prompt has no language or task

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> WhisperSpec:
        try:
            ints = {k: int(meta[k]) for k in ("n_layer", "n_head", "d_model", "n_text_ctx", "n_mels", "sot", "eot", "transcribe",
                                              "translate", "no_timestamps", "timestamp_begin",
                                              "max_initial_timestamp_index")}  # fmt: skip
            lists = {k: json.loads(meta[k]) for k in ("suppress_tokens", "begin_suppress_tokens",
                                                      "lang_to_id", "language_names")}  # fmt: skip
            spec = cls(**ints, **lists, tokenizer_file=meta["tokenizer_file"], precision=meta["precision"],
                       model_name=meta.get("model_name", "the model"), multilingual=meta.get("multilingual", "1") == "1")
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
        self._check_pair(Path(encoder_path), Path(decoder_path))
        tokenizer_path = Path(decoder_path).parent / self.spec.tokenizer_file
        if not tokenizer_path.is_file():
            raise LabError(f"{tokenizer_path} is missing; export again with 03-export-encoder-decoder.py --force")
        try:
            self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        except Exception as exc:  # tokenizers raises a plain Exception for a truncated file
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
            raise LabError(f"{tokenizer_path} is damaged ({reason}); run 03-export-encoder-decoder.py "
                           f"--output-dir {tokenizer_path.parent} again to rewrite it") from exc  # fmt: skip
        s = self.spec
        self.token_ids = TokenIds(s.eot, s.no_timestamps, s.timestamp_begin, s.max_initial_timestamp_index,
                                  tuple(s.suppress_tokens), tuple(s.begin_suppress_tokens))  # fmt: skip
        # two special tokens the metadata does not name: the tokenizer knows them
        self.sot_prev = self._special_token("<|startofprev|>")
        self.no_speech = self._special_token("<|nospeech|>", "<|nocaptions|>")  # renamed in newer tokenizers
        # The attention decoder (word timestamps) has one output more; each step asks for the usual ones.
        self.step_outputs = decoder_output_names(s.n_layer)
        meta = self.decoder.get_modelmeta().custom_metadata_map
        self.alignment_heads = [tuple(h) for h in json.loads(meta["alignment_heads"])] if "alignment_heads" in meta else None

    def _check_pair(self, encoder_path: Path, decoder_path: Path) -> None:
        """The two files are this lab's encoder and decoder of one model: names, types and sizes of
        their inputs and outputs as the decoder's metadata describes them, and one recorded source.
        A file of another model under the lab's name, or the two swapped, fails here in one line."""
        meta = self.decoder.get_modelmeta().custom_metadata_map
        rebuild = f"python 03-export-encoder-decoder.py --precision {self.spec.precision} --force"
        check_interface(encoder_path, encoder_interface(meta), rebuild, session=self.encoder)
        check_interface(decoder_path, decoder_interface(meta, "alignment_heads" in meta), rebuild, session=self.decoder)
        encoder_meta = self.encoder.get_modelmeta().custom_metadata_map
        for key in ("source", "model_name", "export_version"):
            if encoder_meta.get(key) != meta.get(key):
                raise LabError(f"{encoder_path} and {decoder_path.name} are not one export ({key}: "
                               f"{encoder_meta.get(key)!r} vs {meta.get(key)!r}); rebuild them: {rebuild}")  # fmt: skip

    def _special_token(self, *names: str) -> int:
        for name in names:
            if (token := self.tokenizer.token_to_id(name)) is not None:
                return token
        raise LabError(f"the tokenizer file lacks {names[0]}; export again with 03-export-encoder-decoder.py --force")

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
        logits, *caches = self.decoder.run(self.step_outputs, feeds)
        n = self.spec.n_layer
        return logits, caches[:n], caches[n:]

    def alignment_scores(self, tokens: list[int], cross_k: np.ndarray,
                         cross_v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """`tokens` fed at once -> the alignment heads' cross-attention scores before the softmax,
        (n_alignment_heads, len(tokens), 1500), and the logits (len(tokens), vocab).
        Needs the attention decoder (word timestamps)."""
        if self.alignment_heads is None:
            raise LabError("word timestamps need the attention decoder: load it with word_timestamps=True "
                           "(03-export-encoder-decoder.py --word-timestamps exports it)")  # fmt: skip
        empty = self.empty_cache()
        feeds = {"tokens": np.asarray([tokens], dtype=np.int64)}
        for kind, tensors in (("self_k", empty), ("self_v", empty), ("cross_k", cross_k), ("cross_v", cross_v)):
            feeds.update({f"{kind}_{i}": tensors[i] for i in range(self.spec.n_layer)})
        logits, scores = self.decoder.run(["logits", ALIGNMENT_OUTPUT], feeds)
        return scores[0], logits[0]

    # --- decoding ------------------------------------------------------------------------------

    def prompt(self, language: str, task: str, timestamps: bool) -> list[int]:
        if task not in TASKS:
            raise LabError(f"unknown task {task!r}; use one of: {', '.join(TASKS)}")
        s = self.spec
        if s.multilingual:
            tokens = [s.sot, language_token_id(language, s.lang_to_id, s.language_names), getattr(s, task)]
        else:
            check_english_only(language, task, s.model_name)
            tokens = [s.sot]
        return tokens if timestamps else tokens + [s.no_timestamps]

    def prompt_with_previous(self, language: str, task: str, timestamps: bool,
                             previous: list[int]) -> tuple[list[int], int]:  # fmt: skip
        """`<|startofprev|> previous text <|startoftranscript|> ...` and the index of <|startoftranscript|>.

        The previous window's text tells the model which words, names and style came
        before; at most half the decoder's context, the rest is for the new text.
        """
        task_prompt = self.prompt(language, task, timestamps)
        if not previous:
            return task_prompt, 0
        kept = [t for t in previous if t < self.spec.eot or t >= self.spec.timestamp_begin]
        kept = kept[-(self.spec.n_text_ctx // 2 - 1) :]
        return [self.sot_prev, *kept, *task_prompt], len(kept) + 1

    def max_new_tokens(self, prompt_length: int) -> int:
        """Half the decoder's context (224 tokens), as OpenAI; less if a long prompt leaves less room."""
        return min(self.spec.n_text_ctx // 2, self.spec.n_text_ctx - prompt_length)

    def decode_window(self, mel: np.ndarray, prompt: list[int], timestamps: bool) -> list[int]:
        """Plain greedy tokens (without the prompt, without <|endoftext|>) for one 30 s log-mel window.

        No safeguards: the likeliest allowed token (logit_rules.py) at every step, until
        <|endoftext|>. The fallback, beam search and seeking of `transcript()` build on
        the same decoder loop (decoders.py).
        """
        return self.greedy_window(mel, prompt, timestamps).tokens

    def greedy_window(self, mel: np.ndarray, prompt: list[int], timestamps: bool) -> Decoded:
        """`decode_window` with what the safeguards read: P(no speech) and the summed log-probability."""
        cross_k, cross_v = self.encode(mel[None])
        window = Window(cross_k, cross_v, prompt, prompt.index(self.spec.sot), timestamps,
                        self.max_new_tokens(len(prompt)))  # fmt: skip
        return sample_or_greedy(self, window)[0]

    def text(self, tokens: list[int]) -> str:
        return self.tokenizer.decode([t for t in tokens if t < self.spec.eot]).strip()

    def transcript(self, audio: np.ndarray, language: str = "en", task: str = "transcribe",
                   options: DecodingOptions | None = None) -> Transcript:  # fmt: skip
        """A whole clip: text, segments, and what the safeguards did (segments.py)."""
        self.prompt(language, task, timestamps=False)  # a bad language or task fails before any work
        return transcribe_audio(self, audio, language, task, options or DecodingOptions())

    def transcribe_tokens(self, audio: np.ndarray, language: str = "en", task: str = "transcribe",
                          options: DecodingOptions | None = None) -> list[int]:  # fmt: skip
        """The tokens of every kept segment (timestamps included beyond 30 s)."""
        return [t for s in self.transcript(audio, language, task, options).segments for t in s.tokens]

    def transcribe(self, audio: np.ndarray, language: str = "en", task: str = "transcribe",
                   options: DecodingOptions | None = None) -> str:  # fmt: skip
        return self.transcript(audio, language, task, options).text


def load_onnx_whisper(output_dir: Path, model_name: str, precision: str, threads: int | None = None,
                      word_timestamps: bool = False) -> OnnxWhisper:  # fmt: skip
    """The exported pair of `precision`; with `word_timestamps`, its decoder is the attention decoder
    (the same graph with the alignment heads' attention as one more output), which then decodes too."""
    pair = onnx_pair(Path(output_dir), model_name, precision)
    decoder = attention_decoder_file(Path(output_dir), model_name, precision) if word_timestamps else pair.decoder
    return OnnxWhisper(pair.encoder, decoder, threads=threads or threads_from_environment())

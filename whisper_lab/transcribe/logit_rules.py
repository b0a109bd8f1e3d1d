"""Which tokens may come next: the rules every Whisper decoder applies to the logits, in one place.

A rule sets the logits of forbidden tokens to -inf, so neither the argmax,
nor sampling, nor beam search can pick them. Each works on the logits of one
sequence (a float32 vector of the vocabulary's size, changed in place) and
knows the tokens generated so far (without the prompt). The ONNX decoders of
this lab apply exactly these rules, in this order; they are the rules of
OpenAI's `decoding.py` (SuppressTokens, SuppressBlank, ApplyTimestampRules),
which transformers' logits processors implement too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TokenIds:
    """The token ids the rules need, from the ONNX metadata (see onnx_whisper.WhisperSpec)."""

    eot: int  # <|endoftext|>
    no_timestamps: int  # <|notimestamps|>
    timestamp_begin: int  # <|0.00|>; every id from here on is a timestamp, 20 ms apart
    max_initial_timestamp_index: int  # the first timestamp may be at most <|1.00|>
    suppress_tokens: tuple[int, ...]  # symbols and special tokens Whisper must never write
    begin_suppress_tokens: tuple[int, ...]  # a blank and <|endoftext|>: never first


def suppress_non_speech(logits: np.ndarray, ids: TokenIds) -> None:
    """Never music notes, brackets, speaker marks or control tokens: Whisper's training captions
    used them for sounds, and they invite it to describe noise instead of transcribing speech."""
    logits[list(ids.suppress_tokens)] = -np.inf


def suppress_blank_start(logits: np.ndarray, generated: list[int], ids: TokenIds) -> None:
    """The first token may not be a blank or <|endoftext|>: an empty transcript is the no-speech
    rule's decision (see safeguards.py), not a shortcut the decoder may take."""
    if not generated:
        logits[list(ids.begin_suppress_tokens)] = -np.inf


def forbid_timestamps(logits: np.ndarray, ids: TokenIds) -> None:
    """Without timestamps (<|notimestamps|> in the prompt) only text and <|endoftext|> may follow."""
    logits[ids.timestamp_begin :] = -np.inf


def timestamp_rules(logits: np.ndarray, generated: list[int], ids: TokenIds) -> None:
    """Timestamps open and close segments: `<|0.00|> text <|2.40|><|2.40|> text <|5.00|>`.

    They come in pairs (one segment's end, the next one's start), never go back
    in time, and the window starts with one, within its first second. Without
    these rules the model can stamp backwards and the seeking loop never ends.
    """
    begin = ids.timestamp_begin
    logits[ids.no_timestamps] = -np.inf
    last_was_ts = len(generated) >= 1 and generated[-1] >= begin
    penultimate_was_ts = len(generated) < 2 or generated[-2] >= begin
    if last_was_ts:
        if penultimate_was_ts:
            logits[begin:] = -np.inf  # a pair just closed: text must follow
        else:
            logits[: ids.eot] = -np.inf  # a segment just ended: another timestamp or <|endoftext|>
    stamps = [t for t in generated if t >= begin]
    if stamps:
        # no going back; and a segment's end is later than its start, or seeking could stall
        floor = stamps[-1] if last_was_ts and not penultimate_was_ts else stamps[-1] + 1
        logits[begin:floor] = -np.inf
    else:  # the window must start with a timestamp, and not too late
        logits[:begin] = -np.inf
        logits[begin + ids.max_initial_timestamp_index + 1 :] = -np.inf


def prefer_timestamp(logits: np.ndarray, ids: TokenIds) -> None:
    """If all timestamps together are likelier than any single text token, take a timestamp:
    the model spreads its belief that a sentence ended over many possible times."""
    begin = ids.timestamp_begin
    finite = logits[np.isfinite(logits)]
    if finite.size == 0:
        return
    logprobs = logits - np.logaddexp.reduce(finite)
    if np.logaddexp.reduce(logprobs[begin:]) > logprobs[:begin].max():
        logits[:begin] = -np.inf


def apply_rules(logits: np.ndarray, generated: list[int], ids: TokenIds, timestamps: bool) -> np.ndarray:
    """All rules, in the reference's order, on one sequence's logits (float32, changed in place)."""
    suppress_non_speech(logits, ids)
    suppress_blank_start(logits, generated, ids)
    if not timestamps:
        forbid_timestamps(logits, ids)
        return logits
    timestamp_rules(logits, generated, ids)
    prefer_timestamp(logits, ids)
    return logits


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities along the last axis; -inf stays -inf (a forbidden token has probability 0)."""
    top = np.max(logits, axis=-1, keepdims=True)
    shifted = logits - top
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))

"""The checks that decide whether a decoded window can be trusted, one function per rule.

Each window is decoded, then judged with three numbers the decoder measured:

    compression ratio   len(text) / len(gzip(text)): ~1.5-2 for ordinary speech,
                        far above 2.4 when a phrase repeats ("1.1.1.1..."), because
                        gzip stores a repeat as a short back-reference
    average log-prob    the mean log-probability of the chosen tokens (<|endoftext|>
                        included): near 0 when the model is sure, below -1 when it
                        is guessing, as it does on noise or a passage it cannot hear
    no-speech prob      P(<|nospeech|>) right after <|startoftranscript|>: the model's
                        own verdict that the window holds no speech

The thresholds are OpenAI's (options.py); faster-whisper uses the same ones.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from .options import DecodingOptions


@dataclass
class WindowResult:
    """One decoding of one 30 s window."""

    tokens: list[int]  # without the prompt and without <|endoftext|>
    text: str
    sum_logprob: float  # of the chosen tokens, <|endoftext|> included
    no_speech_prob: float
    temperature: float
    compression_ratio: float = field(init=False)

    def __post_init__(self):
        self.compression_ratio = compression_ratio(self.text)

    @property
    def avg_logprob(self) -> float:
        return average_logprob(self.sum_logprob, len(self.tokens))


def compression_ratio(text: str) -> float:
    """How much gzip shrinks the text; a repetition loop shrinks a lot. (OpenAI uses gzip's zlib core.)"""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def average_logprob(sum_logprob: float, n_tokens: int) -> float:
    """Per token, counting <|endoftext|> too, as the reference does: an empty text is not 'certain'."""
    return sum_logprob / (n_tokens + 1)


def is_repetitive(result: WindowResult, options: DecodingOptions) -> bool:
    """A loop: greedy decoding that fell into repeating itself until the window was full."""
    limit = options.compression_ratio_threshold
    return limit is not None and result.compression_ratio > limit


def is_unsure(result: WindowResult, options: DecodingOptions) -> bool:
    """The model guessed: its tokens were unlikely even to itself."""
    limit = options.logprob_threshold
    return limit is not None and result.avg_logprob < limit


def is_silence(result: WindowResult, options: DecodingOptions) -> bool:
    """No speech: the model says so at the first step *and* was unsure of what it then wrote.

    Both are needed: P(<|nospeech|>) alone is high on some quiet but real speech,
    which is then transcribed confidently; a low log-probability alone is a hard
    passage, which deserves another try at a higher temperature, not silence.
    """
    if options.no_speech_threshold is None or result.no_speech_prob <= options.no_speech_threshold:
        return False
    return options.logprob_threshold is None or result.avg_logprob < options.logprob_threshold


def needs_fallback(result: WindowResult, options: DecodingOptions) -> bool:
    """Decode again at the next temperature? Not for silence: sampling would only invent words."""
    if is_silence(result, options):
        return False
    return is_repetitive(result, options) or is_unsure(result, options)


def decode_with_fallback(decode, options: DecodingOptions) -> tuple[WindowResult, list[WindowResult]]:
    """Call `decode(temperature)` at each temperature until a result passes the checks.

    Returns the result kept and every attempt (to report how often fallback fired).
    """
    attempts = []
    for temperature in options.temperatures:
        result = decode(temperature)
        attempts.append(result)
        if not needs_fallback(result, options):
            return result, attempts
    return best_failed_attempt(attempts, options), attempts


def best_failed_attempt(attempts: list[WindowResult], options: DecodingOptions) -> WindowResult:
    """Every temperature failed: keep the attempt the model found likeliest, preferring one that is no loop.

    OpenAI keeps the last, most random attempt; on speech that really is repetitive
    ("five, five, five, ...") every attempt compresses well, and that one is often
    gibberish ("hide hide hide"). faster-whisper keeps the likeliest, as we do.
    """
    no_loops = [r for r in attempts if not is_repetitive(r, options)]
    return max(no_loops or attempts, key=lambda r: r.avg_logprob)

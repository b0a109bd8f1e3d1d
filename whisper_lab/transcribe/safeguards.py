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

import re
import zlib
from dataclasses import dataclass, field

import numpy as np

from .options import DecodingOptions

# After a loop is caught, an attempt that passes the checks must still keep the window's speech:
# at least this many words per second of speech (speech_seconds). Measured on the large test set
# (362 real utterances): the slowest says 0.66 words per second of speech, the median 3.0; a digit
# said 40 times (trial_audio.repeated_word: 1, 5, 7, 9) is 1.5-2.0. Nine of the forty fives: 0.45.
MIN_WORDS_PER_SPEECH_SECOND = 0.5


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


def speech_seconds(samples: np.ndarray, sample_rate: int = 16_000, above_floor_db: float = 15.0,
                   below_loudest_db: float = 30.0) -> float:  # fmt: skip
    """Seconds of 20 ms frames at least `above_floor_db` louder than the window's quietest (its
    noise floor) and at most `below_loudest_db` quieter than its loudest (the speech's peaks).

    A rough measure of how much was said, enough to tell that a transcript dropped most of
    it: the pauses between words and a steady background (hiss, mains hum, a recording's own
    room noise) do not count, so noise and hum have next to none.
    """
    frame = sample_rate // 50
    n = len(samples) // frame
    if n == 0:
        return 0.0
    power = np.mean(np.square(samples[: n * frame].reshape(n, frame), dtype=np.float64), axis=1)
    level = 10 * np.log10(np.maximum(power, 1e-7))  # -70 dB: digital silence is no quieter than that
    floor, loudest = np.percentile(level, [5, 99])
    return float(np.count_nonzero(level > max(floor + above_floor_db, loudest - below_loudest_db))) / 50


def word_total(text: str) -> int:
    return len(re.findall(r"[\w']+", text))


def drops_speech(result: WindowResult, seconds_of_speech: float) -> bool:
    """Far fewer words than the window's speech holds: most of what was said is missing."""
    return word_total(result.text) < MIN_WORDS_PER_SPEECH_SECOND * seconds_of_speech


def needs_fallback(result: WindowResult, options: DecodingOptions) -> bool:
    """Decode again at the next temperature? Not for silence: sampling would only invent words."""
    if is_silence(result, options):
        return False
    return is_repetitive(result, options) or is_unsure(result, options)


def decode_with_fallback(decode, options: DecodingOptions,
                         seconds_of_speech: float = 0.0) -> tuple[WindowResult, list[WindowResult]]:  # fmt: skip
    """Call `decode(temperature)` at each temperature until a result passes the checks.

    Once a loop is caught, passing the checks is not enough: on speech that really is
    repetitive ("five, five, five, ...") a sampled attempt can stop early, after nine of
    forty fives, and a short text no longer compresses like a loop. An attempt that drops
    most of the window's speech (`seconds_of_speech`, see `speech_seconds`) is decoded again.

    Returns the result kept and every attempt (to report how often fallback fired).
    """
    attempts = []
    for temperature in options.temperatures:
        result = decode(temperature)
        attempts.append(result)
        loop_caught = is_repetitive(attempts[0], options)
        if not needs_fallback(result, options) and not (loop_caught and drops_speech(result, seconds_of_speech)):
            return result, attempts
    return best_failed_attempt(attempts, options, seconds_of_speech), attempts


def best_failed_attempt(attempts: list[WindowResult], options: DecodingOptions,
                        seconds_of_speech: float = 0.0) -> WindowResult:  # fmt: skip
    """Every temperature failed: keep the attempt the model found likeliest, preferring one that
    keeps the speech (after a loop), then one that is no loop.

    OpenAI keeps the last, most random attempt; on speech that really is repetitive
    ("five, five, five, ...") every attempt compresses well, and that one is often
    gibberish ("hide hide hide"). faster-whisper keeps the likeliest, as we do. A loop
    that repeats the spoken word beats a short text that silently left most of it out.
    """
    loop_caught = is_repetitive(attempts[0], options)
    kept_speech = [r for r in attempts if not (loop_caught and drops_speech(r, seconds_of_speech))] or attempts
    no_loops = [r for r in kept_speech if not is_repetitive(r, options)]
    return max(no_loops or kept_speech, key=lambda r: r.avg_logprob)

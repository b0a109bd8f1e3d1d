"""How to decode: Whisper's safeguards and their defaults, one definition for scripts 02 and 03.

Left alone, Whisper writes text for any sound: noise becomes a made-up sentence,
a hard passage becomes a phrase repeated until the window is full. OpenAI's
`transcribe()` (and faster-whisper, with the same numbers) guards against that:

* temperature fallback: decode at temperature 0 (the likeliest token each step);
  if the result looks like a loop (its text compresses too well) or the model
  was unsure of it (low average log-probability), decode the window again,
  sampling at temperature 0.2, then 0.4, ... 1.0;
* no-speech detection: a window whose `<|nospeech|>` probability is high *and*
  whose text the model was unsure of is silence or noise, and is skipped;
* the previous window's text as a prompt, so names and style carry over
  (dropped after a high-temperature fallback, which may have gone astray).

`--no-fallback` switches all of this off: plain greedy decoding, the lab's
original behaviour, kept to show what the safeguards fix.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
MIN_SPEECH_SECONDS = 0.3  # shorter than one short word: Whisper would still "hear" one


@dataclass(frozen=True)
class DecodingOptions:
    """The decoding settings of one transcription; the defaults are OpenAI's `transcribe()` defaults."""

    temperatures: tuple[float, ...] = TEMPERATURES  # tried in order until a result passes the checks
    compression_ratio_threshold: float | None = 2.4  # gzip ratio of the text above this: a loop
    logprob_threshold: float | None = -1.0  # average log-probability per token below this: unsure
    no_speech_threshold: float | None = 0.6  # P(<|nospeech|>) above this (and unsure): silence
    condition_on_previous_text: bool = True  # previous window's text as the prompt
    beam_size: int | None = None  # None: greedy at temperature 0; N: beam search with N beams
    best_of: int = 5  # candidates sampled at each temperature above 0; the likeliest is kept
    timestamps: bool = False  # segments with start and end times (always used beyond 30 s)
    word_timestamps: bool = False  # a start and end time for every word (transcribe/timing.py)
    seed: int = 0  # of the sampling generator: the same audio gives the same text

    @classmethod
    def plain_greedy(cls, **changes) -> DecodingOptions:
        """No safeguards: one greedy pass per window, nothing skipped, no prompt (--no-fallback)."""
        plain = cls(temperatures=(0.0,), compression_ratio_threshold=None, logprob_threshold=None,
                    no_speech_threshold=None, condition_on_previous_text=False)  # fmt: skip
        return replace(plain, **changes)

    @property
    def safeguarded(self) -> bool:
        return len(self.temperatures) > 1 or self.no_speech_threshold is not None


def options_from_flags(no_fallback: bool, beam_size: int | None, timestamps: bool) -> DecodingOptions:
    """The options of the scripts' --no-fallback, --beam-size and --timestamps flags."""
    from ..errors import LabError

    if beam_size is not None and not 1 <= beam_size <= 16:
        raise LabError(f"--beam-size {beam_size}: use a number of beams from 1 to 16 (5 is Whisper's usual)")
    chosen = DecodingOptions.plain_greedy() if no_fallback else DecodingOptions()
    return replace(chosen, beam_size=beam_size, timestamps=timestamps)

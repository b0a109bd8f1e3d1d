"""The host loop: a recording of any length through the one file, with Whisper's safeguards.

The graph decodes one window of at most 30 s per `session.run` and returns what
the rules need (tokens with timestamps, their bytes, no_speech_prob,
avg_logprob, speech_seconds). This loop is the rest of OpenAI's `transcribe()`,
the same steps as 03's (transcribe/segments.py) and as the page's (web/host.js):

    seek = 0
    while seek < the end:
        window = the next 30 s from seek
        run it at temperature 0, then 0.2, ... 1.0 until the result passes the checks:
            not a loop (compression ratio <= 2.4), not unsure (avg_logprob >= -1),
            and, once a loop was caught, not dropping the speech (words >= 0.5 per
            second of speech): safeguards.py
        silence (no_speech_prob > 0.6 and unsure)?  skip the whole window
        else cut the tokens into segments at their timestamps; the next window
             starts where the last complete segment ended, so no word is split
        the kept tokens become the next window's prompt (dropped after a
        result sampled above temperature 0.5, which may have gone astray)

One difference from 03: above temperature 0, 03 samples five candidates side
by side and keeps the likeliest (best_of=5); here each temperature is one
sample, since each run encodes the window again. The sampling is seeded inside
the file (its `seed` input, left at 0), so the same recording gives the same
text, in Python and in the page.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np

from ..audio.log_mel import HOP_LENGTH, N_FRAMES, SAMPLE_RATE
from ..transcribe.options import MIN_SPEECH_SECONDS, DecodingOptions
from ..transcribe.safeguards import WindowResult, best_failed_attempt, drops_speech, is_repetitive, is_silence, needs_fallback
from ..transcribe.segments import (
    FRAMES_PER_TIMESTAMP,
    NO_SPEECH_NOTE,
    SECONDS_PER_TIMESTAMP,
    TOO_SHORT_NOTE,
    Segment,
    Transcript,
    has_words,
    split_segments,
)


def judged(run) -> WindowResult:
    """The numbers the checks read, from one run (`session.OneWindow`)."""
    return WindowResult(run.tokens, run.text, run.avg_logprob * (len(run.tokens) + 1), run.no_speech_prob,
                        run.temperature)  # fmt: skip


def decode_window(model, window: np.ndarray, prompt: list[int], timestamps: bool, language: str, task: str,
                  options: DecodingOptions):  # fmt: skip
    """Temperature fallback on one window; returns the run kept and how many temperatures it took."""
    runs, results = [], []
    for temperature in options.temperatures:
        run = model.window(window, language, task, timestamps, prompt, temperature)
        runs.append(run)
        results.append(judged(run))
        loop_caught = is_repetitive(results[0], options)
        if not needs_fallback(results[-1], options) and not (loop_caught and drops_speech(results[-1], run.speech_seconds)):
            return run, len(runs)
    best = best_failed_attempt(results, options, runs[0].speech_seconds)
    return runs[results.index(best)], len(runs)


def transcribe(model, audio: np.ndarray, language: str = "en", task: str = "transcribe", timestamps: bool = False,
               options: DecodingOptions | None = None,
               progress: Callable[[float, float], None] | None = None) -> Transcript:  # fmt: skip
    """The whole recording through `model` (a `session.EndToEnd`), window by window."""
    options = options or DecodingOptions()
    if len(audio) < MIN_SPEECH_SECONDS * SAMPLE_RATE:
        return Transcript.empty(TOO_SHORT_NOTE)
    content_frames = len(audio) // HOP_LENGTH
    # beyond one window the timestamps tell where to go on, as OpenAI's transcribe() always uses them
    timestamps = timestamps or options.timestamps or content_frames > N_FRAMES
    begin = model.timestamp_begin
    transcript = Transcript("")
    kept_tokens: list[int] = []
    kept_bytes = b""
    prompt_from = 0
    seek = 0
    while seek < content_frames:
        if progress:
            progress(seek * HOP_LENGTH / SAMPLE_RATE, len(audio) / SAMPLE_RATE)
        frames = min(N_FRAMES, content_frames - seek)
        window = audio[seek * HOP_LENGTH : (seek + frames) * HOP_LENGTH]
        prompt = kept_tokens[prompt_from:] if options.condition_on_previous_text else []
        run, attempts = decode_window(model, window, prompt, timestamps, language, task, options)
        transcript.windows += 1
        transcript.fallbacks += attempts > 1
        if is_silence(judged(run), options):
            transcript.skipped += 1
            seek += frames
            continue
        if timestamps:
            pieces, advance = split_segments(run.tokens, begin, frames)
        else:
            pieces, advance = [(0, round(frames / FRAMES_PER_TIMESTAMP), run.tokens)], frames
        ends, first = [0, *run.text_end], 0  # the bytes of tokens i..j are text_bytes[ends[i]:ends[j]]
        offset = seek * HOP_LENGTH / SAMPLE_RATE
        for start, end, tokens in pieces:
            piece = run.text_bytes[ends[first] : ends[first + len(tokens)]]
            first += len(tokens)
            text = piece.decode("utf-8", errors="replace").strip()
            if start == end and timestamps or not text:
                continue  # an instantaneous or empty segment is no text (the reference drops it too)
            transcript.segments.append(Segment(offset + start * SECONDS_PER_TIMESTAMP,
                                               offset + end * SECONDS_PER_TIMESTAMP, text, tokens))  # fmt: skip
            kept_tokens += tokens
            kept_bytes += piece
        if not options.condition_on_previous_text or run.temperature > 0.5:
            prompt_from = len(kept_tokens)
        seek += advance
    transcript.text = kept_bytes.decode("utf-8", errors="replace").strip()
    if not has_words(transcript.text):
        return Transcript.empty(NO_SPEECH_NOTE, transcript.windows, transcript.skipped)
    return transcript


def stderr_progress(done: float, total: float) -> None:
    """`window at 1:30 of 5:20` on stderr, for recordings longer than one window."""
    if total > N_FRAMES * HOP_LENGTH / SAMPLE_RATE:
        clock = lambda s: f"{int(s // 60)}:{int(s % 60):02d}"  # noqa: E731
        print(f"window at {clock(done)} of {clock(total)}", file=sys.stderr, flush=True)

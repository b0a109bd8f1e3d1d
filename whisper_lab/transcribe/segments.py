"""A whole recording, window after window: seeking, segments, skipped silence, the previous text as prompt.

OpenAI's `transcribe()` loop, over our ONNX decoder:

    seek = 0
    while seek < the end:
        window = log-mel frames [seek, seek + 3000), zero-padded to 3000 (audio/log_mel.py)
        decode it (decoders.py), again at higher temperatures if it fails the checks (safeguards.py)
        silence?  skip the whole window
        else      cut the tokens into segments at their timestamps; the next window
                  starts where the last complete segment ended, so no word is split
        the text so far becomes the next window's prompt (<|startofprev|> ...)

Clips up to 30 s without `--timestamps` are one window decoded without
timestamp tokens, as script 02 does: one segment from 0 to the clip's end.
With word timestamps, each window's text is aligned to its audio once it is
decoded (timing.py); the words never change the text or the seeking.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..audio.log_mel import (
    HOP_LENGTH,
    N_FRAMES,
    N_SAMPLES,
    SAMPLE_RATE,
    ContentLogMel,
    pad_frames,
)
from .beam_search import beam_search
from .decoders import Decoded, Window, rank_by_average_logprob, sample_or_greedy
from .options import MIN_SPEECH_SECONDS, DecodingOptions
from .safeguards import WindowResult, decode_with_fallback, is_silence, speech_seconds
from .timing import Word, align_window

FRAMES_PER_TIMESTAMP = 2  # the encoder halves 3000 mel frames to 1500 positions: one timestamp step is 20 ms
SECONDS_PER_TIMESTAMP = FRAMES_PER_TIMESTAMP * HOP_LENGTH / SAMPLE_RATE  # 0.02
NO_SPEECH_NOTE = "no speech detected in the audio (only silence, noise or other sounds); nothing to transcribe"
TOO_SHORT_NOTE = (f"the audio is too short to hold a word (under {MIN_SPEECH_SECONDS} s); "
                  "nothing to transcribe")  # fmt: skip


def decode_at_temperature(whisper, window: Window, temperature: float, beam_size: int | None, best_of: int,
                          rng: np.random.Generator) -> Decoded:  # fmt: skip
    """One attempt of the fallback loop: beam search or greedy at 0, the best of `best_of` samples above."""
    if temperature > 0:
        return rank_by_average_logprob(sample_or_greedy(whisper, window, temperature, best_of, rng))
    if beam_size:
        return beam_search(whisper, window, beam_size)
    return sample_or_greedy(whisper, window)[0]


@dataclass
class Segment:
    start: float  # seconds from the start of the recording
    end: float
    text: str
    tokens: list[int]
    words: list[Word] = field(default_factory=list)  # with word timestamps only


@dataclass
class Transcript:
    """The result of one transcription, and what the safeguards did along the way."""

    text: str
    segments: list[Segment] = field(default_factory=list)
    windows: int = 0  # 30 s windows decoded
    skipped: int = 0  # windows judged silence and left out
    fallbacks: int = 0  # windows decoded again at a higher temperature
    note: str | None = None  # for stderr: why the transcript is empty

    @classmethod
    def empty(cls, note: str, windows: int = 0, skipped: int = 0) -> Transcript:
        return cls("", windows=windows, skipped=skipped, note=note)


def has_words(text: str) -> bool:
    """Any letter or digit at all? ". . . ." (what some fallbacks leave of noise) is not a transcript."""
    return any(ch.isalnum() for ch in text)


def timestamp_line(segment: Segment) -> str:
    """`[00:01.240 --> 00:04.980]  text`, as OpenAI's command line prints a segment."""

    def clock(seconds: float) -> str:
        minutes, rest = divmod(seconds, 60)
        hours, minutes = divmod(int(minutes), 60)
        return (f"{hours:02d}:" if hours else "") + f"{minutes:02d}:{rest:06.3f}"

    return f"[{clock(segment.start)} --> {clock(segment.end)}]  {segment.text}"


def split_segments(tokens: list[int], timestamp_begin: int, window_frames: int) -> tuple[list[tuple[int, int, list[int]]], int]:
    """Cut a window's tokens into segments at timestamp pairs; say how many mel frames to move on.

    Returns ([(start_step, end_step, tokens), ...], frames to advance), steps counted in
    20 ms timestamp units from the window's start. A segment is `<|t0|> text <|t1|>`;
    two timestamps in a row close one segment and open the next. If the window ends
    inside a segment (its closing timestamp never came), that unfinished text is
    dropped and decoded again from the next window, which starts where the last
    complete segment ended.
    """
    is_ts = [t >= timestamp_begin for t in tokens]
    pair_ends = [i for i in range(1, len(tokens)) if is_ts[i - 1] and is_ts[i]]
    speech_ended = is_ts[-2:] == [False, True]  # closed by a lone timestamp: nothing unfinished
    if not pair_ends:  # one segment, or none: the whole window is used
        stamps = [t - timestamp_begin for t in tokens if t >= timestamp_begin]
        end = stamps[-1] if stamps and stamps[-1] > 0 else window_frames // FRAMES_PER_TIMESTAMP
        start = stamps[0] if stamps else 0
        return ([(start, end, tokens)] if tokens else []), window_frames
    cuts = pair_ends + ([len(tokens)] if speech_ended else [])
    segments, last = [], 0
    for cut in cuts:
        part = tokens[last:cut]
        segments.append((part[0] - timestamp_begin, part[-1] - timestamp_begin, part))
        last = cut
    if speech_ended:
        return segments, window_frames
    advance = (tokens[last - 1] - timestamp_begin) * FRAMES_PER_TIMESTAMP
    if advance <= 0:  # no progress possible from this window: keep it all and move on
        return segments, window_frames
    return segments, advance


def transcribe_audio(whisper, audio: np.ndarray, language: str, task: str, options: DecodingOptions) -> Transcript:
    """The whole recording through the ONNX pair, with the safeguards of `options`."""
    if len(audio) < MIN_SPEECH_SECONDS * SAMPLE_RATE:
        return Transcript.empty(TOO_SHORT_NOTE)
    # word timestamps decode with timestamp tokens too, as OpenAI's transcribe() always does
    timestamps = options.timestamps or options.word_timestamps or len(audio) > N_SAMPLES
    # the log-mel of the whole file: one loudness scale for all windows, as the reference; computed
    # window by window as the loop reaches them, so memory does not grow with the recording
    mel = ContentLogMel(audio, whisper.spec.n_mels)
    content_frames = mel.shape[-1]
    rng = np.random.default_rng(options.seed)  # one generator per recording: same audio, same text
    transcript = Transcript("")
    all_tokens: list[int] = []
    prompt_from = 0  # the previous text starts here in all_tokens
    seek = 0
    last_speech = 0.0  # where the last aligned word ended (word timestamps)
    while seek < content_frames:
        frames = min(N_FRAMES, content_frames - seek)
        cross_k, cross_v = whisper.encode(pad_frames(mel[:, seek : seek + frames])[None])
        previous = all_tokens[prompt_from:] if options.condition_on_previous_text else []
        prompt, sot_index = whisper.prompt_with_previous(language, task, timestamps, previous)
        window = Window(cross_k, cross_v, prompt, sot_index, timestamps, whisper.max_new_tokens(len(prompt)))

        def decode(temperature: float, window: Window = window) -> WindowResult:
            d = decode_at_temperature(whisper, window, temperature, options.beam_size, options.best_of, rng)
            return WindowResult(d.tokens, whisper.text(d.tokens), d.sum_logprob, d.no_speech_prob, temperature)

        said = speech_seconds(audio[seek * HOP_LENGTH : (seek + frames) * HOP_LENGTH])
        result, attempts = decode_with_fallback(decode, options, said)
        transcript.windows += 1
        transcript.fallbacks += len(attempts) > 1
        if is_silence(result, options):
            transcript.skipped += 1
            seek += frames
            continue
        offset = seek * HOP_LENGTH / SAMPLE_RATE
        if timestamps:
            pieces, advance = split_segments(result.tokens, whisper.spec.timestamp_begin, frames)
        else:
            pieces, advance = [(0, round(frames / FRAMES_PER_TIMESTAMP), result.tokens)], frames
        kept = []
        for start, end, tokens in pieces:
            text = whisper.text(tokens)
            if start == end and timestamps or not text:
                continue  # an instantaneous or empty segment is no text (the reference drops it too)
            kept.append(Segment(offset + start * SECONDS_PER_TIMESTAMP, offset + end * SECONDS_PER_TIMESTAMP, text, tokens))
            all_tokens += tokens
        if options.word_timestamps and kept:
            last_speech = align_window(whisper, window.cross_k, window.cross_v, kept, frames, offset,
                                       language, task, last_speech)  # fmt: skip
        transcript.segments += kept
        # a high-temperature result may have gone astray: do not let it steer the next window
        if not options.condition_on_previous_text or result.temperature > 0.5:
            prompt_from = len(all_tokens)
        seek += advance
    transcript.text = whisper.text(all_tokens)
    if not has_words(transcript.text):
        return Transcript.empty(NO_SPEECH_NOTE, transcript.windows, transcript.skipped)
    return transcript

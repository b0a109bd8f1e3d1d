"""Word timestamps from where the decoder listens: OpenAI's `timing.py`, in plain numpy.

Each time the decoder writes a token, each of its cross-attention heads spreads
its attention over the 1500 encoder frames (20 ms each). Most heads look all
over the window; a few, the checkpoint's *alignment heads*, look at the frames
where the token is spoken. Reading them gives a time for every word:

    1. feed the window's text once more, all at once, to the attention decoder:
         <|startoftranscript|> <|en|> <|transcribe|> <|notimestamps|> text <|endoftext|>
       and keep the alignment heads' scores (onnx_whisper.alignment_scores)
    2. softmax over the frames that hold audio (the zero padding is left out)
    3. for each frame, standardise across tokens; smooth each token's row over
       time with a median filter of 7 frames; average the heads
       -> a tokens x frames matrix, high where a token is heard
    4. dynamic time warping: the cheapest path through -matrix from (first
       token, first frame) to (last token, last frame), moving right, down or
       diagonally, so that time only moves forward as the text does
    5. a token starts at the frame where the path enters its row; a word starts
       with its first token and ends where the next word starts
    6. words from tokens (a space starts a word), punctuation glued to its word

`add_word_timestamps` then applies OpenAI's corrections for words stretched
over a pause, and tightens each segment to its words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

TOKENS_PER_SECOND = 50  # the encoder's frames: 1500 per 30 s window, one per 20 ms
MEDIAN_FILTER_WIDTH = 7
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"
SENTENCE_END_MARKS = ".。!！?？"
NO_SPACE_LANGUAGES = {"zh", "ja", "th", "lo", "my", "yue"}  # no spaces between words: split per character
ASCII_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"  # Python's string.punctuation


@dataclass
class Word:
    word: str  # as the tokenizer writes it, with its leading space
    start: float  # seconds from the start of the recording (from the window's start inside this module)
    end: float
    probability: float | None  # the decoder's mean probability of the word's tokens (None: not known)
    tokens: list[int] = field(default_factory=list)


@dataclass
class Alignment:
    """What one window's alignment computed, kept for the lab's picture (explore/attention_picture.py)."""

    matrix: np.ndarray  # (n_text_tokens + 1, n_frames): heads averaged, after normalising and smoothing
    text_indices: np.ndarray  # the DTW path: token row ...
    time_indices: np.ndarray  # ... and frame column of each step
    words: list[Word]


# --- the numerical steps ---------------------------------------------------------------------


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def median_filter(x: np.ndarray, width: int) -> np.ndarray:
    """Median over `width` neighbours along the last axis, the edges mirrored (as OpenAI's, torch's "reflect")."""
    if width % 2 != 1:
        raise ValueError("the median filter's width must be odd")
    pad = width // 2
    if x.shape[-1] <= pad:  # too short to mirror: left as it is
        return x
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, width, axis=-1)
    return np.sort(windows, axis=-1)[..., pad]


def dtw(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cheapest monotonic path through `cost` (tokens x frames) from its top-left to its bottom-right.

    total[i, j] = cost[i, j] + min(total[i-1, j-1], total[i-1, j], total[i, j-1]). Each
    cell needs its left, upper and upper-left neighbours only, so all cells of one
    anti-diagonal (i + j constant) are computed at once: a numpy step per diagonal
    instead of a Python step per cell. Ties go as in OpenAI's code (diagonal only if
    strictly cheapest, then up, else left); the totals are float32 as there.
    Returns the path's row and column indices, one pair per step.
    """
    n, m = cost.shape
    total = np.full((n + 1, m + 1), np.inf, dtype=np.float32)
    total[0, 0] = 0
    trace = np.full((n + 1, m + 1), -1, dtype=np.int8)
    for diagonal in range(2, n + m + 1):
        i = np.arange(max(1, diagonal - m), min(n, diagonal - 1) + 1)
        j = diagonal - i
        c0, c1, c2 = total[i - 1, j - 1], total[i - 1, j], total[i, j - 1]
        step = np.where((c0 < c1) & (c0 < c2), 0, np.where((c1 < c0) & (c1 < c2), 1, 2))
        total[i, j] = cost[i - 1, j - 1] + np.choose(step, [c0, c1, c2])
        trace[i, j] = step
    return _backtrace(trace)


def _backtrace(trace: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    i, j = trace.shape[0] - 1, trace.shape[1] - 1
    trace[0, :] = 2  # along the top edge the path can only have come from the left
    trace[:, 0] = 1  # along the left edge, only from above
    path = []
    while i > 0 or j > 0:
        path.append((i - 1, j - 1))
        step = trace[i, j]
        if step == 0:
            i, j = i - 1, j - 1
        elif step == 1:
            i -= 1
        else:
            j -= 1
    rows, columns = np.array(path[::-1]).T
    return rows, columns


def attention_matrix(scores: np.ndarray, n_frames: int, medfilt_width: int = MEDIAN_FILTER_WIDTH) -> np.ndarray:
    """Alignment heads' scores (heads, tokens, 1500) -> (tokens, n_frames // 2): steps 2 and 3 above.

    `n_frames` counts mel frames (100 per second) of the window that hold audio; the
    encoder halves them. Standardising each frame across tokens removes what every
    token looks at (the start of the window, loud frames) and leaves what sets one
    token apart; the median filter removes one-frame spikes.
    """
    weights = softmax(scores[:, :, : n_frames // 2].astype(np.float64))
    mean, std = weights.mean(axis=-2, keepdims=True), weights.std(axis=-2, keepdims=True)
    weights = median_filter((weights - mean) / std, medfilt_width)
    return weights.mean(axis=0)


# --- tokens into words -----------------------------------------------------------------------


def split_tokens_on_unicode(tokens: list[int], decode: Callable[[list[int]], str]) -> tuple[list[str], list[list[int]]]:
    """Group tokens into pieces that decode to whole characters (a token may hold half a UTF-8 character)."""
    replacement = "\ufffd"
    decoded_full = decode(tokens)
    pieces, piece_tokens, current, offset = [], [], [], 0
    for token in tokens:
        current.append(token)
        decoded = decode(current)
        position = offset + decoded.index(replacement) if replacement in decoded else -1
        if replacement not in decoded or position >= len(decoded_full) or decoded_full[position] == replacement:
            pieces.append(decoded)
            piece_tokens.append(current)
            current = []
            offset += len(decoded)
    return pieces, piece_tokens


def split_tokens_on_spaces(tokens: list[int], decode: Callable[[list[int]], str]) -> tuple[list[str], list[list[int]]]:
    """Words: a piece that starts with a space, or is punctuation, starts a new word; others continue one."""
    words: list[str] = []
    word_tokens: list[list[int]] = []
    for piece, piece_tokens in zip(*split_tokens_on_unicode(tokens, decode)):
        if not words or piece.startswith(" ") or piece.strip() in ASCII_PUNCTUATION:
            words.append(piece)
            word_tokens.append(list(piece_tokens))
        else:
            words[-1] += piece
            word_tokens[-1].extend(piece_tokens)
    return words, word_tokens


def split_to_word_tokens(tokens: list[int], decode, language: str) -> tuple[list[str], list[list[int]]]:
    if language in NO_SPACE_LANGUAGES:
        return split_tokens_on_unicode(tokens, decode)
    return split_tokens_on_spaces(tokens, decode)


def merge_punctuations(words: list[Word], prepended: str = PREPEND_PUNCTUATIONS,
                       appended: str = APPEND_PUNCTUATIONS) -> None:  # fmt: skip
    """Glue an opening quote or bracket to the next word and a comma, full stop or closing quote to the
    previous one (in place; the emptied entries keep word "" and no tokens), as OpenAI does."""
    i, j = len(words) - 2, len(words) - 1
    while i >= 0:
        previous, following = words[i], words[j]
        if previous.word.startswith(" ") and previous.word.strip() in prepended:
            following.word, following.tokens = previous.word + following.word, previous.tokens + following.tokens
            previous.word, previous.tokens = "", []
        else:
            j = i
        i -= 1
    i, j = 0, 1
    while j < len(words):
        previous, following = words[i], words[j]
        if not previous.word.endswith(" ") and following.word in appended:
            previous.word, previous.tokens = previous.word + following.word, previous.tokens + following.tokens
            following.word, following.tokens = "", []
        else:
            i = j
        j += 1


# --- one window --------------------------------------------------------------------------------


def find_alignment(scores: np.ndarray, logits: np.ndarray, first_row: int, text_tokens: list[int], n_frames: int,
                   eot: int, decode, language: str) -> Alignment:  # fmt: skip
    """Times of the words of `text_tokens` in one window, in seconds from the window's start.

    scores  (heads, n_fed, 1500): the alignment heads for every fed token (the prompt,
            the text, <|endoftext|>); row r is the decoder's state when it predicts token r + 1
    logits  (n_fed, vocab): the same run's logits, for each word's probability
    first_row  the row that predicts the first text token (<|notimestamps|>'s position)
    """
    matrix = attention_matrix(scores, n_frames)[first_row : first_row + len(text_tokens) + 1]
    text_indices, time_indices = dtw(-matrix)
    words, word_tokens = split_to_word_tokens(text_tokens, decode, language)
    rows = logits[first_row : first_row + len(text_tokens), :eot].astype(np.float64)  # text tokens only
    token_probs = softmax(rows)[np.arange(len(text_tokens)), text_tokens]

    # where the path enters each row: the start of each text token, then of <|endoftext|>
    jumps = np.pad(np.diff(text_indices), (1, 0), constant_values=1).astype(bool)
    jump_times = time_indices[jumps] / TOKENS_PER_SECOND
    boundaries = np.pad(np.cumsum([len(t) for t in word_tokens]), (1, 0))
    timed = [Word(word, float(jump_times[a]), float(jump_times[b]), float(np.mean(token_probs[a:b])), tokens)
             for word, tokens, a, b in zip(words, word_tokens, boundaries[:-1], boundaries[1:])]  # fmt: skip
    return Alignment(matrix, text_indices, time_indices, timed)


def _clip_long_words(words: list[Word], max_duration: float) -> None:
    """A word after (or a mark ending) a sentence that lasts over twice the median is mostly pause: cut it."""
    for i in range(1, len(words)):
        if words[i].end - words[i].start > max_duration:
            if words[i].word in SENTENCE_END_MARKS:
                words[i].end = words[i].start + max_duration
            elif words[i - 1].word in SENTENCE_END_MARKS:
                words[i].start = words[i].end - max_duration


def add_word_timestamps(segments: list, alignment: Alignment, offset: float, last_speech: float, eot: int) -> float:
    """Give each of one window's `segments` its `words` (times from the recording's start); returns the
    end of the last word, the `last_speech` of the next window.

    OpenAI's corrections, kept as they are: a word is at most twice the median word
    length (at most 0.7 s) where a sentence ends or after a pause, and each segment's
    start and end move to its words' unless a word would then stretch over half a
    second past the segment's timestamps.
    """
    words = alignment.words
    durations = np.array([w.end - w.start for w in words])
    durations = durations[durations.nonzero()]
    median_duration = min(0.7, float(np.median(durations))) if len(durations) else 0.0
    max_duration = median_duration * 2
    if len(durations):
        _clip_long_words(words, max_duration)
    merge_punctuations(words)

    index = 0
    for segment in segments:
        n_tokens = sum(t < eot for t in segment.tokens)  # its text tokens, as the alignment counted them
        saved, kept = 0, []
        while index < len(words) and saved < n_tokens:
            w = words[index]
            if w.word:
                kept.append(Word(w.word, round(offset + w.start, 2), round(offset + w.end, 2), w.probability, w.tokens))
            saved += len(w.tokens)
            index += 1
        if kept:
            _fit_segment_to_words(segment, kept, last_speech, median_duration, max_duration)
            last_speech = segment.end
        segment.words = kept
    return last_speech


def _fit_segment_to_words(segment, words: list[Word], last_speech: float, median_duration: float,
                          max_duration: float) -> None:  # fmt: skip
    first = words[0]
    # the first word after a pause: the attention often starts it in the pause
    if first.end - last_speech > median_duration * 4 and (
        first.end - first.start > max_duration or (len(words) > 1 and words[1].end - first.start > max_duration * 2)
    ):
        if len(words) > 1 and words[1].end - words[1].start > max_duration:
            boundary = max(words[1].end / 2, words[1].end - max_duration)
            first.end = words[1].start = boundary
        first.start = max(0.0, first.end - max_duration)
    # the segment's own timestamps win over a first word that starts far too early ...
    if segment.start < first.end and segment.start - 0.5 > first.start:
        first.start = max(0.0, min(first.end - median_duration, segment.start))
    else:
        segment.start = first.start
    # ... or a last word that ends far too late
    last = words[-1]
    if segment.end > last.start and segment.end + 0.5 < last.end:
        last.end = max(last.start + median_duration, segment.end)
    else:
        segment.end = last.end


def window_alignment(whisper, cross_k: np.ndarray, cross_v: np.ndarray, text_tokens: list[int], n_frames: int,
                     language: str, task: str) -> Alignment:  # fmt: skip
    """Steps 1-6 for one window: `whisper` is an OnnxWhisper with the attention decoder, `cross_k`,
    `cross_v` the window's encoder output, `n_frames` its mel frames that hold audio."""
    eot = whisper.spec.eot
    # OpenAI's alignment prompt: no previous text, no timestamps; <|notimestamps|> predicts the first word
    prompt = whisper.prompt(language, task, timestamps=False)
    scores, logits = whisper.alignment_scores([*prompt, *text_tokens, eot], cross_k, cross_v)
    code = whisper.spec.language_names.get(language.lower(), language)

    def decode(tokens: list[int]) -> str:
        return whisper.tokenizer.decode(tokens, skip_special_tokens=False)

    return find_alignment(scores, logits, len(prompt) - 1, text_tokens, n_frames, eot, decode, code)


def align_window(whisper, cross_k: np.ndarray, cross_v: np.ndarray, segments: list, n_frames: int, offset: float,
                 language: str, task: str, last_speech: float) -> float:  # fmt: skip
    """Give the `segments` decoded from one window their words; returns the new `last_speech`."""
    text_tokens = [t for segment in segments for t in segment.tokens if t < whisper.spec.eot]
    if not text_tokens:
        return last_speech
    alignment = window_alignment(whisper, cross_k, cross_v, text_tokens, n_frames, language, task)
    return add_word_timestamps(segments, alignment, offset, last_speech, whisper.spec.eot)

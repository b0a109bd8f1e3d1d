"""A transcript as a file: plain text, SubRip subtitles (.srt), WebVTT (.vtt) or JSON.

Subtitles are cues: a time span and the text shown during it. Without word
timestamps each segment is one cue; with them, a segment's words are grouped
into cues of at most `MAX_CUE_CHARS` characters (a subtitle line), each from
its first word's start to its last word's end, so the text appears as it is
spoken. Whatever the times the model gave, a player gets cues that

    * follow each other: a cue starts no earlier than the one before it ended
      (segments of two windows, or a word stretched into a pause, may overlap);
    * last at least a millisecond, and never run past the end of the audio
      (Whisper may put the last timestamp of a window after the speech).

Times are rounded to milliseconds (what both formats write) before these rules
are applied, so the rounding cannot break them again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from .segments import Transcript

FORMATS = ("txt", "srt", "vtt", "json")
MAX_CUE_CHARS = 42  # the usual limit of one subtitle line (BBC, Netflix guidelines: 37-42)


@dataclass
class Cue:
    start_ms: int
    end_ms: int
    text: str


def _one_line(text: str) -> str:
    """Cue text on one line: a blank line would end the cue in both formats."""
    return " ".join(text.split())


def _spans(transcript: Transcript) -> list[tuple[float, float, str]]:
    """(start, end, text) of each cue before the rules: segments, or groups of a segment's words."""
    spans = []
    for segment in transcript.segments:
        if not segment.words:
            spans.append((segment.start, segment.end, segment.text))
            continue
        group: list = []
        for word in segment.words:
            if group and len("".join(w.word for w in group + [word]).strip()) > MAX_CUE_CHARS:
                spans.append((group[0].start, group[-1].end, "".join(w.word for w in group)))
                group = []
            group.append(word)
        spans.append((group[0].start, group[-1].end, "".join(w.word for w in group)))
    return spans


def make_cues(transcript: Transcript, duration: float) -> list[Cue]:
    """The transcript's cues, in order, never overlapping, none past `duration` (seconds)."""
    end_of_audio = int(duration * 1000)
    cues: list[Cue] = []
    for start, end, text in _spans(transcript):
        text = _one_line(text)
        if not text:
            continue
        start_ms = max(round(start * 1000), cues[-1].end_ms if cues else 0)
        end_ms = min(max(round(end * 1000), start_ms + 1), end_of_audio)
        if end_ms <= start_ms:  # no time left before the end of the audio: show it with the cue before
            if cues:
                cues[-1].text += " " + text
            elif end_of_audio > 0:
                cues.append(Cue(0, end_of_audio, text))
            continue
        cues.append(Cue(start_ms, end_ms, text))
    return cues


def _clock(ms: int, separator: str) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"


def srt_text(cues: list[Cue]) -> str:
    """SubRip: a number, `00:00:01,240 --> 00:00:04,980`, the text, a blank line."""
    return "".join(f"{i}\n{_clock(c.start_ms, ',')} --> {_clock(c.end_ms, ',')}\n{c.text}\n\n"
                   for i, c in enumerate(cues, start=1))  # fmt: skip


def _vtt_escape(text: str) -> str:
    """In WebVTT cue text `&` starts an entity and `<` a tag; `-->` would read as a timing line."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"-{2,}&gt;", "-&gt;", text)


def vtt_text(cues: list[Cue]) -> str:
    """WebVTT: the `WEBVTT` header, then `00:00:01.240 --> 00:00:04.980` and the text of each cue."""
    body = "".join(f"{_clock(c.start_ms, '.')} --> {_clock(c.end_ms, '.')}\n{_vtt_escape(c.text)}\n\n" for c in cues)
    return "WEBVTT\n\n" + body


def json_text(transcript: Transcript, duration: float, language: str) -> str:
    """The whole transcript: text, language, duration, segments with their tokens and (if any) words."""

    def seconds(t: float) -> float:
        return round(min(max(t, 0.0), duration), 3)

    segments = []
    for i, s in enumerate(transcript.segments):
        entry = {"id": i, "start": seconds(s.start), "end": seconds(s.end), "text": s.text, "tokens": s.tokens}
        if s.words:
            entry["words"] = [{"word": w.word, "start": seconds(w.start), "end": seconds(w.end),
                               "probability": None if w.probability is None else round(w.probability, 4)}
                              for w in s.words]  # fmt: skip
        segments.append(entry)
    document = {"text": transcript.text, "language": language, "duration": round(duration, 3), "segments": segments}
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def txt_text(transcript: Transcript) -> str:
    """One segment per line, as OpenAI's `whisper --output_format txt` writes it."""
    return "".join(_one_line(s.text) + "\n" for s in transcript.segments)


def render(transcript: Transcript, fmt: str, duration: float, language: str) -> str:
    if fmt == "srt":
        return srt_text(make_cues(transcript, duration))
    if fmt == "vtt":
        return vtt_text(make_cues(transcript, duration))
    if fmt == "json":
        return json_text(transcript, duration, language)
    if fmt == "txt":
        return txt_text(transcript)
    raise ValueError(f"unknown format {fmt!r}")

"""Subtitles and the other output formats: files a standard parser reads, cues a player can show.

The parsers are the PyPI `srt` and `webvtt-py` packages, not our own code. Every
cue must start no earlier than the one before it ended, last a moment, and end
by the end of the audio, also for long recordings whose segments come from seeking.
"""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest
import srt
import webvtt
from conftest import run_script

from whisper_lab.audio.loading import SAMPLE_RATE, load_audio
from whisper_lab.audio.speech_data import JFK, librivox_utterances, write_concatenation
from whisper_lab.transcribe.segments import Segment, Transcript
from whisper_lab.transcribe.subtitles import MAX_CUE_CHARS, make_cues, render
from whisper_lab.transcribe.timing import Word


def srt_cues(text: str) -> list[tuple[float, float, str]]:
    return [(s.start / timedelta(seconds=1), s.end / timedelta(seconds=1), s.content) for s in srt.parse(text)]


def vtt_cues(path) -> list[tuple[float, float, str]]:
    return [(c.start_in_seconds + c.start_time.milliseconds / 1000, c.end_in_seconds + c.end_time.milliseconds / 1000,
             c.text) for c in webvtt.read(str(path))]  # fmt: skip


def assert_playable(cues: list[tuple[float, float, str]], duration: float) -> None:
    assert cues, "no cues"
    previous_end = 0.0
    for start, end, text in cues:
        assert text.strip() and "\n" not in text.strip()
        assert previous_end <= start < end <= duration + 1e-9, (previous_end, start, end, duration)
        previous_end = end


def awkward_transcript() -> Transcript:
    """Times as a model can give them: two windows' segments overlapping, one word running into the
    next segment, text after the end of the audio, and characters that mean something in WebVTT."""
    words = [Word(" Fish", 0.5, 1.0, 0.9), Word(" &", 1.0, 1.2, 0.9), Word(" chips", 1.2, 4.6, 0.9)]
    segments = [Segment(0.5, 4.5, "Fish & chips", [1, 2, 3], words),
                Segment(4.2, 6.0, "a <b> tag --> arrow", [4]),
                Segment(5.9, 5.9, "instant", [5]),
                Segment(9.5, 12.0, "past the end", [6])]  # fmt: skip
    return Transcript("Fish & chips a <b> tag --> arrow instant past the end", segments)


def test_cues_are_ordered_and_inside_the_audio(tmp_path):
    transcript, duration = awkward_transcript(), 8.0
    cues = srt_cues(render(transcript, "srt", duration, "en"))
    assert_playable(cues, duration)
    assert cues[0][2] == "Fish & chips" and cues[0][:2] == (0.5, 4.6)  # the words' times, not the segment's
    assert " ".join(c[2] for c in cues).endswith("past the end")  # no text lost: shown with the last cue
    path = tmp_path / "awkward.vtt"
    path.write_text(render(transcript, "vtt", duration, "en"))
    vtt = vtt_cues(path)
    assert_playable(vtt, duration)
    assert [c[:2] for c in vtt] == [c[:2] for c in cues]
    assert "&lt;b&gt;" in path.read_text() and "-->" not in path.read_text().split("\n", 4)[-1].replace(" --> ", "")


def test_words_are_grouped_into_subtitle_lines():
    words = [Word(f" word{i}", i * 0.4, i * 0.4 + 0.3, 1.0) for i in range(30)]
    transcript = Transcript("", [Segment(0.0, 12.0, "".join(w.word for w in words).strip(), [], words)])
    cues = make_cues(transcript, 12.0)
    assert all(len(c.text) <= MAX_CUE_CHARS for c in cues) and len(cues) > 3
    assert " ".join(c.text for c in cues) == transcript.segments[0].text
    assert cues[0].start_ms == 0 and cues[-1].end_ms == round((29 * 0.4 + 0.3) * 1000)


def test_txt_and_json():
    transcript = awkward_transcript()
    assert render(transcript, "txt", 8.0, "en").splitlines()[0] == "Fish & chips"
    document = json.loads(render(transcript, "json", 8.0, "en"))
    assert document["segments"][0]["words"][2] == {"word": " chips", "start": 1.2, "end": 4.6, "probability": 0.9}
    assert all(s["end"] <= 8.0 for s in document["segments"])


@pytest.fixture(scope="module")
def long_recording(tmp_path_factory):
    """JFK and five LibriVox sentences in one file: over 30 s, so 03 seeks window by window."""
    path = tmp_path_factory.mktemp("long") / "long.wav"
    write_concatenation([JFK, *librivox_utterances()], path, gap_seconds=1.0)
    duration = len(load_audio(path)) / SAMPLE_RATE
    assert duration > 30
    return path, duration


@pytest.mark.parametrize("words, fmt", [(False, "srt"), pytest.param(True, "vtt", marks=pytest.mark.slow)],
                         ids=["segments-srt", "words-vtt"])  # word times on a long recording: a minute
def test_03_subtitles_of_a_long_recording(exported_run, long_recording, tmp_path, words, fmt):
    audio, duration = long_recording
    flags = ["--word-timestamps"] if words else []
    out = tmp_path / f"long.{fmt}"
    result = run_script("03-export-encoder-decoder.py", "--precision", "int8", "--output-dir", exported_run[0],
                        "--transcribe", audio, *flags, "--output", out)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and f"wrote {out}" in result.stderr
    cues = srt_cues(out.read_text()) if fmt == "srt" else vtt_cues(out)
    assert_playable(cues, duration)
    assert len(cues) >= 6 and cues[-1][1] > 30  # the second window's speech is there too
    text = " ".join(c[2] for c in cues).lower()
    assert "fellow americans" in text and "amiable himself" in text  # the first and the last sentence
    if words:
        assert all(len(c[2]) <= MAX_CUE_CHARS for c in cues)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")], "a temporary file was left"


def test_03_stdout_formats_and_the_default_printout(exported_run):
    out = exported_run[0]
    default = run_script("03-export-encoder-decoder.py", "--precision", "int8", "--output-dir", out, "--transcribe", JFK.path)
    assert default.returncode == 0 and default.stdout == f"Transcription:\n\n{JFK.text}\n"
    vtt = run_script("03-export-encoder-decoder.py", "--precision", "int8", "--output-dir", out, "--transcribe", JFK.path,
                     "--output-format", "vtt")  # fmt: skip
    assert vtt.returncode == 0 and vtt.stdout.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:11.000\n")
    assert np.isclose(srt_cues(render(Transcript(JFK.text, [Segment(0, 11.0, JFK.text, [])]), "srt", 11.0, "en"))[0][1], 11.0)

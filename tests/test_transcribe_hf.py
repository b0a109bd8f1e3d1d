"""Script 02 as a student runs it: real whisper-base, real speech, and every bad input."""

from __future__ import annotations

import re

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO, assert_one_line_error, isolated_copy, run_script

from whisper_lab.audio import speech_data
from whisper_lab.audio.loading import load_audio
from whisper_lab.audio.speech_data import JFK
from whisper_lab.compare.wer import word_count, word_error_rate
from whisper_lab.transcribe import trial_audio
from whisper_lab.transcribe.options import DecodingOptions

SCRIPT = "02-whisper-huggingface.py"


def transcript_of(result) -> str:
    """The text after the exact `Transcription:` + blank line header."""
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["Transcription:", ""], result.stdout
    assert len(lines) == 3, result.stdout  # nothing else on stdout: logs go to stderr
    return lines[2]


def test_sample_speech_transcribed():
    text = transcript_of(run_script(SCRIPT, "--audio", JFK.path))
    wer = word_error_rate(JFK.text, text)
    print(f"02 on {JFK.path.name}: {text!r}, WER {wer:.1%}")
    assert wer <= 0.10


def test_stereo_44k_mp3_is_resampled(tmp_path, jfk_audio):
    """A browser-like recording: 44.1 kHz, two channels, compressed."""
    import soxr

    audio_44k = soxr.resample(jfk_audio, 16_000, 44_100)
    stereo = np.stack([audio_44k, 0.8 * audio_44k], axis=1)
    path = tmp_path / "stereo.mp3"
    sf.write(path, stereo, 44_100)
    assert sf.info(path).channels == 2
    text = transcript_of(run_script(SCRIPT, "--audio", path))
    assert word_error_rate(JFK.text, text) <= 0.10


def test_translate_task_and_language_name_accepted():
    text = transcript_of(run_script(SCRIPT, "--audio", JFK.path, "--language", "English", "--task", "translate"))
    assert word_error_rate(JFK.text, text) <= 0.2


@pytest.mark.slow
def test_long_audio_is_transcribed_in_full(tmp_path):
    """~50 s of known sentences: far past one 30 s window, no stretch may go missing."""
    utterances = [JFK, *speech_data.librivox_utterances(), *speech_data.cards_utterances()]
    clip = tmp_path / "long.wav"
    reference = speech_data.write_concatenation(utterances, clip)
    duration = sf.info(clip).duration
    assert 40 <= duration <= 60
    text = transcript_of(run_script(SCRIPT, "--audio", clip))
    ref_words, hyp_words = word_count(reference), word_count(text)
    wer = word_error_rate(reference, text)
    print(f"long-form {duration:.1f} s: {hyp_words} words for {ref_words} reference words, WER {wer:.1%}")
    assert hyp_words >= 0.95 * ref_words
    assert wer <= 0.10
    # the last sentence, well past 30 s, is there
    assert "hearts" in text.lower()
    # and nothing after the audio's end: every timestamped segment lies inside the recording
    result = run_script(SCRIPT, "--audio", clip, "--timestamps")
    assert result.returncode == 0, result.stderr
    for line in result.stdout.splitlines()[2:]:
        match = TIMESTAMP_LINE.match(line)
        assert match, line
        assert int(match[1]) * 60 + float(match[2]) < duration and int(match[3]) * 60 + float(match[4]) <= duration, line


# --- bad input: one line, non-zero exit, no traceback --------------------------------------------


def test_missing_default_speech_wav_suggests_recording(tmp_path):
    script = isolated_copy(SCRIPT, tmp_path)
    result = run_script(script)
    assert_one_line_error(result, "speech.wav not found", "01-record-audio-app.py", "--audio")


def test_missing_file(tmp_path):
    assert_one_line_error(run_script(SCRIPT, "--audio", tmp_path / "nope.wav"), "nope.wav", "no such file")


def test_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.wav"
    path.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage that is not audio")
    assert_one_line_error(run_script(SCRIPT, "--audio", path), "corrupt.wav", "cannot read it as audio")


def test_directory_instead_of_file(tmp_path):
    assert_one_line_error(run_script(SCRIPT, "--audio", tmp_path), "not a file")


def test_empty_audio(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16_000)
    assert_one_line_error(run_script(SCRIPT, "--audio", path), "is empty")


def test_silent_audio_is_refused_not_hallucinated(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(5 * 16_000, dtype=np.float32), 16_000)
    result = run_script(SCRIPT, "--audio", path)
    assert_one_line_error(result, "is silent")
    assert "Transcription" not in result.stdout


def test_unknown_language(tmp_path):
    assert_one_line_error(run_script(SCRIPT, "--audio", JFK.path, "--language", "xx"), "unknown language 'xx'")


def test_unknown_task_is_an_argparse_error():
    result = run_script(SCRIPT, "--audio", JFK.path, "--task", "summarize")
    assert result.returncode == 2 and "invalid choice" in result.stderr and "Traceback" not in result.stderr


def test_model_that_is_not_a_checkpoint(tmp_path):
    assert_one_line_error(run_script(SCRIPT, "--audio", JFK.path, "--model", tmp_path), "not a transformers checkpoint")


def test_help_explains_the_options():
    result = run_script(SCRIPT, "--help")
    assert result.returncode == 0
    for option in ("--audio", "--language", "--task", "--model", "--beam-size", "--timestamps", "--no-fallback"):
        assert option in result.stdout
    assert REPO.joinpath(SCRIPT).is_file()


# --- Whisper's safeguards, and what they are for -------------------------------------------------

TIMESTAMP_LINE = re.compile(r"^\[(\d\d):(\d\d\.\d{3}) --> (\d\d):(\d\d\.\d{3})\]  \S.*$")


def test_noise_gives_an_empty_transcript_and_a_note(tmp_path):
    path = tmp_path / "noise.wav"
    sf.write(path, trial_audio.white_noise(5.0), 16_000)
    result = run_script(SCRIPT, "--audio", path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Transcription:", "", ""]
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "no speech detected" in notes[0]


@pytest.mark.slow  # PyTorch's plain greedy runs to the token limit on the hum
def test_safeguards_in_generate_against_plain_greedy(hf_whisper):
    """What --no-fallback shows: plain greedy invents text for noise and hum; the defaults write nothing."""
    for audio in (trial_audio.white_noise(5.0), trial_audio.hum_and_tones(12.0)):
        before = hf_whisper.transcribe(audio, options=DecodingOptions.plain_greedy())
        after = hf_whisper.transcript(audio)
        print(f"before {before[:60]!r}, after {after.text!r}")
        assert word_count(before) > 0
        assert after.text == "" and after.segments == [] and "no speech" in after.note


def test_quiet_noise_after_speech_adds_no_words(hf_whisper):
    sentence = speech_data.librivox_utterances()[0]
    text = hf_whisper.transcribe(trial_audio.speech_then_noise(load_audio(sentence.path)))
    assert word_count(text) <= word_count(sentence.text) + 1 and word_error_rate(sentence.text, text) <= 0.15


def test_timestamps_print_one_segment_per_line():
    result = run_script(SCRIPT, "--audio", JFK.path, "--timestamps", "--beam-size", "2")
    assert result.returncode == 0, result.stderr
    header, blank, *lines = result.stdout.splitlines()
    assert (header, blank) == ("Transcription:", "") and len(lines) >= 1
    ends = []
    for line in lines:
        match = TIMESTAMP_LINE.match(line)
        assert match, line
        start, end = int(match[1]) * 60 + float(match[2]), int(match[3]) * 60 + float(match[4])
        assert (ends[-1] if ends else 0) <= start < end <= 11.5
        ends.append(end)
    assert word_error_rate(JFK.text, " ".join(line.split("]  ", 1)[1] for line in lines)) <= 0.1


def test_clip_too_short_for_a_word_gets_a_note(tmp_path, jfk_audio):
    path = tmp_path / "blip.wav"
    sf.write(path, jfk_audio[16_000 : 16_000 + 3_200], 16_000)  # 0.2 s of speech: part of one word
    result = run_script(SCRIPT, "--audio", path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Transcription:", "", ""]
    assert "note: the audio is too short to hold a word" in result.stderr


@pytest.mark.parametrize("rate", [16_000, 44_100])
def test_nan_or_infinite_samples_are_refused(tmp_path, jfk_audio, rate):
    samples = jfk_audio[: rate * 2].copy()
    samples[100::5000] = np.inf if rate == 16_000 else np.nan
    path = tmp_path / "broken.wav"
    sf.write(path, samples, rate, subtype="FLOAT")
    line = assert_one_line_error(run_script(SCRIPT, "--audio", path), "broken.wav", "NaN or infinite")
    assert "silent" not in line and "microphone" not in line


def test_text_file_named_mp3_is_not_audio(tmp_path):
    path = tmp_path / "notes.mp3"
    path.write_text("these are lecture notes, not a recording\n" * 20)
    result = run_script(SCRIPT, "--audio", path)
    assert_one_line_error(result, "notes.mp3", "not audio")
    assert result.stderr.strip().count("\n") == 0, result.stderr  # no decoder noise around it
    assert "does not exist" not in result.stderr


def test_symlink_loop_is_named(tmp_path):
    (tmp_path / "a.wav").symlink_to(tmp_path / "b.wav")
    (tmp_path / "b.wav").symlink_to(tmp_path / "a.wav")
    line = assert_one_line_error(run_script(SCRIPT, "--audio", tmp_path / "a.wav"), "loop of symbolic links")
    assert "no such file" not in line


def test_dangling_symlink_names_its_target(tmp_path):
    (tmp_path / "take.wav").symlink_to(tmp_path / "moved-away.wav")
    assert_one_line_error(run_script(SCRIPT, "--audio", tmp_path / "take.wav"), "symbolic link", "moved-away.wav")


def test_beam_size_out_of_range():
    assert_one_line_error(run_script(SCRIPT, "--audio", JFK.path, "--beam-size", "0"), "--beam-size")


def test_segments_after_the_audio_or_repeating_earlier_text_are_dropped():
    """What generate() wrote after a 53 s reading had ended: earlier lines again, timed past the end."""
    from whisper_lab.transcribe.hf_whisper import heard_segments
    from whisper_lab.transcribe.segments import Segment

    said = [Segment(0.0, 11.0, JFK.text, []), Segment(11.0, 20.0, "Nine of hearts. Two of spades.", []),
            Segment(20.0, 22.0, "Yes.", []), Segment(22.0, 23.0, "Yes.", [])]  # fmt: skip
    invented = [Segment(52.96, 62.24, "ask what you can do for your country", []), Segment(53.0, 55.0, "Thank you.", [])]
    kept = heard_segments([*said, *invented], 53.0)
    assert kept == said  # a short repeat ("Yes.") is speech; a long verbatim repeat or a segment past the end is not
    assert heard_segments([Segment(50.0, 55.0, "Seven of hearts.", [])], 53.0)[0].end == 53.0

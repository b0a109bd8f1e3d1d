"""Script 02 as a student runs it: real whisper-base, real speech, and every bad input."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO, assert_one_line_error, isolated_copy, run_script

from whisper_lab.audio import speech_data
from whisper_lab.audio.speech_data import JFK
from whisper_lab.compare.wer import word_count, word_error_rate

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
    for option in ("--audio", "--language", "--task", "--model"):
        assert option in result.stdout
    assert REPO.joinpath(SCRIPT).is_file()

"""Script 03 --transcribe as a student runs it: the decoding flags, non-speech, and bad settings."""

from __future__ import annotations

import re

import soundfile as sf
from conftest import assert_one_line_error, run_script, words_besides_beeps

from whisper_lab.audio.speech_data import JFK
from whisper_lab.compare.wer import word_count, word_error_rate
from whisper_lab.transcribe import trial_audio

SCRIPT = "03-export-encoder-decoder.py"
TIMESTAMP_LINE = re.compile(r"^\[\d\d:\d\d\.\d{3} --> \d\d:\d\d\.\d{3}\]  \S")


def transcribe(out, audio, *flags, precision="int8", env=None):
    return run_script(SCRIPT, "--precision", precision, "--output-dir", out, "--transcribe", audio, *flags, env=env)


def transcribe_at_every_precision(exported_run, tmp_path, name: str, audio):
    """The clip saved as a 16-bit WAV, as a student would, then 03 --transcribe at fp32, fp16 and int8."""
    path = tmp_path / f"{name}.wav"
    sf.write(path, audio, 16_000)
    result = transcribe(exported_run[0], path, precision="all")
    assert result.returncode == 0, result.stderr
    return result


def test_noise_is_not_transcribed_at_any_precision(exported_run, tmp_path):
    result = transcribe_at_every_precision(exported_run, tmp_path, "noise", trial_audio.white_noise(5.0))
    assert result.stdout.splitlines() == ["Transcription:", "", ""] * 3
    assert result.stderr.count("note: no speech detected") == 3


def test_hum_and_beeps_give_no_words_at_any_precision(exported_run, tmp_path):
    result = transcribe_at_every_precision(exported_run, tmp_path, "hum", trial_audio.hum_and_tones(12.0))
    blocks = result.stdout.split("Transcription:\n\n")[1:]
    assert len(blocks) == 3, result.stdout
    for block in blocks:  # the four beeps may be captioned, never a loop, never words
        assert not words_besides_beeps(block) and word_count(block) <= 8, result.stdout


def test_no_fallback_shows_what_the_safeguards_remove(exported_run, tmp_path):
    out, _ = exported_run
    path = tmp_path / "noise.wav"
    sf.write(path, trial_audio.white_noise(5.0), 16_000)
    result = transcribe(out, path, "--no-fallback")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["Transcription:", ""] and word_count(lines[2]) > 0  # invented
    assert "note:" not in result.stderr


def test_timestamps_and_beam_search(exported_run):
    out, _ = exported_run
    result = transcribe(out, JFK.path, "--timestamps", "--beam-size", "3", precision="fp32")
    assert result.returncode == 0, result.stderr
    header, blank, *lines = result.stdout.splitlines()
    assert (header, blank) == ("Transcription:", "") and lines
    assert all(TIMESTAMP_LINE.match(line) for line in lines), lines
    assert word_error_rate(JFK.text, " ".join(line.split("]  ", 1)[1] for line in lines)) <= 0.1


def test_threads_setting_that_is_not_a_number(exported_run):
    out, _ = exported_run
    result = transcribe(out, JFK.path, env={"WHISPER_LAB_THREADS": "abc"})
    assert_one_line_error(result, "WHISPER_LAB_THREADS", "'abc'", "whole number")


def test_help_explains_the_decoding_flags():
    result = run_script(SCRIPT, "--help")
    assert result.returncode == 0
    for flag in ("--beam-size", "--timestamps", "--no-fallback"):
        assert flag in result.stdout

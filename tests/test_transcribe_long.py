"""Over 5 minutes of real speech: no loops, nothing silently dropped, as accurate as faster-whisper.

The recording joins the JFK sample, the LibriVox and "cards" sentences and Asterisk's
telephone prompts (trial_audio.long_recording): about 12 windows of 30 s, many voices.
"""

from __future__ import annotations

import os

import pytest

from whisper_lab.audio.loading import load_audio
from whisper_lab.compare.wer import word_count, word_error_rate
from whisper_lab.onnx_files import onnx_pair
from whisper_lab.transcribe import trial_audio
from whisper_lab.transcribe.onnx_whisper import OnnxWhisper

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    path = tmp_path_factory.mktemp("long") / "long.wav"
    reference, seconds = trial_audio.long_recording(path)
    assert seconds > 300
    return load_audio(path), reference


@pytest.fixture(scope="module")
def faster_whisper_wer(recording):
    """faster-whisper with its default settings (beam 5, the same safeguards) on the same file."""
    faster_whisper = pytest.importorskip("faster_whisper")
    from whisper_lab.weights.faster_whisper_model import ctranslate2_model_dir

    audio, reference = recording
    model = faster_whisper.WhisperModel(str(ctranslate2_model_dir()), device="cpu", compute_type="int8", cpu_threads=2)
    segments, _ = model.transcribe(audio, language="en")
    wer = word_error_rate(reference, " ".join(s.text for s in segments))
    print(f"faster-whisper: WER {wer:.3f}")
    return wer


def check_long_transcript(label: str, text: str, reference: str, reference_wer: float) -> None:
    repeats, phrase = trial_audio.longest_repeat(text)
    words, ref_words = word_count(text), word_count(reference)
    wer = word_error_rate(reference, text)
    print(f"{label}: {words} words for {ref_words}, WER {wer:.3f}, longest repeat {repeats} x {phrase!r}")
    assert repeats <= 3, phrase
    assert abs(words - ref_words) <= 0.03 * ref_words
    assert wer <= reference_wer


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_onnx_long_recording(exported_run, recording, faster_whisper_wer, precision):
    out, _ = exported_run
    audio, reference = recording
    transcript = OnnxWhisper(*onnx_pair(out, "whisper-base", precision)).transcript(audio)
    assert transcript.windows >= 11 and transcript.skipped == 0
    check_long_transcript(f"ONNX {precision}", transcript.text, reference, faster_whisper_wer)


@pytest.mark.skipif(not os.environ.get("WHISPER_LAB_LONG_HF"),
                    reason="minutes of PyTorch decoding on top of the ONNX runs; set WHISPER_LAB_LONG_HF=1")  # fmt: skip
def test_hugging_face_long_recording(hf_whisper, recording, faster_whisper_wer):
    audio, reference = recording
    check_long_transcript("02 Hugging Face", hf_whisper.transcribe(audio), reference, faster_whisper_wer)

"""Over 5 minutes of real speech: no loops, nothing silently dropped, as accurate as faster-whisper.

The recording joins the JFK sample, the LibriVox and "cards" sentences and Asterisk's
telephone prompts (trial_audio.long_recording): about 12 windows of 30 s, many voices.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

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


@pytest.fixture(scope="module")
def one_file(exported_run, tmp_path_factory):
    from end2end_files import built_end2end

    folder, _ = exported_run
    return built_end2end(folder, tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def pair_int8_wer(exported_run, recording):
    out, _ = exported_run
    audio, reference = recording
    return word_error_rate(reference, OnnxWhisper(*onnx_pair(out, "whisper-base", "int8")).transcript(audio).text)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_one_file_long_recording(one_file, recording, pair_int8_wer, precision):
    """Step 9's host loop: every window seeked, prompted and checked as 03 does, and as accurate."""
    from whisper_lab.end2end.session import EndToEnd

    audio, reference = recording
    transcript = EndToEnd(one_file.file(precision)).transcribe(audio)
    assert transcript.windows >= 11 and transcript.skipped == 0
    check_long_transcript(f"05 {precision} (03 int8: WER {pair_int8_wer:.3f})", transcript.text, reference,
                          pair_int8_wer + 0.005)  # fmt: skip


def docs_host_loop() -> str:
    """The host loop of docs/one-file-model.md: the python block after its marker."""
    text = (Path(__file__).parent.parent / "docs" / "one-file-model.md").read_text()
    after = text[text.index("<!-- host-loop") :]
    return after[after.index("```python\n") + len("```python\n") : after.index("\n```", after.index("```python"))]


def test_a_host_that_knows_nothing_of_the_lab_follows_the_docs(one_file, recording, tmp_path):
    """The docs' loop, run as its own program (python -I: no lab on the path, no lab module loaded),
    transcribes the long recording with the same text as 05's host loop."""
    from whisper_lab.audio.loading import write_wav_16k
    from whisper_lab.end2end.session import EndToEnd

    audio, reference = recording
    wav = tmp_path / "lecture.wav"
    write_wav_16k(audio, wav)
    (tmp_path / "host_loop.py").write_text(docs_host_loop())
    guard = ("import runpy, sys; runpy.run_path('host_loop.py', run_name='__main__'); "
             "lab = [m for m in sys.modules if m.startswith('whisper_lab')]; assert not lab, lab")  # fmt: skip
    model = one_file.file("int8")
    result = subprocess.run([sys.executable, "-I", "-c", guard, str(model), str(wav)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=1800)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert all(re.match(r"\[\d\d:\d\d\.\d{3} --> \d\d:\d\d\.\d{3}\] \S", line) for line in lines), lines[:5]
    text = " ".join(line.split("] ", 1)[1] for line in lines)
    lab = EndToEnd(model).transcribe(audio)
    print(f"docs' host loop: {len(lines)} segments, {word_count(text)} words; 05: {len(lab.segments)} segments")
    assert text.split() == lab.text.split()
    assert [line.split("] ", 1)[0] for line in lines] == [
        f"[{clock(s.start)} --> {clock(s.end)}" for s in lab.segments]
    check_long_transcript("docs' host loop", text, reference, 1.0)


def clock(seconds: float) -> str:
    return f"{int(seconds // 60):02d}:{seconds % 60:06.3f}"

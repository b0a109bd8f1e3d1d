"""Shared fixtures: real weights, real audio, and a way to run the numbered scripts as a student does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# Several tests press Ctrl-C (send SIGINT) to the scripts they start. A shell that runs pytest in the
# background (`pytest &` in a script) starts it with SIGINT ignored, and children inherit "ignored":
# the scripts would then never see Ctrl-C. A handler of our own is not inherited; the default is.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

from whisper_lab.audio.speech_data import JFK  # noqa: E402


def pytest_report_header(config):
    """Which kernels ran: int8 results may differ in a token between CPU kinds (and float ones in the last bits)."""
    import onnxruntime

    from whisper_lab.compare.throughput import this_cpu

    return [f"cpu: {this_cpu().describe()}; {os.cpu_count()} cores",
            f"onnxruntime {onnxruntime.__version__} ({', '.join(onnxruntime.get_available_providers())})"]  # fmt: skip


@pytest.fixture(scope="session")
def whisper_base():
    """The default model: packaged whisper-base (or the hub cache's), converted once per machine."""
    from whisper_lab.weights.model_source import resolve_model

    return resolve_model()


@pytest.fixture(scope="session")
def hf_whisper(whisper_base):
    from whisper_lab.transcribe.hf_whisper import HFWhisper

    return HFWhisper.load(whisper_base)


@pytest.fixture(scope="session")
def jfk_audio() -> np.ndarray:
    from whisper_lab.audio.loading import load_audio

    return load_audio(JFK.path)


@pytest.fixture(scope="session")
def exported_run(tmp_path_factory):
    """All three precisions of whisper-base, exported once per test run by the real script 03.

    Returns the output folder and the script's CompletedProcess (its table is on stdout).
    """
    import time

    out = tmp_path_factory.mktemp("whisper_model_dir")
    start = time.perf_counter()
    result = run_script("03-export-encoder-decoder.py", "--precision", "all", "--output-dir", out)
    assert result.returncode == 0, result.stderr
    print(f"\n03 --precision all: {time.perf_counter() - start:.0f} s\n{result.stdout}")
    return out, result


def run_script(script: str | Path, *args: str, cwd: Path | None = None, timeout: float = 600, env=None):
    """Run a numbered script with this Python, as `python <script> args...`, capturing its output."""
    script = Path(script)
    if not script.is_absolute():
        script = REPO / script
    return subprocess.run(
        [sys.executable, str(script), *map(str, args)],
        cwd=cwd or script.parent, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def isolated_copy(script: str, folder: Path) -> Path:
    """The real script, copied into an empty folder (with the package linked beside it).

    Scripts look for speech.wav next to themselves; a copy lets a test see what a
    student sees before recording anything, whatever the repository folder holds.
    """
    (folder / "whisper_lab").symlink_to(REPO / "whisper_lab")
    target = folder / script
    target.write_text((REPO / script).read_text())
    return target


def assert_one_line_error(result, *fragments: str) -> str:
    """A user error: non-zero exit, no traceback, one `error:` line containing the fragments."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


# The recorder's tests (01): the same Python runs the scripts, and JFK's speech as raw samples.
PYTHON = sys.executable


@pytest.fixture(scope="session")
def jfk_int16() -> np.ndarray:
    """samples/jfk.wav exactly as stored: 16 kHz mono int16, the raw material for every browser shape."""
    import soundfile as sf

    samples, sample_rate = sf.read(JFK.path, dtype="int16")
    assert sample_rate == 16_000 and samples.ndim == 1
    return samples


def words_besides_beeps(text: str) -> list[str]:
    """The words of a transcript of hum and beeps, leaving out "beep".

    Whisper was trained on captions, and on the tones of `trial_audio.hum_and_tones`
    it sometimes writes the sound down ("BEEP BEEP BEEP BEEP"), fp32 included and
    faster-whisper too, confidently enough (average log-probability near -0.8)
    that Whisper's own no-speech rule keeps it. That is a caption of what is in
    the audio; any other word would be invented speech.
    """
    from whisper_lab.compare.wer import normalize

    return [w for w in normalize(text).split() if w != "beep"]

"""Script 05 as a student runs it: up-to-date checks, --transcribe, --serve, and one-line errors."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading

import httpx
import numpy as np
import onnx
import pytest
from conftest import REPO, assert_one_line_error, run_script
from end2end_files import built_end2end

from whisper_lab.audio.loading import write_wav_16k
from whisper_lab.audio.speech_data import JFK
from whisper_lab.onnx_files import onnx_pair

SCRIPT = "05-export-end-to-end.py"


@pytest.fixture(scope="module")
def built(exported_run, tmp_path_factory):
    folder, _ = exported_run
    return built_end2end(folder, tmp_path_factory.getbasetemp())


def test_a_second_run_keeps_the_files(built):
    files = [built.file(p) for p in ("fp32", "int8")]
    before = [f.stat().st_mtime_ns for f in files]
    result = run_script(SCRIPT, "--precision", "all", "--output-dir", built.folder)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("is up to date, kept") == 2, result.stderr
    assert [f.stat().st_mtime_ns for f in files] == before
    assert "| kept" in result.stdout


def test_a_new_pair_is_followed(built, tmp_path):
    """When 03 writes the int8 pair again (here: the same graphs, one more metadata entry), 05 rebuilds."""
    pair = onnx_pair(built.folder, "whisper-base", "int8")
    for path in [*pair, built.folder / "whisper-base_tokenizer.json", built.file("int8")]:
        shutil.copy(path, tmp_path / path.name)
    decoder = onnx.load(str(tmp_path / pair.decoder.name))
    decoder.metadata_props.append(onnx.StringStringEntryProto(key="exported_again", value="yes"))
    onnx.save(decoder, str(tmp_path / pair.decoder.name))
    result = run_script(SCRIPT, "--output-dir", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "[int8] building whisper-base_end2end_int8.onnx" in result.stderr, result.stderr
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / built.file("int8").name), load_external_data=False).metadata_props}
    assert meta["exported_again"] == "yes"  # the pair's metadata travels into the one file


def test_transcribe_prints_the_transcription(built):
    result = run_script(SCRIPT, "--precision", "all", "--transcribe", JFK.path, "--output-dir", built.folder)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Transcription:") == 2
    assert result.stdout.split("Transcription:")[1].strip() == JFK.text  # fp32
    assert "[int8]" in result.stderr


def test_longer_audio_is_transcribed_window_by_window(built, jfk_audio, tmp_path):
    long_clip = tmp_path / "four-times-jfk.wav"
    write_wav_16k(np.tile(jfk_audio, 4), long_clip)  # 44 s: two windows, the second starting where a sentence ended
    result = run_script(SCRIPT, "--transcribe", long_clip, "--output-dir", built.folder, "--timestamps")
    assert result.returncode == 0, result.stderr
    assert "window at 0:00 of 0:44" in result.stderr
    lines = result.stdout.split("Transcription:")[1].strip().splitlines()
    text = " ".join(lines)
    # the copies follow each other without a pause, so the first one is not always written whole
    assert text.count("what your country can do for you") >= 3 and text.count("ask what you can do") >= 3, text
    assert lines[-1].startswith("[00:3") or lines[-1].startswith("[00:4"), lines  # timed from the recording's start


@pytest.mark.parametrize("args, fragments", [
    (["--transcribe", "no-such-file.wav"], ["no-such-file.wav", "no such file"]),
    (["--transcribe", str(JFK.path), "--language", "klingon"], ["unknown language 'klingon'"]),
    (["--clips", "0", "--benchmark"], ["--clips and --rounds need at least 1"]),
])  # fmt: skip
def test_bad_input_is_one_line(built, args, fragments):
    result = run_script(SCRIPT, *args, "--output-dir", built.folder)
    assert_one_line_error(result, *fragments)


def test_threads_setting_must_be_a_number(built):
    result = run_script(SCRIPT, "--transcribe", JFK.path, "--output-dir", built.folder,
                        env={"WHISPER_LAB_THREADS": "abc"})  # fmt: skip
    assert_one_line_error(result, "WHISPER_LAB_THREADS='abc'")


def test_an_unwritable_folder_is_one_line(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: permissions do not stop writes")
        assert_one_line_error(run_script(SCRIPT, "--output-dir", locked), "cannot write to")
    finally:
        locked.chmod(0o700)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Serving:
    """`05 --serve` in the background; `wait_for` reads its output until a line contains a text."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, "-u", str(REPO / SCRIPT), "--serve", *map(str, args)], cwd=REPO,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(line) for line in self.proc.stdout], daemon=True).start()

    def wait_for(self, text: str, timeout: float = 300) -> list[str]:
        seen = []
        while True:
            line = self.lines.get(timeout=timeout)
            seen.append(line)
            if text in line:
                return seen


def test_serve_hands_out_the_page_and_the_model_and_accepts_nothing(built):
    port = free_port()
    server = Serving("--port", port, "--output-dir", built.folder)
    try:
        seen = server.wait_for("The page is at")
        assert f"http://localhost:{port}" in seen[-1]
        advice = "".join(server.wait_for("Then open"))
        assert f"ssh -L {port}:localhost:{port}" in advice  # the same forwarding advice as 01 and Netron
        base = f"http://127.0.0.1:{port}"
        page = httpx.get(f"{base}/", timeout=10)
        assert page.status_code == 200 and "onnxruntime-web" in page.text
        assert page.headers["cross-origin-opener-policy"] == "same-origin"
        assert page.headers["cross-origin-embedder-policy"] == "require-corp"
        assert httpx.get(f"{base}/config.json").json()["default"] == "whisper-base_end2end_int8.onnx"
        model = httpx.head(f"{base}/models/whisper-base_end2end_int8.onnx")
        assert int(model.headers["content-length"]) == built.file("int8").stat().st_size
        assert httpx.get(f"{base}/ort/ort-wasm-simd-threaded.wasm").headers["content-type"] == "application/wasm"
        for path in ("/models/whisper-base_decoder_int8.onnx", "/../README.md", "/package.json", "/node_modules/"):
            assert httpx.get(base + path).status_code == 404, path
        assert httpx.post(f"{base}/", content=b"audio").status_code == 501  # nothing can be uploaded
    finally:
        server.proc.send_signal(signal.SIGINT)
        assert server.proc.wait(timeout=30) == 0


def test_serve_on_a_taken_port_is_one_line(built):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_script(SCRIPT, "--serve", "--port", port, "--output-dir", built.folder)
    assert_one_line_error(result, f"port {port} is already in use")

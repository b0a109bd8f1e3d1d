"""Two students press Save at the same moment: speech.wav is one recording or the other, never a mix.

Two Gradio API clients (each its own session, as two browser tabs are) upload
different recordings of different lengths and press Save together, a few times
over. After each round, speech.wav must be byte for byte what saving one of the
two alone gives, and each client's status line, download and figure must be
its own recording, whichever save came last.
"""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from recorder_hostile_audio import jfk_file
from recorder_process import Recorder, api_client, free_port, save_through_api

from whisper_lab.audio.loading import load_audio
from whisper_lab.recorder.mel_figure import encoder_input, plot_encoder_input
from whisper_lab.recorder.recording import save_recording

ROUNDS = 4


def figure_of(wav: Path) -> np.ndarray:
    audio = load_audio(wav)
    return plot_encoder_input(encoder_input(audio), speech_seconds=len(audio) / 16_000).astype(np.float32)


def served_image(url: str) -> np.ndarray:
    response = httpx.get(url, timeout=30)
    response.raise_for_status()
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"), dtype=np.float32)


@pytest.fixture(scope="module")
def recorder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("concurrent")
    port = free_port()
    process = Recorder("--no-share", "--port", str(port), "--output", str(folder / "speech.wav"))
    try:
        process.expect(r"^Press Ctrl\+C to stop", timeout=60)
        process.url, process.output_path = f"http://127.0.0.1:{port}", folder / "speech.wav"
        yield process
    finally:
        process.stop()


def test_two_clients_saving_at_once_leave_one_whole_recording_and_each_sees_its_own(recorder, tmp_path):
    takes = {
        "a": jfk_file(tmp_path / "a.wav", rate=48_000, channels=2),  # 11.0 s
        "b": jfk_file(tmp_path / "b.wav", rate=44_100, channels=1, seconds=6),  # 6.0 s
    }
    expected = {}  # what saving each one alone writes
    for name, take in takes.items():
        expected[name] = save_recording(str(take), tmp_path / name / "speech.wav").path
    seconds = {"a": "11.0 s", "b": "6.0 s"}
    figures = {name: figure_of(path) for name, path in expected.items()}
    clients = {name: api_client(recorder.url) for name in takes}

    for round_ in range(ROUNDS):
        start = threading.Barrier(len(takes))

        def save(name: str):
            start.wait()  # both requests leave together
            return save_through_api(clients[name], takes[name])

        with ThreadPoolExecutor(len(takes)) as pool:
            results = dict(zip(takes, pool.map(save, takes)))

        saved = recorder.output_path.read_bytes()
        winner = [name for name in takes if saved == expected[name].read_bytes()]
        assert winner, f"round {round_}: speech.wav is neither recording ({len(saved)} bytes)"
        for name, (status, download) in results.items():
            assert status.startswith(f"Saved speech.wav: {seconds[name]}"), (name, status)
            assert httpx.get(download["url"], timeout=30).content == expected[name].read_bytes(), \
                f"round {round_}: client {name} is offered the other recording"
        print(f"\nround {round_}: speech.wav holds recording {winner[0]}")

    # Both figures asked for after both saves: each must still draw its own recording.
    for name, client in clients.items():
        image = served_image(client.predict(api_name="/spectrogram")["url"])
        distance = {other: float(np.mean(np.abs(image - figures[other]))) for other in takes}
        print(f"figure of client {name}: mean distance to a {distance['a']:.1f}, to b {distance['b']:.1f}")
        assert image.shape == figures[name].shape
        # The served figure is a lossy WebP of the drawn one: close to its own, far from the other.
        assert distance[name] < 4.0 and distance[name] < distance[next(o for o in takes if o != name)] / 3, distance

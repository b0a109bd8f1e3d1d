"""The in-graph log-mel front end against the numpy one, in both padding modes, on real speech."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from whisper_lab.audio.log_mel import N_FRAMES, N_SAMPLES
from whisper_lab.end2end.front_end import PADDING_MODES, front_end_model, numpy_features

TOLERANCE = 1e-4


@pytest.fixture(scope="module", params=PADDING_MODES)
def front_end(request):
    model = front_end_model(request.param)
    onnx.checker.check_model(model, full_check=True)
    return request.param, ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def clips(jfk: np.ndarray) -> dict[str, np.ndarray]:
    """Short and long cuts of real speech, and the edges: 1 sample, one hop + 1, exactly 30 s, over 30 s."""
    speech = np.tile(jfk, 4)  # 44 s of JFK
    return {
        "1 sample": jfk[16_000:16_001],
        "161 samples": jfk[16_000:16_161],
        "0.5 s": jfk[16_000:24_000],
        "jfk 11 s": jfk,
        "30 s - 1 sample": speech[: N_SAMPLES - 1],
        "30 s": speech[:N_SAMPLES],
        "44 s (the first 30 s count)": speech,
    }


def test_front_end_matches_numpy(front_end, jfk_audio):
    padding, session = front_end
    worst = {}
    for name, audio in clips(jfk_audio).items():
        graph = session.run(None, {"audio": audio})[0]
        reference = numpy_features(audio, padding)
        assert graph.shape == (1, 80, N_FRAMES)
        worst[name] = float(np.abs(graph[0] - reference).max())
    print(f"\n{padding} padding, largest |graph - numpy|: " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
    assert max(worst.values()) <= TOLERANCE, worst


def test_the_two_modes_differ_where_they_should(jfk_audio):
    """'mel' zeroes the frames after the clip; 'audio' computes them from silence: the switch is real."""
    by_audio, by_mel = numpy_features(jfk_audio, "audio"), numpy_features(jfk_audio, "mel")
    content = len(jfk_audio) // 160
    assert np.allclose(by_audio[:, : content - 2], by_mel[:, : content - 2], atol=1e-6)
    assert np.all(by_mel[:, content:] == 0.0)
    assert np.all(by_audio[:, content + 3 :] < -0.5)  # silence: the floor 80 dB below the loudest point


def test_front_end_uses_matmul_not_stft():
    ops = [n.op_type for n in front_end_model().graph.node]
    assert ops.count("MatMul") == 2 and "STFT" not in ops and "DFT" not in ops and "MelWeightMatrix" not in ops

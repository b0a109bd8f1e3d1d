"""The recorder's figure: the 80 x 3000 log-mel spectrogram Whisper's encoder actually sees.

Whisper never hears a waveform. Its feature extractor cuts the 16 kHz audio into
25 ms frames every 10 ms (hop of 160 samples), measures the energy in 80 bands
spaced like human pitch perception (the mel scale), takes the log, and scales
the result to roughly [-1, 1]. The encoder always reads exactly 30 s = 3000
frames: after a shorter clip the log-mel is filled with zeros (as OpenAI's
`transcribe()` does), which shows up as a flat, uniform block on the right of the
picture. That padding is why a 3-second clip costs the encoder as much as a
30-second one.

We compute it with audio/log_mel.py's `encoder_input`, the very function that feeds
03's ONNX encoder, so the figure is the model's real input, not an approximation
of it, and the recorder never imports PyTorch. (02's Hugging Face feature
extractor pads the audio with silence instead: its padding is the log-mel of
silence, not zeros; log_mel.py says what that changes.)
"""

from __future__ import annotations

import numpy as np

from ..audio.loading import SAMPLE_RATE
from ..audio.log_mel import CHUNK_SECONDS as WINDOW_SECONDS
from ..audio.log_mel import HOP_LENGTH, N_FRAMES  # 160 samples = 10 ms between frames; 3000 frames in 30 s
from ..audio.log_mel import encoder_input as onnx_encoder_input

N_MELS = 80


def warm_up() -> None:
    """Import matplotlib ahead of the first save, so the first figure is as quick as the rest.

    Naming the backend now also keeps pyplot out of the server for good. Gradio asks
    matplotlib for its backend around every event; while none is named, that question
    imports pyplot, and two first events at once then meet a half-imported pyplot
    ("partially initialized module"), failing a Save.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401


def encoder_input(audio: np.ndarray) -> np.ndarray:
    """The encoder's input for 16 kHz mono audio: (80, 3000) float32, first 30 s, zero-padded."""
    features = onnx_encoder_input(np.asarray(audio, dtype=np.float32), N_MELS)
    assert features.shape == (N_MELS, N_FRAMES), features.shape
    return features


def plot_encoder_input(features: np.ndarray, speech_seconds: float) -> np.ndarray:
    """Draw the spectrogram with the end of speech marked; returns an RGB image (H, W, 3).

    A Figure drawn on an Agg canvas (into memory: no screen on the VM, and none needed),
    not pyplot: pyplot keeps every figure in a global list, and its global backend
    state is switched by Gradio around each event; a server should not share either
    between threads. The figure is freed with its last reference.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.4), dpi=100, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    ax = fig.subplots()
    image = ax.imshow(features, origin="lower", aspect="auto", cmap="magma",
                      extent=(0, WINDOW_SECONDS, 0, N_MELS), interpolation="nearest")
    fig.colorbar(image, ax=ax, pad=0.01, label="log-mel (scaled)")
    ax.set_xlabel(f"time (s): {N_FRAMES} frames, one every {1000 * HOP_LENGTH // SAMPLE_RATE} ms")
    ax.set_ylabel(f"mel band (0-{N_MELS - 1})")
    if speech_seconds < WINDOW_SECONDS:
        ax.axvline(speech_seconds, color="white", linestyle="--", linewidth=1.5)
        ax.text(speech_seconds + 0.3, N_MELS * 0.5, f"end of recording ({speech_seconds:.1f} s)\n"
                f"then zeros up to {WINDOW_SECONDS} s", color="white", va="center", fontsize=9)
        title = (f"What Whisper's encoder sees: {N_MELS} x {N_FRAMES} log-mel, "
                 f"{speech_seconds:.1f} s of recording + {WINDOW_SECONDS - speech_seconds:.1f} s padding")
    else:
        title = (f"What Whisper's encoder sees: {N_MELS} x {N_FRAMES} log-mel, the first "
                 f"{WINDOW_SECONDS} s of {speech_seconds:.1f} s (02 reads the rest in further windows)")
    ax.set_title(title, fontsize=10)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()

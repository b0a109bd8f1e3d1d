"""Whisper's log-mel front end as ONNX nodes: raw 16 kHz audio in, the encoder's (1, 80, 3000) input out.

The same four steps as `audio/log_mel.py`, written so that any ONNX runtime
computes them fast and to within 1e-5 of numpy:

1. cut to 30 s, pad with zeros to 480 000 samples, reflect 200 samples at the
   edges (each 400-sample window is centred on its frame);
2. short-time Fourier transform as one matrix product. The padded audio is
   reshaped into rows of 160 samples (one hop); three shifted slices of those
   rows, side by side, are the 400-sample frames. One MatMul with a (400, 402)
   matrix, the Hann window times cos and sin of the 201 frequencies, gives each
   frame's spectrum. ONNX has an `STFT` op, but ONNX Runtime computes it with a
   naive DFT for 400 points (not a power of two): slower, and 100x less precise
   in our trial;
3. square and sum the cos and sin parts, and apply the 80 mel filters: both in
   one more MatMul, with the filters stacked twice. The filters are Whisper's
   (Slaney scale), stored as a constant: ONNX's `MelWeightMatrix` builds HTK-scale
   filters, which are different;
4. log10, keep 80 dB below the loudest point, scale to about [-1, 1].

Two ways to fill the window up to 30 s exist, and the switch below picks one:

    "audio"  pad the *audio* with silence to 30 s, then compute the log-mel
             (Hugging Face's WhisperFeatureExtractor, so script 02)
    "mel"    compute the log-mel of the clip, then pad the *mel* with zeros to
             3000 frames (openai/whisper: `pad_or_trim` of the mel in `transcribe()`;
             the lab's two-graph path, `audio/log_mel.py: encoder_input`)
"""

from __future__ import annotations

import numpy as np

from ..audio.log_mel import HOP_LENGTH, N_FFT, N_FRAMES, N_SAMPLES, encoder_input, log_mel_spectrogram, mel_filters
from .nodes import IR_VERSION, OPSET, Nodes, i64

# The one switch: how the in-graph front end fills a clip shorter than 30 s.
# It must match what the two-graph path feeds its encoder (see numpy_features).
ENCODER_INPUT_PADDING = "mel"
PADDING_MODES = ("audio", "mel")

N_BINS = N_FFT // 2 + 1  # 201 frequencies of a 400-point real FFT


def dft_basis() -> np.ndarray:
    """(400, 2 x 201): the periodic Hann window times cos | sin of each frequency, for frames @ basis."""
    n = np.arange(N_FFT)[:, None]
    k = np.arange(N_BINS)[None, :]
    window = np.hanning(N_FFT + 1)[:-1][:, None]  # periodic Hann, as log_mel.py
    angle = 2 * np.pi * n * k / N_FFT
    return np.concatenate([window * np.cos(angle), window * -np.sin(angle)], axis=1).astype(np.float32)


def numpy_features(audio: np.ndarray, padding: str = ENCODER_INPUT_PADDING, n_mels: int = 80) -> np.ndarray:
    """(n_mels, 3000): what the two-graph path feeds the encoder for the first 30 s of `audio`, in each mode.

    The reference the graph is held to, built from `audio/log_mel.py` alone.
    """
    audio = np.asarray(audio, dtype=np.float32)[:N_SAMPLES]
    if padding == "audio":
        return log_mel_spectrogram(audio, n_mels)
    if padding == "mel":  # as openai/whisper transcribe(): the clip's log-mel, zero-padded to 3000 frames
        return encoder_input(audio, n_mels)
    raise ValueError(f"unknown padding {padding!r}; one of {PADDING_MODES}")


def front_end_model(padding: str = ENCODER_INPUT_PADDING, n_mels: int = 80):
    """The front end alone as a small ONNX model (audio -> mel), to compare with numpy or look at in Netron."""
    from onnx import TensorProto, helper

    g = Nodes("front_end")
    mel = log_mel_nodes(g, "audio", padding, n_mels)
    graph = helper.make_graph(g.nodes, f"whisper log-mel front end ({padding} padding)",
                              [helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["n_samples"])],
                              [helper.make_tensor_value_info(mel, TensorProto.FLOAT, [1, n_mels, N_FRAMES])],
                              g.initializers)  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)


def log_mel_nodes(g: Nodes, audio: str, padding: str = ENCODER_INPUT_PADDING, n_mels: int = 80) -> str:
    """Add the front end to `g`: float32 audio [n] -> log-mel [1, n_mels, 3000]; returns the output name."""
    if padding not in PADDING_MODES:
        raise ValueError(f"unknown padding {padding!r}; one of {PADDING_MODES}")
    half = N_FFT // 2

    # 1. At most 30 s, zero-padded to exactly 30 s.
    clip = g.op("Slice", audio, g.const("start", i64(0)), g.const("n_samples", i64(N_SAMPLES)), label="first_30_s")
    n = g.op("Shape", clip, label="clip_length")
    if padding == "audio":
        # Reflect at both ends of the 30 s window, as the numpy front end does with the padded audio.
        fill = g.op("Sub", g.const("window", i64(N_SAMPLES)), n, label="missing_samples")
        padded = g.op("Pad", clip, g.op("Concat", g.const("zero", i64(0)), fill, axis=0), label="pad_to_30_s")
        padded = g.op("Pad", padded, g.const("centre", i64(half, half)), mode="reflect", label="reflect_edges")
        max_frames = N_FRAMES  # the loudest point is looked for in the 3000 frames the encoder sees
    else:
        # openai/whisper computes the log-mel of the clip followed by 30 s of zeros: reflect at the
        # start only, zeros after the clip; frame 3000 still counts for the loudest point.
        fill = g.op("Sub", g.const("window_plus_half", i64(N_SAMPLES + half)), n, label="missing_samples")
        padded = g.op("Pad", clip, g.op("Concat", g.const("zero", i64(0)), fill, axis=0), label="pad_with_zeros")
        padded = g.op("Pad", padded, g.const("left", i64(half, 0)), mode="reflect", label="reflect_start")
        max_frames = N_FRAMES + 1

    # 2. Frames without a gather: rows of one hop (160 samples); frame f = rows f, f+1 and half of f+2.
    n_rows = N_FRAMES + 3  # 3003 rows = 480 480 samples: enough for frame 3000, which ends at 480 400
    padded = g.op("Pad", padded, g.op("Sub", g.const("rows_x_hop", i64(0, n_rows * HOP_LENGTH)),
                                      g.op("Concat", g.const("zero", i64(0)), g.op("Shape", padded), axis=0)),
                  label="whole_hops")
    rows = g.op("Reshape", padded, g.const("hop_rows", i64(n_rows, HOP_LENGTH)), label="hop_rows")
    n_out = N_FRAMES + 1
    parts = [
        g.op("Slice", rows, g.const("from", i64(shift, 0)), g.const("to", i64(shift + n_out, width)),
             label=f"rows_shifted_{shift}")
        for shift, width in ((0, HOP_LENGTH), (1, HOP_LENGTH), (2, N_FFT - 2 * HOP_LENGTH))
    ]
    frames = g.op("Concat", *parts, axis=1, label="frames")  # (3001, 400)
    spectrum = g.op("MatMul", frames, g.const("dft_basis", dft_basis()), label="windowed_dft")  # (3001, 402)

    # 3. Power (re^2 + im^2) and mel filters in one MatMul: the filters stacked for the cos and the sin half.
    filters = mel_filters(n_mels).T  # (201, n_mels)
    stacked = np.concatenate([filters, filters], axis=0).astype(np.float32)
    squared = g.op("Mul", spectrum, spectrum, label="squared")
    mel = g.op("MatMul", squared, g.const("mel_filters", stacked), label="mel_filters")  # (3001, n_mels)

    # 4. log10, an 80 dB range below the loudest point, scaled to about [-1, 1].
    log = g.op("Log", g.op("Max", mel, g.const("floor", np.float32(1e-10))), label="ln")
    log10 = g.op("Mul", log, g.const("1_over_ln10", np.float32(1 / np.log(10))), label="log10")
    seen = g.op("Slice", log10, g.const("from", i64(0)), g.const("to", i64(max_frames)), label="frames_for_max")
    loudest = g.op("ReduceMax", seen, keepdims=0, label="loudest")
    kept = g.op("Max", log10, g.op("Sub", loudest, g.const("range_80_db", np.float32(8.0))), label="range_80_db")
    scaled = g.op("Add", g.op("Mul", kept, g.const("quarter", np.float32(0.25))), g.const("one", np.float32(1.0)),
                  label="scaled")  # (x + 4) / 4
    scaled = g.op("Slice", scaled, g.const("from", i64(0)), g.const("to", i64(N_FRAMES)), label="frames_3000")
    if padding == "mel":
        # Frames past the clip's end are zeros in the log-mel itself (not silence).
        content = g.op("Div", n, g.const("hop", i64(HOP_LENGTH)), label="content_frames")
        index = g.const("frame_index", np.arange(N_FRAMES, dtype=np.int64)[:, None])
        inside = g.op("Less", index, content, label="inside_clip")  # (3000, 1)
        scaled = g.op("Where", inside, scaled, g.const("zero_mel", np.float32(0.0)), label="zero_after_clip")
    mel_t = g.op("Transpose", scaled, perm=[1, 0], label="bands_by_frames")
    return g.op("Unsqueeze", mel_t, g.const("batch_axis", i64(0)), label="mel")

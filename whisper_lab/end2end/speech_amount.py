"""How much of a window is speech, in the graph: `safeguards.speech_seconds` as ONNX nodes.

The host loop needs it for one check: after a loop was caught, an attempt that
writes far fewer words than the window's speech holds has dropped most of it
(safeguards.drops_speech). Counting loud frames needs the audio, which only the
graph sees window by window, so the graph returns the number:

    20 ms frames (320 samples) -> mean power -> dB (floor -70 dB)
    sorted (TopK)              -> the 5th percentile (noise floor), the 99th (loudest speech)
    speech frames              -> louder than floor + 15 dB and than loudest - 30 dB
    speech_seconds             =  their count / 50
"""

from __future__ import annotations

import numpy as np

from .nodes import Nodes, i64

FRAME = 320  # 20 ms at 16 kHz


def _percentile(g: Nodes, ascending: str, n: str, q: float, label: str) -> str:
    """numpy.percentile's default (linear) on sorted values [n]: between ranks floor(p) and floor(p) + 1."""
    from onnx import TensorProto

    last = g.op("Sub", n, g.const("one", np.int64(1)))
    position = g.op("Mul", g.op("Cast", last, to=TensorProto.FLOAT), g.const("q", np.float32(q / 100)))
    low = g.op("Cast", g.op("Floor", position), to=TensorProto.INT64)
    high = g.op("Min", g.op("Add", low, g.const("one", np.int64(1))), last)
    fraction = g.op("Sub", position, g.op("Cast", low, to=TensorProto.FLOAT))
    a, b = g.op("Gather", ascending, low, axis=0), g.op("Gather", ascending, high, axis=0)
    return g.op("Add", a, g.op("Mul", g.op("Sub", b, a), fraction), label=label)


def speech_seconds_nodes(g: Nodes, audio: str, output: str) -> str:
    """float32 audio [n] (one window) -> `output`, a float32 scalar: seconds of speech-loud frames."""
    from onnx import TensorProto

    n = g.op("Shape", audio, label="n_samples")
    # at least one frame: a window shorter than 20 ms is one frame of zeros after it (no speech)
    frames = g.op("Max", g.op("Div", n, g.const("frame", i64(FRAME))), g.const("one_frame", i64(1)), label="n_frames")
    fill = g.op("Max", g.op("Sub", g.op("Mul", frames, g.const("frame", i64(FRAME))), n), g.const("zero", i64(0)))
    padded = g.op("Pad", audio, g.op("Concat", g.const("zero", i64(0)), fill, axis=0), label="whole_frames")
    used = g.op("Slice", padded, g.const("zero", i64(0)), g.op("Mul", frames, g.const("frame", i64(FRAME))))
    rows = g.op("Reshape", used, g.op("Concat", frames, g.const("frame", i64(FRAME)), axis=0), label="frames")
    power = g.op("ReduceMean", g.op("Mul", rows, rows), g.const("axis_1", i64(1)), keepdims=0, label="power")
    level = g.op("Mul", g.op("Log", g.op("Max", power, g.const("floor_power", np.float32(1e-7)))),
                 g.const("ten_over_ln10", np.float32(10 / np.log(10))), label="level_db")
    ascending = g.op("TopK", level, frames, largest=0, sorted=1, outputs=[f"{g.scope}.sorted", f"{g.scope}.order"])[0]
    count = g.op("Squeeze", frames)
    floor = _percentile(g, ascending, count, 5, "noise_floor")
    loudest = _percentile(g, ascending, count, 99, "loudest")
    threshold = g.op("Max", g.op("Add", floor, g.const("above_floor", np.float32(15.0))),
                     g.op("Sub", loudest, g.const("below_loudest", np.float32(30.0))), label="threshold")
    loud = g.op("Cast", g.op("Greater", level, threshold), to=TensorProto.FLOAT)
    return g.op("Div", g.op("ReduceSum", loud, keepdims=0), g.const("frames_per_second", np.float32(50.0)),
                outputs=[output], label="speech_seconds")

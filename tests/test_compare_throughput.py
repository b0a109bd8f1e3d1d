"""The machine-limit section of 04's report: the encoder's operation count and the measured product speeds."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from whisper_lab.onnx_files import onnx_pair


def _graph_operations(path) -> dict[str, float]:
    """Multiply-adds x 2 of every MatMul and Conv in the real graph, from ONNX shape inference at batch 1."""
    model = onnx.load(str(path))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1  # batch 1, so every shape is known
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]}  # fmt: skip
    shapes.update({i.name: list(i.dims) for i in model.graph.initializer})
    kinds = {"convolutions": 0.0, "attention": 0.0, "linear": 0.0, "cross_kv": 0.0}
    for node in model.graph.node:
        if node.op_type == "MatMul":
            a, out = shapes[node.input[0]], shapes[node.output[0]]
            operations = 2 * np.prod(out) * a[-1]
            weighted = node.input[1] in {i.name for i in model.graph.initializer}
            kind = "cross_kv" if node.name.startswith("/cross_kv") else "linear" if weighted else "attention"
        elif node.op_type == "Conv":
            w, out = shapes[node.input[1]], shapes[node.output[0]]
            operations, kind = 2 * np.prod(out) * w[1] * w[2], "convolutions"
        else:
            continue
        kinds[kind] += operations
    return kinds


def test_encoder_work_matches_the_real_graph(exported_run):
    from whisper_lab.compare.throughput import EncoderWork

    counted = _graph_operations(onnx_pair(exported_run[0], "whisper-base", "fp32").encoder)
    work = EncoderWork.whisper()
    for kind, operations in counted.items():
        assert getattr(work, kind) == pytest.approx(operations, rel=1e-3), kind
    assert work.total == pytest.approx(96.8e9, rel=1e-3)


def test_throughput_is_measured_and_bounds_the_encoder():
    from whisper_lab.compare.throughput import EncoderWork, measure_throughput

    speed = measure_throughput(threads=2, rounds=2)
    assert speed.float32 > 1e9 and speed.int8 > 1e9 and speed.threads == 2
    work = EncoderWork.whisper()
    fp32, int8 = speed.floor_seconds(work, "fp32"), speed.floor_seconds(work, "int8")
    assert fp32 == pytest.approx(work.total / speed.float32)
    # int8 only speeds up the weight products: its floor is bounded below by the float32 part it keeps
    assert (work.attention + work.convolutions) / speed.float32 < int8

"""The int8 files as script 03 writes them: scales per column, one token table shared by its two uses, sizes, groups."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import onnx.utils
import pytest
from onnx import numpy_helper

from whisper_lab.onnx_files import onnx_pair


@pytest.fixture(scope="module")
def exported(exported_run):
    return exported_run[0]


def pair(out, precision):
    return onnx_pair(out, "whisper-base", precision)


def load(path):
    model = onnx.load(str(path))
    return model, {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def test_matmul_weights_have_a_scale_per_output_column(exported):
    for path in pair(exported, "int8"):
        model, weights = load(path)
        ops = Counter(n.op_type for n in model.graph.node)
        assert ops["DynamicQuantizeLinear"] > 0 and ops["MatMulInteger"] > 0  # the plain graph students open
        assert not any(n.domain for n in model.graph.node)  # standard ONNX ops only, no com.microsoft
        producers = {o: n for n in model.graph.node for o in n.output}
        for node in (n for n in model.graph.node if n.op_type == "MatMulInteger"):
            weight = weights[node.input[1]]
            assert weight.dtype == np.int8 and weight.ndim == 2
            scale_mul = producers[f"{node.name}_scales_mul:0"] if f"{node.name}_scales_mul:0" in producers else None
            scale_name = next(i for i in scale_mul.input if i in weights) if scale_mul else node.input[1].replace("_quantized", "_scale")
            scales = weights[scale_name]
            assert scales.shape == (weight.shape[1],), node.name  # one per output column
            assert np.ptp(scales) > 0  # and they really differ
            # symmetric: zero point 0; 7-bit range (-64..64), which AVX2's 16-bit pair sums never clip, all used
            assert not weights[node.input[3]].any()
            assert np.abs(weight).max() <= 64 and (np.abs(weight).max(axis=0) == 64).mean() > 0.99, node.name


def test_token_table_is_stored_once_in_int8_with_a_scale_per_token(exported):
    fp32_model, fp32_weights = load(pair(exported, "fp32").decoder)
    model, weights = load(pair(exported, "int8").decoder)
    table_fp32 = fp32_weights["token_embedding_t"]  # E^T, (d_model, vocab)
    big = {name: w for name, w in weights.items() if w.size >= table_fp32.size}
    assert list(big) == ["token_embedding_t_quantized"] and big["token_embedding_t_quantized"].dtype == np.int8
    readers = [n for n in model.graph.node if "token_embedding_t_quantized" in n.input]
    assert sorted(n.op_type for n in readers) == ["Gather", "MatMulInteger"]  # lookup and output projection

    # each token's column dequantizes with its own scale, within half a step of the float32 column
    q, scale = weights["token_embedding_t_quantized"].astype(np.float32), weights["token_embedding_t_scale"]
    assert scale.shape == (table_fp32.shape[1],)
    assert np.all(np.abs(q * scale - table_fp32) <= scale / 2 + 1e-7)
    # every token's step is 1/64 of its own largest value; even a full 8-bit scale for the whole table would give
    # the tokens with the smallest values steps over twice as coarse, relative to what they hold
    own_max = np.abs(table_fp32).max(axis=0)
    assert np.allclose(scale, own_max / 64, rtol=1e-3)
    assert (np.abs(table_fp32).max() / 127 / own_max).max() > 2 / 64


def test_token_lookup_reads_the_per_token_scales(exported, tmp_path):
    """The int8 decoder's embedding of real tokens = the float32 embedding, within each token's half step."""
    import onnxruntime as ort

    decoder = pair(exported, "int8").decoder
    model, weights = load(decoder)
    lookup = next(n for n in model.graph.node if n.op_type == "DequantizeLinear")
    part = tmp_path / "lookup.onnx"  # just the lookup, cut out of the real graph: tokens in, embeddings out
    onnx.utils.extract_model(str(decoder), str(part), ["tokens"], [lookup.output[0]])
    session = ort.InferenceSession(str(part), providers=["CPUExecutionProvider"])
    tokens = np.array([[50258, 50259, 50359, 50363, 400, 370, 452, 7177]])  # prompt + " And so my fellow"
    columns = session.run(None, {"tokens": tokens})[0]
    expected = load(pair(exported, "fp32").decoder)[1]["token_embedding_t"][:, tokens[0]]
    assert columns.shape == expected.shape
    assert np.all(np.abs(columns - expected) <= weights["token_embedding_t_scale"][tokens[0]] / 2 + 1e-7)


def test_int8_files_stay_under_30_percent(exported):
    fp32 = sum(p.stat().st_size for p in pair(exported, "fp32"))
    int8 = sum(p.stat().st_size for p in pair(exported, "int8"))
    assert int8 <= 0.30 * fp32


def test_layer_groups_of_the_real_graphs(exported):
    from whisper_lab.export.precision import layer_groups

    encoder, decoder = layer_groups(pair(exported, "fp32").encoder), layer_groups(pair(exported, "fp32").decoder)
    assert set(encoder) == {"encoder convolutions", "cross-attention K/V"} | {
        f"encoder {i} {kind}" for i in range(6) for kind in ("attention", "MLP")}  # fmt: skip
    assert set(decoder) == {"token table"} | {
        f"decoder {i} {kind}" for i in range(6) for kind in ("self-attention", "cross-attention", "MLP")}  # fmt: skip
    assert [len(encoder[f"encoder {i} attention"]) for i in range(6)] == [4] * 6  # q, k, v, out projections
    assert len(encoder["cross-attention K/V"]) == 12 and len(encoder["encoder convolutions"]) == 2
    assert sorted(n.rsplit("/", 1)[-1] for n in decoder["token table"]) == ["Gather", "MatMul"]


def test_float_group_stays_float_and_nothing_else_is_written(exported, tmp_path):
    from whisper_lab.export.precision import quantize_int8

    source = pair(exported, "fp32").decoder
    before = sorted(p.name for p in exported.iterdir())
    target = tmp_path / "decoder_int8.onnx"
    quantize_int8(source, target, float_groups=["decoder 2 MLP", "token table"])
    assert sorted(p.name for p in exported.iterdir()) == before  # nothing beside the fp32 file
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # and no temporary file left
    model, weights = load(target)
    kinds = {n.name: n.op_type for n in model.graph.node}
    assert kinds["/layers.2/mlp/0/MatMul"] == kinds["/layers.2/mlp/2/MatMul"] == "MatMul"
    assert kinds["/layers.3/mlp/0/MatMul_quant"] == "MatMulInteger"
    assert weights["token_embedding_t"].dtype == np.float32  # the token table kept in float, once
    assert "token_embedding_t_quantized" not in weights

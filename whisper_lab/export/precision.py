"""Smaller copies of the float32 graphs: float16 and dynamically quantized int8.

fp16 halves every weight (2 bytes instead of 4). We convert with onnxruntime's
`OnnxModel.convert_float_to_float16`, which builds on onnxconverter-common and
fixes up what the plain converter gets wrong on graphs like our decoder (it
left float16 cache outputs typed as float32, which ONNX Runtime refuses to load).
`keep_io_types=True` keeps inputs and outputs float32, so callers change nothing:
Cast nodes at the edges convert on the way in and out.
On a CPU this saves disk and memory but not time: most CPUs have no fast float16
arithmetic and most of ONNX Runtime's CPU kernels exist only for float32, so at
load time it wraps those ops in Cast nodes and computes in float32 anyway,
paying for the conversions on every run.

int8 stores each weight matrix as 1-byte integers plus float scales:
w ~ scale * q. "Dynamic" quantization also turns the activations into int8, but
measures their range at run time, for every input: that is the
`DynamicQuantizeLinear` node in front of each `MatMulInteger`, which then
multiplies 8-bit by 8-bit integers with int32 accumulation, the fast path of
modern CPUs (AVX2, AVX-512 VNNI, ARM dot-product instructions). No calibration
data is needed, which is why it is the usual first step for transformers.

One scale per *output column* of each weight matrix ("per channel"), not one per
matrix: a column with small weights then keeps its own fine steps instead of
sharing the coarse steps that the matrix's largest weight dictates. It costs
one float per column (0.1% more bytes) and nothing at run time: MatMulInteger
adds up integers, and the column scales multiply the result afterwards.

Weights use 7 of the 8 bits (-64..64, `reduce_range`). On x86 CPUs without
VNNI (AVX2, plain AVX-512), ONNX Runtime multiplies the unsigned 8-bit
activations by the signed 8-bit weights with `vpmaddubsw`, which adds two
products into a *16-bit* sum and clips it at 32767: 255 x 127 x 2 = 64770 does
not fit, 255 x 64 x 2 = 32640 does. With full-range weights every column that
reaches 127 (with per-channel scales, every column) can be clipped: on an AVX2
machine that cost 2.6 points of word error rate (163 real utterances: +2.56
points vs fp32 with full-range weights, +0.26 with 7-bit ones). VNNI instructions sum into 32 bits and never
clip, so there the full range would be safe, but a file cannot know its CPU.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ..onnx_files import external_data_threshold, onnx_size
from .onnx_export import save_onnx, set_metadata

# What stays float32 in the int8 files, by layer group (see `layer_group`). The
# sensitivity sweep (export/sensitivity.py) measures what each group costs in int8.
# In the run made so far (4 utterances) one group stood out: decoder 2 MLP in float
# removed 60% of the divergence for 6.3 MB, but it transcribed no better on 244
# utterances of the large set, so nothing beyond the two convolutions (never
# quantized, see quantize_int8) stays float.
DEFAULT_FLOAT_GROUPS: tuple[str, ...] = ()


def _load(path: Path):
    import onnx

    return onnx.load(str(path))


def convert_fp16(fp32_path: Path, target: Path) -> None:
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = OnnxModel(_load(fp32_path))
    model.convert_float_to_float16(keep_io_types=True)
    model.topological_sort()  # the converter appends its Cast nodes at the end; ONNX wants producers first
    set_metadata(model.model, {"precision": "fp16"})
    save_onnx(model.model, target)


@contextlib.contextmanager
def _quiet_quantizer():
    """The quantizer logs a warning per tensor it skips and suggests pre-processing; not news for us."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


# --- layer groups ------------------------------------------------------------------------------

_GROUP_PATTERNS = [  # node name (see onnx_export.name_nodes_by_module) -> group
    (r"^/encoder/conv\d", "encoder convolutions"),
    (r"^/encoder/layers\.(\d+)/self_attn/", r"encoder \1 attention"),
    (r"^/encoder/layers\.(\d+)/(fc1|fc2)/", r"encoder \1 MLP"),
    (r"^/cross_kv\.\d+/", "cross-attention K/V"),
    (r"^/layers\.(\d+)/self_attn/", r"decoder \1 self-attention"),
    (r"^/layers\.(\d+)/cross_attn/", r"decoder \1 cross-attention"),
    (r"^/layers\.(\d+)/mlp/", r"decoder \1 MLP"),  # fc1, GELU, fc2 as an nn.Sequential
    (r"^/(MatMul|Gather)(_\d+)?$", "token table"),  # the tied E^T: output projection and token lookup
]


def layer_group(node_name: str) -> str | None:
    """'/encoder/layers.3/fc1/MatMul' -> 'encoder 3 MLP'; None for nodes outside every group."""
    for pattern, group in _GROUP_PATTERNS:
        match = re.match(pattern, node_name)
        if match:
            return match.expand(group)
    return None


def layer_groups(model_path: Path) -> dict[str, list[str]]:
    """Every group of the graph that holds a weight product -> its MatMul/Gather/Conv node names, in graph order."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    weights = {i.name for i in model.graph.initializer}
    groups: dict[str, list[str]] = {}
    for node in model.graph.node:
        if node.op_type in ("MatMul", "Gather", "Conv") and any(i in weights for i in node.input):
            group = layer_group(node.name)
            if group:
                groups.setdefault(group, []).append(node.name)
    return groups


# --- int8 --------------------------------------------------------------------------------------


def quantize_int8(fp32_path: Path, target: Path, *, float_groups: Iterable[str] = DEFAULT_FLOAT_GROUPS,
                  per_channel: bool = True, attention: bool = False, convolutions: bool = False,
                  reduce_range: bool = True) -> None:  # fmt: skip
    """Dynamic int8 quantization of the weight products of `fp32_path`, written to `target`.

    - MatMul with a weight -> DynamicQuantizeLinear + MatMulInteger, the bulk of the
      compute, with a scale per output column (`per_channel`).
    - The tied token table: our export stores Whisper's token embedding once,
      transposed (E^T, d_model x vocab), and uses it twice: the output projection
      multiplies by it (a MatMul) and the token lookup picks columns of it (a Gather).
      Quantized per column, every token gets its own scale, and both uses read the
      same int8 copy (`_share_token_table`). At 26.5 M numbers (100 MB in float32)
      it is as large as the rest of the decoder.
    - Layer groups named in `float_groups` (see `layer_group`) stay float32.
    - `attention=True` also quantizes the attention products (scores = q k^T and
      the weighted values), where both sides are activations: each side gets its
      own DynamicQuantizeLinear. Off by default: not faster here, and less exact.
    - The two encoder convolutions stay float unless `convolutions=True` (ConvInteger
      is missing from some ONNX Runtime builds, and they are ~3% of the encoder's time).

    Writes `target` (and its side file, if large) and nothing else but a temporary folder beside it.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32 = onnx.load(str(fp32_path), load_external_data=False)
    keep = set(float_groups)
    excluded = [n.name for n in fp32.graph.node if layer_group(n.name) in keep]
    # In a private folder: a large model's quantized copy comes with its own side file.
    folder = Path(tempfile.mkdtemp(dir=target.parent))
    tmp = str(folder / "quantized.onnx")
    try:
        with _quiet_quantizer():
            quantize_dynamic(
                str(fp32_path), tmp,
                # past protobuf's 2 GiB, the quantizer must write its result with a side file
                use_external_data_format=onnx_size(fp32_path) > external_data_threshold(),
                op_types_to_quantize=["MatMul"] + (["Conv"] if convolutions else []),
                weight_type=QuantType.QInt8,
                per_channel=per_channel,
                reduce_range=reduce_range,
                nodes_to_exclude=excluded,
                extra_options={"MatMulConstBOnly": not attention},
            )  # fmt: skip
        model = _load(Path(tmp))  # side file included
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if "token table" not in keep:
        _share_token_table(model)
    set_metadata(model, {"precision": "int8"})
    save_onnx(model, target)


def _share_token_table(model) -> None:
    """Point the token lookup (a Gather of float E^T columns) at the int8 copy the output MatMul uses.

    onnxruntime's quantizer cannot express this: it quantizes a Gather's table with
    one scale for the whole table, and a table shared with a MatMul gets that
    scale for both uses. So we quantize only the MatMul (per column: a scale per
    token) and rewrite the lookup ourselves:

        Gather(E^T, ids, axis=1)  ->  DequantizeLinear(Gather(E^T_int8, ids, axis=1),
                                                       Gather(scale, ids), Gather(zero_point, ids), axis=1)

    The looked-up columns are turned back into float with their own tokens' scales,
    and the float table leaves the file.
    """
    import onnx
    from onnx import helper

    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    new_nodes = []
    for node in graph.node:
        table = node.input[0] if node.op_type == "Gather" else None
        quantized = f"{table}_quantized"
        if table not in initializers or quantized not in initializers:
            new_nodes.append(node)
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        scale, zero_point = f"{table}_scale", f"{table}_zero_point"
        per_token = len(initializers[scale].dims) == 1
        ids, out = node.input[1], node.output[0]
        new_nodes.append(helper.make_node("Gather", [quantized, ids], [f"{out}_int8"], name=node.name, axis=axis))
        if per_token:  # the per-column scales of the picked tokens, in the same order
            new_nodes.append(helper.make_node("Gather", [scale, ids], [f"{out}_scale"], name=f"{node.name}_scale", axis=0))
            new_nodes.append(helper.make_node("Gather", [zero_point, ids], [f"{out}_zero_point"],
                                              name=f"{node.name}_zero_point", axis=0))  # fmt: skip
            scale, zero_point = f"{out}_scale", f"{out}_zero_point"
        new_nodes.append(helper.make_node("DequantizeLinear", [f"{out}_int8", scale, zero_point], [out],
                                          name=f"{node.name}_dequantize", axis=axis))  # fmt: skip
    del graph.node[:]
    graph.node.extend(new_nodes)
    used = {i for n in graph.node for i in n.input}
    unused = [i for i in graph.initializer if i.name not in used]
    for initializer in unused:  # the float32 table
        graph.initializer.remove(initializer)
    onnx.checker.check_model(model)

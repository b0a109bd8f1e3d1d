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

int8 stores each weight matrix as 1-byte integers plus one float scale (and zero
point): w ~ scale * (q - zero_point). "Dynamic" quantization also turns the
activations into int8, but measures their range at run time, for every input:
that is the `DynamicQuantizeLinear` node in front of each `MatMulInteger`, which
then multiplies int8 by int8 with int32 accumulation, the fast path of modern
CPUs (AVX2/AVX-512 VNNI, ARM dot-product instructions). No calibration data is
needed, which is why it is the usual first step for transformers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path

from .onnx_export import save_onnx, set_metadata


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


def quantize_int8(fp32_path: Path, target: Path) -> None:
    """Dynamic int8 quantization of every MatMul weight and of the embedding tables.

    - MatMul -> DynamicQuantizeLinear + MatMulInteger: the bulk of the compute.
    - Gather (embedding lookup) -> Gather on the int8 table + DequantizeLinear of just
      the looked-up rows. The token table is 26.5 M numbers, 100 MB in float32: as
      large as the rest of the decoder. Our export stores it once, transposed, and
      uses the same tensor for the output projection (a MatMul), so both share one
      int8 copy. Leaving it float would keep the decoder at ~125 MB.
    - The two encoder convolutions stay float: Conv is not in the list below
      (ConvInteger is missing from some ONNX Runtime builds, and they are 1% of the work).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=target.parent)
    os.close(fd)
    try:
        with _quiet_quantizer():
            quantize_dynamic(
                str(fp32_path), tmp,
                op_types_to_quantize=["MatMul", "Gather"],
                weight_type=QuantType.QInt8,
                per_channel=False,  # one scale per tensor, so Gather and MatMul can share the table
            )  # fmt: skip
        model = _load(Path(tmp))
    finally:
        Path(tmp).unlink(missing_ok=True)
    set_metadata(model, {"precision": "int8"})
    save_onnx(model, target)

"""What this machine can do: float32 and int8 matrix-product speed, and the encoder's work in operations.

The encoder of whisper-base does a fixed amount of arithmetic per 30 s window,
counted here from its shape (a multiply-add is 2 operations):

    convolutions       2 x 3000 x 512 x 80 x 3  +  2 x 1500 x 512 x 512 x 3    ~  3.1 G
    linear layers      per layer 2 x 1500 x (4 x 512^2 + 2 x 512 x 2048)      ~ 56.6 G  (6 layers)
    attention          per layer 2 x 2 x 1500^2 x 512 (scores, weighted sum)  ~ 27.6 G
    cross-attn K/V     12 x 2 x 1500 x 512^2 (one K and one V per decoder layer) ~ 9.4 G

To know how close a measured encoder time is to the machine's limit, we time
ONNX Runtime on one large product of the encoder's own shape, (1500 x 512) @
(512 x 2048), in float32 (MatMul) and in int8 (DynamicQuantizeLinear +
MatMulInteger, the graph our int8 files hold, which ONNX Runtime fuses), with
the same threads, in turns, in one run. operations / best time = the rate this
runtime reaches on this CPU; dividing the encoder's operations by it gives the
time the encoder would take if every product ran at that rate and nothing else
cost anything: a floor, not a prediction.

Int8 speed depends on the instruction set. With AVX-512 VNNI (or AVX-VNNI), one
instruction multiplies and adds 4 pairs of 8-bit numbers into a 32-bit sum, so
int8 runs ~4x float32; with plain AVX2 it takes three instructions
(vpmaddubsw, vpmaddwd, vpaddd), and int8 runs ~2x float32 at best. The attention
products multiply two activations and stay float32 in our int8 files, so the
int8 encoder's floor is (linear + K/V) / int8 rate + (attention + conv) / float rate.

`this_cpu()` names the instructions that decide which int8 kernel ONNX Runtime
picks, so every figure (and every test log) can say which kind of CPU made it.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROWS, INNER, COLS = 1500, 512, 2048  # one MLP product of the encoder: (1500 x 512) @ (512 x 2048)


# The CPU features that choose ONNX Runtime's int8 (and fp16) kernels, as /proc/cpuinfo spells them.
X86_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_int8")
ARM_FEATURES = ("asimd", "asimddp", "i8mm", "sve", "sve2", "bf16")  # asimddp: SDOT/UDOT; i8mm: SMMLA/UMMLA


@dataclass(frozen=True)
class CpuKind:
    """This machine's processor, and the features among X86_FEATURES / ARM_FEATURES it has."""

    name: str
    features: tuple[str, ...]

    @property
    def int8_kernel(self) -> str:
        """Which int8 dot product ONNX Runtime's matrix kernels can use here, in a few words."""
        have = set(self.features)
        if "amx_int8" in have:
            return "AMX tiles (int32 sums)"
        if have & {"avx512_vnni", "avx_vnni"}:
            return "VNNI (vpdpbusd, int32 sums)"
        if have & {"i8mm", "asimddp"}:
            return "ARM dot product (" + ("SMMLA" if "i8mm" in have else "SDOT") + ", int32 sums)"
        if have & {"avx2", "avx512f"}:
            wide = "AVX-512" if "avx512f" in have else "AVX2"
            return f"{wide} without VNNI (vpmaddubsw, saturating int16 pair sums)"
        return "no int8 dot-product instructions known"

    def describe(self) -> str:
        return f"{self.name}; {' '.join(self.features) or 'none of ' + ' '.join(X86_FEATURES)}; int8 by {self.int8_kernel}"


def this_cpu(cpuinfo: Path = Path("/proc/cpuinfo")) -> CpuKind:
    """The processor's name and its int8-relevant features, read from /proc/cpuinfo (Linux, x86-64 or ARM64)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        lines = []
    fields = {}
    for line in lines:
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())  # the first core's: all cores report the same
    name = fields.get("model name") or fields.get("Hardware") or (f"ARM CPU part {fields['CPU part']}" if "CPU part" in fields else name)
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    known = X86_FEATURES if "flags" in fields else ARM_FEATURES
    return CpuKind(name, tuple(f for f in known if f in flags))


@dataclass
class EncoderWork:
    """Operations (multiply + add = 2) of one encoder run on a 30 s window, by kind."""

    convolutions: float
    linear: float
    attention: float
    cross_kv: float

    @property
    def total(self) -> float:
        return self.convolutions + self.linear + self.attention + self.cross_kv

    @classmethod
    def whisper(cls, d_model=512, n_layer=6, n_text_layer=6, n_ctx=1500, n_mels=80) -> "EncoderWork":
        frames = 2 * n_ctx
        return cls(
            convolutions=2 * frames * d_model * n_mels * 3 + 2 * n_ctx * d_model * d_model * 3,
            linear=n_layer * 2 * n_ctx * (4 * d_model**2 + 2 * d_model * 4 * d_model),
            attention=n_layer * 2 * 2 * n_ctx**2 * d_model,
            cross_kv=n_text_layer * 2 * 2 * n_ctx * d_model**2,
        )  # fmt: skip


@dataclass
class Throughput:
    """Operations per second that ONNX Runtime reached on one product, float32 and int8 (best of the rounds)."""

    float32: float
    int8: float
    threads: int

    @property
    def int8_speedup(self) -> float:
        return self.int8 / self.float32

    def floor_seconds(self, work: EncoderWork, precision: str) -> float:
        """The encoder's time if every product ran at the measured rate and nothing else took time."""
        if precision == "int8":  # our int8 files quantize the weight products, not attention or convolutions
            return (work.linear + work.cross_kv) / self.int8 + (work.attention + work.convolutions) / self.float32
        return work.total / self.float32


def _product_graphs():
    """Two one-node ONNX models: x @ W in float32, and the same with W in int8 as our int8 files write it."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = rng.standard_normal((INNER, COLS), dtype=np.float32) * 0.05
    scale = np.abs(weight).max(axis=0) / 127  # per column, symmetric
    quantized = np.clip(np.round(weight / scale), -127, 127).astype(np.int8)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, ROWS, INNER])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, ROWS, COLS])
    float_graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "float32", [x], [y],
                                    [numpy_helper.from_array(weight, "w")])  # fmt: skip
    int8_graph = helper.make_graph(
        [
            helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
            helper.make_node("MatMulInteger", ["xq", "wq", "xz", "wz"], ["acc"]),
            helper.make_node("Cast", ["acc"], ["accf"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["xs", "ws"], ["s"]),
            helper.make_node("Mul", ["accf", "s"], ["y"]),
        ],
        "int8", [x], [y],
        [numpy_helper.from_array(quantized, "wq"), numpy_helper.from_array(np.zeros(COLS, np.int8), "wz"),
         numpy_helper.from_array(scale.astype(np.float32), "ws")],
    )  # fmt: skip
    opset = [helper.make_opsetid("", 17)]
    return [onnx.helper.make_model(g, opset_imports=opset).SerializeToString() for g in (float_graph, int8_graph)]


def measure_throughput(threads: int, rounds: int = 7) -> Throughput:
    """Time the two products in turns (after a warm-up); best round of each, since a shared machine only slows down."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    sessions = [ort.InferenceSession(g, options, providers=["CPUExecutionProvider"]) for g in _product_graphs()]
    x = np.random.default_rng(1).standard_normal((1, ROWS, INNER), dtype=np.float32)
    best = [float("inf"), float("inf")]
    for session in sessions:
        session.run(None, {"x": x})
    for _ in range(rounds):
        for i, session in enumerate(sessions):
            start = time.perf_counter()
            for _ in range(4):
                session.run(None, {"x": x})
            best[i] = min(best[i], (time.perf_counter() - start) / 4)
    operations = 2 * ROWS * INNER * COLS
    return Throughput(operations / best[0], operations / best[1], threads)

"""Facts about an ONNX graph that Netron shows one node at a time: op counts, weight bytes by type.

Comparing these between precisions shows what conversion did: fp16 adds Cast
nodes and halves the float bytes; int8 adds DynamicQuantizeLinear and turns
MatMul into MatMulInteger.

Where a node sits in the model: the exporter names nodes after the PyTorch
module that produced them (`/encoder/layers.0/self_attn/q_proj/MatMul`), so the
name minus its last part is a module path. Nodes that later tools add get names
of their own (the quantizer's `layer_norm_2_QuantizeLinear`, the fp16
converter's `graph_input_cast0`); we place them in the module of the nodes they
feed, which is where Netron draws them too.
"""

from __future__ import annotations

import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..onnx_files import onnx_size

MB = 1e6
NO_MODULE = "(top level)"


@dataclass
class GraphStats:
    path: Path
    size_bytes: int
    op_counts: Counter
    weight_bytes_by_dtype: Counter  # e.g. {"float": 80e6, "int8": 20e6}
    largest_weights: list[tuple[str, str, tuple[int, ...], int]]  # name, dtype, shape, bytes
    nodes: list[tuple[str, str]] = field(default_factory=list)  # (node name, op type), in file order
    module_ops: dict[str, Counter] = field(default_factory=dict)  # module path -> op counts of its nodes

    @property
    def size_mb(self) -> float:
        return self.size_bytes / MB

    @property
    def weight_bytes(self) -> int:
        return sum(self.weight_bytes_by_dtype.values())


def module_path(node_name: str) -> str | None:
    """'/encoder/layers.0/self_attn/q_proj/MatMul' -> '/encoder/layers.0/self_attn/q_proj'; None if unnamed."""
    if not node_name.startswith("/") or node_name.count("/") < 2:
        return None
    return node_name.rsplit("/", 1)[0]


def _common_module(paths: list[str]) -> str | None:
    """Deepest module that contains all the paths: the q/k/v projections of one layer -> that layer's self_attn."""
    if not paths:
        return None
    parts = [p.split("/") for p in paths]
    common = []
    for level in zip(*parts):
        if len(set(level)) > 1:
            break
        common.append(level[0])
    path = "/".join(common)
    return path or NO_MODULE


def assign_modules(graph) -> list[str]:
    """The module path of every node of an onnx GraphProto, placing unnamed nodes by their neighbours."""
    nodes = list(graph.node)
    modules: list[str | None] = [module_path(n.name) for n in nodes]
    consumers: dict[str, list[int]] = defaultdict(list)
    producer: dict[str, int] = {}
    for i, node in enumerate(nodes):
        for name in node.input:
            consumers[name].append(i)
        for name in node.output:
            producer[name] = i
    # A few passes settle chains of added nodes (DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul).
    for _ in range(4):
        changed = False
        for i, node in enumerate(nodes):
            if modules[i] is not None:
                continue
            after = [modules[j] for out in node.output for j in consumers[out] if modules[j] is not None]
            before = [modules[producer[x]] for x in node.input if x in producer and modules[producer[x]] is not None]
            placed = _common_module(after) or _common_module(before)
            if placed is not None:
                modules[i], changed = placed, True
        if not changed:
            break
    return [m or NO_MODULE for m in modules]


def graph_stats(path: Path, top: int = 5) -> GraphStats:
    import onnx
    from onnx import helper

    model = onnx.load(str(path), load_external_data=False)
    by_dtype: Counter = Counter()
    weights = []
    for init in model.graph.initializer:
        dtype = helper.tensor_dtype_to_np_dtype(init.data_type)
        count = 1
        for dim in init.dims:
            count *= dim
        nbytes = count * dtype.itemsize
        by_dtype[dtype.name] += nbytes
        weights.append((init.name, dtype.name, tuple(init.dims), nbytes))
    weights.sort(key=lambda w: -w[3])
    module_ops: dict[str, Counter] = defaultdict(Counter)
    for node, module in zip(model.graph.node, assign_modules(model.graph)):
        module_ops[module][node.op_type] += 1
    return GraphStats(
        path=Path(path),
        size_bytes=onnx_size(Path(path)),  # with its side file, if the weights live in one
        op_counts=Counter(node.op_type for node in model.graph.node),
        weight_bytes_by_dtype=by_dtype,
        largest_weights=weights[:top],
        nodes=[(node.name, node.op_type) for node in model.graph.node],
        module_ops=dict(module_ops),
    )


def runtime_graph_stats(path: Path, top: int = 5) -> GraphStats:
    """The graph as ONNX Runtime runs it on this CPU, after its load-time optimizations.

    The file is not what executes. At load, ONNX Runtime fuses ops (an int8
    DynamicQuantizeLinear + MatMulInteger + Cast + Mul become one
    DynamicQuantizeMatMul kernel) and, where its CPU kernels have no float16
    version, inserts Cast nodes to float32 and back (and turns float16 weights
    into float32 ones once). Saving the optimized graph lets us count that.
    The size in the result is of that saved copy, not of the file.
    """
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="ort-optimized-") as tmp:
        optimized = Path(tmp) / Path(path).name
        options = ort.SessionOptions()
        options.log_severity_level = 3  # it warns that such a saved graph is tied to this machine: we only read it
        options.optimized_model_filepath = str(optimized)
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return graph_stats(optimized, top=top)


def op_changes(base: Counter, other: Counter) -> list[str]:
    """Op-type count differences, e.g. ['+DynamicQuantizeLinear 25', 'MatMul 60 -> 12', 'MatMulInteger 0 -> 48']."""
    changes = []
    for op in sorted(set(base) | set(other)):
        before, after = base.get(op, 0), other.get(op, 0)
        if before == after:
            continue
        if before == 0:
            changes.append(f"+{op} {after}")
        elif after == 0:
            changes.append(f"-{op} {before}")
        else:
            changes.append(f"{op} {before} -> {after}")
    return changes

"""Facts about an ONNX graph that Netron shows one node at a time: op counts, weight bytes by type.

Comparing these between precisions shows what conversion did: fp16 adds Cast
nodes and halves the float bytes; int8 adds DynamicQuantizeLinear and turns
MatMul into MatMulInteger.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

MB = 1e6


@dataclass
class GraphStats:
    path: Path
    size_bytes: int
    op_counts: Counter
    weight_bytes_by_dtype: Counter  # e.g. {"float": 80e6, "int8": 20e6}
    largest_weights: list[tuple[str, str, tuple[int, ...], int]]  # name, dtype, shape, bytes

    @property
    def size_mb(self) -> float:
        return self.size_bytes / MB


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
    return GraphStats(
        path=Path(path),
        size_bytes=Path(path).stat().st_size,
        op_counts=Counter(node.op_type for node in model.graph.node),
        weight_bytes_by_dtype=by_dtype,
        largest_weights=weights[:top],
    )


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

"""Structural diff of two ONNX graphs: what a precision conversion added, removed or replaced.

Two precisions of the same graph keep most node names (the exporter names each
node after its PyTorch module), so nodes can be matched by name:

* fp32 -> fp16: every node stays; the converter adds Cast nodes where float32
  meets float16 (graph inputs and outputs stay float32: `keep_io_types`), and
  the float weights shrink to 2 bytes each.
* fp32 -> int8 (dynamic quantization): each weight MatMul becomes a
  MatMulInteger (the quantizer renames it `<name>_quant`). An int8 x int8
  product needs int8 inputs, but activations only exist at run time, so a
  DynamicQuantizeLinear in front measures each input's range and quantizes it
  then; the int32 result goes through a Cast and two Muls (activation scale x
  weight scale) back to float. That is why int8 has *more* nodes than fp32.

The file is not the whole story: ONNX Runtime rewrites the graph when it loads
it. We also count the graph it actually runs (see graph_stats.runtime_graph_stats):
int8's four-node pattern fuses into one kernel, and fp16 grows Casts, because
this CPU's kernels compute in float32.

And where things are: per layer, the node-name prefixes of the attention blocks,
with how many nodes each has in both graphs.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..errors import LabError
from ..export.graph_stats import MB, GraphStats, graph_stats, op_changes, runtime_graph_stats
from ..tables import markdown_table

QUANT_SUFFIX = "_quant"  # onnxruntime's quantizer: /x/MatMul (MatMul) -> /x/MatMul_quant (MatMulInteger)

# Module paths of the attention blocks in our exported graphs (see export/onnx_export.py and export/modules.py).
BLOCK = re.compile(r"^(?:(?P<enc>/encoder)?/layers\.(?P<layer>\d+)/(?P<kind>self_attn|cross_attn)|/cross_kv\.(?P<kv>\d+))(?=/|$)")
BLOCK_NAMES = {
    "encoder self_attn": "encoder self-attention",
    "cross_kv": "cross-attention K/V (encoder side)",
    "decoder self_attn": "decoder self-attention",
    "decoder cross_attn": "decoder cross-attention",
}


@dataclass
class OpRow:
    op: str
    count_a: int
    count_b: int
    how: str  # "48 became MatMulInteger", "+25 new", ...
    runtime_a: int | None = None
    runtime_b: int | None = None


@dataclass
class BlockRow:
    block: str  # one of BLOCK_NAMES' values
    layer: int
    prefix: str  # node-name prefix, e.g. /layers.2/cross_attn
    nodes_a: int
    nodes_b: int
    changes: str  # op-type changes from a to b inside the block


@dataclass
class GraphDiff:
    a: GraphStats
    b: GraphStats
    ops: list[OpRow]
    blocks: list[BlockRow]
    runtime_a: GraphStats | None = None
    runtime_b: GraphStats | None = None


def check_onnx_file(path: Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise LabError(f"{path}: no such ONNX file" + ("" if path.parent.is_dir() else f" (no folder {path.parent})"))
    if path.suffix != ".onnx":
        raise LabError(f"{path}: not an .onnx file")
    return path


def _stats(path: Path, runtime: bool) -> tuple[GraphStats, GraphStats | None]:
    try:
        return graph_stats(path), runtime_graph_stats(path) if runtime else None
    except Exception as exc:  # protobuf's DecodeError, ONNX Runtime's load errors: damaged, or not ONNX at all
        first_line = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise LabError(f"{path}: cannot read it as an ONNX model ({type(exc).__name__}: {first_line})") from exc


def diff_graphs(path_a: Path, path_b: Path, runtime: bool = True) -> GraphDiff:
    """Compare two ONNX files (typically two precisions of one graph); `runtime` also loads them in ONNX Runtime."""
    a, runtime_a = _stats(check_onnx_file(path_a), runtime)
    b, runtime_b = _stats(check_onnx_file(path_b), runtime)
    ops = op_rows(a, b)
    if runtime_a is not None:
        known = {row.op for row in ops}
        extra = sorted((set(runtime_a.op_counts) | set(runtime_b.op_counts)) - known)
        ops += [OpRow(op, 0, 0, "only at run time") for op in extra]
        for row in ops:
            row.runtime_a, row.runtime_b = runtime_a.op_counts.get(row.op, 0), runtime_b.op_counts.get(row.op, 0)
    return GraphDiff(a, b, ops, block_rows(a, b), runtime_a, runtime_b)


def op_rows(a: GraphStats, b: GraphStats) -> list[OpRow]:
    """Op-type counts side by side, with what happened to the nodes, matched by name."""
    ops_a = dict(a.nodes)
    matched_a: set[str] = set()
    replaced: Counter = Counter()  # (op in a, op in b) -> nodes
    added: Counter = Counter()
    for name, op in b.nodes:
        twin = name if name in ops_a else name.removesuffix(QUANT_SUFFIX)
        if twin in ops_a:
            matched_a.add(twin)
            if ops_a[twin] != op:
                replaced[(ops_a[twin], op)] += 1
        else:
            added[op] += 1
    removed = Counter(op for name, op in a.nodes if name not in matched_a)

    rows = []
    for op in sorted(set(a.op_counts) | set(b.op_counts), key=lambda o: (-max(a.op_counts[o], b.op_counts[o]), o)):
        how = [f"{n} became {new}" for (old, new), n in sorted(replaced.items()) if old == op]
        how += [f"{n} were {old}" for (old, new), n in sorted(replaced.items()) if new == op]
        how += [f"+{added[op]} new"] if added[op] else []
        how += [f"-{removed[op]} gone"] if removed[op] else []
        rows.append(OpRow(op, a.op_counts[op], b.op_counts[op], ", ".join(how)))
    return rows


def _blocks(stats: GraphStats) -> dict[tuple[str, int, str], Counter]:
    found: dict[tuple[str, int, str], Counter] = {}
    for module, ops in stats.module_ops.items():
        match = BLOCK.match(module)
        if not match:
            continue
        if match["kv"] is not None:
            key = ("cross_kv", int(match["kv"]), f"/cross_kv.{match['kv']}")
        else:
            side = "encoder" if match["enc"] else "decoder"
            key = (f"{side} {match['kind']}", int(match["layer"]), match.group(0))
        found.setdefault(key, Counter()).update(ops)
    return found


def block_rows(a: GraphStats, b: GraphStats) -> list[BlockRow]:
    """Where the attention is: one row per (block, layer), node counts in a and b."""
    blocks_a, blocks_b = _blocks(a), _blocks(b)
    order = list(BLOCK_NAMES)
    rows = []
    for key in sorted(set(blocks_a) | set(blocks_b), key=lambda k: (order.index(k[0]), k[1])):
        ops_a, ops_b = blocks_a.get(key, Counter()), blocks_b.get(key, Counter())
        rows.append(BlockRow(BLOCK_NAMES[key[0]], key[1], key[2], sum(ops_a.values()), sum(ops_b.values()),
                             ", ".join(op_changes(ops_a, ops_b)) or "same ops"))  # fmt: skip
    return rows


# --- printing ------------------------------------------------------------------------------------


def _mb(nbytes: float) -> str:
    return f"{nbytes / MB:.1f}"


def _label(stats: GraphStats) -> str:
    return stats.path.name


def format_diff(diff: GraphDiff) -> str:
    a, b = diff.a, diff.b
    name_a, name_b = _label(a), _label(b)
    out = [f"## {name_a} vs {name_b}", ""]
    out.append(markdown_table(
        ["", "file MB", "weights MB", "nodes", *(["nodes at run time"] if diff.runtime_a else [])],
        [[name, f"{s.size_mb:.1f}", _mb(s.weight_bytes), len(s.nodes), *([len(r.nodes)] if r else [])]
         for name, s, r in ((name_a, a, diff.runtime_a), (name_b, b, diff.runtime_b))],
    ))  # fmt: skip
    out.append(f"\n{name_b} is {b.size_bytes / a.size_bytes:.0%} of {name_a} on disk.\n")

    out.append("### Op types (A = " + name_a + ", B = " + name_b + ")\n")
    header = ["op type", "A", "B", "what happened (nodes matched by name)"]
    if diff.runtime_a:
        header += ["A run", "B run"]
    rows = []
    for row in diff.ops:
        cells = [row.op, row.count_a, row.count_b, row.how or ("same" if row.count_a == row.count_b else "")]
        if diff.runtime_a:
            cells += [row.runtime_a, row.runtime_b]
        rows.append(cells)
    out.append(markdown_table(header, rows, align="lrrlrr"))
    if diff.runtime_a:
        out.append("\n'run' columns: the graph ONNX Runtime runs on this CPU after its load-time optimizations "
                   "(fusions; Casts around ops it has no float16 kernel for).")  # fmt: skip

    out.append("\n### Parameter bytes by dtype\n")
    graphs = [a, b] + ([diff.runtime_a, diff.runtime_b] if diff.runtime_a else [])
    dtypes = sorted({d for g in graphs for d in g.weight_bytes_by_dtype},
                    key=lambda d: -max(g.weight_bytes_by_dtype[d] for g in graphs))  # fmt: skip
    header = ["dtype", "A MB", "B MB"] + (["A run MB", "B run MB"] if diff.runtime_a else [])
    rows = [[d, *(_mb(g.weight_bytes_by_dtype[d]) for g in graphs)] for d in dtypes]
    out.append(markdown_table(header, rows + [["all", *(_mb(g.weight_bytes) for g in graphs)]]))
    if diff.runtime_a:
        out.append("\n'run' MB: weights of the graph ONNX Runtime keeps after loading (float16 weights it cannot "
                   "compute with on this CPU become float32 there).")  # fmt: skip

    out.append("\n### Largest initializers\n")
    for label, stats in (("A", a), ("B", b)):
        out.append(markdown_table([f"{label}: {_label(stats)}", "dtype", "shape", "MB"],
                                  [[_short(n), t, "x".join(map(str, s)) or "scalar", _mb(nb)]
                                   for n, t, s, nb in stats.largest_weights], align="llrr"))  # fmt: skip
        out.append("")

    out.append("### Where the attention is (node-name prefixes per layer)\n")
    if diff.blocks:
        out.append(markdown_table(["block", "layer", "node-name prefix", "nodes A", "nodes B", "op types A -> B"],
                                  [[r.block, r.layer, r.prefix, r.nodes_a, r.nodes_b, r.changes] for r in diff.blocks],
                                  align="lrlrrl"))  # fmt: skip
        out.append("\nThe encoder computes every decoder layer's cross-attention keys and values once "
                   "(/cross_kv.N); the decoder's cross-attention (/layers.N/cross_attn) only reads them, "
                   "and its self-attention (/layers.N/self_attn) extends its key/value cache by one token per step.")  # fmt: skip
    else:
        out.append("No Whisper attention blocks found by node name (not a graph exported by 03?).")
    return "\n".join(out)


def _short(name: str, width: int = 56) -> str:
    return name if len(name) <= width else name[: width // 2 - 2] + "..." + name[-(width // 2 - 1) :]
